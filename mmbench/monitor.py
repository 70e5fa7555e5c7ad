"""Peak memory during one task: CUDA max-allocated on every GPU the model uses, else the process RSS sampled
in a thread.

Which GPUs: the model's own placement (``model_devices``): a ``device_map`` spread (transformers/accelerate's
``hf_device_map``), else the devices of its parameters and buffers, and the adapter's ``device``; a bare
"cuda" is the current device. Each is reset before the task and read after it
(``torch.cuda.max_memory_allocated(device)``, this process's allocations only), recorded per device in
``PeakMemory.devices`` with ``bytes`` their sum. Parts of a model offloaded to the CPU or disk are not in a
CUDA number. Under torchrun, ``result(dist)`` gathers every rank's numbers on rank 0: ``bytes`` is then the
largest process total, and ``devices`` keys are ``rank<r>/<device>``.
"""

from __future__ import annotations

import threading
from typing import Any, Iterable

import psutil

from mmbench.results import PeakMemory

SAMPLE_INTERVAL_S = 0.02
CUDA_KIND = "cuda_max_allocated"
RSS_KIND = "process_rss_peak"


def _device_name(value: Any) -> str:
    """A device-map value (0, "0", "cuda:1", "cpu", "disk", torch.device) as a device string."""
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return f"cuda:{int(value)}"
    return str(value)


def model_devices(adapter: Any) -> list[str]:
    """The devices an adapter's model lives on (see the module doc), in first-seen order."""
    import torch

    found: list[str] = []
    modules: list[Any] = []
    for value in vars(adapter).values():
        if isinstance(value, torch.nn.Module):
            modules.append(value)
        elif isinstance(getattr(value, "components", None), dict):  # a diffusers pipeline
            modules += [v for v in value.components.values() if isinstance(v, torch.nn.Module)]
    for module in modules:
        device_map = getattr(module, "hf_device_map", None)
        if isinstance(device_map, dict) and device_map:
            found += [_device_name(v) for v in device_map.values()]
        else:
            found += [str(t.device) for t in (*module.parameters(), *module.buffers())]
    found.append(str(getattr(adapter, "device", "cpu")))
    return list(dict.fromkeys(found))


def _cuda_devices(devices: Iterable[str]) -> list[str]:
    """The CUDA ones, as ``cuda:<index>`` (a bare "cuda" is the current device), in index order."""
    names = set()
    for d in devices:
        if d == "cuda":
            import torch

            names.add(f"cuda:{torch.cuda.current_device()}")
        elif d.startswith("cuda:"):
            names.add(d)
    return sorted(names, key=lambda n: int(n.split(":")[1]))


class MemoryMonitor:
    """Context manager; ``result()`` after exit gives the peak over the block. ``device``: one device string
    or several (e.g. ``model_devices(adapter)``; ``for_model`` does that)."""

    def __init__(self, device: str | Iterable[str]) -> None:
        devices = [device] if isinstance(device, str) else list(device)
        self.device = devices[0] if devices else "cpu"
        self.cuda_devices = _cuda_devices(devices)
        self._cuda = bool(self.cuda_devices)
        self.peak = 0
        self.per_device: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_model(cls, adapter: Any) -> "MemoryMonitor":
        return cls(model_devices(adapter))

    def _sample(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            self._stop.wait(SAMPLE_INTERVAL_S)

    def __enter__(self) -> "MemoryMonitor":
        if self._cuda:
            import torch

            for d in self.cuda_devices:
                torch.cuda.synchronize(d)
                torch.cuda.reset_peak_memory_stats(d)
        else:
            self.peak = psutil.Process().memory_info().rss
            self._thread = threading.Thread(target=self._sample, name="mmbench-rss", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._cuda:
            import torch

            for d in self.cuda_devices:
                torch.cuda.synchronize(d)
                self.per_device[d] = int(torch.cuda.max_memory_allocated(d))
            self.peak = sum(self.per_device.values())
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            self.peak = max(self.peak, psutil.Process().memory_info().rss)
            self.per_device = {"cpu": int(self.peak)}

    def result(self, dist: Any = None) -> PeakMemory | None:
        """This process's peak; with ``dist`` (a Dist with several processes: call it on every rank) every
        rank's, gathered on rank 0 (None on the other ranks): ``bytes`` the largest process total."""
        mine = PeakMemory(bytes=int(self.peak), kind=CUDA_KIND if self._cuda else RSS_KIND,
                          devices=dict(self.per_device))
        if dist is None or not dist.enabled:
            return mine
        peaks = dist.gather(mine)
        if peaks is None:
            return None
        return PeakMemory(bytes=max(int(p.bytes or 0) for p in peaks),
                          kind=f"{mine.kind} (max over {dist.world_size} processes)",
                          devices={f"rank{r}/{d}": b for r, p in enumerate(peaks) for d, b in p.devices.items()})
