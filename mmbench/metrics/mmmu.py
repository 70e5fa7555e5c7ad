"""MMMU's answer rules (MMMU-Benchmark/MMMU ``mmmu/utils/eval_utils.py``), written from the official code.

Multiple-choice questions are read by :func:`mmbench.metrics.choice.read_mmmu`. Open questions: the answer
is stripped of whitespace and a final ".", lowercased and split on newlines (MMMU also splits on ". " before
a capital letter, which never fires after lowercasing); from each part the shortest text after the last of
the indicators "could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result " (and "=" in
the last part) is kept, else the whole answer; the numbers in the kept texts are added; every candidate is
normalised: a number (commas removed) rounded to 2 decimals, else lowercased text (one character: " x" and
"x "). Right when a text candidate contains a text form of a reference, or a number candidate equals a
number form of one (a reference may be a list of accepted answers).

Accuracy is the mean over questions (per subject and per discipline as MMMU's ``calculate_ins_level_acc``).
"""

from __future__ import annotations

import ast
import re
from typing import Sequence

# MMMU's DOMAIN_CAT2SUB_CAT: discipline -> subjects (the Hugging Face configs of MMMU/MMMU)
DISCIPLINES: dict[str, tuple[str, ...]] = {
    "Art and Design": ("Art", "Art_Theory", "Design", "Music"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Health and Medicine": ("Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine",
                            "Pharmacy", "Public_Health"),
    "Humanities and Social Science": ("History", "Literature", "Sociology", "Psychology"),
    "Tech and Engineering": ("Agriculture", "Architecture_and_Engineering", "Computer_Science", "Electronics",
                             "Energy_and_Power", "Materials", "Mechanical_Engineering"),
}
SUBJECTS = tuple(s for subjects in DISCIPLINES.values() for s in subjects)
DISCIPLINE_OF = {s: d for d, subjects in DISCIPLINES.items() for s in subjects}

_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
_TRIVIAL = {":", ",", ".", "!", "?", ";", "'"}
_NUMBER_WITH_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_SIMPLE_NUMBER = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def subject_of(question_id: str) -> str:
    """The subject in an MMMU id such as ``validation_Art_Theory_12``."""
    return "_".join(str(question_id).split("_")[1:-1])


def normalize(text: str) -> list:
    """MMMU's normalize_str: a number (commas removed) rounded to 2 decimals, else the lowercased text
    (a single character becomes " x" and "x ", so it only matches as a word)."""
    text = text.strip()
    try:
        return [round(float(text.replace(",", "")), 2)]
    except ValueError:
        text = text.lower()
        return [" " + text, text + " "] if len(text) == 1 else [text]


def extract_numbers(text: str) -> list[str]:
    """Numbers written with thousands commas, in scientific notation, and plain ones, in that order."""
    return _NUMBER_WITH_COMMAS.findall(text) + _SCIENTIFIC.findall(text) + _SIMPLE_NUMBER.findall(text)


def _key_parts(response: str) -> list[str]:
    response = response.strip().strip(".").lower()
    parts = re.split(r"\.\s(?=[A-Z])|\n", response)
    keys = []
    for i, part in enumerate(parts):
        indicators = _INDICATORS + (("=",) if i == len(parts) - 1 else ())
        shortest = ""
        for tail in (part.split(ind)[-1].strip() for ind in indicators if ind in part):
            # as MMMU's loop: an empty tail counts as none yet, so a later (longer) one replaces it
            if not shortest or len(tail) < len(shortest):
                shortest = tail
        if shortest and shortest.strip() not in _TRIVIAL:
            keys.append(shortest)
    return keys or [response]


def parse_open(response: str) -> list:
    """The candidates MMMU's parse_open_response reads from an open answer (deduplicated)."""
    keys = _key_parts(response)
    candidates = list(keys)
    for key in keys:
        candidates.extend(extract_numbers(key))
    out: list = []
    for c in candidates:
        for form in normalize(c):
            if form not in out:
                out.append(form)
    return out


def reference_forms(answer: object) -> list:
    """A reference's accepted forms: a list of answers (also given as a Python list literal, as MMMU's
    Hugging Face files do for a few questions) is the union of their normalised forms."""
    if isinstance(answer, str) and answer.strip().startswith("[") and answer.strip().endswith("]"):
        try:
            parsed = ast.literal_eval(answer.strip())
        except (ValueError, SyntaxError):
            parsed = answer
        answer = parsed if isinstance(parsed, list) else answer
    answers = answer if isinstance(answer, (list, tuple)) else [answer]
    return [form for a in answers for form in normalize(str(a))]


def open_correct(answer: object, response: str) -> bool:
    """MMMU's eval_open on one answer."""
    forms = reference_forms(answer)
    for candidate in parse_open(response):
        if isinstance(candidate, str):
            if any(isinstance(f, str) and f in candidate for f in forms):
                return True
        elif candidate in forms:
            return True
    return False


def group_accuracy(correct: Sequence[float], labels: Sequence[str]) -> dict[str, float]:
    """Accuracy per label, in first-appearance order (micro: over questions)."""
    groups: dict[str, list[float]] = {}
    for c, lab in zip(correct, labels):
        groups.setdefault(lab, []).append(float(c))
    return {lab: float(sum(v)) / len(v) for lab, v in groups.items()}
