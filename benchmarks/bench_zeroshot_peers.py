"""Zero-shot classification against CLIP_benchmark itself: the same open_clip model, the same WebDataset shards
of decode-heavy JPEGs, each tool's own command line, wall times alternated, top-1 checked equal.

    <python with clip-benchmark>  benchmarks/bench_zeroshot_peers.py [--images 2000] [--workers 2] [--repeats 3]

CLIP_benchmark and open_clip need torchvision: run this with the vision environment's Python (torch 2.14.1 +
torchvision 0.29.1, `pip install clip-benchmark==1.6.2 -e '.[openclip]'` there). The set: 640x480 JPEGs (as
bench_input_pipeline.py makes them) in CLIP_benchmark's `wds` layout (4 shards, classnames and templates
files), read by `clip_benchmark eval --dataset wds/...` and by mmbench's `wds` format. The model: a random
open_clip ViT (224 px, patch 32) saved as an open_clip `local-dir:` folder, which both load the same way,
fp32 (CLIP_benchmark with --no_amp). Timed: each whole command (start-up, model load, text tower, the image
loop), median of the repeats; CLIP_benchmark with `--num_workers` DataLoader workers and torch's default
threads (its usual setting), mmbench with its defaults.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from bench_input_pipeline import make_jpegs  # noqa: E402

SHARDS = 4


def write_wds(folder: Path, wds: Path) -> int:
    """The JPEGs of ``folder`` (one sub-folder per class) as CLIP_benchmark's wds layout under ``wds``; the
    image bytes are copied, not re-encoded. Returns the image count."""
    classes = sorted(d.name for d in folder.iterdir())
    files = [(f, label) for label, c in enumerate(classes) for f in sorted((folder / c).iterdir())]
    (wds / "test").mkdir(parents=True)
    for s in range(SHARDS):
        with tarfile.open(wds / "test" / f"{s}.tar", "w") as tar:
            for i, (path, label) in list(enumerate(files))[s::SHARDS]:
                for name, data in ((f"{i:06d}.jpg", path.read_bytes()), (f"{i:06d}.cls", str(label).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    (wds / "test" / "nshards.txt").write_text(f"{SHARDS}\n")
    (wds / "classnames.txt").write_text("\n".join(classes) + "\n")
    (wds / "zeroshot_classification_templates.txt").write_text("a photo of a {c}.\na {c}.\n")
    return len(files)


def write_model(folder: Path, width: int) -> str:
    """A random open_clip CLIP as a ``local-dir:`` folder (open_clip_config.json + weights)."""
    import open_clip
    import torch

    model_cfg = {"embed_dim": 64,
                 "vision_cfg": {"image_size": 224, "layers": 4, "width": width, "patch_size": 32, "head_width": 64},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 2}}
    torch.manual_seed(0)
    model = open_clip.CLIP(**model_cfg)
    folder.mkdir(parents=True)
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    preprocess = {"size": 224, "mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD),
                  "interpolation": "bicubic", "resize_mode": "shortest"}
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess}))
    return f"local-dir:{folder}"


# clip_benchmark 1.6.2's accuracy() calls float() on a 1-element array, which NumPy 2.4 refuses; its command line
# runs with that one line made to take the element (.item()), the same number, nothing else changed.
PEER_MAIN = """import sys, torch
import clip_benchmark.metrics.zeroshot_classification as zc
def accuracy(output, target, topk=(1,)):
    pred = output.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    n = len(target)
    return [float(correct[:k].reshape(-1).float().sum(0, keepdim=True).cpu().numpy().item()) / n for k in topk]
zc.accuracy = accuracy
from clip_benchmark.cli import main
sys.argv = ["clip_benchmark", *sys.argv[1:]]
main()
"""


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--width", type=int, default=256, help="hidden size of the random ViT")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2, help="CLIP_benchmark's --num_workers")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import clip_benchmark  # noqa: F401  (fail before any work when the environment lacks it)
    from importlib.metadata import version

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_jpegs(root / "jpegs", args.images)
        size = sum(f.stat().st_size for f in (root / "jpegs").rglob("*.jpg")) / args.images / 1024
        n = write_wds(root / "jpegs", root / "data" / "bench")
        model = write_model(root / "model", args.width)
        tasks = root / "tasks"
        tasks.mkdir()
        (tasks / "bench.yaml").write_text("task: bench-wds\nkind: zeroshot-classification\n"
                                          "data: {format: wds, root: bench}\n")
        peer = [sys.executable, "-c", PEER_MAIN, "eval", "--dataset", "wds/bench", "--dataset_root",
                str(root / "data" / "bench"), "--model", model, "--pretrained", "none", "--task",
                "zeroshot_classification", "--batch_size", str(args.batch_size), "--num_workers", str(args.workers),
                "--no_amp", "--output", str(root / "peer.json"), "--quiet"]
        ours = [sys.executable, "-m", "mmbench", "run", "--model", "open-clip", "--model-args", f"model={model}",
                "--tasks", "bench-wds", "--include-path", str(tasks), "--data-dir", str(root / "data"),
                "--batch-size", str(args.batch_size), "--no-cache", "--no-progress", "--output-dir", str(root / "o")]
        walls: dict[str, list[float]] = {"clip_benchmark": [], "mmbench": []}
        for _ in range(args.repeats):
            walls["clip_benchmark"].append(timed(peer))
            walls["mmbench"].append(timed(ours))
        peer_top1 = json.loads((root / "peer.json").read_text())["metrics"]["acc1"]
        run_dir = sorted(p for p in (root / "o").iterdir() if p.is_dir())[-1]
        result = json.loads((run_dir / "results.json").read_text())["results"][0]
        top1 = next(m["value"] for m in result["metrics"] if m["name"] == "top1")
        basis = result["throughput"]["basis"]
    import torch

    med = {k: statistics.median(v) for k, v in walls.items()}
    print(f"{n} JPEGs 640x480 (mean {size:.0f} KiB) in {SHARDS} wds shards, random open_clip ViT width {args.width} "
          f"at 224 px, fp32, batch {args.batch_size}, torch {torch.__version__}, median of {args.repeats} whole "
          f"commands")
    print(f"  clip_benchmark {version('clip-benchmark')} eval, --num_workers {args.workers}: "
          f"{med['clip_benchmark']:6.2f} s (top-1 {peer_top1:.4f})")
    print(f"  mmbench run ({basis.split('(', 1)[1].rstrip(')')}): {med['mmbench']:6.2f} s (top-1 {top1:.4f})")
    print(f"  mmbench {med['clip_benchmark'] / med['mmbench']:.2f}x; top-1 equal: {abs(top1 - peer_top1) < 1e-12}")


if __name__ == "__main__":
    main()
