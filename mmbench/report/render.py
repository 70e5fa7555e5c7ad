"""A Leaderboard as Markdown, LaTeX (booktabs), CSV and JSON; the shared cell and caption formatting.

Cells read ``score ± h`` where h is half the width of the percentile bootstrap interval (the exact bounds
are in CSV/JSON and the HTML tooltips); the best value of a column is bold; with a baseline row, a mark
says a cell is significantly better (+) or worse (-) than the baseline's. The caption states the scale,
the interval method with its resamples and seed, the significance test, every column's metric variant and
n, and every remark (no interval and why, approximations, subsets, failed items).

Published reference rows (report/published.py) follow the measured rows, named "MODEL (published, ref. N)",
with the values as their sources report them: no interval, no bold, no marks, no rank; their citations and
splits are listed below the table. A model that should reproduce a reference row carries a check in each
such cell: ✓ or ✗ and the published value (inside or outside the cell's interval), "?" (no interval), or
"(no score; pub. X)" / "(not run; pub. X)"; one summary line per such model follows the citations.

With the definition's ``pairwise:`` (report/pairwise.py) a "Pairwise differences" table follows: one row per
pair "A − B", one column per tested leaderboard column, each cell the difference on the column's scale, its
interval, the Holm-adjusted p and a mark (▲/▼: A significantly better/worse than B), then its caption and
notes. Without the key every output is exactly as before.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
from tabulate import tabulate

from mmbench.report.leaderboard import Leaderboard
from mmbench.report.pairwise import pair_label
from mmbench.report.published import Reference, check_text

SUFFIXES = {".md": "md", ".markdown": "md", ".tex": "latex", ".csv": "csv", ".json": "json", ".html": "html",
            ".htm": "html"}
MARKS = {"md": {1: " ▲", -1: " ▼"}, "html": {1: " ▲", -1: " ▼"}, "latex": {1: "$^{+}$", -1: "$^{-}$"}}
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", "→": r"$\rightarrow$",
                  "←": r"$\leftarrow$", "±": r"$\pm$", "×": r"$\times$", "≤": r"$\leq$", "≥": r"$\geq$",
                  "–": "--", "—": "---", "−": "$-$", "▲": "+", "▼": "-", "α": r"$\alpha$", "✓": r"$\surd$",
                  "✗": r"$\times$",
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


def reference_label(i: int, ref: Reference) -> str:
    """How a published row is named in every format: "LLaVA-1.5-7B (published, ref. 1)"."""
    return f"{ref.model} (published, ref. {i})"


def _check_mark(lb: Leaderboard, model: str, label: str, esc) -> str:
    check = lb.check(model, label)
    text = check_text(check, lb.definition.digits) if check else ""
    return " " + esc(text) if text else ""


def table_rows(lb: Leaderboard, style: str) -> list[list[str]]:
    """Display strings per measured row (style: md, latex or html; latex and html text is escaped here)."""
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
            mark = _check_mark(lb, model, col.label, esc)
            if cell is None:
                line.append(missing + mark)
                continue
            value, half = cell_parts(cell, digits)
            text = value + (pm + half if half else "")
            if cell.get("best"):
                text = rf"\textbf{{{text}}}" if style == "latex" else f"**{text}**" if style == "md" else text
            line.append(text + MARKS[style].get(int(cell.get("sig") or 0), "") + mark)
        row = rows_by_model.get(model, {})
        if lb.definition.average_label:
            value, half = average_parts(row, digits)
            line.append((value + (pm + half if half else "")) if value else missing)
        line += [fmt_rate(row.get("items_per_s")) or missing, esc(fmt_memory(row.get("peak_memory_bytes"))) or missing]
        out.append(line)
    return out


def reference_rows(lb: Leaderboard, style: str) -> list[list[str]]:
    """The published rows, after the measured ones: the values as published, nothing else."""
    esc = latex_escape if style == "latex" else md_escape if style == "md" else (lambda s: s)
    missing = "--" if style == "latex" else "—"
    d = lb.definition
    out = []
    for i, ref in enumerate(d.references, 1):
        values = [ref.value(c.label) for c in d.columns]
        line = [esc(reference_label(i, ref))] + [missing if v is None else fmt(v, d.digits) for v in values]
        out.append(line + [missing] * (bool(d.average_label) + 2))
    return out


def published_lines(lb: Leaderboard) -> list[str]:
    """Below the table: each published row's citation, splits and note, then each reproducing model's
    summary ("reproduces 5 of 7 published columns ...")."""
    lines = []
    for i, ref in enumerate(lb.definition.references, 1):
        text = f"ref. {i}, {ref.model} (published, not measured here): {ref.source}"
        if ref.splits:
            text += ". Splits: " + "; ".join(f"{label}: {split}" for label, split in ref.splits)
        lines.append(text + (f". {ref.note}" if ref.note else ""))
    return lines + list(lb.reproduction)


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
    if d.references:
        out.append("Rows marked (published) are the values their sources report (cited below the table, with "
                   "their splits), not measured here: no intervals, ranks or marks.")
    if not lb.checks.empty:
        out.append(f"✓/✗ and a published value in a cell: that value lies inside/outside the cell's {level} "
                   f"interval (the model's reproduction of a published row, summarised below); ?: the cell has no "
                   f"interval to check it against.")
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


# ---------------------------------------------------------------------------------------------- pairwise

def has_pairwise(lb: Leaderboard) -> bool:
    """Whether the outputs carry the pairwise section (the definition asks for it, or a table was set)."""
    return bool(lb.definition.pairwise) or not lb.pairwise.empty


def pairwise_grid(lb: Leaderboard) -> tuple[list[str], list[tuple[str, str]], dict[tuple[str, str, str], dict]]:
    """The pairwise table's shape: the tested column labels (definition order), the pairs (A, B) in the
    order compared, and each (A, B, label)'s row of ``lb.pairwise`` as a dict."""
    frame = lb.pairwise
    if frame.empty:
        return [], [], {}
    tested = set(frame["column"])
    labels = [c.label for c in lb.definition.columns if c.label in tested]
    names = lb.models if lb.definition.pairwise is True else list(lb.definition.pairwise or ())
    found = list(dict.fromkeys(zip(frame["model_a"], frame["model_b"])))
    rank = {m: i for i, m in enumerate(names)}
    pairs = sorted(found, key=lambda ab: (rank.get(ab[0], len(rank)), rank.get(ab[1], len(rank)), found.index(ab)))
    rows = {(r["model_a"], r["model_b"], r["column"]): r for r in frame.to_dict(orient="records")}
    return labels, pairs, rows


