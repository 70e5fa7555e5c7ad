"""Multiple choice: which option a generation chose, under each benchmark's own reading rule, and CircularEval.

A rule maps (generation, options, item id) to a :class:`Read`: the letter (``None`` when the rule finds
none, ``"Z"`` when the answer refuses or names no option) and how it was found. Rules, each written from
the benchmark's evaluation code (read, not copied) and tested on its tricky cases:

- ``letter``: mmbench's own reader (:func:`extract_choice`): exactly one letter named, else unparseable.
- ``vlmevalkit``: VLMEvalKit's ``can_infer`` as MMBench's leaderboard numbers from 2024 to mid-2025 were
  computed (before VLMEvalKit #1175; the VERBOSE-only quantifier rule off, as by default): the text with
  ``.()[],:;!*#{}`` turned into spaces and split on whitespace; exactly one of the option letters among the
  tokens is the choice; none, but a ``Z`` token: ``Z``; a refusal phrase: ``Z``; otherwise (no letter, or
  several) the one option whose lowercased text is a substring of the lowercased answer; else unparsed (a judge may read it).
- ``mmmu``: MMMU's ``parse_multi_choice_response``: punctuation stripped from the ends, then "(X)"
  anywhere, else " X " (spaces both sides), else (over 5 words only) the option texts as substrings; several
  candidates: the one occurring last; none: a random letter. MMMU draws it from one ``random.seed(42)``
  stream in the order the answers are parsed, so a number depends on that order; here each item's draw is
  seeded by (42, item id), the same at any batch size, order or subset, and their count is reported.
- ``llava-sqa``: LLaVA's ``eval_science_qa.py``: the whole answer is a letter, or it starts "X. ", or it
  contains exactly one "The answer is X" followed by a character; anything else is wrong (never guessed).
- ``llava-exact``: LLaVA's SEED-Bench check: the stripped answer is exactly the letter.
- ``lmms-mcq``: lmms-eval's AI2D check: a leading "X." gives X, else the answer without case and punctuation
  must be the letter.
- ``videomme``: Video-MME's ``eval_your_results.py``: its answer phrases removed, then the first capital option
  letter anywhere in the text; none: unanswered, which the official scorer leaves out of the denominator
  (``mc_accuracy_answered``; ``mc_accuracy`` counts it wrong, as lmms-eval and VLMEvalKit do).
- ``mmstar``: MMStar's official matcher: the first character, or the one after "(", "option " or "the answer
  is " (so "apple" reads as A, as the official scorer counts it).

CircularEval (MMBench): a question with k options is asked k times, the options rotated one place each
pass (pass p shows original option (L + p) mod k under letter L); it counts as right only if every pass is.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from typing import Callable, Sequence

from mmbench.errors import MMBenchError
from mmbench.seeding import stable_seed

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
NO_OPTION = "Z"  # VLMEvalKit's letter for "none of the options" / a refusal: never the right answer


@dataclass(frozen=True)
class Read:
    """What a rule read from one answer: the letter (None: nothing found), and how (for the samples log)."""

    letter: str | None
    how: str


def check_options(options: Sequence[str], where: str) -> None:
    if not options:
        raise MMBenchError(f"{where}: a multiple-choice item needs at least one option")
    if len(options) > len(LETTERS) - 1:
        raise MMBenchError(f"{where}: {len(options)} options; at most {len(LETTERS) - 1} can be lettered A-Y")


# -- letter: mmbench's own reader ---------------------------------------------------------------------------

_WHOLE_LETTER = re.compile(r"^[(\[]?([A-Za-z])[)\]]?[.):]?$")
_LEADING_LETTER = re.compile(r"^[(\[]?([A-Z])[.)\]:]\s*\S")
_ANSWER_PHRASE = re.compile(
    r"(?i:answer\s*(?:is|would\s+be|should\s+be|:|-)|option|choice)\s*:?\s*[(\[]?([A-Z])(?![A-Za-z])")
_BRACKETED = re.compile(r"[(\[]([A-Z])[)\]]")
_LETTER_PAIR = re.compile(r"(?<![A-Za-z])([A-Z])[)\].]?\s*(?:,|/|&|\bor\b|\band\b)\s*[(\[]?([A-Z])(?![A-Za-z])")


def _option_text(text: str) -> str:
    text = " ".join(text.lower().split())
    return text[:-1].rstrip() if text.endswith(".") else text


def extract_choice(generation: str, options: Sequence[str]) -> str | None:
    """The option letter a generation chooses, or None when it names none or two. Candidates: the whole
    answer is a letter ("B", "b.", "(B)"); it starts with "B." / "(B)" / "B:" and more text; an answer phrase
    ("answer is B", "option B"); any "(B)"/"[B]"; letters joined by or/and/,/&// ("A or B": both); the answer
    equals one option's text. Exactly one distinct candidate is the choice; a bare leading letter followed
    by a space ("A cat") is not read, being usually an article."""
    check_options(options, "extract_choice")
    valid = LETTERS[:len(options)]
    text = generation.replace("*", "").strip()
    found: set[str] = set()
    for pattern in (_WHOLE_LETTER, _LEADING_LETTER):
        m = pattern.match(text)
        if m:
            found.add(m.group(1).upper())
    for pattern in (_ANSWER_PHRASE, _BRACKETED):
        found.update(m.group(1) for m in pattern.finditer(text))
    for m in _LETTER_PAIR.finditer(text):
        found.update(m.groups())
    normalized = _option_text(text)
    matching = [LETTERS[i] for i, opt in enumerate(options) if _option_text(opt) == normalized]
    if len(matching) == 1 and normalized:
        found.add(matching[0])
    found &= set(valid)
    return found.pop() if len(found) == 1 else None


def read_letter(generation: str, options: Sequence[str], item_id: str = "") -> Read:
    letter = extract_choice(generation, options)
    return Read(letter, "letter" if letter else "unparsed")


# -- vlmevalkit: MMBench's can_infer --------------------------------------------------------------------------

_REFUSALS = ("Sorry, I can't help with images of people yet.", "I can't process this file.",
             "I'm sorry, but without the image provided", "Cannot determine the answer")
_SPACED_PUNCTUATION = str.maketrans({c: " " for c in ".()[],:;!*#{}"})


def read_vlmevalkit(generation: str, options: Sequence[str], item_id: str = "") -> Read:
    """VLMEvalKit's can_infer_option, then can_infer_text (the 2024 revision; see the module doc)."""
    if "Failed to obtain answer via API" in generation:
        return Read(None, "unparsed")
    if any(phrase in generation for phrase in _REFUSALS):
        return Read(NO_OPTION, "refusal")
    tokens = generation.translate(_SPACED_PUNCTUATION).split()
    named = [letter for letter in LETTERS[:len(options)] if letter in tokens]
    if len(named) == 1:
        return Read(named[0], "letter")
    if not named and NO_OPTION in tokens:
        return Read(NO_OPTION, "letter Z")
    answer = generation.lower()
    contained = [LETTERS[i] for i, opt in enumerate(options) if str(opt).lower() in answer]
    return Read(contained[0], "option text") if len(contained) == 1 else Read(None, "unparsed")


