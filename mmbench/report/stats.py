"""Uncertainty for every metric: bootstrap intervals over items, analytic standard errors, paired tests, Holm.

Every task result stores per-item statistics and the name of an aggregator (its metrics, see
``mmbench.metrics.api.aggregator_for``)
that recomputes the corpus metrics from the statistics of any multiset of items. So one procedure serves
plain means (accuracy) and corpus metrics alike (CIDEr-D, BLEU, recall@k, WER, FID): draw item indices with
replacement, re-aggregate, repeat.

- :func:`bootstrap`: percentile intervals (B resamples, a seed, alpha, all recorded in each
  :class:`Interval`). A metric found to be the plain mean of one per-item statistic (verified on the data,
  see :func:`plain_mean_keys`) is resampled in one vectorised gather and also gets the analytic standard
  error of a mean; any other metric calls the aggregator once per resample.
- :func:`paired_test`: two runs on the same items, resampled with the *same* indices (or, for the
  permutation test, with per-item swaps of the two runs' statistics): CI of the difference, a two-sided
  p-value (tables) and a one-sided p-value for "NEW is worse" (regression gates), respecting
  higher/lower-is-better.
- :func:`holm`: Holm's step-down adjustment across the tests of one comparison.

No interval is ever invented: a missing or failing aggregator, absent statistics or resamples where the
metric is undefined give an Interval with ``low = high = None`` and a ``note`` saying why.

Why hand-written rather than ``scipy.stats.bootstrap`` / ``permutation_test``: those resample arrays of
observations for one statistic at a time, while ours are dict-of-arrays aggregators that compute many
metrics per call, the paired test must reuse identical index draws for both runs (and every model on a task
must see the same draws so leaderboard averages keep the correlation between columns); the resampling itself
is a few lines of numpy, in the engine shared with the probes (``mmbench.metrics.resampling``: the random
streams, the draws in bounded blocks, the replicates, the percentile interval). Holm is hand-written because
scipy only ships Benjamini-Hochberg/Yekutieli and statsmodels would be a heavy dependency for one formula.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.metrics.base import CONST_PREFIX, subset
from mmbench.metrics.resampling import BOOTSTRAP, SIGN_FLIP, percentile_interval, replicates, rng_for

Aggregate = Callable[[Mapping[str, np.ndarray]], Mapping[str, float]]

DEFAULT_RESAMPLES = 1000
DEFAULT_ALPHA = 0.05
METHODS = ("bootstrap", "permutation")
BOOTSTRAP_METHOD = "percentile bootstrap over items"
_REL_TOL = 1e-9


@dataclass(frozen=True)
class Interval:
    """A metric's point estimate and its bootstrap interval, with everything needed to reproduce it."""

    metric: str
    value: float | None  # the reported value (not a bootstrap mean)
    low: float | None
    high: float | None
    se: float | None  # standard deviation of the bootstrap replicates
    se_analytic: float | None  # only for plain means of per-item values
    n: int
    method: str
    resamples: int
    seed: int
    alpha: float
    note: str = ""  # why there is no interval, or what approximation the interval is of
    # The aggregator's value on all items when it is not the reported value (the interval is of that
    # approximation, e.g. captions' METEOR: a mean of segment scores for a corpus score); None otherwise.
    approximation: float | None = None

    @property
    def available(self) -> bool:
        return self.low is not None and self.high is not None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PairedTest:
    """NEW minus BASE for one metric on the same items: difference, its CI and p-values."""

    metric: str
    base: float | None
    new: float | None
    diff: float | None  # new - base, in the metric's units
    low: float | None  # percentile bootstrap CI of the difference
    high: float | None
    p_two_sided: float | None  # H0: no difference
    p_worse: float | None  # one-sided, H0: NEW is not worse (orientation from higher_is_better)
    se_analytic: float | None  # of the mean per-item difference, for plain means
    higher_is_better: bool
    n: int
    method: str
    resamples: int
    seed: int
    alpha: float
    note: str = ""

    @property
    def tested(self) -> bool:
        return self.p_two_sided is not None

    @property
    def drop(self) -> float | None:
        """How much worse NEW is, in the metric's units (negative when it is better)."""
        if self.diff is None:
            return None
        return -self.diff if self.higher_is_better else self.diff

    def to_dict(self) -> dict:
        return {**asdict(self), "drop": self.drop}


# -------------------------------------------------------------------------------------------------- helpers

