"""The throughput scripts in benchmarks/ still run and still check what they claim to check (identical answers,
equal top-1), on a few items: gpu_check.sh runs them on a lent GPU machine, where a broken script wastes the
one run. No timing is asserted here; the numbers belong to the scripts' own runs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH / name), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_vqa_batching_compares_identical_answers_on_mini_vqa():
    out = run_script("bench_vqa_batching.py", "--items", "12", "--batch-sizes", "1,4", "--repeats", "1")
    rows = [line for line in out.splitlines() if line.startswith(("one at a time", "bare batched", "mmbench run"))]
    assert "mini-vqa, 12 questions" in out and len(rows) == 4
    assert all(line.rstrip().endswith("True") for line in rows), out  # every loop gave the same answers


def test_input_pipeline_compares_equal_top1_with_the_dataloader_loop():
    out = run_script("bench_input_pipeline.py", "--images", "24", "--width", "64", "--workers", "1,2", "--repeats",
                     "1", "--batch-size", "8")
    assert "preparation alone" in out and "top-1" in out and out.count("DataLoader(") == 2


@pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None, reason="lmms-eval is not installed here")
def test_vqa_peers_against_lmms_eval():
    out = run_script("bench_vqa_peers.py", "--items", "8", "--repeats", "1")
    assert "identical answers: 8/8" in out


@pytest.mark.skipif(importlib.util.find_spec("clip_benchmark") is None, reason="clip-benchmark is not installed here")
def test_zeroshot_peers_against_clip_benchmark():
    out = run_script("bench_zeroshot_peers.py", "--images", "48", "--repeats", "1", "--batch-size", "16")
    assert "top-1 equal: True" in out