# -- mmmu: parse_multi_choice_response --------------------------------------------------------------------------

MMMU_SEED = 42  # MMMU's eval_utils seeds Python's random with 42 for the fallback draw


def read_mmmu(generation: str, options: Sequence[str], item_id: str = "") -> Read:
    """MMMU's multiple-choice parser (see the module doc); the random fallback is seeded per item."""
    letters = LETTERS[:len(options)]
    text = generation
    for char in ",.!?;:'":  # one character class at a time, in this order, as the parser strips
        text = text.strip(char)
    text = f" {text} "
    found = [c for c in letters if f"({c})" in text]
    marker, how = "({})", "bracketed letter"
    if not found:
        found, marker, how = [c for c in letters if f" {c} " in text], " {} ", "letter"
    if not found and len(text.split()) > 5:
        lowered = text.lower()
        found = [c for c, opt in zip(letters, options) if str(opt).lower() in lowered]
        how = "option text"
    if not found:
        return Read(random.Random(stable_seed(MMMU_SEED, item_id)).choice(letters), "random")
    if len(found) == 1:
        return Read(found[0], how)
    if how == "option text":
        positions = [text.lower().rfind(str(options[letters.index(c)]).lower()) for c in found]
    else:
        positions = [text.rfind(marker.format(c)) for c in found]
    return Read(found[positions.index(max(positions))], how + ", last of several")  # ties: the first


# -- llava-sqa and lmms-letter ---------------------------------------------------------------------------------

_SQA_PHRASE = re.compile(r"The answer is ([A-Z]).")
_SQA_LETTERS = "ABCDE"  # eval_science_qa.py's option letters


def read_llava_sqa(generation: str, options: Sequence[str], item_id: str = "") -> Read:
    """LLaVA's ScienceQA parser on the stripped answer (model_vqa_science.py strips every output); a letter
    beyond the item's options (or beyond E) is wrong, like none."""
    generation = generation.strip()
    if generation in _SQA_LETTERS and len(generation) == 1:
        letter, how = generation, "letter"
    elif len(generation) >= 3 and generation[0] in _SQA_LETTERS and generation[1:3] == ". ":
        letter, how = generation[0], "leading letter"
    else:
        found = _SQA_PHRASE.findall(generation)
        letter, how = (found[0], "answer phrase") if len(found) == 1 else (None, "unparsed")
    if letter is not None and LETTERS.index(letter) >= len(options):
        return Read(None, f"letter {letter} beyond the options")
    return Read(letter or None, how)


def read_llava_exact(generation: str, options: Sequence[str], item_id: str = "") -> Read:
    """LLaVA's SEED-Bench check (convert_seed_for_submission.py): the stripped answer is exactly the letter."""
    text = generation.strip()  # LLaVA's model_vqa_loader strips every output before it is compared
    return Read(text, "letter") if len(text) == 1 and text in LETTERS[:len(options)] else Read(None, "unparsed")


