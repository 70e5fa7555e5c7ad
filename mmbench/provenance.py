"""Where a number came from: package versions, the mmbench source revision, the machine."""

from __future__ import annotations

import platform
import subprocess
import sys
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mmbench

PACKAGES = ("torch", "accelerate", "transformers", "tokenizers", "datasets", "numpy", "pillow", "scipy", "torchmetrics",
            "pycocoevalcap", "jiwer", "open_clip_torch", "torchvision", "diffusers", "pocketsphinx",
            "soundfile", "soxr", "whisper-normalizer")


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


@lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The commit of the mmbench source tree (with ``+dirty`` when it has local changes), if it is a checkout."""
    root = Path(mmbench.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) if head else None


def environment() -> dict:
    env = {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
           "packages": dict(package_versions())}
    try:
        import torch

        env["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            env["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return env


def mmbench_version() -> str:
    return mmbench.__version__
