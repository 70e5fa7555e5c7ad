"""The one resampling engine (mmbench.metrics.resampling) behind the report's bootstrap intervals and paired
tests and the probes' reliance intervals: its draws, and that each user's numbers equal those of the
hand-written loop it replaced (same seeds, same streams, same index draws)."""

from __future__ import annotations

import numpy as np
import pytest

from mmbench.metrics import reliance as rel
from mmbench.metrics import resampling
from mmbench.metrics.base import subset
from mmbench.report.stats import bootstrap, paired_test


def ratio_aggregate(stats):
    """Not a plain mean (a ratio of sums): always resampled through the aggregator."""
    c, w = np.asarray(stats["correct"], float), np.asarray(stats["w"], float)
    return {"acc": float(c.mean()), "ratio": float((c * w).sum() / w.sum())}


def runs(n: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    base = {"correct": (rng.random(n) < 0.6).astype(float), "w": rng.random(n) + 0.1}
    new = {"correct": (rng.random(n) < 0.7).astype(float), "w": rng.random(n) + 0.1}
    return base, new


@pytest.mark.parametrize("n", [1, 7, 300])
def test_blocks_hold_what_one_row_draws_give(n, monkeypatch):
    """The block size (bounded memory) never changes a draw: r rows in one block = r successive rows."""
    monkeypatch.setattr(resampling, "CHUNK_ELEMENTS", 2 * n)  # blocks of 2 rows (and a last one of 1)
    blocks = list(resampling.index_chunks(n, 5, resampling.rng_for(4, "t")))
    assert [len(b) for b in blocks] == [2, 2, 1]
    one = resampling.rng_for(4, "t")
    assert np.array_equal(np.concatenate(blocks), np.stack([one.integers(0, n, n) for _ in range(5)]))
    swaps = np.concatenate(list(resampling.swap_chunks(n, 5, resampling.rng_for(4, "t"))))
    one = resampling.rng_for(4, "t")
    assert np.array_equal(swaps, np.stack([one.random(n) < 0.5 for _ in range(5)]))


@pytest.mark.parametrize("seed", [0, 1, 2**31 - 1, 2**40])
def test_the_empty_stream_is_the_plain_seed(seed):
    """rng_for(seed) draws what np.random.default_rng(seed) draws: the probes' reliance intervals keep the
    stream they always had."""
    assert np.array_equal(resampling.rng_for(seed).integers(0, 1000, 50),
                          np.random.default_rng(seed).integers(0, 1000, 50))
    assert not np.array_equal(resampling.rng_for(seed, "vqa").integers(0, 1000, 50),
                              np.random.default_rng(seed).integers(0, 1000, 50))


def test_replicates_of_means_and_of_a_statistic_see_the_same_draws():
    values = np.arange(10, dtype=np.float64)
    out = resampling.replicates(10, 50, resampling.rng_for(0), means={"m": values},
                                statistic=lambda idx: {"s": values[idx].mean(), "none": None}, names=["s", "none"])
    assert np.allclose(out["m"], out["s"]) and np.isnan(out["none"]).all() and len(out["m"]) == 50
    flips = resampling.replicates(10, 20, resampling.rng_for(0), means={"m": values}, scheme=resampling.SIGN_FLIP,
                                  statistic=lambda s: {"s": (values * np.where(s, -1.0, 1.0)).mean()}, names=["s"])
    assert np.allclose(flips["m"], flips["s"])


# ----------------------------------------------------------------------------- the loops the engine replaced

def old_bootstrap_replicates(stats, aggregate, metric, n, resamples, seed, stream):
    rng = resampling.rng_for(seed, stream)
    rows = max(1, 2_000_000 // n)
    out = []
    for start in range(0, resamples, rows):
        for idx in rng.integers(0, n, size=(min(rows, resamples - start), n)):
            out.append(aggregate(subset(stats, idx))[metric])
    return np.array(out)


def old_paired_bootstrap(score_fn, n_items, resamples, seed, alpha):
    rng = np.random.default_rng(seed)
    values = np.array([score_fn(rng.integers(0, n_items, n_items))[1] for _ in range(resamples)])
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi), values


@pytest.mark.parametrize("n", [5, 40])
def test_bootstrap_equals_the_loop_it_replaced(n):
    base, _ = runs(n)
    b = bootstrap(base, ratio_aggregate, resamples=200, seed=4, stream="vqa")
    assert np.array_equal(b.replicates["ratio"], old_bootstrap_replicates(base, ratio_aggregate, "ratio", n, 200, 4,
                                                                          "vqa"))
    # acc is a plain mean: gathered in one go, from the very same index draws
    assert np.allclose(b.replicates["acc"], old_bootstrap_replicates(base, ratio_aggregate, "acc", n, 200, 4, "vqa"),
                       rtol=0, atol=1e-12)
    lo, hi = np.quantile(b.replicates["ratio"], [0.025, 0.975])
    assert (b.intervals["ratio"].low, b.intervals["ratio"].high) == (lo, hi)


def test_paired_tests_resample_both_runs_with_the_same_draws():
    base, new = runs(30)
    t = paired_test(base, new, ratio_aggregate, metrics=["ratio"], higher_is_better={"ratio": True},
                    resamples=150, seed=2, stream="cap")["ratio"]
    rng = resampling.rng_for(2, "cap")
    reps = np.array([ratio_aggregate(subset(new, i))["ratio"] - ratio_aggregate(subset(base, i))["ratio"]
                     for i in rng.integers(0, 30, size=(150, 30))])
    assert (t.low, t.high) == tuple(np.quantile(reps, [0.025, 0.975]))
    perm = paired_test(base, new, ratio_aggregate, metrics=["ratio"], higher_is_better={"ratio": True},
                       method="permutation", resamples=150, seed=2, stream="cap")["ratio"]
    assert (perm.low, perm.high) == (t.low, t.high)  # the CI still comes from the paired bootstrap
    assert 0 < perm.p_two_sided <= 1


@pytest.mark.parametrize("n,seed,higher", [(5, 0, True), (37, 4, True), (60, 9, False)])
def test_reliance_interval_equals_the_paired_bootstrap_it_replaced(n, seed, higher):
    base, new = runs(n, seed)

    def score_fn(idx):
        real = ratio_aggregate(subset(new, idx))["ratio"]
        ablated = ratio_aggregate(subset(base, idx))["ratio"]
        absolute, relative, _ = rel.reliance(real, {"blank": ablated}, higher, 0.0 if higher else 2.0)
        return absolute, relative

    old = old_paired_bootstrap(score_fn, n, 200, seed, 0.05)
    new_ = rel.reliance_interval({"real": new, "blank": base}, ratio_aggregate, "ratio", ["blank"], n, higher,
                                 0.0 if higher else 2.0, resamples=200, seed=seed)
    assert new_[:2] == old[:2] and np.array_equal(new_[2], old[2])
