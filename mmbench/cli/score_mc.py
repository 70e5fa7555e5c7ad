"""``mmbench score mc``: multiple-choice predictions made by any tool, scored under the benchmark's rules.

``--benchmark mmbench``: the references are MMBench's TSV (with answers: the dev split), the predictions a
file with ``index`` and ``prediction`` per row (VLMEvalKit's and LLaVA's submission layout, as TSV, CSV or
JSON lines; one row per circular pass); scored with CircularEval and VLMEvalKit's reading rule (``--rule``).
``--benchmark mmmu``: the references are MMMU's ``answer_dict_val.json`` (``{id: {question_type,
ground_truth}}``), the predictions ``{id: answer}``; multiple-choice answers must be option letters there (the
file lists no options, as MMMU's own main_eval_only expects parsed letters), open answers are parsed by MMMU's
rules.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmbench.errors import MMBenchError
from mmbench.metrics.choice import LETTERS, RULES

MMMU_MAX_OPTIONS = 9


def add_mc(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mc", help="multiple-choice accuracy of MMBench (CircularEval) or MMMU prediction files")
    p.add_argument("--benchmark", choices=["mmbench", "mmmu"], required=True)
    p.add_argument("--references", type=Path, required=True,
                   help="mmbench: the MMBench TSV with answers; mmmu: answer_dict_val.json")
    p.add_argument("--predictions", type=Path, required=True,
                   help="mmbench: rows with index + prediction (.tsv, .csv, .jsonl); mmmu: JSON {id: answer}")
    p.add_argument("--rule", choices=sorted(RULES), default="vlmevalkit",
                   help="mmbench: how a prediction's letter is read (default: vlmevalkit, the leaderboard's)")
    p.set_defaults(func=score_mc)


def _prediction_rows(path: Path) -> dict[int, str]:
    """index -> prediction text, from a TSV/CSV (pandas, as VLMEvalKit reads it) or JSON lines."""
    import pandas as pd

    if path.suffix in (".jsonl", ".json"):
        from mmbench.files import iter_jsonl

        rows = [row for _, row in iter_jsonl(path, "predictions file")]
    else:
        try:
            rows = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", keep_default_na=False).to_dict("records")
        except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise MMBenchError(f"predictions file {path} is not a readable table ({exc.__class__.__name__})") from None
    out = {}
    for n, row in enumerate(rows, 1):
        lowered = {str(k).lower(): v for k, v in row.items()}
        if "index" not in lowered or "prediction" not in lowered:
            raise MMBenchError(f"predictions file {path} row {n} has no index and prediction columns")
        try:
            out[int(float(lowered["index"]))] = "" if lowered["prediction"] is None else str(lowered["prediction"])
        except (TypeError, ValueError):
            raise MMBenchError(f"predictions file {path} row {n}: index {lowered['index']!r} is not a number") from None
    return out


def score_mmbench(args: argparse.Namespace) -> int:
    from mmbench.cli.score import emit
    from mmbench.data.mc_sources import load_mmbench_tsv
    from mmbench.data.sources import DataContext
    from mmbench.errors import DataError
    from mmbench.metrics.choice import letter_of, rotations
    from mmbench.metrics.choice_metrics import MultipleChoiceAccuracy

    try:
        items = load_mmbench_tsv({"tsv": str(args.references.resolve())}, DataContext(task="score mc")).records
    except DataError as exc:
        raise MMBenchError(str(exc).replace("task 'score mc': ", "")) from None
    preds = _prediction_rows(args.predictions)
    answers, targets, missing = [], [], 0
    for it in items:
        if it.get("answer") is None:
            raise MMBenchError(f"{args.references} has no answers (a test split): submit the predictions to the "
                               f"MMBench evaluation server instead")
        passes = it.get("passes") or [{"options": o, "answer": a} for o, a in
                                      rotations(it["options"], letter_of(it["answer"], len(it["options"]), it["id"]))]
        indices = it.get("pass_indices") or [int(it["id"]) + p * 1_000_000 for p in range(len(passes))]
        missing += sum(i not in preds for i in indices)
        answers.append([{"text": preds.get(i, "")} for i in indices])
        targets.append({**it, "passes": passes})
    by = [f for f in ("l2_category", "category") if all(t.get(f) for t in targets)]
    metric = MultipleChoiceAccuracy({"rule": args.rule, "by": by}, where="score mc")
    metric.update(answers, targets)
    report = metric.compute()
    notes = report.notes + ([f"{missing} pass(es) have no prediction row: counted wrong"] if missing else [])
    return emit(report.values, {"n": len(items), **({"notes": notes} if notes else {})})


def score_mmmu(args: argparse.Namespace) -> int:
    from mmbench.cli.score import emit, load_json
    from mmbench.metrics.choice_metrics import MMMUAccuracy

    refs, preds = load_json(args.references, "MMMU answers"), load_json(args.predictions, "predictions")
    if not isinstance(refs, dict) or not all(isinstance(v, dict) and "ground_truth" in v for v in refs.values()):
        raise MMBenchError(f"{args.references} is not MMMU's answer file ({{id: {{question_type, ground_truth}}}})")
    if not isinstance(preds, dict):
        raise MMBenchError(f"{args.predictions} must be a JSON object {{id: answer}}")
    missing = [k for k in refs if k not in preds]
    answers, targets = [], []
    for qid, ref in refs.items():
        text = preds.get(qid, "")
        text = text if isinstance(text, str) else (text[0] if isinstance(text, list) and text else str(text))
        if ref.get("question_type") == "multiple-choice":
            # the file lists no options: MMMU's letters A-I (its most options) with texts that never match, so
            # only letters are read (MMMU's main_eval_only takes parsed letters anyway)
            options = [f"\0option {c}" for c in LETTERS[:MMMU_MAX_OPTIONS]]
            targets.append({"id": qid, "passes": [{"options": options, "answer": ref["ground_truth"]}]})
        else:
            targets.append({"id": qid, "passes": [{"options": [], "answer": ref["ground_truth"]}]})
        answers.append([{"text": text}])
    metric = MMMUAccuracy(where="score mc")
    metric.update(answers, targets)
    report = metric.compute()
    notes = report.notes + ([f"{len(missing)} question(s) have no prediction (first: {missing[0]}): counted wrong"]
                            if missing else [])
    return emit(report.values, {"n": len(refs), **({"notes": notes} if notes else {})})


def score_mc(args: argparse.Namespace) -> int:
    return score_mmbench(args) if args.benchmark == "mmbench" else score_mmmu(args)


