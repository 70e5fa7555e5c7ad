"""Leaderboard plots with matplotlib: score vs throughput, per-task bars with intervals, and curves.

Figures are built with ``matplotlib.figure.Figure`` and its Agg canvas (no pyplot, so no global backend
switch in the user's process). Each function returns None when there is nothing to draw. Files are written
without timestamps or version metadata, so regenerating an unchanged leaderboard gives identical PNGs.
Error bars are the cells' percentile bootstrap intervals (asymmetric), scaled like the table.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from mmbench.report.leaderboard import Leaderboard

_PNG_META = {"Software": None}
_PDF_META = {"Creator": None, "Producer": None, "CreationDate": None}
_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


def _text(s: object, width: int = 40) -> str:
    """A label for matplotlib: '$' escaped (no accidental mathtext from model names), long names cut."""
    s = str(s)
    s = s if len(s) <= width else s[: width - 1] + "…"
    return s.replace("$", r"\$")


def _color(lb: Leaderboard, model: str) -> str:
    return _COLORS[lb.models.index(model) % len(_COLORS)] if model in lb.models else "#333333"


def _grid(n: int, width: float = 4.2, height: float = 3.2) -> tuple[Figure, list]:
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(width * cols, height * rows), dpi=100, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _err(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray | None:
    """Error-bar extents; clipped at the value when the interval is of an approximation that excludes it
    (the table's notes say so), since matplotlib draws bars only around the value."""
    if np.isnan(low).all():
        return None
    return np.clip(np.vstack([np.nan_to_num(values - low), np.nan_to_num(high - values)]), 0, None)


def _column_frame(lb: Leaderboard, label: str):
    cells = lb.cells[(lb.cells["column"] == label) & lb.cells["value"].notna()] if not lb.cells.empty else lb.cells
    if cells.empty:
        return cells
    order = {m: i for i, m in enumerate(lb.models)}
    return cells.assign(_o=cells["model"].map(order)).sort_values("_o")


def task_bars(lb: Leaderboard) -> Figure | None:
    """One panel per column: a bar per model with its interval; the baseline's bar is hatched."""
    labels = [c.label for c in lb.definition.columns if not _column_frame(lb, c.label).empty]
    if not labels:
        return None
    fig, axes = _grid(len(labels))
    baseline = lb.settings.get("baseline")
    for ax, label in zip(axes, labels):
        df = _column_frame(lb, label)
        scale = df["scale"].astype(float).to_numpy()
        v = df["value"].astype(float).to_numpy() * scale
        lo = df["low"].astype(float).to_numpy() * scale
        hi = df["high"].astype(float).to_numpy() * scale
        x = np.arange(len(df))
        bars = ax.bar(x, v, yerr=_err(v, lo, hi), capsize=3, color=[_color(lb, m) for m in df["model"]])
        for bar, model in zip(bars, df["model"]):
            if model == baseline:
                bar.set_hatch("//")
        ax.set_xticks(x, [_text(m, 18) for m in df["model"]], rotation=30, ha="right", fontsize=8)
        direction = "" if bool(df["higher_is_better"].iloc[0]) else " (lower is better)"
        ax.set_title(_text(label + direction, 48), fontsize=9)
    fig.suptitle(_text(f"{lb.definition.title or lb.definition.name}: scores with "
                       f"{100 * (1 - lb.settings['alpha']):g}% bootstrap intervals", 90), fontsize=10)
    return fig


def score_vs_throughput(lb: Leaderboard) -> Figure | None:
    """One panel per column: score (with interval) against the task's measured items/s (log scale)."""
    labels = []
    for c in lb.definition.columns:
        df = _column_frame(lb, c.label)
        if not df.empty and df["items_per_s"].notna().any():
            labels.append(c.label)
    if not labels:
        return None
    fig, axes = _grid(len(labels))
    for ax, label in zip(axes, labels):
        df = _column_frame(lb, label)
        df = df[df["items_per_s"].notna()]
        scale = df["scale"].astype(float).to_numpy()
        v = df["value"].astype(float).to_numpy() * scale
        lo = df["low"].astype(float).to_numpy() * scale
        hi = df["high"].astype(float).to_numpy() * scale
        x = df["items_per_s"].astype(float).to_numpy()
        err = _err(v, lo, hi)
        for i, model in enumerate(df["model"]):
            ax.errorbar([x[i]], [v[i]], yerr=None if err is None else err[:, i:i + 1], fmt="o", capsize=3,
                        color=_color(lb, model))
            ax.annotate(_text(model, 18), (x[i], v[i]), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("items/s (log scale)", fontsize=8)
        ax.set_title(_text(label, 48), fontsize=9)
    fig.suptitle(_text(f"{lb.definition.title or lb.definition.name}: score vs throughput", 90), fontsize=10)
    return fig


def curves(lb: Leaderboard) -> Figure | None:
    """One panel per curve (e.g. WER vs SNR, FID vs CLIP-score over guidance): a line per model."""
    if lb.curves.empty:
        return None
    names = list(dict.fromkeys(lb.curves["curve"]))
    fig, axes = _grid(len(names))
    for ax, name in zip(axes, names):
        df = lb.curves[lb.curves["curve"] == name]
        for model, points in df.groupby("model", sort=False):
            points = points.sort_values("x")
            y = points["y"].astype(float).to_numpy()
            err = _err(y, points["y_low"].astype(float).to_numpy(), points["y_high"].astype(float).to_numpy())
            ax.errorbar(points["x"].astype(float), y, yerr=err, marker="o", capsize=3, label=_text(model, 24),
                        color=_color(lb, str(model)))
        first = df.iloc[0]
        ax.set_xlabel(_text(first["x_label"]), fontsize=8)
        ax.set_ylabel(_text(first["y_label"] + ("" if first["higher_is_better"] else " (lower is better)")),
                      fontsize=8)
        ax.set_title(_text(first["label"]), fontsize=9)
        ax.legend(fontsize=7)
    return fig


PLOTS = {"task_bars": task_bars, "score_vs_throughput": score_vs_throughput, "curves": curves}


def figures(lb: Leaderboard) -> dict[str, Figure]:
    """Every plot that has something to show, by name."""
    out = {}
    for name, make in PLOTS.items():
        fig = make(lb)
        if fig is not None:
            out[name] = fig
    return out


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata=_PNG_META)
    return buf.getvalue()


def save_plots(lb: Leaderboard, directory: Path, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Write every plot as ``<leaderboard>_<plot>.<fmt>`` (PNG at 200 dpi for papers); returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in figures(lb).items():
        for fmt in formats:
            path = directory / f"{lb.definition.name}_{name}.{fmt}"
            meta = _PNG_META if fmt == "png" else _PDF_META if fmt == "pdf" else None
            fig.savefig(path, format=fmt, dpi=200, metadata=meta)
            written.append(path)
    return written
