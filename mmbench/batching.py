"""Batch sizes: a fixed size, or ``auto`` (start large, halve on out-of-memory, never lose or repeat an item).

With ``auto`` the first batch is tried at ``AUTO_START`` items; an out-of-memory error (CUDA, or a CPU
allocation failure) halves the size and the same items are retried in smaller pieces, so no output is lost
or computed twice. The size found is kept for the rest of the task, and halved again if a later batch
(longer prompts, larger images) runs out of memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmbench.errors import MMBenchError

AUTO_START = 128


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA OOM (torch.cuda.OutOfMemoryError or the older RuntimeError text), or a CPU MemoryError."""
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_accelerator_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


@dataclass
class BatchSizer:
    """The current batch size and how it shrinks on out-of-memory."""

    size: int
    auto: bool = False
    ooms: int = 0

    @classmethod
    def create(cls, requested: int | str | None, default: int) -> "BatchSizer":
        if requested == "auto":
            return cls(size=max(AUTO_START, default), auto=True)
        size = int(requested) if requested else default
        if size < 1:
            raise MMBenchError(f"batch size must be >= 1 or 'auto', got {requested}")
        return cls(size=size)

    def shrink(self, failed_size: int) -> int:
        """After an out-of-memory error on a batch of ``failed_size``: the size to retry with."""
        self.ooms += 1
        if failed_size <= 1:
            raise MMBenchError("out of memory at batch size 1: use a smaller dtype (dtype=bf16/fp16), another "
                               "device, or device_map=auto for a model that does not fit")
        self.size = min(self.size, max(1, failed_size // 2))
        return self.size

    def describe(self) -> str:
        if not self.auto:
            return f"{self.size}"
        return f"auto (settled at {self.size} after {self.ooms} out-of-memory halving(s))"
