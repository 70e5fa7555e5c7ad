"""Data parallelism over torch.distributed: which process am I, which device is mine, and the collectives
the runner needs, each with its tensors on the device the process group's backend takes.

Launched by ``torchrun`` / ``accelerate launch`` (or Slurm through them), a process finds its rank in the
launcher's standard variables (RANK, WORLD_SIZE, LOCAL_RANK: the ``env://`` rendezvous of
torch.distributed, not mmbench configuration) and joins the group: NCCL on GPUs, gloo on CPUs. A plain
``mmbench run`` is a world of one and touches none of this.

Device rule (the reason this module exists in this form): NCCL collectives take only CUDA tensors on the
calling rank's own GPU; gloo takes CPU tensors. So every collective below places its tensors on
``Dist.comm_device``: ``cuda:<local device>`` under NCCL, the CPU under gloo (or a mixed "cpu:gloo,cuda:nccl"
group). The object collectives (broadcast, gather) pickle into tensors inside torch: ``broadcast`` passes
the device explicitly, ``gather`` (torch's ``gather_object`` has no device argument and uses the *current*
CUDA device) runs with the rank's device made current.

Why torch.distributed and not accelerate's ``PartialState`` and ``accelerate.utils`` collectives (accelerate
is a dependency, for ``device_map``): accelerate does the same ``env://`` rendezvous and its object
collectives are thin wrappers over these torch calls; its ``gather_object`` is an all-gather, which would
put every rank's outputs (e.g. a whole task's embeddings) in every rank's memory when only rank 0 scores;
and a world of one here imports nothing from torch.distributed. ``accelerate launch`` sets the same
variables as torchrun, so both launchers work with this module.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mmbench.errors import MMBenchError


def local_cuda_index(local_rank: int | None = None) -> int | None:
    """This process's GPU among the visible ones: ``LOCAL_RANK`` (the launcher's), or 0 when the launcher
    shows each process a single GPU (CUDA_VISIBLE_DEVICES per process). None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    if local_rank is None:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    count = torch.cuda.device_count()
    if local_rank < count:
        return local_rank
    if count == 1:
        return 0
    raise MMBenchError(f"local rank {local_rank} but only {count} GPUs are visible on this node: launch at most "
                       f"{count} processes per node (torchrun --nproc-per-node {count})")


def local_device() -> str | None:
    """``cuda:<i>`` for this process (the device Dist.device gives models under a launcher; cuda:0 in a world
    of one), or None without CUDA. For things the runner does not place itself, e.g. feature extractors."""
    index = local_cuda_index()
    return None if index is None else f"cuda:{index}"


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False
    local_world_size: int = 1  # processes on this node (they share its cores)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_launcher(cls, timeout_s: float = 1800) -> "Dist":
        """Join the process group the launcher set up; a world of one when there is none."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch
        import torch.distributed as td

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        initialized_here = False
        if not td.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(local_cuda_index(local_rank))
            td.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
            initialized_here = True
        dist = cls(rank=td.get_rank(), world_size=td.get_world_size(), local_rank=local_rank,
                   initialized_here=initialized_here,
                   local_world_size=max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
        if dist.uses_cuda:
            # also when someone else (e.g. accelerate's state) made the group: "cuda" must mean this rank's GPU
            torch.cuda.set_device(dist.comm_device)
        return dist

    def device(self, requested: str | None) -> str | None:
        """Each rank on its own GPU unless the user pinned a device."""
        import torch

        if self.enabled and requested in (None, "auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{local_cuda_index(self.local_rank)}"
        return requested

    # -- where collectives' tensors go -------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """The process group's backend ("nccl", "gloo", or a mixed "cpu:gloo,cuda:nccl"); "" in a world of one."""
        if not self.enabled:
            return ""
        import torch.distributed as td

        return str(td.get_backend()).lower()

    @property
    def uses_cuda(self) -> bool:
        """True when collectives must get CUDA tensors: an NCCL-only group (a group with gloo takes CPU ones)."""
        backend = self.backend
        return "nccl" in backend and "gloo" not in backend

    @property
    def comm_device(self) -> Any:
        """The torch.device of every tensor handed to a collective: this rank's GPU under NCCL, else the CPU."""
        import torch

        if self.uses_cuda:
            return torch.device("cuda", local_cuda_index(self.local_rank))
        return torch.device("cpu")

    def _current_device(self):
        """Makes this rank's GPU the current CUDA device for torch's object collectives that use it."""
        if not self.uses_cuda:
            return contextlib.nullcontext()
        import torch

        return torch.cuda.device(self.comm_device.index)

    # -- collectives (no-ops in a world of one) ------------------------------------------------------------
    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        import torch.distributed as td

        box = [obj]
        td.broadcast_object_list(box, src=0, device=self.comm_device)
        return box[0]

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` on rank 0 (a list in rank order); None on the other ranks."""
        if not self.enabled:
            return [obj]
        import torch.distributed as td

        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        with self._current_device():
            td.gather_object(obj, out, dst=0)
        return out

    def max(self, value: int) -> int:
        """The largest ``value`` over the ranks, on every rank (also a barrier: it returns once all sent)."""
        if not self.enabled:
            return value
        import torch
        import torch.distributed as td

        t = torch.tensor([int(value)], dtype=torch.int64, device=self.comm_device)
        td.all_reduce(t, op=td.ReduceOp.MAX)
        return int(t.item())

    def close(self, wait_for_peers: bool = False) -> None:
        """Leave the process group while the interpreter is fully alive. After a completed run, a barrier first,
        so that no rank tears its connections down while another still has a collective in flight (a suspect in
        a rare abort of a worker at exit, "terminate called without an active exception"); after a failure,
        no barrier: the other ranks may never reach it."""
        if self.initialized_here:
            import torch.distributed as td

            if wait_for_peers:
                try:
                    td.barrier()
                except Exception:  # noqa: BLE001 - a peer already gone: nothing left to wait for
                    pass
            td.destroy_process_group()
