"""The runner: every model on every task that fits it, batched, cached per item, measured, and recorded.

Per (model, task): items in a fixed order -> skip the ones already in the cache -> batches prepared one
ahead in a background thread while the model runs -> outputs committed to the cache after every batch ->
score once over all items -> results.json, samples, item statistics and the store row written at once,
so an error in a later task loses nothing already computed.
"""

from __future__ import annotations

import json
import logging
import random
import sys
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
from mmbench.errors import CapabilityError, MissingDataError, MMBenchError
from mmbench.monitor import MemoryMonitor
from mmbench.provenance import environment, git_revision, mmbench_version
from mmbench.results import RunResult, TaskResult, Throughput
from mmbench.specs import ModelSpec, RunOptions, RunSpec
from mmbench.execution import ThreadPlan, plan_threads, predict_batch, prepared_batches, usable_cores
from mmbench.logs import RunLog
from mmbench.store import Store, pack_stats
from mmbench.tasks.base import RunContext, ScoreReport, Task, TaskContext
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


log = logging.getLogger(__name__)


def _progress(total: int, desc: str, enabled: bool, console: Any):
    """One bar per (model, task), on the console (the run log gets the summary line instead)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="item", disable=not enabled, leave=False, dynamic_ncols=True,
                file=console)


class CacheKeys:
    """The (model, task) fingerprints that key the per-item cache, computed when first needed: after the
    task's setup, since a task's fingerprint may depend on the models it was given (e.g. a feature
    extractor's weights)."""

    def __init__(self, adapter: Adapter, task: Task) -> None:
        self._adapter, self._task = adapter, task
        self._model: str | None = None
        self._task_fp: str | None = None

    @property
    def model(self) -> str:
        if self._model is None:
            self._model = self._adapter.fingerprint()
        return self._model

    @property
    def task(self) -> str:
        if self._task_fp is None:
            self._task_fp = self._task.fingerprint()
        return self._task_fp


def count_events(outputs) -> dict[str, int]:
    """Per-item events the outputs declare (``"events": [...]``: a truncated caption, an empty generation, a
    retried request), summed over the task's items (resumed ones included)."""
    counts: dict[str, int] = {}
    for out in outputs:
        for event in (out.get("events") or ()) if isinstance(out, dict) else ():
            counts[event] = counts.get(event, 0) + 1
    return dict(sorted(counts.items()))


@dataclass
class Pair:
    model: ModelSpec
    tasks: list[Task]


class Runner:
    """Runs a RunSpec. ``strict`` pairing refuses a task the model cannot do; a suite skips such pairs."""

    def __init__(self, options: RunOptions, command: list[str] | None = None, run_log: RunLog | None = None) -> None:
        self.options = options
        self.run_log = run_log  # where third-party output goes, moved into the run folder once it exists
        self.command = list(command or [])
        # Run-wide resources tasks share (e.g. the Java caption scorer, started once per run); closed at the end.
        self.shared: dict[str, Any] = {}
        self._store: Store | None = None  # rank 0's results store while run() runs
        self.fail_fast = options.fail_fast
        self.dist = Dist()

    # -- planning --------------------------------------------------------------------------------------
    def plan(self, spec: RunSpec, strict: bool = True) -> list[Pair]:
        """Build the tasks and load their item lists (so missing data fails before any model runs)."""
        if not spec.models:
            raise MMBenchError("no model to run: give --model NAME (the suite names no models)")
        capabilities = [capabilities_of(m) for m in spec.models]  # unknown model names fail first
        for m in spec.models:
            check_args(m)
        ctx = TaskContext(data_dir=self.options.data_dir, seed=self.options.seed, limit=self.options.limit)
        tasks = [build_task(t, ctx) for t in spec.tasks]
        missing = []
        for task in tasks:  # every task whose data is missing is named, not just the first
            try:
                task.items()
            except MissingDataError as exc:
                missing.append(str(exc))
        if missing:
            raise MissingDataError(missing[0] if len(missing) == 1 else
                                   f"{len(missing)} tasks lack their data: " + " | ".join(missing))
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
            run_id = new_run_id()
            run_dir = self.options.output_dir / run_id
            run_dir.mkdir(parents=True, exist_ok=False)  # before the id goes out: the other ranks log into it
            dist.broadcast(run_id)
            if self.run_log is not None:
                self.run_log.attach(run_dir / "run.log")
            opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.options).items()}
            run = RunResult(run_id=run_id, created_at=now_iso(), mmbench_version=mmbench_version(),
                            git_revision=git_revision(), command=self.command, seed=self.options.seed,
                            options={**opts, "world_size": dist.world_size}, environment=environment())
            store = self._store = Store(self.options.store_path)
            run.write(run_dir / "results.json")
            store.save_run(run, run_dir, self.options.tags)
        else:
            run_id = dist.broadcast(None)
            if self.run_log is not None:  # a node without the shared folder gets its own copy of it
                self.run_log.attach(self.options.output_dir / run_id / f"run.rank{dist.rank}.log")
        log.info("run %s: %d model(s), %d (model, task) pair(s)", run_dir or run_id, len(pairs),
                 sum(len(p.tasks) for p in pairs))
        cache = Cache.open(self.options.cache_path, dist) if self.options.cache else None

        def record(update) -> None:  # rank 0: results.json and the store after every change
            if run is not None:
                update(run)
                run.write(run_dir / "results.json")
                store.save_run(run, run_dir, self.options.tags)

        completed = False
        try:
            for pair in pairs:
                self.run_pair(pair, run_dir, cache, record)
            record(lambda r: setattr(r, "status", "complete"))
            completed = True
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
            dist.close(wait_for_peers=completed)  # a rank that failed must not wait for the others
        return run, run_dir

    def run_pair(self, pair: Pair, run_dir: Path | None, cache: Cache | None, record) -> None:
        """One model on its tasks. A model that cannot load, or a task that fails, is recorded with its reason
        and the run goes on (``fail_fast``: the error ends the run)."""
        def failed(task_names: list[str], exc: MMBenchError) -> None:
            record(lambda r: r.failures.extend({"model": pair.model.display_name, "task": t, "error": str(exc)}
                                               for t in task_names))
            if self.fail_fast:
                raise exc
            log.warning("%s / %s failed (the run goes on): %s", pair.model.display_name, ", ".join(task_names), exc)

        device = self.dist.device(self.options.device)
        started = time.perf_counter()
        try:
            adapter = load_model(pair.model, {"device": device} if device else {})
        except MMBenchError as exc:
            failed([t.name for t in pair.tasks], exc)
            return
        log.info("%s: loaded in %.1f s (%s)", pair.model.display_name, time.perf_counter() - started,
                 getattr(adapter, "device", "cpu"))
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
        keys = CacheKeys(adapter, task)
        run = RunContext(memo=self.memo(cache, keys), resources=self.shared, models=self.task_models(task),
                         outputs_of=self.outputs_of(cache, keys))
        sizer = self.batch_sizer(adapter, task)
        start = time.perf_counter()
        with MemoryMonitor.for_model(adapter) as mem:
            task.setup(adapter, run)  # before items(): a probe learns here which inputs the model accepts
            items = task.items()
            outputs, todo_ids = self.plan_items(task, items, cache, keys)
            console = self.run_log.console if self.run_log is not None else sys.stderr
            progress = _progress(len(items), f"{model_name} | {task.name}", self.options.show_progress and dist.is_main,
                                 console)
            progress.update(len(outputs))
            by_id = {it["id"]: it for it in items}
            mine = [by_id[i] for i in todo_ids[dist.rank::dist.world_size]]
            compute_start = time.perf_counter()
            plan = self.thread_plan(adapter, task)
            computed, failures, first_batch_at = self.compute(task, adapter, mine, sizer, cache, keys, progress,
                                                              model_name, plan)
            gathered = dist.gather((computed, failures))
            compute_wall = time.perf_counter() - compute_start
            progress.close()
            n_cached, report = len(outputs), None
            if dist.is_main:
                self.merge(gathered, outputs, failures, cache, keys)
                report = task.score(items, [outputs[it["id"]][0] if it["id"] in outputs else None for it in items])
        peak_memory = mem.result(dist)  # every rank's, on rank 0
        if not dist.is_main:
            return None, None
        throughput = self.throughput(outputs, len(todo_ids) - len(failures), compute_wall, sizer, plan)
        if first_batch_at is not None:
            throughput.first_batch_s = round(first_batch_at - start, 4)
        notes = self.notes(task, items, report, failures, sizer)
        counters = count_events(o for o, _ in outputs.values())
        notes.extend(f"{key}: {value}" for key, value in counters.items())
        files = self.write_files(run_dir, model_name, task, items, failures, report)
        result = TaskResult(
            model=model_name, task=task.name, kind=task.kind, metrics=[m.to_dict() for m in report.metrics],
            n_items=len(items), n_failed=len(failures), n_cached=n_cached, throughput=throughput,
            wall_time_s=time.perf_counter() - start, peak_memory=peak_memory, model_info=adapter.describe(),
            task_info=task.describe(), model_fingerprint=keys.model, task_fingerprint=keys.task,
            data_fingerprint=task.data.fingerprint, aggregator=report.aggregator, notes=notes, counters=counters,
            files=files, created_at=now_iso())
        log.info("%s | %s: %s in %.1f s (%d items, %d cached, %d failed; %.1f items/s)", model_name, task.name,
                 _headline_text(result), result.wall_time_s, len(items), n_cached, len(failures),
                 throughput.items_per_s or 0.0)
        return result, report

    # -- the steps of evaluate ---------------------------------------------------------------------------
    def memo(self, cache: Cache | None, keys: "CacheKeys"):
        """``memo(key, compute)`` for a task's setup: kept in the cache under the (model, task) (so a resumed
        run reuses it), or for this invocation only without a cache."""
        store: dict[str, Any] = {}

        def memo(key: str, compute):
            if cache is not None:
                return cache.memo(keys.model, keys.task, key, compute)
            if key not in store:
                store[key] = compute()
            return store[key]
        return memo

    @staticmethod
    def outputs_of(cache: Cache | None, keys: "CacheKeys"):
        """``outputs_of(task_fp, ids)``: the outputs this process's cache holds for the same model under another
        task's fingerprint (nothing without a cache)."""
        def outputs_of(task_fp: str, ids: list[str]) -> dict[str, Any]:
            if cache is None:
                return {}
            return {i: out for i, (out, _) in cache.get_many(keys.model, task_fp, ids).items()}
        return outputs_of

    def task_models(self, task: Task) -> dict[str, Any]:
        """The extra models a task needs (``Task.needs``: feature extractors, CLIP-score models), loaded once per
        run through the model registry on this process's device, shared by every task that needs the same,
        and closed with the run's resources."""
        from mmbench.adapters.extractors import load_need

        loaded = {}
        for role, need in task.needs().items():
            key = f"model:{need}"
            if key not in self.shared:
                self.shared[key] = load_need(need, device=self.dist.device(self.options.device))
            loaded[role] = self.shared[key]
        return loaded

    def plan_items(self, task: Task, items: list[dict], cache: Cache | None,
                   keys: "CacheKeys") -> tuple[dict[str, tuple[Any, float]], list[str]]:
        """(outputs already cached, on rank 0; the ids left to compute, in the task's batch order). Rank 0
        decides and broadcasts; every rank then takes every world_size-th id, so the split depends on the
        items, never on a previous run's process count."""
        dist = self.dist
        outputs: dict[str, tuple[Any, float]] = {}
        if dist.is_main and cache is not None:
            outputs = cache.get_many(keys.model, keys.task, [it["id"] for it in items])
        todo = [it["id"] for it in task.batch_order([it for it in items if it["id"] not in outputs])] \
            if dist.is_main else None
        return outputs, dist.broadcast(todo)

    def thread_plan(self, adapter: Adapter, task: Task) -> ThreadPlan:
        """Preparation threads and torch threads for this adapter's loop (--num-workers, --threads)."""
        import torch

        device = str(getattr(adapter, "device", "cpu"))
        # processes launched on one node share its cores
        cores = max(1, usable_cores() // self.dist.local_world_size)
        return plan_threads(self.options.num_workers, self.options.threads, not device.startswith("cpu"),
                            task.input_bound, torch.get_num_threads(), cores)

    def compute(self, task: Task, adapter: Adapter, items: list[dict], sizer: BatchSizer, cache: Cache | None,
                keys: "CacheKeys", progress: Any, model_name: str, plan: ThreadPlan
                ) -> tuple[dict[str, tuple[Any, float]], dict[str, str], float | None]:
        """This rank's items, batched, prepared ahead by ``plan.workers`` threads while torch computes with
        ``plan.torch_threads``; outputs committed per batch. Also when the first batch was done."""
        import torch

        computed: dict[str, tuple[Any, float]] = {}
        failures: dict[str, str] = {}
        first_batch_at: float | None = None
        before = torch.get_num_threads()
        if plan.torch_threads != before:  # left alone when it already is what the plan says
            torch.set_num_threads(plan.torch_threads)
        try:
            pin = str(getattr(adapter, "device", "cpu")).startswith("cuda")  # overlap the copy with the forward
            for batch in prepared_batches(task, adapter, items, sizer, self.options.prefetch, plan.workers, pin):
                done, failed = predict_batch(task, adapter, batch, sizer, model_name) if batch.items \
                    else ([], dict(batch.failed))
                failures.update(failed)
                if cache is not None and done:
                    cache.put_many(keys.model, keys.task, [(it["id"], out, sec) for it, out, sec in done])
                computed.update({it["id"]: (out, sec) for it, out, sec in done})
                progress.update((len(done) + len(failed)) * self.dist.world_size)
                if first_batch_at is None and done:
                    first_batch_at = time.perf_counter()
        finally:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)
        return computed, failures, first_batch_at

    def merge(self, gathered: list, outputs: dict, failures: dict, cache: Cache | None, keys: "CacheKeys") -> None:
        """Rank 0: every rank's outputs and failures into ``outputs``/``failures``; the other ranks' outputs
        also into rank 0's cache (complete across nodes)."""
        for rank, (rank_computed, rank_failures) in enumerate(gathered):
            if rank and cache is not None and rank_computed:
                cache.put_many(keys.model, keys.task, [(i, o, s) for i, (o, s) in rank_computed.items()])
            outputs.update(rank_computed)
            failures.update(rank_failures)

    def throughput(self, outputs: dict, n_computed: int, compute_wall: float, sizer: BatchSizer,
                   plan: ThreadPlan) -> Throughput:
        model_seconds = float(sum(s for _, s in outputs.values()))
        procs = f", {self.dist.world_size} processes" if self.dist.enabled else ""
        if n_computed > 0:
            return Throughput(n_computed / compute_wall if compute_wall > 0 else None,
                              f"wall time of this invocation over {n_computed} computed items (decode + "
                              f"preprocess overlapped, batch size {sizer.describe()}{procs}, {plan.describe()})",
                              model_seconds)
        return Throughput(len(outputs) / model_seconds if model_seconds > 0 else None,
                          "model time recorded in the cache (all items resumed)", model_seconds)

    @staticmethod
    def notes(task: Task, items: list[dict], report: ScoreReport, failures: dict[str, str],
              sizer: BatchSizer) -> list[str]:
        notes = list(report.notes)
        if failures:
            first = next(iter(failures.items()))
            notes.append(f"{len(failures)} item(s) failed; first: {first[0]}: {first[1]}")
        if task.is_subset:
            notes.append(f"evaluated the first {len(items)} of {len(task.data.records)} items (--limit): "
                         f"not comparable to a full-set score")
        if sizer.ooms:
            notes.append(f"batch size {sizer.describe()}")
        return notes

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


def _headline_text(result: TaskResult) -> str:
    """The result's headline metric as the summary shows it ("vqa_accuracy=0.6064"), for the info line."""
    from mmbench.report.console import headline

    m = headline(result)
    return f"{m['name']}={m['value']:.4g}" if m is not None else "no score"
