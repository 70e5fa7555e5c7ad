"""Leaderboards: a definition (``leaderboards/NAME.yaml``) applied to the store's results.

A definition says which (task, metric) pairs are the columns and in which order, their labels, direction
and display scale, an optional average, an optional baseline row for significance marks, which curves to
draw and the bootstrap settings. :func:`build_leaderboard` selects the latest result per (model, task),
computes every cell's bootstrap interval, the average's interval (from averaged replicates: every model on a
task sees the same index draws), paired tests against the baseline (Holm across each row), throughput and
peak memory per model, curve points and output samples. The renderers (``render``, ``html``, ``plots``)
only format a :class:`Leaderboard`.

Definition keys (all optional except ``columns``)::

    leaderboard: mini               # name (default: the file name)
    title: ...                      # heading and caption start
    description: ...
    columns:                        # the table's columns, in order
      - {task: mini-zeroshot, metric: top1, label: "Zero-shot top-1", scale: 100}
        # also: higher_is_better (default: as recorded with the metric); rank: false for a diagnostic
        # column (neither direction is better): no best mark, no significance mark, not used to rank
    models: [a, b]                  # rows to show, in this order (default: every model, best first)
    baseline: b                     # mark cells significantly better/worse than this row
    pairwise: true                  # or [a, b, c]: a table of paired differences between every pair of rows
                                    # (or of the named models): see mmbench/report/pairwise.py
    average: {label: Mean, columns: ["Zero-shot top-1", ...]}   # columns: default all
    throughput: all                 # or a task name: whose items/s and peak memory the row shows
    curves: [{name: noise, y: wer}] # x: "x" (the task files' curve x) or a metric; y: a metric
    digits: 1                       # decimals shown (after scaling)
    resamples: 1000, seed: 0, alpha: 0.05, samples: 3   # bootstrap settings; output samples per cell
    references: [...], reproduce: {...}   # published rows and which models should reproduce them:
                                          # see mmbench/report/published.py
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

import mmbench
from mmbench.errors import MMBenchError
from mmbench.report.compare import align
from mmbench.report.pairwise import PAIRWISE_COLUMNS, pairwise_models, pairwise_table, parse_pairwise
from mmbench.report.published import (
    CHECK_COLUMNS,
    Reference,
    assign_references,
    bootstrap_record,
    did_you_mean,
    parse_published,
    reference_checks,
    summaries,
)
from mmbench.report.select import load_records, results_frame
from mmbench.report.stats import (BOOTSTRAP_METHOD, DEFAULT_ALPHA, DEFAULT_RESAMPLES, holm, paired_test,
                                  resolve_aggregator)
from mmbench.store import Store

_KEYS = {"leaderboard", "title", "description", "columns", "models", "baseline", "average", "throughput",
         "curves", "digits", "resamples", "seed", "alpha", "samples", "references", "reproduce", "pairwise"}
_COLUMN_KEYS = {"task", "metric", "label", "higher_is_better", "scale", "rank"}
_CURVE_KEYS = {"name", "x", "y", "label"}
_AVERAGE_KEYS = {"label", "columns"}


@dataclass(frozen=True)
class Column:
    task: str
    metric: str
    label: str
    higher_is_better: bool | None = None  # None: as recorded with the metric
    scale: float = 1.0
    rank: bool = True  # False: a diagnostic (e.g. POPE's yes-ratio): no best mark, no significance, no ranking


@dataclass(frozen=True)
class CurveSpec:
    name: str
    x: str = "x"  # "x": the task files' curve x; otherwise a metric name
    y: str | None = None  # None: the task file's curve metric, else the result's first metric
    label: str | None = None


@dataclass(frozen=True)
class Definition:
    name: str
    columns: tuple[Column, ...]
    title: str = ""
    description: str = ""
    models: tuple[str, ...] | None = None
    baseline: str | None = None
    average_label: str | None = None
    average_columns: tuple[str, ...] = ()
    throughput: str = "all"
    curves: tuple[CurveSpec, ...] | None = None
    digits: int = 3
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    alpha: float = DEFAULT_ALPHA
    samples: int = 3
    source: str = ""
    references: tuple[Reference, ...] = ()  # published rows (report/published.py)
    reproduce: tuple[tuple[str, str], ...] = ()  # (run model name pattern, reference row), in file order
    pairwise: bool | tuple[str, ...] = False  # True: every pair of rows; names: every pair among them, in order


# ---------------------------------------------------------------------------------------------- definitions

def _unknown(keys: set, allowed: set, where: str) -> None:
    extra = sorted(keys - allowed)
    if extra:
        raise MMBenchError(f"{where}: unknown key {extra[0]!r}; accepted: {', '.join(sorted(allowed))}")


def _columns(raw: Any, where: str) -> list[Column]:
    if not isinstance(raw, list) or not raw:
        raise MMBenchError(f"{where}: `columns:` must be a non-empty list of {{task: ..., metric: ...}}")
    columns = []
    for i, c in enumerate(raw):
        if not isinstance(c, dict) or "task" not in c or "metric" not in c:
            raise MMBenchError(f"{where}: column {i + 1} needs `task:` and `metric:`")
        _unknown(set(c), _COLUMN_KEYS, f"{where}, column {i + 1}")
        hib = c.get("higher_is_better")
        columns.append(Column(str(c["task"]), str(c["metric"]), str(c.get("label") or f"{c['task']} {c['metric']}"),
                              None if hib is None else bool(hib), float(c.get("scale", 1.0)),
                              bool(c.get("rank", True))))
    labels = [c.label for c in columns]
    dup = next((x for x in labels if labels.count(x) > 1), None)
    if dup is not None:
        raise MMBenchError(f"{where}: two columns are labelled {dup!r}; give each a distinct `label:`")
    return columns


def _average(average: Any, columns: list[Column], where: str) -> tuple[str | None, tuple[str, ...]]:
    if average is None:
        return None, ()
    labels = [c.label for c in columns]
    average = {"label": average} if isinstance(average, str) else average
    if not isinstance(average, dict):
        raise MMBenchError(f"{where}: `average:` must be a label or {{label: ..., columns: [...]}}")
    _unknown(set(average), _AVERAGE_KEYS, f"{where}, average")
    avg_cols = tuple(str(x) for x in average.get("columns") or [c.label for c in columns if c.rank])
    missing = [x for x in avg_cols if x not in labels]
    if missing:
        raise MMBenchError(f"{where}: average column {missing[0]!r} is not a column label ({', '.join(labels)})")
    diagnostic = next((x for x in avg_cols if not columns[labels.index(x)].rank), None)
    if diagnostic is not None:
        raise MMBenchError(f"{where}: average column {diagnostic!r} has `rank: false` (a diagnostic); leave it "
                           f"out of the average")
    directions = {next(c.higher_is_better for c in columns if c.label == x) for x in avg_cols}
    if len(directions - {None}) > 1:
        raise MMBenchError(f"{where}: the average mixes higher- and lower-is-better columns; average "
                           f"columns of one direction")
    return str(average.get("label", "Average")), avg_cols


def parse_definition(raw: Any, name: str, source: str = "") -> Definition:
    """Validate a definition's YAML content; every mistake names the key and the file."""
    where = f"leaderboard {source or name}"
    if not isinstance(raw, dict):
        raise MMBenchError(f"{where}: expected a mapping with a `columns:` list at the top level")
    _unknown(set(raw), _KEYS, where)
    columns = _columns(raw.get("columns"), where)
    avg_label, avg_cols = _average(raw.get("average"), columns, where)
    references, reproduce = parse_published(raw.get("references"), raw.get("reproduce"),
                                            [c.label for c in columns], where)
    curves = None
    if raw.get("curves") is not None:
        curves = []
        for i, c in enumerate(raw["curves"] if isinstance(raw["curves"], list) else [None]):
            if not isinstance(c, dict) or "name" not in c:
                raise MMBenchError(f"{where}: curve {i + 1} needs a `name:` (the task files' curve name)")
            _unknown(set(c), _CURVE_KEYS, f"{where}, curve {i + 1}")
            curves.append(CurveSpec(str(c["name"]), str(c.get("x", "x")), c.get("y"), c.get("label")))
        curves = tuple(curves)
    try:
        models = raw.get("models")
        pairwise = parse_pairwise(raw.get("pairwise"), models if isinstance(models, list) else None, where)
        return Definition(
            name=str(raw.get("leaderboard", name)), columns=tuple(columns), title=str(raw.get("title", "")),
            description=str(raw.get("description", "")), models=None if models is None else tuple(map(str, models)),
            baseline=raw.get("baseline"), average_label=avg_label, average_columns=avg_cols,
            throughput=str(raw.get("throughput", "all")), curves=curves, digits=int(raw.get("digits", 3)),
            resamples=int(raw.get("resamples", DEFAULT_RESAMPLES)), seed=int(raw.get("seed", 0)),
            alpha=float(raw.get("alpha", DEFAULT_ALPHA)), samples=int(raw.get("samples", 3)), source=source,
            references=references, reproduce=reproduce, pairwise=pairwise)
    except (TypeError, ValueError) as exc:
        raise MMBenchError(f"{where}: {exc}") from exc


