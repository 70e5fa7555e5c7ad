"""A Leaderboard as one self-contained HTML page: sortable table, caption and notes, plots, output samples.

Everything is inline (CSS, one small script, plots as base64 PNG), so the file can be mailed, committed or
opened offline. Everything that comes from runs (model and task names, variants, notes, model outputs) is
escaped with ``html.escape``; as a second line of defence the page's Content-Security-Policy allows only
its own script (by hash) and ``data:`` images, so markup that slipped into a run could not execute either.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from typing import Any

from mmbench.report import plots
from mmbench.report.leaderboard import Leaderboard
from mmbench.report.render import average_parts, caption_sentences, fmt_memory, fmt_rate, headers
from mmbench.report.select import SAMPLE_IMAGE_KEY

_SAMPLE_CHARS = 400

# Sorting: a click on a header orders the rows by that column's data-v (numbers numerically, best first on the
# first click; text A-Z); cells without a value stay last in both directions; a second click reverses.
_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.querySelectorAll("thead th");
  heads.forEach(function (th, col) {
    th.addEventListener("click", function () {
      var numeric = th.dataset.type === "num";
      var current = th.getAttribute("aria-sort");
      var next = current ? (current === "ascending" ? "descending" : "ascending")
                         : (numeric ? "descending" : "ascending");
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", next);
      var dir = next === "ascending" ? 1 : -1;
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v || "", y = b.cells[col].dataset.v || "";
        if (x === "" || y === "") { return (x === "") - (y === ""); }
        return dir * (numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y));
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: .35em .7em; border-bottom: 1px solid #ddd; text-align: right; vertical-align: top; }
#leaderboard td { white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #444; cursor: pointer; user-select: none; white-space: nowrap; }
thead th[aria-sort="ascending"]::after { content: " \\2191"; }
thead th[aria-sort="descending"]::after { content: " \\2193"; }
td.best { font-weight: bold; }
.up { color: #1a7f37; } .down { color: #cf222e; }
.caption, .notes { font-size: .9em; color: #444; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
img.sample { width: 64px; height: 64px; image-rendering: pixelated; }
table.samples td { text-align: left; white-space: pre-wrap; font-family: ui-monospace, monospace;
                   font-size: .85em; max-width: 40em; overflow-wrap: anywhere; }
details { margin: .5em 0; } summary { cursor: pointer; font-weight: 600; }
"""

_PLOT_TITLES = {"task_bars": "Scores per task with bootstrap intervals",
                "score_vs_throughput": "Score vs throughput",
                "curves": "Curves (e.g. error vs noise, quality vs guidance)"}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _num(value: Any) -> str:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(f) else repr(f)


