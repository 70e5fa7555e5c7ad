"""Published reference rows, and whether a run reproduces them ("does my setup reproduce the paper?").

A leaderboard definition may list the numbers a paper published for its own models (``references:``), each
with its source and, per column, the split it was measured on, and say which run models should reproduce
which row (``reproduce:``, fnmatch patterns matched case-insensitively). A measured cell *reproduces* a
published value when that value lies inside the cell's bootstrap interval, compared in the column's
displayed scale. The leaderboard checks its own cells (the intervals it already computed) and
``mmbench compare RUN --published BOARD:REFERENCE`` checks one run; both bootstrap a result with
:func:`bootstrap_record`, the one resampling call of the reports, so their intervals are identical.

Definition keys::

    references:
      - model: LLaVA-1.5-7B                 # the row's name, shown as "LLaVA-1.5-7B (published, ref. 1)"
        source: "Liu et al. 2023, ... Table 4"
        values: {GQA: 62.0, MME: 1510.7}    # column label -> the value as published (the displayed scale)
        splits: {GQA: testdev-balanced}     # optional, per column label: what the number was measured on
        note: "..."                         # optional
    reproduce: {"*llava-1.5-7b*": LLaVA-1.5-7B}   # run model name pattern -> reference row
"""

from __future__ import annotations

import difflib
import fnmatch
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import pandas as pd
from tabulate import tabulate

from mmbench.errors import MMBenchError
from mmbench.report.select import ResultRecord
from mmbench.report.stats import BOOTSTRAP_METHOD, Bootstrap, bootstrap, resolve_aggregator

if TYPE_CHECKING:  # the definition types live in leaderboard.py, which imports this module
    from mmbench.report.leaderboard import Column, Definition

INSIDE, OUTSIDE, NO_INTERVAL = "inside", "outside", "no interval"
NO_SCORE, NOT_RUN, NOT_PUBLISHED = "no score", "not run", "not published"
CHECKED = (INSIDE, OUTSIDE)
MARKS = {INSIDE: "✓", OUTSIDE: "✗", NO_INTERVAL: "?"}
_REFERENCE_KEYS = {"model", "source", "values", "splits", "note"}
CHECK_COLUMNS = ["model", "reference", "column", "task", "metric", "published", "split", "value", "low", "high",
                 "n", "status", "reason"]


@dataclass(frozen=True)
class Reference:
    """One published row: a source's numbers for its own model, per column label in the displayed scale."""

    model: str
    source: str
    values: tuple[tuple[str, float], ...]  # (column label, value as published), in column order
    splits: tuple[tuple[str, str], ...] = ()  # (column label, what the value was measured on)
    note: str = ""

    def value(self, label: str) -> float | None:
        return dict(self.values).get(label)

    def split(self, label: str) -> str:
        return dict(self.splits).get(label, "")