def definition_dirs(extra: Sequence[Path] = ()) -> list[Path]:
    """Where named definitions are looked up: ``extra``, ./leaderboards, then the built-in ones."""
    dirs = [Path(p) for p in extra] + [Path.cwd() / "leaderboards"]
    try:
        dirs.append(Path(str(resources.files("mmbench.builtin_leaderboards"))))
    except (ModuleNotFoundError, TypeError):
        pass
    dirs.append(Path(mmbench.__file__).resolve().parent.parent / "leaderboards")  # a source checkout
    return dirs


def load_definition(name: str, search: Sequence[Path] = ()) -> Definition:
    """A definition by file path or by name (``NAME.yaml`` in :func:`definition_dirs`)."""
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        found = [d / f"{name}.yaml" for d in definition_dirs(search) if (d / f"{name}.yaml").is_file()]
        if not found:
            known = sorted({p.stem for d in definition_dirs(search) if d.is_dir() for p in d.glob("*.yaml")})
            raise MMBenchError(f"unknown leaderboard {name!r}{did_you_mean(name, known)}: known are "
                               f"{', '.join(known) or 'none'}; or pass a definition file (NAME.yaml)")
        path = found[0]
    from mmbench.files import read_yaml

    return parse_definition(read_yaml(path, "leaderboard definition"), path.stem, str(path))


