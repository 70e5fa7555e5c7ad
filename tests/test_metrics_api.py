"""The named-metric interface: building metrics from a task file's `metrics:` list, options checked by type,
statistics that re-aggregate on any subset, and the rules of the answer metrics added with it (ChartQA's
relaxed accuracy, GQA as LLaVA-1.5 scores it, the VizWiz and EvalAI answer processors)."""

from __future__ import annotations

import numpy as np
import pytest

from mmbench.errors import MMBenchError
from mmbench.metrics import docqa, vqa
from mmbench.metrics.answer_metrics import (GQAAccuracy, RelaxedAccuracy, Unanswerable, VQAAccuracy,
                                            average_precision)
from mmbench.metrics.api import ANSWERS, CAPTIONS, aggregator_for, build_metrics, compute_all
from mmbench.metrics.base import subset


def test_build_metrics_from_names_and_mappings():
    metrics = build_metrics(["vqa_accuracy", {"name": "anls", "threshold": 0.4}], ANSWERS, "task 't'")
    assert [m.name for m in metrics] == ["vqa_accuracy", "anls"]
    assert metrics[1].options.threshold == 0.4 and metrics[0].options.rules == "vqav2"
    assert build_metrics("exact_match", ANSWERS, "t")[0].describe() == {"name": "exact_match",
                                                                         "normalization": "punct", "by": ()}


@pytest.mark.parametrize("entries, message", [
    (["vqa_acuracy"], "did you mean 'vqa_accuracy'"),
    (["wer"], "metric 'wer' scores transcripts, but this task kind produces answers"),
    ([{"name": "anls", "treshold": 0.5}], "unknown option 'treshold'; did you mean 'threshold'"),
    ([{"name": "anls", "threshold": "half"}], "option 'threshold' must be a number, got 'half'"),
    ([{"name": "anls", "threshold": 2}], "threshold 2.0 is outside [0, 1]"),
    ([{"name": "vqa_accuracy", "rules": "vqa3"}], "unknown VQA accuracy rules 'vqa3'"),
    ([{"name": "vqa_accuracy", "by": [1]}], "option 'by' entry must be a string, got 1"),
    ([{"threshold": 0.5}], "needs `name:`"),
    (["anls", "anls"], "listed twice"),
    ([], "must be a non-empty list"),
    ([3], "neither a metric name nor a mapping"),
])
def test_bad_metric_entries_are_one_line_errors(entries, message):
    with pytest.raises(MMBenchError) as exc:
        build_metrics(entries, ANSWERS, "task 't'")
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_stats_of_several_metrics_reaggregate_on_any_subset():
    preds = ["two", "Yes.", "helo", "45"]
    targets = [{"answers": ["2"] * 10, "answer_type": "number"}, {"answers": ["yes"] * 10, "answer_type": "yes/no"},
               {"answers": ["hello"], "answer_type": "other"}, {"answers": ["45%", "45"], "answer_type": "number"}]
    metrics = build_metrics(["vqa_accuracy", "anls", {"name": "relaxed_accuracy", "by": ["answer_type"]}],
                            ANSWERS, "t")
    reports = compute_all(metrics, preds, targets)
    reported = {v.name: v.value for r in reports for v in r.values}
    stats = {k: v for r in reports for k, v in r.stats.items()}
    aggregate = aggregator_for("vqa_accuracy+anls+relaxed_accuracy")
    assert aggregate(stats) == pytest.approx(reported, abs=1e-15)
    idx = np.array([3, 3, 0])
    again = compute_all(metrics, [preds[i] for i in idx], [targets[i] for i in idx])
    direct = {v.name: v.value for r in again for v in r.values}
    assert aggregate(subset(stats, idx)) == pytest.approx(direct, abs=1e-15)
    with pytest.raises(MMBenchError, match="unknown metric 'nope'"):
        aggregator_for("anls+nope")


@pytest.mark.parametrize("prediction, target, right", [
    ("0.45", "45%", True), ("45%", "0.45", True),  # a trailing % divides by 100
    ("50%", "50", False), ("50", "50%", False),
    ("105", "100", True), ("105.0001", "100", False), ("95", "100", True),  # 5% of the target, inclusive
    ("0.0", "0", False), ("0", "0", True), ("0 ", "0", False),  # a zero target: exact string equality
    ("Yes", "yes", True), (" yes", "yes", False),  # case-insensitive, not stripped
    ("1,000", "1000", False),  # float() does not read thousands separators: string comparison
    ("1e3", "1000", True), (" 12 ", "12", True),  # ... but reads exponents and surrounding spaces
    ("nan", "5", False), ("inf", "5", False), ("5", "inf", False),
])
def test_relaxed_correctness_follows_pix2struct(prediction, target, right):
    assert docqa.relaxed_correct(prediction, target) is right


