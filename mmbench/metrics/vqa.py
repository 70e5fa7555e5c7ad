"""VQA metrics: VQAv2 accuracy exactly as the official script, exact match and ANLS.

VQAv2 accuracy follows GT-Vision-Lab/VQA ``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` (its Python 3
revision) rule for rule, quirks included:

- the prediction: newlines and tabs become spaces, ``strip()``, then punctuation processing, then
  digit/article processing (lowercase, number words "none"/"zero".."ten" -> digits, articles a/an/the
  dropped, the official contractions table);
- punctuation processing: for each symbol of the official list, it is deleted when the *input* text has
  the symbol next to a space or contains a digit-comma-digit group ("1,000"), otherwise replaced by a
  space; then periods not followed by a digit are deleted, at most 32 of them (the script passes
  ``re.UNICODE`` (= 32) as the ``count`` argument of ``sub``);
- the reference answers are used as given (the script does not strip them) unless they disagree
  (``len(set(answers)) > 1``): then each gets the punctuation processing only (no lowercase, no digits);
- a question's accuracy is the mean over the leave-one-out subsets (one per annotator) of
  ``min(#annotators in the subset who gave the prediction / 3, 1)``; overall and per-type accuracies are
  means over questions. The script reports ``round(100 * mean, 2)``; we keep the full-precision fraction in
  [0, 1] and give the rounded percentage beside it as ``official_percent``.

Multiple choice lives in :mod:`mmbench.metrics.choice`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein

from mmbench.errors import MMBenchError
from mmbench.metrics.base import ItemStats, MetricValue

# ---------------------------------------------------------------------------------------------------------
# The official VQAv2 answer normalisation (tables are data from vqaEval.py, kept verbatim for exactness)
# ---------------------------------------------------------------------------------------------------------

VQA_PUNCTUATION: tuple[str, ...] = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-",
                                    ">", "<", "@", "`", ",", "?", "!")
VQA_NUMBER_WORDS: Mapping[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
VQA_ARTICLES: frozenset[str] = frozenset({"a", "an", "the"})
# Keys with a capital I never match (the text is lowercased first) and "somebody'd" maps to "somebodyd":
# both are in the official table and kept as they are.
VQA_CONTRACTIONS: Mapping[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't",
    "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're",
    "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've"}

# "(?!<=\d)" is the script's typo for a look-behind: as written it is a look-ahead that never blocks a
# period, so every period not followed by a digit goes (up to the count below).
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
# The script calls periodStrip.sub("", text, re.UNICODE): re.UNICODE lands in the `count` parameter.
_PERIOD_STRIP_COUNT = int(re.UNICODE)

VQA_VARIANT = ("VQAv2 official (GT-Vision-Lab vqaEval.py): answer normalisation, min(#matches/3, 1) averaged "
               "over the leave-one-out subsets of the human answers, mean over questions; fraction in [0,1] "
               "at full precision (the script reports round(100*x, 2): see official_percent)")


def process_punctuation(text: str) -> str:
    """The official ``processPunctuation``: drop or space out punctuation, then delete periods."""
    out = text
    has_digit_comma = _COMMA_STRIP.search(text) is not None
    for p in VQA_PUNCTUATION:
        # The test looks at the original text, not at the text as rewritten by earlier symbols.
        if (p + " " in text or " " + p in text) or has_digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, count=_PERIOD_STRIP_COUNT)


def process_digit_article(text: str, contractions: Mapping[str, str] = VQA_CONTRACTIONS) -> str:
    """The official ``processDigitArticle``: lowercase, number words to digits, drop articles, contractions."""
    words = [VQA_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in VQA_ARTICLES]
    return " ".join(contractions.get(w, w) for w in words)


# The VizWiz evaluator (Qing Li's VQAEval for VizWiz) carries the VQA table with curly apostrophes (’) in
# most keys and values; these entries kept the straight one.
_VIZWIZ_STRAIGHT_VALUES = frozenset({"aint", "arent", "cant", "couldve", "couldnt", "weve", "wheres", "whove"})
_VIZWIZ_STRAIGHT_KEYS = frozenset({"couldn'tve", "hadn'tve"})
VIZWIZ_CONTRACTIONS: Mapping[str, str] = {
    (k if k in _VIZWIZ_STRAIGHT_KEYS else k.replace("'", "\u2019")):
        (v if k in _VIZWIZ_STRAIGHT_VALUES else v.replace("'", "\u2019")) for k, v in VQA_CONTRACTIONS.items()}


def evalai_normalize(text: str) -> str:
    """The EvalAI answer processor (TextVQA's scorer, m4c_evaluator.EvalAIAnswerProcessor, used by LLaVA and
    lmms-eval): lowercase, delete ',' and '?', "'s" -> " 's", strip; then the VQAv2 steps."""
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    return process_digit_article(process_punctuation(_clean_whitespace(text)))


def vizwiz_normalize(text: str) -> str:
    """The VizWiz evaluator's prediction processing: the VQAv2 steps with its curly-apostrophe contractions."""
    return process_digit_article(process_punctuation(_clean_whitespace(text)), VIZWIZ_CONTRACTIONS)


