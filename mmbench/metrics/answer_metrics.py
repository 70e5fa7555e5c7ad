"""Named metrics over generated answers (``inputs: answers``): what a VQA-style task file lists.

Each target is a mapping with the reference ``answers`` (strings) and whatever fields a breakdown or the
metric reads (``answer_type``, ``question_type``, ``answerable``, ``split``...). The
rules themselves live in :mod:`mmbench.metrics.vqa` (VQAv2, exact match, ANLS) and
:mod:`mmbench.metrics.docqa` (ChartQA relaxed accuracy, GQA); this module adapts them to the interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping, Sequence

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.metrics import docqa, vqa
from mmbench.metrics.api import (ANSWERS, BY_PREFIX, Metric, MetricReport, aggregate_mean, breakdown,
                                 group_labels, left_to_right_mean)
from mmbench.metrics.base import CONST_PREFIX, ItemStats, MetricValue


def _references(targets: Sequence[Mapping], name: str) -> list[list[str]]:
    refs = []
    for i, t in enumerate(targets):
        answers = t.get("answers") if isinstance(t, Mapping) else None
        if isinstance(answers, str) or not isinstance(answers, (list, tuple)) or not answers:
            raise MMBenchError(f"metric {name!r}: item {i} has no reference answers (a non-empty list of strings)")
        refs.append([str(a) for a in answers])
    return refs


def _breakdown_notes(name: str, missing: list[str]) -> list[str]:
    return [f"{name}: no breakdown by {f!r} (some items lack it)" for f in missing]


class _MeanOfItems(Metric):
    """A mean of one per-item score, with optional breakdowns (``by: [field, ...]``)."""

    inputs: ClassVar[str] = ANSWERS

    def item_scores(self, predictions: list[str], refs: list[list[str]], targets: list) -> list[float]:
        raise NotImplementedError

    def variant(self) -> str:
        raise NotImplementedError

    def score(self, predictions: list, targets: list) -> MetricReport:
        preds = [vqa._check_text(p, f"prediction {i}") for i, p in enumerate(predictions)]
        scores = self.item_scores(preds, _references(targets, self.name), targets)
        labels, missing = group_labels(targets, self.breakdown_fields())
        variant = self.variant()
        parts, stats = breakdown(self.name, scores, labels, variant)
        stats[self.name] = np.asarray(scores, dtype=np.float64)
        values = [MetricValue(self.name, left_to_right_mean(scores), variant, extra={"n": len(scores)}), *parts]
        values.extend(self.macro_values(scores, labels, variant))
        return MetricReport(values, stats, {self.name: scores}, _breakdown_notes(self.name, missing))

    def breakdown_fields(self) -> tuple[str, ...]:
        return self.options.by

    def macro_values(self, scores: list[float], labels: Mapping[str, list[str]], variant: str) -> list[MetricValue]:
        return []

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        return aggregate_mean(cls.name, stats)


@dataclass(frozen=True)
class VQAOptions:
    rules: str = "vqav2"  # vqav2 | evalai (TextVQA) | vizwiz: see mmbench.metrics.vqa.VQA_RULES
    by: tuple[str, ...] = ("answer_type", "question_type")


class VQAAccuracy(_MeanOfItems):
    """VQAv2 accuracy exactly as the official evaluation (GT-Vision-Lab vqaEval.py, Python 3 revision)."""

    name: ClassVar[str] = "vqa_accuracy"
    headline: ClassVar[tuple[str, ...]] = ("vqa_accuracy",)
    description: ClassVar[str] = "VQAv2 accuracy (official vqaEval.py rules: normalisation, leave-one-out min(#/3,1))"
    Options: ClassVar[type] = VQAOptions

    def check_options(self) -> None:
        vqa.rules_normalizers(self.options.rules)  # unknown rules -> one-line error

    def score(self, predictions: list, targets: list) -> MetricReport:
        res = vqa.vqa_accuracy(predictions, _references(targets, self.name), rules=self.options.rules)
        scores = list(res.stats["vqa_accuracy"])
        labels, missing = group_labels(targets, self.options.by)

        def official(vs: list[float]) -> dict:
            return {"official_percent": vqa._official_percent(vs)}

        parts, stats = breakdown(self.name, scores, labels, vqa.vqa_variant(self.options.rules), extra=official)
        stats[self.name] = np.asarray(scores, dtype=np.float64)
        return MetricReport([res.accuracy, *parts], stats,
                            {self.name: scores, "answer": res.normalized_predictions},
                            _breakdown_notes(self.name, missing))


@dataclass(frozen=True)
class ExactMatchOptions:
    normalization: str = "punct"  # strip | punct | vqa (see mmbench.metrics.vqa)
    by: tuple[str, ...] = ()


class ExactMatch(_MeanOfItems):
    name: ClassVar[str] = "exact_match"
    description: ClassVar[str] = "exact match against any reference after a named normalisation"
    Options: ClassVar[type] = ExactMatchOptions

    def check_options(self) -> None:
        vqa.normalize_exact("", self.options.normalization)  # unknown normalisation -> one-line error

    def item_scores(self, predictions, refs, targets):
        return list(vqa.exact_match(predictions, refs, self.options.normalization).stats["exact_match"])

    def variant(self) -> str:
        return vqa.exact_match_variant(self.options.normalization)


@dataclass(frozen=True)
class ANLSOptions:
    threshold: float = 0.5
    by: tuple[str, ...] = ()


class ANLS(_MeanOfItems):
    name: ClassVar[str] = "anls"
    description: ClassVar[str] = "ANLS (ST-VQA/DocVQA/InfographicVQA): 1 - normalised Levenshtein, 0 below 0.5"
    Options: ClassVar[type] = ANLSOptions

    def check_options(self) -> None:
        if not 0.0 <= self.options.threshold <= 1.0:
            raise MMBenchError(f"metric 'anls': threshold {self.options.threshold} is outside [0, 1]; the "
                               f"standard value is 0.5")

    def item_scores(self, predictions, refs, targets):
        return list(vqa.anls(predictions, refs, self.options.threshold).stats["anls"])

    def variant(self) -> str:
        return vqa.anls_variant(self.options.threshold)


@dataclass(frozen=True)
class RelaxedOptions:
    tolerance: float = 0.05
    by: tuple[str, ...] = ()
    # A field (e.g. ChartQA's `split`: human / augmented) whose groups' accuracies are also averaged with
    # equal weight, as the ChartQA paper reports the average of its two test splits.
    macro_by: str | None = None


MACRO_KEY = f"relaxed_accuracy/{CONST_PREFIX}macro_by"  # the field whose groups are averaged with equal weight


class RelaxedAccuracy(_MeanOfItems):
    name: ClassVar[str] = "relaxed_accuracy"
    description: ClassVar[str] = "ChartQA relaxed accuracy (Pix2Struct relaxed_correctness: 5% numeric tolerance)"
    Options: ClassVar[type] = RelaxedOptions

    def check_options(self) -> None:
        if not 0.0 <= self.options.tolerance < 1.0:
            raise MMBenchError(f"metric 'relaxed_accuracy': tolerance {self.options.tolerance} is outside [0, 1); "
                               f"the standard value is 0.05")

    def breakdown_fields(self) -> tuple[str, ...]:
        macro = self.options.macro_by
        return self.options.by if not macro or macro in self.options.by else (*self.options.by, macro)

    def item_scores(self, predictions, refs, targets):
        return [docqa.relaxed_item(p, r, self.options.tolerance) for p, r in zip(predictions, refs)]

    def variant(self) -> str:
        return docqa.relaxed_variant(self.options.tolerance)

    def macro_values(self, scores, labels, variant):
        fld = self.options.macro_by
        if not fld or fld not in labels:
            return []
        groups = {}
        for s, lab in zip(scores, labels[fld]):
            groups.setdefault(lab, []).append(s)
        value = float(np.mean([left_to_right_mean(v) for v in groups.values()]))
        return [MetricValue(f"{self.name}[mean over {fld}]", value,
                            f"unweighted mean over the {fld} groups ({', '.join(groups)}) of: {variant}",
                            extra={"groups": {k: len(v) for k, v in groups.items()}})]

    def score(self, predictions: list, targets: list) -> MetricReport:
        report = super().score(predictions, targets)
        if self.options.macro_by and f"{self.name}{BY_PREFIX}{self.options.macro_by}" in report.stats:
            report.stats[MACRO_KEY] = np.asarray(self.options.macro_by)  # constant: never resampled
        return report

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        out = aggregate_mean(cls.name, stats)
        if MACRO_KEY in stats:
            fld = str(np.asarray(stats[MACRO_KEY]))
            groups = [v for k, v in out.items() if k.startswith(f"{cls.name}[{fld}=")]
            out[f"{cls.name}[mean over {fld}]"] = float(np.mean(groups))
        return out


@dataclass(frozen=True)
class GQAOptions:
    by: tuple[str, ...] = ()


class GQAAccuracy(_MeanOfItems):
    name: ClassVar[str] = "gqa_accuracy"
    description: ClassVar[str] = "GQA accuracy as LLaVA-1.5 evaluates it (exact match after its post-processing)"
    Options: ClassVar[type] = GQAOptions

    def item_scores(self, predictions, refs, targets):
        return [docqa.gqa_item(p, r) for p, r in zip(predictions, refs)]

    def variant(self) -> str:
        return docqa.GQA_VARIANT

    def score(self, predictions: list, targets: list) -> MetricReport:
        report = super().score(predictions, targets)
        report.per_item["answer"] = [docqa.gqa_normalize(p) for p in predictions]
        return report


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """sklearn's average_precision_score (step-wise: sum over score thresholds of the recall gained times the
    precision there). Hand-written because sklearn is not a dependency and torchmetrics computes it in float32
    (0.44999998 for 0.45); NaN when there is no positive label."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last item of each distinct score
    tp, fp = np.cumsum(y)[last], np.cumsum(1 - y)[last]
    if tp[-1] == 0:
        return float("nan")
    precision, recall = tp / (tp + fp), tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


