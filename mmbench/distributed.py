"""Data parallelism over torch.distributed: which process am I, and the three collectives the runner needs.

Launched by ``torchrun`` / ``accelerate launch`` (or Slurm through them), a process finds its rank in the
launcher's standard variables (RANK, WORLD_SIZE, LOCAL_RANK: the ``env://`` rendezvous of
torch.distributed, not mmbench configuration) and joins the group: NCCL on GPUs, gloo on CPUs. A plain
``mmbench run`` is a world of one and touches none of this.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

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
                torch.cuda.set_device(local_rank)
            td.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
            initialized_here = True
        return cls(rank=td.get_rank(), world_size=td.get_world_size(), local_rank=local_rank,
                   initialized_here=initialized_here)

    def device(self, requested: str | None) -> str | None:
        """Each rank on its own GPU unless the user pinned a device."""
        import torch

        if self.enabled and requested in (None, "auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return requested

    # -- collectives (no-ops in a world of one) ------------------------------------------------------------
    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        import torch.distributed as td

        box = [obj]
        td.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` on rank 0 (a list in rank order); None on the other ranks."""
        if not self.enabled:
            return [obj]
        import torch.distributed as td

        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        td.gather_object(obj, out, dst=0)
        return out

    def max(self, value: int) -> int:
        """The largest ``value`` over the ranks, on every rank."""
        if not self.enabled:
            return value
        import torch
        import torch.distributed as td

        t = torch.tensor([value], dtype=torch.int64)
        td.all_reduce(t, op=td.ReduceOp.MAX)
        return int(t.item())

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as td

            td.barrier()

    def close(self) -> None:
        if self.initialized_here:
            import torch.distributed as td

            td.destroy_process_group()