def fmt_p(p: Any) -> str:
    """"p=0.004" / "p<0.001" ("" when there is no p)."""
    if _missing(p):
        return ""
    return "p<0.001" if float(p) < 0.001 else f"p={float(p):.3f}"


def pairwise_text(row: dict, digits: int) -> str:
    """"+3.2 [+1.0, +5.4] p=0.004" (Holm-adjusted p; no mark): "n/a" without a difference."""
    if _missing(row.get("diff")):
        return "n/a"
    text = f"{float(row['diff']):+.{digits}f}"
    if not _missing(row.get("low")) and not _missing(row.get("high")):
        text += f" [{float(row['low']):+.{digits}f}, {float(row['high']):+.{digits}f}]"
    p = fmt_p(row.get("p_holm"))
    return text + (" " + p if p else "")


def pairwise_rows(lb: Leaderboard, style: str) -> tuple[list[str], list[list[str]]]:
    """Headers and display rows of the pairwise table (style md, latex or html; md/latex text escaped)."""
    esc = latex_escape if style == "latex" else md_escape if style == "md" else (lambda s: s)
    missing = "--" if style == "latex" else "—"
    labels, pairs, found = pairwise_grid(lb)
    out = []
    for a, b in pairs:
        line = [esc(pair_label(a, b))]
        for label in labels:
            row = found.get((a, b, label))
            line.append(missing if row is None else esc(pairwise_text(row, lb.definition.digits))
                        + MARKS[style].get(int(row.get("sig") or 0), ""))
        out.append(line)
    return [esc("Pair")] + [esc(x) for x in labels], out


def pairwise_caption(lb: Leaderboard, style: str = "md") -> str:
    """The one caption sentence of the pairwise table (plain text: escape it for the target format)."""
    s = lb.settings
    level = f"{100 * (1 - s['alpha']):g}%"
    marks = "+/-" if style == "latex" else "▲/▼"
    return (f"Pairwise differences: each cell is the pair's first model minus its second, in the column's "
            f"displayed scale, with the {level} interval of the difference and the two-sided p-value of a paired "
            f"bootstrap over the items both results share ({s['resamples']} resamples, seed {s['seed']}), "
            f"Holm-adjusted across the pairs within each column; {marks}: the first model is significantly "
            f"better/worse than the second (alpha {s['alpha']:g}, respecting lower-is-better); —: one of the two "
            f"has no result in the column; n/a: no value to compare.")


def _markdown_pairwise(lb: Leaderboard) -> list[str]:
    heads, rows = pairwise_rows(lb, "md")
    parts = ["", "## Pairwise differences", ""]
    if rows:
        align = ["left"] + ["right"] * (len(heads) - 1)
        parts += [tabulate(rows, headers=heads, tablefmt="github", colalign=align, disable_numparse=True), "",
                  md_escape(pairwise_caption(lb, "md")), ""]
    return parts + [f"- {md_escape(n)}" for n in lb.pairwise_notes]


