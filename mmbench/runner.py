"""The runner: every model on every task that fits it, batched, cached per item, measured, and recorded.

Per (model, task): items in a fixed order -> skip the ones already in the cache -> batches prepared one
ahead in a background thread while the model runs -> outputs committed to the cache after every batch ->
score once over all items -> results.json, samples, item statistics and the store row written at once,
so an error in a later task loses nothing already computed.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mmbench.adapters import Adapter, capabilities_of, load_model
from mmbench.cache import Cache
from mmbench.errors import CapabilityError, MMBenchError
from mmbench.monitor import MemoryMonitor
from mmbench.provenance import environment, git_revision, mmbench_version
from mmbench.results import RunResult, TaskResult, Throughput
from mmbench.specs import ModelSpec, RunOptions, RunSpec, TaskSpec
from mmbench.store import Store, pack_stats
from mmbench.tasks.base import Batch, ScoreReport, Task, TaskContext
from mmbench.tasks.catalog import build_task


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="item", disable=not enabled, leave=False, dynamic_ncols=True)


@dataclass
class Pair:
    model: ModelSpec
    tasks: list[Task]


class Runner:
    """Runs a RunSpec. ``strict`` pairing refuses a task the model cannot do; a suite skips such pairs."""

    def __init__(self, options: RunOptions, command: list[str] | None = None) -> None:
        self.options = options
        self.command = list(command or [])
        # Run-wide resources tasks share (e.g. the Java caption scorer, started once per run); closed at the end.
        self.shared: dict[str, Any] = {}

    # -- planning --------------------------------------------------------------------------------------
    def plan(self, spec: RunSpec, strict: bool = True) -> list[Pair]:
        """Build the tasks and load their item lists (so missing data fails before any model runs)."""
        capabilities = [capabilities_of(m) for m in spec.models]  # unknown model names fail first
        ctx = TaskContext(data_dir=self.options.data_dir, seed=self.options.seed, limit=self.options.limit)
        tasks = [build_task(t, ctx) for t in spec.tasks]
        for task in tasks:
            ids = [it["id"] for it in task.items()]
            if len(set(ids)) != len(ids):
                dup = next(i for i in ids if ids.count(i) > 1)
                raise MMBenchError(f"task {task.name!r}: duplicate item id {dup!r} in its data; ids must be unique")
        pairs = []
        for model, caps in zip(spec.models, capabilities):
            fitting = [t for t in tasks if t.requires in caps]
            if strict:
                for t in tasks:
                    if t.requires not in caps:
                        offered = ", ".join(sorted(c.value for c in caps)) or "nothing"
                        raise CapabilityError(f"model {model.name!r} cannot run task {t.name!r}: the task needs "
                                              f"{t.requires.value!r}, the model offers {offered}")
            if fitting:
                pairs.append(Pair(model, fitting))
        if not pairs:
            raise MMBenchError("no (model, task) pair fits: check the models' capabilities (`mmbench list models`)")
        return pairs

    # -- running ---------------------------------------------------------------------------------------
    def run(self, spec: RunSpec, strict: bool = True) -> tuple[RunResult, Path]:
        pairs = self.plan(spec, strict)
        run_id = new_run_id()
        run_dir = self.options.output_dir / run_id
        run_dir.mkdir(parents=True, exist_ok=False)
        opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.options).items()}
        run = RunResult(run_id=run_id, created_at=now_iso(), mmbench_version=mmbench_version(),
                        git_revision=git_revision(), command=self.command, seed=self.options.seed,
                        options=opts, environment=environment())
        store = Store(self.options.store_path)
        cache = Cache(self.options.cache_path) if self.options.cache else None
        run.write(run_dir / "results.json")
        store.save_run(run, run_dir, self.options.tags)
        try:
            for pair in pairs:
                overrides = {"device": self.options.device} if self.options.device else {}
                adapter = load_model(pair.model, overrides)
                try:
                    for task in pair.tasks:
                        try:
                            result, report = self.evaluate(adapter, task, pair.model.display_name, run_dir, cache)
                        except MMBenchError as exc:
                            run.failures.append({"model": pair.model.display_name, "task": task.name, "error": str(exc)})
                            raise
                        finally:
                            run.write(run_dir / "results.json")
                            store.save_run(run, run_dir, self.options.tags)
                        run.results.append(result)
                        store.add_result(run_id, result, report.item_ids, report.stats)
                        run.write(run_dir / "results.json")
                        store.save_run(run, run_dir, self.options.tags)
                finally:
                    adapter.close()
        finally:
            store.close()
            if cache is not None:
                cache.close()
            for resource in self.shared.values():
                getattr(resource, "close", lambda: None)()
            self.shared.clear()
        return run, run_dir

    def batch_size(self, adapter: Adapter, task: Task) -> int:
        for candidate in (adapter.args.batch_size, self.options.batch_size, task.spec.config.get("batch_size"),
                          adapter.default_batch_size, task.default_batch_size):
            if candidate:
                if int(candidate) < 1:
                    raise MMBenchError(f"batch size must be >= 1, got {candidate}")
                return int(candidate)
        return 1

    def _batches(self, adapter: Adapter, task: Task, items: list[dict], size: int) -> Iterator[Batch]:
        """Prepare batches ``prefetch`` ahead in a background thread, yielding them in order."""
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        if self.options.prefetch <= 0:
            for chunk in chunks:
                yield task.prepare(adapter, chunk)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmbench-prefetch") as pool:
            it = iter(chunks)
            pending: deque[Future] = deque(pool.submit(task.prepare, adapter, c)
                                           for c in islice(it, self.options.prefetch + 1))
            while pending:
                batch = pending.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(pool.submit(task.prepare, adapter, nxt))
                yield batch

    def evaluate(self, adapter: Adapter, task: Task, model_name: str, run_dir: Path,
                 cache: Cache | None) -> tuple[TaskResult, ScoreReport]:
        seed_everything(self.options.seed)
        task.shared = self.shared
        items = task.items()
        model_fp, task_fp = adapter.fingerprint(), task.fingerprint()
        counters_before = dict(adapter.counters)
        outputs: dict[str, tuple[Any, float]] = cache.get_many(model_fp, task_fp, [it["id"] for it in items]) \
            if cache else {}
        n_cached = len(outputs)
        todo = task.batch_order([it for it in items if it["id"] not in outputs])
        failures: dict[str, str] = {}
        memo_store: dict[str, Any] = {}

        def memo(key: str, compute):
            if cache is not None:
                return cache.memo(model_fp, task_fp, key, compute)
            if key not in memo_store:
                memo_store[key] = compute()
            return memo_store[key]

        size = self.batch_size(adapter, task)
        start = time.perf_counter()
        with MemoryMonitor(adapter.device) as mem:
            task.setup(adapter, memo)
            progress = _progress(len(items), f"{model_name} | {task.name}", self.options.show_progress)
            progress.update(n_cached)
            compute_start = time.perf_counter()
            for batch in self._batches(adapter, task, todo, size):
                failures.update(batch.failed)
                if batch.items:
                    t0 = time.perf_counter()
                    outs = task.predict(adapter, batch)
                    dt = time.perf_counter() - t0
                    if not isinstance(outs, list) or len(outs) != len(batch.items):
                        got = len(outs) if isinstance(outs, list) else type(outs).__name__
                        raise MMBenchError(f"model {model_name!r} returned {got} outputs for a batch of "
                                           f"{len(batch.items)} items on task {task.name!r}; the adapter must "
                                           f"return one output per input")
                    per_item = dt / len(batch.items)
                    entries = [(it["id"], out, per_item) for it, out in zip(batch.items, outs)]
                    if cache is not None:
                        cache.put_many(model_fp, task_fp, entries)
                    outputs.update({i: (o, s) for i, o, s in entries})
                progress.update(len(batch.items) + len(batch.failed))
            compute_wall = time.perf_counter() - compute_start
            progress.close()
            ordered = [outputs[it["id"]][0] if it["id"] in outputs else None for it in items]
            report = task.score(items, ordered)
        wall = time.perf_counter() - start
        model_seconds = float(sum(s for _, s in outputs.values()))
        n_computed = len(todo) - len(failures)
        if n_computed > 0:
            throughput = Throughput(n_computed / compute_wall if compute_wall > 0 else None,
                                    f"wall time of this invocation over {n_computed} computed items "
                                    f"(decode + preprocess overlapped, batch size {size})", model_seconds)
        else:
            throughput = Throughput(len(outputs) / model_seconds if model_seconds > 0 else None,
                                    "model time recorded in the cache (all items resumed)", model_seconds)
        counters = {k: v - counters_before.get(k, 0) for k, v in adapter.counters.items()}
        notes = list(report.notes)
        if failures:
            first = next(iter(failures.items()))
            notes.append(f"{len(failures)} item(s) failed; first: {first[0]}: {first[1]}")
        if task.is_subset:
            notes.append(f"evaluated the first {len(items)} of {len(task.data.records)} items (--limit): "
                         f"not comparable to a full-set score")
        for key, value in counters.items():
            if value:
                notes.append(f"{key}: {value}")
        files = self.write_files(run_dir, model_name, task, items, ordered, failures, report)
        result = TaskResult(
            model=model_name, task=task.name, kind=task.kind, metrics=[m.to_dict() for m in report.metrics],
            n_items=len(items), n_failed=len(failures), n_cached=n_cached, throughput=throughput,
            wall_time_s=wall, peak_memory=mem.result(), model_info=adapter.describe(), task_info=task.describe(),
            model_fingerprint=model_fp, task_fingerprint=task_fp, data_fingerprint=task.data.fingerprint,
            aggregator=report.aggregator, notes=notes, counters=counters, files=files, created_at=now_iso())
        return result, report

    def write_files(self, run_dir: Path, model_name: str, task: Task, items: list[dict],
                    outputs: list[Any], failures: dict[str, str], report: ScoreReport) -> dict:
        """samples_<task>.jsonl, item_stats_<task>.npz and artifacts_<task>/ under <run>/<model>/."""
        out_dir = run_dir / slug(model_name)
        out_dir.mkdir(parents=True, exist_ok=True)
        samples_path = out_dir / f"samples_{slug(task.name)}.jsonl"
        with open(samples_path, "w", encoding="utf-8") as fh:
            for item, output in zip(items, outputs):
                line = {"id": item["id"], **report.samples.get(item["id"], {})}
                if item["id"] in failures:
                    line["error"] = failures[item["id"]]
                fh.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
        stats_path = out_dir / f"item_stats_{slug(task.name)}.npz"
        stats_path.write_bytes(pack_stats(report.item_ids, report.stats))
        files = {"samples": str(samples_path.relative_to(run_dir)), "item_stats": str(stats_path.relative_to(run_dir))}
        if report.artifacts:
            art_dir = out_dir / f"artifacts_{slug(task.name)}"
            art_dir.mkdir(exist_ok=True)
            for name, value in report.artifacts.items():
                path = art_dir / name
                if name.endswith(".npy"):
                    np.save(path, np.asarray(value))
                else:
                    path.write_text(json.dumps(value, ensure_ascii=False))
            files["artifacts"] = str(art_dir.relative_to(run_dir))
        return files
