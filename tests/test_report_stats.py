"""Bootstrap intervals, paired tests and Holm, checked by simulation against known truths.

Simulations use fixed seeds (so the suite is deterministic) and bounds set from the binomial spread of the
simulated rates (e.g. 300 datasets: the coverage of a 95% interval has a standard deviation of ~1.3 points),
so a broken interval or test fails them while a correct one passes at any seed.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from mmbench.errors import MMBenchError
from mmbench.metrics import classification, retrieval, wer
from mmbench.metrics.captions import aggregate as captions_aggregate
from mmbench.report.stats import bootstrap, holm, paired_test, plain_mean_keys, resolve_aggregator, rng_for


def mean_aggregate(stats):
    return {"acc": float(np.mean(stats["correct"]))}


def caption_stats(rng: np.random.Generator, n: int, quality: float) -> dict[str, np.ndarray]:
    testlen = rng.integers(6, 12, n)
    guess = np.stack([np.maximum(testlen - k, 0) for k in range(4)], axis=1)
    correct = np.floor(guess * np.clip(quality + rng.normal(0, 0.15, (n, 1)), 0, 1)).astype(np.int64)
    return {"bleu_correct": correct, "bleu_guess": guess, "bleu_testlen": testlen, "bleu_reflen": testlen.copy(),
            "METEOR": rng.random(n), "ROUGE_L": rng.random(n), "CIDEr-D": quality * 2 + rng.normal(0, 0.3, n)}


# ------------------------------------------------------------------------------------------------ Holm

def test_holm_by_hand():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> kept monotone: 0.06
    assert holm([0.01, 0.04, 0.03, None, 0.005]) == pytest.approx([0.03, 0.06, 0.06, None, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([None, None]) == [None, None] and holm([]) == []


# ------------------------------------------------------------------------------------------------ intervals

def test_bootstrap_coverage_of_a_mean_and_analytic_se():
    """300 datasets of 200 Bernoulli(0.7) items: the 95% interval covers 0.7 about 95% of the time."""
    rng = np.random.default_rng(11)
    hits, ratios = 0, []
    for i in range(300):
        data = {"correct": (rng.random(200) < 0.7).astype(float)}
        iv = bootstrap(data, mean_aggregate, resamples=500, seed=i).intervals["acc"]
        hits += iv.low <= 0.7 <= iv.high
        ratios.append(iv.se / iv.se_analytic)
    assert 0.91 <= hits / 300 <= 0.98
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.05)  # bootstrap SE agrees with the exact formula


def test_bootstrap_coverage_of_a_corpus_ratio_through_the_real_aggregator():
    """Text-to-image recall@5 is a ratio of sums over images (not a mean): it goes through the generic
    resampling path with the real retrieval aggregator. Truth: E[hits] / E[captions] = 2/3 here."""
    agg, _ = resolve_aggregator("recall_at_k")
    rng = np.random.default_rng(12)
    n, hits = 150, 0
    for i in range(200):
        n_caps = rng.integers(1, 6, n)
        p = 0.3 + 0.1 * n_caps  # images with more captions are easier: the ratio is not a mean of rates
        stats = {"n_captions": n_caps, "t2i_hits@5": rng.binomial(n_caps, p).astype(float),
                 "i2t_rank": rng.integers(0, 10, n)}
        if i == 0:  # neither recall is the mean of a stored statistic: both take the generic path
            assert plain_mean_keys(stats, agg, agg(stats), ["t2i_R@5", "i2t_R@5"], rng_for(0)) == {}
        iv = bootstrap(stats, agg, metrics=["t2i_R@5"], resamples=300, seed=i).intervals["t2i_R@5"]
        assert iv.se_analytic is None
        hits += iv.low <= 2 / 3 <= iv.high
    assert 0.90 <= hits / 200 <= 0.99


def test_plain_mean_detection_on_real_aggregators():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 20, 500)
    logits = rng.normal(size=(500, 20))
    logits[np.arange(500), labels] += 1.5
    _, extra = classification.score(logits, labels)
    agg, _ = resolve_aggregator("classification")
    found = plain_mean_keys(extra["stats"], agg, agg(extra["stats"]), ["top1", "top5", "mean_per_class_recall"],
                            rng_for(0))
    assert found == {"top1": "top1", "top5": "top5"}  # balanced accuracy is not a plain mean
    stats = caption_stats(rng, 300, 0.5)
    found = plain_mean_keys(stats, captions_aggregate, captions_aggregate(stats), ["CIDEr-D", "Bleu_4", "ROUGE_L"],
                            rng_for(0))
    assert found == {"CIDEr-D": "CIDEr-D", "ROUGE_L": "ROUGE_L"}  # corpus BLEU is a ratio of sums


def test_intervals_are_reproducible_and_recorded():
    stats = {"correct": (np.random.default_rng(3).random(300) < 0.6).astype(float)}
    a = bootstrap(stats, mean_aggregate, resamples=200, seed=5, alpha=0.1).intervals["acc"]
    b = bootstrap(stats, mean_aggregate, resamples=200, seed=5, alpha=0.1).intervals["acc"]
    c = bootstrap(stats, mean_aggregate, resamples=200, seed=6, alpha=0.1).intervals["acc"]
    assert (a.low, a.high) == (b.low, b.high) and (a.low, a.high) != (c.low, c.high)
    assert (a.resamples, a.seed, a.alpha, a.n, a.method) == (200, 5, 0.1, 300, "percentile bootstrap over items")
    wide = bootstrap(stats, mean_aggregate, resamples=200, seed=5, alpha=0.01).intervals["acc"]
    assert wide.low < a.low and wide.high > a.high


def test_no_interval_is_ever_invented():
    stats = {"correct": np.ones(10)}
    missing, reason = resolve_aggregator("fid-needs-real-features")
    assert missing is None and "unknown metric" in reason
    iv = bootstrap(stats, missing, metrics=["fid"], reported={"fid": 12.0}, unavailable_reason=reason).intervals["fid"]
    assert (iv.value, iv.low, iv.high) == (12.0, None, None) and "unknown metric" in iv.note

    def broken(s):
        raise ValueError("needs the real set's features")
    iv = bootstrap(stats, broken, metrics=["fid"]).intervals["fid"]
    assert iv.low is None and "needs the real set's features" in iv.note

    iv = bootstrap(stats, mean_aggregate, metrics=["other"]).intervals["other"]
    assert iv.low is None and "does not recompute" in iv.note
    iv = bootstrap(stats, mean_aggregate, metrics=["acc"], reported={"acc": None}).intervals["acc"]
    assert iv.low is None and "unavailable" in iv.note
    # WER is undefined on resamples drawing only empty references: no interval rather than a biased one.
    w = wer.item_stats(["a", "", ""], ["a", "", ""])
    iv = bootstrap(w, wer.aggregate, metrics=["wer"], resamples=200).intervals["wer"]
    assert iv.low is None and "undefined on" in iv.note
    with pytest.raises(MMBenchError, match="resamples"):
        bootstrap(stats, mean_aggregate, resamples=0)
    with pytest.raises(MMBenchError, match="alpha"):
        bootstrap(stats, mean_aggregate, alpha=1.5)


def test_approximation_is_named():
    stats = caption_stats(np.random.default_rng(2), 100, 0.5)
    reported = {"METEOR": float(np.mean(stats["METEOR"])) + 0.02}  # the scorer's corpus METEOR differs
    iv = bootstrap(stats, captions_aggregate, metrics=["METEOR"], reported=reported, resamples=100).intervals["METEOR"]
    assert iv.value == reported["METEOR"] and iv.approximation == pytest.approx(np.mean(stats["METEOR"]))
    assert "approximation" in iv.note

    def named(s):
        return captions_aggregate(s)
    named.approximations = {"METEOR": "mean of segment METEOR scores"}
    iv = bootstrap(stats, named, metrics=["METEOR"], reported=reported, resamples=100).intervals["METEOR"]
    assert "mean of segment METEOR scores" in iv.note


def test_time_budget_refuses_slow_metrics_but_not_plain_means():
    def slow(stats):
        time.sleep(0.01)  # e.g. FID on 2048-d features takes seconds per recomputation
        correct = stats["correct"]
        return {"acc": float(np.mean(correct)), "ratio": float(np.sum(correct) / len(correct) ** 0.5)}
    stats = {"correct": (np.random.default_rng(5).random(100) < 0.5).astype(float)}
    start = time.perf_counter()
    iv = bootstrap(stats, slow, resamples=1000, time_budget_s=1.0).intervals
    assert time.perf_counter() - start < 1.0
    assert iv["acc"].low is not None  # a plain mean costs one gather, whatever the aggregator's speed
    assert iv["ratio"].low is None and "over the time budget of 1 s" in iv["ratio"].note
    t = paired_test(stats, stats, slow, metrics=["acc", "ratio"], higher_is_better={}, resamples=1000,
                    time_budget_s=1.0)
    assert t["acc"].p_two_sided == 1.0 and t["ratio"].p_two_sided is None and "time budget" in t["ratio"].note


def test_5k_items_1000_resamples_in_seconds():
    """The generic path (one aggregator call per resample) on a corpus metric at the size the issue names."""
    stats = caption_stats(np.random.default_rng(4), 5000, 0.5)
    start = time.perf_counter()
    iv = bootstrap(stats, captions_aggregate, resamples=1000).intervals
    elapsed = time.perf_counter() - start
    assert iv["Bleu_4"].low < iv["Bleu_4"].value < iv["Bleu_4"].high
    assert elapsed < 20, f"bootstrap of caption metrics over 5000 items took {elapsed:.1f} s"


# ------------------------------------------------------------------------------------------------ paired

def paired_binary(rng: np.random.Generator, n: int, acc_base: float, acc_new: float):
    """Correlated outcomes (a shared item difficulty), as two models on the same items produce."""
    difficulty = rng.random(n)
    noise = rng.normal(0, 0.15, (2, n))
    base = (difficulty + noise[0] < acc_base).astype(float)
    new = (difficulty + noise[1] < acc_new).astype(float)
    return {"correct": base}, {"correct": new}


def test_paired_bootstrap_size_under_the_null():
    rng = np.random.default_rng(21)
    two, worse = 0, 0
    sims = 400
    for i in range(sims):
        b, n = paired_binary(rng, 300, 0.7, 0.7)
        t = paired_test(b, n, mean_aggregate, metrics=["acc"], higher_is_better={"acc": True}, resamples=400,
                        seed=i)["acc"]
        two += t.p_two_sided < 0.05
        worse += t.p_worse < 0.05
    assert 0.02 <= two / sims <= 0.09
    assert 0.02 <= worse / sims <= 0.09


def test_paired_permutation_size_under_the_null():
    rng = np.random.default_rng(22)
    rejections = 0
    for i in range(300):
        b, n = paired_binary(rng, 300, 0.6, 0.6)
        t = paired_test(b, n, mean_aggregate, metrics=["acc"], higher_is_better={"acc": True}, resamples=400,
                        seed=i, method="permutation")["acc"]
        rejections += t.p_two_sided < 0.05
    assert 0.02 <= rejections / 300 <= 0.09


@pytest.mark.parametrize("method", ["bootstrap", "permutation"])
def test_planted_regression_is_detected(method):
    """NEW loses 6 points of accuracy on 1000 items (a fine-tune that forgot): found nearly every time."""
    rng = np.random.default_rng(23)
    found = 0
    for i in range(40):
        b, n = paired_binary(rng, 1000, 0.75, 0.69)
        t = paired_test(b, n, mean_aggregate, metrics=["acc"], higher_is_better={"acc": True}, resamples=500,
                        seed=i, method=method)["acc"]
        found += t.p_worse < 0.05 and t.diff < 0 and t.high < 0.01
    assert found >= 36


def test_planted_regression_in_a_corpus_metric():
    """Corpus BLEU-4 (the generic path: the aggregator runs on every resample of both runs)."""
    rng = np.random.default_rng(24)
    base = caption_stats(rng, 400, 0.6)
    new = dict(base)
    new["bleu_correct"] = (base["bleu_correct"] * 0.8).astype(np.int64)
    t = paired_test(base, new, captions_aggregate, metrics=["Bleu_4", "CIDEr-D"], higher_is_better={},
                    resamples=300)
    assert t["Bleu_4"].p_worse < 0.01 and t["Bleu_4"].high < 0 and t["Bleu_4"].se_analytic is None
    assert t["CIDEr-D"].p_two_sided == 1.0 and t["CIDEr-D"].diff == 0  # untouched metric: no difference


def test_identical_runs_compare_as_equal():
    rng = np.random.default_rng(25)
    stats = caption_stats(rng, 200, 0.5)
    for method in ("bootstrap", "permutation"):
        tests = paired_test(stats, stats, captions_aggregate, metrics=["Bleu_4", "CIDEr-D"], higher_is_better={},
                            resamples=200, method=method)
        for t in tests.values():
            assert (t.diff, t.low, t.high, t.p_two_sided, t.p_worse) == (0.0, 0.0, 0.0, 1.0, 1.0)


def test_lower_is_better_orientation_with_wer():
    refs = ["the cat sat on the mat", "a red circle", "two green triangles and a square"] * 40
    rng = np.random.default_rng(26)
    good = [" ".join(w if rng.random() > 0.05 else "x" for w in r.split()) for r in refs]
    bad = [" ".join(w if rng.random() > 0.25 else "x" for w in r.split()) for r in refs]
    sg, sb = wer.item_stats(good, refs), wer.item_stats(bad, refs)
    hib = {"wer": False}
    worse = paired_test(sg, sb, wer.aggregate, metrics=["wer"], higher_is_better=hib, resamples=300)["wer"]
    better = paired_test(sb, sg, wer.aggregate, metrics=["wer"], higher_is_better=hib, resamples=300)["wer"]
    assert worse.diff > 0 and worse.drop > 0 and worse.p_worse < 0.01
    assert better.diff < 0 and better.drop < 0 and better.p_worse > 0.99
    assert worse.p_two_sided < 0.01 and better.p_two_sided < 0.01


def test_paired_refuses_different_item_counts_and_unswappable_stats():
    with pytest.raises(MMBenchError, match="BASE has 3 items and NEW has 4"):
        paired_test({"correct": np.ones(3)}, {"correct": np.ones(4)}, mean_aggregate, metrics=["acc"],
                    higher_is_better={})
    t = paired_test({"correct": np.ones(3)}, {"correct": np.ones(3), "extra": np.ones(3)}, mean_aggregate,
                    metrics=["acc"], higher_is_better={}, method="permutation")["acc"]
    assert t.p_two_sided is None and "cannot be swapped" in t.note


def test_retrieval_paired_on_real_embeddings():
    """Two retrieval runs on the same images: the noisier text encoder is significantly worse at R@1."""
    rng = np.random.default_rng(27)
    img = rng.normal(size=(200, 16))
    t2i = np.repeat(np.arange(200), 2)
    _, a = retrieval.score(img, img[t2i] + rng.normal(scale=1.0, size=(400, 16)), t2i)
    _, b = retrieval.score(img, img[t2i] + rng.normal(scale=2.0, size=(400, 16)), t2i)
    agg, _ = resolve_aggregator("recall_at_k")
    t = paired_test(a["stats"], b["stats"], agg, metrics=["t2i_R@1", "i2t_R@1"], higher_is_better={}, resamples=300)
    assert t["t2i_R@1"].p_worse < 0.01 and t["i2t_R@1"].p_worse < 0.01


def test_bootstrap_keeps_constant_entries_fixed():
    """FID over generated items: the reference set's mean/covariance (const: entries) are never resampled."""
    from mmbench.metrics import image_generation as ig
    from mmbench.report.stats import bootstrap

    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 4))
    fake = rng.normal(0.3, 1.0, size=(200, 4))
    mu, sigma = ig.feature_stats(real)
    stats = {"features": fake, ig.CONST_REAL_MU: mu, ig.CONST_REAL_SIGMA: sigma}
    fid = ig.aggregate(stats)["fid"]
    b = bootstrap(stats, ig.aggregate, metrics=["fid"], resamples=200, seed=1)
    interval = b.intervals["fid"] if hasattr(b, "intervals") else b["fid"]
    low, high = (interval.low, interval.high)
    assert low < fid < high and low > 0
