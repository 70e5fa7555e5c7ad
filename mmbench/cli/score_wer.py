"""``mmbench score wer``: corpus WER and CER of transcripts made by any tool, from two JSONL files.

Each line of ``--predictions`` and ``--references`` is ``{"id": ..., "text": ...}``; ids pair them up (the
order of the lines does not matter). Every reference needs exactly one prediction; an empty transcript is
``"text": ""``. A run's ``artifacts_<task>/hypotheses.jsonl`` and ``references.jsonl`` are in this format.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmbench.cli.score import emit
from mmbench.errors import MMBenchError

LINE = '{"id": ..., "text": ...}'


def read_transcripts(path: Path, what: str) -> dict[str, str]:
    """id -> text from a JSONL file; the first malformed line or duplicate id raises a one-line error."""
    from mmbench.files import iter_jsonl

    one = what.removesuffix("s")
    out: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for lineno, row in iter_jsonl(path, f"{what} file"):
        if "id" not in row or "text" not in row:
            raise MMBenchError(f"{path} line {lineno} ({json.dumps(row)[:80]}) lacks \"id\" or \"text\"; "
                               f"expected {LINE}")
        if not isinstance(row["text"], str) or isinstance(row["id"], (dict, list)) or row["id"] is None:
            raise MMBenchError(f"{path} line {lineno}: \"id\" must be a string or number and \"text\" a string "
                               f"(\"\" for an empty transcript)")
        key = str(row["id"])
        if key in out:
            raise MMBenchError(f"{path} line {lineno}: duplicate id {key!r} (first on line {first_line[key]}); give "
                               f"one {one} per id")
        out[key], first_line[key] = row["text"], lineno
    if not out:
        raise MMBenchError(f"{what} file {path} has no lines; expected one {LINE} object per line")
    return out


def add_wer(sub: argparse._SubParsersAction) -> None:
    from mmbench.metrics.wer import NORMALIZERS

    p = sub.add_parser("wer", help="corpus WER/CER and error counts of transcripts (JSONL id/text lines)")
    p.add_argument("--predictions", type=Path, required=True, help=f"JSONL, one {LINE} per utterance")
    p.add_argument("--references", type=Path, required=True, help=f"JSONL, one {LINE} per utterance")
    p.add_argument("--normalizer", default="whisper-english", choices=list(NORMALIZERS),
                   help="text normaliser applied to both sides (default: whisper-english)")
    p.set_defaults(func=score_wer)


def score_wer(args: argparse.Namespace) -> int:
    from mmbench.metrics.wer import COUNT_KEYS, normalizer_variant, wer_scores

    hyps = read_transcripts(args.predictions, "predictions")
    refs = read_transcripts(args.references, "references")
    extra = next((k for k in hyps if k not in refs), None)
    if extra is not None:
        raise MMBenchError(f"{args.predictions}: id {extra!r} is not in the references {args.references}")
    missing = [k for k in refs if k not in hyps]
    if missing:
        raise MMBenchError(f"{args.predictions}: no prediction for id {missing[0]!r} of the references "
                           f"({len(missing)} missing); write {{\"id\": {json.dumps(missing[0])}, \"text\": \"\"}} for "
                           f"an utterance with no transcript")
    ids = list(refs)
    res = wer_scores([hyps[i] for i in ids], [refs[i] for i in ids], args.normalizer)
    counts = {k: int(res.stats[k].sum()) for k in COUNT_KEYS}
    return emit(res.values, {"n": len(ids), "normalizer": normalizer_variant(args.normalizer), "counts": counts})
