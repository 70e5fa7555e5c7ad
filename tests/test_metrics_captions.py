"""COCO caption metrics: CaptionScorer against pycocoevalcap called directly on the same inputs."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest

from mmbench.errors import MMBenchError
from mmbench.metrics import captions
from mmbench.metrics.base import subset
from mmbench.metrics.captions import SUBSET_NOTE, CaptionScorer, aggregate, bleu_from_stats


def java(test):
    """Marks a test that runs the Java scorers (pytest -m java), skipped where there is no java."""
    skip = pytest.mark.skipif(shutil.which("java") is None, reason="the COCO caption scorers need Java")
    return pytest.mark.java(skip(test))


_SUBJECTS = ["a man", "a woman", "two dogs", "a cat", "a young boy", "an old man", "a group of people", "a bus"]
_VERBS = ["sitting on", "standing next to", "walking along", "riding", "looking at", "parked near", "lying on"]
_OBJECTS = ["a wooden bench", "the beach", "a busy street", "a red car", "a large table", "the grass", "a bed"]
_EXTRAS = ["", " in the rain", " at night", " with a dog", ", smiling", " under a tree", "."]


def _caption(rng: random.Random, scene: tuple[str, str, str]) -> str:
    subject, verb, obj = (x if rng.random() < 0.7 else rng.choice(pool)
                          for x, pool in zip(scene, (_SUBJECTS, _VERBS, _OBJECTS)))
    text = f"{subject} {verb} {obj}{rng.choice(_EXTRAS)}"
    return text.capitalize() if rng.random() < 0.5 else text


def _dataset(n: int, seed: int) -> tuple[dict[int, str], dict[int, list[str]]]:
    rng = random.Random(seed)
    scenes = {i: (rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)) for i in range(n)}
    ids = list(scenes)
    rng.shuffle(ids)  # unsorted ids: order is the references' order
    refs = {i: [_caption(rng, scenes[i]) for _ in range(5)] for i in ids}
    preds = {i: _caption(rng, scenes[i]) for i in ids}
    preds[ids[1]] = ""        # empty generation
    preds[ids[2]] = "... !"   # empty after PTB tokenisation
    return preds, refs


def _direct(preds: dict, refs: dict, meteor) -> dict:
    """pycocoevalcap the usual way: PTBTokenizer on both sides, then each scorer's compute_score."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": c} for c in refs[i]] for i in refs})
    res = tok.tokenize({i: [{"caption": preds[i]}] for i in refs})
    out = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"Bleu_{k + 1}": v for k, v in enumerate(bleu)})
    for name, scorer in (("METEOR", meteor), ("ROUGE_L", Rouge()), ("CIDEr-D", Cider())):
        score, items = scorer.compute_score(gts, res)
        out[name], out[name + "/items"] = score, np.asarray(items)
    return out


@pytest.fixture(scope="module")
def data() -> tuple[dict, dict]:
    return _dataset(40, seed=3)


@pytest.fixture(scope="module")
def reference_meteor():
    from pycocoevalcap.meteor.meteor import Meteor

    return Meteor()


@pytest.fixture(scope="module")
def scorer(reference_meteor):
    # Depends on reference_meteor so that its Java start-up (in the background) overlaps this one.
    with CaptionScorer() as s:
        yield s


@pytest.fixture(scope="module")
def result(scorer, data):
    return scorer.score(*data)


@pytest.fixture(scope="module")
def direct(data, reference_meteor):
    return _direct(*data, reference_meteor)