def resolve_aggregator(name: str | None) -> tuple[Aggregate | None, str | None]:
    """(the function recomputing the metrics of a result whose aggregator is ``name``, None) or (None, why
    there is none): see mmbench.metrics.api.aggregator_for."""
    from mmbench.metrics.api import aggregator_for

    if not name:
        return None, "the result names no aggregator, so its metrics cannot be recomputed on resamples"
    try:
        return aggregator_for(name), None
    except MMBenchError as exc:
        return None, f"aggregator {name!r} cannot be used ({exc}), so its metrics cannot be recomputed on resamples"


def _check_settings(resamples: int, alpha: float, method: str = "bootstrap") -> None:
    if int(resamples) < 1:
        raise MMBenchError(f"the number of resamples must be at least 1, got {resamples}; 1000 is the default")
    if not 0 < float(alpha) < 1:
        raise MMBenchError(f"alpha must be between 0 and 1, got {alpha}; 0.05 gives 95% intervals")
    if method not in METHODS:
        raise MMBenchError(f"unknown test method {method!r}: use one of {', '.join(METHODS)}")


def _arrays(stats: Mapping[str, object]) -> tuple[dict[str, np.ndarray], int]:
    """The statistics as arrays and the number of items (constant entries, CONST_PREFIX, do not count)."""
    arrays = {k: np.asarray(v) for k, v in stats.items()}
    sizes = {len(v) for k, v in arrays.items() if v.ndim > 0 and not k.startswith(CONST_PREFIX)}
    if len(sizes) > 1:
        raise MMBenchError(f"per-item statistics disagree on the number of items ({sorted(sizes)}): the "
                           f"stored statistics are corrupt; re-run the task")
    return arrays, (sizes.pop() if sizes else 0)


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None or not np.isfinite(a) or not np.isfinite(b):
        return False
    return abs(a - b) <= _REL_TOL * max(1.0, abs(a), abs(b))


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def plain_mean_keys(stats: Mapping[str, np.ndarray], aggregate: Aggregate, full: Mapping[str, float],
                    metrics: Sequence[str], rng: np.random.Generator) -> dict[str, str]:
    """Metrics that are the plain mean of one per-item statistic: metric -> statistic key.

    A candidate (a finite 1-D numeric statistic whose mean equals the metric on all items, the one named
    like the metric first) is kept only when it also equals the aggregator's value on two random resamples.
    Such metrics are resampled in one vectorised gather (no aggregator calls) and have an exact analytic SE.
    """
    candidates = {k: v.astype(np.float64) for k, v in stats.items() if not k.startswith(CONST_PREFIX)
                  and v.ndim == 1 and len(v) and v.dtype.kind in "biuf" and np.isfinite(v).all()}
    guesses: dict[str, str] = {}
    for m in metrics:
        for key in sorted(candidates, key=lambda k: k != m):
            if _close(float(candidates[key].mean()), _float(full.get(m))):
                guesses[m] = key
                break
    n = _arrays(stats)[1]
    for _ in range(2):
        if not guesses:
            break
        idx = rng.integers(0, n, size=n)
        out = aggregate(subset(stats, idx))
        guesses = {m: k for m, k in guesses.items() if _close(float(candidates[k][idx].mean()), _float(out.get(m)))}
    return guesses


def _approximation(aggregate: Aggregate, metric: str, full: float, reported: float) -> str:
    named = getattr(aggregate, "approximations", {}).get(metric)
    what = f"the approximation {named}" if named else "the aggregator's approximation"
    return (f"the interval is of {what}, which gives {full:.6g} on all items where the reported value is "
            f"{reported:.6g}")


