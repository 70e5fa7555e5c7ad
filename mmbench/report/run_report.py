"""``mmbench report RUN``: one self-contained HTML page to look at a run, item by item.

The page has the scores of every (model, task) with 95% bootstrap intervals (the headline metric first,
then every other metric, each with its variant), what produced them (model, data and task fingerprints,
mmbench version, the run's command), and a browser over the items: the image or audio, the exact prompt,
the output, the references and the item's score, with filters (wrong, failed, changed) and a text search.
With ``--compare OTHER`` each item also shows the other run's output and the score change.

This module is the data side: runs -> plain values for the Jinja2 template ``run_report.html.jinja``
(autoescaped; items travel as one JSON block the page's script renders with ``textContent``, so model output
is never markup). The per-item work (samples rows, media) is in :mod:`mmbench.report.run_report_items`.

Compare rule: results are matched by task; within a task, by model name when both runs have that model,
else, when each run has exactly one model for the task, those two (a fine-tune against its base model,
under different names). Items are matched by id.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.report.console import headline
from mmbench.report.run_report_items import (
    COMPARE_RULE,
    DEFAULT_MAX_IMAGES,
    MediaTable,
    ScoreField,
    item_view,
    media_id,
    score_field,
    task_items,
)
from mmbench.report.select import ResultRecord, run_records
from mmbench.report.stats import DEFAULT_ALPHA, DEFAULT_RESAMPLES, bootstrap, resolve_aggregator
from mmbench.results import RunResult

TEMPLATE = "run_report.html.jinja"
PAGE_SIZE = 50


@dataclass
class LoadedRun:
    """A run's task results and, when its folder is at hand, its results.json (command, versions, failures)."""

    label: str
    records: list[ResultRecord]
    run: RunResult | None
    folder: Path | None


def load_run(source: str | Path, *, output_dir: Path | None = None, store: Path | None = None) -> LoadedRun:
    """A run given as a folder, a run id under ``output_dir``, or a run id (prefix) / ``model:NAME`` in the store."""
    text = str(source)
    candidates = [Path(text).expanduser()] + ([Path(output_dir) / text] if output_dir is not None else [])
    folder = next((c for c in candidates if (c / "results.json").is_file()), None)
    if folder is not None:
        records = run_records(folder)
    elif store is not None and Path(store).is_file():
        records = run_records(text, store)
    else:
        where = f" or {Path(output_dir) / text}" if output_dir is not None else ""
        raise MMBenchError(f"run {text!r}: no results.json in {text}{where}, and no results store at {store} to look "
                           f"it up: pass the run folder printed at the end of `mmbench run` (or a run id with "
                           f"--output-dir / --store)")
    if not records:
        raise MMBenchError(f"run {text!r} has no task results (did every task fail? see its results.json)")
    folder = folder or records[0].run_dir
    run = None
    if folder is not None and (folder / "results.json").is_file():
        run = RunResult.read(folder)
    return LoadedRun(text, records, run, folder)


# -- scores with intervals ----------------------------------------------------------------------------------

def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def metric_rows(record: ResultRecord, variants: dict[str, int], *, resamples: int, seed: int, alpha: float,
                time_budget_s: float | None) -> list[dict]:
    """Every metric of a result with its bootstrap interval, the headline (console.headline) first.
    ``variants`` numbers the distinct variant texts for the page's footnotes (filled in here)."""
    result = record.result
    head = headline(result)
    named = [m for m in result.metrics if m.get("value") is not None]
    aggregate, why = resolve_aggregator(result.aggregator)
    boot = bootstrap(record.stats, aggregate, metrics=[m["name"] for m in named],
                     reported={m["name"]: m["value"] for m in named}, resamples=resamples, seed=seed, alpha=alpha,
                     stream=result.task, unavailable_reason=why or "", time_budget_s=time_budget_s)
    order = sorted(result.metrics, key=lambda m: head is None or m["name"] != head["name"])
    rows = []
    for m in order:
        iv = boot.intervals.get(m["name"])
        ref = variants.setdefault(str(m.get("variant", "")), len(variants) + 1)
        if m.get("value") is None:
            interval, note = "", str(m.get("unavailable") or "no value")
        elif iv is not None and iv.available:
            interval, note = f"[{_fmt(iv.low)}, {_fmt(iv.high)}]", iv.note
        else:
            interval, note = "—", iv.note if iv is not None else ""
        rows.append({"name": m["name"], "value": _fmt(m.get("value")), "interval": interval, "note": note,
                     "headline": head is not None and m["name"] == head["name"], "variant": ref,
                     "direction": "higher is better" if m.get("higher_is_better", True) else "lower is better"})
    return rows


