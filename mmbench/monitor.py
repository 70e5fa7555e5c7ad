"""Peak memory during one task: CUDA max-allocated on a GPU, else the process RSS sampled in a thread."""

from __future__ import annotations

import threading

import psutil

from mmbench.results import PeakMemory

SAMPLE_INTERVAL_S = 0.02


class MemoryMonitor:
    """Context manager; ``result()`` after exit gives the peak over the block."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cuda = device.startswith("cuda")

    def _sample(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            self._stop.wait(SAMPLE_INTERVAL_S)

    def __enter__(self) -> "MemoryMonitor":
        if self._cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            self.peak = psutil.Process().memory_info().rss
            self._thread = threading.Thread(target=self._sample, name="mmbench-rss", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._cuda:
            import torch

            torch.cuda.synchronize()
            self.peak = int(torch.cuda.max_memory_allocated())
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            self.peak = max(self.peak, psutil.Process().memory_info().rss)

    def result(self) -> PeakMemory:
        return PeakMemory(bytes=int(self.peak), kind="cuda_max_allocated" if self._cuda else "process_rss_peak")