def analytic_se(values: np.ndarray) -> float | None:
    """Standard error of the mean of per-item values (None for fewer than two items)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None


# ------------------------------------------------------------------------------------------------ bootstrap

@dataclass(frozen=True)
class Bootstrap:
    """Intervals per metric, and the replicates (kept so that averages over columns get intervals too)."""

    intervals: dict[str, Interval]
    replicates: dict[str, np.ndarray]


def bootstrap(stats: Mapping[str, object], aggregate: Aggregate | None, *, metrics: Sequence[str] | None = None,
              reported: Mapping[str, float | None] | None = None, resamples: int = DEFAULT_RESAMPLES,
              seed: int = 0, alpha: float = DEFAULT_ALPHA, stream: str = "", unavailable_reason: str = "",
              time_budget_s: float | None = None) -> Bootstrap:
    """Percentile bootstrap intervals over items for ``metrics`` (default: everything the aggregator gives).

    ``reported``: the values as published in the result (the point estimates shown); when the aggregator
    gives something else on all items (e.g. captions' METEOR: a mean of segment scores instead of the
    corpus score), the interval's note says it is the interval of that approximation. ``stream`` (the task
    name) selects the random stream, so every model on a task sees the same index draws.
    ``time_budget_s``: when recomputing a metric on every resample would take longer (estimated from the
    time of the all-items call), that metric gets no interval and a note saying so (e.g. FID on 2048-d
    features); plain means are never affected (they cost one gather).
    """
    _check_settings(resamples, alpha)
    reported = dict(reported or {})
    arrays, n = _arrays(stats)
    names = list(metrics) if metrics is not None else None

    def none(metric: str, note: str) -> Interval:
        return Interval(metric, _float(reported.get(metric)), None, None, None, None, n, BOOTSTRAP_METHOD,
                        int(resamples), int(seed), float(alpha), note)

    reason = None if aggregate is not None else (unavailable_reason or "no aggregator")
    if reason is None and n == 0:
        reason = "no per-item statistics were stored with this result"
    full: Mapping[str, float] = {}
    seconds = 0.0
    if reason is None:
        try:
            start = time.perf_counter()
            full = aggregate(arrays)  # type: ignore[misc]
            seconds = time.perf_counter() - start
        except Exception as exc:  # an aggregator that cannot handle these statistics: say so, invent nothing
            reason = f"the aggregator failed on all items ({type(exc).__name__}: {exc})"
    if names is None:
        names = list(full) if full else list(reported)
    if reason is not None:
        return Bootstrap({m: none(m, reason) for m in names}, {})

    intervals: dict[str, Interval] = {}
    todo: list[str] = []
    for m in names:
        value = _float(reported[m]) if m in reported else _float(full.get(m))
        if m in reported and value is None:
            intervals[m] = none(m, "the metric has no value (unavailable), so it has no interval")
        elif m not in full:
            intervals[m] = none(m, "the aggregator does not recompute this metric from item statistics")
        else:
            todo.append(m)
    rng = rng_for(seed, stream)
    try:
        means = plain_mean_keys(arrays, aggregate, full, todo, rng_for(seed, stream + "/check"))
        over = _over_budget(seconds, resamples, time_budget_s, [m for m in todo if m not in means])
        intervals.update({m: none(m, over) for m in todo if over and m not in means})
        todo = [m for m in todo if m not in intervals]
        reps = _replicates(arrays, n, aggregate, todo, means, resamples, rng)
    except Exception as exc:
        return Bootstrap({**intervals, **{m: none(m, f"the aggregator failed on a resample "
                                                     f"({type(exc).__name__}: {exc})") for m in todo}}, {})
    replicates = {}
    for m in todo:
        value = _float(reported[m]) if m in reported else float(full[m])
        rep = reps[m]
        bad = int(np.count_nonzero(~np.isfinite(rep)))
        if bad:
            intervals[m] = none(m, f"the metric is undefined on {bad} of {resamples} resamples (e.g. no "
                                   f"reference words), so the bootstrap gives no interval")
            continue
        low, high = percentile_interval(rep, alpha)
        approx = value is not None and not _close(value, float(full[m]))
        note = _approximation(aggregate, m, float(full[m]), value) if approx else ""
        se_a = analytic_se(arrays[means[m]]) if m in means else None
        intervals[m] = Interval(m, value, low, high, float(rep.std(ddof=1)) if resamples > 1 else 0.0, se_a, n,
                                BOOTSTRAP_METHOD, int(resamples), int(seed), float(alpha), note,
                                float(full[m]) if approx else None)
        replicates[m] = rep
    return Bootstrap({m: intervals[m] for m in names}, replicates)


def _over_budget(seconds: float, calls: int, budget: float | None, slow: Sequence[str]) -> str:
    """Why the slow metrics get no interval, or "" when they fit in the time budget."""
    if budget is None or not slow or seconds * calls <= budget:
        return ""
    return (f"recomputing the metric takes {seconds:.2g} s, so {calls} resamples would take about "
            f"{seconds * calls:,.0f} s, over the time budget of {budget:g} s: no interval; lower --resamples or "
            f"raise --time-budget")


def _replicates(arrays: dict[str, np.ndarray], n: int, aggregate: Aggregate, metrics: Sequence[str],
                means: Mapping[str, str], resamples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Bootstrap replicates of ``metrics``: gathers for plain means, one aggregator call per resample else."""
    slow = [m for m in metrics if m not in means]
    gathered = {m: arrays[means[m]].astype(np.float64) for m in metrics if m in means}
    return replicates(n, resamples, rng, means=gathered, statistic=lambda idx: aggregate(subset(arrays, idx)),
                      names=slow, scheme=BOOTSTRAP)


# ------------------------------------------------------------------------------------------------- paired