@java
@pytest.mark.parametrize("name", ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr-D"])
def test_corpus_values_equal_pycocoevalcap(result, direct, name: str) -> None:
    assert result.value(name) == pytest.approx(direct[name], abs=1e-9)
    assert 0.05 < result.value(name) < 10  # a realistic, non-degenerate score


@java
@pytest.mark.parametrize("name", ["METEOR", "ROUGE_L", "CIDEr-D"])
def test_per_item_values_equal_pycocoevalcap(result, direct, name: str) -> None:
    np.testing.assert_allclose(result.stats[name], direct[name + "/items"], rtol=0, atol=1e-9)


@java
def test_empty_predictions_score_like_the_official_pipeline(result, data) -> None:
    preds, refs = data
    empty = [k for k, i in enumerate(result.ids) if preds[i] in ("", "... !")]
    assert len(empty) == 2 and all(result.tokenized_predictions[result.ids[k]] == "" for k in empty)
    for name in ("METEOR", "ROUGE_L", "CIDEr-D"):
        assert result.stats[name][empty].tolist() == [0.0, 0.0]
    assert result.stats["bleu_testlen"][empty].tolist() == [0, 0]


@java
def test_bleu_aggregate_reproduces_corpus_bleu(scorer, result, direct, data, reference_meteor) -> None:
    full = aggregate(result.stats)
    for k in range(1, 5):
        assert abs(full[f"Bleu_{k}"] - direct[f"Bleu_{k}"]) <= 1e-12
    # A subset: aggregate over its items equals pycocoevalcap run on that subset alone.
    preds, refs = data
    idx = np.arange(0, len(result.ids), 3)
    sub_ids = [result.ids[k] for k in idx]
    sub = _direct({i: preds[i] for i in sub_ids}, {i: refs[i] for i in sub_ids}, reference_meteor)
    sub_agg = aggregate(subset(result.stats, idx))
    for k in range(1, 5):
        assert abs(sub_agg[f"Bleu_{k}"] - sub[f"Bleu_{k}"]) <= 1e-12
    # Exact corpus METEOR of the subset from its statistics, through the running scorer.
    assert scorer.meteor_corpus(result.stats["meteor_stats"][idx]) == pytest.approx(sub["METEOR"], abs=1e-9)
    # CIDEr-D: the subset's own document frequencies give another number (the caveat the variant states).
    assert abs(sub_agg["CIDEr-D"] - sub["CIDEr-D"]) > 1e-3
    assert "differs from aggregate()" in next(v.variant for v in result.values if v.name == "CIDEr-D")


def test_bleu_statistics_against_pycocoevalcap_without_java() -> None:
    # Already-tokenised captions with many length ties, so the 'closest' rule's tie-break (shorter) matters.
    from pycocoevalcap.bleu.bleu import Bleu

    rng = random.Random(11)
    words = "a b c d e f".split()
    gts = {i: [" ".join(rng.choices(words, k=rng.randint(1, 7))) for _ in range(rng.randint(1, 5))]
           for i in range(300)}
    res = {i: [" ".join(rng.choices(words, k=rng.randint(0, 7)))] for i in range(300)}
    ids = list(gts)
    corpus, stats = captions.bleu_item_stats(gts, res, ids)
    assert corpus == Bleu(4).compute_score(gts, res, verbose=0)[0]
    assert list(aggregate(stats).values())[:4] == corpus
    for idx in (np.arange(0, 300, 7), np.arange(150), np.array([4])):
        want, _ = Bleu(4).compute_score({ids[k]: gts[ids[k]] for k in idx}, {ids[k]: res[ids[k]] for k in idx},
                                        verbose=0)
        got = aggregate(subset(stats, idx))
        assert [got[f"Bleu_{n}"] for n in range(1, 5)] == want


@java
def test_meteor_aggregate_is_segment_mean_and_corpus_is_the_scorers(result, direct) -> None:
    meteor = next(v for v in result.values if v.name == "METEOR")
    assert aggregate(result.stats)["METEOR"] == pytest.approx(float(np.mean(direct["METEOR/items"])), abs=1e-12)
    assert meteor.extra["segment_mean"] == pytest.approx(aggregate(result.stats)["METEOR"], abs=1e-12)
    assert abs(meteor.value - meteor.extra["segment_mean"]) > 1e-4  # not the same quantity
    assert "mean of segment scores" in meteor.variant


def test_bleu_from_stats_hand_worked() -> None:
    # Two items: hypothesis lengths 4 and 2, closest reference lengths 5 and 2.
    stats = {"bleu_correct": np.array([[3, 1, 0, 0], [2, 1, 0, 0]]), "bleu_guess": np.array([[4, 3, 2, 1], [2, 1, 0, 0]]),
             "bleu_testlen": np.array([4, 2]), "bleu_reflen": np.array([5, 2])}
    got = bleu_from_stats(stats)
    brevity = np.exp(1 - 1 / ((6 + 1e-15) / (7 + 1e-9)))
    p1, p2 = (5 + 1e-15) / (6 + 1e-9), (2 + 1e-15) / (4 + 1e-9)
    assert got["Bleu_1"] == pytest.approx(p1 * brevity, rel=1e-14)
    assert got["Bleu_2"] == pytest.approx((p1 * p2) ** 0.5 * brevity, rel=1e-14)
    assert got["Bleu_4"] < 1e-5  # no 3- or 4-gram matched: only the smoothing constants remain


@java
def test_spice_reported_unavailable_not_zero(result, monkeypatch) -> None:
    spice = next(v for v in result.values if v.name == "SPICE")
    if captions.spice_unavailable_reason() is None:
        pytest.skip("the CoreNLP jars are installed here: SPICE is computed")
    assert spice.value is None and spice.unavailable.startswith("SPICE unavailable:")
    assert "stanford-corenlp-3.6.0.jar" in spice.unavailable and "SPICE" not in result.stats
    assert "SPICE" not in aggregate(result.stats)


def test_spice_never_constructed_without_jars(monkeypatch) -> None:
    import pycocoevalcap.spice.spice as spice_module

    monkeypatch.setattr(captions, "spice_unavailable_reason", lambda: "SPICE unavailable: test")
    monkeypatch.setattr(spice_module, "get_stanford_models", lambda: pytest.fail("would download CoreNLP"))
    monkeypatch.setattr(captions.shutil, "which", lambda _: "/usr/bin/java")
    s = CaptionScorer()
    value = s._spice({}, {}, [], {})
    assert value.value is None and value.unavailable == "SPICE unavailable: test"
    with pytest.raises(MMBenchError, match="SPICE unavailable"):
        CaptionScorer(spice=True)


def test_spice_scores_follow_ids_when_available(monkeypatch) -> None:
    import pycocoevalcap.spice.spice as spice_module

    class FakeSpice:  # Spice's contract: per-image scores in sorted-id order
        def compute_score(self, gts, res):
            return 0.25, [{"All": {"f": float(i) / 10}} for i in sorted(gts)]

    monkeypatch.setattr(captions, "spice_unavailable_reason", lambda: None)
    monkeypatch.setattr(spice_module, "Spice", FakeSpice)
    monkeypatch.setattr(captions.shutil, "which", lambda _: "/usr/bin/java")
    stats: dict = {}
    value = CaptionScorer()._spice({3: [""], 1: [""], 2: [""]}, {}, [3, 1, 2], stats)
    assert value.value == 0.25 and value.unavailable is None
    assert stats["SPICE"].tolist() == [0.3, 0.1, 0.2]


@java
def test_line_breaks_do_not_shift_captions(scorer) -> None:
    refs = {"a": ["a dog running on the grass"], "b": ["a cat on a bed"]}
    res = scorer.score({"a": "a dog\rrunning", "b": "a cat\u2028on a bed"}, refs)
    assert res.tokenized_predictions == {"a": "a dog running", "b": "a cat on a bed"}


def test_mismatched_ids_name_the_first_offender(monkeypatch) -> None:
    monkeypatch.setattr(captions.shutil, "which", lambda _: "/usr/bin/java")
    s = CaptionScorer()
    with pytest.raises(MMBenchError, match="prediction id 7 has no references"):
        s.score({1: "x", 7: "y", 8: "z"}, {1: ["x"]})
    with pytest.raises(MMBenchError, match="reference id 2 has no prediction"):
        s.score({1: "x"}, {1: ["x"], 2: ["y"]})
    with pytest.raises(MMBenchError, match="id 1 must be a non-empty list"):
        s.score({1: "x"}, {1: []})


def test_missing_java_is_a_user_error(monkeypatch) -> None:
    monkeypatch.setattr(captions.shutil, "which", lambda _: None)
    with pytest.raises(MMBenchError, match="java not found"):
        CaptionScorer()


@java
def test_meteor_process_is_reused_then_closed(scorer, result, data) -> None:
    # Last in the file: it closes the module's scorer.
    preds, refs = data
    pid = scorer.meteor_pid
    few = list(refs)[:4]
    again = scorer.score({i: preds[i] for i in few}, {i: refs[i] for i in few}, is_subset=True)
    assert scorer.meteor_pid == pid is not None
    assert again.stats["METEOR"].tolist() == result.stats["METEOR"][:4].tolist()
    assert result.notes == [] and again.notes == [SUBSET_NOTE]
    process = scorer._meteor.meteor_p
    scorer.close()
    assert process.poll() is not None and scorer.meteor_pid is None
