"""Named metrics of generated images (``inputs: generated-images``): fid, kid, clip_score, precision_recall.

Predictions are one mapping per prompt: ``features`` (the generated image's feature row; None when the
generation failed), and for CLIP-score ``clip_image``/``clip_text`` embeddings and ``clip_truncated``. The
reference set's features come in the metric context (``context.reference``: ``features``, ``extractor``
(its variant string) and, for CLIP-score, ``clip_model`` and ``text_max_length``/``text_prefix``). The
formulas live in :mod:`mmbench.metrics.image_generation`; the reference set goes into the statistics as
``const:`` entries so a bootstrap over generated images keeps it fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.metrics import image_generation as ig
from mmbench.metrics.api import GENERATED_IMAGES, Metric, MetricReport
from mmbench.metrics.base import ItemStats, MetricValue


def _features(predictions: list, dim: int) -> tuple[np.ndarray, list[int]]:
    """All rows (NaN for failed generations) and the indices of the generations that did not fail."""
    feats = np.full((len(predictions), dim), np.nan)
    ok = []
    for i, p in enumerate(predictions):
        if p is not None and p.get("features") is not None:
            feats[i] = p["features"]
            ok.append(i)
    return feats, ok


class _ImageMetric(Metric):
    inputs: ClassVar[str] = GENERATED_IMAGES
    higher: ClassVar[bool] = False

    @property
    def real(self) -> np.ndarray:
        ref = self.context.reference or {}
        if ref.get("features") is None:
            raise MMBenchError(f"metric {self.name!r} needs the reference set's features (context.reference)")
        return np.asarray(ref["features"], dtype=np.float64)

    @property
    def extractor(self) -> str:
        return str((self.context.reference or {}).get("extractor", "unspecified"))

    def unavailable(self, name: str, reason: str) -> MetricValue:
        return MetricValue(name, None, f"{name}/features={self.extractor}", self.higher, unavailable=reason)

    def check_counts(self, n_generated: int, n_reference: int) -> None:
        """Refuse, before anything is generated, sample counts the metric cannot work with."""


@dataclass(frozen=True)
class FIDOptions:
    method: str = "eigh"  # eigh (exact, fast) | sqrtm (pytorch-fid's)


class FID(_ImageMetric):
    name: ClassVar[str] = "fid"
    headline: ClassVar[tuple[str, ...]] = ("fid",)
    description: ClassVar[str] = "Frechet distance between generated and reference feature sets (pytorch-fid formula)"
    Options: ClassVar[type] = FIDOptions

    def check_options(self) -> None:
        if self.options.method not in ("eigh", "sqrtm"):
            raise MMBenchError(f"metric 'fid': method {self.options.method!r} is not eigh or sqrtm")

    def score(self, predictions: list, targets: list) -> MetricReport:
        real = self.real
        feats, ok = _features(predictions, real.shape[1])
        mu_r, sigma_r = ig.feature_stats(real)
        stats = {"features": feats.astype(np.float32), ig.CONST_REAL_MU: mu_r, ig.CONST_REAL_SIGMA: sigma_r,
                 ig.CONST_FID_METHOD: np.asarray(self.options.method)}
        notes = []
        if len(ok) >= 2:
            mu_f, sigma_f = ig.feature_stats(feats[ok])
            value = ig.fid_from_stats(mu_r, sigma_r, mu_f, sigma_f, n_real=real.shape[0], n_fake=len(ok),
                                      method=self.options.method, features=self.extractor)  # type: ignore[arg-type]
            if "warning" in value.extra:
                notes.append(str(value.extra["warning"]))
        else:
            value = self.unavailable("fid", f"only {len(ok)} image(s) were generated; FID needs 2")
        return MetricReport([value], stats, {}, notes)

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        return ig.aggregate_fid(stats)


@dataclass(frozen=True)
class KIDOptions:
    subsets: int = 100
    subset_size: int = 1000
    seed: int = 2020


class KID(_ImageMetric):
    name: ClassVar[str] = "kid"
    description: ClassVar[str] = "kernel inception distance (unbiased polynomial MMD^2 over subsets, torch-fidelity draws)"
    Options: ClassVar[type] = KIDOptions

    def check_options(self) -> None:
        if self.options.subsets < 1 or self.options.subset_size < 2:
            raise MMBenchError(f"metric 'kid': subsets ({self.options.subsets}) must be >= 1 and subset_size "
                               f"({self.options.subset_size}) >= 2")

    def check_counts(self, n_generated: int, n_reference: int) -> None:
        if self.options.subset_size > min(n_generated, n_reference):
            raise MMBenchError(f"metric 'kid': subset_size {self.options.subset_size} exceeds the sample count "
                               f"({n_generated} prompts, {n_reference} reference images); set "
                               f"subset_size: {min(n_generated, n_reference)} or smaller in the task file")

    def score(self, predictions: list, targets: list) -> MetricReport:
        real, o = self.real, self.options
        feats, ok = _features(predictions, real.shape[1])
        stats = {"features": feats.astype(np.float32), ig.CONST_REAL_FEATURES: real.astype(np.float32),
                 ig.CONST_KID: np.asarray([o.subsets, o.subset_size, o.seed])}
        if o.subset_size <= min(len(ok), real.shape[0]):
            value = ig.kid_from_features(real, feats[ok], num_subsets=o.subsets, subset_size=o.subset_size,
                                         seed=o.seed, features=self.extractor)
        else:
            value = self.unavailable("kid", f"subset_size {o.subset_size} exceeds the {len(ok)} generated images "
                                            f"that did not fail")
        return MetricReport([value], stats)

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        return ig.aggregate_kid(stats)


@dataclass(frozen=True)
class PROptions:
    k: int = 3


class PrecisionRecall(_ImageMetric):
    name: ClassVar[str] = "precision_recall"
    values: ClassVar[tuple[str, ...]] = ("precision", "recall")
    description: ClassVar[str] = "improved precision and recall of the generated feature manifold (k-NN radii)"
    Options: ClassVar[type] = PROptions

    def check_options(self) -> None:
        if self.options.k < 1:
            raise MMBenchError(f"metric 'precision_recall': k {self.options.k} must be >= 1")

    def score(self, predictions: list, targets: list) -> MetricReport:
        real, k = self.real, self.options.k
        feats, ok = _features(predictions, real.shape[1])
        stats = {"features": feats.astype(np.float32), ig.CONST_REAL_FEATURES: real.astype(np.float32),
                 ig.CONST_PR_K: np.asarray(k)}
        if len(ok) > k and real.shape[0] > k:
            values = list(ig.precision_recall(real, feats[ok], k=k, features=self.extractor).values())
        else:
            why = f"needs more than k={k} generated and reference images ({len(ok)} and {real.shape[0]})"
            values = [MetricValue(n, None, f"{n}/features={self.extractor}", True, unavailable=why)
                      for n in ("precision", "recall")]
        return MetricReport(values, stats)

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        return ig.aggregate_precision_recall(stats)


@dataclass(frozen=True)
class ClipScoreOptions:
    convention: str = "torchmetrics"  # torchmetrics (100*cos) | clipscore-paper (2.5*max(cos, 0))


class ClipScore(_ImageMetric):
    name: ClassVar[str] = "clip_score"
    higher: ClassVar[bool] = True
    description: ClassVar[str] = "CLIP-score of each generated image against its prompt"
    Options: ClassVar[type] = ClipScoreOptions

    def check_options(self) -> None:
        if self.options.convention not in ig.CLIP_CONVENTIONS:
            raise MMBenchError(f"metric 'clip_score': convention {self.options.convention!r} is not one of "
                               f"{', '.join(ig.CLIP_CONVENTIONS)}")

    def score(self, predictions: list, targets: list) -> MetricReport:
        ref = self.context.reference or {}
        ok = [i for i, p in enumerate(predictions) if p is not None and p.get("clip_image") is not None]
        cos = np.full(len(predictions), np.nan)
        stats = {ig.CONST_CLIP_CONVENTION: np.asarray(self.options.convention)}
        if not ok:
            return MetricReport([MetricValue("clip_score", None, f"clip_score/{self.options.convention}", True,
                                             unavailable="no image was generated")], {**stats, "cosine": cos})
        value, item = ig.clip_score(
            np.stack([predictions[i]["clip_image"] for i in ok]), np.stack([predictions[i]["clip_text"] for i in ok]),
            convention=self.options.convention,  # type: ignore[arg-type]
            n_truncated=sum(bool(predictions[i].get("clip_truncated")) for i in ok),
            text_max_length=ref.get("text_max_length"), text_prefix=ref.get("text_prefix") or None,
            model=str(ref.get("clip_model", "unspecified")))
        cos[ok] = item["cosine"]
        notes = [str(value.extra["warning"])] if "warning" in value.extra else []
        return MetricReport([value], {**stats, "cosine": cos}, {"clip_cosine": cos.tolist()}, notes)

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        return ig.aggregate_clip_score(stats)
