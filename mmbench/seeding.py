"""Per-item seeds: one definition of how a run seed and an item id become the seed of that item's noise,
ablation or generated image, the same on every machine, process count and batch size.

Python's ``hash`` of a string changes between processes, hence sha256 of the parts' text.
"""

from __future__ import annotations

import hashlib


def stable_seed(*parts: int | str) -> int:
    """A 63-bit seed from (run seed, item id, ...): noise added to audio, probe ablations."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def item_seed(run_seed: int, item_id: str) -> int:
    """A 31-bit seed (what torch.Generator and diffusers take everywhere) for a generated image:
    31 bits of sha256('<run seed>/<item id>')."""
    digest = hashlib.sha256(f"{int(run_seed)}/{item_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