# -- pairing with --compare ----------------------------------------------------------------------------------

def compare_pairs(records: list[ResultRecord], others: list[ResultRecord]) -> tuple[list[ResultRecord | None],
                                                                                     list[str]]:
    """For each of ``records`` its partner in ``others`` (COMPARE_RULE) or None, and notes on what is unpaired."""
    by_task: dict[str, list[ResultRecord]] = {}
    for o in others:
        by_task.setdefault(o.task, []).append(o)
    mine: dict[str, list[ResultRecord]] = {}
    for r in records:
        mine.setdefault(r.task, []).append(r)
    partners: list[ResultRecord | None] = []
    notes: list[str] = []
    for r in records:
        there = by_task.get(r.task, [])
        same = [o for o in there if o.model == r.model]
        if same:
            partners.append(same[-1])
        elif len(there) == 1 and len(mine[r.task]) == 1:
            partners.append(there[0])
        else:
            partners.append(None)
            why = "the other run has no result for this task" if not there else \
                f"the other run has models {', '.join(sorted({o.model for o in there}))} for it, none of that name"
            notes.append(f"{r.model} / {r.task}: not compared ({why})")
    paired = {id(p) for p in partners if p is not None}
    notes += [f"{o.model} / {o.task}: only in the other run (not compared)" for o in others if id(o) not in paired]
    return partners, notes


# -- the items -------------------------------------------------------------------------------------------------

class _Media:
    """Finds each result's media: the task's items rebuilt once per data fingerprint, thumbnails in a MediaTable."""

    def __init__(self, table: MediaTable, data_dir: Path | None, seed: int) -> None:
        self.table, self.data_dir, self.seed = table, data_dir, seed
        self._items: dict[str, tuple[dict[str, dict] | None, str]] = {}

    def items(self, record: ResultRecord) -> tuple[dict[str, dict] | None, str]:
        info = record.result.task_info
        key = record.result.data_fingerprint or hashlib.sha1(
            json.dumps(info.get("config"), sort_keys=True, default=str).encode()).hexdigest()
        if key not in self._items:
            self._items[key] = task_items(info, self.data_dir, self.seed)
        return self._items[key]

    def attach(self, record: ResultRecord, row: dict, view: dict, by_id: dict[str, dict] | None,
               target: dict | None = None) -> None:
        """Put the row's media keys (or the reason for none) into ``target`` (default: ``view``)."""
        from mmbench.report.html import sample_image

        target = view if target is None else target
        if isinstance(row.get("image"), str) and row["image"].endswith(".png"):  # text-to-image: the output
            keys, why = self.table.generated((record.run_dir, record.task, record.model, row["image"]),
                                             sample_image(row, record.artifacts_dir))
            target["mg"] = True  # the image is the model's output, not its input
        elif by_id is None:
            keys, why = [], None  # the group's note says why there are no media
        elif media_id(row) not in by_id:
            keys, why = [], self.table.reason("the item id is not in the task's data as it is now")
        else:
            keys, why = self.table.for_item((record.result.data_fingerprint, media_id(row)), by_id[media_id(row)])
        if keys:
            target["m"] = keys
        elif why is not None:
            target["mx"] = why