_LMMS_LEADING = re.compile(r"^\s*([A-Z])\.")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def read_lmms_mcq(generation: str, options: Sequence[str], item_id: str = "") -> Read:
    """lmms-eval's AI2D reading: ``^\\s*([A-Z])\\.`` gives the letter; otherwise the stripped answer, lowercased
    and without punctuation, must be the letter itself ("(b)", "b:" count; "The answer is B" does not)."""
    m = _LMMS_LEADING.match(generation)
    letters = LETTERS[:len(options)]
    if m:
        return Read(m.group(1), "leading letter") if m.group(1) in letters else Read(None, "unparsed")
    text = generation.strip().lower().translate(_PUNCTUATION)
    return Read(text.upper(), "letter") if len(text) == 1 and text.upper() in letters else Read(None, "unparsed")


def read_mmstar(generation: str, options: Sequence[str], item_id: str = "") -> Read:
    """MMStar's official matcher (MMStar_eval): on the lowercased, stripped answer with newlines as spaces,
    the letter is its first character, or the one after "(", "option " or "the answer is " at the start
    (so "apple" reads as A, as the official scorer counts it)."""
    text = generation.lower().strip().replace("\n", " ")
    letters = LETTERS[:len(options)].lower()
    for prefix, how in (("", "first character"), ("(", "bracketed letter"), ("option ", "option phrase"),
                        ("the answer is ", "answer phrase")):
        if text.startswith(prefix) and len(text) > len(prefix) and text[len(prefix)] in letters:
            return Read(text[len(prefix)].upper(), how)
    return Read(None, "unparsed")


# Video-MME's eval_your_results.py strips these phrases (exact case, every occurrence). Two commas are missing in
# its list, so "The best option is" / "The correct option is" / "Best answer:" / "Best option:" are only removed
# as the two joined strings below; kept as the official scorer behaves.
_VIDEOMME_PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer",
                      "The best option isThe correct option is", "Best answer:Best option:")


def read_videomme(generation: str, options: Sequence[str], item_id: str = "") -> Read:
    """Video-MME's official extract_characters_regex: the answer phrases removed, then the first capital option
    letter anywhere (so the article in "A man ..." reads as A, as the official scorer counts it); over 10 words
    with no such letter, or none at all: unanswered (the official scorer leaves it out of the denominator)."""
    text = generation.strip()
    for prefix in _VIDEOMME_PREFIXES:
        text = text.replace(prefix, "")
    m = re.search(f"[{LETTERS[:len(options)]}]", text)
    return Read(m.group(0), "first capital letter") if m else Read(None, "unparsed")


RULES: dict[str, tuple[Callable[[str, Sequence[str], str], Read], str]] = {
    "letter": (read_letter, "mmbench extract_choice (exactly one letter named, else unparseable)"),
    "vlmevalkit": (read_vlmevalkit, "VLMEvalKit can_infer, 2024 revision (letter token, Z, or one option's "
                                    "text; else unparsed)"),
    "mmmu": (read_mmmu, "MMMU parse_multi_choice_response ((X), then ' X ', then option text over 5 words; last "
                        "of several; none: a random letter seeded by (42, item id))"),
    "llava-sqa": (read_llava_sqa, "LLaVA eval_science_qa.py (letter, 'X. ', or one 'The answer is X.'; else "
                                  "wrong)"),
    "llava-exact": (read_llava_exact, "LLaVA convert_seed_for_submission.py (the stripped answer is the letter)"),
    "lmms-mcq": (read_lmms_mcq, "lmms-eval MultiChoiceRegexFilter + exact_match (ignore case and punctuation)"),
    "mmstar": (read_mmstar, "MMStar_eval (first character, or after '(' / 'option ' / 'the answer is ')"),
    "videomme": (read_videomme, "Video-MME eval_your_results.py (answer phrases removed, then the first capital "
                                "option letter; none: unanswered)"),
}


def rule(name: str) -> Callable[[str, Sequence[str], str], Read]:
    if name not in RULES:
        raise MMBenchError(f"unknown multiple-choice rule {name!r}: use one of {', '.join(RULES)}")
    return RULES[name][0]


# -- CircularEval -------------------------------------------------------------------------------------------

def rotations(options: Sequence[str], answer: str) -> list[tuple[list[str], str]]:
    """CircularEval's passes: (options shown, answer letter) for p = 0..k-1, pass p showing original option
    (L + p) mod k under letter L, so the answer's letter moves back one place per pass."""
    k = len(options)
    gold = LETTERS.index(answer)
    return [([options[(j + p) % k] for j in range(k)], LETTERS[(gold - p) % k]) for p in range(k)]


def letter_of(answer: object, n_options: int, where: str) -> str:
    """An answer given as a letter or a 0-based option index, checked against the number of options."""
    if isinstance(answer, bool) or not isinstance(answer, (int, str)):
        raise MMBenchError(f"{where}: answer {answer!r} is neither a letter nor an option index")
    letter = LETTERS[answer] if isinstance(answer, int) and 0 <= answer < len(LETTERS) else str(answer).strip().upper()
    if letter not in LETTERS[:n_options]:
        raise MMBenchError(f"{where}: answer {answer!r} is not one of the letters A-{LETTERS[n_options - 1]} "
                           f"of its {n_options} options")
    return letter
