"""Answer rules of chart and scene-graph QA: ChartQA's relaxed accuracy and GQA accuracy as LLaVA-1.5 scores it.

Relaxed accuracy follows google-research/pix2struct ``pix2struct/metrics.py`` (``relaxed_correctness``),
which the ChartQA paper's evaluation defines:

- both strings are read as numbers with Python's ``float()`` (so surrounding whitespace, ``1e3``,
  ``inf``/``nan`` and digit underscores parse as Python parses them); a trailing ``%`` is removed and the
  number divided by 100 (so "45%" equals "0.45");
- when the prediction parses and the target parses to a *non-zero* number, the answer is right when
  ``|prediction - target| / |target| <= 0.05``;
- otherwise (either side not a number, or a zero target) the answer is right when the two strings are equal
  after lowercasing (no stripping);
- a question with several targets counts as right when any target accepts the prediction.

GQA accuracy as LLaVA-1.5 computes it (``llava/eval/model_vqa_loader.py`` strips the output,
``scripts/convert_gqa_for_eval.py`` removes every trailing period and lowercases, then GQA's ``eval.py``):
right when the result equals the question's answer exactly (case-sensitive; GQA's answers are lowercase
words or short phrases; "yes ." keeps its space and is wrong, as there).
"""

from __future__ import annotations

import math
from typing import Sequence

RELAXED_SOURCE = "google-research/pix2struct metrics.relaxed_correctness"
GQA_VARIANT = ("GQA accuracy as LLaVA-1.5 (model_vqa_loader strip + convert_gqa_for_eval.py + GQA eval.py): "
               "prediction stripped, trailing periods removed, lowercased, exact match with the answer, mean "
               "over questions")


def to_float(text: str) -> float | None:
    """Pix2Struct's number reading: ``float(text)``, with a trailing '%' meaning /100; None if not a number."""
    try:
        if text.endswith("%"):
            return float(text.rstrip("%")) / 100.0
        return float(text)
    except ValueError:
        return None


def relaxed_correct(prediction: str, target: str, tolerance: float = 0.05) -> bool:
    """Pix2Struct's ``relaxed_correctness`` of one prediction against one target (see module doc)."""
    pred, tgt = to_float(prediction), to_float(target)
    if pred is not None and tgt:  # a zero (or unparseable) target falls back to string equality
        change = abs(pred - tgt) / abs(tgt)
        return bool(change <= tolerance) if not math.isnan(change) else False
    return prediction.lower() == target.lower()


def relaxed_item(prediction: str, targets: Sequence[str], tolerance: float = 0.05) -> float:
    """1.0 when any target accepts the prediction, else 0.0."""
    return float(any(relaxed_correct(prediction, t, tolerance) for t in targets))


def relaxed_variant(tolerance: float) -> str:
    return (f"relaxed accuracy ({RELAXED_SOURCE}): numbers (Python float(), trailing % = /100) within "
            f"{tolerance:g} relative change of a non-zero target, else case-insensitive string equality; "
            f"mean over questions")


def gqa_normalize(prediction: str) -> str:
    """LLaVA's loader strips the output; its converter removes trailing periods and lowercases."""
    return prediction.strip().rstrip(".").lower()


def gqa_item(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the post-processed prediction equals the answer."""
    return float(gqa_normalize(prediction) in answers)
