"""The results file (``results.json``) as a typed schema. docs/results-schema.md documents every field.

A run folder holds ``results.json`` (one RunResult), and per (model, task): ``samples_<task>.jsonl``
(one line per item: inputs, outputs, score), ``item_stats_<task>.npz`` (per-item statistics for bootstrap
and paired tests) and an ``artifacts_<task>/`` folder (e.g. logits or embeddings that ``mmbench score``
reads back).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


from mmbench.errors import MMBenchError

SCHEMA_VERSION = 1


@dataclass
class Throughput:
    items_per_s: float | None  # items / seconds of `basis`
    basis: str  # what the seconds are: "wall time of this invocation (N items computed)" or "model time ..."
    model_seconds: float  # summed per-item model time over all items (cached ones included)
    # seconds from the start of this (model, task) (setup and data included, model loading not) to its first
    # computed batch; None when nothing was computed (all resumed)
    first_batch_s: float | None = None


@dataclass
class PeakMemory:
    bytes: int | None
    kind: str  # "cuda_max_allocated" or "process_rss_peak" (resident set size, sampled every 20 ms)
    # what was measured: {device: peak bytes} ("cuda:0", ...; "cpu" for RSS; "rank<r>/<device>" with several
    # processes); `bytes` is their sum for one process, the largest process's sum for several
    devices: dict = field(default_factory=dict)


@dataclass
class TaskResult:
    model: str
    task: str
    kind: str
    metrics: list[dict]  # MetricValue.to_dict(): name, value, variant, higher_is_better[, unavailable, extra]
    n_items: int  # items evaluated (after --limit)
    n_failed: int  # items that could not be processed (e.g. corrupt image): see samples for the reasons
    n_cached: int  # items whose outputs came from the cache (resumed)
    throughput: Throughput
    wall_time_s: float
    peak_memory: PeakMemory
    model_info: dict  # adapter, weights fingerprint, args, dtype, parameters
    task_info: dict  # task file, config, templates/prompts, data description + fingerprint
    model_fingerprint: str
    task_fingerprint: str
    data_fingerprint: str
    aggregator: str  # METRICS registry name whose aggregate(stats) recomputes `metrics` from item stats
    notes: list[str] = field(default_factory=list)
    counters: dict = field(default_factory=dict)  # adapter events during the task, e.g. texts_truncated
    files: dict = field(default_factory=dict)  # samples / item_stats / artifacts paths, relative to the run
    created_at: str = ""

    def metric(self, name: str) -> dict | None:
        """The metric called ``name`` (its dict: name, value, variant, higher_is_better, ...), or None. The one
        lookup every reader of results uses (ResultRecord.metric delegates here)."""
        return next((m for m in self.metrics if m["name"] == name), None)

    def value(self, name: str) -> float | None:
        """The value of the metric called ``name`` (None when it is unavailable); KeyError when there is none."""
        found = self.metric(name)
        if found is None:
            raise KeyError(name)
        return found["value"]

    @classmethod
    def from_dict(cls, d: dict) -> "TaskResult":
        """From the JSON form (results.json entries, the store's result_json); unknown keys are ignored."""
        d = dict(d)
        d["throughput"] = Throughput(**d["throughput"])
        d["peak_memory"] = PeakMemory(**d["peak_memory"])
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class RunResult:
    run_id: str
    created_at: str
    mmbench_version: str
    git_revision: str | None
    command: list[str]
    seed: int
    options: dict
    environment: dict
    results: list[TaskResult] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)  # (model, task) pairs that stopped with an error
    # running (also what a killed run is left at), complete (every pair attempted; see failures), or
    # interrupted (Ctrl-C, --fail-fast, or an unexpected error ended it early)
    status: str = "running"
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    def write(self, path: Path) -> None:
        """Atomic write (temp file + rename), so a crash never leaves a half-written results.json."""
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=str, allow_nan=True) + "\n")
        tmp.replace(path)

    @classmethod
    def from_dict(cls, d: dict) -> "RunResult":
        if d.get("schema_version") != SCHEMA_VERSION:
            raise MMBenchError(f"results schema version {d.get('schema_version')} is not {SCHEMA_VERSION}; "
                               f"re-run with this mmbench version")
        results = [TaskResult.from_dict(r) for r in d.get("results", [])]
        names = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in d.items() if k in names}, "results": results})

    @classmethod
    def read(cls, path: Path) -> "RunResult":
        path = Path(path)
        if path.is_dir():
            path = path / "results.json"
        from mmbench.files import read_json

        if not path.is_file():
            raise MMBenchError(f"no results file at {path}; pass a run folder written by `mmbench run`")
        data = read_json(path, "results file")
        try:
            return cls.from_dict(data)
        except (TypeError, KeyError, AttributeError, ValueError) as exc:
            raise MMBenchError(f"{path} is not a valid mmbench results file ({type(exc).__name__}: {exc})") from exc
