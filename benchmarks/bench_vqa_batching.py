"""VQA throughput on mini-vqa: `mmbench run` at several batch sizes against a one-question-at-a-time loop over the
same model (the way VLMEvalKit runs: processor + generate per question), in one process, same questions.

    python benchmarks/bench_vqa_batching.py [--items 1228] [--model mini-llava] [--batch-sizes 1,8,32]

Uses mini-llava when it is installed, else a tiny random LLaVA built from a config (then say so when quoting
numbers). The loops outside mmbench read mini-vqa's questions and images as bench_scale.mini_vqa_export writes
them (lossless PNGs), with the task's prompt. Reported: items/s of the evaluation (model load excluded on both
sides; medians of alternating rounds) and the ratio to the one-at-a-time loop; the answers are checked
identical across all rows. The bare batched loop (processor + generate in batches of 32 in the data's order, no
runner) is naive batching; mmbench's batches also group prompts of equal length (less padding).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from bench_scale import mini_vqa_export, model_spec  # noqa: E402


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
    ap.add_argument("--items", type=int, default=1228, help="the first N of mini-vqa's 1228 questions")
    ap.add_argument("--model", default="mini-llava")
    ap.add_argument("--batch-sizes", default="1,8,32", help="mmbench run's batch sizes to measure")
    ap.add_argument("--repeats", type=int, default=3, help="rounds, each row once per round; medians reported")
    args = ap.parse_args()
    from mmbench.adapters import load_model
    from mmbench.runner import Runner
    from mmbench.specs import ModelSpec, RunOptions, RunSpec, parse_kv_args
    from mmbench.tasks.catalog import TaskCatalog

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data, items = mini_vqa_export(root / "data", args.items)
        n = len(items)
        model, margs = model_spec(args, root)
        spec = ModelSpec(model, parse_kv_args(margs))
        task = TaskCatalog().task_spec("mini-vqa")
        sizes = [int(b) for b in args.batch_sizes.split(",")]

        def mmbench(bs: int, out: str) -> tuple[float, list]:
            opts = RunOptions(batch_size=bs, limit=n, output_dir=root / out, cache=False, show_progress=False)
            run, run_dir = Runner(opts).run(RunSpec(models=(spec,), tasks=(task,), options=opts))
            result = run.results[0]
            answers = {json.loads(x)["id"]: json.loads(x)["generation"]
                       for x in (run_dir / result.files["samples"]).read_text().splitlines()}
            return result.throughput.items_per_s, [answers.get(it["id"]) for it in items]

        adapter = load_model(spec)
        device = adapter.model.device
        one_at_a_time(adapter, data, 8)  # warm-up
        bare_batched(adapter, data, 8)
        speeds: dict[str, list[float]] = {}
        same: dict[str, bool] = {}
        base_answers: list = []
        for r in range(args.repeats):  # alternating rows, so the machine's drift reaches every row alike
            seconds, base_answers = one_at_a_time(adapter, data, 8)
            speeds.setdefault("one at a time (HF processor + generate)", []).append(n / seconds)
            seconds, answers = bare_batched(adapter, data, 8)
            name = "bare batched generate, batch 32"
            speeds.setdefault(name, []).append(n / seconds)
            same[name] = same.get(name, True) and answers == base_answers
            for bs in sizes:
                ips, answers = mmbench(bs, f"r{r}bs{bs}")
                name = f"mmbench run, batch size {bs}"
                speeds.setdefault(name, []).append(ips)
                same[name] = same.get(name, True) and answers == base_answers
        adapter.close()
    base = statistics.median(speeds["one at a time (HF processor + generate)"])
    print(f"mini-vqa, {n} questions, {model} on {device}, greedy, max 8 new tokens, same process, median of "
          f"{args.repeats} alternating rounds")
    print(f"{'':42s}{'items/s':>9s}{'ratio':>8s}  same answers")
    for name, values in speeds.items():
        ips = statistics.median(values)
        print(f"{name:42s}{ips:9.1f}{ips / base:8.2f}  {same.get(name, True)}")


if __name__ == "__main__":
    main()
