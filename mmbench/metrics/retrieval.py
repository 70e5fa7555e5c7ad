"""Image-text retrieval recall@k, as defined in the CLIP paper (and CLIP_benchmark).

- text->image R@k: the share of captions whose own image is among the k images most similar to it;
- image->text R@k: the share of images with *at least one* of their captions among the k most similar texts.
Similarity is the cosine of L2-normalised embeddings, computed in float64. Ties are broken by index (a
stable sort), so the result is the same on every platform and at every batch size of the scorer.
"""

from __future__ import annotations

import numpy as np

from dataclasses import dataclass
from typing import ClassVar

from mmbench.errors import MMBenchError
from mmbench.metrics.api import EMBEDDINGS, Metric, MetricReport
from mmbench.metrics.base import ItemStats, MetricValue

DEFAULT_KS = (1, 5, 10)
_CHUNK = 1024  # queries per block: bounds memory at n_gallery x 1024 float64


def normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)


def _stable_rank(sim: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rank (0 = best) of column ``target[r]`` in each row r, ties going to the lower index."""
    rows = np.arange(len(sim))
    value = sim[rows, target][:, None]
    cols = np.arange(sim.shape[1])[None, :]
    return (sim > value).sum(1) + ((sim == value) & (cols < target[:, None])).sum(1)


def ranks(image_emb: np.ndarray, text_emb: np.ndarray, text_to_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rank of each caption's image among all images, rank of each image's best caption among all texts)."""
    img, txt = normalize(image_emb), normalize(text_emb)
    t2i = np.asarray(text_to_image, dtype=np.int64)
    t2i_rank = np.concatenate([_stable_rank(txt[s:s + _CHUNK] @ img.T, t2i[s:s + _CHUNK])
                               for s in range(0, len(txt), _CHUNK)]) if len(txt) else np.zeros(0, np.int64)
    # For each image, its best caption (highest similarity, lowest index on a tie) has its smallest rank.
    i2t_rank = np.empty(len(img), dtype=np.int64)
    owner = t2i[None, :]
    for s in range(0, len(img), _CHUNK):
        sim = img[s:s + _CHUNK] @ txt.T
        mine = owner == np.arange(s, s + len(sim))[:, None]
        masked = np.where(mine, sim, -np.inf)
        best = masked.argmax(axis=1)  # argmax returns the lowest index among equal maxima
        i2t_rank[s:s + len(sim)] = _stable_rank(sim, best)
    return t2i_rank, i2t_rank


def item_stats(t2i_rank: np.ndarray, i2t_rank: np.ndarray, text_to_image: np.ndarray,
               ks=DEFAULT_KS) -> dict[str, np.ndarray]:
    """Per-image statistics (images are the items): its best-caption rank and, per k, how many of its
    captions found it in the top k."""
    n_img = len(i2t_rank)
    t2i = np.asarray(text_to_image, dtype=np.int64)
    stats = {"i2t_rank": i2t_rank.astype(np.int64),
             "n_captions": np.bincount(t2i, minlength=n_img).astype(np.int64)}
    for k in ks:
        stats[f"t2i_hits@{k}"] = np.bincount(t2i, weights=(t2i_rank < k), minlength=n_img)
    return stats


def aggregate(stats: ItemStats) -> dict[str, float]:
    """Recall@k from per-image statistics (any subset of images, e.g. a bootstrap resample)."""
    out: dict[str, float] = {}
    n_caps = float(np.sum(stats["n_captions"]))
    for key in sorted(k for k in stats if k.startswith("t2i_hits@")):
        k = int(key.split("@")[1])
        out[f"t2i_R@{k}"] = float(np.sum(stats[key]) / n_caps) if n_caps else float("nan")
        out[f"i2t_R@{k}"] = float(np.mean(np.asarray(stats["i2t_rank"]) < k))
    return out


def score(image_emb: np.ndarray, text_emb: np.ndarray, text_to_image, ks=DEFAULT_KS,
          variant: str = "") -> tuple[list[MetricValue], dict]:
    """Recall@k in both directions; returns metric values and per-image statistics."""
    image_emb, text_emb = np.asarray(image_emb), np.asarray(text_emb)
    t2i = np.asarray(text_to_image)
    if not ks or any(isinstance(k, bool) or int(k) != k or k < 1 for k in ks):
        raise MMBenchError(f"retrieval: recall@k needs positive integer ks; got {list(ks)}")
    if image_emb.ndim != 2 or text_emb.ndim != 2 or image_emb.shape[1] != text_emb.shape[1]:
        raise MMBenchError(f"retrieval: embeddings must be [n, d] with the same d; got images "
                           f"{list(image_emb.shape)} and texts {list(text_emb.shape)}")
    if len(image_emb) == 0 or len(text_emb) == 0:
        raise MMBenchError(f"retrieval: nothing to score ({len(image_emb)} images, {len(text_emb)} texts)")
    for what, emb in (("image", image_emb), ("text", text_emb)):
        bad = int((~np.isfinite(emb)).any(axis=1).sum()) if emb.dtype.kind in "fc" else 0
        if bad:  # NaN similarities rank as ties: a NaN gallery would score recall 1.0
            raise MMBenchError(f"retrieval: {bad} {what} embedding(s) contain NaN or infinite values; a model that "
                               f"returns them is broken, and no recall can be computed from them")
    if t2i.shape != (len(text_emb),):
        raise MMBenchError(f"retrieval: the text->image index needs one entry per text ({len(text_emb)}); "
                           f"got {t2i.size}")
    if len(t2i) and (t2i.min() < 0 or t2i.max() >= len(image_emb)):
        raise MMBenchError(f"retrieval: text->image index values must be in [0, {len(image_emb) - 1}]; found "
                           f"{int(t2i.min())}..{int(t2i.max())}")
    t2i_rank, i2t_rank = ranks(image_emb, text_emb, t2i)
    stats = item_stats(t2i_rank, i2t_rank, t2i, ks)
    values = aggregate(stats)
    suffix = f"; {variant}" if variant else ""
    metrics = []
    for k in ks:
        metrics.append(MetricValue(f"t2i_R@{k}", values[f"t2i_R@{k}"],
                                   f"text->image recall@{k} over {len(t2i)} captions x {len(image_emb)} "
                                   f"images (CLIP-paper definition, cosine){suffix}"))
    for k in ks:
        metrics.append(MetricValue(f"i2t_R@{k}", values[f"i2t_R@{k}"],
                                   f"image->text recall@{k}: hit when any of the image's captions is in the "
                                   f"top {k} of {len(t2i)} (CLIP-paper definition){suffix}"))
    return metrics, {"stats": stats, "t2i_rank": t2i_rank, "i2t_rank": i2t_rank}


@dataclass(frozen=True)
class RecallOptions:
    ks: tuple[int, ...] = DEFAULT_KS


class RetrievalRecall(Metric):
    """Recall@k both ways over a gallery of images and their captions (the items are the images).

    Predictions: per image ``{"image_embedding", "text_embeddings"}`` (None: a failed image, left out of the
    gallery with its captions; the statistics then cover the kept images only, see ``MetricReport.kept``).
    """

    name: ClassVar[str] = "recall_at_k"
    values: ClassVar[tuple[str, ...]] = ("t2i_R@{k}", "i2t_R@{k}")
    headline: ClassVar[tuple[str, ...]] = ("t2i_R@5", "t2i_R@1")
    inputs: ClassVar[str] = EMBEDDINGS
    description: ClassVar[str] = "image<->text recall@k, CLIP-paper definition (cosine, ties by index)"
    Options: ClassVar[type] = RecallOptions

    def check_options(self) -> None:
        if not self.options.ks or any(k < 1 for k in self.options.ks):
            raise MMBenchError(f"metric 'recall_at_k': ks {list(self.options.ks)} must be positive integers")

    def score(self, predictions: list, targets: list) -> MetricReport:
        def usable(p: dict | None) -> bool:
            return p is not None and bool(np.isfinite(p["image_embedding"]).all()) and \
                bool(np.isfinite(p["text_embeddings"]).all()) and len(p["text_embeddings"]) > 0

        kept = [i for i, p in enumerate(predictions) if usable(p)]
        non_finite = sum(1 for p in predictions if p is not None and not usable(p))
        if not kept:
            raise MMBenchError("metric 'recall_at_k': no image has a finite embedding and captions; nothing to score")
        images = np.stack([predictions[i]["image_embedding"] for i in kept])
        texts = np.concatenate([predictions[i]["text_embeddings"] for i in kept])
        t2i = np.concatenate([np.full(len(predictions[i]["text_embeddings"]), j) for j, i in enumerate(kept)])
        n_failed = len(predictions) - len(kept)
        variant = "failed images and their captions are left out of the gallery" if n_failed else ""
        values, extra = score(images, texts, t2i, self.options.ks, variant)
        notes = [f"{n_failed} image(s) failed or had NaN/infinite embeddings and were left out of the gallery"
                 f"{f' ({non_finite} with non-finite embeddings from the model)' if non_finite else ''}"] \
            if n_failed else []
        ranks_t2i, per_t2i, start = extra["t2i_rank"], [], 0
        for i in kept:
            n = len(predictions[i]["text_embeddings"])
            per_t2i.append(ranks_t2i[start:start + n].tolist())
            start += n
        per_item = {"image_to_text_best_rank": [int(r) for r in extra["i2t_rank"]], "text_to_image_ranks": per_t2i}
        return MetricReport(values, extra["stats"], per_item, notes, kept=kept)

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        return aggregate(stats)
