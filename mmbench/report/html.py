"""A Leaderboard as one self-contained HTML page: sortable table, caption and notes, plots, output samples.

The page is rendered from the Jinja2 template ``templates/leaderboard.html.jinja`` (with its script and style
beside it) in an environment with autoescaping, so everything that comes from runs (model and task names,
variants, notes, model outputs) is escaped by the template engine; this module only turns a Leaderboard into
plain values for it (display strings, sort keys, tooltips, base64 images; the pairwise table of the
definition's ``pairwise:`` when it has one). Everything is inline (CSS, one
small script, plots and generated images as base64 PNG), so the file can be mailed, committed or opened
offline. As a second line of defence the page's Content-Security-Policy allows only its own script (by
hash) and ``data:`` images, so markup that slipped into a run could not execute either.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from mmbench.report import plots
from mmbench.report.leaderboard import Leaderboard
from mmbench.report.pairwise import pair_label
from mmbench.report.published import INSIDE, OUTSIDE, check_text
from mmbench.report.render import (
    average_parts,
    caption_sentences,
    fmt_memory,
    fmt_rate,
    has_pairwise,
    headers,
    pairwise_caption,
    pairwise_grid,
    pairwise_text,
    published_lines,
    reference_label,
)

TEMPLATE = "leaderboard.html.jinja"
_SAMPLE_CHARS = 400
MAX_SAMPLE_IMAGE_BYTES = 256 * 1024  # a generated image larger than this is not inlined

_PLOT_TITLES = {"task_bars": "Scores per task with bootstrap intervals",
                "score_vs_throughput": "Score vs throughput",
                "curves": "Curves (e.g. error vs noise, quality vs guidance)"}


def _sha256_base64(text: Any) -> str:
    """The CSP source hash of a script: base64 of the SHA-256 of its UTF-8 text."""
    return base64.b64encode(hashlib.sha256(str(text).encode("utf-8")).digest()).decode("ascii")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the report templates (mmbench/report/templates): autoescaping on, and an
    undefined value is an error rather than an empty string."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("mmbench.report", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["sha256_base64"] = _sha256_base64
    return env


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _num(value: Any) -> str:
    """A sort key (data-v): the number's repr, "" when there is none."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(f) else repr(f)


def _cell(text: str, v: str = "", title: str | None = None, best: bool = False, sig: int = 0,
          check: dict | None = None) -> dict:
    """One table cell for the template: shown text, sort key, tooltip (None: no title attribute), bold, mark,
    and the published-value check (text, class, tooltip) or None."""
    return {"text": text, "v": v, "title": title, "best": best, "sig": sig, "check": check}


def _check(lb: Leaderboard, model: str, label: str) -> dict | None:
    """The check mark of a cell whose model should reproduce a published row (report/published.py)."""
    row = lb.check(model, label)
    text = check_text(row, lb.definition.digits) if row else ""
    if not text:
        return None
    where = f" ({row['split']})" if row.get("split") else ""
    title = f"published by {row['reference']}{where}: {row['status']}" + (f"; {row['reason']}" if row["reason"]
                                                                          else "")
    return {"text": text, "cls": {INSIDE: "inside", OUTSIDE: "outside"}.get(row["status"], "unchecked"),
            "title": title}


def _score_cell(lb: Leaderboard, model: str, col, level: str) -> dict:
    digits, check = lb.definition.digits, _check(lb, model, col.label)
    cell = lb.cell(model, col.label)
    if cell is None or not _present(cell.get("value")) or cell.get("unavailable"):
        why = "" if cell is None else str(cell.get("unavailable") or "")
        return _cell("—" if cell is None else "n/a", "", why, check=check)
    scale = float(cell["scale"])
    value = float(cell["value"]) * scale
    text = f"{value:.{digits}f}"
    if _present(cell.get("low")) and _present(cell.get("high")):
        lo, hi = float(cell["low"]) * scale, float(cell["high"]) * scale
        text += f" ± {(hi - lo) / 2:.{digits}f}"
        tip = f"{level} CI [{lo:.{digits + 1}f}, {hi:.{digits + 1}f}], n = {cell['n']}"
    else:
        tip = f"no interval: {cell.get('note') or 'not available'}; n = {cell['n']}"
    if _present(cell.get("p_vs_baseline")):
        tip += f"; p vs baseline (Holm) = {float(cell['p_vs_baseline']):.3g}"
    # Sorting key: the oriented value, so "descending" always puts the best first.
    key = value if cell.get("higher_is_better", True) else -value
    return _cell(text, _num(key), tip, bool(cell.get("best")), int(cell.get("sig") or 0), check)


def _published_rows(lb: Leaderboard) -> list[list[dict]]:
    """The published rows (a tbody of their own, which sorting leaves below the measured rows)."""
    d = lb.definition
    rows = []
    for i, ref in enumerate(d.references, 1):
        cells = [_cell(reference_label(i, ref), "", ref.source)]
        for col in d.columns:
            v, split = ref.value(col.label), ref.split(col.label)
            cells.append(_cell("—" if v is None else f"{v:.{d.digits}f}", "",
                               None if v is None else f"as published by {ref.source}" + (f"; {split}" if split
                                                                                           else "")))
        rows.append(cells + [_cell("—")] * (bool(d.average_label) + 2))
    return rows