class Unanswerable(Metric):
    """VizWiz's answerability figures for a generative model: the answer "unanswerable" (after the VizWiz
    prediction normalisation) is the model saying the question cannot be answered; scored against the
    items' ``answerable`` (0/1) as the VizWiz evaluator scores its ``answerable`` predictions: average
    precision and F1 of the *unanswerable* class (torchmetrics), plus its precision and recall. The official
    evaluator takes a probability per question; a generated answer gives 0 or 1, so AP is of that 0/1 score.
    """

    name: ClassVar[str] = "unanswerable"
    values: ClassVar[tuple[str, ...]] = ("unanswerable_ap", "unanswerable_f1", "unanswerable_precision",
                                         "unanswerable_recall")
    inputs: ClassVar[str] = ANSWERS
    description: ClassVar[str] = "VizWiz answerability: AP/F1/precision/recall of answering 'unanswerable'"

    def score(self, predictions: list, targets: list) -> MetricReport:
        gold = []
        for i, t in enumerate(targets):
            value = t.get("answerable") if isinstance(t, Mapping) else None
            if value is None:  # e.g. lmms-lab/VizWiz-VQA has no answerable flags
                why = "the items have no `answerable` (0/1) flags"
                return MetricReport([MetricValue(n, None, "VizWiz answerability", unavailable=why)
                                     for n in ("unanswerable_ap", "unanswerable_f1")], {}, {}, [f"unanswerable: {why}"])
            if value not in (0, 1, True, False):
                raise MMBenchError(f"metric 'unanswerable': item {i} has answerable={value!r}; expected 0 or 1")
            gold.append(1.0 - float(value))
        said = [float(vqa.vizwiz_normalize(vqa._check_text(p, f"prediction {i}")) == "unanswerable")
                for i, p in enumerate(predictions)]
        stats = {"unanswerable/said": np.asarray(said), "unanswerable/gold": np.asarray(gold)}
        variant = ("VizWiz answerability (the evaluator's evaluate_unanswerability, torchmetrics binary AP/F1 of "
                   "the unanswerable class); the model's score is 1 when its normalised answer is 'unanswerable'")
        out = self.aggregate(stats)
        values = [MetricValue(k, v, variant, extra={"n": len(said), "n_unanswerable": int(sum(gold))})
                  for k, v in out.items()]
        return MetricReport(values, stats, {"said_unanswerable": [bool(x) for x in said]})

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        if "unanswerable/said" not in stats:
            return {}
        said = np.asarray(stats["unanswerable/said"], dtype=np.float64)
        gold = np.asarray(stats["unanswerable/gold"], dtype=np.float64)
        ap = average_precision(said, gold)
        # Precision, recall and F1 from the counts in float64, as sklearn's f1_score (which the VizWiz
        # evaluator calls) computes them.
        tp, said_n, gold_n = float((said * gold).sum()), float(said.sum()), float(gold.sum())
        precision = tp / said_n if said_n else 0.0
        recall = tp / gold_n if gold_n else 0.0
        f1 = 2 * tp / (said_n + gold_n) if said_n + gold_n else 0.0
        return {"unanswerable_ap": ap, "unanswerable_f1": f1, "unanswerable_precision": precision,
                "unanswerable_recall": recall}