def auto_definition(store: Store, **selection) -> Definition:
    """Every task in the selection as one column: its first metric that has a value (no breakdowns)."""
    frame = results_frame(store, **selection)
    if frame.empty:
        raise MMBenchError(f"the store {store.path} has no results for this selection: run `mmbench run` first")
    columns = []
    for rec in load_records(store, frame["result_id"]).values():
        metric = next((m["name"] for m in rec.result.metrics if m.get("value") is not None and "[" not in m["name"]),
                      None)
        if metric and all(c.task != rec.task for c in columns):
            columns.append(Column(rec.task, metric, f"{rec.task} {metric}"))
    columns.sort(key=lambda c: c.task)
    return Definition(name="all", title="All tasks in the store", columns=tuple(columns), source="(automatic)")


# ---------------------------------------------------------------------------------------------- building

class SampleSet(NamedTuple):
    """The first output samples of one result, and the folder of its artifacts (where a sample's ``image``
    names a generated image; the HTML page inlines those)."""

    model: str
    task: str
    samples: list[dict]
    artifacts: Path | None = None


@dataclass
class Leaderboard:
    """The computed table: tidy cells, per-model rows, curve points, samples, settings and notes."""

    definition: Definition
    models: list[str]  # row order
    cells: pd.DataFrame  # one row per (model, column) that has a result
    rows: pd.DataFrame  # per model: average (+ interval), items/s, peak memory
    curves: pd.DataFrame  # one row per (curve, model, point)
    samples: list[SampleSet]  # (model, task, first samples, artifacts folder)
    settings: dict
    # One line per column first (metric, direction, scale, n, variant), then remarks (no interval and why,
    # approximations, subsets, failed items, pairs the significance test refused).
    notes: list[str] = field(default_factory=list)
    # Published values against the reproducing models' cells (report/published.py: one row per (model,
    # column with a published value), status inside/outside/...), and one summary line per such model.
    checks: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CHECK_COLUMNS))
    reproduction: list[str] = field(default_factory=list)
    # With the definition's ``pairwise:`` (report/pairwise.py): one row per (ranked column, pair of models that
    # both have the cell), the difference on the display scale, its interval, p and Holm-adjusted p; its notes.
    pairwise: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAIRWISE_COLUMNS))
    pairwise_notes: list[str] = field(default_factory=list)

    def cell(self, model: str, label: str) -> dict | None:
        """The cell of ``model`` in column ``label`` as a dict (missing numbers as None), or None."""
        return _row_of(self.cells, model, label)

    def check(self, model: str, label: str) -> dict | None:
        """The published-value check of ``model`` in column ``label`` (see report/published.py), or None."""
        return _row_of(self.checks, model, label)

    def wide(self) -> pd.DataFrame:
        """Models x column labels of scaled values (NaN where a model has no result), plus the average."""
        df = self.cells.assign(shown=self.cells["value"] * self.cells["scale"])
        wide = df.pivot(index="model", columns="column", values="shown")
        wide = wide.reindex(index=self.models, columns=[c.label for c in self.definition.columns])
        if self.definition.average_label:
            wide[self.definition.average_label] = self.rows.set_index("model")["average"].reindex(self.models)
        return wide