def _table(lb: Leaderboard) -> str:
    d = lb.definition
    level = f"{100 * (1 - lb.settings['alpha']):g}%"
    heads = headers(lb)
    types = ["text"] + ["num"] * (len(heads) - 1)
    head = "".join(f'<th data-type="{t}" tabindex="0">{_e(h)}</th>' for h, t in zip(heads, types))
    rows_by_model = {r["model"]: r for r in lb.rows.to_dict(orient="records")}
    body = []
    for model in lb.models:
        tds = [f'<td data-v="{_e(model)}">{_e(model)}</td>']
        for col in d.columns:
            cell = lb.cell(model, col.label)
            if cell is None or not _present(cell.get("value")) or cell.get("unavailable"):
                why = "" if cell is None else _e(cell.get("unavailable") or "")
                tds.append(f'<td data-v="" title="{why}">{"—" if cell is None else "n/a"}</td>')
                continue
            scale = float(cell["scale"])
            value = float(cell["value"]) * scale
            text = f"{value:.{d.digits}f}"
            if _present(cell.get("low")) and _present(cell.get("high")):
                lo, hi = float(cell["low"]) * scale, float(cell["high"]) * scale
                text += f" ± {(hi - lo) / 2:.{d.digits}f}"
                tip = f"{level} CI [{lo:.{d.digits + 1}f}, {hi:.{d.digits + 1}f}], n = {cell['n']}"
            else:
                tip = f"no interval: {cell.get('note') or 'not available'}; n = {cell['n']}"
            if _present(cell.get("p_vs_baseline")):
                tip += f"; p vs baseline (Holm) = {float(cell['p_vs_baseline']):.3g}"
            sig = int(cell.get("sig") or 0)
            mark = ' <span class="up">▲</span>' if sig > 0 else ' <span class="down">▼</span>' if sig < 0 else ""
            cls = ' class="best"' if cell.get("best") else ""
            # Sorting key: the oriented value, so "descending" always puts the best first.
            key = value if cell.get("higher_is_better", True) else -value
            tds.append(f'<td{cls} data-v="{_num(key)}" title="{_e(tip)}">{_e(text)}{mark}</td>')
        row = rows_by_model.get(model, {})
        if d.average_label:
            value, half = average_parts(row, d.digits)
            shown = _e(value + (" ± " + half if half else "")) or "—"
            tds.append(f'<td data-v="{_num(row.get("average"))}">{shown}</td>')
        rate, mem = row.get("items_per_s"), row.get("peak_memory_bytes")
        tds.append(f'<td data-v="{_num(rate)}" title="{_e(row.get("efficiency_tasks") or "")}">'
                   f'{_e(fmt_rate(rate)) or "—"}</td>')
        tds.append(f'<td data-v="{_num(mem)}" title="{_e(row.get("peak_memory_kind") or "")}">'
                   f'{_e(fmt_memory(mem)) or "—"}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (f'<div class="table-wrap"><table id="leaderboard" class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _plots(lb: Leaderboard) -> str:
    parts = []
    for name, fig in plots.figures(lb).items():
        data = base64.b64encode(plots.png_bytes(fig)).decode("ascii")
        title = _PLOT_TITLES.get(name, name)
        parts.append(f'<figure><img class="plot" id="plot-{_e(name)}" alt="{_e(title)}" '
                     f'src="data:image/png;base64,{data}"><figcaption>{_e(title)}</figcaption></figure>')
    return "".join(parts)


def _value_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _SAMPLE_CHARS else text[: _SAMPLE_CHARS - 1] + "…"


def _image_cell(sample: dict) -> str:
    """A generated image, inline (base64 PNG; the page's CSP allows only data: images)."""
    data = sample.get(SAMPLE_IMAGE_KEY)
    if not isinstance(data, str) or not data.isascii() or not data.replace("+", "").replace("/", "").rstrip("=").isalnum():
        return "<td></td>"
    return f'<td><img class="sample" alt="generated image" src="data:image/png;base64,{data}"></td>'


def _samples(lb: Leaderboard) -> str:
    parts = []
    for model, task, samples in lb.samples:
        keys = [k for k in dict.fromkeys(k for s in samples for k in s) if k != SAMPLE_IMAGE_KEY]
        with_images = any(SAMPLE_IMAGE_KEY in s for s in samples)
        head = ("<th>output</th>" if with_images else "") + "".join(f"<th>{_e(k)}</th>" for k in keys)
        rows = "".join("<tr>" + (_image_cell(s) if with_images else "")
                       + "".join(f"<td>{_e(_value_text(s.get(k, '')))}</td>" for k in keys) + "</tr>"
                       for s in samples)
        parts.append(f"<details><summary>{_e(model)} / {_e(task)}: first {len(samples)} items</summary>"
                     f'<table class="samples"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></details>')
    return "".join(parts)


def to_html(lb: Leaderboard) -> str:
    """The self-contained page (a str of HTML)."""
    d = lb.definition
    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode("ascii")
    csp = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'"
    title = d.title or f"Leaderboard {d.name}"
    caption = " ".join(caption_sentences(lb, "html")[1:])
    notes = "".join(f"<li>{_e(n)}</li>" for n in lb.notes)
    plots_html = _plots(lb)
    samples_html = _samples(lb)
    return "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',  # our constant: no quotes to escape
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="description">{_e(d.description)}</p>' if d.description else "",
        _table(lb),
        f'<p class="caption">{_e(caption)} Click a column header to sort.</p>',
        f'<ul class="notes">{notes}</ul>',
        f"<h2>Plots</h2>{plots_html}" if plots_html else "",
        f"<h2>Model outputs</h2>{samples_html}" if samples_html else "",
        f'<footer class="caption">Leaderboard definition: {_e(d.source or d.name)}.</footer>',
        f"<script>{_SCRIPT}</script></body></html>\n",
    ])
