"""Runner overhead: wall time of `mmbench run` (in-process Runner) over a plain loop calling the same model
on the same data, as a ratio measured in one process (alternating, median of repeats).

    python benchmarks/bench_runner_overhead.py [--images 480] [--batch-size 32] [--repeats 3]

The plain loop is what a user would write: open each image, run the CLIP processor, get_image_features,
cosine against the class prompts, top-1. mmbench adds: the registry, the task file, the per-item cache
(SQLite writes per batch), sample logs, item statistics, the results store and provenance.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def build(root: Path, n_images: int, width: int) -> tuple[Path, Path, Path]:
    import tiny_models

    model_dir = tiny_models.make_tiny_clip(root / "model", image_size=64, width=width, heads=4, text_layers=4,
                                           vision_layers=4, patch=8, projection=64)
    per_class = max(1, n_images // 12)
    tiny_models.make_imagefolder(root / "data" / "shapes", per_class=per_class)
    tasks = root / "tasks"
    tasks.mkdir()
    (tasks / "bench.yaml").write_text("task: bench-zeroshot\nkind: zeroshot-classification\n"
                                      "data: {format: imagefolder, root: shapes}\n"
                                      "templates: ['a photo of a {c}.', 'a {c}.']\n")
    return model_dir, root / "data", tasks


def plain_loop(model_dir: Path, data: Path, batch_size: int) -> tuple[float, float]:
    import torch
    from PIL import Image
    from transformers import AutoModel, AutoProcessor

    start = time.perf_counter()
    model = AutoModel.from_pretrained(model_dir).eval()
    proc = AutoProcessor.from_pretrained(model_dir)
    classes = sorted(d.name for d in (data / "shapes").iterdir())
    files = [(f, i) for i, c in enumerate(classes) for f in sorted((data / "shapes" / c).glob("*.png"))]
    with torch.inference_mode():
        texts = [t.replace("{c}", c) for c in classes for t in ("a photo of a {c}.", "a {c}.")]
        tok = proc.tokenizer(texts, padding=True, return_tensors="pt")
        txt = model.get_text_features(**tok).pooler_output
        txt = torch.nn.functional.normalize(txt, dim=-1).reshape(len(classes), 2, -1).mean(1)
        txt = torch.nn.functional.normalize(txt, dim=-1)
        correct = 0
        for s in range(0, len(files), batch_size):
            chunk = files[s:s + batch_size]
            images = [Image.open(f).convert("RGB") for f, _ in chunk]
            pix = proc.image_processor(images=images, return_tensors="pt")["pixel_values"]
            emb = torch.nn.functional.normalize(model.get_image_features(pixel_values=pix).pooler_output, dim=-1)
            pred = (emb @ txt.T).argmax(1)
            correct += sum(int(p) == lab for p, (_, lab) in zip(pred, chunk))
    return time.perf_counter() - start, correct / len(files)


def mmbench_run(model_dir: Path, data: Path, tasks: Path, out: Path, batch_size: int, cache: bool) -> tuple[float, float]:
    from mmbench.runner import Runner
    from mmbench.specs import ModelSpec, RunOptions, RunSpec
    from mmbench.tasks.catalog import TaskCatalog

    start = time.perf_counter()
    options = RunOptions(batch_size=batch_size, data_dir=data, output_dir=out, cache=cache, show_progress=False)
    spec = RunSpec(models=(ModelSpec("hf-clip", {"pretrained": str(model_dir)}),),
                   tasks=(TaskCatalog([tasks]).task_spec("bench-zeroshot"),), options=options)
    run, _ = Runner(options).run(spec)
    return time.perf_counter() - start, run.results[0].value("top1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=480)
    ap.add_argument("--width", type=int, default=256, help="hidden size of the random CLIP")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir, data, tasks = build(root, args.images, args.width)
        plain_loop(model_dir, data, args.batch_size)  # warm-up (imports, file cache)
        rows = []
        for r in range(args.repeats):
            t_plain, acc_plain = plain_loop(model_dir, data, args.batch_size)
            t_nocache, acc_a = mmbench_run(model_dir, data, tasks, root / f"o{r}", args.batch_size, cache=False)
            t_cache, acc_b = mmbench_run(model_dir, data, tasks, root / f"c{r}", args.batch_size, cache=True)
            assert acc_plain == acc_a == acc_b, (acc_plain, acc_a, acc_b)
            rows.append((t_plain, t_nocache, t_cache))
        med = [statistics.median(col) for col in zip(*rows)]
        n = len(list((data / "shapes").rglob("*.png")))
        print(f"runner overhead, {n} images, random CLIP width {args.width} at 64 px, batch {args.batch_size}, "
              f"median of {args.repeats} (same process, alternating); top-1 equal in all: {acc_plain:.4f}")
        print(f"{'':32s}{'wall s':>10s}{'items/s':>10s}{'ratio':>8s}")
        for name, t in (("plain loop", med[0]), ("mmbench run, no cache", med[1]), ("mmbench run, cache on", med[2])):
            print(f"{name:32s}{t:10.2f}{n / t:10.1f}{t / med[0]:8.3f}")


if __name__ == "__main__":
    main()