def _row_of(frame: pd.DataFrame, model: str, label: str) -> dict | None:
    if frame.empty:
        return None
    hit = frame[(frame["model"] == model) & (frame["column"] == label)]
    if hit.empty:
        return None
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in hit.iloc[0].to_dict().items()}


def _oriented(value: float, hib: bool) -> float:
    return value if hib else -value


def build_leaderboard(definition: Definition, store: Store, *, models: Sequence[str] | None = None,
                      tags: Sequence[str] | None = None, since: str | None = None, until: str | None = None,
                      run_ids: Sequence[str] | None = None, resamples: int | None = None, seed: int | None = None,
                      alpha: float | None = None, baseline: str | None = None,
                      time_budget_s: float | None = None, reproduce: Mapping[str, str] | None = None) -> Leaderboard:
    """Compute a leaderboard from the latest result per (model, task) in the selection.

    ``time_budget_s`` bounds the resampling time of each result (see stats.bootstrap): a metric too slow to
    recompute B times gets no interval and a note, rather than a leaderboard that takes hours. ``reproduce``
    (model -> reference row, --reproduce) adds to the definition's ``reproduce:`` patterns: those models'
    cells are checked against the published values, with the cells' own intervals."""
    B = int(resamples if resamples is not None else definition.resamples)
    seed = int(seed if seed is not None else definition.seed)
    alpha = float(alpha if alpha is not None else definition.alpha)
    baseline = baseline if baseline is not None else definition.baseline
    wanted = list(models) if models is not None else (list(definition.models) if definition.models else None)
    frame = results_frame(store, models=wanted, tags=tags, since=since, until=until, run_ids=run_ids)
    tasks = {c.task for c in definition.columns}
    curve_names = None if definition.curves is None else {c.name for c in definition.curves}
    has_curve = [isinstance(c, dict) and (curve_names is None or c.get("name") in curve_names) for c in frame["curve"]]
    frame = frame[frame["task"].isin(tasks) | pd.Series(has_curve, index=frame.index)]
    if frame.empty:
        raise MMBenchError(f"the store {store.path} has no results for the tasks of leaderboard "
                           f"{definition.name!r} ({', '.join(sorted(tasks))}) in this selection")
    records = {(r.model, r.task): r for r in load_records(store, frame["result_id"]).values()}
    row_models = wanted or sorted({m for m, t in records if t in tasks})
    if not row_models:
        raise MMBenchError(f"no model in this selection has a result for the tasks of leaderboard "
                           f"{definition.name!r} ({', '.join(sorted(tasks))})")
    if baseline is not None and baseline not in row_models:
        raise MMBenchError(f"baseline {baseline!r} is not a row of leaderboard {definition.name!r}; rows: "
                           f"{', '.join(row_models)}")
    if definition.pairwise and definition.pairwise is not True:
        pairwise_models(definition, row_models)  # unknown names are refused before any resampling
    settings = {"method": BOOTSTRAP_METHOD, "resamples": B, "seed": seed, "alpha": alpha, "baseline": baseline,
                "significance": "paired bootstrap against the baseline, Holm across each row's columns"}
    boots = {}
    for (model, task), rec in records.items():
        if task in tasks and model in row_models:
            metrics = list(dict.fromkeys(c.metric for c in definition.columns if c.task == task))
            boots[(model, task)] = bootstrap_record(rec, metrics, B, seed, alpha, time_budget_s)
    cells = _cells(definition, row_models, records, boots)
    notes: list[str] = []
    if baseline is not None and not cells.empty:
        _mark_significance(cells, definition, records, baseline, B, seed, alpha, notes, time_budget_s)
    rows = _model_rows(definition, row_models, cells, records, boots, alpha)
    order = row_models if wanted else _rank(definition, row_models, cells, rows)
    curves = _curve_points(definition, records, row_models, B, seed, alpha, time_budget_s)
    samples = [SampleSet(m, t, records[(m, t)].samples(definition.samples), records[(m, t)].artifacts_dir)
               for m in order
               for t in dict.fromkeys(c.task for c in definition.columns)
               if (m, t) in records and definition.samples > 0]
    notes = _notes(definition, cells, records) + notes + _unfinished_notes(frame, order)
    lb = Leaderboard(definition, order, cells, rows, curves, [s for s in samples if s.samples], settings, notes)
    lb.checks = reference_checks(definition, assign_references(definition, order, reproduce), lb.cell, records)
    lb.reproduction = summaries(lb.checks, definition.digits, alpha)
    if definition.pairwise:
        lb.pairwise, lb.pairwise_notes = pairwise_table(definition, pairwise_models(definition, order), cells,
                                                        records, resamples=B, seed=seed, alpha=alpha,
                                                        time_budget_s=time_budget_s)
    return lb