def test_relaxed_accuracy_splits_and_their_average():
    m = RelaxedAccuracy({"macro_by": "split"})
    m.update(["1", "2", "3"], [{"answers": ["1"], "split": "human"}, {"answers": ["9"], "split": "human"},
                               {"answers": ["3"], "split": "augmented"}])
    values = {v.name: v.value for v in m.compute().values}
    assert values == pytest.approx({"relaxed_accuracy": 2 / 3, "relaxed_accuracy[split=human]": 0.5,
                                    "relaxed_accuracy[split=augmented]": 1.0,
                                    "relaxed_accuracy[mean over split]": 0.75})
    assert RelaxedAccuracy.aggregate(m.compute().stats) == pytest.approx(values)


@pytest.mark.parametrize("prediction, answer, right", [
    ("Yes.", "yes", True), ("yes...", "yes", True), ("  Left\n", "left", True),
    ("yes .", "yes", False),  # the space before the period stays, as in LLaVA's converter
    ("the table", "table", False), ("Table", "Table", False),  # lowercased prediction vs the gold as given
])
def test_gqa_as_llava_scores_it(prediction, answer, right):
    assert docqa.gqa_item(prediction, [answer]) == float(right)
    m = GQAAccuracy()
    m.update([prediction], [{"answers": [answer]}])
    assert m.compute().values[0].value == float(right)


@pytest.mark.parametrize("prediction, refs, vqav2, evalai, vizwiz", [
    ("dog's", ["dog's"] * 10, 1.0, 1.0, 1.0),
    ("dogs", ["dog's"] * 10, 0.0, 0.0, 0.0),
    ("1000", ["1,000"] * 10, 0.0, 1.0, 0.0),  # EvalAI deletes commas on both sides
    ("a,b", ["b"] * 10, 1.0, 0.0, 1.0),  # VQAv2: "," -> space, then the article "a" goes; EvalAI: "ab"
    ("dont", ["don't"] * 10, 1.0, 1.0, 0.0),  # VizWiz's table maps dont -> don’t (a curly apostrophe)
    ("Red", ["Red"] * 10, 0.0, 1.0, 0.0),  # unanimous references are compared as given (VQAv2, VizWiz)
    ("red", ["red."] * 9 + ["blue"], 1.0, 1.0, 0.0),  # VizWiz never normalises the references
])
def test_vqa_accuracy_rules(prediction, refs, vqav2, evalai, vizwiz):
    for rules, expected in (("vqav2", vqav2), ("evalai", evalai), ("vizwiz", vizwiz)):
        got = vqa.vqa_accuracy([prediction], [refs], rules=rules).accuracy.value
        assert got == pytest.approx(expected, abs=1e-15), rules


def test_evalai_normaliser_matches_the_m4c_processor_on_hand_checked_cases():
    assert vqa.evalai_normalize("The Dog's bone") == "dog 's bone"
    assert vqa.evalai_normalize("it's") == "it 's"
    assert vqa.evalai_normalize("Is it 3.5?") == "is it 3.5"
    assert vqa.evalai_normalize("U.S.") == "us"
    assert vqa.evalai_normalize("12:30") == "12:30" and vqa.evalai_normalize("50%") == "50%"


def test_vqa_breakdown_skips_fields_some_items_lack():
    m = VQAAccuracy({"by": ["answer_type", "answerable"]})
    m.update(["a", "b"], [{"answers": ["a"] * 10, "answer_type": "other", "answerable": 1},
                          {"answers": ["c"] * 10, "answer_type": "other"}])
    report = m.compute()
    assert [v.name for v in report.values] == ["vqa_accuracy", "vqa_accuracy[answer_type=other]"]
    assert report.notes == ["vqa_accuracy: no breakdown by 'answerable' (some items lack it)"]


def test_unanswerable_against_hand_computed_counts():
    m = Unanswerable()
    targets = [{"answerable": a} for a in (0, 0, 1, 1, 1)]
    m.update(["unanswerable", "red", "Unanswerable.", "blue", "two"], targets)
    v = {x.name: x.value for x in m.compute().values}
    # unanswerable questions: items 0, 1; said "unanswerable": items 0, 2 -> tp 1, fp 1, fn 1
    assert v["unanswerable_precision"] == 0.5 and v["unanswerable_recall"] == 0.5 and v["unanswerable_f1"] == 0.5
    # AP of a 0/1 score: precision 0.5 at recall 0.5, then the base rate 0.4 at recall 1 -> 0.5*0.5 + 0.4*0.5
    assert v["unanswerable_ap"] == pytest.approx(0.45, abs=1e-12)
    # scikit-learn's documented example of average_precision_score: 0.8333...
    assert average_precision(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1.0])) == pytest.approx(5 / 6)
    with pytest.raises(MMBenchError, match="answerable='maybe'"):
        m.reset()
        m.update(["x"], [{"answerable": "maybe"}])
        m.compute()


def test_a_metric_of_another_input_cannot_be_listed_for_captions():
    with pytest.raises(MMBenchError, match="scores answers, but this task kind produces captions"):
        build_metrics(["anls"], CAPTIONS, "task 'c'")