def _latex_pairwise(lb: Leaderboard) -> str:
    """A second booktabs table float (or, without any pair, the notes as LaTeX comments)."""
    heads, rows = pairwise_rows(lb, "latex")
    if not rows:
        return "".join(f"% {latex_escape(n)}\n" for n in ["Pairwise differences:"] + lb.pairwise_notes)
    caption = latex_escape(pairwise_caption(lb, "latex"))
    styler = pd.DataFrame(rows, columns=heads).style.hide(axis="index")
    tex = styler.to_latex(column_format="l" + "r" * (len(heads) - 1), hrules=True, caption=caption,
                          label=f"tab:mmbench-{lb.definition.name}-pairwise", position_float="centering",
                          environment="table", position="t")
    if lb.pairwise_notes:
        notes = " ".join(latex_escape(_sentence(n)) for n in lb.pairwise_notes)
        block = "\\par\\smallskip{\\footnotesize " + notes + "}\n"
        tex = tex.replace("\\end{table}", block + "\\end{table}")
    return tex


def _pairwise_frame(lb: Leaderboard) -> pd.DataFrame:
    """CSV lines of the pairwise table (``row_kind`` pairwise, ``model`` A and ``model_b`` B): value, low and
    high in the metric's units (the difference / scale), as the measured lines."""
    frame = lb.pairwise.astype(object)
    if frame.empty:
        return frame
    out = frame.rename(columns={"model_a": "model", "diff": "value"}).assign(row_kind="pairwise")
    for col in ("value", "low", "high"):
        out[col] = [None if _missing(v) else round(float(v) / float(sc), 12)
                    for v, sc in zip(out[col], out["scale"])]
    return out


def to_markdown(lb: Leaderboard) -> str:
    d = lb.definition
    parts = [f"# {md_escape(d.title or 'Leaderboard ' + d.name)}", ""]
    if d.description:
        parts += [md_escape(d.description), ""]
    align = ["left"] + ["right"] * (len(headers(lb)) - 1)
    rows = table_rows(lb, "md") + reference_rows(lb, "md")
    parts += [tabulate(rows, headers=[md_escape(h) for h in headers(lb)], tablefmt="github", colalign=align,
                       disable_numparse=True), ""]
    parts += [md_escape(" ".join(caption_sentences(lb, "md")[1:])), ""]
    parts += [f"- {md_escape(n)}" for n in published_lines(lb) + lb.notes]
    if has_pairwise(lb):
        parts += _markdown_pairwise(lb)
    return "\n".join(parts) + "\n"


def _sentence(text: str) -> str:
    return text if text.endswith(".") else text + "."


def to_latex(lb: Leaderboard) -> str:
    """A ``table`` float with a booktabs ``tabular`` (needs \\usepackage{booktabs}), built by pandas' Styler.

    The caption carries the method and every column's metric variant and n; the remaining remarks (no
    interval and why, approximations, subsets) follow the tabular in small type."""
    d = lb.definition
    cols = [latex_escape(h) for h in headers(lb)]
    measured = table_rows(lb, "latex")
    frame = pd.DataFrame(measured + reference_rows(lb, "latex"), columns=cols)
    n_cols = len(d.columns)
    caption = " ".join(latex_escape(x) for x in caption_sentences(lb, "latex"))
    caption += " " + " ".join(latex_escape(_sentence(n)) for n in lb.notes[:n_cols])
    styler = frame.style.hide(axis="index")
    tex = styler.to_latex(column_format="l" + "r" * (len(cols) - 1), hrules=True, caption=caption,
                          label=f"tab:mmbench-{d.name}", position_float="centering", environment="table",
                          position="t")
    if d.references:  # a rule between the measured rows and the published ones
        lines = tex.split("\n")
        first = lines.index("\\midrule") + 1 + len(measured)
        tex = "\n".join(lines[:first] + ["\\midrule"] + lines[first:])
    remarks = published_lines(lb) + lb.notes[n_cols:]
    if remarks:
        block = "\\par\\smallskip{\\footnotesize " + " ".join(latex_escape(_sentence(n)) for n in remarks) + "}\n"
        tex = tex.replace("\\end{table}", block + "\\end{table}")
    if has_pairwise(lb):
        tex += "\n" + _latex_pairwise(lb)
    return tex


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if _missing(v) else v) for k, v in r.items()}
            for r in frame.astype(object).to_dict(orient="records")]


