"""A Leaderboard as Markdown, LaTeX (booktabs), CSV and JSON; the shared cell and caption formatting.

Cells read ``score ± h`` where h is half the width of the percentile bootstrap interval (the exact bounds
are in CSV/JSON and the HTML tooltips); the best value of a column is bold; with a baseline row, a mark
says a cell is significantly better (+) or worse (-) than the baseline's. The caption states the scale,
the interval method with its resamples and seed, the significance test, every column's metric variant and
n, and every remark (no interval and why, approximations, subsets, failed items).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
from tabulate import tabulate

from mmbench.report.leaderboard import Leaderboard

SUFFIXES = {".md": "md", ".markdown": "md", ".tex": "latex", ".csv": "csv", ".json": "json", ".html": "html",
            ".htm": "html"}
MARKS = {"md": {1: " ▲", -1: " ▼"}, "html": {1: " ▲", -1: " ▼"}, "latex": {1: "$^{+}$", -1: "$^{-}$"}}
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", "→": r"$\rightarrow$",
                  "←": r"$\leftarrow$", "±": r"$\pm$", "×": r"$\times$", "≤": r"$\leq$", "≥": r"$\geq$",
                  "–": "--", "—": "---", "▲": "+", "▼": "-", "α": r"$\alpha$",
                  # brackets in braces: "\\" followed by "[" would read as the optional argument of \\
                  "[": "{[}", "]": "{]}", "\n": " ", "\r": " ", "\t": " "}


def latex_escape(text: str) -> str:
    """Text safe inside LaTeX (special characters escaped, line breaks as spaces, control characters
    dropped, a few symbols mapped to math)."""
    return "".join(_LATEX_SPECIAL.get(ch, "" if ord(ch) < 32 else ch) for ch in str(text))


_MD_SPECIAL = {"\\": "\\\\", "|": "\\|", "*": "\\*", "`": "\\`", "[": "\\[", "]": "\\]",
               "<": "&lt;", ">": "&gt;", "\n": " ", "\r": " ", "\t": " "}


def md_escape(text: str) -> str:
    """Text that stays literal in a Markdown table: no tags, no links, no cell or row breaks, no emphasis
    (GitHub Markdown leaves intraword underscores alone, so names like t2i_R@5 stay readable)."""
    return "".join(_MD_SPECIAL.get(ch, "" if ord(ch) < 32 else ch) for ch in str(text))


def csv_safe(value: Any) -> Any:
    """A text cell that a spreadsheet will not run as a formula (OWASP CSV injection: a leading = + - @, tab
    or carriage return gets a ' in front); numbers are left alone."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value: Any, digits: int) -> str:
    return "" if _missing(value) else f"{float(value):.{digits}f}"


def fmt_rate(items_per_s: Any) -> str:
    if _missing(items_per_s):
        return ""
    v = float(items_per_s)
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def fmt_memory(nbytes: Any) -> str:
    if _missing(nbytes) or not nbytes:
        return ""
    mib = float(nbytes) / 2**20
    return f"{mib / 1024:.2f} GiB" if mib >= 1024 else f"{mib:,.0f} MiB"


def cell_parts(cell: dict, digits: int) -> tuple[str, str]:
    """("83.2", "2.9"): the scaled value and the half-width of its interval ("" when none)."""
    if cell.get("unavailable") or _missing(cell.get("value")):
        return "n/a", ""
    scale = float(cell["scale"])
    value = fmt(cell["value"] * scale, digits)
    if _missing(cell.get("low")) or _missing(cell.get("high")):
        return value, ""
    return value, fmt((cell["high"] - cell["low"]) * scale / 2, digits)


def average_parts(row: dict, digits: int) -> tuple[str, str]:
    if _missing(row.get("average")):
        return "", ""
    half = "" if _missing(row.get("average_low")) else fmt((row["average_high"] - row["average_low"]) / 2, digits)
    return fmt(row["average"], digits), half


def headers(lb: Leaderboard) -> list[str]:
    d = lb.definition
    return (["Model"] + [c.label for c in d.columns] + ([d.average_label] if d.average_label else [])
            + ["items/s", "peak memory"])


def table_rows(lb: Leaderboard, style: str) -> list[list[str]]:
    """Display strings per row (style: md, latex or html; latex and html text is escaped here)."""
    esc = latex_escape if style == "latex" else md_escape if style == "md" else (lambda s: s)
    pm = r" $\pm$ " if style == "latex" else " ± "
    missing = "--" if style == "latex" else "—"
    digits = lb.definition.digits
    rows_by_model = {r["model"]: r for r in lb.rows.to_dict(orient="records")}
    out = []
    for model in lb.models:
        line = [esc(model)]
        for col in lb.definition.columns:
            cell = lb.cell(model, col.label)
            if cell is None:
                line.append(missing)
                continue
            value, half = cell_parts(cell, digits)
            text = value + (pm + half if half else "")
            if cell.get("best"):
                text = rf"\textbf{{{text}}}" if style == "latex" else f"**{text}**" if style == "md" else text
            line.append(text + MARKS[style].get(int(cell.get("sig") or 0), ""))
        row = rows_by_model.get(model, {})
        if lb.definition.average_label:
            value, half = average_parts(row, digits)
            line.append((value + (pm + half if half else "")) if value else missing)
        line += [fmt_rate(row.get("items_per_s")) or missing, esc(fmt_memory(row.get("peak_memory_bytes"))) or missing]
        out.append(line)
    return out


def caption_sentences(lb: Leaderboard, style: str = "md") -> list[str]:
    """The caption as plain-text sentences (escape them for the target format): the title, the scale, the
    interval method with its settings, the marks, the efficiency columns and the average."""
    d, s = lb.definition, lb.settings
    level = f"{100 * (1 - s['alpha']):g}%"
    title = d.title or f"Leaderboard {d.name}"
    out = [title if title.endswith((".", "!", "?")) else title + "."]
    scaled = [c for c in d.columns if c.scale != 1]
    scales = sorted({c.scale for c in scaled})
    if len(scales) == 1:
        rest = [c.label for c in d.columns if c.scale == 1]
        out.append(f"Scores x{scales[0]:g}" + (f" except {', '.join(rest)}." if rest else "."))
    elif scales:
        out.append("Scores scaled as noted per column.")
    out.append(f"± is half the width of the {level} {s['method']} ({s['resamples']} resamples, seed {s['seed']}); "
               f"CSV/JSON give the exact bounds. Bold: best in the column.")
    if s.get("baseline"):
        marks = "+/-" if style == "latex" else "▲/▼"
        out.append(f"{marks}: significantly better/worse than {s['baseline']} ({s['significance']}, "
                   f"alpha {s['alpha']:g}).")
    kinds = sorted({str(k) for k in lb.rows.get("peak_memory_kind", pd.Series(dtype=object)).dropna()})
    out.append(f"items/s: items over seconds summed across "
               f"{'the tasks of the columns' if d.throughput == 'all' else 'task ' + d.throughput}; "
               f"peak memory: the largest over those tasks ({', '.join(kinds) or 'not measured'}).")
    if d.average_label:
        out.append(f"{d.average_label}: mean of {', '.join(d.average_columns)} for models with all of them, "
                   f"its interval from the averaged bootstrap replicates.")
    return out


def to_markdown(lb: Leaderboard) -> str:
    d = lb.definition
    parts = [f"# {md_escape(d.title or 'Leaderboard ' + d.name)}", ""]
    if d.description:
        parts += [md_escape(d.description), ""]
    align = ["left"] + ["right"] * (len(headers(lb)) - 1)
    parts += [tabulate(table_rows(lb, "md"), headers=[md_escape(h) for h in headers(lb)], tablefmt="github",
                       colalign=align, disable_numparse=True), ""]
    parts += [md_escape(" ".join(caption_sentences(lb, "md")[1:])), ""]
    parts += [f"- {md_escape(n)}" for n in lb.notes]
    return "\n".join(parts) + "\n"


def _sentence(text: str) -> str:
    return text if text.endswith(".") else text + "."


def to_latex(lb: Leaderboard) -> str:
    """A ``table`` float with a booktabs ``tabular`` (needs \\usepackage{booktabs}), built by pandas' Styler.

    The caption carries the method and every column's metric variant and n; the remaining remarks (no
    interval and why, approximations, subsets) follow the tabular in small type."""
    d = lb.definition
    cols = [latex_escape(h) for h in headers(lb)]
    frame = pd.DataFrame(table_rows(lb, "latex"), columns=cols)
    n_cols = len(d.columns)
    caption = " ".join(latex_escape(x) for x in caption_sentences(lb, "latex"))
    caption += " " + " ".join(latex_escape(_sentence(n)) for n in lb.notes[:n_cols])
    styler = frame.style.hide(axis="index")
    tex = styler.to_latex(column_format="l" + "r" * (len(cols) - 1), hrules=True, caption=caption,
                          label=f"tab:mmbench-{d.name}", position_float="centering", environment="table",
                          position="t")
    remarks = lb.notes[n_cols:]
    if remarks:
        block = "\\par\\smallskip{\\footnotesize " + " ".join(latex_escape(_sentence(n)) for n in remarks) + "}\n"
        tex = tex.replace("\\end{table}", block + "\\end{table}")
    return tex


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if _missing(v) else v) for k, v in r.items()}
            for r in frame.astype(object).to_dict(orient="records")]


