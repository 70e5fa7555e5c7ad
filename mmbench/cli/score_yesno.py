"""``mmbench score pope`` and ``mmbench score mme``: POPE and MME answers made by any tool, scored under
the benchmarks' own rules (mmbench.metrics.yesno), read from the files their tools use."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from mmbench.errors import MMBenchError
from mmbench.metrics import yesno

POPE_CATEGORY = re.compile(r"pope_(random|popular|adversarial)")


def add_pope(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pope", help="POPE accuracy/precision/recall/F1/yes-ratio per category and their mean")
    p.add_argument("--predictions", type=Path, action="append", required=True,
                   help="answers JSONL ({question_id, text} as LLaVA writes, or {answer} as POPE's example); "
                        "repeat in the order of --references to pair files by position")
    p.add_argument("--references", type=Path, action="append", required=True,
                   help="POPE question files (coco_pope_<category>.json: {question_id, image, text, label}, one "
                        "object per line) or one file with a `category` field; repeatable")
    p.set_defaults(func=score_pope)


def _rows(path: Path, what: str) -> list[dict]:
    from mmbench.files import iter_jsonl

    return [row for _, row in iter_jsonl(path, what)]


def _answer(row: dict, path: Path, n: int) -> str:
    text = row.get("text", row.get("answer"))
    if not isinstance(text, str):
        raise MMBenchError(f"{path} line {n}: no answer text (`text` as LLaVA writes it, or `answer`)")
    return text


def pope_pairs(predictions: list[Path], references: list[Path]) -> tuple[list[str], list[dict]]:
    """(answers, targets): matched by question_id when every answer has one and they are unique within the
    references, else by position file by file (as POPE's evaluate.py pairs lines)."""
    refs: list[dict] = []
    for path in references:
        found = POPE_CATEGORY.search(path.name)
        for row in _rows(path, "POPE question file"):
            category = row.get("category") or (found.group(1) if found else None)
            refs.append({**row, "category": category, "_file": path})
    preds = [(row, path, n) for path in predictions for n, row in enumerate(_rows(path, "answers file"), 1)]
    ids = [r.get("question_id") for r in refs]
    by_id = len(set(map(str, ids))) == len(ids) and all(p.get("question_id") is not None for p, _, _ in preds)
    if by_id:
        index = {str(r["question_id"]): r for r in refs}
        missing = [str(p["question_id"]) for p, _, _ in preds if str(p["question_id"]) not in index]
        if missing:
            raise MMBenchError(f"answer question_id {missing[0]} is not in the question files; pass the files "
                               f"the answers were made for")
        answered = {str(p["question_id"]) for p, _, _ in preds}
        unanswered = [i for i in index if i not in answered]
        if unanswered:
            raise MMBenchError(f"{len(unanswered)} question(s) have no answer (first: question_id {unanswered[0]}); "
                               f"POPE scores every question of its files")
        return [_answer(p, path, n) for p, path, n in preds], [index[str(p["question_id"])] for p, _, _ in preds]
    if len(predictions) != len(references) and len(references) > 1:
        raise MMBenchError("question_ids repeat across the question files: give one --predictions file per "
                           "--references file, in the same order, to pair them by position")
    if len(preds) != len(refs):
        raise MMBenchError(f"{len(preds)} answers for {len(refs)} questions; POPE pairs them line by line")
    return [_answer(p, path, n) for p, path, n in preds], refs


def score_pope(args: argparse.Namespace) -> int:
    from mmbench.cli.score import emit
    from mmbench.metrics.choice_metrics import POPE

    answers, targets = pope_pairs(args.predictions, args.references)
    categorised = all(t.get("category") for t in targets)
    metric = POPE({"by": ["category"] if categorised else []}, where="score pope")
    metric.update(answers, [{"label": t.get("label"), **({"category": t["category"]} if categorised else {})}
                            for t in targets])
    report = metric.compute()
    return emit(report.values, {"n": len(answers), "notes": report.notes} if report.notes else {"n": len(answers)})


def add_mme(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mme", help="MME per-subtask scores and perception/cognition totals from the eval tool's "
                                   "results folder")
    p.add_argument("--results", type=Path, required=True,
                   help="folder with one <subtask>.txt per subtask, lines image<TAB>question<TAB>ground truth<TAB>"
                        "prediction, the two questions of an image on consecutive lines (the MME eval tool's input)")
    p.set_defaults(func=score_mme)


def mme_results(folder: Path) -> tuple[list[str], list[dict]]:
    """(predictions, targets) from the eval tool's folder; images are the tool's line pairs."""
    from mmbench.files import read_text

    if not folder.is_dir():
        raise MMBenchError(f"MME results folder {folder} not found (or not a folder)")
    preds, targets = [], []
    for sub in yesno.MME_SUBTASKS:
        path = folder / f"{sub}.txt"
        if not path.is_file():
            continue
        lines = [line for line in read_text(path, "MME results file").split("\n")]
        lines = lines[:-1] if lines and lines[-1] == "" else lines
        if len(lines) % 2:
            raise MMBenchError(f"{path} has {len(lines)} lines; the eval tool pairs the two questions of each image "
                               f"on consecutive lines")
        for n, line in enumerate(lines):
            fields = line.split("\t")
            if len(fields) != 4:
                raise MMBenchError(f"{path} line {n + 1} has {len(fields)} tab-separated fields; expected image, "
                                   f"question, ground truth, prediction (a prediction may not contain tabs or "
                                   f"newlines)")
            preds.append(fields[3])
            targets.append({"answers": [fields[2]], "category": sub, "image_id": f"pair{n // 2}"})
    if not preds:
        raise MMBenchError(f"{folder} has none of the MME result files ({', '.join(s + '.txt' for s in yesno.MME_SUBTASKS[:3])}, ...)")
    return preds, targets


def score_mme(args: argparse.Namespace) -> int:
    from mmbench.cli.score import emit
    from mmbench.metrics.choice_metrics import MME

    preds, targets = mme_results(args.results)
    metric = MME(where="score mme")
    metric.update(preds, targets)
    report = metric.compute()
    return emit(report.values, {"n": len(preds), **({"notes": report.notes} if report.notes else {})})
