"""Comparing two runs on the same items, and the regression gate built on it.

``compare_runs(BASE, NEW)`` pairs the runs' task results (by task when each run holds one model, else by
(model, task)), refuses pairs whose items differ, tests every chosen metric with :func:`stats.paired_test`,
and adjusts the p-values with Holm across all the tests of the comparison. A test is a **regression** when
NEW is worse with Holm-adjusted one-sided p < alpha and, with ``max_drop``, the drop is also larger than
``max_drop`` (absolute, in the metric's units: 0.01 is one point of accuracy). Lower-is-better metrics
(WER) are oriented accordingly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tabulate import tabulate

from mmbench.errors import MMBenchError
from mmbench.metrics.base import CONST_PREFIX
from mmbench.report.select import ResultRecord, run_records
from mmbench.report.stats import DEFAULT_ALPHA, DEFAULT_RESAMPLES, PairedTest, holm, paired_test, resolve_aggregator

VERDICT_WORSE = "WORSE"
VERDICT_WITHIN = "worse, within max-drop"
VERDICT_BETTER = "better"
VERDICT_SAME = "no significant difference"
VERDICT_UNTESTED = "not tested"


def align(base: ResultRecord, new: ResultRecord) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Both results' statistics in BASE's item order; refuses results that are not on the same items."""
    what = f"task {base.task!r}"
    if base.result.aggregator != new.result.aggregator:
        raise MMBenchError(f"{what}: BASE was scored with aggregator {base.result.aggregator!r} and NEW with "
                           f"{new.result.aggregator!r}; re-score both with the same mmbench version")
    for label, rec in (("BASE", base), ("NEW", new)):
        if len(set(rec.item_ids)) != len(rec.item_ids):
            raise MMBenchError(f"{what}: {label} ({rec.source}) lists an item id twice; its statistics are "
                               f"corrupt, re-run the task")
    base_ids, new_ids = set(base.item_ids), set(new.item_ids)
    if base_ids != new_ids:
        only_base = next((i for i in base.item_ids if i not in new_ids), None)
        first = (f"{only_base!r} is only in BASE" if only_base is not None else
                 f"{next(i for i in new.item_ids if i not in base_ids)!r} is only in NEW")
        raise MMBenchError(f"{what}: the runs are on different items (BASE {len(base.item_ids)}, NEW "
                           f"{len(new.item_ids)}; first difference: {first}); compare runs made on the same "
                           f"data with the same --limit")
    if base.result.data_fingerprint != new.result.data_fingerprint:
        raise MMBenchError(f"{what}: the item ids match but the data differ (fingerprints "
                           f"{base.result.data_fingerprint} vs {new.result.data_fingerprint}): the references "
                           f"or inputs changed; compare runs on the same data")
    position = {item: i for i, item in enumerate(new.item_ids)}
    order = np.asarray([position[i] for i in base.item_ids], dtype=np.int64)
    return dict(base.stats), {k: np.asarray(v) if k.startswith(CONST_PREFIX) else np.asarray(v)[order]
                              for k, v in new.stats.items()}


def _models(records: Sequence[ResultRecord]) -> list[str]:
    return sorted({r.model for r in records})


def pair_records(base: Sequence[ResultRecord], new: Sequence[ResultRecord], *, base_model: str | None = None,
                 new_model: str | None = None) -> tuple[list[tuple[ResultRecord, ResultRecord]], list[str]]:
    """Matching (BASE, NEW) results and notes on what did not match."""
    for label, recs, model in (("BASE", base, base_model), ("NEW", new, new_model)):
        if model is not None and model not in _models(recs):
            raise MMBenchError(f"{label} has no results for model {model!r}; it has {', '.join(_models(recs))}")
    base = [r for r in base if base_model is None or r.model == base_model]
    new = [r for r in new if new_model is None or r.model == new_model]
    by_task = len(_models(base)) == 1 and len(_models(new)) == 1  # a fine-tune against its baseline
    if not by_task and not set(_models(base)) & set(_models(new)):
        raise MMBenchError(f"BASE has models {', '.join(_models(base))} and NEW has {', '.join(_models(new))}: "
                           f"none in common; choose one of each with --base-model and --new-model")

    def key(r: ResultRecord) -> str | tuple[str, str]:
        return r.task if by_task else (r.model, r.task)

    new_by = {key(r): r for r in new}
    base_by = {key(r): r for r in base}
    pairs = [(b, new_by[k]) for k, b in base_by.items() if k in new_by]
    notes = [f"only in BASE (not compared): {' / '.join(k) if isinstance(k, tuple) else k}"
             for k in base_by if k not in new_by]
    notes += [f"only in NEW (not compared): {' / '.join(k) if isinstance(k, tuple) else k}"
              for k in new_by if k not in base_by]
    return pairs, notes


