"""On CUDA only (`pytest -m gpu`; skipped elsewhere; benchmarks/gpu_check.sh runs them on a GPU machine): a
tiny random LLaVA through `mmbench run` in bf16 on the GPU gives the same greedy outputs at batch sizes 1 and 4
with the GPU's peak memory recorded under its name; with two GPUs, a pinned `device=cuda:1` is measured on
cuda:1, the collectives run over NCCL with every tensor on the rank's own GPU, and 2 processes give the
outputs of 1; a modern family (Idefics3, loaded from its folder through its preset) in bf16 gives the same
text at batch sizes 1 and 3 with its image tokens logged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tiny_models
import tiny_vlms
from mmbench.cli.main import main
from mmbench.results import RunResult

GPU = "cuda:0"
N_GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(N_GPUS == 0, reason="needs CUDA (torch.cuda.is_available())")]
two_gpus = pytest.mark.skipif(N_GPUS < 2, reason="needs 2 GPUs")


@pytest.fixture(scope="module")
def llava(tmp_path_factory) -> Path:
    return tiny_vlms.make_tiny_llava(tmp_path_factory.mktemp("gpu-vlm") / "llava")


@pytest.fixture(scope="module")
def vqa(tmp_path_factory) -> tuple[Path, Path]:
    """16 questions of different lengths (so a batch of 4 pads) on drawn shapes, and a task file for them."""
    root = tmp_path_factory.mktemp("gpu-data")
    rows = []
    combos = [(c, s) for c in tiny_models.COLOURS for s in tiny_models.SHAPES]
    for i, (colour, shape) in enumerate(combos[:8]):
        tiny_models.draw(colour, shape, jitter=i % 5).save(root / f"img{i}.png")
        rows.append({"id": f"q{i}a", "image": f"img{i}.png", "answers": [colour] * 10,
                     "question": "what color is the shape?" if i % 2 else
                     "what is the color of the shape in the middle of this small picture?"})
        rows.append({"id": f"q{i}b", "image": f"img{i}.png", "question": "is it a circle?",
                     "answers": ["yes" if shape == "circle" else "no"] * 10})
    (root / "vqa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = tmp_path_factory.mktemp("gpu-tasks")
    (tasks / "v.yaml").write_text("task: gpu-vqa\nkind: vqa\nmax_new_tokens: 6\n"
                                  "data: {format: jsonl, path: vqa.jsonl}\n")
    return root, tasks


def run_args(llava: Path, vqa: tuple[Path, Path], out: Path, model_args: str, *extra: str) -> list[str]:
    data, tasks = vqa
    return ["run", "--model", "hf-llava", "--model-args", f"pretrained={llava},{model_args}", "--tasks", "gpu-vqa",
            "--include-path", str(tasks), "--data-dir", str(data), "--output-dir", str(out), "--no-progress", *extra]


def run(capsys, *args) -> tuple[RunResult, Path]:
    code = main(run_args(*args))
    err = capsys.readouterr().err
    assert code == 0, err
    out = Path(args[2])
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    return RunResult.read(run_dir), run_dir


def predictions(run_dir: Path, result) -> list[tuple]:
    lines = [json.loads(x) for x in (run_dir / result.files["samples"]).read_text().splitlines()]
    return [(s["id"], s.get("prompt_sent"), s.get("generation")) for s in lines]


def assert_peak_on(result, device: str) -> None:
    peak = result.peak_memory
    assert peak.kind == ("cuda_max_allocated" if device.startswith("cuda") else "process_rss_peak"), peak
    assert set(peak.devices) == {device if device.startswith("cuda") else "cpu"}, peak
    assert peak.bytes == sum(peak.devices.values()) and peak.bytes > 0, peak


def test_bf16_greedy_outputs_equal_at_batch_sizes_1_and_4_and_peak_memory_of_the_gpu(capsys, llava, vqa, tmp_path):
    runs = {bs: run(capsys, llava, vqa, tmp_path / f"bs{bs}", f"dtype=bf16,device={GPU}", "--batch-size", str(bs),
                    "--no-cache") for bs in (1, 4)}
    preds = {bs: predictions(d, r.results[0]) for bs, (r, d) in runs.items()}
    if preds[1] != preds[4]:  # say whether fp32 agrees, to tell bf16 numerics from a batching bug
        differ = [a[0] for a, b in zip(preds[1], preds[4]) if a != b]
        control = []
        for bs in (1, 4):
            r, d = run(capsys, llava, vqa, tmp_path / f"fp32-bs{bs}", f"dtype=fp32,device={GPU}", "--batch-size",
                       str(bs), "--no-cache")
            control.append(predictions(d, r.results[0]))
        fp32 = "agrees" if control[0] == control[1] else "differs too"
        pytest.fail(f"bf16 greedy outputs differ between batch sizes 1 and 4 on {len(differ)} of {len(preds[1])} "
                    f"items ({differ[:5]}); fp32 on the same GPU {fp32} (agrees: bf16 kernel numerics at a "
                    f"near-tie; differs too: a batching bug)")
    assert len({p[2] for p in preds[1]}) > 1  # not all the same generation: the comparison can fail
    for bs, (result_run, _) in runs.items():
        result = result_run.results[0]
        assert result.model_info["dtype"] == "bfloat16" and result.model_info["device"] == GPU
        assert_peak_on(result, GPU)
    assert runs[1][0].results[0].metrics == runs[4][0].results[0].metrics


def test_peak_memory_of_a_device_map_model_names_its_gpus(capsys, llava, vqa, tmp_path):
    from mmbench.adapters import load_model
    from mmbench.monitor import _cuda_devices, model_devices
    from mmbench.specs import ModelSpec

    adapter = load_model(ModelSpec("hf-llava", {"pretrained": str(llava), "dtype": "bf16", "device_map": "balanced"}))
    expected = set(_cuda_devices(model_devices(adapter)))
    adapter.close()
    del adapter
    assert expected and expected <= {f"cuda:{i}" for i in range(N_GPUS)}
    result_run, _ = run(capsys, llava, vqa, tmp_path / "dm", "dtype=bf16,device_map=balanced", "--no-cache")
    peak = result_run.results[0].peak_memory
    assert peak.kind == "cuda_max_allocated" and set(peak.devices) == expected, peak
    assert all(b > 0 for b in peak.devices.values()) and peak.bytes == sum(peak.devices.values())


@two_gpus
def test_peak_memory_of_a_model_pinned_to_the_second_gpu(capsys, llava, vqa, tmp_path):
    result_run, _ = run(capsys, llava, vqa, tmp_path / "pinned", "dtype=bf16,device=cuda:1", "--no-cache")
    assert_peak_on(result_run.results[0], "cuda:1")


@two_gpus
def test_two_nccl_processes_put_every_collective_tensor_on_their_own_gpu(tmp_path):
    from test_distributed import run_torchrun

    records = run_torchrun(tmp_path, backend="nccl")
    for r in records:
        mine = f"cuda:{r['rank']}"
        assert r["comm_device"] == mine
        assert r["calls"] and all(device == mine for _, device in r["calls"]), r["calls"]
        assert r["broadcast"] == {"from": 0} and r["max"] == 11
    assert records[0]["gather"] == [["r", 0], ["r", 1]]
    peak = records[0]["peak"]
    assert set(peak["devices"]) == {"rank0/cuda:0", "rank1/cuda:1"} and min(peak["devices"].values()) > 0


@two_gpus
def test_two_nccl_processes_give_the_outputs_of_one(capsys, llava, vqa, tmp_path):
    # batch size 1: each item's computation is the same whichever process runs it
    one, one_dir = run(capsys, llava, vqa, tmp_path / "one", "dtype=bf16", "--batch-size", "1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "mmbench",
           *run_args(llava, vqa, tmp_path / "two", "dtype=bf16", "--batch-size", "1")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    two_dir = sorted(p for p in (tmp_path / "two").iterdir() if p.is_dir())[-1]
    two = RunResult.read(two_dir)
    assert predictions(one_dir, one.results[0]) == predictions(two_dir, two.results[0])
    assert one.results[0].metrics == two.results[0].metrics
    peak = two.results[0].peak_memory
    assert set(peak.devices) == {"rank0/cuda:0", "rank1/cuda:1"} and min(peak.devices.values()) > 0, peak
    assert sorted(p.name for p in (tmp_path / "two").glob("cache*")) == ["cache.rank1.sqlite", "cache.sqlite"]


def test_a_modern_family_in_bf16_gives_the_same_text_at_batch_sizes_1_and_3(capsys, vqa, tmp_path_factory, tmp_path):
    """Idefics3 (image splitting, its own chat template; needs no torchvision) through its folder's family preset."""
    import tiny_vlm_families_b

    folder = tiny_vlm_families_b.make_tiny_idefics3(tmp_path_factory.mktemp("gpu-idefics3") / "idefics3")
    data, tasks = vqa
    runs = {}
    for bs in (1, 3):
        out = tmp_path / f"bs{bs}"
        code = main(["run", "--model", str(folder), "--model-args", f"dtype=bf16,device={GPU}", "--tasks", "gpu-vqa",
                     "--include-path", str(tasks), "--data-dir", str(data), "--output-dir", str(out),
                     "--no-progress", "--no-cache", "--batch-size", str(bs)])
        assert code == 0, capsys.readouterr().err
        run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
        runs[bs] = (RunResult.read(run_dir), run_dir)
    preds = {bs: predictions(d, r.results[0]) for bs, (r, d) in runs.items()}
    assert preds[1] == preds[3] and len({p[2] for p in preds[1]}) > 1
    for result_run, run_dir in runs.values():
        result = result_run.results[0]
        assert result.model_info["model_family"] == "idefics3" and result.model_info["dtype"] == "bfloat16"
        assert_peak_on(result, GPU)
        samples = [json.loads(x) for x in (run_dir / result.files["samples"]).read_text().splitlines()]
        assert all(s["image_tokens"] > 0 for s in samples)


