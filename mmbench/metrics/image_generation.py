"""Image-generation metrics on precomputed features: FID, KID, CLIP-score and k-NN precision/recall.

No model code lives here: callers pass feature or embedding matrices (numpy arrays or CPU torch tensors,
one row per image) and say which extractor made them (``features=``), since the extractor (Inception
weights, resize, antialias) changes the numbers as much as the generator does. Everything is computed in
float64 with numpy/scipy.

Reference behaviour matched, on the same features:
- FID: pytorch-fid's ``calculate_frechet_distance`` (np.cov with ddof=1; scipy ``sqrtm`` of sigma1@sigma2,
  retried with ``eps*I`` added to both covariances when the root is not finite, imaginary part rejected
  when the diagonal's exceeds 1e-3) as ``method="sqrtm"``; the default ``method="eigh"`` is an exact
  reformulation through symmetric eigendecompositions: ~5x faster at 2048-d, agrees to ~1e-12 relative
  with full-rank covariances, and is the more exact of the two when n <= dim (sqrtm then takes square
  roots of rounding-noise eigenvalues: ~1e-8 relative error, ~1e-5 absolute on a set against itself).
- KID: torch-fidelity / torchmetrics (unbiased MMD^2, cubic polynomial kernel, population std over
  subsets); subsets are drawn as torch-fidelity draws them, so the same seed gives the same subsets.
- CLIP-score: torchmetrics' ``CLIPScore`` arithmetic, or Hessel et al. 2021's ``clipscore.py``.
- Precision/recall: Kynkäänniemi et al. 2019 (k-th nearest neighbour balls, ``<=``), as in their code.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

from mmbench.errors import DataError, MMBenchError
from mmbench.metrics.base import ItemStats, MetricValue

FidMethod = Literal["eigh", "sqrtm"]
ClipConvention = Literal["torchmetrics", "clipscore-paper"]
CLIP_CONVENTIONS = ("torchmetrics", "clipscore-paper")

# pytorch-fid and the original TTUR code ask for more samples than the feature dimension (2048 for
# Inception pool3) so that the covariance has full rank; FID's estimator is also biased upward at small n,
# so values are comparable only at equal n.
FID_MIN_SAMPLES = 2048
FID_SMALL_N_WARNING = "FID is biased upward at small n; compare only at equal n"


# ---------------------------------------------------------------------------------------------- inputs


def _as_features(x: object, name: str) -> np.ndarray:
    """``x`` as a finite float64 (n, d) array; a DataError naming ``name`` otherwise."""
    if hasattr(x, "detach"):  # a torch tensor; avoids importing torch in this module
        x = x.detach().cpu().numpy()  # type: ignore[attr-defined]
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{name} must be a non-empty 2-D array (n_samples, dim), got shape {arr.shape}; "
                        "pass one feature row per image")
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise DataError(f"{name} row {bad} has NaN or inf values; check the feature extractor's output")
    return arr


def _same_dim(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise DataError(f"{what}: real features are {a.shape[1]}-d but fake features are {b.shape[1]}-d; "
                        "extract both sets with the same feature extractor and layer")


# ------------------------------------------------------------------------------------------------- FID


def feature_stats(feats: object) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (np.cov, rowvar=False, ddof=1) of a feature set, so reference stats can be cached."""
    arr = _as_features(feats, "features")
    if arr.shape[0] < 2:
        raise DataError(f"FID needs at least 2 feature rows per set to estimate a covariance, got "
                        f"{arr.shape[0]}; generate or load more images")
    return arr.mean(axis=0), np.atleast_2d(np.cov(arr, rowvar=False))


def _psd_factor(sigma: np.ndarray) -> np.ndarray:
    """B with B @ B.T == sigma for a symmetric PSD sigma, dropping directions below the rank tolerance."""
    w, v = np.linalg.eigh(sigma)
    # Eigenvalues below numpy's matrix_rank tolerance are rounding noise around 0; their square roots
    # (~1e-8 of the scale) would otherwise add up to visible error for rank-deficient covariances.
    keep = w > w.max(initial=0.0) * sigma.shape[0] * np.finfo(np.float64).eps
    return v[:, keep] * np.sqrt(w[keep])