# the accuracy rules one can name -> what they do (recorded in the variant)
VQA_RULES: Mapping[str, str] = {
    "vqav2": ("VQAv2 official (GT-Vision-Lab vqaEval.py, Python 3 revision): prediction normalised, human "
              "answers punctuation-processed only when they disagree"),
    "evalai": ("EvalAI answer processor (TextVQA's m4c_evaluator, as LLaVA-1.5 and lmms-eval score TextVQA): "
               "prediction and every human answer normalised (commas and '?' deleted, \"'s\" split, VQAv2 steps)"),
    "vizwiz": ("VizWiz evaluator (VizWiz VQAEval): prediction normalised with its curly-apostrophe "
               "contractions, human answers compared as given"),
}


def rules_normalizers(rules: str):
    """(prediction normaliser, references normaliser) of a VQA_RULES entry."""
    if rules == "vqav2":
        return normalize_prediction, normalize_references
    if rules == "evalai":
        return evalai_normalize, lambda refs: [evalai_normalize(r) for r in refs]
    if rules == "vizwiz":
        return vizwiz_normalize, list
    raise MMBenchError(f"unknown VQA accuracy rules {rules!r}: use one of {', '.join(VQA_RULES)}")


def vqa_variant(rules: str = "vqav2") -> str:
    if rules == "vqav2":
        return VQA_VARIANT
    return (f"{VQA_RULES[rules]}; min(#matches/3, 1) averaged over the leave-one-out subsets of the human "
            f"answers, mean over questions; fraction in [0,1] (the scripts report round(100*x, 2))")


