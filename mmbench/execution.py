"""The batch loop of one (model, task): batches prepared ahead by a pool of worker threads and delivered in
order, the model called on each, and out-of-memory handled by halving the batch and retrying the same items
(none lost, none computed twice)."""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterator

from mmbench.batching import BatchSizer, free_accelerator_memory, is_out_of_memory
from mmbench.errors import MMBenchError
from mmbench.tasks.base import Batch, Task

# (item, output, model seconds attributed to the item)
Computed = tuple[dict, Any, float]


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's or Slurm's share)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ThreadPlan:
    """Preparation workers and torch's intra-op threads for one (model, task) loop."""

    workers: int
    torch_threads: int
    cores: int

    def describe(self) -> str:
        return (f"{self.workers} preparation thread(s), {self.torch_threads} torch thread(s) on {self.cores} "
                f"usable core(s)")


def plan_threads(workers: int | None, torch_threads: int | None, on_accelerator: bool, input_bound: bool,
                 current_torch_threads: int, cores: int | None = None) -> ThreadPlan:
    """How many threads prepare batches and how many torch computes with, given what the user fixed.

    On an accelerator the model's work is on the device: every core but the one driving it prepares batches.
    On the CPU it depends on where the time goes (measured on 2 cores, benchmarks/bench_input_pipeline.py and
    the mini suite): an input-bound kind (embedding images: decoding and resizing cost as much as the model)
    gets every core for preparation and a quarter of them (at least one) for torch, one thread more than the
    cores because the loop thread waits while workers decode (2 workers + 1 torch thread: 1.15x faster than
    1 + 1, 1.35x faster than 1 + 2); a model-bound kind (generation) keeps torch's threads on every core with
    one preparation thread, which is idle most of the time (2 torch threads: 1.5x faster than 1)."""
    cores = cores or usable_cores()
    if on_accelerator:
        return ThreadPlan(workers or max(1, min(cores - 1, 32)), torch_threads or current_torch_threads, cores)
    if input_bound:
        torch_threads = torch_threads or max(1, cores // 4)
        workers = workers or max(1, cores - torch_threads + 1)
    else:
        torch_threads = torch_threads or cores
        workers = workers or 1
    return ThreadPlan(workers, torch_threads, cores)


def pin_tensors(obj: Any, pin: Any = None) -> Any:
    """Every CPU tensor inside a prepared payload (dicts and processor outputs, lists, tuples, dataclasses)
    replaced by a page-locked copy, so that the adapter's ``.to(cuda, non_blocking=True)`` copies it while the
    GPU still runs the previous batch. ``pin``: the tensor -> pinned tensor function (``Tensor.pin_memory``)."""
    import dataclasses

    import torch

    pin = pin or (lambda t: t.pin_memory())
    if isinstance(obj, torch.Tensor):
        return pin(obj) if obj.device.type == "cpu" else obj
    if isinstance(obj, list):
        obj[:] = [pin_tensors(v, pin) for v in obj]
        return obj
    if isinstance(obj, tuple):
        return type(obj)(*(pin_tensors(v, pin) for v in obj)) if hasattr(obj, "_fields") else tuple(
            pin_tensors(v, pin) for v in obj)
    if hasattr(obj, "keys") and hasattr(obj, "__setitem__"):  # dict, BatchFeature, BatchEncoding
        for key in list(obj.keys()):
            obj[key] = pin_tensors(obj[key], pin)
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type) and not obj.__dataclass_params__.frozen:
        for f in dataclasses.fields(obj):
            setattr(obj, f.name, pin_tensors(getattr(obj, f.name), pin))
    return obj


def prepared_batches(task: Task, model: Any, items: list[dict], sizer: BatchSizer, prefetch: int,
                     workers: int = 1, pin: bool = False) -> Iterator[Batch]:
    """Batches of ``sizer.size`` items (read when each batch is scheduled, so a shrink applies to the batches
    not yet scheduled), prepared by ``workers`` threads with ``prefetch`` batches more queued, in order.

    Threads, not processes: decoding (PIL), resizing (PIL) and normalising (numpy) release the GIL, so
    preparation scales with threads (benchmarks/bench_input_pipeline.py measures it), and a worker shares the
    adapter's processor instead of a copy of the model. ``prepare`` is pure per batch (no task or adapter state
    changes; the Rust tokenizers are guarded by each adapter's lock), so any worker count gives the same
    batches. ``pin``: the workers also page-lock the payload's tensors (a CUDA model: see pin_tensors)."""
    pos = 0

    def next_chunk() -> list[dict] | None:
        nonlocal pos
        if pos >= len(items):
            return None
        chunk = items[pos:pos + sizer.size]
        pos += len(chunk)
        return chunk

    def prepare(chunk: list[dict]) -> Batch:
        batch = task.prepare(model, chunk)
        if pin and batch.payload is not None:
            batch.payload = pin_tensors(batch.payload)
        return batch

    if prefetch <= 0 and workers <= 1:
        while (chunk := next_chunk()) is not None:
            yield prepare(chunk)
        return
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="mmbench-prepare") as pool:
        pending: deque[Future] = deque()

        def schedule() -> None:
            chunk = next_chunk()
            if chunk is not None:
                pending.append(pool.submit(prepare, chunk))

        for _ in range(max(1, workers) + max(0, prefetch)):
            schedule()
        try:
            while pending:
                batch = pending.popleft().result()
                schedule()
                yield batch
        finally:  # stopped early (an error, or the consumer gone): queued batches are not prepared
            for future in pending:
                future.cancel()


def predict_batch(task: Task, model: Any, batch: Batch, sizer: BatchSizer,
                  model_name: str) -> tuple[list[Computed], dict[str, str]]:
    """Run the model on a prepared batch; on out-of-memory, halve and retry the same items in pieces.
    Returns the computed items and the ones that failed to prepare."""
    try:
        start = time.perf_counter()
        outputs = task.predict(model, batch)
        seconds = time.perf_counter() - start
    except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled; everything else re-raises
        if not is_out_of_memory(exc):
            raise
        del exc
        free_accelerator_memory()
        size = sizer.shrink(len(batch.items))
        done: list[Computed] = []
        failed = dict(batch.failed)
        for i in range(0, len(batch.items), size):
            piece = task.prepare(model, batch.items[i:i + size])
            more, more_failed = predict_batch(task, model, piece, sizer, model_name) if piece.items else ([], {})
            done += more
            failed.update(piece.failed, **more_failed)
        return done, failed
    if not isinstance(outputs, list) or len(outputs) != len(batch.items):
        got = len(outputs) if isinstance(outputs, list) else type(outputs).__name__
        raise MMBenchError(f"model {model_name!r} returned {got} outputs for a batch of {len(batch.items)} items "
                           f"on task {task.name!r}; the adapter must return one output per input")
    per_item = seconds / len(batch.items)
    return [(item, out, per_item) for item, out in zip(batch.items, outputs)], dict(batch.failed)