def to_csv(lb: Leaderboard) -> str:
    """Tidy: one line per (model, column) with the exact interval, plus one per model for the average."""
    s = lb.settings
    cells = lb.cells.copy()
    if lb.definition.average_label and not lb.rows.empty:
        avg = lb.rows[lb.rows["average"].notna()].rename(columns={"average": "value", "average_low": "low",
                                                                  "average_high": "high"})
        avg = avg[["model", "value", "low", "high"]].assign(column=lb.definition.average_label, metric="average",
                                                            scale=1.0)
        cells = pd.concat([cells, avg], ignore_index=True) if not cells.empty else avg
    order = {m: i for i, m in enumerate(lb.models)}
    cells = cells.assign(rank=cells["model"].map(order), ci_method=s["method"], resamples=s["resamples"],
                         seed=s["seed"], alpha=s["alpha"])
    keep = ["rank", "model", "column", "task", "metric", "value", "low", "high", "scale", "se", "se_analytic", "n",
            "higher_is_better", "best", "sig", "p_vs_baseline", "items_per_s", "peak_memory_bytes",
            "peak_memory_kind", "variant", "note", "run_id", "result_id", "ci_method", "resamples", "seed", "alpha"]
    out = cells.reindex(columns=keep)
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(csv_safe)
    return out.to_csv(index=False)


def to_json(lb: Leaderboard) -> str:
    d = lb.definition
    doc = {
        "leaderboard": d.name, "title": d.title, "description": d.description, "definition": d.source,
        "settings": lb.settings, "models": lb.models,
        "columns": [{"label": c.label, "task": c.task, "metric": c.metric, "scale": c.scale} for c in d.columns],
        "average": {"label": d.average_label, "columns": list(d.average_columns)} if d.average_label else None,
        "cells": _records(lb.cells), "rows": _records(lb.rows), "curves": _records(lb.curves),
        "notes": lb.notes,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"


#: format name -> function(Leaderboard) -> str (html lives in mmbench.report.html, which builds on this module)
TEXT_RENDERERS = {"md": to_markdown, "latex": to_latex, "csv": to_csv, "json": to_json}
