"""The results table printed after a run: every number with a footnote saying what produced it."""

from __future__ import annotations

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
        out.append(f"results: {run_dir}/results.json (samples, item statistics and artifacts beside it)")
    return "\n".join(out)