def _trace_sqrt_product_eigh(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr sqrtm(sigma1 @ sigma2) through symmetric eigendecompositions only.

    With sigma1 = B B^T, the matrix B^T sigma2 B is symmetric PSD and has the same nonzero eigenvalues as
    sigma1 @ sigma2 (and as sigma1^1/2 sigma2 sigma1^1/2), so the trace of the root is the sum of the
    square roots of its eigenvalues: no non-symmetric Schur form, no complex arithmetic.
    """
    b = _psd_factor(sigma1)
    if b.shape[1] == 0:  # sigma1 == 0: every real feature row is the same point
        return 0.0
    m = b.T @ sigma2 @ b
    ev = np.linalg.eigvalsh((m + m.T) / 2.0)
    ev = ev[ev > ev.max(initial=0.0) * m.shape[0] * np.finfo(np.float64).eps]
    return float(np.sqrt(ev).sum())


def _trace_sqrt_product_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> tuple[float, bool]:
    """tr sqrtm(sigma1 @ sigma2) the way pytorch-fid computes it; also whether the eps*I retry was used."""
    from scipy import linalg  # lazy: only the reference path needs scipy

    with warnings.catch_warnings():  # a singular product is handled below, as pytorch-fid does
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    offset_used = False
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
        offset_used = True
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise DataError(f"FID: sqrtm of the covariance product has an imaginary part of "
                            f"{np.max(np.abs(covmean.imag)):.3g}; use method='eigh' or more samples")
        covmean = covmean.real
    return float(np.trace(covmean)), offset_used


def _frechet(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
             method: FidMethod, eps: float) -> tuple[float, bool]:
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise DataError(f"FID statistics disagree in shape (mu {mu1.shape} vs {mu2.shape}, sigma "
                        f"{sigma1.shape} vs {sigma2.shape}); compute both with the same feature extractor")
    if not all(np.isfinite(a).all() for a in (mu1, mu2, sigma1, sigma2)):
        raise DataError("FID statistics contain NaN or inf values; recompute the cached mu/sigma from features")
    if method == "eigh":
        tr_covmean, offset_used = _trace_sqrt_product_eigh(sigma1, sigma2), False
    elif method == "sqrtm":
        tr_covmean, offset_used = _trace_sqrt_product_sqrtm(sigma1, sigma2, eps)
    else:
        raise MMBenchError(f"unknown FID method {method!r}; use 'eigh' (fast) or 'sqrtm' (pytorch-fid's)")
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
    return value, offset_used


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, *,
                     method: FidMethod = "eigh", eps: float = 1e-6) -> float:
    """||mu1-mu2||^2 + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2)), as a plain float."""
    return _frechet(mu1, sigma1, mu2, sigma2, method, eps)[0]


def _fid_variant(method: FidMethod, features: str) -> str:
    return f"fid/float64/cov-ddof1/trace-sqrt={method}/features={features}"


def fid_small_n_warning(n_real: int | None, n_fake: int | None, dim: int) -> str | None:
    """The small-sample warning for FID, or None when both known counts reach max(2048, dim)."""
    counts = [n for n in (n_real, n_fake) if n is not None]
    needed = max(FID_MIN_SAMPLES, dim)
    if not counts or min(counts) >= needed:
        return None
    return f"{FID_SMALL_N_WARNING} (n_real={n_real}, n_fake={n_fake}, dim={dim}, recommended n >= {needed})"


def fid_from_stats(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray, *,
                   n_real: int | None = None, n_fake: int | None = None, method: FidMethod = "eigh",
                   eps: float = 1e-6, features: str = "unspecified") -> MetricValue:
    """FID from (real) mu1/s1 and (fake) mu2/s2; pass the sample counts to get the small-n warning."""
    value, offset_used = _frechet(mu1, s1, mu2, s2, method, eps)
    dim = int(np.atleast_1d(mu1).shape[0])
    extra: dict[str, object] = {"dim": dim}
    if n_real is not None:
        extra["n_real"] = int(n_real)
    if n_fake is not None:
        extra["n_fake"] = int(n_fake)
    warning = fid_small_n_warning(n_real, n_fake, dim)
    if warning:
        extra["warning"] = warning
    if offset_used:
        extra["singular_product_offset"] = eps
    return MetricValue(name="fid", value=value, variant=_fid_variant(method, features),
                       higher_is_better=False, extra=extra)


def fid_from_features(real: object, fake: object, *, method: FidMethod = "eigh", eps: float = 1e-6,
                      features: str = "unspecified") -> MetricValue:
    """FID between two feature sets (one row per image), with n_real/n_fake and a small-n warning in extra."""
    r, f = _as_features(real, "real features"), _as_features(fake, "fake features")
    _same_dim(r, f, "FID")
    mu1, s1 = feature_stats(r)
    mu2, s2 = feature_stats(f)
    return fid_from_stats(mu1, s1, mu2, s2, n_real=r.shape[0], n_fake=f.shape[0], method=method, eps=eps,
                          features=features)


def feature_item_stats(feats: object) -> dict[str, np.ndarray]:
    """Per-item statistics for FID/KID: the feature rows themselves (resample rows to bootstrap)."""
    return {"features": _as_features(feats, "features")}


# ------------------------------------------------------------------------------------------------- KID


def _check_subset_size(subset_size: int, n_real: int, n_fake: int) -> None:
    if subset_size < 2:
        raise MMBenchError(f"KID subset size must be at least 2, got {subset_size}; raise --kid-subset-size")
    if subset_size > n_real or subset_size > n_fake:
        raise MMBenchError(f"KID subset size {subset_size} exceeds the sample count (real: {n_real}, fake: "
                           f"{n_fake}); pass --kid-subset-size {min(n_real, n_fake)} or smaller, or add samples")


def kid_subset_indices(n_real: int, n_fake: int, num_subsets: int = 100, subset_size: int = 1000,
                       seed: int = 2020) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (real, fake) row indices of each KID subset: drawn without replacement, alternately, from one
    ``np.random.RandomState(seed)`` as torch-fidelity draws them (its default seed is 2020)."""
    _check_subset_size(subset_size, n_real, n_fake)
    if num_subsets < 1:
        raise MMBenchError(f"KID needs at least 1 subset, got {num_subsets}; pass --kid-subsets 1 or more")
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(num_subsets):
        r = rng.choice(n_real, subset_size, replace=False)
        f = rng.choice(n_fake, subset_size, replace=False)
        out.append((r, f))
    return out


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def poly_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between equal-size samples with k(a, b) = (a.b/d + 1)^3 (diagonals of k_xx, k_yy left out)."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kid_subset_values(real: object, fake: object, *, num_subsets: int = 100, subset_size: int = 1000,
                      seed: int = 2020) -> np.ndarray:
    """The unbiased MMD^2 of each random subset pair (KID is their mean)."""
    r, f = _as_features(real, "real features"), _as_features(fake, "fake features")
    _same_dim(r, f, "KID")
    subsets = kid_subset_indices(r.shape[0], f.shape[0], num_subsets, subset_size, seed)
    return np.array([poly_mmd2_unbiased(r[ri], f[fi]) for ri, fi in subsets])