def paired_test(base_stats: Mapping[str, object], new_stats: Mapping[str, object], aggregate: Aggregate | None,
                *, metrics: Sequence[str], higher_is_better: Mapping[str, bool],
                reported_base: Mapping[str, float | None] | None = None,
                reported_new: Mapping[str, float | None] | None = None, method: str = "bootstrap",
                resamples: int = DEFAULT_RESAMPLES, seed: int = 0, alpha: float = DEFAULT_ALPHA,
                stream: str = "", unavailable_reason: str = "", time_budget_s: float | None = None
                ) -> dict[str, PairedTest]:
    """Test NEW against BASE on the same items (the caller aligns both to one item order).

    ``method="bootstrap"``: the same index draws resample both runs; p-values come from the bootstrap
    distribution of the difference shifted to the null. ``method="permutation"``: each item's statistics
    are swapped between the runs at random (valid under H0 that the runs are exchangeable per item); the
    CI of the difference still comes from the paired bootstrap. ``time_budget_s``: as for :func:`bootstrap`.
    """
    _check_settings(resamples, alpha, method)
    base, n = _arrays(base_stats)
    new, n_new = _arrays(new_stats)
    if n != n_new:
        raise MMBenchError(f"paired test: BASE has {n} items and NEW has {n_new}: align both runs to the same "
                           f"items first")
    rb, rn = dict(reported_base or {}), dict(reported_new or {})
    label = f"paired {'permutation test (sign flips)' if method == 'permutation' else 'bootstrap'} over items"

    def none(m: str, note: str) -> PairedTest:
        b, nw = _float(rb.get(m)), _float(rn.get(m))
        diff = nw - b if b is not None and nw is not None else None
        return PairedTest(m, b, nw, diff, None, None, None, None, None, bool(higher_is_better.get(m, True)), n,
                          label, int(resamples), int(seed), float(alpha), note)

    reason = _untestable(aggregate, unavailable_reason, n, method, base, new)
    full_b: Mapping[str, float] = {}
    full_n: Mapping[str, float] = {}
    seconds = 0.0
    if reason is None:
        try:
            start = time.perf_counter()
            full_b, full_n = aggregate(base), aggregate(new)  # type: ignore[misc]
            seconds = time.perf_counter() - start
        except Exception as exc:
            reason = f"the aggregator failed on all items ({type(exc).__name__}: {exc})"
    if reason is not None:
        return {m: none(m, reason) for m in metrics}

    out: dict[str, PairedTest] = {}
    todo = []
    for m in metrics:
        if (m in rb and rb[m] is None) or (m in rn and rn[m] is None):
            out[m] = none(m, "the metric has no value in one of the runs (unavailable)")
        elif m not in full_b or m not in full_n:
            out[m] = none(m, "the aggregator does not recompute this metric from item statistics")
        else:
            todo.append(m)
    check = rng_for(seed, stream + "/check")
    try:
        mb = plain_mean_keys(base, aggregate, full_b, todo, check)
        mn = plain_mean_keys(new, aggregate, full_n, todo, check)
        means = {m: k for m, k in mb.items() if mn.get(m) == k}
        over = _over_budget(seconds, resamples * (2 if method == "permutation" else 1), time_budget_s,
                            [m for m in todo if m not in means])
        out.update({m: none(m, over) for m in todo if over and m not in means})
        todo = [m for m in todo if m not in out]
        diffs = {m: new[k].astype(np.float64) - base[k].astype(np.float64) for m, k in means.items()}
        boot = _paired_replicates(base, new, n, aggregate, todo, diffs, resamples, rng_for(seed, stream))
        perm = _permutation_replicates(base, new, n, aggregate, todo, diffs, resamples,
                                       rng_for(seed, stream + "/permutation")) if method == "permutation" else {}
    except Exception as exc:
        out.update({m: none(m, f"the aggregator failed on a resample ({type(exc).__name__}: {exc})")
                    for m in todo})
        return {m: out[m] for m in metrics}

    for m in todo:
        b, nw = _float(rb.get(m, full_b[m])), _float(rn.get(m, full_n[m]))
        out[m] = _tested(m, b, nw, float(full_n[m]) - float(full_b[m]), boot[m], perm.get(m), diffs.get(m),
                         bool(higher_is_better.get(m, True)), n, label, resamples, seed, alpha) or \
            none(m, f"the metric is undefined on {int((~np.isfinite(boot[m])).sum())} of {resamples} resamples, "
                    f"so there is no test")
    return {m: out[m] for m in metrics}