def _unfinished_notes(frame: pd.DataFrame, models: list[str]) -> list[str]:
    """Each result is whole (scored over all its items), but the run it belongs to stopped early or is still
    going, so a row may lack columns or be superseded: say so rather than silently mixing runs."""
    unfinished = frame[(frame["run_status"] != "complete") & frame["model"].isin(models)]
    return [f"results of {', '.join(sorted(set(group['model'])))} on {', '.join(sorted(set(group['task'])))} "
            f"come from run {run_id}, which is {group['run_status'].iloc[0]} (not complete: killed, "
            f"interrupted or still running)" for run_id, group in unfinished.groupby("run_id", sort=True)]


def _cells(definition: Definition, models: list[str], records: dict, boots: dict) -> pd.DataFrame:
    rows = []
    for model in models:
        for col in definition.columns:
            rec = records.get((model, col.task))
            metric = rec.metric(col.metric) if rec else None
            if rec is None or metric is None:
                continue
            iv = boots[(model, col.task)].intervals[col.metric]
            hib = col.higher_is_better
            if hib is None:
                hib = bool(metric.get("higher_is_better", True))
            r = rec.result
            rows.append({
                "model": model, "column": col.label, "task": col.task, "metric": col.metric,
                "value": metric.get("value"), "low": iv.low, "high": iv.high, "se": iv.se,
                "se_analytic": iv.se_analytic, "n": len(rec.item_ids) or r.n_items, "n_failed": r.n_failed,
                "variant": metric.get("variant") or "", "unavailable": metric.get("unavailable") or "",
                "higher_is_better": hib, "scale": col.scale, "note": iv.note, "approximation": iv.approximation,
                "items_per_s": r.throughput.items_per_s, "throughput_basis": r.throughput.basis,
                "peak_memory_bytes": r.peak_memory.bytes, "peak_memory_kind": r.peak_memory.kind,
                "is_subset": bool(r.task_info.get("data", {}).get("is_subset", False)),
                "run_id": rec.run_id, "result_id": rec.result_id, "created_at": r.created_at,
                "p_vs_baseline": None, "sig": 0, "best": False,
                # probes' reliance metrics carry a verdict (uses-image / weak / collapsed) and its own CI
                "verdict": (metric.get("extra") or {}).get("verdict") or ""})
    cells = pd.DataFrame(rows, columns=None if rows else ["model", "column", "value", "scale", "higher_is_better"])
    unranked = {c.label for c in definition.columns if not c.rank}
    for label in cells["column"].unique() if not cells.empty else ():
        sel = cells[(cells["column"] == label) & cells["value"].notna()]
        if len(sel) < 2 or label in unranked:
            continue
        oriented = [_oriented(v, h) for v, h in zip(sel["value"], sel["higher_is_better"])]
        best = max(oriented)
        cells.loc[sel.index, "best"] = [abs(o - best) <= 1e-12 * max(1.0, abs(best)) for o in oriented]
    return cells


