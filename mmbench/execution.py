"""The batch loop of one (model, task): batches prepared ahead in a thread, the model called on each, and
out-of-memory handled by halving the batch and retrying the same items (none lost, none computed twice)."""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterator

from mmbench.batching import BatchSizer, free_accelerator_memory, is_out_of_memory
from mmbench.errors import MMBenchError
from mmbench.tasks.base import Batch, Task

# (item, output, model seconds attributed to the item)
Computed = tuple[dict, Any, float]


def prepared_batches(task: Task, model: Any, items: list[dict], sizer: BatchSizer, prefetch: int) -> Iterator[Batch]:
    """Batches of ``sizer.size`` items (read when each batch is scheduled, so a shrink applies to the
    batches not yet scheduled), prepared ``prefetch`` batches ahead in one background thread."""
    pos = 0

    def next_chunk() -> list[dict] | None:
        nonlocal pos
        if pos >= len(items):
            return None
        chunk = items[pos:pos + sizer.size]
        pos += len(chunk)
        return chunk

    if prefetch <= 0:
        while (chunk := next_chunk()) is not None:
            yield task.prepare(model, chunk)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmbench-prefetch") as pool:
        pending: deque[Future] = deque()

        def schedule() -> None:
            chunk = next_chunk()
            if chunk is not None:
                pending.append(pool.submit(task.prepare, model, chunk))

        for _ in range(prefetch + 1):
            schedule()
        while pending:
            batch = pending.popleft().result()
            schedule()
            yield batch


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