def _published_frame(lb: Leaderboard) -> pd.DataFrame:
    """One tidy line per published value: ``value`` in the metric's units (published / scale), as the
    measured lines, and ``published_value`` as the source prints it."""
    d = lb.definition
    rows = [{"row_kind": "published", "model": ref.model, "column": c.label, "task": c.task, "metric": c.metric,
             "value": round(v / c.scale, 12), "scale": c.scale, "published_value": v, "reference": ref.model,
             "source": ref.source, "split": ref.split(c.label)}
            for ref in d.references for c in d.columns if (v := ref.value(c.label)) is not None]
    return pd.DataFrame(rows)


def _with_checks(cells: pd.DataFrame, checks: pd.DataFrame) -> pd.DataFrame:
    """Measured lines with their published check (reference, published value, inside/outside/...); a check
    of a column the model has no cell in becomes a line of its own."""
    if checks.empty:
        return cells
    extra = checks[["model", "column", "task", "metric", "reference", "published", "status", "split", "reason"]]
    extra = extra.rename(columns={"published": "published_value", "status": "reproduces", "reason": "check_note"})
    if cells.empty:
        return extra
    keys = ["model", "column", "task", "metric"]
    merged = cells.merge(extra, on=keys, how="left")
    alone = extra.merge(cells[keys], on=keys, how="left", indicator=True)
    alone = alone[alone["_merge"] == "left_only"].drop(columns="_merge")
    return pd.concat([merged, alone], ignore_index=True) if not alone.empty else merged


def to_csv(lb: Leaderboard) -> str:
    """Tidy: one line per (model, column) with the exact interval, one per model for the average, and one per
    published value (``row_kind`` published: never ranked)."""
    s = lb.settings
    cells = _with_checks(lb.cells.copy(), lb.checks)
    if lb.definition.average_label and not lb.rows.empty:
        avg = lb.rows[lb.rows["average"].notna()].rename(columns={"average": "value", "average_low": "low",
                                                                  "average_high": "high"})
        avg = avg[["model", "value", "low", "high"]].assign(column=lb.definition.average_label, metric="average",
                                                            scale=1.0)
        cells = pd.concat([cells, avg], ignore_index=True) if not cells.empty else avg
    order = {m: i for i, m in enumerate(lb.models)}
    cells = cells.assign(rank=cells["model"].map(order).astype("Int64"), row_kind="measured")
    published = _published_frame(lb)
    if not published.empty:
        cells = pd.concat([cells, published], ignore_index=True) if not cells.empty else published
    pairwise = _pairwise_frame(lb) if has_pairwise(lb) else pd.DataFrame()
    if not pairwise.empty:
        cells = pd.concat([cells, pairwise], ignore_index=True) if not cells.empty else pairwise
    cells = cells.assign(ci_method=s["method"], resamples=s["resamples"], seed=s["seed"], alpha=s["alpha"])
    keep = ["rank", "model", "column", "task", "metric", "value", "low", "high", "scale", "se", "se_analytic", "n",
            "higher_is_better", "best", "sig", "p_vs_baseline", "items_per_s", "peak_memory_bytes",
            "peak_memory_kind", "variant", "note", "run_id", "result_id", "ci_method", "resamples", "seed", "alpha",
            "row_kind", "reference", "published_value", "reproduces", "check_note", "source", "split"]
    if not pairwise.empty:  # the pairwise lines: A in ``model``, B in ``model_b``; p raw and Holm-adjusted
        keep += ["model_b", "p", "p_holm"]
    out = cells.reindex(columns=keep)
    for col in ("n", "sig", "result_id", "peak_memory_bytes"):  # whole numbers stay whole beside empty cells
        values = pd.to_numeric(out[col], errors="coerce")
        if values.dropna().mod(1).eq(0).all():
            out[col] = values.astype("Int64")
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
        # published rows: values as their sources print them (the displayed scale); never ranked
        "references": [{"label": reference_label(i, r), "model": r.model, "source": r.source, "note": r.note,
                        "values": dict(r.values), "splits": dict(r.splits)}
                       for i, r in enumerate(d.references, 1)],
        "reproduce": dict(zip(lb.checks["model"], lb.checks["reference"])), "checks": _records(lb.checks),
        "reproduction": lb.reproduction, "notes": lb.notes,
    }
    if has_pairwise(lb):  # differences on the display scale, as the tables show them
        doc["pairwise"] = _records(lb.pairwise)
        doc["pairwise_notes"] = lb.pairwise_notes
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"


#: format name -> function(Leaderboard) -> str (html lives in mmbench.report.html, which builds on this module)
TEXT_RENDERERS = {"md": to_markdown, "latex": to_latex, "csv": to_csv, "json": to_json}