def _mark_significance(cells: pd.DataFrame, definition: Definition, records: dict, baseline: str, B: int,
                       seed: int, alpha: float, notes: list[str], time_budget_s: float | None) -> None:
    """p-values of each cell against the baseline row's cell; Holm across the row; sig = +1 better, -1 worse
    (never for a diagnostic column, ``rank: false``, where neither direction is better)."""
    unranked = {c.label for c in definition.columns if not c.rank}
    for model in cells["model"].unique():
        if model == baseline:
            continue
        found: dict[int, tuple[float | None, float | None]] = {}
        for task in dict.fromkeys(c.task for c in definition.columns):
            rec, base = records.get((model, task)), records.get((baseline, task))
            idx = cells.index[(cells["model"] == model) & (cells["task"] == task)]
            if rec is None or base is None or len(idx) == 0:
                continue
            try:
                base_stats, new_stats = align(base, rec)
            except MMBenchError as exc:
                notes.append(f"no significance mark for {model} on {task}: {exc}")
                continue
            aggregate, reason = resolve_aggregator(rec.result.aggregator)
            metrics = list(cells.loc[idx, "metric"])
            tests = paired_test(base_stats, new_stats, aggregate, metrics=metrics,
                                higher_is_better=dict(zip(metrics, cells.loc[idx, "higher_is_better"])),
                                reported_base={m["name"]: m.get("value") for m in base.result.metrics},
                                reported_new={m["name"]: m.get("value") for m in rec.result.metrics},
                                resamples=B, seed=seed, alpha=alpha, stream=task, unavailable_reason=reason or "",
                                time_budget_s=time_budget_s)
            for i in idx:
                t = tests[cells.at[i, "metric"]]
                found[i] = (t.p_two_sided, t.drop)
        keys = list(found)
        adjusted = holm([found[i][0] for i in keys])
        for i, p in zip(keys, adjusted):
            cells.at[i, "p_vs_baseline"] = p
            drop, ranked = found[i][1], cells.at[i, "column"] not in unranked
            if ranked and p is not None and p < alpha and drop is not None and drop != 0:
                cells.at[i, "sig"] = -1 if drop > 0 else 1


