"""Shared training utilities: determinism, image tensors, the learning-rate schedule, compact saving, counts."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image

THREADS = 2
# CLIP's normalisation constants (CLIPImageProcessor's defaults), used by every mini model's image processor.
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)


def seed_everything(seed: int) -> None:
    """Deterministic torch on the CPU: fixed seed, fixed thread count, deterministic kernels."""
    torch.manual_seed(seed)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)


def pixel_values(images: Sequence[Image.Image]) -> torch.Tensor:
    """(B, 3, 64, 64) float tensor, equal to what the mini processors produce for 64x64 RGB images.

    The processors' resize and crop to 64 px are identities on mini-shapes images (tested), so training skips
    them and only rescales and normalises, which is 20x faster than calling the processor per batch.
    """
    arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.uint8) for im in images])
    x = torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up to ``peak``, then cosine decay to 10% of it."""
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + np.cos(np.pi * min(1.0, frac))))


def make_optimizer(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float,
                   scaled: Iterable[torch.nn.Parameter] = (), lr_scale: float = 1.0) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms, biases, gates or embeddings' scalars); the
    ``scaled`` parameters learn at ``lr_scale`` times the schedule's rate (see set_lr)."""
    params = [p for p in params if p.requires_grad]
    fast = {id(p) for p in scaled}
    groups = []
    for is_fast, scale in ((False, 1.0), (True, lr_scale)):
        mine = [p for p in params if (id(p) in fast) == is_fast]
        groups += [{"params": [p for p in mine if p.ndim >= 2], "weight_decay": weight_decay, "lr_scale": scale},
                   {"params": [p for p in mine if p.ndim < 2], "weight_decay": 0.0, "lr_scale": scale}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(0.9, 0.98))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def param_counts(model: torch.nn.Module) -> dict[str, int]:
    """Total and trainable parameter counts (tied weights counted once)."""
    seen: dict[int, torch.nn.Parameter] = {}
    for p in model.parameters():
        seen.setdefault(id(p), p)
    return {"total": sum(p.numel() for p in seen.values()),
            "trainable": sum(p.numel() for p in seen.values() if p.requires_grad)}


def save_compact(model: torch.nn.Module, processor, folder: Path) -> None:
    """save_pretrained with float16 weight storage (the size budget) and a float32 config dtype.

    ``from_pretrained(folder)`` therefore builds a float32 model and upcasts the stored weights; the scores in
    the cards are measured on exactly these rounded weights.
    """
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16) if v.is_floating_point() else v
             for k, v in model.state_dict().items()}
    model.save_pretrained(folder, state_dict=state)
    processor.save_pretrained(folder)
    # The generation config is written by save_pretrained for generative models; greedy by default.


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@dataclass
class TrainLog:
    """What one training run did: written into the model card."""

    steps: int
    batch_size: int
    peak_lr: float
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    losses: list[float] = field(default_factory=list)  # mean loss per 10% of training

    def to_dict(self) -> dict:
        return asdict(self)


class Stopwatch:
    """Wall-clock and process CPU time of a block (CPU time / threads is robust to a shared machine)."""

    def __enter__(self) -> "Stopwatch":
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.cpu_seconds = time.process_time() - self.c0


def loss_curve(losses: Sequence[float], points: int = 10) -> list[float]:
    """Mean loss over ``points`` equal slices of training, rounded, for the card."""
    chunks = np.array_split(np.asarray(losses, dtype=np.float64), min(points, max(1, len(losses))))
    return [round(float(c.mean()), 4) for c in chunks if len(c)]


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def versions(data: dict[str, str]) -> dict[str, str]:
    """A card's versions: the generated data's (``data``: name -> generator version), then the libraries'."""
    import transformers

    return {**data, "transformers": transformers.__version__, "torch": torch.__version__,
            "python": platform.python_version()}
