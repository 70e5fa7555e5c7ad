"""``mmbench mini check RUN``: does a run of the mini suite reproduce the scores on the shipped model cards?

The mini models, data and scoring are deterministic, so every card score (written by ``mmbench mini train``
from the same evaluation the runner does) must come out of a default ``mmbench run`` exactly, to the digits
the card gives. CI runs this after the default run: a changed score is a failed build, not a surprise in
the next leaderboard.
"""

from __future__ import annotations

import re
from pathlib import Path

from mmbench.errors import MMBenchError
from mmbench.files import read_json
from mmbench.mini.zoo import model_dir
from mmbench.results import RunResult

# card score key -> (task, metric) per model; generation cards give "task (guidance g)": "fid=.., kid=.."
CARD_METRICS = {
    "mini-clip": {"zeroshot_top1": ("mini-zeroshot", "top1"),
                  **{f"{d}_recall@{k}": ("mini-retrieval", f"{d}_R@{k}") for d in ("t2i", "i2t") for k in (1, 5, 10)}},
    **{m: {"vqa_accuracy": ("mini-vqa", "vqa_accuracy"), "cider": ("mini-captions", "CIDEr-D"),
           "pope_f1": ("mini-pope", "pope_f1[mean over category]"), "mc_accuracy": ("mini-mc", "mc_accuracy")}
       for m in ("mini-llava", "mini-flamingo", "mini-blip2", "mini-llava-blind")},
    "mini-video": {"exact_match": ("mini-motion", "exact_match"),
                   "exact_match_1frame": ("mini-motion-1frame", "exact_match"),
                   **{f"probe.{k}": ("probe:mini-motion", k) for k in ("temporal_reliance",
                                                                        "relative_temporal_reliance")}},
}
GENERATION_METRICS = ("fid", "kid", "clip_score")
# The quality bars the zoo was trained to (README): (model, task, metric) -> minimum on the full test split
BARS = {("mini-clip", "mini-zeroshot", "top1"): 0.85, ("mini-clip", "mini-retrieval", "t2i_R@5"): 0.6,
        **{(m, "mini-vqa", "vqa_accuracy"): 0.6 for m in ("mini-llava", "mini-flamingo")},
        **{(m, "mini-captions", "CIDEr-D"): 0.5 for m in ("mini-llava", "mini-flamingo")},
        **{(m, "mini-mc", "mc_accuracy"): 0.45 for m in ("mini-llava", "mini-flamingo")},
        # well above any single-frame answer (the best possible from the first frame is 0.27: mini/motion.py)
        ("mini-video", "mini-motion", "exact_match"): 0.6}
# mini-llava-blind's score is at least this far below both bridges' (task, metric) -> margin
BLIND_MARGINS = {("mini-vqa", "vqa_accuracy"): 0.2, ("mini-mc", "mc_accuracy"): 0.15}


def check_bars(values: dict) -> list[str]:
    """The bars a run's computed scores must clear (only for the results the run has)."""
    problems = [f"{m} {t} {metric}: {values[(m, t, metric)]} is below the bar {bar}"
                for (m, t, metric), bar in BARS.items()
                if values.get((m, t, metric)) is not None and values[(m, t, metric)] < bar]
    for (task, metric), margin in BLIND_MARGINS.items():
        blind = values.get(("mini-llava-blind", task, metric))
        for m in ("mini-llava", "mini-flamingo"):
            seeing = values.get((m, task, metric))
            if blind is not None and seeing is not None and blind > seeing - margin:
                problems.append(f"mini-llava-blind {task} {metric} {blind} is not {margin} below {m}'s {seeing}")
    return problems


def card_expectations(model: str) -> list[tuple[str, str, str]]:
    """(task, metric, value as written on the card) for every checkable score of ``model``'s card."""
    scores = read_json(Path(model_dir(model)) / "card.json", f"model card of {model}").get("scores", {})
    def card_value(key: str):  # "probe.x": the key x of the card's "probe" section
        head, _, tail = key.partition(".")
        return scores.get(key) if not tail else (scores.get(head) or {}).get(tail)

    out = [(task, metric, str(card_value(key))) for key, (task, metric) in CARD_METRICS.get(model, {}).items()
           if card_value(key) is not None]
    for key, text in scores.items():
        m = re.match(r"^(mini-generation\S*) \(guidance", key)
        if m and isinstance(text, str):
            values = dict(part.strip().split("=", 1) for part in text.split(",") if "=" in part)
            out += [(m.group(1), name, values[name]) for name in GENERATION_METRICS if name in values]
    return out


def _digits(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def check_run(run: RunResult) -> tuple[list[str], int]:
    """(mismatch messages, number of card scores compared) for the run's results of the mini models."""
    values = {(r.model, r.task, m["name"]): m.get("value") for r in run.results for m in r.metrics}
    problems, compared = [], 0
    for model in sorted({r.model for r in run.results}):
        if not (model.startswith("mini-") and (Path(model_dir(model)) / "card.json").is_file()):
            continue
        for task, metric, expected in card_expectations(model):
            if not any(r.model == model and r.task == task for r in run.results):
                continue  # the run did not include this task
            got = values.get((model, task, metric))
            compared += 1
            if got is None or round(float(got), _digits(expected)) != float(expected):
                problems.append(f"{model} {task} {metric}: card {expected}, run {got}")
    return problems + check_bars(values), compared


def main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="mmbench mini check", description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a run folder, or an --output-dir (its newest run is checked)")
    args = p.parse_args(argv)
    folder = args.run
    if folder.is_dir() and not (folder / "results.json").exists():
        runs = sorted(d for d in folder.iterdir() if (d / "results.json").is_file())
        if not runs:
            raise MMBenchError(f"{folder} holds no run folder (no results.json); pass a run written by `mmbench run`")
        folder = runs[-1]
    problems, compared = check_run(RunResult.read(folder))
    if not compared:
        raise MMBenchError(f"run {folder} has no result of a mini model on a task its card scores")
    for line in problems:
        print(f"MISMATCH {line}")
    print(f"{compared - len(problems)} of {compared} model-card scores reproduced exactly by {folder}")
    return 1 if problems else 0
