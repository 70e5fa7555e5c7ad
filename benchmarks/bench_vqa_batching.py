"""VQA throughput: `mmbench run` at batch sizes 1, 8 and 32 against a one-item-at-a-time loop over the same
model (the way VLMEvalKit runs: processor + generate per question), in one process, same questions.

    python benchmarks/bench_vqa_batching.py [--items 128] [--model mini-llava]

Uses mini-llava when it is installed, else a tiny random LLaVA built from a config (then say so when
quoting numbers). Reported: items/s of the evaluation (model load excluded on both sides) and the ratio to
the one-at-a-time loop; the predictions are checked to be identical across all five. The bare batched loop
(processor + generate in batches of 32, no runner) is the ceiling batching can reach on this model: what the
one-at-a-time loop spends beyond it is overhead batching removes, the rest is the model's compute.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from bench_scale import model_spec, vqa_task  # noqa: E402


def one_at_a_time(adapter, data: Path, max_new_tokens: int) -> tuple[float, list[str]]:
    """The baseline: for each question, apply the chat template, run the processor and generate alone."""
    from PIL import Image

    model, processor, torch = adapter.model, adapter.processor, adapter.torch
    rows = [json.loads(line) for line in (data / "vqa.jsonl").read_text().splitlines()]
    answers = []
    start = time.perf_counter()
    for row in rows:
        prompt = f"{row['question']}\nAnswer the question using a single word or phrase."
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = processor(images=[Image.open(data / row["image"]).convert("RGB")], text=[text],
                           return_tensors="pt").to(model.device)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        answers.append(processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return time.perf_counter() - start, answers


def bare_batched(adapter, data: Path, max_new_tokens: int, batch_size: int = 32) -> tuple[float, list[str]]:
    """The ceiling of batching: processor + generate over batches of ``batch_size`` (left padding), no runner.
    The gap between mmbench's batch-32 run and this is everything the runner adds; the gap between this and the
    one-at-a-time loop is what batching can save at all (the rest is the model's own compute)."""
    from PIL import Image

    model, processor, torch = adapter.model, adapter.processor, adapter.torch
    processor.tokenizer.padding_side = "left"
    rows = [json.loads(line) for line in (data / "vqa.jsonl").read_text().splitlines()]
    answers = []
    start = time.perf_counter()
    for i in range(0, len(rows), batch_size):
        chunk = rows[i:i + batch_size]
        texts = [processor.apply_chat_template([{"role": "user", "content": [
            {"type": "image"}, {"type": "text", "text": f"{r['question']}\nAnswer the question using a single word or "
                                                         f"phrase."}]}], add_generation_prompt=True) for r in chunk]
        images = [[Image.open(data / r["image"]).convert("RGB")] for r in chunk]
        inputs = processor(images=images, text=texts, return_tensors="pt", padding=True).to(model.device)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        answers += [a.strip() for a in processor.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:],
                                                                        skip_special_tokens=True)]
    return time.perf_counter() - start, answers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=128)
    ap.add_argument("--model", default="mini-llava")
    ap.add_argument("--batch-sizes", default="1,8,32", help="mmbench run's batch sizes to measure")
    args = ap.parse_args()
    from mmbench.adapters import load_model
    from mmbench.runner import Runner
    from mmbench.specs import ModelSpec, RunOptions, RunSpec, parse_kv_args
    from mmbench.tasks.catalog import TaskCatalog

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data, tasks = vqa_task(root, args.items)
        model, margs = model_spec(args, root)
        spec = ModelSpec(model, parse_kv_args(margs))
        task = TaskCatalog([tasks]).task_spec("bench-vqa")
        adapter = load_model(spec)
        one_at_a_time(adapter, data, 8)  # warm-up
        base_s, base_answers = one_at_a_time(adapter, data, 8)
        bare_batched(adapter, data, 8)  # warm-up
        bare_s, bare_answers = bare_batched(adapter, data, 8)
        device = adapter.model.device
        adapter.close()
        rows = [("one at a time (HF processor + generate)", args.items / base_s, 1.0, True),
                ("bare batched generate, batch 32 (ceiling)", args.items / bare_s, base_s / bare_s,
                 bare_answers == base_answers)]
        for bs in map(int, args.batch_sizes.split(",")):
            opts = RunOptions(batch_size=bs, data_dir=data, output_dir=root / f"bs{bs}", cache=False,
                              show_progress=False)
            run, run_dir = Runner(opts).run(RunSpec(models=(spec,), tasks=(task,), options=opts))
            result = run.results[0]
            answers = {json.loads(x)["id"]: json.loads(x)["generation"]
                       for x in (run_dir / result.files["samples"]).read_text().splitlines()}
            same = [answers[f"q{i}"] for i in range(args.items)] == base_answers
            ips = result.throughput.items_per_s
            rows.append((f"mmbench run, batch size {bs}", ips, ips * base_s / args.items, same))
        print(f"VQA throughput, {args.items} questions, {model} on {device}, greedy, max 8 new tokens, "
              f"same process")
        print(f"{'':42s}{'items/s':>9s}{'ratio':>8s}  same answers")
        for name, ips, ratio, same in rows:
            print(f"{name:42s}{ips:9.1f}{ratio:8.2f}  {same}")


if __name__ == "__main__":
    main()