def _compare_summary(items: list[dict], score: ScoreField | None, other: ResultRecord, n_other: int) -> dict:
    better = worse = same = 0
    for it in items:
        k = it.get("k")
        if k is None:
            continue
        d = it.get("d")
        if not it.get("ch"):
            same += 1
        elif d is not None and score is not None and (d > 0) == score.higher_is_better:
            better += 1
        else:
            worse += 1
    matched = sum(1 for it in items if "k" in it)
    head = headline(other.result)
    return {"model": other.model, "run": other.run_id, "better": better, "worse": worse, "same": same,
            "changed": better + worse, "only_here": len(items) - matched, "only_there": n_other - matched,
            "headline": f"{head['name']} {_fmt(head['value'])}" if head else "n/a"}


def _input_note(task_info: dict) -> str:
    """What the shown media are when the model got something else (speech with added noise)."""
    snr = (task_info.get("config") or {}).get("noise_snr_db")
    return "" if snr is None else (f"the audio shown is the clean recording; the model heard it with noise at "
                                   f"{snr} dB SNR")


def group_items(index: int, record: ResultRecord, other: ResultRecord | None, media: _Media) -> tuple[dict, list]:
    """A (model, task)'s item dicts for the page and its header facts (score field, counts, media note)."""
    rows = record.samples(sys.maxsize)
    score = score_field(rows)
    by_id, why = media.items(record)
    other_rows = {str(r.get("id")): r for r in other.samples(sys.maxsize)} if other is not None else {}
    other_score = score_field(other_rows.values()) if other is not None else None
    items = []
    for row in rows:
        view = item_view(row, score)
        view["g"] = index
        media.attach(record, row, view, by_id)
        theirs = other_rows.get(view["id"])
        if theirs is not None:
            k = item_view(theirs, other_score)
            k = {key: k[key] for key in ("o", "a", "s", "f") if key in k}
            if isinstance(theirs.get("image"), str):  # a generated image: the other run's too
                media.attach(other, theirs, k, by_id, target=k)
            view["k"] = k
            mine_s, their_s = view.get("s"), k.get("s")
            if mine_s is not None and their_s is not None:
                view["d"] = mine_s - their_s
            if (mine_s is None) != (their_s is None) or (view.get("d") is not None and abs(view["d"]) > 1e-9):
                view["ch"] = True
        items.append(view)
    result = record.result
    group = {"index": index, "model": record.model, "task": record.task, "kind": result.kind,
             "n_rows": len(items), "n_items": result.n_items, "n_failed": result.n_failed,
             "score": score.name if score else None, "higher_is_better": score.higher_is_better if score else True,
             "score_rule": ("" if score is None else
                            f"item score: {score.name} ({'higher' if score.higher_is_better else 'lower'} is better"
                            + (f"; wrong = not {score.best:g})" if score.best is not None
                               else "; no best value, so no item counts as wrong)")),
             "wrong": sum(1 for it in items if it.get("w")), "failed": sum(1 for it in items if it.get("f")),
             "media_note": f"no images or audio: {why}" if by_id is None else _input_note(result.task_info),
             "compare": _compare_summary(items, score, other, len(other_rows)) if other is not None else None}
    return group, items


# -- the page ----------------------------------------------------------------------------------------------------

def _provenance(record: ResultRecord) -> dict:
    r = record.result
    data = r.task_info.get("data", {})
    return {"model_fingerprint": r.model_fingerprint, "weights": r.model_info.get("weights_fingerprint", "?"),
            "adapter": r.model_info.get("adapter", "?"), "device": r.model_info.get("device", "?"),
            "dtype": r.model_info.get("dtype", r.model_info.get("args", {}).get("dtype", "?")),
            "data_fingerprint": r.data_fingerprint, "data": data.get("description", ""),
            "task_fingerprint": r.task_fingerprint, "task_source": r.task_info.get("source", ""),
            "created_at": r.created_at, "source": record.source}


