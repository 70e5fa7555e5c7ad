"""`mmbench mini train`'s command line, apart from the training code so that `--help` and a bad option answer
without importing torch."""

from __future__ import annotations

import argparse
from pathlib import Path

MODELS = ("mini-clip", "mini-lm", "mini-llava", "mini-flamingo", "mini-blip2", "mini-llava-blind", "mini-video")
SHIPPED = Path(__file__).resolve().parents[1] / "models"  # the models the package ships (and loads)
DEFAULT_OUTPUT = Path("mini-models")  # a retrain writes here, never into the installed package by default
DEFAULT_SEED = 0


def parse_args(argv: list[str] | None, prog: str = "mmbench mini train") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description="Retrain the mini model zoo from scratch, deterministically.")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                   help=f"folder that receives one sub-folder per model (default: ./{DEFAULT_OUTPUT}; the shipped "
                        f"models are in {SHIPPED})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="training seed (test splits stay fixed)")
    p.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(MODELS)}")
    p.add_argument("--quick", action="store_true", help="a few steps of each model (smoke test)")
    return p.parse_args(argv)