def _untestable(aggregate: Aggregate | None, unavailable_reason: str, n: int, method: str,
                base: Mapping[str, np.ndarray], new: Mapping[str, np.ndarray]) -> str | None:
    """Why no paired test can run at all (None: it can)."""
    if aggregate is None:
        return unavailable_reason or "no aggregator"
    if n == 0:
        return "no per-item statistics were stored with these results"
    if method == "permutation" and set(base) != set(new):
        return (f"the runs store different item statistics ({sorted(set(base) ^ set(new))}), so items cannot be "
                f"swapped between them")
    return None


def _tested(m: str, b: float | None, nw: float | None, d_hat: float, rep: np.ndarray, null: np.ndarray | None,
            diffs: np.ndarray | None, hib: bool, n: int, label: str, resamples: int, seed: int,
            alpha: float) -> PairedTest | None:
    """The test of one metric from its replicates (``null``: the permutation null, else the shifted
    bootstrap); None when the metric is undefined on some resample."""
    if not np.isfinite(rep).all() or not np.isfinite(d_hat):
        return None
    sign = 1.0 if hib else -1.0
    tol = 1e-12 * (1.0 + abs(d_hat) + float(np.abs(rep).max(initial=0.0)))
    centred = null if null is not None else rep - d_hat  # the statistic under the null of no difference
    p_two = (1 + np.count_nonzero(np.abs(centred) >= abs(d_hat) - tol)) / (resamples + 1)
    p_worse = (1 + np.count_nonzero(sign * centred <= sign * d_hat + tol)) / (resamples + 1)
    low, high = percentile_interval(rep, alpha)
    diff = nw - b  # type: ignore[operator]
    note = ""
    if not _close(diff, d_hat) and not (abs(diff) < 1e-15 and abs(d_hat) < 1e-15):
        note = (f"the test is of the aggregator's approximation, whose difference on all items is {d_hat:.6g} "
                f"where the reported values differ by {diff:.6g}")
    return PairedTest(m, b, nw, diff, low, high, float(min(p_two, 1.0)), float(min(p_worse, 1.0)),
                      analytic_se(diffs) if diffs is not None else None, hib, n, label, int(resamples), int(seed),
                      float(alpha), note)


def _difference(new: Mapping[str, float], base: Mapping[str, float], metric: str) -> float:
    a, b = _float(new.get(metric)), _float(base.get(metric))
    return a - b if a is not None and b is not None else float("nan")


def _paired_replicates(base: dict[str, np.ndarray], new: dict[str, np.ndarray], n: int, aggregate: Aggregate,
                       metrics: Sequence[str], diffs: Mapping[str, np.ndarray], resamples: int,
                       rng: np.random.Generator) -> dict[str, np.ndarray]:
    """NEW-minus-BASE replicates: both runs resampled with the same item indices."""
    slow = [m for m in metrics if m not in diffs]

    def statistic(idx: np.ndarray) -> dict[str, float]:
        a, b = aggregate(subset(new, idx)), aggregate(subset(base, idx))
        return {m: _difference(a, b, m) for m in slow}

    return replicates(n, resamples, rng, means=diffs, statistic=statistic, names=slow, scheme=BOOTSTRAP)


def _permutation_replicates(base: dict[str, np.ndarray], new: dict[str, np.ndarray], n: int,
                            aggregate: Aggregate, metrics: Sequence[str], diffs: Mapping[str, np.ndarray],
                            resamples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """NEW-minus-BASE statistics after swapping each item's statistics between the runs with probability 1/2."""
    slow = [m for m in metrics if m not in diffs]

    def statistic(swap: np.ndarray) -> dict[str, float]:
        mixed_new, mixed_base = {}, {}
        for k, values in new.items():
            if k.startswith(CONST_PREFIX):  # the same for every item: each run keeps its own
                mixed_new[k], mixed_base[k] = values, base[k]
                continue
            mask = swap.reshape((n,) + (1,) * (values.ndim - 1))
            mixed_new[k] = np.where(mask, base[k], values)
            mixed_base[k] = np.where(mask, values, base[k])
        a, b = aggregate(mixed_new), aggregate(mixed_base)
        return {m: _difference(a, b, m) for m in slow}

    return replicates(n, resamples, rng, means=diffs, statistic=statistic, names=slow, scheme=SIGN_FLIP)


# ------------------------------------------------------------------------------------------------- Holm

def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None entries are not tests: they stay None, outside the family)."""
    present = [i for i, p in enumerate(pvalues) if p is not None]
    out: list[float | None] = [None] * len(pvalues)
    if not present:
        return out
    p = np.asarray([pvalues[i] for i in present], dtype=np.float64)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p[order]), 1.0)
    for rank, j in enumerate(order):
        out[present[j]] = float(adjusted[rank])
    return out