def _run_facts(loaded: LoadedRun) -> dict:
    run = loaded.run
    ids = sorted({r.run_id for r in loaded.records})
    if run is None:
        return {"label": loaded.label, "run_id": ", ".join(ids), "command": "", "version": "", "created_at": "",
                "seed": "", "status": "", "failures": []}
    return {"label": loaded.label, "run_id": run.run_id, "command": " ".join(run.command),
            "version": f"mmbench {run.mmbench_version} (git {run.git_revision or 'n/a'})",
            "created_at": run.created_at, "seed": run.seed, "status": run.status,
            "failures": [f"{f['model']} / {f['task']}: {f['error']}" for f in run.failures]}


def payload_json(data: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: ``<``, ``>`` and ``&`` escaped as \\u003c etc., so
    no text in it can close the block or open a comment, whatever the model wrote."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def build_report(source: str | Path, *, compare: str | Path | None = None, output_dir: Path | None = None,
                 store: Path | None = None, data_dir: Path | None = None, max_images: int = DEFAULT_MAX_IMAGES,
                 resamples: int = DEFAULT_RESAMPLES, seed: int = 0, alpha: float = DEFAULT_ALPHA,
                 time_budget_s: float | None = None, page_size: int = PAGE_SIZE) -> dict:
    """The template's values for the report of ``source`` (optionally against ``compare``): ``data`` is the
    JSON-ready payload of the item browser, the rest the static parts of the page."""
    from mmbench.tasks.probe import CONDITION_TEXT

    loaded = load_run(source, output_dir=output_dir, store=store)
    other = load_run(compare, output_dir=output_dir, store=store) if compare is not None else None
    partners, compare_notes = compare_pairs(loaded.records, other.records) if other else ([None] * len(
        loaded.records), [])
    if data_dir is None and loaded.run is not None and loaded.run.options.get("data_dir"):
        data_dir = Path(loaded.run.options["data_dir"])
    media = _Media(MediaTable(max_images), data_dir, loaded.run.seed if loaded.run else 0)
    variants: dict[str, int] = {}
    groups, items = [], []
    for i, (record, partner) in enumerate(zip(loaded.records, partners)):
        group, its = group_items(i, record, partner, media)
        group["metrics"] = metric_rows(record, variants, resamples=resamples, seed=seed, alpha=alpha,
                                       time_budget_s=time_budget_s)
        group["headline"] = next((m for m in group["metrics"] if m["headline"]), None)
        group["provenance"] = _provenance(record)
        group["notes"] = list(record.result.notes)
        groups.append(group)
        items.extend(its)
    level = f"{100 * (1 - alpha):g}%"
    media_notes = []
    if media.table.skipped:
        media_notes.append(f"{media.table.skipped} item(s) are shown without their image or audio: the page "
                           f"embeds at most {max_images} (raise it with --max-images)")
    data = {"groups": [{"label": f"{g['model']} / {g['task']}", "score": g["score"], "note": g["media_note"],
                        "hib": g["higher_is_better"],
                        "compare": g["compare"]["model"] if g["compare"] else None} for g in groups],
            "items": items, "media": media.table.uris, "reasons": media.table.reasons, "page_size": page_size,
            "compare": other is not None, "conditions": CONDITION_TEXT}
    return {"title": f"mmbench report: {loaded.label}", "run": _run_facts(loaded),
            "other": _run_facts(other) if other else None, "groups": groups,
            "variants": [{"ref": i, "text": v} for v, i in variants.items()], "level": level,
            "method": f"percentile bootstrap over items, {resamples} resamples, seed {seed}",
            "compare_rule": COMPARE_RULE, "compare_notes": compare_notes, "media_notes": media_notes,
            "n_items": len(items), "data_json": payload_json(data), "page_size": page_size}


def to_html(context: dict) -> str:
    """The self-contained page (a str of HTML) from :func:`build_report`'s values."""
    from mmbench.report.html import environment

    return environment().get_template(TEMPLATE).render(**context)


def write_report(path: Path, source: str | Path, **options: Any) -> Path:
    """Build the report of ``source`` (options as :func:`build_report`) and write it to ``path``."""
    text = to_html(build_report(source, **options))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