def did_you_mean(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------------------------------------- definitions

def _label_map(raw: Any, labels: Sequence[str], where: str, numbers: bool) -> dict[str, Any]:
    """``{column label: number or text}`` checked against the column labels, in column order."""
    kind = "the value as published, in the column's displayed scale" if numbers else "text"
    if not isinstance(raw, dict):
        raise MMBenchError(f"{where}: expected a mapping of column label -> {kind}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        label = str(key)
        if label not in labels:
            hint = did_you_mean(label, labels) or f"; the labels are {', '.join(labels)}"
            raise MMBenchError(f"{where}: {label!r} is not a column label{hint}")
        if numbers and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise MMBenchError(f"{where}: {label}: {value!r} is not a number; give {kind}")
        if not numbers and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
            raise MMBenchError(f"{where}: {label}: {value!r} is not text; describe the split in words")
        out[label] = float(value) if numbers else str(value)
    return {label: out[label] for label in labels if label in out}


def _reference(raw: Any, i: int, labels: Sequence[str], where: str) -> Reference:
    if not isinstance(raw, dict) or not raw.get("model") or not raw.get("source"):
        raise MMBenchError(f"{where}, references[{i}]: needs `model:` (the row's name), `source:` (the "
                           f"citation) and `values:` ({{column label: published value}})")
    at = f"{where}, reference {str(raw['model'])!r}"
    extra = sorted(set(raw) - _REFERENCE_KEYS)
    if extra:
        raise MMBenchError(f"{at}: unknown key {extra[0]!r}{did_you_mean(str(extra[0]), sorted(_REFERENCE_KEYS))}; "
                           f"accepted: {', '.join(sorted(_REFERENCE_KEYS))}")
    values = _label_map(raw.get("values"), labels, f"{at}, values", numbers=True)
    if not values:
        raise MMBenchError(f"{at}, values: no published value; map column labels to the published numbers")
    splits = _label_map(raw.get("splits") or {}, labels, f"{at}, splits", numbers=False)
    return Reference(str(raw["model"]), str(raw["source"]), tuple(values.items()), tuple(splits.items()),
                     str(raw.get("note") or ""))


def parse_published(references: Any, reproduce: Any, labels: Sequence[str],
                    where: str) -> tuple[tuple[Reference, ...], tuple[tuple[str, str], ...]]:
    """The ``references:`` and ``reproduce:`` keys of a definition; every mistake names the key."""
    if references is not None and not isinstance(references, list):
        raise MMBenchError(f"{where}: `references:` must be a list of {{model: ..., source: ..., values: {{...}}}}")
    refs = tuple(_reference(r, i + 1, labels, where) for i, r in enumerate(references or ()))
    names = [r.model for r in refs]
    dup = next((x for x in names if names.count(x) > 1), None)
    if dup is not None:
        raise MMBenchError(f"{where}: two reference rows are called {dup!r}; give each a distinct `model:`")
    if reproduce is None:
        return refs, ()
    if not isinstance(reproduce, dict):
        raise MMBenchError(f"{where}: `reproduce:` must map run model name patterns to reference rows, e.g. "
                           f"{{\"*llava-1.5-7b*\": LLaVA-1.5-7B}}")
    for pattern, target in reproduce.items():
        if str(target) not in names:
            raise MMBenchError(f"{where}, reproduce {str(pattern)!r}: {str(target)!r} is not a reference row"
                               f"{did_you_mean(str(target), names)}; references: {', '.join(names) or 'none'}")
    return refs, tuple((str(p), str(t)) for p, t in reproduce.items())


def find_reference(definition: Definition, name: str) -> Reference:
    """The reference row called ``name`` (exact, else the one equal ignoring case); one-line error otherwise."""
    names = [r.model for r in definition.references]
    if not names:
        raise MMBenchError(f"leaderboard {definition.name!r} has no published reference rows (no `references:` "
                           f"in {definition.source or 'its definition'})")
    hit = [r for r in definition.references if r.model == name] or \
          [r for r in definition.references if r.model.lower() == name.lower()]
    if len(hit) != 1:
        raise MMBenchError(f"leaderboard {definition.name!r} has no reference row {name!r}"
                           f"{did_you_mean(name, names)}; its references: {', '.join(names)}")
    return hit[0]


def assign_references(definition: Definition, models: Sequence[str],
                      explicit: Mapping[str, str] | None = None) -> dict[str, str]:
    """Row model -> the reference row it should reproduce: ``explicit`` (--reproduce) first, then the
    definition's ``reproduce:`` patterns in file order, matched ignoring case."""
    out: dict[str, str] = {}
    for model, name in (explicit or {}).items():
        ref = find_reference(definition, name)
        if model not in models:
            raise MMBenchError(f"--reproduce {model}={name}: {model!r} is not a row of leaderboard "
                               f"{definition.name!r}{did_you_mean(model, models)}; rows: {', '.join(models)}")
        out[model] = ref.model
    for model in models:
        hit = next((t for p, t in definition.reproduce if fnmatch.fnmatchcase(model.lower(), p.lower())), None)
        if model not in out and hit is not None:
            out[model] = hit
    return out


# ---------------------------------------------------------------------------------------------- checks

def bootstrap_record(rec: ResultRecord, metrics: list[str], B: int, seed: int, alpha: float,
                     time_budget_s: float | None) -> Bootstrap:
    """The bootstrap of one result as leaderboards compute it (the task is the random stream, so every model
    on a task sees the same draws); shared with the published comparison so both give the same interval."""
    aggregate, reason = resolve_aggregator(rec.result.aggregator)
    return bootstrap(rec.stats, aggregate, metrics=metrics,
                     reported={m["name"]: m.get("value") for m in rec.result.metrics},
                     resamples=B, seed=seed, alpha=alpha, stream=rec.task, unavailable_reason=reason or "",
                     time_budget_s=time_budget_s)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _unscored(col: Column, rec: ResultRecord | None, cell: dict | None) -> tuple[str, str]:
    """(status, why) for a column the run has no score in: not run, scored elsewhere, or unavailable."""
    if rec is None:
        return NOT_RUN, f"no result for task {col.task}"
    metric = rec.metric(col.metric)
    if metric is None and rec.result.task_info.get("config", {}).get("submission"):
        return NO_SCORE, "scored by its evaluation server (the run wrote the submission file)"
    if metric is None:
        return NO_SCORE, f"the result of {col.task} has no metric {col.metric}"
    return NO_SCORE, f"no value ({(cell or {}).get('unavailable') or metric.get('unavailable') or 'unavailable'})"


def check(model: str, ref: Reference, col: Column, cell: dict | None, rec: ResultRecord | None) -> dict:
    """One check row: the published value against ``cell`` (value, low, high as stored, unscaled)."""
    published = ref.value(col.label)
    row = {"model": model, "reference": ref.model, "column": col.label, "task": col.task, "metric": col.metric,
           "published": published, "split": ref.split(col.label), "value": None, "low": None, "high": None,
           "n": None, "status": NOT_PUBLISHED, "reason": ""}
    if published is None:
        return row
    if cell is None or cell.get("unavailable") or not _present(cell.get("value")):
        row["status"], row["reason"] = _unscored(col, rec, cell)
        return row
    s = col.scale
    row.update(value=float(cell["value"]) * s, n=cell.get("n"))
    if not (_present(cell.get("low")) and _present(cell.get("high"))):
        row.update(status=NO_INTERVAL, reason=str(cell.get("note") or "no interval"))
        return row
    low, high = float(cell["low"]) * s, float(cell["high"]) * s
    row.update(low=low, high=high, status=INSIDE if low <= published <= high else OUTSIDE)
    return row


def reference_checks(definition: Definition, assigned: Mapping[str, str],
                     cell_of: Callable[[str, str], dict | None], records: Mapping) -> pd.DataFrame:
    """Check rows for every assigned model and every column its reference row has a value for."""
    refs = {r.model: r for r in definition.references}
    rows = [check(model, refs[name], col, cell_of(model, col.label), records.get((model, col.task)))
            for model, name in assigned.items() for col in definition.columns
            if refs[name].value(col.label) is not None]
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def check_text(row: Mapping, digits: int) -> str:
    """The compact mark a cell carries: "✓ 62.0", "✗ 1510.7", "? 62.0", "(no score; pub. 78.5)"."""
    published = f"{float(row['published']):.{digits}f}"
    if row["status"] in MARKS:
        return f"{MARKS[row['status']]} {published}"
    if row["status"] in (NO_SCORE, NOT_RUN):
        return f"({row['status']}; pub. {published})"
    return ""


def summary(rows: pd.DataFrame, digits: int, alpha: float) -> str:
    """"reproduces 5 of 7 published columns ...; outside: MME (1489.23 [1470.12, 1502.31] vs published
    1510.7); not checked: VQAv2 (why)" for the check rows of one model."""
    checked = rows[rows["status"].isin(CHECKED)]
    n_in = int((checked["status"] == INSIDE).sum())
    level = f"{100 * (1 - alpha):g}%"
    parts = [f"reproduces {n_in} of {len(checked)} published columns (the published value inside the run's "
             f"{level} interval)"]
    d = digits + 1
    outside = [f"{r.column} ({r.value:.{d}f} [{r.low:.{d}f}, {r.high:.{d}f}] vs published {r.published:.{digits}f})"
               for r in checked.itertuples() if r.status == OUTSIDE]
    if outside:
        parts.append("outside: " + ", ".join(outside))
    rest = rows[~rows["status"].isin(CHECKED + (NOT_PUBLISHED,))]
    if not rest.empty:
        parts.append("not checked: " + ", ".join(f"{r.column} ({r.status}: {r.reason})" for r in rest.itertuples()))
    return "; ".join(parts)


def summaries(checks: pd.DataFrame, digits: int, alpha: float) -> list[str]:
    """One line per reproducing model: "MODEL vs published REFERENCE: reproduces ..."."""
    return [f"{model} vs published {group['reference'].iloc[0]}: {summary(group, digits, alpha)}"
            for model, group in checks.groupby("model", sort=False)] if not checks.empty else []


# ---------------------------------------------------------------------------------------------- compare

@dataclass
class PublishedComparison:
    """One run's scores against one reference row of a leaderboard (``mmbench compare RUN --published``)."""

    run_label: str
    model: str
    definition: Definition
    reference: Reference
    rows: pd.DataFrame  # check rows (CHECK_COLUMNS), in the leaderboard's column order
    settings: dict
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every published value the run has an interval for lies inside it."""
        return not bool((self.rows["status"] == OUTSIDE).any())

    def summary(self) -> str:
        return summary(self.rows, self.definition.digits, self.settings["alpha"])

    def table(self, tablefmt: str = "github") -> str:
        """The per-column table with the settings, the notes and the verdict below it."""
        d, s = self.definition, self.settings
        level, digits = f"{100 * (1 - s['alpha']):g}%", d.digits
        scale = {c.label: c.scale for c in d.columns}
        body = []
        for r in self.rows.itertuples():
            run = "—" if r.value is None or pd.isna(r.value) else f"{r.value:.{digits + 1}f}" + (
                "" if r.low is None or pd.isna(r.low) else f" [{r.low:.{digits + 1}f}, {r.high:.{digits + 1}f}]")
            verdict = {INSIDE: "inside ✓", OUTSIDE: "OUTSIDE ✗"}.get(r.status, r.status)
            body.append([r.column, f"{r.task} {r.metric}" + (f" (x{scale[r.column]:g})" if scale[r.column] != 1
                                                             else ""), run,
                         "" if r.n is None or pd.isna(r.n) else str(int(r.n)),
                         "—" if r.published is None or pd.isna(r.published) else f"{r.published:.{digits}f}",
                         verdict + (f": {r.reason}" if r.reason and r.status not in CHECKED else ""), r.split])
        headers = ["column", "task metric", f"run [{level} CI]", "n", "published", "verdict", "split"]
        lines = [f"RUN:       {self.run_label} (model {self.model})",
                 f"PUBLISHED: {self.reference.model} in leaderboard {d.name} ({d.source or 'definition'}): "
                 f"{self.reference.source}", "",
                 tabulate(body, headers=headers, tablefmt=tablefmt, disable_numparse=True), "",
                 f"{s['method']}, {s['resamples']} resamples, seed {s['seed']}, alpha {s['alpha']} ({s['from']}); "
                 f"values in the leaderboard's displayed scale; inside: the published value lies in the run's "
                 f"{level} interval"]
        lines += ([f"reference note: {self.reference.note}"] if self.reference.note else []) + self.notes
        lines.append(f"RESULT: {'REPRODUCED' if self.passed else 'NOT REPRODUCED'}: {self.summary()}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        rows = self.rows.astype(object).where(self.rows.notna(), None)
        ref = self.reference
        return {"run": self.run_label, "model": self.model, "leaderboard": self.definition.name,
                "definition": self.definition.source,
                "reference": {"model": ref.model, "source": ref.source, "note": ref.note,
                              "values": dict(ref.values), "splits": dict(ref.splits)},
                "settings": self.settings, "passed": self.passed, "summary": self.summary(),
                "checks": rows.to_dict(orient="records"), "notes": self.notes}


def _pick_model(records: Sequence[ResultRecord], model: str | None, label: str) -> str:
    models = sorted({r.model for r in records})
    if model is None and len(models) > 1:
        raise MMBenchError(f"{label} holds {len(models)} models ({', '.join(models)}): choose one with --new-model")
    if model is not None and model not in models:
        raise MMBenchError(f"{label} has no results for model {model!r}{did_you_mean(model, models)}; it has "
                           f"{', '.join(models)}")
    return model or models[0]


def _run_cell(rec: ResultRecord | None, col: Column, boot: Bootstrap | None) -> dict | None:
    """The fields of a leaderboard cell that a check reads, from one result and its bootstrap."""
    metric = rec.metric(col.metric) if rec else None
    if metric is None:
        return None
    iv = boot.intervals.get(col.metric) if boot else None
    return {"value": metric.get("value"), "unavailable": metric.get("unavailable") or "",
            "low": iv.low if iv else None, "high": iv.high if iv else None,
            "n": len(rec.item_ids) or rec.result.n_items, "note": iv.note if iv else ""}


def compare_published(records: Sequence[ResultRecord], definition: Definition, reference: str, *,
                      model: str | None = None, resamples: int | None = None, seed: int | None = None,
                      alpha: float | None = None, time_budget_s: float | None = None,
                      run_label: str = "RUN") -> PublishedComparison:
    """Every column of ``definition`` against the reference row ``reference``, for one model of a run:
    the run's value and bootstrap interval (the definition's settings unless given), the published value,
    inside or outside. Columns the run has no score for are listed, not failed."""
    ref = find_reference(definition, reference)
    model = _pick_model(records, model, run_label)
    mine = {r.task: r for r in records if r.model == model}
    tasks = list(dict.fromkeys(c.task for c in definition.columns))
    if not set(tasks) & set(mine):
        raise MMBenchError(f"{run_label} (model {model}) has none of the tasks of leaderboard {definition.name!r} "
                           f"({', '.join(tasks)}): nothing to compare with {ref.model}")
    given = [x is not None for x in (resamples, seed, alpha)]
    B = int(resamples if resamples is not None else definition.resamples)
    seed = int(seed if seed is not None else definition.seed)
    alpha = float(alpha if alpha is not None else definition.alpha)
    boots = {}
    for task, rec in mine.items():
        metrics = [c.metric for c in definition.columns if c.task == task and rec.metric(c.metric)]
        if metrics:
            boots[task] = bootstrap_record(rec, list(dict.fromkeys(metrics)), B, seed, alpha, time_budget_s)
    rows = [check(model, ref, col, _run_cell(mine.get(col.task), col, boots.get(col.task)), mine.get(col.task))
            for col in definition.columns]
    frame = pd.DataFrame(rows, columns=CHECK_COLUMNS)
    notes = [f"{task}: the run evaluated a subset of the data (--limit); the published values are on the full split"
             for task, rec in mine.items() if task in tasks and rec.result.task_info.get("data", {}).get("is_subset")]
    if not frame["status"].isin(CHECKED).any():
        notes.append("WARNING: no published value could be checked (see the verdicts above), so nothing was tested")
    origin = ("the leaderboard's settings" if not any(given) else
              "the leaderboard's settings, overridden on the command line" if not all(given) else "command line")
    settings = {"method": BOOTSTRAP_METHOD, "resamples": B, "seed": seed, "alpha": alpha, "from": origin,
                "time_budget_s": time_budget_s}
    return PublishedComparison(run_label, model, definition, ref, frame, settings, notes)
