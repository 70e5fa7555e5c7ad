"""What a run prints: the compact summary (models by tasks, each task's headline metric with its interval) and
the full table (`mmbench show`: every metric with a footnote saying what produced it)."""

from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from mmbench.results import RunResult


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _mem(nbytes: int | None) -> str:
    return "n/a" if not nbytes else f"{nbytes / 2**20:,.0f} MiB"


def results_table(run: RunResult, run_dir: str = "") -> str:
    rows, notes, variants = [], [], {}
    for r in run.results:
        for m in r.metrics:
            ref = variants.setdefault(m["variant"], len(variants) + 1)
            value = _fmt(m["value"]) if m.get("unavailable") is None else "unavailable"
            rows.append([r.model, r.task, m["name"], value, r.n_items, r.n_failed,
                         f"{r.throughput.items_per_s:,.1f}" if r.throughput.items_per_s else "n/a",
                         _mem(r.peak_memory.bytes), f"[{ref}]"])
            if m.get("unavailable"):
                notes.append(f"{r.model} / {r.task} / {m['name']}: {m['unavailable']}")
        info = r.task_info
        data = info.get("data", {})
        line = (f"{r.model} / {r.task}: data {data.get('fingerprint', '?')} ({data.get('description', '')}); "
                f"model {r.model_fingerprint} (weights {r.model_info.get('weights_fingerprint', '?')}, "
                f"{r.model_info.get('dtype', r.model_info.get('args', {}).get('dtype', '?'))}, "
                f"{r.model_info.get('device', '?')}); task {r.task_fingerprint}; "
                f"throughput: {r.throughput.basis}; memory: {r.peak_memory.kind}")
        notes.append(line)
        notes.extend(f"{r.model} / {r.task}: {n}" for n in r.notes)
    headers = ["model", "task", "metric", "value", "n", "failed", "items/s", "peak mem", "variant"]
    out = [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
    out += [f"[{i}] {v}" for v, i in variants.items()]
    pk = run.environment.get("packages", {})
    versions = ", ".join(f"{k} {pk[k]}" for k in ("torch", "transformers", "datasets") if k in pk)
    out.append("")
    out.append(f"mmbench {run.mmbench_version} (git {run.git_revision or 'n/a'}), {versions}, "
               f"python {run.environment.get('python')}, seed {run.seed}")
    out += notes
    for f in run.failures:
        out.append(f"FAILED {f['model']} / {f['task']}: {f['error']}")
    if run_dir:
        out.append(_results_line(run_dir))
    return "\n".join(out)


# -- the end-of-run summary ----------------------------------------------------------------------------------

SUMMARY_RESAMPLES = 200  # enough for a ± at a glance; `mmbench leaderboard` computes the full intervals
SUMMARY_BUDGET_S = 0.5  # per result: a metric slower than this to recompute (CIDEr, FID) shows no ±


def headline(result) -> dict | None:
    """The metric a summary shows for a result: the first of its metrics' declared headlines that has a
    value, else the reliance of a probe, else its first unbroken-down value."""
    from mmbench.metrics.api import metric_class
    from mmbench.registry import METRICS

    by_name = {m["name"]: m for m in result.metrics if m.get("value") is not None}
    wanted: list[str] = []
    for name in (result.aggregator or "").split("+"):
        if name in METRICS.names():
            wanted += list(metric_class(name).headline)
    wanted += ["image_reliance", "audio_reliance"]
    for name in wanted:
        if name in by_name:
            return by_name[name]
    return next((m for m in by_name.values() if "[" not in m["name"]), next(iter(by_name.values()), None))


def _half_width(result, metric: str, run_dir: Path, seed: int) -> float | None:
    """Half the width of the 95% bootstrap interval of ``metric`` over the result's items (None: none)."""
    from mmbench.report.stats import bootstrap, resolve_aggregator
    from mmbench.store import unpack_stats

    path = run_dir / result.files.get("item_stats", "")
    if not result.files.get("item_stats") or not path.is_file():
        return None
    aggregate, _ = resolve_aggregator(result.aggregator)
    if aggregate is None:
        return None
    _, stats = unpack_stats(path.read_bytes())
    boot = bootstrap(stats, aggregate, metrics=[metric], reported={metric: result.value(metric)},
                     resamples=SUMMARY_RESAMPLES, seed=seed, stream=result.task, time_budget_s=SUMMARY_BUDGET_S)
    iv = boot.intervals.get(metric)
    if iv is None or iv.low is None or iv.high is None:
        return None
    return (iv.high - iv.low) / 2


def summary_table(run: RunResult, run_dir: str = "", width: int = 100) -> str:
    """Models by tasks, each cell the task's headline metric with ± half its 95% interval; then one line per
    note that matters (verdicts, failed items, subsets, failures), the versions, and where everything is."""
    folder = Path(run_dir) if run_dir else None
    models = list(dict.fromkeys(r.model for r in run.results))
    columns: dict[str, str] = {}
    cells: dict[tuple[str, str], str] = {}
    notes: list[str] = []
    for r in run.results:
        m = headline(r)
        if m is None:  # every metric unavailable: the cell says so (the reason is in `mmbench show`)
            columns.setdefault(r.task, "-")
            cells[(r.model, r.task)] = "n/a"
            continue
        columns.setdefault(r.task, m["name"])
        hw = _half_width(r, m["name"], folder, run.seed) if folder is not None else None
        cells[(r.model, r.task)] = _fmt(m["value"]) + (f" ±{hw:.3f}" if hw is not None else "")
        # the notes that change how to read the number: failed items, a subset, a probe's verdict
        notes += [f"{r.model} / {r.task}: {n}" for n in r.notes
                  if "verdict:" in n or "(--limit)" in n or "item(s) failed" in n]
    for f in run.failures:
        notes.append(f"FAILED {f['model']} / {f['task']}: {f['error']}")
    out = []
    chunks: list[list[str]] = [[]]
    used = max([len("model")] + [len(m) for m in models]) + 4  # the model column and the table's edges
    for t in columns:  # as many task columns per table as fit the width
        col_w = max(len(t), len(columns[t]), 14) + 3
        if chunks[-1] and used + col_w > width:
            chunks.append([])
            used = max([len("model")] + [len(m) for m in models]) + 4
        chunks[-1].append(t)
        used += col_w
    for part in (c for c in chunks if c):
        rows = [[model] + [cells.get((model, t), "—") for t in part] for model in models
                if any((model, t) in cells for t in part)]  # a model with none of these tasks: no row
        out += [tabulate(rows, headers=["model"] + [f"{t}\n{columns[t]}" for t in part], tablefmt="github",
                         disable_numparse=True), ""]
    out.append(f"± half the 95% bootstrap interval over items ({SUMMARY_RESAMPLES} resamples; none where recomputing "
               f"the metric is too slow); every metric, its variant and fingerprints: mmbench show {run_dir or 'RUN'}")
    out += notes
    pk = run.environment.get("packages", {})
    versions = ", ".join(f"{k} {pk[k]}" for k in ("torch", "transformers") if k in pk)
    out.append(f"mmbench {run.mmbench_version} (git {run.git_revision or 'n/a'}), {versions}, seed {run.seed}")
    if run_dir:
        out.append(_results_line(run_dir))
    return "\n".join(out)


def _results_line(run_dir: str) -> str:
    """Where the run's files are (and its log, when the run wrote one)."""
    logged = "; what libraries printed: run.log" if (Path(run_dir) / "run.log").exists() else ""
    return f"results: {run_dir}/results.json (samples, item statistics and artifacts beside it{logged})"
