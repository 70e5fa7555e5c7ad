"""``mmbench score KIND ...``: score predictions produced by any tool, print the metrics as JSON.

Each kind's sub-command lives in the module listed in SCORE_COMMANDS (``add(sub)`` registers it), so
adding a kind is one module and one line here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.registry import import_object

SCORE_COMMANDS = [
    "mmbench.cli.score:add_classification",
    "mmbench.cli.score:add_retrieval",
    "mmbench.cli.score_text:add_vqa",
    "mmbench.cli.score_text:add_captions",
    "mmbench.cli.score_wer:add_wer",
    "mmbench.cli.score_fid:add_fid",
    "mmbench.cli.score_yesno:add_pope",
    "mmbench.cli.score_yesno:add_mme",
    "mmbench.cli.score_mc:add_mc",
]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0 (seeds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def int_list(values: object, path: Path, what: str) -> list[int]:
    """A JSON list of integers (booleans are not integers here)."""
    if not isinstance(values, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in values):
        raise MMBenchError(f"{path} must be a JSON list of integer {what}")
    return values


def load_npy(path: Path, what: str) -> np.ndarray:
    from mmbench.files import read_npy

    return read_npy(path, what)


def load_json(path: Path, what: str) -> Any:
    from mmbench.files import read_json

    return read_json(path, f"{what} file")


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: an undefined value is printed as null (its reason is in the output)."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def emit(metrics: list, extra: dict | None = None) -> int:
    out = {"metrics": {m.name: m.value for m in metrics}, "variants": {m.name: m.variant for m in metrics}}
    undefined = {m.name: m.unavailable or "undefined on these inputs" for m in metrics
                 if m.value is None or (isinstance(m.value, float) and not np.isfinite(m.value))}
    if undefined:
        out["undefined"] = undefined
    if extra:
        out.update(extra)
    json.dump(_finite(out), sys.stdout, indent=2, allow_nan=False, default=str)
    print()
    return 0


# -- classification ------------------------------------------------------------------------------------
def add_classification(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classification", help="top-1/top-5/mean per-class recall from logits and labels")
    p.add_argument("--logits", type=Path, required=True, help=".npy [n, classes] (NaN rows = failed items)")
    p.add_argument("--labels", type=Path, required=True, help="JSON list of n class indices")
    p.set_defaults(func=score_classification)


def score_classification(args: argparse.Namespace) -> int:
    from mmbench.metrics import classification

    logits = load_npy(args.logits, "logits")
    labels = int_list(load_json(args.labels, "labels"), args.labels, "class indices")
    if logits.ndim != 2 or len(labels) != len(logits):
        raise MMBenchError(f"shape mismatch: logits {list(logits.shape)} vs {len(labels)} labels; "
                           f"expected logits [n, classes] with n = number of labels")
    metrics, extra = classification.score(logits, np.asarray(labels))
    return emit(metrics, {"n": len(labels), "n_failed": extra["n_failed"]})


# -- retrieval -----------------------------------------------------------------------------------------
def add_retrieval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retrieval", help="image<->text recall@k from embeddings")
    p.add_argument("--image-embeddings", type=Path, required=True, help=".npy [n_images, d]")
    p.add_argument("--text-embeddings", type=Path, required=True, help=".npy [n_texts, d]")
    p.add_argument("--text-image-index", type=Path, required=True,
                   help="JSON list: for each text, the index of its image")
    p.add_argument("--k", default="1,5,10", help="comma-separated k values (default 1,5,10)")
    p.set_defaults(func=score_retrieval)


def score_retrieval(args: argparse.Namespace) -> int:
    from mmbench.metrics import retrieval

    images = load_npy(args.image_embeddings, "image embeddings")
    texts = load_npy(args.text_embeddings, "text embeddings")
    index = int_list(load_json(args.text_image_index, "text->image index"), args.text_image_index, "image indices")
    try:
        ks = tuple(int(k) for k in args.k.split(","))
    except ValueError:
        raise MMBenchError(f"--k {args.k!r}: expected comma-separated integers like 1,5,10") from None
    if any(k < 1 for k in ks):
        raise MMBenchError(f"--k {args.k!r}: every k must be >= 1")
    metrics, _ = retrieval.score(images, texts, np.asarray(index), ks)
    return emit(metrics, {"n_images": len(images), "n_texts": len(texts)})


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score predictions made elsewhere (prints JSON)")
    kinds = p.add_subparsers(dest="score_kind", metavar="KIND", required=True)
    for target in SCORE_COMMANDS:
        import_object(target)(kinds)
