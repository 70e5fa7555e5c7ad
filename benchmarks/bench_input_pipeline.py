"""The input pipeline: images/s of batch preparation alone at 1..N threads, and the whole zero-shot run against
a torch DataLoader loop (CLIP_benchmark's structure: worker processes decode and preprocess, the main process
runs the model) with the same worker count, on a generated decode-heavy JPEG set; top-1 checked equal.

    python benchmarks/bench_input_pipeline.py [--images 600] [--batch-size 32] [--workers 1,2] [--repeats 3]
    python benchmarks/bench_input_pipeline.py --device cuda --images 3000 --width 768 --workers 1,4,8,15 --repeats 1
                                               # on a GPU machine: images/s at 224 px, pinned, overlapped copies

Everything runs in one process, alternating, median of repeats; ratios are what to read, not absolute rates.
The model idle share is 1 - (seconds in the model's forward) / (wall seconds of the loop).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def make_jpegs(root: Path, n: int) -> None:
    """``n`` 640x480 JPEGs (quality 92, ~100-150 KiB: smooth noise with shapes) in 12 class folders."""
    import numpy as np
    from PIL import Image, ImageDraw

    import tiny_models

    rng = np.random.default_rng(0)
    classes = [(c, s) for c in tiny_models.COLOURS for s in tiny_models.SHAPES][:12]
    for i in range(n):
        colour, shape = classes[i % len(classes)]
        noise = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
        img = Image.fromarray(noise).resize((640, 480), Image.BICUBIC)
        small = tiny_models.draw(colour, shape, size=240, jitter=i % 7)
        img.paste(small, (200, 120))
        ImageDraw.Draw(img).text((10, 10), f"{i}", fill=(255, 255, 255))
        folder = root / f"{colour} {shape}"
        folder.mkdir(parents=True, exist_ok=True)
        img.save(folder / f"{i:05d}.jpg", quality=92)


def make_model(root: Path, width: int) -> Path:
    """A random CLIP (ViT at 224 px, patch 32)."""
    import tiny_models

    return tiny_models.make_tiny_clip(root / "model", image_size=224, width=width, heads=4, vision_layers=4,
                                      patch=32, projection=64)


def task_and_model(model_dir: Path, data: Path, tasks: Path):
    from mmbench.adapters import load_model
    from mmbench.specs import ModelSpec
    from mmbench.tasks.base import TaskContext
    from mmbench.tasks.catalog import TaskCatalog, build_task

    adapter = load_model(ModelSpec("hf-clip", {"pretrained": str(model_dir), "device": "cpu"}))
    task = build_task(TaskCatalog([tasks]).task_spec("bench-zeroshot"), TaskContext(data_dir=data))
    return adapter, task


def pipeline_alone(adapter, task, batch_size: int, workers: int) -> float:
    """Images/s of prepared_batches alone (decode + preprocess, no model)."""
    from mmbench.batching import BatchSizer
    from mmbench.execution import prepared_batches

    items = task.items()
    start = time.perf_counter()
    n = sum(len(b.items) for b in prepared_batches(task, adapter, items, BatchSizer(size=batch_size), 1, workers))
    return n / (time.perf_counter() - start)


def mmbench_run(model_dir: Path, data: Path, tasks: Path, out: Path, batch_size: int, workers: int, threads: int,
                device: str = "cpu"):
    from mmbench.runner import Runner
    from mmbench.specs import ModelSpec, RunOptions, RunSpec
    from mmbench.tasks.catalog import TaskCatalog

    options = RunOptions(batch_size=batch_size, data_dir=data, output_dir=out, cache=False, show_progress=False,
                         num_workers=workers, threads=threads)
    spec = RunSpec(models=(ModelSpec("hf-clip", {"pretrained": str(model_dir), "device": device}),),
                   tasks=(TaskCatalog([tasks]).task_spec("bench-zeroshot"),), options=options)
    start = time.perf_counter()
    run, _ = Runner(options).run(spec)
    wall = time.perf_counter() - start
    result = run.results[0]
    n = result.n_items
    loop_wall = n / result.throughput.items_per_s
    return wall, result.value("top1"), 1 - result.throughput.model_seconds / loop_wall


class Folder:
    """A map-style dataset for the DataLoader reference: (pixel_values, label) per JPEG, the HF processor's
    preprocessing (the same as hf-clip's)."""

    def __init__(self, root: Path, processor) -> None:
        classes = sorted(d.name for d in root.iterdir())
        self.files = [(f, i) for i, c in enumerate(classes) for f in sorted((root / c).iterdir())]
        self.processor = processor

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from PIL import Image

        path, label = self.files[i]
        with Image.open(path) as im:
            pix = self.processor(images=im.convert("RGB"), return_tensors="pt")["pixel_values"][0]
        return pix, label


def dataloader_run(model_dir: Path, data: Path, batch_size: int, workers: int, threads: int, device: str = "cpu"):
    """CLIP_benchmark's loop: DataLoader(num_workers) + the model in the main process, class prompts averaged."""
    import torch
    from transformers import AutoModel, AutoProcessor

    torch.set_num_threads(threads)
    start = time.perf_counter()
    model = AutoModel.from_pretrained(model_dir).eval().to(device)
    proc = AutoProcessor.from_pretrained(model_dir)
    dataset = Folder(data / "jpegs", proc.image_processor)
    classes = sorted(d.name for d in (data / "jpegs").iterdir())
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                                         pin_memory=device.startswith("cuda"))
    model_s = 0.0
    with torch.inference_mode():
        texts = [t.replace("{c}", c) for c in classes for t in ("a photo of a {c}.", "a {c}.")]
        tok = {k: v.to(device) for k, v in proc.tokenizer(texts, padding=True, return_tensors="pt").items()}
        txt = model.get_text_features(**tok).pooler_output
        txt = torch.nn.functional.normalize(txt, dim=-1).reshape(len(classes), 2, -1).mean(1)
        txt = torch.nn.functional.normalize(txt, dim=-1)
        correct, loop_start = 0, time.perf_counter()
        for pix, labels in loader:
            t0 = time.perf_counter()
            pix = pix.to(device, non_blocking=True)
            emb = torch.nn.functional.normalize(model.get_image_features(pixel_values=pix).pooler_output, dim=-1)
            correct += int(((emb @ txt.T).argmax(1).cpu() == labels).sum())
            model_s += time.perf_counter() - t0
        loop = time.perf_counter() - loop_start
    return time.perf_counter() - start, correct / len(dataset), 1 - model_s / loop


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--width", type=int, default=256, help="hidden size of the random CLIP (ViT, 224 px, patch 32)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", default="1,2", help="worker counts to measure")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine")
    args = ap.parse_args()
    from mmbench.execution import usable_cores

    cores = usable_cores()
    counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_jpegs(root / "data" / "jpegs", args.images)
        size = sum(f.stat().st_size for f in (root / "data" / "jpegs").rglob("*.jpg")) / args.images / 1024
        model_dir = make_model(root, args.width)
        tasks = root / "tasks"
        tasks.mkdir()
        (tasks / "bench.yaml").write_text("task: bench-zeroshot\nkind: zeroshot-classification\n"
                                          "data: {format: imagefolder, root: jpegs}\n"
                                          "templates: ['a photo of a {c}.', 'a {c}.']\n")
        adapter, task = task_and_model(model_dir, root / "data", tasks)
        torch.set_num_threads(1)
        print(f"{args.images} JPEGs 640x480 (mean {size:.0f} KiB), random CLIP width {args.width} at 224 px, batch "
              f"{args.batch_size}, {cores} usable cores, median of {args.repeats}")
        pipe = {w: statistics.median(pipeline_alone(adapter, task, args.batch_size, w) for _ in range(args.repeats))
                for w in counts}
        print("\npreparation alone (decode + CLIP preprocessing, no model):")
        for w in counts:
            print(f"  {w} thread(s): {pipe[w]:7.1f} images/s  ({pipe[w] / pipe[counts[0]]:.2f}x one thread)")
        from mmbench.execution import plan_threads

        gpu = args.device.startswith("cuda")
        plan = plan_threads(None, None, gpu, True, torch.get_num_threads(), cores)
        print(f"\nwhole zero-shot run (cache off; mmbench's default plan: {plan.describe()}) vs a DataLoader loop "
              f"(CLIP_benchmark's: worker processes decode, the model runs in the main process):")
        refs = [(plan.workers, plan.torch_threads, "same workers and torch threads"),
                (2, cores, "CLIP_benchmark's usual --workers 2, torch's default threads")]
        rows = []
        for r in range(args.repeats):
            t_mm, acc_mm, idle_mm = mmbench_run(model_dir, root / "data", tasks, root / f"o{r}", args.batch_size,
                                                None, None, args.device)
            row = [t_mm, idle_mm]
            for w, threads, _ in refs:
                t_ref, acc_ref, idle_ref = dataloader_run(root / "model", root / "data", args.batch_size, w, threads,
                                                          args.device)
                assert abs(acc_ref - acc_mm) < 1e-12, (acc_ref, acc_mm)
                row += [t_ref, idle_ref]
            rows.append(row)
        med = [statistics.median(c) for c in zip(*rows)]
        print(f"  mmbench {med[0]:6.2f} s = {args.images / med[0]:.0f} images/s end to end (model idle {med[1]:.0%}); "
              f"top-1 {acc_mm:.4f} in every run")
        for i, (w, threads, what) in enumerate(refs):
            t_ref, idle_ref = med[2 + 2 * i], med[3 + 2 * i]
            print(f"  DataLoader({w} workers), {threads} torch thread(s) ({what}): {t_ref:6.2f} s (model idle "
                  f"{idle_ref:.0%}): mmbench {t_ref / med[0]:.2f}x")


if __name__ == "__main__":
    main()
