"""VQA metrics: the official VQAv2 rules by hand, a second independent transcription, EM, ANLS."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from mmbench.errors import MMBenchError
from mmbench.metrics import vqa
from mmbench.metrics.base import subset
from mmbench.metrics.answer_metrics import ANLS, ExactMatch, VQAAccuracy
from mmbench.metrics.vqa import (anls, exact_match, normalize_prediction,
                                 normalize_references, process_digit_article, process_punctuation, vqa_accuracy,
                                 vqa_item_accuracy)

# ------------------------------------------------------------------------------------------------------------
# Hand-worked normalisation cases
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("yes!", "yes "),              # no space next to "!" and no digit-comma: replaced by a space
    ("red,white", "red white"),
    ("red , white", "red  white"),  # " ," occurs: the comma is deleted, both spaces stay
    ("1,000", "1000"),              # digit-comma-digit: every symbol is deleted
    ("2,5 (approx)", "25 approx"),  # ... including the parentheses elsewhere in the text
    ("x;(y", "x  y"),               # the test reads the original text: "(" is spaced although "; " appeared
    ("hello-world", "hello world"),
    ("a.b.c", "abc"),               # periods not followed by a digit are deleted
    ("3.5", "3.5"),                 # ... a decimal point stays
    ("5..", "5"),
    ("1.5.", "1.5"),
    ("Two.", "Two"),
    ("it's", "it's"),               # the apostrophe is not in the official list
    ("a:b", "a:b"),                 # nor is the colon
    ("x" + "." * 40, "x" + "." * 8),  # re.UNICODE (32) passed as count: only 32 periods go
])
def test_process_punctuation(text: str, expected: str) -> None:
    assert process_punctuation(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Two", "2"), ("the red", "red"), ("None", "0"), ("an apple", "apple"), ("ten", "10"), ("eleven", "eleven"),
    ("A Dog", "dog"), ("dont", "don't"), ("isnt it", "isn't it"), ("Im", "im"),  # capital key never matches
    ("somebody'd", "somebodyd"), ("  many   spaces ", "many spaces"), ("the", ""),
])
def test_process_digit_article(text: str, expected: str) -> None:
    assert process_digit_article(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Two.", "2"), ("the red", "red"), ("\tYes!\n", "yes"), ("Two dogs", "2 dogs"), ("1,000", "1000"),
    ("a\nb", "b"), ("Whats up?", "what's up"), ("The Eiffel tower.", "eiffel tower"),
])
def test_normalize_prediction(text: str, expected: str) -> None:
    assert normalize_prediction(text) == expected


def test_references_processed_only_when_they_disagree() -> None:
    assert normalize_references(["yes."] * 10) == ["yes."] * 10
    assert normalize_references(["yes."] * 9 + ["yes"]) == ["yes"] * 10
    # punctuation only: no lowercase, no number words
    assert normalize_references(["Two!", "two"]) == ["Two ", "two"]


@pytest.mark.parametrize("k, expected", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)])
def test_leave_one_out(k: int, expected: float) -> None:
    # k of 10 annotators said "cat": leaving out one of them leaves k-1 matches, any other leaves k.
    refs = ["cat"] * k + ["dog"] * (10 - k)
    assert vqa_item_accuracy("cat", refs) == pytest.approx(expected, abs=1e-15)
    hand = (k * min(1, (k - 1) / 3) + (10 - k) * min(1, k / 3)) / 10 if k else 0.0
    assert vqa_item_accuracy("cat", refs) == pytest.approx(hand, abs=1e-15)


def test_agreeing_references_keep_their_form() -> None:
    # Identical references are not normalised, so a normalised prediction may never equal them.
    assert vqa_item_accuracy("yes.", ["yes."] * 10) == 0.0
    assert vqa_item_accuracy("Yes", ["Yes"] * 10) == 0.0
    assert vqa_item_accuracy("yes.", ["yes."] * 9 + ["yes"]) == 1.0
    # Disagreeing references get punctuation processing but not number words: "two" stays "two".
    assert vqa_item_accuracy("two", ["two"] * 5 + ["2"] * 5) == 1.0
    assert vqa_item_accuracy("two", ["Two"] * 3 + ["red"] * 7) == 0.0
    assert vqa_item_accuracy("Two.", ["2"] * 10) == 1.0


def test_per_answer_type_and_official_rounding() -> None:
    refs = [["yes"] * 10, ["yes"] * 10, ["2"] * 2 + ["3"] * 8]
    result = vqa_accuracy(["yes", "no", "two"], refs, answer_types=["yes/no", "yes/no", "number"],
                          question_types=["is the", "is the", "how many"])
    assert result.accuracy.value == pytest.approx((1.0 + 0.0 + 0.6) / 3, abs=1e-15)
    assert result.per_answer_type["yes/no"].value == 0.5
    assert result.per_answer_type["number"].value == pytest.approx(0.6, abs=1e-15)
    assert result.per_question_type["how many"].value == pytest.approx(0.6, abs=1e-15)
    assert result.official_percent == {"overall": 53.33, "perAnswerType": {"yes/no": 50.0, "number": 60.0},
                                       "perQuestionType": {"is the": 50.0, "how many": 60.0}}
    assert result.accuracy.extra["official_percent"] == 53.33
    assert "fraction in [0,1]" in result.accuracy.variant
    # the named metric gives the same values and recomputes them (and the breakdowns) on any subset
    metric = VQAAccuracy()
    metric.update(["yes", "no", "two"], [{"answers": r, "answer_type": a, "question_type": q} for r, a, q in
                                         zip(refs, ["yes/no", "yes/no", "number"], ["is the", "is the", "how many"])])
    report = metric.compute()
    assert {v.name: v.value for v in report.values} == {
        "vqa_accuracy": result.accuracy.value, "vqa_accuracy[answer_type=yes/no]": 0.5,
        "vqa_accuracy[answer_type=number]": result.per_answer_type["number"].value,
        "vqa_accuracy[question_type=is the]": 0.5,
        "vqa_accuracy[question_type=how many]": result.per_question_type["how many"].value}
    assert [v.extra["official_percent"] for v in report.values] == [53.33, 50.0, 60.0, 50.0, 60.0]
    agg = VQAAccuracy.aggregate(report.stats)
    assert agg["vqa_accuracy"] == result.accuracy.value
    assert agg["vqa_accuracy[answer_type=yes/no]"] == 0.5
    assert VQAAccuracy.aggregate(subset(report.stats, np.array([2, 2, 0]))) == pytest.approx(
        {"vqa_accuracy": (0.6 + 0.6 + 1.0) / 3, "vqa_accuracy[answer_type=number]": 0.6,
         "vqa_accuracy[answer_type=yes/no]": 1.0, "vqa_accuracy[question_type=how many]": 0.6,
         "vqa_accuracy[question_type=is the]": 1.0}, abs=1e-15)


def test_bad_input() -> None:
    with pytest.raises(MMBenchError, match="2 predictions but 1"):
        vqa_accuracy(["a", "b"], [["a"]])
    with pytest.raises(MMBenchError, match="item 0"):
        vqa_accuracy(["a"], [[]])
    with pytest.raises(MMBenchError, match="answer_types"):
        vqa_accuracy(["a"], [["a"]], answer_types=["x", "y"])


# ------------------------------------------------------------------------------------------------------------
# A second, independent transcription of vqaEval.py (answer records with ids, as the script sees them)
# ------------------------------------------------------------------------------------------------------------

_PUNCT = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
_NUM = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
        "seven": "7", "eight": "8", "nine": "9", "ten": "10"}


class _Official:
    period = re.compile(r"(?!<=\d)(\.)(?!\d)")
    comma = re.compile(r"(\d)(\,)(\d)")

    def punct(self, in_text: str) -> str:
        out = in_text
        for p in _PUNCT:
            if (p + " " in in_text or " " + p in in_text) or (re.search(self.comma, in_text) is not None):
                out = out.replace(p, "")
            else:
                out = out.replace(p, " ")
        return self.period.sub("", out, 32)

    def digit_article(self, in_text: str) -> str:
        out = []
        for word in in_text.lower().split():
            word = _NUM.get(word, word)
            if word not in ("a", "an", "the"):
                out.append(word)
        return " ".join(vqa.VQA_CONTRACTIONS.get(w, w) for w in out)

    def evaluate(self, preds, gts, ans_types):
        acc_qa, acc_type = [], {}
        for pred, answers, ans_type in zip(preds, gts, ans_types):
            answers = [{"answer": a, "answer_id": j + 1} for j, a in enumerate(answers)]
            res = self.digit_article(self.punct(pred.replace("\n", " ").replace("\t", " ").strip()))
            if len(set(a["answer"] for a in answers)) > 1:
                for a in answers:
                    a["answer"] = self.punct(a["answer"])
            gt_acc = []
            for datum in answers:
                others = [item for item in answers if item != datum]
                gt_acc.append(min(1, float(len([o for o in others if o["answer"] == res])) / 3))
            avg = float(sum(gt_acc)) / len(gt_acc)
            acc_qa.append(avg)
            acc_type.setdefault(ans_type, []).append(avg)
        overall = float(sum(acc_qa)) / len(acc_qa)
        return overall, {t: float(sum(v)) / len(v) for t, v in acc_type.items()}, \
            round(100 * float(sum(acc_qa)) / len(acc_qa), 2)


_POOL = ["yes", "no", "Yes", "yes.", "2", "two", "Two.", "3", "three", "1,000", "1000", "red", "the red", "Red!",
         "red,white", "red , white", "dont know", "don't know", "a dog", "dog", "dogs", "3.5", "e.g. cat", "(left)",
         "left", "none", "0", "x;(y", "x y", "blue-green", "blue green", "it's", "ten", "10", "?", ""]


def _noisy(rng: random.Random, text: str) -> str:
    return rng.choice(["", " ", "\t", "\n"]) + text + rng.choice(["", ".", "!", " ", "\n", "?"])


def test_matches_independent_transcription_on_random_cases() -> None:
    rng = random.Random(1234)
    preds, gts, types = [], [], []
    for _ in range(400):
        core = rng.sample(_POOL, rng.randint(1, 4))
        gts.append([rng.choice(core) for _ in range(10)])
        preds.append(_noisy(rng, rng.choice(core + [rng.choice(_POOL)])))
        types.append(rng.choice(["yes/no", "number", "other"]))
    overall, per_type, official = _Official().evaluate(preds, gts, types)
    result = vqa_accuracy(preds, gts, answer_types=types)
    assert result.accuracy.value == overall  # same float operations: equal to the last bit
    assert {t: m.value for t, m in result.per_answer_type.items()} == per_type
    assert result.official_percent["overall"] == official
    assert VQAAccuracy.aggregate(result.stats)["vqa_accuracy"] == overall
    assert 0.05 < overall < 0.95  # the cases exercise both matches and misses
    assert len({v for v in result.stats["vqa_accuracy"].tolist()}) >= 5


# ------------------------------------------------------------------------------------------------------------
# Exact match and ANLS
# ------------------------------------------------------------------------------------------------------------


def test_exact_match_normalisations() -> None:
    preds, refs = ["Red!", "two", "The cat.", "a-b"], [["red"], ["2"], ["cat"], ["a b"]]
    assert exact_match(preds, refs, "strip").stats["exact_match"].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert exact_match(preds, refs, "punct").stats["exact_match"].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert exact_match(preds, refs, "vqa").stats["exact_match"].tolist() == [1.0, 1.0, 1.0, 1.0]
    result = exact_match(preds, refs)
    assert result.value.value == 0.5 and "normalization=punct" in result.value.variant
    assert ExactMatch.aggregate(result.stats) == {"exact_match": 0.5}
    with pytest.raises(MMBenchError, match="normalization"):
        exact_match(preds, refs, "nope")  # type: ignore[arg-type]


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _anls_reference(pred: str, refs: list[str], threshold: float = 0.5) -> float:
    values = []
    for ref in refs:
        gt_answer = " ".join(ref.strip().lower().split())
        det_answer = " ".join(pred.strip().lower().split())
        length = max(len(ref.upper()), len(pred.upper()))
        values.append(0.0 if length == 0 else _levenshtein(gt_answer, det_answer) / length)
    score = 1 - min(values)
    return 0 if score < threshold else score


def test_anls_hand_worked() -> None:
    result = anls(["helo", "abc", "ab", " Hello ", "Hxllo  ", "nope"],
                  [["hello"], ["xyz"], ["ac"], ["hello"], ["hello"], ["nope!", "no"]])
    expected = [0.8, 0.0, 0.5, 1.0, 1 - 1 / 7, 0.8]  # 0.5 is kept: the script zeroes only below the threshold
    assert result.stats["anls"].tolist() == pytest.approx(expected, abs=1e-15)
    assert result.value.value == pytest.approx(sum(expected) / 6, abs=1e-15)
    assert ANLS.aggregate(result.stats)["anls"] == result.value.value


def test_anls_matches_reference_on_random_strings() -> None:
    rng = random.Random(7)
    letters = "abcAB .-"
    preds = ["".join(rng.choice(letters) for _ in range(rng.randint(0, 8))) for _ in range(300)]
    refs = [["".join(rng.choice(letters) for _ in range(rng.randint(1, 8))) for _ in range(rng.randint(1, 3))]
            for _ in range(300)]
    got = anls(preds, refs).stats["anls"].tolist()
    assert got == [_anls_reference(p, r) for p, r in zip(preds, refs)]
    assert 0 < sum(v > 0 for v in got) < 300
