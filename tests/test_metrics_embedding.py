"""Classification and retrieval metrics against hand-worked cases and brute-force references."""

from __future__ import annotations

import numpy as np
import pytest

from mmbench.errors import MMBenchError
from mmbench.metrics import classification, retrieval
from mmbench.metrics.base import subset


def values(metrics):
    return {m.name: m.value for m in metrics}


# -- classification ------------------------------------------------------------------------------------
def test_classification_hand_worked():
    logits = np.array([[0.9, 0.1, 0.0, 0.0, 0.0, 0.0],   # label 0: top-1 hit
                       [0.5, 0.4, 0.3, 0.2, 0.1, 0.0],   # label 5: last -> miss top-5
                       [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],   # label 1: rank 5 -> top-5 hit, top-1 miss
                       [np.nan] * 6])                    # failed item, label 0: a miss
    labels = np.array([0, 5, 1, 0])
    v = values(classification.score(logits, labels)[0])
    assert v["top1"] == 0.25
    assert v["top5"] == 0.5
    # per class recall: class 0 -> 1/2 (one hit, one failed), class 1 -> 0, class 5 -> 0 -> mean 1/6
    assert v["mean_per_class_recall"] == pytest.approx(1 / 6, abs=1e-15)


def test_classification_ties_broken_by_class_index():
    logits = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    assert values(classification.score(logits, np.array([0, 1]))[0])["top1"] == 0.5


def test_classification_brute_force():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(300, 20)), rng.integers(0, 20, 300)
    v = values(classification.score(logits, labels)[0])
    top1 = np.mean([np.argmax(row) == lab for row, lab in zip(logits, labels)])
    top5 = np.mean([lab in sorted(range(20), key=lambda c: -row[c])[:5] for row, lab in zip(logits, labels)])
    recalls = [np.mean([np.argmax(logits[i]) == c for i in range(300) if labels[i] == c]) for c in range(20)]
    assert v["top1"] == top1 and v["top5"] == top5
    assert v["mean_per_class_recall"] == pytest.approx(np.mean(recalls), abs=1e-15)


def test_classification_aggregate_on_subset_equals_direct():
    rng = np.random.default_rng(1)
    logits, labels = rng.normal(size=(100, 7)), rng.integers(0, 7, 100)
    _, extra = classification.score(logits, labels)
    idx = rng.integers(0, 100, 60)
    direct = values(classification.score(logits[idx], labels[idx])[0])
    assert classification.aggregate(subset(extra["stats"], idx)) == pytest.approx(direct, abs=1e-15)


def test_multilabel_map_matches_hand_computation():
    scores = np.array([[0.9, 0.2], [0.8, 0.7], [0.1, 0.6], [0.3, 0.1]])
    targets = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    # class 0: ranking 0.9(+) 0.8(-) 0.3(-) 0.1(+): AP = (1/1 + 2/4) / 2 = 0.75
    # class 1: ranking 0.7(+) 0.6(+) 0.2(-) 0.1(-): AP = 1
    metrics, _ = classification.score_multilabel(scores, targets)
    assert metrics[0].value == pytest.approx(0.875, abs=1e-12)


def test_classification_shape_errors():
    with pytest.raises(MMBenchError, match="logits must be"):
        classification.score(np.zeros((3, 4)), np.zeros(2, dtype=int))
    with pytest.raises(MMBenchError, match="class indices"):
        classification.score(np.zeros((2, 4)), np.array([0, 4]))


# -- retrieval -----------------------------------------------------------------------------------------
def brute_force_recall(img, txt, t2i, k):
    """Straight from the CLIP-paper definition, one query at a time."""
    img = img / np.linalg.norm(img, axis=1, keepdims=True)
    txt = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    sim = txt @ img.T
    t2i_hits = [t2i[t] in sorted(range(len(img)), key=lambda i: (-sim[t, i], i))[:k] for t in range(len(txt))]
    i2t_hits = []
    for i in range(len(img)):
        top = sorted(range(len(txt)), key=lambda t: (-sim[t, i], t))[:k]
        i2t_hits.append(any(t2i[t] == i for t in top))
    return np.mean(t2i_hits), np.mean(i2t_hits)


def test_retrieval_hand_worked():
    # 2-D embeddings: image 0 at 0 degrees, image 1 at 90 degrees.
    img = np.array([[1.0, 0.0], [0.0, 1.0]])
    txt = np.array([[1.0, 0.1],    # caption of image 0, close to image 0 -> hit
                    [1.0, 0.2],    # caption of image 1, but close to image 0 -> t2i miss at k=1
                    [0.1, 1.0]])   # caption of image 1, close to image 1 -> hit
    v = values(retrieval.score(img, txt, [0, 1, 1], ks=(1, 2))[0])
    assert v["t2i_R@1"] == pytest.approx(2 / 3) and v["t2i_R@2"] == 1.0
    # image 0: most similar text is text 0 (its own) -> hit; image 1: text 2 (its own) -> hit
    assert v["i2t_R@1"] == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrieval_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_img, caps = 40, 3
    img = rng.normal(size=(n_img, 8))
    t2i = np.repeat(np.arange(n_img), caps)
    txt = img[t2i] + rng.normal(scale=1.5, size=(len(t2i), 8))
    v = values(retrieval.score(img, txt, t2i, ks=(1, 5, 10))[0])
    for k in (1, 5, 10):
        t, i = brute_force_recall(img, txt, t2i, k)
        assert v[f"t2i_R@{k}"] == pytest.approx(t, abs=1e-15)
        assert v[f"i2t_R@{k}"] == pytest.approx(i, abs=1e-15)


def test_retrieval_chunking_and_ties_are_stable(monkeypatch):
    rng = np.random.default_rng(3)
    img = rng.integers(0, 3, size=(30, 4)).astype(float) + 0.1  # many exact ties
    t2i = np.repeat(np.arange(30), 2)
    txt = rng.integers(0, 3, size=(60, 4)).astype(float) + 0.1
    full = values(retrieval.score(img, txt, t2i)[0])
    monkeypatch.setattr(retrieval, "_CHUNK", 7)
    assert values(retrieval.score(img, txt, t2i)[0]) == full
    for k in (1, 5, 10):
        t, i = brute_force_recall(img, txt, t2i, k)
        assert full[f"t2i_R@{k}"] == pytest.approx(t, abs=1e-15)
        assert full[f"i2t_R@{k}"] == pytest.approx(i, abs=1e-15)


def test_retrieval_aggregate_resample_and_errors():
    rng = np.random.default_rng(4)
    img = rng.normal(size=(20, 5))
    t2i = np.repeat(np.arange(20), 2)
    txt = img[t2i] + rng.normal(size=(40, 5))
    metrics, extra = retrieval.score(img, txt, t2i)
    assert retrieval.aggregate(extra["stats"]) == pytest.approx(values(metrics), abs=1e-15)
    with pytest.raises(MMBenchError, match="one entry per text"):
        retrieval.score(img, txt, t2i[:-1])
    with pytest.raises(MMBenchError, match="same d"):
        retrieval.score(img, txt[:, :3], t2i)
