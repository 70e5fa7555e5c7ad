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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.adapters import Adapter, capabilities_of, check_args, load_model
from mmbench.batching import BatchSizer
from mmbench.cache import Cache
from mmbench.distributed import Dist
from mmbench.errors import CapabilityError, MMBenchError
from mmbench.monitor import MemoryMonitor
from mmbench.provenance import environment, git_revision, mmbench_version
from mmbench.results import RunResult, TaskResult, Throughput
from mmbench.specs import ModelSpec, RunOptions, RunSpec
from mmbench.execution import predict_batch, prepared_batches
from mmbench.store import Store, pack_stats
from mmbench.tasks.base import ScoreReport, Task, TaskContext
from mmbench.tasks.catalog import build_task


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def new_run_id() -> str:
    """Sortable by start time (microseconds), unique across processes (random suffix)."""
    return datetime.now().strftime("%Y%m%d-%H%M%S-%f-") + secrets.token_hex(2)


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
        self._store: Store | None = None  # rank 0's results store while run() runs
        self.fail_fast = options.fail_fast
        self.dist = Dist()

    # -- planning --------------------------------------------------------------------------------------
    def plan(self, spec: RunSpec, strict: bool = True) -> list[Pair]:
        """Build the tasks and load their item lists (so missing data fails before any model runs)."""
        capabilities = [capabilities_of(m) for m in spec.models]  # unknown model names fail first
        for m in spec.models:
            check_args(m)
        ctx = TaskContext(data_dir=self.options.data_dir, seed=self.options.seed, limit=self.options.limit)
        tasks = [build_task(t, ctx) for t in spec.tasks]
        for task in tasks:
            task.check_items(task.items())  # e.g. a string where reference answers belong: now, not after the model
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
    def run(self, spec: RunSpec, strict: bool = True) -> tuple[RunResult | None, Path | None]:
        """Evaluate every pair. Under torchrun every rank runs this; only rank 0 writes results and returns
        them (the other ranks return (None, None))."""
        pairs = self.plan(spec, strict)
        # One (model, task): its error is the run's (exit 2). Several: a failing pair is recorded and the run
        # goes on, unless --fail-fast.
        self.fail_fast = self.options.fail_fast or sum(len(p.tasks) for p in pairs) == 1
        dist = self.dist = Dist.from_launcher()
        run = run_dir = store = None
        if dist.is_main:
            run_id = dist.broadcast(new_run_id())
            run_dir = self.options.output_dir / run_id
            run_dir.mkdir(parents=True, exist_ok=False)
            opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.options).items()}
            run = RunResult(run_id=run_id, created_at=now_iso(), mmbench_version=mmbench_version(),
                            git_revision=git_revision(), command=self.command, seed=self.options.seed,
                            options={**opts, "world_size": dist.world_size}, environment=environment())
            store = self._store = Store(self.options.store_path)
            run.write(run_dir / "results.json")
            store.save_run(run, run_dir, self.options.tags)
        else:
            dist.broadcast(None)
        cache = Cache.open(self.options.cache_path, dist) if self.options.cache else None

        def record(update) -> None:  # rank 0: results.json and the store after every change
            if run is not None:
                update(run)
                run.write(run_dir / "results.json")
                store.save_run(run, run_dir, self.options.tags)

        try:
            for pair in pairs:
                self.run_pair(pair, run_dir, cache, record)
            record(lambda r: setattr(r, "status", "complete"))
        except BaseException:
            record(lambda r: setattr(r, "status", "interrupted"))
            raise
        finally:
            if store is not None:
                store.close()
            if cache is not None:
                cache.close()
            for resource in self.shared.values():
                getattr(resource, "close", lambda: None)()
            self.shared.clear()
            dist.close()
        return run, run_dir

    def run_pair(self, pair: Pair, run_dir: Path | None, cache: Cache | None, record) -> None:
        """One model on its tasks. A model that cannot load, or a task that fails, is recorded with its reason
        and the run goes on (``fail_fast``: the error ends the run)."""
        def failed(task_names: list[str], exc: MMBenchError) -> None:
            record(lambda r: r.failures.extend({"model": pair.model.display_name, "task": t, "error": str(exc)}
                                               for t in task_names))
            if self.fail_fast:
                raise exc

        device = self.dist.device(self.options.device)
        try:
            adapter = load_model(pair.model, {"device": device} if device else {})
        except MMBenchError as exc:
            failed([t.name for t in pair.tasks], exc)
            return
        try:
            for task in pair.tasks:
                try:
                    result, report = self.evaluate(adapter, task, pair.model.display_name, run_dir, cache)
                except MMBenchError as exc:
                    failed([task.name], exc)
                    continue
                if result is not None:
                    def add(r: RunResult, result=result, report=report) -> None:
                        r.results.append(result)
                        self._store.add_result(r.run_id, result, report.item_ids, report.stats)
                    record(add)
        finally:
            adapter.close()

    def batch_sizer(self, adapter: Adapter, task: Task) -> BatchSizer:
        """Model arg > --batch-size > the task file > the adapter's default > the kind's default."""
        default = adapter.default_batch_size or task.default_batch_size
        requested = next((c for c in (adapter.args.batch_size, self.options.batch_size,
                                      task.spec.config.get("batch_size")) if c), None)
        return BatchSizer.create(requested, int(default))

    def evaluate(self, adapter: Adapter, task: Task, model_name: str, run_dir: Path | None,
                 cache: Cache | None) -> tuple[TaskResult | None, ScoreReport | None]:
        """One (model, task). Items are sharded over the ranks; rank 0 gathers, scores and records."""
        dist = self.dist
        seed_everything(self.options.seed)
        task.shared = self.shared
        model_fp, task_fp = adapter.fingerprint(), task.fingerprint()
        counters_before = dict(adapter.counters)
        memo_store: dict[str, Any] = {}

        def memo(key: str, compute):
            if cache is not None:
                return cache.memo(model_fp, task_fp, key, compute)
            if key not in memo_store:
                memo_store[key] = compute()
            return memo_store[key]

        sizer = self.batch_sizer(adapter, task)
        failures: dict[str, str] = {}
        computed: dict[str, tuple[Any, float]] = {}
        start = time.perf_counter()
        with MemoryMonitor.for_model(adapter) as mem:
            task.setup(adapter, memo)  # before items(): a probe learns here which inputs the model accepts
            items = task.items()
            by_id = {it["id"]: it for it in items}
            # Rank 0 reads the cache and decides what is left to do; every rank takes every world_size-th
            # item of that list, so the split depends on the items, never on a previous run's process count.
            outputs: dict[str, tuple[Any, float]] = {}
            if dist.is_main and cache is not None:
                outputs = cache.get_many(model_fp, task_fp, list(by_id))
            todo_ids = dist.broadcast([it["id"] for it in task.batch_order([it for it in items
                                                                            if it["id"] not in outputs])]
                                      if dist.is_main else None)
            mine = [by_id[i] for i in todo_ids[dist.rank::dist.world_size]]
            n_cached = len(outputs)
            progress = _progress(len(items), f"{model_name} | {task.name}", self.options.show_progress and dist.is_main)
            progress.update(n_cached)
            compute_start = time.perf_counter()
            for batch in prepared_batches(task, adapter, mine, sizer, self.options.prefetch):
                done, failed = predict_batch(task, adapter, batch, sizer, model_name) if batch.items \
                    else ([], dict(batch.failed))
                failures.update(failed)
                if cache is not None and done:
                    cache.put_many(model_fp, task_fp, [(it["id"], out, sec) for it, out, sec in done])
                computed.update({it["id"]: (out, sec) for it, out, sec in done})
                progress.update((len(done) + len(failed)) * dist.world_size)
            gathered = dist.gather((computed, failures))
            compute_wall = time.perf_counter() - compute_start
            progress.close()
            report = None
            if dist.is_main:
                for rank, (rank_computed, rank_failures) in enumerate(gathered):
                    if rank and cache is not None and rank_computed:  # complete rank 0's cache across nodes
                        cache.put_many(model_fp, task_fp, [(i, o, s) for i, (o, s) in rank_computed.items()])
                    outputs.update(rank_computed)
                    failures.update(rank_failures)
                ordered = [outputs[it["id"]][0] if it["id"] in outputs else None for it in items]
                report = task.score(items, ordered)
        peak_memory = mem.result(dist)  # every rank's, on rank 0
        if not dist.is_main:
            return None, None
        wall = time.perf_counter() - start
        model_seconds = float(sum(s for _, s in outputs.values()))
        n_computed = len(todo_ids) - len(failures)
        procs = f", {dist.world_size} processes" if dist.enabled else ""
        if n_computed > 0:
            throughput = Throughput(n_computed / compute_wall if compute_wall > 0 else None,
                                    f"wall time of this invocation over {n_computed} computed items (decode + "
                                    f"preprocess overlapped, batch size {sizer.describe()}{procs})", model_seconds)
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
        if sizer.ooms:
            notes.append(f"batch size {sizer.describe()}")
        notes.extend(f"{key}: {value}" for key, value in counters.items() if value)
        files = self.write_files(run_dir, model_name, task, items, failures, report)
        result = TaskResult(
            model=model_name, task=task.name, kind=task.kind, metrics=[m.to_dict() for m in report.metrics],
            n_items=len(items), n_failed=len(failures), n_cached=n_cached, throughput=throughput,
            wall_time_s=wall, peak_memory=peak_memory, model_info=adapter.describe(), task_info=task.describe(),
            model_fingerprint=model_fp, task_fingerprint=task_fp, data_fingerprint=task.data.fingerprint,
            aggregator=report.aggregator, notes=notes, counters=counters, files=files, created_at=now_iso())
        return result, report

    def write_files(self, run_dir: Path, model_name: str, task: Task, items: list[dict],
                    failures: dict[str, str], report: ScoreReport) -> dict:
        """samples_<task>.jsonl, item_stats_<task>.npz and artifacts_<task>/ under <run>/<model>/."""
        out_dir = run_dir / slug(model_name)
        out_dir.mkdir(parents=True, exist_ok=True)
        samples_path = out_dir / f"samples_{slug(task.name)}.jsonl"
        with open(samples_path, "w", encoding="utf-8") as fh:
            for item in items:
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
                if isinstance(value, (bytes, bytearray)):  # e.g. generated images as PNG
                    path.write_bytes(value)
                elif name.endswith(".npy"):
                    np.save(path, np.asarray(value))
                elif name.endswith(".jsonl"):
                    path.write_text("".join(json.dumps(v, ensure_ascii=False) + "\n" for v in value))
                else:
                    path.write_text(json.dumps(value, ensure_ascii=False))
            files["artifacts"] = str(art_dir.relative_to(run_dir))
        return files
