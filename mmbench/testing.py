"""A helper for model repositories' own test suites: fail a test when a new run regressed against a baseline.

Use it from pytest (or any test runner)::

    from mmbench.testing import assert_no_regression

    def test_finetune_keeps_zeroshot_accuracy():
        assert_no_regression("runs/baseline", "runs/finetune", max_drop=0.005, metrics=["top1"])

BASE and NEW are run folders written by ``mmbench run``, run ids in ``store`` or ``model:NAME``. The rule is
``mmbench compare --fail-on-regression``'s: a metric regresses when NEW is worse with a Holm-adjusted
one-sided paired p-value below ``alpha`` and, with ``max_drop``, by more than ``max_drop`` (in the metric's
units). Runs on different items are refused with an :class:`mmbench.errors.MMBenchError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from mmbench.report.compare import Comparison, compare_runs


def assert_no_regression(base: str | Path, new: str | Path, *, max_drop: float | None = None, alpha: float = 0.05,
                         metrics: Sequence[str] | None = None, tasks: Sequence[str] | None = None,
                         store: str | Path | None = None, resamples: int = 1000, seed: int = 0,
                         method: str = "bootstrap", time_budget_s: float | None = None,
                         allow_missing: bool = False) -> Comparison:
    """Raise AssertionError (with the per-task table) when NEW regressed against BASE; else the Comparison."""
    __tracebackhide__ = True  # pytest shows the failing call, not this helper's frame
    comparison = compare_runs(base, new, store=None if store is None else Path(store), max_drop=max_drop,
                              alpha=alpha, metrics=metrics, tasks=tasks, resamples=resamples, seed=seed,
                              method=method, time_budget_s=time_budget_s, allow_missing=allow_missing)
    if not comparison.passed:
        bad = ", ".join(f"{r.task}/{r.metric} {r.diff:+.4g}" for r in comparison.regressions.itertuples())
        raise AssertionError(f"{new} regressed against {base}: {bad}\n\n{comparison.table()}")
    return comparison