def _chosen_metrics(base: ResultRecord, new: ResultRecord, wanted: Sequence[str] | None) -> list[str]:
    """``wanted`` entries are ``metric`` or ``task:metric``; by default every metric with a value in both
    results except per-type breakdowns (names with ``[``)."""
    names = [m["name"] for m in base.result.metrics]
    if wanted:
        chosen = []
        for w in wanted:
            task, _, metric = w.rpartition(":")
            if (not task or task == base.task) and metric in names and metric not in chosen:
                chosen.append(metric)
        return chosen
    new_values = {m["name"]: m.get("value") for m in new.result.metrics}
    return [m["name"] for m in base.result.metrics
            if "[" not in m["name"] and m.get("value") is not None and new_values.get(m["name"]) is not None]


@dataclass
class Comparison:
    """The per-(task, metric) tests of NEW against BASE and the gate's verdict."""

    base_label: str
    new_label: str
    tests: pd.DataFrame
    settings: dict
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> pd.DataFrame:
        return self.tests[self.tests["regression"]]

    @property
    def passed(self) -> bool:
        """True when no tested metric is a regression."""
        return not bool(self.tests["regression"].any())

    def table(self, tablefmt: str = "github") -> str:
        """The per-task table of differences, with the settings and notes below it."""
        rows = []
        several = self.tests["base_model"].nunique() > 1 or self.tests["new_model"].nunique() > 1
        for r in self.tests.itertuples():
            ci = "" if r.low is None or pd.isna(r.low) else f" [{_num(r.low)}, {_num(r.high)}]"
            rows.append(([f"{r.base_model} -> {r.new_model}"] if several else []) + [
                r.task, r.metric + ("" if r.higher_is_better else " (lower is better)"), _num(r.base),
                _num(r.new), _num(r.diff, signed=True) + ci, _p(r.p_two_sided_holm), _p(r.p_worse_holm),
                r.verdict])
        headers = (["models"] if several else []) + [
            "task", "metric", "BASE", "NEW", f"NEW-BASE [{100 * (1 - self.settings['alpha']):g}% CI]",
            "p (2-sided, Holm)", "p worse (Holm)", "verdict"]
        s = self.settings
        lines = [f"BASE: {self.base_label}", f"NEW:  {self.new_label}", "",
                 tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True), "",
                 f"{s['method']}, {s['resamples']} resamples, seed {s['seed']}, alpha {s['alpha']}; Holm across "
                 f"the {int(self.tests['p_two_sided'].notna().sum())} tests"
                 + (f"; a regression must also drop by more than {s['max_drop']:g}" if s["max_drop"] is not None
                    else "")]
        for r in self.tests.itertuples():
            if r.note:
                lines.append(f"{r.task} / {r.metric}: {r.note}")
        lines += self.notes
        n_bad = int(self.tests["regression"].sum())
        lines.append(f"RESULT: {n_bad} regression(s)" if n_bad else "RESULT: no regression")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        tests = self.tests.astype(object).where(self.tests.notna(), None)
        return {"base": self.base_label, "new": self.new_label, "settings": self.settings,
                "passed": self.passed, "tests": tests.to_dict(orient="records"), "notes": self.notes}


