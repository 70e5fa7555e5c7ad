"""Image-generation metrics against references on the same features: scipy sqrtm (pytorch-fid's formula),
torchmetrics FID/KID/CLIPScore arithmetic, explicit double loops and hand-worked cases."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from scipy import linalg

from mmbench.errors import DataError, MMBenchError
from mmbench.metrics import image_generation as ig
from mmbench.metrics.base import subset
from mmbench.metrics.api import MetricContext


def _pair(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two clearly different feature sets (the second is correlated and shifted)."""
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n, d))
    fake = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3 + 0.2
    return real, fake


def _sqrtm_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """The textbook formula with scipy.linalg.sqrtm, written out independently of the module."""
    mu1, mu2 = real.mean(axis=0), fake.mean(axis=0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


class _Identity(torch.nn.Module):
    """Feature module for torchmetrics that passes features through (num_features skips its dummy image)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


# ------------------------------------------------------------------------------------------------ FID


@pytest.mark.parametrize("n,d", [(500, 16), (200, 64), (100, 100), (32, 64), (10, 40)])
@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_fid_matches_scipy_sqrtm_reference(n: int, d: int, method: str) -> None:
    real, fake = _pair(n, d, seed=n + d)
    ref = _sqrtm_fid(real, fake)
    got = ig.fid_from_features(real, fake, method=method)
    assert got.value == pytest.approx(ref, rel=1e-6)
    assert got.name == "fid" and got.higher_is_better is False
    assert f"trace-sqrt={method}" in got.variant
    assert got.extra["n_real"] == n and got.extra["n_fake"] == n and got.extra["dim"] == d


def test_fid_eigh_is_exact_where_sqrtm_is_not_for_rank_deficient_covariances() -> None:
    # n < d: tr sqrtm(S1 S2) equals the nuclear norm of Xc1 Xc2^T / (n-1) exactly (same nonzero spectrum),
    # which needs no square root of rounding-noise eigenvalues; the eigh path agrees to rounding.
    real, fake = _pair(32, 64, seed=0)
    xc, yc = real - real.mean(axis=0), fake - fake.mean(axis=0)
    exact = np.linalg.svd(xc @ yc.T / 31, compute_uv=False).sum()
    mu1, s1 = ig.feature_stats(real)
    mu2, s2 = ig.feature_stats(fake)
    exact_fid = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * exact
    assert ig.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(exact_fid, rel=1e-12)


@pytest.mark.parametrize("n,d", [(300, 32), (20, 50)])
def test_fid_of_a_set_with_itself_is_zero(n: int, d: int) -> None:
    feats = np.random.default_rng(1).normal(size=(n, d)) * 3 + 5
    assert ig.fid_from_features(feats, feats).value == pytest.approx(0.0, abs=1e-6)
    sqrtm_self = ig.fid_from_features(feats, feats, method="sqrtm").value
    if n > d:
        assert sqrtm_self == pytest.approx(0.0, abs=1e-6)
    else:
        # Rank-deficient: sqrtm takes square roots of ~1e-14 noise eigenvalues (pytorch-fid and torchmetrics
        # inherit this, ~1e-5 here); the eigh path drops them and stays exact.
        assert abs(sqrtm_self) < 1e-3


def test_fid_translation_only_is_squared_mean_difference() -> None:
    feats = np.random.default_rng(2).normal(size=(400, 24))
    shift = np.linspace(-1.0, 2.0, 24)
    got = ig.fid_from_features(feats, feats + shift).value
    # Same covariance up to rounding: only ||mu1 - mu2||^2 = ||shift||^2 remains.
    assert got == pytest.approx(float(shift @ shift), rel=1e-12)


def test_fid_hand_worked_diagonal_gaussians() -> None:
    # 1-D: mu 0 vs 3, var 4 vs 1 -> 9 + 4 + 1 - 2*sqrt(4) = 10.
    assert ig.frechet_distance(np.array([0.0]), np.array([[4.0]]), np.array([3.0]), np.array([[1.0]])) \
        == pytest.approx(10.0, abs=1e-12)
    # 2-D diagonal: mu diff (1, 1), var (1, 9) vs (4, 1) -> 2 + 10 + 5 - 2*(2 + 3) = 7.
    got = ig.fid_from_stats(np.zeros(2), np.diag([1.0, 9.0]), np.ones(2), np.diag([4.0, 1.0]))
    assert got.value == pytest.approx(7.0, abs=1e-12)
    assert "n_real" not in got.extra and "warning" not in got.extra


@pytest.mark.parametrize("n,d", [(400, 16), (60, 30)])
def test_fid_matches_torchmetrics_with_identity_features(n: int, d: int) -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = _pair(n, d, seed=7)
    metric = FrechetInceptionDistance(feature=_Identity(d))
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    ref = float(metric.compute())
    assert ig.fid_from_features(real, fake).value == pytest.approx(ref, rel=1e-4)
    # float64 throughout: in fact they agree to rounding.
    assert ig.fid_from_features(real, fake).value == pytest.approx(ref, rel=1e-9)


def test_fid_small_n_warning_and_clean_large_n() -> None:
    real, fake = _pair(100, 8, seed=3)
    warn = ig.fid_from_features(real, fake).extra["warning"]
    assert ig.FID_SMALL_N_WARNING in warn and "n_real=100" in warn
    mu, s = ig.feature_stats(real)
    clean = ig.fid_from_stats(mu, s, mu, s, n_real=5000, n_fake=4000)
    assert "warning" not in clean.extra and clean.extra["n_fake"] == 4000
    # n above 2048 but below the feature dimension still warns; one known count is enough to judge.
    assert "n >= 3000" in ig.fid_small_n_warning(2500, 2500, dim=3000)
    assert ig.fid_small_n_warning(2048, None, dim=2048) is None
    assert "n_fake=2047" in ig.fid_small_n_warning(None, 2047, dim=16)
    assert ig.fid_small_n_warning(None, None, dim=16) is None


def test_fid_sqrtm_singular_product_retries_with_eps_offset() -> None:
    # A nilpotent product: sqrtm has no finite root, so pytorch-fid's rule adds eps*I to both covariances.
    s1 = np.array([[0.0, 1.0], [0.0, 0.0]])
    s2 = np.array([[0.0, 0.0], [0.0, 1.0]])
    got = ig.fid_from_stats(np.zeros(2), s1, np.zeros(2), s2, method="sqrtm", eps=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        first = linalg.sqrtm(s1 @ s2)
    if np.isfinite(first).all():
        pytest.skip("this scipy returns a finite root for the nilpotent product")
    offset = np.eye(2) * 1e-6
    expected = np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm((s1 + offset) @ (s2 + offset)).real)
    assert got.extra["singular_product_offset"] == 1e-6
    assert got.value == pytest.approx(float(expected), rel=1e-9)


def test_fid_accepts_torch_tensors_and_caches_stats() -> None:
    real, fake = _pair(120, 10, seed=4)
    from_tensors = ig.fid_from_features(torch.from_numpy(real).float(), torch.from_numpy(fake).float())
    from_arrays = ig.fid_from_features(real.astype(np.float32), fake.astype(np.float32))
    assert from_tensors.value == from_arrays.value
    mu1, s1 = ig.feature_stats(real)
    mu2, s2 = ig.feature_stats(fake)
    assert ig.fid_from_stats(mu1, s1, mu2, s2).value == ig.fid_from_features(real, fake).value


def test_fid_bad_inputs_raise_data_errors() -> None:
    real, fake = _pair(50, 6, seed=5)
    with pytest.raises(DataError, match="8-d"):
        ig.fid_from_features(real, np.zeros((50, 8)))
    bad = fake.copy()
    bad[7, 2] = np.nan
    with pytest.raises(DataError, match="row 7"):
        ig.fid_from_features(real, bad)
    with pytest.raises(DataError, match="at least 2"):
        ig.fid_from_features(real, fake[:1])
    with pytest.raises(DataError, match="2-D"):
        ig.fid_from_features(real, fake[0])
    mu, sigma = ig.feature_stats(real)
    with pytest.raises(DataError, match="NaN or inf"):
        ig.fid_from_stats(mu, sigma * np.inf, mu, sigma)
    with pytest.raises(DataError, match="disagree in shape"):
        ig.fid_from_stats(mu, sigma, mu[:3], sigma[:3, :3])
    with pytest.raises(MMBenchError, match="unknown FID method"):
        ig.fid_from_features(real, fake, method="svd")  # type: ignore[arg-type]


def test_fid_metric_recomputes_from_resampled_features() -> None:
    from mmbench.metrics.generation_metrics import FID

    real, fake = _pair(300, 12, seed=6)
    metric = FID(context=MetricContext(reference={"features": real}))
    metric.update(list({"features": row} for row in fake), [None] * len(fake))
    stats = metric.compute().stats
    agg = FID.aggregate  # the statistics hold the features in float32: equal to ~1e-8 relative
    assert agg(stats)["fid"] == pytest.approx(ig.fid_from_features(real, fake).value, rel=1e-7)
    idx = np.random.default_rng(0).integers(0, 300, 300)
    assert agg(subset(stats, idx))["fid"] == pytest.approx(ig.fid_from_features(real, fake[idx]).value,
                                                           rel=1e-7)


# ------------------------------------------------------------------------------------------------ KID


def _mmd2_loops(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b/d + 1)^3, written as explicit double loops."""
    m, d = x.shape
    k = lambda a, b: (float(np.dot(a, b)) / d + 1.0) ** 3  # noqa: E731
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return kxx / (m * (m - 1)) + kyy / (m * (m - 1)) - 2 * kxy / (m * m)


def test_kid_hand_computed_tiny_case() -> None:
    # m = 2, d = 1: x = (0, 1), y = (1, 2): k(a,b) = (ab + 1)^3.
    # kxx (off-diagonal) = 2*(0*1+1)^3 = 2; kyy = 2*(1*2+1)^3 = 54;
    # kxy = (0+1)^3 + (0+1)^3 + (1+1)^3 + (2+1)^3 = 1 + 1 + 8 + 27 = 37.
    # MMD^2 = 2/2 + 54/2 - 2*37/4 = 1 + 27 - 18.5 = 9.5.
    x, y = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    assert ig.poly_mmd2_unbiased(x, y) == 9.5
    assert _mmd2_loops(x, y) == 9.5


def test_kid_matches_double_loops_on_subsets() -> None:
    rng = np.random.default_rng(8)
    real, fake = rng.normal(size=(30, 5)), rng.normal(size=(25, 5)) + 0.5
    got = ig.kid_from_features(real, fake, num_subsets=4, subset_size=12, seed=3)
    subsets = ig.kid_subset_indices(30, 25, num_subsets=4, subset_size=12, seed=3)
    loops = np.array([_mmd2_loops(real[r], fake[f]) for r, f in subsets])
    assert got.value == pytest.approx(loops.mean(), rel=1e-12)
    assert got.extra["std"] == pytest.approx(loops.std(ddof=0), rel=1e-9)
    assert got.name == "kid" and got.higher_is_better is False
    assert "subsets=4x12" in got.variant and "std-ddof0" in got.variant


def test_kid_subsets_follow_torch_fidelity_draw_order() -> None:
    subsets = ig.kid_subset_indices(40, 30, num_subsets=3, subset_size=10, seed=2020)
    rng = np.random.RandomState(2020)
    for r, f in subsets:
        assert np.array_equal(r, rng.choice(40, 10, replace=False))
        assert np.array_equal(f, rng.choice(30, 10, replace=False))
        assert len(set(r.tolist())) == 10


def test_kid_matches_torchmetrics_on_the_same_subsets(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchmetrics.image.kid import KernelInceptionDistance

    rng = np.random.default_rng(9)
    n_real, n_fake, d, size, num = 60, 50, 16, 20, 5
    real = rng.normal(size=(n_real, d))
    fake = rng.normal(size=(n_fake, d)) * 1.2 + 0.1
    subsets = ig.kid_subset_indices(n_real, n_fake, num_subsets=num, subset_size=size, seed=11)
    # torchmetrics takes perm[:subset_size] of torch.randperm(n), real then fake; feed it our subsets.
    prefixes = iter(itertools.chain.from_iterable(subsets))

    def randperm(n: int, *args: object, **kwargs: object) -> torch.Tensor:
        head = next(prefixes)
        rest = np.setdiff1d(np.arange(n), head)
        return torch.from_numpy(np.concatenate([head, rest]))

    monkeypatch.setattr(torch, "randperm", randperm)
    with pytest.warns(UserWarning):
        metric = KernelInceptionDistance(feature=_Identity(d), subsets=num, subset_size=size)
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    ref_mean, ref_std = metric.compute()
    got = ig.kid_from_features(real, fake, num_subsets=num, subset_size=size, seed=11)
    assert got.value == pytest.approx(float(ref_mean), rel=1e-10)
    assert got.extra["std"] == pytest.approx(float(ref_std), rel=1e-8)


def test_kid_subset_too_large_names_both_counts_and_the_flag() -> None:
    real, fake = np.zeros((500, 4)), np.ones((800, 4))
    with pytest.raises(MMBenchError, match=r"1000.*real: 500, fake: 800.*--kid-subset-size 500"):
        ig.kid_from_features(real, fake)
    # Equal to the smaller count is allowed (torch-fidelity allows it too).
    assert ig.kid_from_features(real, fake, subset_size=500, num_subsets=1).extra["subset_size"] == 500


def test_kid_metric_resamples_fake_features() -> None:
    from mmbench.metrics.generation_metrics import KID

    rng = np.random.default_rng(10)
    real, fake = rng.normal(size=(40, 6)), rng.normal(size=(40, 6)) + 1.0
    metric = KID({"subsets": 3, "subset_size": 10, "seed": 1}, context=MetricContext(reference={"features": real}))
    metric.update([{"features": row} for row in fake], [None] * len(fake))
    report = metric.compute()
    direct = ig.kid_from_features(real, fake, num_subsets=3, subset_size=10, seed=1)
    assert report.values[0].value == direct.value and report.values[0].extra["std"] == direct.extra["std"]
    # the statistics keep the features in float32 (a store of 2048-d rows): equal to ~1e-8 relative
    assert KID.aggregate(report.stats)["kid"] == pytest.approx(direct.value, rel=1e-7)
    idx = np.random.default_rng(2).integers(0, 40, 40)
    again = ig.kid_from_features(real, fake[idx], num_subsets=3, subset_size=10, seed=1).value
    assert KID.aggregate(subset(report.stats, idx))["kid"] == pytest.approx(again, rel=1e-7)


# ----------------------------------------------------------------------------------------- CLIP-score


def test_clip_score_hand_computed_in_both_conventions() -> None:
    # cosines: 1.0 (same direction), 0.6 (3-4-5 triangle), 0.0 (orthogonal), -1.0 (opposite).
    img = np.array([[1.0, 0.0], [3.0, 4.0], [0.0, 2.0], [1.0, 1.0]])
    txt = np.array([[2.0, 0.0], [1.0, 0.0], [5.0, 0.0], [-1.0, -1.0]])
    tm, stats = ig.clip_score(img, txt, convention="torchmetrics")
    np.testing.assert_allclose(stats["cosine"], [1.0, 0.6, 0.0, -1.0], atol=1e-15)
    # torchmetrics: max(mean(100 * cos), 0) = max(60 / 4, 0) = 15.
    assert tm.value == pytest.approx(15.0, abs=1e-12)
    paper, _ = ig.clip_score(img, txt, convention="clipscore-paper")
    # paper: mean(2.5 * max(cos, 0)) = 2.5 * 1.6 / 4 = 1.0.
    assert paper.value == pytest.approx(1.0, abs=1e-12)
    assert "torchmetrics" in tm.variant and "clipscore-paper" in paper.variant


def test_clip_score_negative_cosine_clamps_to_zero() -> None:
    img, txt = np.array([[1.0, 2.0], [0.5, 1.0]]), np.array([[-1.0, -1.0], [-2.0, 0.0]])
    for convention in ("torchmetrics", "clipscore-paper"):
        assert ig.clip_score(img, txt, convention=convention)[0].value == 0.0


def test_clip_score_matches_torchmetrics_arithmetic_with_stub_model() -> None:
    # torchmetrics' CLIPScore cannot load a local model here, so drive its update function with a stub
    # model that returns fixed embeddings and apply CLIPScore.compute's clamp of the mean.
    from torchmetrics.functional.multimodal.clip_score import _clip_score_update

    rng = np.random.default_rng(12)
    img_emb, txt_emb = rng.normal(size=(6, 8)), rng.normal(size=(6, 8))
    img_emb[0] = txt_emb[0] * 2  # make sure the mean is positive

    class Stub:
        config = object()

        def to(self, device: object) -> "Stub":
            return self

        def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(img_emb)

        def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(txt_emb)

    def processor(images: object = None, text: object = None, **kwargs: object) -> dict[str, torch.Tensor]:
        if images is not None:
            return {"pixel_values": torch.zeros(len(images), 3, 4, 4)}  # type: ignore[arg-type]
        return {"input_ids": torch.zeros(len(text), 3, dtype=torch.long),  # type: ignore[arg-type]
                "attention_mask": torch.ones(len(text), 3, dtype=torch.long)}  # type: ignore[arg-type]

    images = [torch.zeros(3, 4, 4) for _ in range(6)]
    score, n = _clip_score_update(images, [f"caption {i}" for i in range(6)], Stub(), processor)
    ref = float(torch.clamp(score.sum() / n, min=0))
    got, stats = ig.clip_score(img_emb, txt_emb, convention="torchmetrics")
    assert got.value == pytest.approx(ref, rel=1e-12)
    np.testing.assert_allclose(100 * stats["cosine"], score.numpy(), rtol=1e-12)


def test_clip_score_truncation_and_prefix_travel_with_the_number() -> None:
    img, txt = np.eye(3), np.eye(3)
    got, _ = ig.clip_score(img, txt, convention="clipscore-paper", n_truncated=2, text_max_length=77,
                           text_prefix="A photo depicts", model="tiny-clip")
    assert got.value == pytest.approx(2.5)
    assert got.extra["n_truncated"] == 2 and got.extra["text_max_length"] == 77
    assert "2 of 3 captions" in got.extra["warning"]
    assert "text-truncated-at=77" in got.variant and "A photo depicts" in got.variant
    assert "model=tiny-clip" in got.variant
    assert "warning" not in ig.clip_score(img, txt)[0].extra
    with pytest.raises(MMBenchError, match="n_truncated"):
        ig.clip_score(img, txt, n_truncated=4)


def test_clip_score_aggregator_and_bad_inputs() -> None:
    rng = np.random.default_rng(13)
    img, txt = rng.normal(size=(10, 4)), rng.normal(size=(10, 4))
    value, stats = ig.clip_score(img, txt, convention="clipscore-paper")
    stats = {**stats, ig.CONST_CLIP_CONVENTION: np.asarray("clipscore-paper")}
    agg = ig.aggregate_clip_score
    assert agg(stats)["clip_score"] == value.value
    idx = np.array([0, 0, 3, 5])
    assert agg(subset(stats, idx))["clip_score"] == ig.clip_score(img[idx], txt[idx],
                                                                   convention="clipscore-paper")[0].value
    with pytest.raises(DataError, match="one text embedding per image"):
        ig.clip_score(img, txt[:9])
    zero = img.copy()
    zero[4] = 0
    with pytest.raises(DataError, match="image embedding row 4"):
        ig.clip_score(zero, txt)
    with pytest.raises(MMBenchError, match="convention"):
        ig.clip_score(img, txt, convention="openai")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- precision/recall


def _pr_reference(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Brute force with full torch.cdist matrices: k-th NN radius excluding self, membership with <=."""
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    r_rad = torch.cdist(r, r).kthvalue(k + 1, dim=1).values
    f_rad = torch.cdist(f, f).kthvalue(k + 1, dim=1).values
    d_fr = torch.cdist(f, r)
    precision = (d_fr <= r_rad[None, :]).any(dim=1).double().mean().item()
    recall = (d_fr.T <= f_rad[None, :]).any(dim=1).double().mean().item()
    return precision, recall


def test_pr_identical_sets_are_perfect() -> None:
    feats = np.random.default_rng(14).normal(size=(200, 32))
    pr = ig.precision_recall(feats, feats, k=3, batch_size=64)
    assert pr["precision"].value == 1.0 and pr["recall"].value == 1.0


def test_pr_far_apart_clusters_are_zero() -> None:
    rng = np.random.default_rng(15)
    real, fake = rng.normal(size=(100, 8)), rng.normal(size=(80, 8)) + 100.0
    pr = ig.precision_recall(real, fake)
    assert pr["precision"].value == 0.0 and pr["recall"].value == 0.0
    assert pr["precision"].extra["n_fake"] == 80 and pr["recall"].extra["n_real"] == 100


def test_pr_hand_built_2d_case() -> None:
    # Real: unit-square corners (1-NN radius 1 each) and an outlier at (-5,-5) (radius |(-5,-5)| = 7.07).
    real = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-5.0, -5.0]])
    # Fake: (0.5,0.5) inside; (2,0) exactly on (1,0)'s ball boundary (<= counts); (3,3) outside all balls.
    fake = np.array([[0.5, 0.5], [2.0, 0.0], [3.0, 3.0]])
    fake_in_real, real_in_fake = ig.precision_recall_flags(real, fake, k=1)
    assert fake_in_real.tolist() == [True, True, False]
    # Fake 1-NN radii: 1.58, 1.58, 3.16: every corner is covered, the outlier (7.8+ away) is not.
    assert real_in_fake.tolist() == [True, True, True, True, False]
    pr = ig.precision_recall(real, fake, k=1)
    assert pr["precision"].value == pytest.approx(2 / 3) and pr["recall"].value == pytest.approx(4 / 5)
    assert pr["precision"].extra["n_inside"] == 2 and "k=1" in pr["recall"].variant


@pytest.mark.parametrize("k,batch_size", [(3, 17), (5, 1000), (1, 7)])
def test_pr_matches_brute_force_reference_with_batching(k: int, batch_size: int) -> None:
    rng = np.random.default_rng(16 + k)
    real = rng.normal(size=(150, 10))
    fake = rng.normal(size=(120, 10)) * 1.3 + 0.4
    pr = ig.precision_recall(real, fake, k=k, batch_size=batch_size)
    ref_p, ref_r = _pr_reference(real, fake, k)
    assert pr["precision"].value == pytest.approx(ref_p, abs=1e-12)
    assert pr["recall"].value == pytest.approx(ref_r, abs=1e-12)
    assert 0.0 < ref_p < 1.0 and 0.0 < ref_r < 1.0  # the case exercises both sides of the boundary


def test_pr_k_must_be_below_sample_count() -> None:
    with pytest.raises(MMBenchError, match="k=3"):
        ig.precision_recall(np.zeros((3, 2)), np.ones((10, 2)), k=3)