def test_batches_for_a_gpu_model_are_pinned_and_give_the_same_embeddings(tmp_path_factory):
    """The preparation threads page-lock the payload so the host-to-device copy overlaps the previous batch."""
    import numpy as np

    import tiny_models
    from mmbench.adapters import load_model
    from mmbench.batching import BatchSizer
    from mmbench.execution import prepared_batches
    from mmbench.specs import ModelSpec
    from mmbench.tasks.base import Batch

    folder = tiny_models.make_tiny_clip(tmp_path_factory.mktemp("gpu-clip"))
    adapter = load_model(ModelSpec("hf-clip", {"pretrained": str(folder), "device": GPU}))
    images = [tiny_models.draw(c, s) for c in tiny_models.COLOURS for s in tiny_models.SHAPES]

    class Task:
        def prepare(self, model, chunk):
            return Batch(chunk, model.preprocess_images([images[it["n"]] for it in chunk]))

    items = [{"id": str(n), "n": n} for n in range(len(images))]
    pinned = list(prepared_batches(Task(), adapter, items, BatchSizer(size=4), 1, 2, pin=True))
    plain = list(prepared_batches(Task(), adapter, items, BatchSizer(size=4), 1, 2, pin=False))
    assert all(b.payload.is_pinned() for b in pinned) and not any(b.payload.is_pinned() for b in plain)
    a = np.concatenate([adapter.embed_images(b.payload) for b in pinned])
    b = np.concatenate([adapter.embed_images(b.payload) for b in plain])
    assert np.array_equal(a, b)
