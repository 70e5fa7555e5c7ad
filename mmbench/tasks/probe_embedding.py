"""Embedding-space probes for dual encoders (``probe:<retrieval task>``): the modality gap (Liang et al.
2022), alignment and uniformity (Wang & Isola 2020), and retrieval with shuffled image-caption pairings as
the floor a model that ignores content would reach, giving image reliance with a CI and a verdict.

- modality gap: the Euclidean distance between the centroids of the L2-normalised image and text embeddings;
- alignment: the mean squared distance between the normalised embeddings of matching image-caption pairs
  (Wang & Isola's alpha = 2; lower is better);
- uniformity: log of the mean of exp(-2 ||u - v||^2) over pairs of distinct normalised embeddings, per
  modality (Wang & Isola's t = 2; lower is more uniform);
- shuffled floor: recall@k when each image's captions are re-assigned to another image (a seeded
  derangement): the real pairing's margin over it is the image reliance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np

from mmbench.capabilities import Capability
from mmbench.errors import MMBenchError
from mmbench.metrics import reliance as rel
from mmbench.metrics import retrieval
from mmbench.metrics.base import MetricValue
from mmbench.tasks.base import ScoreReport
from mmbench.tasks.probe import derangement
from mmbench.tasks.wrapping import WrappingTask, condition_stats


@dataclass(frozen=True)
class EmbeddingProbeConfig:
    wraps: Mapping[str, Any]
    metric: str = "t2i_R@5"
    resamples: int = 1000


def alignment(img: np.ndarray, txt: np.ndarray, t2i: np.ndarray) -> float:
    return float(np.mean(np.sum((img[t2i] - txt) ** 2, axis=1)))


def uniformity(x: np.ndarray, max_n: int = 2000) -> float:
    x = x[:max_n]  # O(n^2): a fixed prefix keeps it fast and deterministic
    d2 = np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
    off = ~np.eye(len(x), dtype=bool)
    return float(np.log(np.mean(np.exp(-2.0 * d2[off]))))


class EmbeddingProbe(WrappingTask):
    """The wrapped retrieval task's own items and outputs (its cache entries), scored twice: with the true
    pairing and with captions re-assigned to other images."""

    kind: ClassVar[str] = "embedding-probe"
    requires: ClassVar[Capability] = Capability.EMBED
    Config: ClassVar[type] = EmbeddingProbeConfig
    default_batch_size: ClassVar[int] = 64
    input_bound: ClassVar[bool] = True  # image decoding and resizing cost as much as a small encoder

    def __init__(self, spec, ctx) -> None:
        super().__init__(spec, ctx)
        if self.inner.kind not in ("retrieval", "video-retrieval"):
            raise MMBenchError(f"task {self.name!r}: the embedding probe wraps a retrieval task (images or videos "
                               f"with captions); {self.inner.name!r} is {self.inner.kind!r}")

    def output_config(self) -> dict:
        return self.inner.output_config()  # same per-item outputs as the wrapped task: its cache entries match

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def score(self, items: list[dict], outputs: list[dict | None]) -> ScoreReport:
        kept = [o for o in outputs if o is not None]
        if len(kept) < 2:
            raise MMBenchError(f"task {self.name!r}: fewer than 2 images embedded; nothing to probe")
        img = retrieval.normalize(np.stack([o["image_embedding"] for o in kept]))
        txt = retrieval.normalize(np.concatenate([o["text_embeddings"] for o in kept]))
        t2i = np.concatenate([np.full(len(o["text_embeddings"]), j) for j, o in enumerate(kept)])
        perm = derangement(len(kept), self.ctx.seed)
        _, real_extra = retrieval.score(img, txt, t2i)
        _, shuf_extra = retrieval.score(img, txt, perm[t2i])
        real_stats, shuf_stats = real_extra["stats"], shuf_extra["stats"]
        metric = self.config.metric
        real_v, shuf_v = retrieval.aggregate(real_stats)[metric], retrieval.aggregate(shuf_stats)[metric]
        per_cond = {"real": real_stats, "shuffled": shuf_stats}
        absolute, relative, _ = rel.reliance(real_v, {"shuffled": shuf_v})
        lo, hi, _ = rel.reliance_interval(per_cond, retrieval.aggregate, metric, ["shuffled"], len(kept),
                                          resamples=self.config.resamples, seed=self.ctx.seed)
        word = rel.verdict(lo, hi)
        extra = {"ci95": [lo, hi], "verdict": word, "resamples": self.config.resamples, "seed": self.ctx.seed}
        gap = float(np.linalg.norm(img.mean(0) - txt.mean(0)))
        metrics = [
            MetricValue(f"{metric}[real]", real_v, f"{self.inner.name} {metric} with the true pairing"),
            MetricValue(f"{metric}[shuffled]", shuf_v, f"{metric} with captions re-assigned to other images "
                                                       f"(seeded derangement): the content-blind floor"),
            MetricValue("image_reliance", absolute, f"{metric}(real) - {metric}(shuffled)", extra=extra),
            MetricValue("relative_image_reliance", relative, f"image_reliance / {metric}(real); {rel.VERDICT_RULE}",
                        extra=extra),
            MetricValue("modality_gap", gap, "||mean(image) - mean(text)|| of L2-normalised embeddings "
                                             "(Liang et al. 2022)", higher_is_better=False),
            MetricValue("alignment", alignment(img, txt, t2i), "mean ||f(image) - g(caption)||^2 over matching "
                                                               "pairs, normalised (Wang & Isola 2020, alpha=2)",
                        higher_is_better=False),
            MetricValue("uniformity_image", uniformity(img), "log mean exp(-2||u-v||^2) over distinct images "
                                                             "(Wang & Isola 2020, t=2; first 2000)",
                        higher_is_better=False),
            MetricValue("uniformity_text", uniformity(txt), "log mean exp(-2||u-v||^2) over distinct captions "
                                                            "(Wang & Isola 2020, t=2; first 2000)",
                        higher_is_better=False),
        ]
        stats = condition_stats(per_cond, aggregator="recall_at_k", metric=metric, higher_is_better=True, worst=0.0)
        note = (f"image verdict: {word} (relative image reliance {relative:.3f}, 95% CI [{lo:.3f}, {hi:.3f}], "
                f"{self.config.resamples} paired resamples)")
        ids = [it["id"] for it, o in zip(items, outputs) if o is not None]
        return ScoreReport(metrics=metrics, item_ids=ids, stats=stats, aggregator="kind:embedding-probe", notes=[note])
