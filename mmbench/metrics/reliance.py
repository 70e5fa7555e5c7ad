"""Modality reliance: how much of a score comes from the image (or audio), with a paired bootstrap CI and a
verdict that is only given when the interval clears its threshold.

Reliance = score(real input) - best score over the ablated inputs (blank, noise, shuffled, none), signed so
that positive always means "the real input helps" (for lower-is-better metrics such as WER the difference
is reversed). Relative reliance divides by the real score's distance from the metric's worst value, so the
thresholds mean "share of the score that depends on the input":

- ``uses-image``: the lower end of the 95% CI of relative reliance is at least USES_THRESHOLD (0.25);
- ``collapsed``:  the upper end is below COLLAPSED_THRESHOLD (0.10);
- ``weak``:       anything in between (including an interval too wide to decide).

The interval (:func:`reliance_interval`) resamples items with the shared engine
(``mmbench.metrics.resampling``), the same item indices under every input, so the comparison is paired.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from mmbench.metrics.base import Aggregator, ItemStats, subset
from mmbench.metrics.resampling import BOOTSTRAP, percentile_interval, replicates, rng_for

USES_THRESHOLD = 0.25
COLLAPSED_THRESHOLD = 0.10
VERDICT_RULE = (f"verdict from the 95% paired-bootstrap CI of relative reliance: uses-image if its lower end >= "
                f"{USES_THRESHOLD}, collapsed if its upper end < {COLLAPSED_THRESHOLD}, else weak")


def reliance(real: float, ablated: Mapping[str, float], higher_is_better: bool = True,
             worst: float = 0.0) -> tuple[float, float, str]:
    """(absolute reliance, relative reliance, the ablation that scored best)."""
    sign = 1.0 if higher_is_better else -1.0
    best_name = max(ablated, key=lambda k: sign * ablated[k])
    absolute = sign * (real - ablated[best_name])
    span = sign * (real - worst)
    relative = absolute / span if span > 1e-12 else 0.0
    return absolute, relative, best_name


def verdict(ci_low: float, ci_high: float) -> str:
    if ci_low >= USES_THRESHOLD:
        return "uses-image"
    if ci_high < COLLAPSED_THRESHOLD:
        return "collapsed"
    return "weak"


def reliance_interval(per_condition: Mapping[str, ItemStats], aggregate: Aggregator, metric: str,
                      ablations: Sequence[str], n_items: int, higher_is_better: bool = True, worst: float = 0.0,
                      resamples: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float, np.ndarray]:
    """Percentile CI of relative reliance over item resamples shared by every condition: ``per_condition``
    holds the wrapped task's per-item statistics under ``real`` and each of ``ablations`` (the same items in
    the same order), ``aggregate`` recomputes ``metric`` from them. The draws are the engine's stream of
    ``seed`` alone (``rng_for(seed)``). Returns (low, high, the replicates)."""

    def statistic(idx: np.ndarray) -> dict[str, float]:
        values = {c: aggregate(subset(per_condition[c], idx))[metric] for c in ["real", *ablations]}
        _, relative, _ = reliance(values["real"], {c: values[c] for c in ablations}, higher_is_better, worst)
        return {"relative": relative}

    values = replicates(n_items, resamples, rng_for(seed), statistic=statistic, names=["relative"],
                        scheme=BOOTSTRAP)["relative"]
    low, high = percentile_interval(values, alpha)
    return low, high, values


def answer_change_rate(real: list[str], other: list[str]) -> float:
    """Share of items whose (normalised) answer changes when the input is swapped."""
    pairs = [(a.strip().lower(), b.strip().lower()) for a, b in zip(real, other)]
    return float(np.mean([a != b for a, b in pairs])) if pairs else float("nan")
