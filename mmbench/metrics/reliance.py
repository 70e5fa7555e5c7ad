"""Modality reliance: how much of a score comes from the image (or audio), with a paired bootstrap CI and a
verdict that is only given when the interval clears its threshold.

Reliance = score(real input) - best score over the ablated inputs (blank, noise, shuffled, none), signed so
that positive always means "the real input helps" (for lower-is-better metrics such as WER the difference
is reversed). Relative reliance divides by the real score's distance from the metric's worst value, so the
thresholds mean "share of the score that depends on the input":

- ``uses-image``: the lower end of the 95% CI of relative reliance is at least USES_THRESHOLD (0.25);
- ``collapsed``:  the upper end is below COLLAPSED_THRESHOLD (0.10);
- ``weak``:       anything in between (including an interval too wide to decide).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

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


def paired_bootstrap(score_fn: Callable[[np.ndarray], tuple[float, float]], n_items: int, resamples: int = 1000,
                     seed: int = 0, alpha: float = 0.05) -> tuple[float, float, np.ndarray]:
    """Percentile CI of ``score_fn(idx)[1]`` (relative reliance) over item resamples shared by every
    condition (the same items under each input, so the comparison is paired)."""
    rng = np.random.default_rng(seed)
    values = np.array([score_fn(rng.integers(0, n_items, n_items))[1] for _ in range(resamples)])
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi), values


def answer_change_rate(real: list[str], other: list[str]) -> float:
    """Share of items whose (normalised) answer changes when the input is swapped."""
    pairs = [(a.strip().lower(), b.strip().lower()) for a, b in zip(real, other)]
    return float(np.mean([a != b for a, b in pairs])) if pairs else float("nan")
