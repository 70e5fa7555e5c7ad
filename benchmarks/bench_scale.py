"""Scale-out throughput, measured in one session on the same machine:

1. items/s of `mmbench run` on a VQA task with 1 process and with 2 processes (torchrun, gloo on CPU);
2. items/s of the served-model adapter against `mmbench serve` on 127.0.0.1 at concurrency 1, 4 and 16,
   next to the same model in process.

    python benchmarks/bench_scale.py [--items 96] [--model mini-llava]

Uses mini-llava when it is installed, else a tiny random LLaVA built from a config (then say so when
quoting numbers). Ratios matter, not absolute numbers: the machine's other load moves both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def vqa_task(root: Path, n: int) -> tuple[Path, Path]:
    import tiny_models

    rows = []
    combos = [(c, s) for c in tiny_models.COLOURS for s in tiny_models.SHAPES]
    for i in range(n):
        colour, shape = combos[i % len(combos)]
        tiny_models.draw(colour, shape, jitter=i % 7).save(root / f"i{i}.png")
        rows.append({"id": f"q{i}", "image": f"i{i}.png", "question": f"what color is the {shape}?",
                     "answers": [colour] * 10})
    (root / "vqa.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n")
    tasks = root / "tasks"
    tasks.mkdir()
    (tasks / "b.yaml").write_text("task: bench-vqa\nkind: vqa\nmax_new_tokens: 8\ndata: {format: jsonl, path: vqa.jsonl}\n")
    return root, tasks


def mini_vqa_export(root: Path, n: int | None = None) -> tuple[Path, list[dict]]:
    """The first ``n`` of mini-vqa's questions written out for loops outside mmbench: ``root/vqa.jsonl`` (id,
    image file, question, answers) and lossless PNGs (the same pixels the task hands the model). Returns
    (root, the task's items)."""
    from mmbench.data.images import load_image
    from mmbench.tasks.base import TaskContext
    from mmbench.tasks.catalog import TaskCatalog, build_task

    items = build_task(TaskCatalog().task_spec("mini-vqa"), TaskContext()).items()[:n]
    (root / "images").mkdir(parents=True)
    rows = []
    for it in items:
        name = f"images/{it['image_id']}.png"
        if not (root / name).exists():
            load_image(it["image"]).save(root / name)
        rows.append({"id": it["id"], "image": name, "question": it["question"], "answers": it["answers"]})
    (root / "vqa.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n")
    return root, items


def model_spec(args, root: Path) -> tuple[str, str]:
    from mmbench.mini.zoo import model_dir

    if args.model == "mini-llava" and Path(model_dir("mini-llava")).is_dir():
        return "mini-llava", ""
    import tiny_vlms

    folder = tiny_vlms.make_tiny_llava(root / "tiny-llava")
    print("mini-llava not installed: using a tiny random LLaVA")
    return "hf-llava", f"pretrained={folder}"


def timed_run(cmd: list[str], env: dict, out: Path) -> tuple[float, float]:
    """(wall time of the whole command, items/s of the evaluation itself from its results.json)."""
    from mmbench.results import RunResult

    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    run = RunResult.read(next(p for p in out.iterdir() if p.is_dir()))
    return wall, run.results[0].throughput.items_per_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=96)
    ap.add_argument("--model", default="mini-llava")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data, tasks = vqa_task(root, args.items)
        model, margs = model_spec(args, root)
        base = ["run", "--model", model, "--tasks", "bench-vqa", "--include-path", str(tasks), "--data-dir", str(data),
                "--no-progress", "--no-cache", "--batch-size", "8"] + (["--model-args", margs] if margs else [])
        env = dict(os.environ)
        one, one_ips = timed_run([sys.executable, "-m", "mmbench", *base, "--output-dir", str(root / "o1")], env,
                                 root / "o1")
        # torchrun gives each of the 2 processes one thread (OMP_NUM_THREADS=1), so they share the cores
        two, two_ips = timed_run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                                  "-m", "mmbench", *base, "--output-dir", str(root / "o2")], env, root / "o2")
        print(f"data parallel, {args.items} VQA items, {model}: items/s of the evaluation (results.json), and the "
              f"wall time of the whole command (start-up and model load included)")
        print(f"  1 process  : {one_ips:6.1f} items/s   command {one:6.2f} s")
        print(f"  2 processes: {two_ips:6.1f} items/s   command {two:6.2f} s   evaluation speed-up x{two_ips / one_ips:.2f}")

        import torch

        from mmbench.adapters import load_model
        from mmbench.runner import Runner
        from mmbench.serve import ServeOptions, make_server
        from mmbench.specs import ModelSpec, RunOptions, RunSpec, parse_kv_args
        from mmbench.tasks.catalog import TaskCatalog

        torch.set_num_threads(2)
        spec = ModelSpec(model, parse_kv_args(margs))
        server = make_server(load_model(spec), ServeOptions(port=0, max_batch=16), "bench")
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        task = TaskCatalog([tasks]).task_spec("bench-vqa")

        def run_with(mspec: ModelSpec, out: str) -> float:
            opts = RunOptions(batch_size=16, data_dir=data, output_dir=root / out, cache=False, show_progress=False)
            run, _ = Runner(opts).run(RunSpec(models=(mspec,), tasks=(task,), options=opts))
            return run.results[0].throughput.items_per_s

        run_with(spec, "warmup")  # first calls pay one-time costs; measure the second
        local = run_with(spec, "local")
        print("served model (OpenAI-compatible API on 127.0.0.1, server batches up to 16 requests)")
        print(f"  in process          : {local:6.1f} items/s")
        for c in (1, 4, 16):
            ips = run_with(ModelSpec("openai-chat", {"base_url": url, "max_concurrency": str(c)}), f"served{c}")
            print(f"  served, concurrency {c:2d}: {ips:6.1f} items/s  ({ips / local:.2f} of in-process)")
        server.shutdown()
        server.worker.stop()


if __name__ == "__main__":
    main()
