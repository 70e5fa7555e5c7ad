"""Pairwise paired significance between leaderboard rows (the definition key ``pairwise:``).

``pairwise: true`` compares every pair of rows (in the leaderboard's row order), ``pairwise: [a, b, c]``
every pair among the named models in that order: (a, b), (a, c), (b, c). For every ranked column (a
``rank: false`` diagnostic is skipped) and every pair (A, B) that both have the cell, the table holds the
difference A − B on the column's display scale, its percentile interval from the paired bootstrap over the
items both results share, and the two-sided p-value, Holm-adjusted across the pairs within the column. The
test is exactly the one behind the baseline marks (``leaderboard._mark_significance``): the results aligned
with :func:`compare.align` (refused when their items differ), :func:`stats.paired_test` with the
leaderboard's resamples, seed and time budget and the task name as the random stream, so every pair on a
task sees the same index draws and a pair (A, baseline) gets the same p before adjustment as A's cell
against the baseline. A pair that cannot be tested (different items, no per-item statistics, a metric too
slow to recompute, no value) keeps its difference, gets no interval or p, and a note says why.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Any, Sequence

import pandas as pd

from mmbench.errors import MMBenchError
from mmbench.report.compare import align
from mmbench.report.stats import holm, paired_test, resolve_aggregator

if TYPE_CHECKING:  # the definition types live in leaderboard.py, which imports this module
    from mmbench.report.leaderboard import Definition

PAIRWISE_COLUMNS = ["column", "task", "metric", "model_a", "model_b", "diff", "low", "high", "p", "p_holm", "sig",
                    "n", "note", "scale", "higher_is_better"]
MINUS = "−"  # U+2212, as in "A − B"


def pair_label(a: str, b: str) -> str:
    return f"{a} {MINUS} {b}"


def parse_pairwise(raw: Any, models: Sequence[str] | None, where: str) -> bool | tuple[str, ...]:
    """The ``pairwise:`` key: False (absent), True (every pair of rows) or the named models, in order."""
    if raw is None or raw is False:
        return False
    if raw is True:
        return True
    if not isinstance(raw, list) or any(isinstance(x, (dict, list, bool)) or x is None for x in raw):
        raise MMBenchError(f"{where}: `pairwise:` must be true (every pair of rows) or a list of model names, "
                           f"not {raw!r}")
    names = tuple(str(x) for x in raw)
    dup = next((x for x in names if names.count(x) > 1), None)
    if dup is not None:
        raise MMBenchError(f"{where}: `pairwise:` names {dup!r} twice")
    if len(names) < 2:
        raise MMBenchError(f"{where}: `pairwise:` needs at least two models to compare, got "
                           f"{', '.join(names) or 'none'}")
    if models is not None:
        check_rows(names, [str(m) for m in models], where)
    return names


def check_rows(names: Sequence[str], rows: Sequence[str], where: str) -> None:
    """Refuse ``pairwise:`` models that are not rows of the leaderboard (one line, naming the rows)."""
    unknown = [m for m in names if m not in rows]
    if unknown:
        raise MMBenchError(f"{where}: `pairwise:` names {', '.join(map(repr, unknown))}, not "
                           f"{'a row' if len(unknown) == 1 else 'rows'} of the leaderboard; rows: "
                           f"{', '.join(rows) or 'none'}")


def pairwise_models(definition: Definition, rows: Sequence[str]) -> list[str]:
    """The models compared, in order: the named ones (checked against ``rows``), or every row."""
    if definition.pairwise is True:
        return list(rows)
    names = list(definition.pairwise or ())
    check_rows(names, rows, f"leaderboard {definition.source or definition.name}")
    return names


def _value(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def pairwise_table(definition: Definition, models: Sequence[str], cells: pd.DataFrame, records: dict, *,
                   resamples: int, seed: int, alpha: float,
                   time_budget_s: float | None = None) -> tuple[pd.DataFrame, list[str]]:
    """One row per (ranked column, pair of ``models`` that both have its cell), in column order and pair order
    within a column (see the module docstring), and the notes: pairs not tested and why, tests of an
    approximation."""
    pairs = list(combinations(models, 2))
    ranked = [c for c in definition.columns if c.rank]
    by_key = {(r["model"], r["column"]): r for r in cells.to_dict(orient="records")} if not cells.empty else {}
    rows: list[dict] = []
    refused: dict[tuple[str, str], list[str]] = {}  # (task, why) -> pairs
    for a, b in pairs:
        for task in dict.fromkeys(c.task for c in ranked):
            cols = [c for c in ranked if c.task == task and (a, c.label) in by_key and (b, c.label) in by_key]
            rec_a, rec_b = records.get((a, task)), records.get((b, task))
            if not cols or rec_a is None or rec_b is None:
                continue
            tests, why = {}, ""
            try:
                stats_b, stats_a = align(rec_b, rec_a)  # B is the base: differences read A - B
            except MMBenchError as exc:
                why = str(exc)
                refused.setdefault((task, why), []).append(pair_label(a, b))
            if not why:
                aggregate, reason = resolve_aggregator(rec_a.result.aggregator)
                metrics = list(dict.fromkeys(c.metric for c in cols))
                hib = {c.metric: bool(by_key[(a, c.label)]["higher_is_better"]) for c in cols}
                tests = paired_test(stats_b, stats_a, aggregate, metrics=metrics, higher_is_better=hib,
                                    reported_base={m["name"]: m.get("value") for m in rec_b.result.metrics},
                                    reported_new={m["name"]: m.get("value") for m in rec_a.result.metrics},
                                    resamples=resamples, seed=seed, alpha=alpha, stream=task,
                                    unavailable_reason=reason or "", time_budget_s=time_budget_s)
            for c in cols:
                ca, cb = by_key[(a, c.label)], by_key[(b, c.label)]
                va, vb = _value(ca["value"]), _value(cb["value"])
                t = tests.get(c.metric)
                tested = t is not None and t.low is not None and t.high is not None
                rows.append({
                    "column": c.label, "task": task, "metric": c.metric, "model_a": a, "model_b": b,
                    "diff": None if va is None or vb is None else (va - vb) * c.scale,
                    "low": t.low * c.scale if tested else None, "high": t.high * c.scale if tested else None,
                    "p": t.p_two_sided if t is not None else None, "p_holm": None, "sig": 0,
                    "n": t.n if t is not None else None, "note": t.note if t is not None else why,
                    "scale": c.scale, "higher_is_better": bool(ca["higher_is_better"]), "_drop": t.drop if t else None})
    order = {c.label: i for i, c in enumerate(ranked)}  # column by column, the pairs in order within each
    rows.sort(key=lambda r: order[r["column"]])
    table = pd.DataFrame(rows, columns=PAIRWISE_COLUMNS + ["_drop"])
    for label in table["column"].unique():
        idx = table.index[table["column"] == label]
        for i, p in zip(idx, holm([_value(table.at[i, "p"]) for i in idx])):
            table.at[i, "p_holm"] = p
            drop = _value(table.at[i, "_drop"])
            if p is not None and p < alpha and drop is not None and drop != 0:
                table.at[i, "sig"] = -1 if drop > 0 else 1
    table = table.drop(columns="_drop").astype(object)
    table = table.where(table.notna(), None).reset_index(drop=True)
    table["sig"] = table["sig"].astype(int)
    return table, _notes(models, table, refused)


def _notes(models: Sequence[str], table: pd.DataFrame, refused: dict[tuple[str, str], list[str]]) -> list[str]:
    """Pairs refused per task (different items, ...), then per column: tests that gave no p and why, and
    tests of the aggregator's approximation; grouped by text, the pairs listed."""
    if len(models) < 2:
        return [f"pairwise: {len(models)} row(s) ({', '.join(models) or 'none'}), so there is no pair to compare"]
    notes = [f"task {task} ({', '.join(pairs)}): no pairwise test (BASE: a pair's second model, NEW: its first): "
             f"{why}" for (task, why), pairs in refused.items()]
    if table.empty:
        notes.append(f"pairwise: no pair of {', '.join(models)} shares a ranked column")
    refused_pairs = {(task, p) for (task, _), pairs in refused.items() for p in pairs}
    grouped: dict[tuple[str, str], list[str]] = {}
    for r in table.to_dict(orient="records"):
        label = pair_label(r["model_a"], r["model_b"])
        if not r["note"] or (r["task"], label) in refused_pairs:
            continue
        text = r["note"] if r["p"] is not None else f"no p-value: {r['note']}"
        grouped.setdefault((r["column"], text), []).append(label)
    return notes + [f"{column} ({', '.join(pairs)}): {text}" for (column, text), pairs in grouped.items()]