def _model_rows(definition: Definition, models: list[str], cells: pd.DataFrame, records: dict,
                boots: dict, alpha: float) -> pd.DataFrame:
    rows = []
    for model in models:
        mine = cells[cells["model"] == model] if not cells.empty else cells
        row: dict[str, Any] = {"model": model, "average": None, "average_low": None, "average_high": None}
        if definition.average_label:
            cols = [c for c in definition.columns if c.label in definition.average_columns]
            values, reps = [], []
            for c in cols:
                hit = mine[mine["column"] == c.label]
                value = hit["value"].iloc[0] if len(hit) else None
                values.append(None if value is None or pd.isna(value) else value * c.scale)
                boot = boots.get((model, c.task))
                rep = boot.replicates.get(c.metric) if boot else None
                reps.append(None if rep is None else rep * c.scale)
            if values and all(v is not None for v in values):
                row["average"] = float(np.mean(values))
                if all(r is not None for r in reps):
                    low, high = np.quantile(np.mean(reps, axis=0), [alpha / 2, 1 - alpha / 2])
                    row["average_low"], row["average_high"] = float(low), float(high)
        tasks = ([definition.throughput] if definition.throughput != "all"
                 else list(dict.fromkeys(c.task for c in definition.columns)))
        recs = [records[(model, t)] for t in tasks if (model, t) in records]
        timed = [r for r in recs if r.result.throughput.items_per_s]
        seconds = sum(r.result.n_items / r.result.throughput.items_per_s for r in timed)
        row["items_per_s"] = sum(r.result.n_items for r in timed) / seconds if seconds > 0 else None
        mem = [r.result.peak_memory for r in recs if r.result.peak_memory.bytes]
        top = max(mem, key=lambda m: m.bytes, default=None)
        row["peak_memory_bytes"] = top.bytes if top else None
        row["peak_memory_kind"] = top.kind if top else None
        row["efficiency_tasks"] = ", ".join(r.task for r in timed)
        rows.append(row)
    return pd.DataFrame(rows)


def _rank(definition: Definition, models: list[str], cells: pd.DataFrame, rows: pd.DataFrame) -> list[str]:
    """Best first. Models with the average come first, by it; the others are grouped by the first column
    they have a value in (column order; diagnostic columns, ``rank: false``, skipped), best first within each
    group; models without any value last."""
    averages = dict(zip(rows["model"], rows["average"])) if definition.average_label else {}
    avg_hib = next((c.higher_is_better for c in definition.columns if c.label in definition.average_columns
                    and c.higher_is_better is not None), True)
    by_column: dict[str, dict[str, tuple[float, bool]]] = {}
    for c in cells.itertuples() if not cells.empty else ():
        if c.value is not None and not pd.isna(c.value):
            by_column.setdefault(c.column, {})[c.model] = (float(c.value), bool(c.higher_is_better))

    def key(model: str) -> tuple:
        avg = averages.get(model)
        if avg is not None and not pd.isna(avg):
            return (-1, -_oriented(float(avg), avg_hib), model)
        for i, col in enumerate(definition.columns):
            hit = by_column.get(col.label, {}).get(model)
            if hit is not None and col.rank:
                return (i, -_oriented(*hit), model)
        return (len(definition.columns), 0.0, model)

    return sorted(models, key=key)