def kid_from_features(real: object, fake: object, *, num_subsets: int = 100, subset_size: int = 1000,
                      seed: int = 2020, features: str = "unspecified") -> MetricValue:
    """KID: mean over subsets of the unbiased polynomial-kernel MMD^2; std (ddof=0, like torchmetrics and
    torch-fidelity) in extra."""
    r, f = _as_features(real, "real features"), _as_features(fake, "fake features")
    values = kid_subset_values(r, f, num_subsets=num_subsets, subset_size=subset_size, seed=seed)
    n_real, n_fake = r.shape[0], f.shape[0]
    variant = (f"kid/float64/poly3(x.y/d+1)/unbiased-mmd2/subsets={num_subsets}x{subset_size}/seed={seed}"
               f"/std-ddof0/features={features}")
    return MetricValue(name="kid", value=float(values.mean()), variant=variant, higher_is_better=False,
                       extra={"std": float(values.std(ddof=0)), "n_real": int(n_real), "n_fake": int(n_fake),
                              "num_subsets": num_subsets, "subset_size": subset_size, "seed": seed})


# ------------------------------------------------------------------------------------------ CLIP-score

_CLIP_FORMULA = {"torchmetrics": "max(mean(100*cos),0)", "clipscore-paper": "mean(2.5*max(cos,0))"}