def _table(lb: Leaderboard) -> dict:
    d = lb.definition
    level = f"{100 * (1 - lb.settings['alpha']):g}%"
    heads = headers(lb)
    types = ["text"] + ["num"] * (len(heads) - 1)
    rows_by_model = {r["model"]: r for r in lb.rows.to_dict(orient="records")}
    rows = []
    for model in lb.models:
        cells = [_cell(str(model), str(model))] + [_score_cell(lb, model, col, level) for col in d.columns]
        row = rows_by_model.get(model, {})
        if d.average_label:
            value, half = average_parts(row, d.digits)
            cells.append(_cell((value + (" ± " + half if half else "")) or "—", _num(row.get("average"))))
        rate, mem = row.get("items_per_s"), row.get("peak_memory_bytes")
        cells.append(_cell(fmt_rate(rate) or "—", _num(rate), str(row.get("efficiency_tasks") or "")))
        cells.append(_cell(fmt_memory(mem) or "—", _num(mem), str(row.get("peak_memory_kind") or "")))
        rows.append(cells)
    return {"heads": [{"label": h, "type": t} for h, t in zip(heads, types)], "rows": rows,
            "published": _published_rows(lb)}


def _pairwise(lb: Leaderboard) -> dict | None:
    """The pairwise table (report/pairwise.py) for the template, None without the definition's key: cells
    with the difference, interval and Holm-adjusted p, the mark, and a tooltip with both p-values and n."""
    if not has_pairwise(lb):
        return None
    level = f"{100 * (1 - lb.settings['alpha']):g}%"
    digits = lb.definition.digits
    labels, pairs, found = pairwise_grid(lb)
    rows = []
    for a, b in pairs:
        cells = [_cell(pair_label(a, b))]
        for label in labels:
            row = found.get((a, b, label))
            if row is None:
                cells.append(_cell("—", "", f"{a} or {b} has no result in {label}"))
                continue
            if _present(row.get("low")) and _present(row.get("high")):
                tip = f"{level} CI [{float(row['low']):+.{digits + 1}f}, {float(row['high']):+.{digits + 1}f}]"
            else:
                tip = "no interval"
            if _present(row.get("p")):
                tip += f"; p = {float(row['p']):.3g}, Holm-adjusted p = {float(row['p_holm']):.3g}"
            tip += f"; n = {row['n']} shared items" if _present(row.get("n")) else ""
            tip += f"; {row['note']}" if row.get("note") else ""
            cells.append(_cell(pairwise_text(row, digits), _num(row.get("diff")), tip,
                               sig=int(row.get("sig") or 0)))
        rows.append(cells)
    return {"heads": ["Pair"] + labels, "rows": rows, "caption": pairwise_caption(lb, "html"),
            "notes": list(lb.pairwise_notes)}


def _plots(lb: Leaderboard) -> list[dict]:
    return [{"name": name, "title": _PLOT_TITLES.get(name, name),
             "png_base64": base64.b64encode(plots.png_bytes(fig)).decode("ascii")}
            for name, fig in plots.figures(lb).items()]


def _value_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _SAMPLE_CHARS else text[: _SAMPLE_CHARS - 1] + "…"


def sample_image(sample: dict, artifacts: Path | None) -> str | None:
    """The generated image of a sample (text-to-image: ``image`` names a PNG saved in the result's artifacts
    folder) as base64 for a ``data:`` URI; None when there is none, it lies outside that folder, or it is
    larger than MAX_SAMPLE_IMAGE_BYTES."""
    name = sample.get("image")
    if artifacts is None or not isinstance(name, str) or not name.endswith(".png"):
        return None
    try:
        root = artifacts.resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file() or path.stat().st_size > MAX_SAMPLE_IMAGE_BYTES:
            return None
        return base64.b64encode(path.read_bytes()).decode("ascii")
    except (OSError, ValueError):
        return None


def _samples(lb: Leaderboard) -> list[dict]:
    out = []
    for group in lb.samples:
        keys = list(dict.fromkeys(k for s in group.samples for k in s))
        images = [sample_image(s, group.artifacts) for s in group.samples]
        out.append({"model": group.model, "task": group.task, "columns": keys,
                    "with_images": any(i is not None for i in images),
                    "rows": [{"png_base64": image, "cells": [_value_text(s.get(k, "")) for k in keys]}
                             for s, image in zip(group.samples, images)]})
    return out


def to_html(lb: Leaderboard) -> str:
    """The self-contained page (a str of HTML)."""
    d = lb.definition
    return environment().get_template(TEMPLATE).render(
        title=d.title or f"Leaderboard {d.name}", description=d.description or "", table=_table(lb),
        caption=" ".join(caption_sentences(lb, "html")[1:]), published=published_lines(lb), notes=list(lb.notes),
        plots=_plots(lb),
        samples=_samples(lb), source=d.source or d.name, pairwise=_pairwise(lb))