def _clean_whitespace(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def normalize_prediction(text: str) -> str:
    """A prediction as the official script compares it: whitespace clean-up, punctuation, digits/articles."""
    return process_digit_article(process_punctuation(_clean_whitespace(text)))


def normalize_references(answers: Sequence[str]) -> list[str]:
    """The human answers as the script compares them: unchanged, or punctuation-processed if they disagree."""
    if len(set(answers)) > 1:
        return [process_punctuation(a) for a in answers]
    return list(answers)


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise MMBenchError(f"{what} is {type(value).__name__}, not a string: pass the answer text")
    return value


def _check_references(refs: object, i: int) -> list[str]:
    if isinstance(refs, str) or not isinstance(refs, Sequence) or len(refs) == 0:
        raise MMBenchError(f"references of item {i} must be a non-empty list of answer strings")
    return [_check_text(r, f"reference answer of item {i}") for r in refs]


def _check_lengths(n_pred: int, n_ref: int, name: str = "references") -> None:
    if n_pred != n_ref:
        raise MMBenchError(f"{n_pred} predictions but {n_ref} {name}: pass one entry per question")
    if n_pred == 0:
        raise MMBenchError("no predictions to score: pass at least one item")


def vqa_item_accuracy(prediction: str, reference_answers: Sequence[str]) -> float:
    """VQAv2 accuracy of one question: leave-one-out mean of min(#matching other annotators / 3, 1).

    Each answer counts as a distinct annotation (the script's answer records carry unique ids), so leaving
    one out removes exactly one entry even when answers repeat.
    """
    return _leave_one_out(normalize_prediction(prediction), normalize_references(reference_answers))


def _leave_one_out(pred: str, refs: list[str]) -> float:
    matches = [r == pred for r in refs]
    total = sum(matches)
    # Summed in annotator order with plain floats, as the script does, so results agree to the last bit.
    accs = [min(1, float(total - m) / 3) for m in matches]
    return float(sum(accs)) / len(accs)


def _official_percent(values: list[float]) -> float:
    return round(100 * float(sum(values)) / len(values), 2)


@dataclass(frozen=True)
class VQAResult:
    """VQAv2 accuracy: overall, per answer type and per question type, with per-question statistics."""

    accuracy: MetricValue
    per_answer_type: dict[str, MetricValue]
    per_question_type: dict[str, MetricValue]
    # What the official script prints: percentages rounded to 2 decimals ({"overall", "perAnswerType",
    # "perQuestionType"}), for side-by-side comparison with published numbers.
    official_percent: dict[str, object]
    # "vqa_accuracy": float per question; "answer_type" / "question_type": str per question when given.
    stats: ItemStats
    normalized_predictions: list[str] = field(default_factory=list)


def _by_type(values: list[float], types: Sequence[str] | None, name: str,
             label: str) -> tuple[dict[str, MetricValue], dict[str, float]]:
    if types is None:
        return {}, {}
    groups: dict[str, list[float]] = {}
    for v, t in zip(values, types):
        groups.setdefault(str(t), []).append(v)
    metrics = {t: MetricValue(name=f"{name}[{label}={t}]", value=float(sum(vs)) / len(vs), variant=VQA_VARIANT,
                              extra={"n": len(vs), "official_percent": _official_percent(vs)})
               for t, vs in groups.items()}
    return metrics, {t: _official_percent(vs) for t, vs in groups.items()}


def vqa_accuracy(predictions: Sequence[str], references: Sequence[Sequence[str]],
                 answer_types: Sequence[str] | None = None,
                 question_types: Sequence[str] | None = None, rules: str = "vqav2") -> VQAResult:
    """VQA accuracy of a set of questions, as the official evaluation of ``rules`` computes it (module doc;
    ``rules``: vqav2, evalai (TextVQA), vizwiz; see VQA_RULES)."""
    norm_pred, norm_refs = rules_normalizers(rules)
    _check_lengths(len(predictions), len(references))
    for types, what in ((answer_types, "answer_types"), (question_types, "question_types")):
        if types is not None and len(types) != len(predictions):
            raise MMBenchError(f"{what} has {len(types)} entries for {len(predictions)} predictions: "
                               "pass one type per question")
    normalized = [norm_pred(_check_text(p, f"prediction {i}")) for i, p in enumerate(predictions)]
    accs = [_leave_one_out(p, norm_refs(_check_references(r, i)))
            for i, (p, r) in enumerate(zip(normalized, references))]
    per_answer, official_answer = _by_type(accs, answer_types, "vqa_accuracy", "answer_type")
    per_question, official_question = _by_type(accs, question_types, "vqa_accuracy", "question_type")
    overall = _official_percent(accs)
    stats: dict[str, np.ndarray] = {"vqa_accuracy": np.asarray(accs, dtype=np.float64)}
    if answer_types is not None:
        stats["answer_type"] = np.asarray([str(t) for t in answer_types])
    if question_types is not None:
        stats["question_type"] = np.asarray([str(t) for t in question_types])
    return VQAResult(
        accuracy=MetricValue(name="vqa_accuracy", value=float(sum(accs)) / len(accs), variant=vqa_variant(rules),
                             extra={"n": len(accs), "official_percent": overall}),
        per_answer_type=per_answer, per_question_type=per_question,
        official_percent={"overall": overall, "perAnswerType": official_answer,
                          "perQuestionType": official_question},
        stats=stats, normalized_predictions=normalized)


# ---------------------------------------------------------------------------------------------------------
# Exact match and ANLS
# ---------------------------------------------------------------------------------------------------------

ExactMatchNormalization = Literal["strip", "punct", "vqa"]
_EXACT_MATCH_STEPS: Mapping[str, str] = {
    "strip": "newline/tab->space, strip, lowercase, whitespace collapsed",
    "punct": "newline/tab->space, strip, VQAv2 punctuation processing, lowercase, whitespace collapsed",
    "vqa": "the VQAv2 prediction normalisation (punctuation, lowercase, number words, articles, contractions)",
}


def normalize_exact(text: str, normalization: ExactMatchNormalization = "punct") -> str:
    """The text exact match compares; ``normalization`` names the steps (see ``_EXACT_MATCH_STEPS``)."""
    if normalization == "vqa":
        return normalize_prediction(text)
    text = _clean_whitespace(text)
    if normalization == "punct":
        text = process_punctuation(text)
    elif normalization != "strip":
        raise MMBenchError(f"unknown exact-match normalization {normalization!r}: use one of "
                           f"{', '.join(_EXACT_MATCH_STEPS)}")
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class ScoreResult:
    """A mean of per-item scores (exact match, ANLS) and the per-item statistics behind it."""

    value: MetricValue
    stats: ItemStats


def exact_match(predictions: Sequence[str], references: Sequence[Sequence[str]],
                normalization: ExactMatchNormalization = "punct") -> ScoreResult:
    """Share of predictions equal to at least one reference after the named normalisation."""
    if normalization not in _EXACT_MATCH_STEPS:
        raise MMBenchError(f"unknown exact-match normalization {normalization!r}: use one of "
                           f"{', '.join(_EXACT_MATCH_STEPS)}")
    _check_lengths(len(predictions), len(references))
    hits = []
    for i, (p, refs) in enumerate(zip(predictions, references)):
        pred = normalize_exact(_check_text(p, f"prediction {i}"), normalization)
        hits.append(float(any(normalize_exact(r, normalization) == pred for r in _check_references(refs, i))))
    variant = exact_match_variant(normalization)
    return ScoreResult(MetricValue("exact_match", float(sum(hits)) / len(hits), variant, extra={"n": len(hits)}),
                       {"exact_match": np.asarray(hits, dtype=np.float64)})


def exact_match_variant(normalization: ExactMatchNormalization) -> str:
    return f"exact match against any reference; normalization={normalization}: {_EXACT_MATCH_STEPS[normalization]}"


def _anls_normalize(text: str) -> str:
    return " ".join(text.strip().lower().split())


def anls_item(prediction: str, reference_answers: Sequence[str], threshold: float = 0.5) -> float:
    """ANLS of one question as the ST-VQA/DocVQA scoring script computes it.

    Distance: Levenshtein between the lowercased, stripped, whitespace-collapsed strings; normalised by the
    longer *raw* string (the script divides by ``max(len(answer), len(prediction))`` before normalisation).
    Score: 1 - the smallest normalised distance over the references, set to 0 when below ``threshold``
    (so a similarity of exactly 0.5 is kept, as in the script).
    """
    pred = _anls_normalize(prediction)
    distances = []
    for ref in reference_answers:
        length = max(len(ref.upper()), len(prediction.upper()))
        dist = Levenshtein.distance(_anls_normalize(ref), pred)
        distances.append(0.0 if length == 0 else float(dist) / float(length))
    score = 1 - min(distances)
    return 0.0 if score < threshold else score


def anls(predictions: Sequence[str], references: Sequence[Sequence[str]], threshold: float = 0.5) -> ScoreResult:
    """Average Normalized Levenshtein Similarity (Biten et al. 2019) over questions."""
    if not 0.0 <= threshold <= 1.0:
        raise MMBenchError(f"ANLS threshold {threshold} is outside [0, 1]: the standard value is 0.5")
    _check_lengths(len(predictions), len(references))
    scores = [anls_item(_check_text(p, f"prediction {i}"), _check_references(r, i), threshold)
              for i, (p, r) in enumerate(zip(predictions, references))]
    variant = anls_variant(threshold)
    return ScoreResult(MetricValue("anls", float(sum(scores)) / len(scores), variant, extra={"n": len(scores)}),
                       {"anls": np.asarray(scores, dtype=np.float64)})


def anls_variant(threshold: float) -> str:
    return (f"ANLS (ST-VQA/DocVQA script): threshold={threshold} (similarity below it -> 0), lowercase+strip+"
            "whitespace collapsed, distance / max raw length, max over references")