def _curve_points(definition: Definition, records: dict, models: list[str], B: int, seed: int,
                  alpha: float, time_budget_s: float | None) -> pd.DataFrame:
    specs = {c.name: c for c in definition.curves or ()}
    rows = []
    for (model, task), rec in sorted(records.items()):
        curve = rec.result.task_info.get("config", {}).get("curve")
        if model not in models or not isinstance(curve, dict) or "name" not in curve:
            continue
        name = str(curve["name"])
        if definition.curves is not None and name not in specs:
            continue
        spec = specs.get(name, CurveSpec(name))
        y = spec.y or curve.get("metric") or next(
            (m["name"] for m in rec.result.metrics if m.get("value") is not None), None)
        if y is None or rec.metric(y) is None:
            continue
        wanted = [y] + ([spec.x] if spec.x != "x" and rec.metric(spec.x) else [])
        iv = bootstrap_record(rec, wanted, B, seed, alpha, time_budget_s).intervals
        if spec.x == "x":
            x, x_low, x_high, x_label = curve.get("x"), None, None, str(curve.get("x_label", "x"))
        elif spec.x in iv:
            x, x_low, x_high, x_label = iv[spec.x].value, iv[spec.x].low, iv[spec.x].high, spec.x
        else:
            continue
        rows.append({"curve": name, "label": spec.label or name, "model": model, "task": task,
                     "x": None if x is None else float(x), "x_low": x_low, "x_high": x_high, "x_label": x_label,
                     "y": iv[y].value, "y_low": iv[y].low, "y_high": iv[y].high, "y_label": y,
                     "higher_is_better": bool(rec.metric(y).get("higher_is_better", True))})
    cols = ["curve", "label", "model", "task", "x", "x_low", "x_high", "x_label", "y", "y_low", "y_high",
            "y_label", "higher_is_better"]
    return pd.DataFrame(rows, columns=cols).sort_values(["curve", "model", "x"]).reset_index(drop=True)


def _notes(definition: Definition, cells: pd.DataFrame, records: dict) -> list[str]:
    """One line per column (metric, variant(s), n), then remarks grouped by column and text."""
    notes = []
    for col in definition.columns:
        sel = cells[cells["column"] == col.label] if not cells.empty else cells
        if sel.empty:
            notes.append(f"{col.label}: {col.metric} of {col.task}: no results")
            continue
        variants = sorted({str(v) for v in sel["variant"]})
        ns = sorted({int(n) for n in sel["n"]})
        direction = ("a diagnostic, not ranked" if not col.rank else
                     "higher is better" if bool(sel["higher_is_better"].iloc[0]) else "lower is better")
        scale = f", x{col.scale:g}" if col.scale != 1 else ""
        variant = variants[0] if len(variants) == 1 else "VARIANTS DIFFER: " + " | ".join(variants)
        notes.append(f"{col.label}: {col.metric} of {col.task} ({direction}{scale}); n = "
                     f"{', '.join(map(str, ns))}; {variant}")
    remarks: dict[tuple[str, str], list[str]] = {}
    approximations: dict[str, list[str]] = {}
    for c in cells.itertuples() if not cells.empty else ():
        if c.unavailable:
            remarks.setdefault((c.column, f"unavailable: {c.unavailable}"), []).append(c.model)
        elif c.approximation is not None and not pd.isna(c.approximation):
            approximations.setdefault(c.column, []).append(f"{c.model} {c.approximation:.4g} vs {c.value:.4g}")
        elif c.note:
            remarks.setdefault((c.column, c.note), []).append(c.model)
        if getattr(c, "verdict", ""):
            remarks.setdefault((c.column, f"verdict {c.verdict}"), []).append(c.model)
        if c.is_subset:
            subset = "evaluated a subset of the data (--limit), not comparable to full-set scores"
            remarks.setdefault((c.column, subset), []).append(c.model)
        if c.n_failed:
            remarks.setdefault((c.column, f"{c.n_failed} item(s) failed and count as wrong"), []).append(c.model)
    for column, items in approximations.items():
        notes.append(f"{column}: the intervals are of the aggregator's approximation, not of the reported value "
                     f"(on all items: {'; '.join(items)} reported)")
    for (column, text), models in remarks.items():
        notes.append(f"{column} ({', '.join(models)}): {text}")
    return notes