def _num(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _p(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def compare_records(base: Sequence[ResultRecord], new: Sequence[ResultRecord], *,
                    tasks: Sequence[str] | None = None, metrics: Sequence[str] | None = None,
                    alpha: float = DEFAULT_ALPHA, resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                    method: str = "bootstrap", max_drop: float | None = None, base_model: str | None = None,
                    new_model: str | None = None, base_label: str = "BASE", new_label: str = "NEW",
                    time_budget_s: float | None = None, allow_missing: bool = False) -> Comparison:
    """Test every chosen metric of every paired task; see the module docstring for the regression rule.
    ``time_budget_s`` bounds the resampling time of each (task, metric) test (see stats.bootstrap). A task
    or metric BASE has and NEW lacks (a run killed before its last task, a metric that failed) is refused
    unless ``allow_missing``: a gate that passes because NEW did less is no gate."""
    if max_drop is not None and not max_drop >= 0:
        raise MMBenchError(f"--max-drop must be a non-negative number in the metric's units, got {max_drop}")
    pairs, notes = pair_records(base, new, base_model=base_model, new_model=new_model)
    missing = [n.removeprefix("only in BASE (not compared): ") for n in notes if n.startswith("only in BASE")]
    if tasks:
        missing = [m for m in missing if m.rsplit(" / ", 1)[-1] in tasks]
    for b, n in pairs:
        if tasks and b.task not in tasks:
            continue
        new_values = {m["name"]: m.get("value") for m in n.result.metrics}
        missing += [f"{b.task} {m['name']}" for m in b.result.metrics if m.get("value") is not None
                    and new_values.get(m["name"]) is None and (not metrics or m["name"] in
                                                               {w.rpartition(":")[2] for w in metrics})]
    if missing and not allow_missing:
        raise MMBenchError(f"NEW ({new_label}) lacks {len(missing)} result(s) that BASE has: "
                           f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; finish the NEW run "
                           f"(rerun it: finished items are cached) or pass --allow-missing to compare the rest")
    if missing:
        notes.append(f"--allow-missing: not compared, missing from NEW: {', '.join(missing)}")
    if tasks:
        unknown = sorted(set(tasks) - {b.task for b, _ in pairs})
        if unknown:
            raise MMBenchError(f"task {unknown[0]!r} is not in both runs; compared tasks: "
                               f"{', '.join(sorted({b.task for b, _ in pairs})) or 'none'}")
        pairs = [(b, n) for b, n in pairs if b.task in tasks]
    if not pairs:
        raise MMBenchError(f"BASE ({base_label}) and NEW ({new_label}) have no task in common: nothing to compare")
    rows = []
    for b, n in pairs:
        names = _chosen_metrics(b, n, metrics)
        if not names:
            continue
        base_stats, new_stats = align(b, n)
        aggregate, reason = resolve_aggregator(b.result.aggregator)
        hib = {m["name"]: bool(m.get("higher_is_better", True)) for m in b.result.metrics}
        tests = paired_test(base_stats, new_stats, aggregate, metrics=names, higher_is_better=hib,
                            reported_base={m["name"]: m.get("value") for m in b.result.metrics},
                            reported_new={m["name"]: m.get("value") for m in n.result.metrics},
                            method=method, resamples=resamples, seed=seed, alpha=alpha, stream=b.task,
                            unavailable_reason=reason or "", time_budget_s=time_budget_s)
        rows += [_row(b, n, t) for t in tests.values()]
    found = {(r["task"], r["metric"]) for r in rows}
    for w in metrics or ():
        task, _, metric = w.rpartition(":")
        if not any(m == metric and (not task or t == task) for t, m in found):
            compared = ", ".join(sorted({b.task for b, _ in pairs}))
            raise MMBenchError(f"metric {w!r} is not in the compared tasks ({compared}); "
                               f"name metrics as METRIC or TASK:METRIC, as in the results table")
    if not rows:
        raise MMBenchError("the compared tasks have no metric with a value in both runs: nothing to test")
    df = pd.DataFrame(rows)
    df["p_two_sided_holm"] = holm(_optional(df["p_two_sided"]))
    df["p_worse_holm"] = holm(_optional(df["p_worse"]))
    df["regression"] = [bool(p is not None and not pd.isna(p) and p < alpha
                             and (max_drop is None or (d is not None and d > max_drop)))
                        for p, d in zip(df["p_worse_holm"], df["drop"])]
    df["verdict"] = [_verdict(r, alpha) for r in df.itertuples()]
    if not df["p_two_sided"].notna().any():
        notes.append("WARNING: no metric could be tested (see the notes above), so the gate checked nothing")
    settings = {"method": str(df["method"].iloc[0]), "resamples": int(resamples), "seed": int(seed),
                "alpha": float(alpha), "max_drop": max_drop, "correction": "Holm across all tests",
                "time_budget_s": time_budget_s}
    return Comparison(base_label, new_label, df, settings, notes)


def _optional(values: pd.Series) -> list[float | None]:
    return [None if v is None or pd.isna(v) else float(v) for v in values]


def _row(b: ResultRecord, n: ResultRecord, t: PairedTest) -> dict:
    d = t.to_dict()
    return {"task": b.task, "base_model": b.model, "new_model": n.model, "base_run": b.run_id,
            "new_run": n.run_id, **{k: d[k] for k in ("metric", "base", "new", "diff", "low", "high",
                                                      "p_two_sided", "p_worse", "drop", "se_analytic",
                                                      "higher_is_better", "n", "method", "note")}}


def _verdict(r, alpha: float) -> str:
    if r.p_two_sided is None or pd.isna(r.p_two_sided):
        return VERDICT_UNTESTED
    if r.regression:
        return VERDICT_WORSE
    if r.p_worse_holm is not None and r.p_worse_holm < alpha:
        return VERDICT_WITHIN
    if r.p_two_sided_holm < alpha and r.drop is not None and r.drop < 0:
        return VERDICT_BETTER
    return VERDICT_SAME


def compare_runs(base: str | Path, new: str | Path, *, store: Path | None = None, **options) -> Comparison:
    """Compare two runs given as run folders, run ids in ``store``, or ``model:NAME`` (latest in the store)."""
    return compare_records(run_records(base, store), run_records(new, store), base_label=str(base),
                           new_label=str(new), **options)