def clip_item_stats(image_embeds: object, text_embeds: object) -> dict[str, np.ndarray]:
    """Per-item cosine similarity between paired image and text embeddings (rows are pairs)."""
    img, txt = _as_features(image_embeds, "image embeddings"), _as_features(text_embeds, "text embeddings")
    if img.shape != txt.shape:
        raise DataError(f"CLIP-score needs one text embedding per image embedding of the same size, got "
                        f"{img.shape} and {txt.shape}; pair each image with its caption")
    for name, e in (("image", img), ("text", txt)):
        norms = np.linalg.norm(e, axis=1)
        if (norms == 0).any():
            raise DataError(f"{name} embedding row {int(np.flatnonzero(norms == 0)[0])} is all zeros; "
                            "check the encoder's output for that item")
    cos = np.einsum("ij,ij->i", img / np.linalg.norm(img, axis=1, keepdims=True),
                    txt / np.linalg.norm(txt, axis=1, keepdims=True))
    return {"cosine": cos}


def clip_score_aggregate(stats: ItemStats, convention: ClipConvention = "torchmetrics") -> dict[str, float]:
    """Corpus CLIP-score from per-item cosines in the named convention.

    torchmetrics' ``CLIPScore`` averages the unclamped 100*cos and clamps the mean at 0 (its docs write
    the clamp per pair, its code applies it to the mean); Hessel et al. clamp each pair, then average.
    """
    cos = np.asarray(stats["cosine"], dtype=np.float64)
    if convention == "torchmetrics":
        return {"clip_score": float(max(np.mean(100.0 * cos), 0.0))}
    if convention == "clipscore-paper":
        return {"clip_score": float(np.mean(2.5 * np.maximum(cos, 0.0)))}
    raise MMBenchError(f"unknown CLIP-score convention {convention!r}; use 'torchmetrics' or 'clipscore-paper'")


def clip_score(image_embeds: object, text_embeds: object, *, convention: ClipConvention = "torchmetrics",
               n_truncated: int = 0, text_max_length: int | None = None, text_prefix: str | None = None,
               model: str = "unspecified") -> tuple[MetricValue, dict[str, np.ndarray]]:
    """CLIP-score of paired image/text embeddings, and per-item stats ({"cosine"}) for bootstrapping.

    ``n_truncated`` is how many captions the caller's tokenizer cut at ``text_max_length`` tokens (CLIP
    truncates silently at 77); ``text_prefix`` is what was prepended to captions before encoding (the
    paper's code prepends "A photo depicts "). Both are provenance: they go into variant/extra.
    """
    stats = clip_item_stats(image_embeds, text_embeds)
    n = int(stats["cosine"].shape[0])
    if not 0 <= n_truncated <= n:
        raise MMBenchError(f"n_truncated={n_truncated} must be between 0 and the number of captions ({n}); "
                           "pass the count your tokenizer reported")
    value = clip_score_aggregate(stats, convention)["clip_score"]
    variant = f"clip_score/{convention}/{_CLIP_FORMULA[convention]}/model={model}"
    variant += f"/text-truncated-at={text_max_length if text_max_length is not None else 'unknown'}"
    if text_prefix:
        variant += f"/text-prefix={text_prefix!r}"
    extra: dict[str, object] = {"n": n, "n_truncated": int(n_truncated), "text_max_length": text_max_length}
    if n_truncated:
        extra["warning"] = (f"{n_truncated} of {n} captions exceeded the text encoder's "
                            f"{text_max_length if text_max_length is not None else 'maximum'} tokens and were "
                            "truncated: their scores only see the beginning of the caption")
    return MetricValue(name="clip_score", value=value, variant=variant, extra=extra), stats


# -------------------------------------------------------------------------------- precision / recall


