"""``mmbench score vqa`` and ``mmbench score captions``: the VQAv2 and COCO caption formats."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mmbench.cli.score import emit, load_json
from mmbench.errors import MMBenchError


def _entries(data: Any, path: Path, keys: tuple[str, ...], what: str) -> list[dict]:
    if not isinstance(data, list):
        raise MMBenchError(f"{path}: {what} must be a JSON list of objects with keys {', '.join(keys)}")
    for n, entry in enumerate(data):
        if not isinstance(entry, dict) or any(k not in entry for k in keys):
            raise MMBenchError(f"{path}: entry {n} ({str(entry)[:80]}) lacks {' / '.join(keys)}; "
                               f"expected {{{', '.join(repr(k) for k in keys)}}}")
    return data


def _unique(entries: list[dict], key: str, path: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for n, entry in enumerate(entries):
        k = str(entry[key])
        if k in out:
            raise MMBenchError(f"{path}: duplicate {key} {entry[key]!r} (entry {n}); give one prediction per id")
        out[k] = entry
    return out


def _match_ids(pred_ids: list[str], ref_ids: set[str], key: str, pred_path: Path, ref_path: Path,
               require_all: bool) -> None:
    for k in pred_ids:
        if k not in ref_ids:
            raise MMBenchError(f"{pred_path}: {key} {k!r} is not in the references {ref_path}")
    if require_all:
        missing = sorted(ref_ids - set(pred_ids))
        if missing:
            raise MMBenchError(f"{pred_path}: no prediction for {key} {missing[0]!r} of the references "
                               f"({len(missing)} missing); the VQA evaluation needs one answer per question")


# -- vqa ----------------------------------------------------------------------------------------------
def add_vqa(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("vqa", help="VQAv2 accuracy (official rules) from a VQA results file")
    p.add_argument("--predictions", type=Path, required=True, help='[{"question_id", "answer"}, ...]')
    p.add_argument("--references", type=Path, required=True,
                   help='{"annotations": [{"question_id", "answers": [{"answer"}], "answer_type", ...}]}')
    p.set_defaults(func=score_vqa)


def score_vqa(args: argparse.Namespace) -> int:
    from mmbench.metrics import vqa

    preds = _unique(_entries(load_json(args.predictions, "predictions"), args.predictions,
                             ("question_id", "answer"), "VQA results"), "question_id", args.predictions)
    refs_data = load_json(args.references, "references")
    if not isinstance(refs_data, dict) or "annotations" not in refs_data:
        raise MMBenchError(f"{args.references}: expected a VQA annotations file {{\"annotations\": [...]}}")
    refs = _unique(_entries(refs_data["annotations"], args.references, ("question_id", "answers"), "annotations"),
                   "question_id", args.references)
    _match_ids(list(preds), set(refs), "question_id", args.predictions, args.references, require_all=True)
    ids = list(refs)
    answers = [[a["answer"] if isinstance(a, dict) else str(a) for a in refs[i]["answers"]] for i in ids]
    types = [refs[i].get("answer_type") for i in ids]
    qtypes = [refs[i].get("question_type") for i in ids]
    res = vqa.vqa_accuracy([str(preds[i]["answer"]) for i in ids], answers, None if None in types else types,
                           None if None in qtypes else qtypes)
    metrics = [res.accuracy, *res.per_answer_type.values(), *res.per_question_type.values()]
    return emit(metrics, {"n": len(ids), "official_percent": res.official_percent})


# -- captions -----------------------------------------------------------------------------------------
def add_captions(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("captions", help="COCO caption metrics (PTB tokenisation, BLEU, METEOR, ROUGE-L, CIDEr-D)")
    p.add_argument("--predictions", type=Path, required=True, help='[{"image_id", "caption"}, ...]')
    p.add_argument("--references", type=Path, required=True,
                   help='COCO captions file {"images": [...], "annotations": [{"image_id", "caption"}]}')
    p.set_defaults(func=score_captions)


def score_captions(args: argparse.Namespace) -> int:
    from mmbench.metrics.captions import CaptionScorer

    preds = _unique(_entries(load_json(args.predictions, "predictions"), args.predictions,
                             ("image_id", "caption"), "COCO results"), "image_id", args.predictions)
    refs_data = load_json(args.references, "references")
    if not isinstance(refs_data, dict) or "annotations" not in refs_data:
        raise MMBenchError(f"{args.references}: expected a COCO captions file with an 'annotations' list")
    refs: dict[str, list[str]] = {}
    for ann in _entries(refs_data["annotations"], args.references, ("image_id", "caption"), "annotations"):
        refs.setdefault(str(ann["image_id"]), []).append(str(ann["caption"]))
    # As the COCO caption evaluation: the images that have a prediction are scored.
    _match_ids(list(preds), set(refs), "image_id", args.predictions, args.references, require_all=False)
    with CaptionScorer() as scorer:
        result = scorer.score({i: str(p["caption"]) for i, p in preds.items()}, {i: refs[i] for i in preds},
                              is_subset=len(preds) < len(refs))
    extra: dict = {"n": len(preds), "notes": result.notes}
    unavailable = {m.name: m.unavailable for m in result.values if m.unavailable}
    if unavailable:
        extra["unavailable"] = unavailable
    if len(preds) < len(refs):
        extra["notes"] = [*result.notes, f"{len(refs) - len(preds)} reference images have no prediction and were "
                                          f"not scored (as the COCO caption evaluation does)"]
    return emit(result.values, extra)
