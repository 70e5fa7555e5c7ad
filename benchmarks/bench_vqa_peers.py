"""VQA against lmms-eval: mini-vqa through lmms-eval's `llava_hf` (its enforced batch 1) and through `mmbench run`
(the task's batch 32), in one process, on the same model, answers checked identical.

    <python with lmms-eval>  benchmarks/bench_vqa_peers.py [--items 1228] [--model mini-llava]

lmms-eval needs torchvision, so run this with the vision environment's Python (torch 2.14.1 + torchvision 0.29.1,
`pip install lmms-eval==0.7.3 decord 'filelock<4' -e .` there: its llava_hf imports decord, its evaluator
filelock._api, gone in filelock 4). mini-vqa's questions (the first --items) and images are written out as a
JSONL file and lossless PNGs for an lmms-eval task file; mmbench runs the built-in `mini-vqa` task itself. Both
send the same prompt ("<question>\nAnswer the question using a single word or phrase." in the model's chat
template), greedy, at most 8 new tokens. Timed: lmms-eval's `simple_evaluate` with the model already built (task
building, its generate loop, scoring), and mmbench's whole `Runner.run` (model load, preparation, generation,
scoring and the results files): the ratio leans against mmbench. Each side runs once before it is timed;
the rounds alternate the two and the medians are reported (answers compared in every round).
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

POST_PROMPT = "\nAnswer the question using a single word or phrase."

# The lmms-eval task over the same JSONL: its own YAML format, loaded through --include_path's Python API.
TASK_YAML = """task: mmbench_peer_vqa
dataset_path: json
dataset_kwargs:
  data_files:
    test: {jsonl}
test_split: test
output_type: generate_until
doc_to_visual: !function peer_utils.doc_to_visual
doc_to_text: !function peer_utils.doc_to_text
doc_to_target: "question"
generation_kwargs:
  max_new_tokens: 8
  temperature: 0
  do_sample: false
process_results: !function peer_utils.process_results
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  - version: 0.0
"""

TASK_UTILS = """from PIL import Image

ROOT = {root!r}


def doc_to_visual(doc):
    return [Image.open(ROOT + "/" + doc["image"]).convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return doc["question"] + {post!r}


def process_results(doc, results):
    return {{"exact_match": float(results[0].strip() == doc["answers"][0])}}
"""


def lmms_eval_answers(model_folder: Path, data: Path, limit: int | None = None) -> tuple[float, float, list[str]]:
    """(seconds of lmms-eval's simple_evaluate over the set with the model built beforehand, seconds of its
    generation loop alone (the model's generate_until), its answers in item order)."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.models import get_model
    from lmms_eval.tasks import TaskManager

    tasks = data / "lmms_tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "mmbench_peer_vqa.yaml").write_text(TASK_YAML.format(jsonl=data / "vqa.jsonl"))
    (tasks / "peer_utils.py").write_text(TASK_UTILS.format(root=str(data), post=POST_PROMPT))
    lm = get_model("llava_hf").create_from_arg_string(
        f"pretrained={model_folder},device=cpu,device_map=cpu,dtype=float32")
    manager = TaskManager(include_path=str(tasks), verbosity="ERROR")
    loop = [0.0]
    generate_until = lm.generate_until

    def timed_generate_until(requests):
        begin = time.perf_counter()
        try:
            return generate_until(requests)
        finally:
            loop[0] += time.perf_counter() - begin

    lm.generate_until = timed_generate_until
    start = time.perf_counter()
    out = simple_evaluate(model=lm, tasks=["mmbench_peer_vqa"], task_manager=manager, batch_size=1, device="cpu",
                          log_samples=True, bootstrap_iters=0, limit=limit, verbosity="ERROR")
    seconds = time.perf_counter() - start
    samples = sorted(out["samples"]["mmbench_peer_vqa"], key=lambda s: s["doc_id"])
    answers = [s["filtered_resps"][0] if isinstance(s["filtered_resps"], list) else s["filtered_resps"]
               for s in samples]
    return seconds, loop[0], [a.strip() for a in answers]


def mmbench_answers(spec, task, out: Path, limit: int) -> tuple[float, float, dict[str, str]]:
    """(seconds of the whole Runner.run, items/s its results report, {item id: answer})."""
    from mmbench.runner import Runner
    from mmbench.specs import RunOptions, RunSpec

    opts = RunOptions(limit=limit, output_dir=out, cache=False, show_progress=False)
    start = time.perf_counter()
    run, run_dir = Runner(opts).run(RunSpec(models=(spec,), tasks=(task,), options=opts))
    seconds = time.perf_counter() - start
    result = run.results[0]
    rows = [json.loads(x) for x in (run_dir / result.files["samples"]).read_text().splitlines()]
    return seconds, result.throughput.items_per_s, {r["id"]: r["generation"] for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1228, help="the first N of mini-vqa's 1228 questions")
    ap.add_argument("--model", default="mini-llava")
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds; medians reported")
    args = ap.parse_args()
    from importlib.metadata import version

    import lmms_eval  # noqa: F401  (fail before any work when the environment lacks it)
    import torch

    from mmbench.mini.zoo import model_dir
    from mmbench.specs import ModelSpec, parse_kv_args
    from mmbench.tasks.catalog import TaskCatalog

    task = TaskCatalog().task_spec("mini-vqa")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data, items = mini_vqa_export(root / "data", args.items)
        model, margs = model_spec(args, root)
        kv = parse_kv_args(margs)
        folder = Path(kv.get("pretrained") or model_dir(model))
        spec = ModelSpec(model, kv)
        lmms_eval_answers(folder, data, limit=8)  # warm-up
        mmbench_answers(spec, task, root / "warm", args.items)
        rounds = []
        for r in range(args.repeats):  # alternating, so the machine's drift reaches both sides alike
            peer_s, peer_loop_s, peer = lmms_eval_answers(folder, data)
            ours_s, ours_ips, ours = mmbench_answers(spec, task, root / f"timed{r}", args.items)
            same = sum(a == ours.get(it["id"]) for a, it in zip(peer, items))
            rounds.append((peer_s, peer_loop_s, ours_s, ours_ips, same))
    peer_s, peer_loop_s, ours_s, ours_ips = (statistics.median(c) for c in list(zip(*rounds))[:4])
    n = len(items)
    same = min(r[4] for r in rounds)  # the fewest identical answers of any round
    print(f"mini-vqa, {n} questions, {model}, greedy, max 8 new tokens, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), one process, median of {args.repeats} alternating rounds")
    print(f"  lmms-eval {version('lmms-eval')} llava_hf, batch 1 (simple_evaluate, model prebuilt): {peer_s:7.2f} s  "
          f"{n / peer_s:7.1f} items/s")
    print(f"  mmbench run, batch 32 (whole Runner.run, model load included):  {ours_s:7.2f} s  {n / ours_s:7.1f} "
          f"items/s  (its results say {ours_ips:.1f} items/s)")
    print(f"  ratio, whole evaluation (lmms-eval seconds / mmbench seconds): {peer_s / ours_s:.2f}x")
    print(f"  ratio, generation loops alone (lmms-eval's generate_until {n / peer_loop_s:.1f} items/s, "
          f"mmbench's evaluation loop {ours_ips:.1f} items/s): {ours_ips * peer_loop_s / n:.2f}x")
    print(f"  identical answers: {same}/{n}")


if __name__ == "__main__":
    main()