def _sq_dists(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between rows of a and b (|a|^2 + |b|^2 - 2ab, clamped at 0)."""
    d = (a * a).sum(axis=1)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0, out=d)


def knn_radii_sq(feats: np.ndarray, k: int, batch_size: int = 1024) -> np.ndarray:
    """Squared distance from each row to its k-th nearest other row (the (k+1)-th smallest, self included)."""
    n = feats.shape[0]
    if not 1 <= k < n:
        raise MMBenchError(f"precision/recall k={k} needs 1 <= k < the smaller sample count ({n}); "
                           "pass a smaller --pr-k or more samples")
    sq = (feats * feats).sum(axis=1)
    out = np.empty(n)
    for s in range(0, n, batch_size):
        d = _sq_dists(feats[s:s + batch_size], feats, sq)
        out[s:s + batch_size] = np.partition(d, k, axis=1)[:, k]
    return out


def precision_recall_flags(real: object, fake: object, *, k: int = 3,
                           batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(fake_in_real, real_in_fake): whether each fake row lies in some real row's k-NN ball, and the reverse.

    Distances are computed in row batches of ``batch_size`` (memory ~ batch_size x n x 8 bytes), and the
    cross distances are computed once and used for both directions.
    """
    r, f = _as_features(real, "real features"), _as_features(fake, "fake features")
    _same_dim(r, f, "precision/recall")
    if batch_size < 1:
        raise MMBenchError(f"batch_size must be positive, got {batch_size}")
    r_rad, f_rad = knn_radii_sq(r, k, batch_size), knn_radii_sq(f, k, batch_size)
    r_sq = (r * r).sum(axis=1)
    fake_in_real = np.zeros(f.shape[0], dtype=bool)
    real_in_fake = np.zeros(r.shape[0], dtype=bool)
    for s in range(0, f.shape[0], batch_size):
        d = _sq_dists(f[s:s + batch_size], r, r_sq)  # (fake batch, real)
        fake_in_real[s:s + batch_size] = (d <= r_rad[None, :]).any(axis=1)
        real_in_fake |= (d <= f_rad[s:s + batch_size, None]).any(axis=0)
    return fake_in_real, real_in_fake


def precision_recall(real: object, fake: object, *, k: int = 3, batch_size: int = 1024,
                     features: str = "unspecified") -> dict[str, MetricValue]:
    """Improved precision (share of fake samples inside the real manifold) and recall (the reverse)."""
    fake_in_real, real_in_fake = precision_recall_flags(real, fake, k=k, batch_size=batch_size)
    variant = f"knn-manifold/k={k}/euclidean/float64/features={features}"
    extra = {"n_real": int(real_in_fake.shape[0]), "n_fake": int(fake_in_real.shape[0]), "k": k}
    return {
        "precision": MetricValue(name="precision", value=float(fake_in_real.mean()), variant=variant,
                                 extra={**extra, "n_inside": int(fake_in_real.sum())}),
        "recall": MetricValue(name="recall", value=float(real_in_fake.mean()), variant=variant,
                              extra={**extra, "n_inside": int(real_in_fake.sum())}),
    }


# ------------------------------------------------------------------------------ the task's aggregator
# The text-to-image task stores, per generated item, its feature row ("features", NaN for a failed item)
# and its CLIP cosine ("cosine"), and as constants (never resampled) everything about the reference set and
# the metric settings. ``aggregate`` recomputes the task's metrics from that, so a bootstrap over the
# generated items gives intervals for FID, KID, CLIP-score and precision/recall.

CONST_REAL_MU = "const:real_mu"
CONST_REAL_SIGMA = "const:real_sigma"
CONST_REAL_FEATURES = "const:real_features"
CONST_FID_METHOD = "const:fid_method"
CONST_KID = "const:kid"  # [num_subsets, subset_size, seed]
CONST_CLIP_CONVENTION = "const:clip_convention"
CONST_PR_K = "const:pr_k"
# Up to this many rows per set, KID's subsets are summed out of whole kernel matrices (a few matrix
# products for all subsets, ~100x faster); beyond it, kernels are computed per subset (bounded memory).
KID_KERNEL_MATRIX_MAX_ROWS = 4096


def kid_values_fast(real: np.ndarray, fake: np.ndarray, *, num_subsets: int, subset_size: int,
                    seed: int) -> np.ndarray:
    """The same per-subset values as ``kid_subset_values`` (same subsets), from whole kernel matrices.

    With S the 0/1 subset-membership matrix, the kernel sum over a subset's pairs is a row of
    ``(S K) * S`` summed, and its diagonal ``S diag(K)``: every subset at once, no per-subset kernels.
    """
    r, f = _as_features(real, "real features"), _as_features(fake, "fake features")
    _same_dim(r, f, "KID")
    if max(r.shape[0], f.shape[0]) > KID_KERNEL_MATRIX_MAX_ROWS:
        return kid_subset_values(r, f, num_subsets=num_subsets, subset_size=subset_size, seed=seed)
    subsets = kid_subset_indices(r.shape[0], f.shape[0], num_subsets, subset_size, seed)
    s_r = np.zeros((num_subsets, r.shape[0]))
    s_f = np.zeros((num_subsets, f.shape[0]))
    for i, (ri, fi) in enumerate(subsets):
        s_r[i, ri] = 1.0
        s_f[i, fi] = 1.0
    k_rr, k_ff, k_rf = _poly_kernel(r, r), _poly_kernel(f, f), _poly_kernel(r, f)
    m = subset_size
    within_r = np.einsum("ij,ij->i", s_r @ k_rr, s_r) - s_r @ np.diagonal(k_rr)
    within_f = np.einsum("ij,ij->i", s_f @ k_ff, s_f) - s_f @ np.diagonal(k_ff)
    cross = np.einsum("ij,ij->i", s_r @ k_rf, s_f)
    return (within_r + within_f) / (m * (m - 1)) - 2.0 * cross / (m * m)


def _const(stats: ItemStats, key: str, default: object = None) -> np.ndarray | None:
    value = stats.get(key, default)
    return None if value is None else np.asarray(value)


def _fake(stats: ItemStats) -> np.ndarray:
    """The generated images' feature rows, failed generations (non-finite rows) left out."""
    feats = np.asarray(stats["features"], dtype=np.float64)
    return feats[np.isfinite(feats).all(axis=1)]


def aggregate_fid(stats: ItemStats) -> dict[str, float]:
    """FID of the generated rows against the reference set's ``const:`` mean and covariance."""
    mu, sigma = _const(stats, CONST_REAL_MU), _const(stats, CONST_REAL_SIGMA)
    if "features" not in stats or mu is None or sigma is None:
        return {}
    mu2, sigma2 = feature_stats(_fake(stats))
    method = str(_const(stats, CONST_FID_METHOD, "eigh"))
    return {"fid": frechet_distance(mu, sigma, mu2, sigma2, method=method)}  # type: ignore[arg-type]


def aggregate_kid(stats: ItemStats) -> dict[str, float]:
    """KID of the generated rows against the ``const:`` reference features, with the recorded subset draws."""
    real, kid = _const(stats, CONST_REAL_FEATURES), _const(stats, CONST_KID)
    if "features" not in stats or real is None or kid is None:
        return {}
    num_subsets, subset_size, seed = (int(v) for v in kid)
    values = kid_values_fast(real, _fake(stats), num_subsets=num_subsets, subset_size=subset_size, seed=seed)
    return {"kid": float(values.mean())}


def aggregate_precision_recall(stats: ItemStats) -> dict[str, float]:
    real, pr_k = _const(stats, CONST_REAL_FEATURES), _const(stats, CONST_PR_K)
    if "features" not in stats or real is None or pr_k is None:
        return {}
    fake_in_real, real_in_fake = precision_recall_flags(real, _fake(stats), k=int(pr_k))
    return {"precision": float(fake_in_real.mean()), "recall": float(real_in_fake.mean())}


def aggregate_clip_score(stats: ItemStats) -> dict[str, float]:
    if "cosine" not in stats:
        return {}
    cos = np.asarray(stats["cosine"], dtype=np.float64)
    convention = str(_const(stats, CONST_CLIP_CONVENTION, "torchmetrics"))
    return dict(clip_score_aggregate({"cosine": cos[np.isfinite(cos)]}, convention))  # type: ignore[arg-type]


def aggregate(stats: ItemStats) -> dict[str, float]:
    """FID, KID, CLIP-score and precision/recall, each where the statistics carry what it needs.

    Items whose feature row is not finite (failed generations) are left out of FID/KID/precision/recall,
    items with a NaN cosine out of CLIP-score; the reference set is the ``const:`` entries.
    """
    return {**aggregate_fid(stats), **aggregate_kid(stats), **aggregate_precision_recall(stats),
            **aggregate_clip_score(stats)}
