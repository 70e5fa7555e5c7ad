"""Zero-shot classification metrics from logits: top-1, top-5, mean per-class recall, multilabel mAP.

A row of NaN logits is a failed item (its image could not be decoded): it counts as a miss, so a corrupt
file can never raise the score, and the number of such rows is reported.
"""

from __future__ import annotations

import numpy as np

from typing import ClassVar

from mmbench.errors import MMBenchError
from mmbench.metrics.api import CLASS_SCORES, Metric, MetricReport
from mmbench.metrics.base import ItemStats, MetricValue


def topk_correct(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Per item: 1.0 when the label is among the k highest logits. Ties are broken by class index
    (a stable sort), so the result does not depend on the platform."""
    order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    hit = (order == labels[:, None]).any(axis=1)
    failed = np.isnan(logits).any(axis=1)
    return (hit & ~failed).astype(np.float64)


def mean_per_class_recall(top1: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """The mean over classes *present in the data* of each class's top-1 recall (balanced accuracy)."""
    counts = np.bincount(labels, minlength=n_classes)
    hits = np.bincount(labels, weights=top1, minlength=n_classes)
    present = counts > 0
    return float(np.mean(hits[present] / counts[present]))


def multilabel_map(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes with at least one positive of the average precision (torchmetrics' definition)."""
    import torch
    from torchmetrics.functional.classification import multilabel_average_precision

    scores = np.nan_to_num(logits, nan=-np.inf)
    present = targets.sum(axis=0) > 0
    ap = multilabel_average_precision(torch.from_numpy(scores[:, present]).double(),
                                      torch.from_numpy(targets[:, present]).long(),
                                      num_labels=int(present.sum()), average="macro")
    return float(ap)


def item_stats(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per-item statistics: top-1/top-5 hits and the label (for per-class recall on a resample)."""
    n_classes = logits.shape[1]
    stats = {"top1": topk_correct(logits, labels, 1), "label": labels.astype(np.int64),
             "n_classes": np.full(len(labels), n_classes, dtype=np.int64)}
    if n_classes >= 5:
        stats["top5"] = topk_correct(logits, labels, 5)
    return stats


def aggregate(stats: ItemStats) -> dict[str, float]:
    """Corpus values from per-item statistics (any subset of items, e.g. a bootstrap resample)."""
    if "targets" in stats:  # multilabel: the per-item statistics are the scores themselves
        return {"mAP": multilabel_map(np.asarray(stats["scores"]), np.asarray(stats["targets"]))}
    out = {"top1": float(np.mean(stats["top1"]))}
    if "top5" in stats:
        out["top5"] = float(np.mean(stats["top5"]))
    n_classes = int(stats["n_classes"][0]) if len(stats["n_classes"]) else 0
    out["mean_per_class_recall"] = mean_per_class_recall(np.asarray(stats["top1"]),
                                                         np.asarray(stats["label"]), n_classes)
    return out


def score(logits: np.ndarray, labels: np.ndarray | list, variant: str = "") -> tuple[list[MetricValue], dict]:
    """All single-label metrics for ``logits [n, classes]`` and integer ``labels [n]``."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if logits.ndim == 2 and (len(logits) == 0 or logits.shape[1] == 0):
        raise MMBenchError(f"classification: nothing to score (logits of shape {list(logits.shape)})")
    if logits.ndim != 2 or labels.ndim != 1 or len(labels) != len(logits):
        raise MMBenchError(f"classification: logits must be [n, classes] and labels [n]; got logits "
                           f"{list(logits.shape)} and labels {list(labels.shape)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise MMBenchError(f"classification: labels must be class indices in [0, {logits.shape[1] - 1}]; "
                           f"found {int(labels.min())}..{int(labels.max())}")
    stats = item_stats(logits, labels)
    values = aggregate(stats)
    n_failed = int(np.isnan(logits).any(axis=1).sum())
    suffix = f"; {variant}" if variant else ""
    metrics = [MetricValue("top1", values["top1"], f"top-1 accuracy over {len(labels)} items{suffix}")]
    if "top5" in values:
        metrics.append(MetricValue("top5", values["top5"], f"top-5 accuracy over {len(labels)} items{suffix}"))
    metrics.append(MetricValue("mean_per_class_recall", values["mean_per_class_recall"],
                               f"mean over classes of top-1 recall (balanced accuracy){suffix}"))
    return metrics, {"stats": stats, "n_failed": n_failed}


def score_multilabel(logits: np.ndarray, targets: np.ndarray, variant: str = "") -> tuple[list[MetricValue], dict]:
    """Multilabel data (``targets [n, classes]`` of 0/1): macro mAP over classes with a positive."""
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    if logits.shape != targets.shape:
        raise MMBenchError(f"classification: multilabel logits {list(logits.shape)} and targets "
                           f"{list(targets.shape)} must have the same shape")
    stats = {"scores": logits, "targets": targets}
    suffix = f"; {variant}" if variant else ""
    metric = MetricValue("mAP", aggregate(stats)["mAP"],
                         f"macro average precision over {int((targets.sum(0) > 0).sum())} classes with a "
                         f"positive (torchmetrics){suffix}")
    return [metric], {"stats": stats, "n_failed": int(np.isnan(logits).any(axis=1).sum())}


class Classification(Metric):
    """Top-1, top-5 and mean per-class recall for integer labels; macro mAP when labels are lists (multilabel).

    Predictions are rows of class scores (NaN rows: failed items, counted as misses); targets are labels.
    The context's ``input_note`` (how the scores were made, e.g. the prompt ensemble) ends every variant.
    """

    name: ClassVar[str] = "classification"
    values: ClassVar[tuple[str, ...]] = ("top1", "top5", "mean_per_class_recall", "mAP")
    headline: ClassVar[tuple[str, ...]] = ("top1", "mAP")
    inputs: ClassVar[str] = CLASS_SCORES
    description: ClassVar[str] = "top-1/top-5 accuracy and mean per-class recall; multilabel: macro mAP (torchmetrics)"

    def score(self, predictions: list, targets: list) -> MetricReport:
        logits = np.asarray(predictions, dtype=np.float64)
        if logits.ndim != 2:
            raise MMBenchError(f"metric 'classification': predictions must be rows of class scores; got shape "
                               f"{list(logits.shape)}")
        note = self.context.input_note
        for i, t in enumerate(targets):
            labels = t if isinstance(t, (list, tuple)) else [t]
            if not labels or not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) and
                                      0 <= x < logits.shape[1] for x in labels):
                raise MMBenchError(f"metric 'classification': item {i} has label {t!r}; expected a class index in "
                                   f"[0, {logits.shape[1] - 1}] (or a list of them)")
        if any(isinstance(t, (list, tuple)) for t in targets):
            multi = np.zeros_like(logits, dtype=np.int64)
            for i, lab in enumerate(targets):
                multi[i, list(lab if isinstance(lab, (list, tuple)) else [lab])] = 1
            values, extra = score_multilabel(logits, multi, note)
        else:
            values, extra = score(logits, np.asarray(targets, dtype=np.int64), note)
        notes = [f"{extra['n_failed']} item(s) without finite class scores (failed, or NaN embeddings from the "
                 f"model) count as misses"] if extra["n_failed"] else []
        return MetricReport(values, extra["stats"], {"correct": [bool(v) for v in extra["stats"].get("top1", [])]},
                            notes)

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        return aggregate(stats)
