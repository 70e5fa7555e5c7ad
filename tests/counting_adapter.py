"""A dual encoder that logs how many images it embeds and can stop after N batches (for resume tests)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from mmbench.adapters.hf_clip import HFDualEncoder, HFDualEncoderArgs


@dataclass(frozen=True)
class CountingArgs(HFDualEncoderArgs):
    log: str | None = None  # append one line per embedded image batch: its size
    stop_after: int | None = None  # raise KeyboardInterrupt on this batch (in-process "kill")
    sleep: float = 0.0
    oom_above: int | None = None  # simulate CUDA out-of-memory on image batches larger than this


class CountingCLIP(HFDualEncoder):
    Args: ClassVar[type] = CountingArgs

    def __init__(self, args, name=""):
        super().__init__(args, name)
        self.batches = 0

    def fingerprint(self) -> str:  # the log/stop options must not change the cache key
        return "counting:" + self.weights_fingerprint()

    def embed_images(self, batch):
        self.batches += 1
        if self.args.stop_after is not None and self.batches > self.args.stop_after:
            raise KeyboardInterrupt
        if self.args.oom_above is not None and len(batch) > self.args.oom_above:
            import torch

            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (simulated at batch {len(batch)})")
        out = super().embed_images(batch)
        if self.args.log:
            with open(self.args.log, "a") as fh:
                fh.write(f"{len(out)}\n")
        time.sleep(self.args.sleep)
        return out


def register() -> None:
    from mmbench.registry import MODELS

    MODELS.register("counting-clip", CountingCLIP, overwrite=True)
