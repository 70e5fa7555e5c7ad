"""Yes/no hallucination benchmarks scored by their own tools: POPE and MME.

POPE (RUCAIBox/POPE ``evaluate.py``; LLaVA's ``eval_pope.py`` is identical): an answer is cut at its first
".", commas are deleted, and it is split on single spaces; it means *no* when a token is exactly ``No``,
``not`` or ``no`` (case-sensitive: "NO" and "Not sure" mean yes; "Yes, no doubt" means no), else *yes*.
With "yes" as the positive class: accuracy, precision, recall, F1 and the share of answers that are yes.
The official script divides by zero when no answer is yes; here precision and F1 are 0 then.

MME (the eval tool's ``calculation.py``): the answer is lowercased (not stripped); exactly "yes" or "no"
is itself, else "yes" within its first 4 characters means yes, else "no" within them means no ("not sure",
"none", "know" are no), else it is *other*, always wrong. Per subtask: acc over questions, acc+ over images
with both questions right, score = 100 * (acc + acc+); perception is the sum over its 10 subtasks (max
2000), cognition over its 4 (max 800).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mmbench.errors import MMBenchError

POPE_NO_WORDS = ("No", "not", "no")


def pope_says_yes(answer: str) -> bool:
    """POPE's reading of one answer (see the module doc)."""
    first = answer.split(".", 1)[0].replace(",", "")
    return not any(word in POPE_NO_WORDS for word in first.split(" "))


def pope_label(label: object, where: str) -> float:
    """A reference label: POPE maps "no" to 0 and anything else to 1; labels other than yes/no are refused."""
    text = str(label).strip().lower() if isinstance(label, str) else None
    if text not in ("yes", "no"):
        raise MMBenchError(f"{where}: POPE label {label!r} is not 'yes' or 'no'")
    return 1.0 if text == "yes" else 0.0


def pope_scores(said_yes: Sequence[float], gold_yes: Sequence[float]) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and yes-ratio with yes as the positive class (float64 counts)."""
    said, gold = np.asarray(said_yes, dtype=np.float64), np.asarray(gold_yes, dtype=np.float64)
    if said.size == 0:
        raise MMBenchError("POPE: no answers to score")
    tp = float(np.sum(said * gold))
    fp = float(np.sum(said * (1 - gold)))
    fn = float(np.sum((1 - said) * gold))
    tn = float(np.sum((1 - said) * (1 - gold)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"pope_accuracy": (tp + tn) / said.size, "pope_precision": precision, "pope_recall": recall,
            "pope_f1": f1, "pope_yes_ratio": float(np.sum(said)) / said.size}


# -- MME ---------------------------------------------------------------------------------------------------

MME_PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark",
                  "artwork", "OCR")
MME_COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
MME_SUBTASKS = MME_PERCEPTION + MME_COGNITION


def mme_reading(answer: str) -> str:
    """"yes", "no" or "other", as the MME eval tool parses a response (see the module doc)."""
    text = answer.lower()
    if text in ("yes", "no"):
        return text
    head = text[:4]
    return "yes" if "yes" in head else "no" if "no" in head else "other"


def mme_subtask(value: object, where: str) -> str:
    if value not in MME_SUBTASKS:
        raise MMBenchError(f"{where}: MME subtask {value!r} is not one of {', '.join(MME_SUBTASKS)}")
    return str(value)


def mme_scores(correct: Sequence[float], subtasks: Sequence[str], images: Sequence[str]) -> dict[str, float]:
    """Per-subtask acc, acc+ and score, and the perception and cognition totals, from per-question
    correctness, each question's subtask and its image (the two questions of an image share it). Subtasks
    with no questions are left out of the totals and named by the caller."""
    correct = np.asarray(correct, dtype=np.float64)
    out: dict[str, float] = {}
    for sub in MME_SUBTASKS:
        rows = [i for i, s in enumerate(subtasks) if s == sub]
        if not rows:
            continue
        by_image: dict[str, list[float]] = {}
        for i in rows:
            by_image.setdefault(str(images[i]), []).append(float(correct[i]))
        acc = float(sum(correct[i] for i in rows)) / len(rows)
        acc_plus = float(sum(all(v == 1.0 for v in vs) for vs in by_image.values())) / len(by_image)
        out[f"mme_acc[subtask={sub}]"] = acc
        out[f"mme_acc_plus[subtask={sub}]"] = acc_plus
        out[f"mme_score[subtask={sub}]"] = 100 * acc + 100 * acc_plus
    for total, members in (("mme_perception", MME_PERCEPTION), ("mme_cognition", MME_COGNITION)):
        scores = [out[f"mme_score[subtask={s}]"] for s in members if f"mme_score[subtask={s}]" in out]
        if scores:
            out[total] = float(sum(scores))
    return out
