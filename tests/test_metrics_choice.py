"""Multiple-choice and yes/no rules against the official scorers' behaviour on their tricky cases.

The expected values were obtained by running each official function (VLMEvalKit can_infer 2024 revision,
MMMU eval_utils, LLaVA eval_science_qa / convert_seed_for_submission, lmms-eval's AI2D filter, MMStar_eval,
POPE evaluate.py, MME calculation.py) on the same inputs; rows where MMMU falls back to a random letter
are checked for determinism instead."""

from __future__ import annotations

import random

import numpy as np
import pytest

from mmbench.errors import MMBenchError
from mmbench.metrics import choice, mmmu, yesno
from mmbench.metrics.base import subset
from mmbench.metrics.choice import extract_choice, rotations
from mmbench.metrics.choice_metrics import MME, MMMUAccuracy, MultipleChoiceAccuracy, POPE

OPTIONS = ["dog", "cat", "a bird", "fish"]
MMB = ["cat", "dog", "teddy bear", "rabbit"]


@pytest.mark.parametrize("generation, expected", [
    ("B", "B"), ("b.", "B"), ("(B)", "B"), ("B)", "B"), ("[B]", "B"), ("B:", "B"), ("**C**", "C"),
    ("B. cat", "B"), ("(B) cat", "B"), ("C: a bird", "C"),
    ("Answer: B", "B"), ("The answer is B", "B"), ("The answer is (D).", "D"), ("I think the answer is C.", "C"),
    ("cat", "B"), ("Cat.", "B"), ("a bird", "C"),
    ("A cat", None),              # a bare leading letter followed by a space is an article
    ("b. cat", None),             # a leading lower-case letter counts only when it is the whole answer
    ("A or B", None), ("A, B", None), ("(A) or (B)", None), ("The answer is B, not (A)", None),  # two options
    ("E", None), ("The answer is E", None),  # no such option
    ("I don't know", None), ("", None), ("The answer is a dog", None),
])
def test_letter_rule(generation: str, expected: str | None) -> None:
    assert extract_choice(generation, OPTIONS) == expected


@pytest.mark.parametrize("generation, expected", [  # VLMEvalKit can_infer (2024), options cat/dog/teddy bear/rabbit
    ("B", "B"), ("B.", "B"), ("(B)", "B"), ("The answer is (B).", "B"), ("B. dog", "B"), ("**B**", "B"),
    ("Answer: C", "C"), ("A and B", None), ("I think it's the dog", "B"), ("I think it is a cat", "A"),
    ("A dog", "A"), ("A dog is shown here", "A"), ("The answer is a dog", "B"),
    ("The answer is definitely the cat", "A"), ("The correct answer is **B**. Here is why: A is wrong.", None),
    ("B is correct because the animal in the picture barks loudly and has four legs", "B"),
    ("Looking at the picture carefully, the animal shown is clearly B", "B"), ("b", None), ("答案是B", None),
    ("Z", "Z"), ("Cannot determine the answer", "Z"), ("None of the above", None), ("teddy bear", "C"),
    ("bear", None), ("cat and dog", None), ("A teddy bear", "A"), ("C. A teddy bear is in the image", "C"),
    ("A. cat B. dog", None), ("Failed to obtain answer via API", None), ("The dog is sitting next to a rabbit", None),
])
def test_vlmevalkit_rule(generation: str, expected: str | None) -> None:
    assert choice.read_vlmevalkit(generation, MMB).letter == expected


def test_vlmevalkit_letters_beyond_the_options_are_not_read() -> None:
    assert choice.read_vlmevalkit("D", MMB[:3]).letter is None
    assert choice.read_vlmevalkit("E", MMB).letter is None


@pytest.mark.parametrize("generation, expected", [  # MMMU parse_multi_choice_response, options 12/24/42/84
    ("The correct answer is (C) 42", "C"), ("C", "C"), ("C.", "C"), ("(A) or (C)", "C"),
    ("(C) is wrong, (A) is right", "A"), ("A B", "B"), ("The answer is 42 because 6 times 7 equals 42.", "C"),
    ("Answer: B", "B"), ("I think it is A, because B is wrong", "B"), ("The answer is A.", "A"),
])
def test_mmmu_rule(generation: str, expected: str) -> None:
    read = choice.read_mmmu(generation, ["12", "24", "42", "84"], "validation_Math_1")
    assert read.letter == expected and read.how != "random"


def test_mmmu_rule_content_and_random_fallback() -> None:
    animals = ["cat", "dog", "bird", "fish"]
    assert choice.read_mmmu("It is not a cat, and it is not a dog; it is definitely a bird", animals).letter == "C"
    assert choice.read_mmmu("This looks like a category of animals, nothing more here", animals).letter == "A"
    assert choice.read_mmmu("I don't know", list("123456789")).letter == "I"  # the pronoun is option I
    # no letter found ("C.'" keeps its ".", "Answer:B", lower case, bold, "B) 24"): MMMU's random letter, here
    # seeded by (42, item id): the same in any order, subset or batch
    for text in ("C.'", "none", "Answer:B", "a", "**B**", "B) 24", "D: 84"):
        reads = {choice.read_mmmu(text, ["12", "24", "42", "84"], f"id{k}") for k in range(40)}
        assert {r.how for r in reads} == {"random"} and len({r.letter for r in reads}) > 1
        assert choice.read_mmmu(text, ["12", "24", "42", "84"], "id7") == choice.read_mmmu(
            text, ["12", "24", "42", "84"], "id7")


@pytest.mark.parametrize("response, gold, right", [  # MMMU parse_open_response + eval_open
    ("2.50", "2.5", True), ("The answer is 2.5.", "2.5", True), ("0.1", "0.10", True),
    ("7,243,000", "7243000", True), ("3.43", ["24/7", "3.429"], True), ("24/7", ["24/7", "3.429"], True),
    ("1/64", "1/64", True), ("C", "C", True), ("c", "C", True), ("The stage is embryonic", "embryonic", True),
    ("6.5 mL", "6.5", True), ("It weighs 2 moles, so 12 g", "2", False), ("−120", "-120", False),
    ("-120", "-120", True), ("2.828", "2.83", True), ("1.055", "1.06", False), ("x = 5", "5", True),
    ("60%", "60", True), ("MgS", ["$MgS$", "MgS"], True), ("Tampa, Florida", ["Tampa", "Florida"], True),
    ("1e3", "1000", True), ("The result is 4. So the final answer is 5", "4", False),
    ("There are 3 apples", "3", True), ("Tampa", "['Tampa', 'Florida']", True),  # a list given as its literal
])
def test_mmmu_open_answers(response: str, gold, right: bool) -> None:
    assert mmmu.open_correct(gold, response) is right


@pytest.mark.parametrize("generation, expected", [  # LLaVA eval_science_qa.py on the stripped output
    ("B", "B"), ("B.", None), ("B. fish", "B"), ("B.fish", None), ("The answer is B.", "B"), ("The answer is B", None),
    ("The answer is B, fish", "B"), ("b", None), ("b.", None), ("(B)", None), ("E", None), ("D", None),
    ("The answer is B. The answer is C.", None), ("Answer: B", None), (" B", "B"), ("B\n", "B"), ("fish", None),
    ("B: fish", None), ("The answer is b.", None),
])
def test_llava_scienceqa_rule(generation: str, expected: str | None) -> None:
    assert choice.read_llava_sqa(generation, ["bird", "fish", "frog"]).letter == expected


@pytest.mark.parametrize("generation, expected", [  # LLaVA convert_seed_for_submission (gold A): exact letter
    ("A", "A"), ("A.", None), ("a", None), (" A", "A"), ("(A)", None), ("A. The dog", None),
    ("The answer is A", None), ("Answer: B", None), ("AB", None), ("", None), ("A\n", "A"),
])
def test_llava_seed_rule(generation: str, expected: str | None) -> None:
    assert choice.read_llava_exact(generation, MMB).letter == expected


@pytest.mark.parametrize("generation, expected", [  # lmms-eval AI2D: regex filter + exact_match(ignore case/punct)
    ("B", "B"), ("B.", "B"), ("b", "B"), ("(B)", "B"), ("B:", "B"), ("B\n", "B"), ("B. the sun", "B"),
    (" B. x", "B"), ("B) sun", None), ("b. the sun", None), ("The answer is B.", None), ("Answer: B", None),
    ("option B", None), ("A. no, B", "A"), ("BB", None), ("", None),
])
def test_lmms_mcq_rule(generation: str, expected: str | None) -> None:
    assert choice.read_lmms_mcq(generation, MMB).letter == expected


@pytest.mark.parametrize("generation, expected", [  # MMStar_eval: first character and three prefixes
    ("A", "A"), ("a", "A"), ("A.", "A"), ("(A)", "A"), ("Option A", "A"), ("The answer is A", "A"),
    ("The answer is (A)", None), ("Answer: B", "A"), ("apple", "A"), ("A cat", "A"), ("(a) dog", "A"), (" A", "A"),
    ("I think A", None), ("option: A", None), ("The correct answer is A.", None), ("**A**", None), ("B", "B"),
    ("C. no, A", "C"), ("", None),
])
def test_mmstar_rule(generation: str, expected: str | None) -> None:
    assert choice.read_mmstar(generation, MMB).letter == expected


@pytest.mark.parametrize("generation, expected", [  # Video-MME eval_your_results.py extract_characters_regex
    ("C", "C"), ("The best answer is B.", "B"), ("(D)", "D"), ("A man is cooking.", "A"), ("Candles.", "C"),
    ("The answer is B, not A.", "B"), ("Best option: C", "B"),  # "Best option:" alone is not in its list
    ("The best option is D", "D"), ("c", None), ("I cannot tell.", None), ("", None), ("the answer: e", None),
    ("The correct answer is (A)", "A"), ("I think it is D, Dogs", "D"),
])
def test_videomme_rule(generation: str, expected: str | None) -> None:
    assert choice.read_videomme(generation, MMB).letter == expected


def test_videomme_rule_reports_the_official_denominator() -> None:
    """eval_your_results.py divides by the answers it could read; mc_accuracy counts the others wrong."""
    targets = [{"id": str(i), "duration": "short" if i < 2 else "long",
                "passes": [{"options": MMB, "answer": "C"}]} for i in range(4)]
    preds = [[{"text": t}] for t in ("C", "no idea", "The answer is C", "B")]
    metric = MultipleChoiceAccuracy({"rule": "videomme", "by": ["duration"]})
    metric.update(preds, targets)
    report = metric.compute()
    v = {m.name: m.value for m in report.values}
    assert v["mc_accuracy"] == 0.5 and v["mc_unparseable_rate"] == 0.25
    assert v["mc_accuracy_answered"] == pytest.approx(2 / 3)
    assert v["mc_accuracy_answered[duration=short]"] == 1.0 and v["mc_accuracy_answered[duration=long]"] == 0.5
    assert MultipleChoiceAccuracy.aggregate(report.stats) == pytest.approx(v)
    none_read = subset(report.stats, np.array([1, 1]))
    assert np.isnan(MultipleChoiceAccuracy.aggregate(none_read)["mc_accuracy_answered"])
    # other rules keep their single denominator
    other = MultipleChoiceAccuracy({"rule": "letter"})
    other.update(preds, targets)
    assert "mc_accuracy_answered" not in {m.name for m in other.compute().values}


def test_rotations_as_mmbench_circular_copies() -> None:
    assert rotations(MMB, "C") == [(MMB, "C"), (["dog", "teddy bear", "rabbit", "cat"], "B"),
                                   (["teddy bear", "rabbit", "cat", "dog"], "A"),
                                   (["rabbit", "cat", "dog", "teddy bear"], "D")]
    assert rotations(["yes", "no"], "A") == [(["yes", "no"], "A"), (["no", "yes"], "B")]


def _mc(passes_texts: list[list], rule: str = "vlmevalkit", judge: list | None = None, by=()):
    targets = [{"id": str(i), "category": "x" if i % 2 else "y",
                "passes": [{"options": o, "answer": a} for o, a in rotations(MMB, "C")]} for i in range(len(passes_texts))]
    preds = [[{"text": t, "judge": (judge or {}).get((i, k))} for k, t in enumerate(texts)]
             for i, texts in enumerate(passes_texts)]
    metric = MultipleChoiceAccuracy({"rule": rule, "by": list(by)})
    metric.update(preds, targets)
    return metric.compute()


def test_circular_eval_as_mmbench_scores_groups() -> None:
    report = _mc([["C", "B", "A", "D"], ["C", "B", "A", "A"], ["teddy bear"] * 4, ["C", "B", "A", "I am not sure"],
                  ["C", "B", "A", "Z"], ["A", "A", "A", "A"]], by=["category"])
    v = {m.name: m.value for m in report.values}
    assert report.stats["mc_accuracy"].tolist() == [1, 0, 1, 0, 0, 0]
    assert v["mc_accuracy"] == pytest.approx(2 / 6) and v["mc_unparseable_rate"] == pytest.approx(1 / 6)
    assert v["mc_accuracy_first_pass"] == pytest.approx(5 / 6)  # only the last question misses its first pass
    assert v["mc_accuracy[category=y]"] == pytest.approx(2 / 3) and v["mc_accuracy[category=x]"] == 0.0
    assert report.per_item["choice"][4] == ["C", "B", "A", "Z"]
    assert MultipleChoiceAccuracy.aggregate(report.stats) == pytest.approx(v)
    idx = np.array([0, 0, 2, 5])  # a resample: the aggregate recomputes every value from the statistics
    assert MultipleChoiceAccuracy.aggregate(subset(report.stats, idx))["mc_accuracy"] == 0.75
    # with a judge that reads the unparseable pass as the right letter the question counts
    judged = _mc([["C", "B", "A", "I am not sure"]], judge={(0, 3): "D"})
    assert judged.stats["mc_accuracy"].tolist() == [1.0] and "1 pass(es) read by the judge" in judged.notes[0]


def test_mc_accuracy_refuses_bad_targets() -> None:
    with pytest.raises(MMBenchError, match="not one of the letters A-D"):
        m = MultipleChoiceAccuracy({"rule": "letter"})
        m.update([[{"text": "A"}]], [{"passes": [{"options": MMB, "answer": "E"}]}])
        m.compute()
    with pytest.raises(MMBenchError, match="unknown multiple-choice rule 'vlmevalkit2'"):
        MultipleChoiceAccuracy({"rule": "vlmevalkit2"})


def test_mmmu_accuracy_per_discipline_and_subject() -> None:
    targets = [{"id": "validation_Art_1", "passes": [{"options": ["1", "2"], "answer": "A"}]},
               {"id": "validation_Art_2", "passes": [{"options": [], "answer": "2.5"}]},
               {"id": "validation_Physics_1", "passes": [{"options": ["x", "y", "z"], "answer": "C"}]}]
    preds = [[{"text": "(A)"}], [{"text": "It is 2.50"}], [{"text": "B"}]]
    metric = MMMUAccuracy()
    metric.update(preds, targets)
    report = metric.compute()
    v = {m.name: m.value for m in report.values}
    assert v["mmmu_accuracy"] == pytest.approx(2 / 3)
    assert v["mmmu_accuracy[discipline=Art and Design]"] == 1.0 and v["mmmu_accuracy[subject=Physics]"] == 0.0
    assert MMMUAccuracy.aggregate(report.stats) == pytest.approx(v)


@pytest.mark.parametrize("answer, yes", [  # POPE evaluate.py (LLaVA's eval_pope.py reads the same)
    ("Yes", True), ("No", False), ("Yes.", True), ("No.", False), ("NO", True), ("nO", True), ("Not sure.", True),
    ("not sure", False), ("Yes, no doubt", False), ("Yes, there is a dog. No cat.", True), ("", True),
    ("No, there is not.", False), ("Nope", True), ("There is no dog in the image.", False),
    ("I cannot see any.", True), ("There is a dog, no.", False), ("No\nthere is none", True), ("No\n", True),
    (" no", False), ("no!", True), ("3.5 no", True), ("Yes. No.", True), ("it is NOT here", True),
    ("I do not know.", False),
])
def test_pope_answer_rule(answer: str, yes: bool) -> None:
    assert yesno.pope_says_yes(answer) is yes


def _pope(answers: list[str], labels: list[str], categories=None):
    metric = POPE()
    metric.update(answers, [{"label": lab, **({"category": c} if categories else {})}
                            for lab, c in zip(labels, categories or [None] * len(labels))])
    return {m.name: m.value for m in metric.compute().values}


def test_pope_metrics_as_the_official_script() -> None:
    v = _pope(["yes", "yes", "no", "no", "Yes.", "No."], ["yes", "no", "no", "yes", "yes", "no"])
    assert [v[k] for k in ("pope_accuracy", "pope_precision", "pope_recall", "pope_f1", "pope_yes_ratio")] == \
        pytest.approx([4 / 6, 2 / 3, 2 / 3, 2 / 3, 0.5])
    v = _pope(["yes"] * 4, ["yes", "no", "no", "no"])
    assert (v["pope_accuracy"], v["pope_precision"], v["pope_recall"], v["pope_f1"], v["pope_yes_ratio"]) == \
        pytest.approx((0.25, 0.25, 1.0, 0.4, 1.0))  # yes-ratio of the answers, not of the labels (lmms-eval's)
    v = _pope(["no"] * 4, ["yes", "no", "yes", "no"])  # the official script divides by zero here
    assert v["pope_precision"] == 0.0 and v["pope_f1"] == 0.0 and v["pope_accuracy"] == 0.5


def test_pope_per_category_and_mean_over_categories() -> None:
    answers = ["Yes", "No", "Yes", "Yes", "No", "No"]
    labels = ["yes", "no", "no", "yes", "yes", "no"]
    cats = ["random", "random", "popular", "popular", "adversarial", "adversarial"]
    v = _pope(answers, labels, cats)
    f1 = {"random": 1.0, "popular": 2 / 3, "adversarial": 0.0}
    for c, x in f1.items():
        assert v[f"pope_f1[category={c}]"] == pytest.approx(x)
    assert v["pope_f1[mean over category]"] == pytest.approx(sum(f1.values()) / 3)
    assert v["pope_f1"] == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))  # pooled: P = R = 2/3


@pytest.mark.parametrize("answer, reading", [  # MME calculation.py
    ("Yes", "yes"), ("No", "no"), ("yes.", "yes"), ("No, there is not.", "no"), ("not sure", "no"),
    ("Not sure.", "no"), ("Unknown", "other"), ("", "other"), ("y", "other"), ("n", "other"), ("I think yes", "other"),
    ("eyes", "yes"), ("know", "no"), ("The answer is no", "other"), (" yes", "yes"), ("  yes", "other"),
    ("Yes, no doubt", "yes"), ("...yes", "other"), ("none", "no"), ("noted, yes", "no"), ("YES!", "yes"),
])
def test_mme_answer_rule(answer: str, reading: str) -> None:
    assert yesno.mme_reading(answer) == reading


def test_mme_scores_as_the_eval_tool() -> None:
    preds, targets = [], []
    existence = [(("Yes", "Yes"), ("No", "No")), (("Yes", "Yes"), ("No", "yes")), (("Yes", "maybe"), ("No", "unsure"))]
    for k, pair in enumerate(existence):
        for gt, answer in pair:
            preds.append(answer)
            targets.append({"answers": [gt], "category": "existence", "image_id": f"e{k}"})
    for sub in yesno.MME_SUBTASKS[1:]:
        for gt in ("Yes", "No"):
            preds.append(gt)
            targets.append({"answers": [gt], "category": sub, "image_id": "img"})
    metric = MME()
    metric.update(preds, targets)
    report = metric.compute()
    v = {m.name: m.value for m in report.values}
    assert v["mme_score[subtask=existence]"] == pytest.approx(50 + 100 / 3)
    assert v["mme_perception"] == pytest.approx(1883.3333333333333) and v["mme_cognition"] == 800.0
    assert MME.aggregate(report.stats) == pytest.approx(v)
    with pytest.raises(MMBenchError, match="MME subtask 'posters2'"):
        MME().score(["Yes"], [{"answers": ["Yes"], "category": "posters2", "image_id": "x"}])


def test_pope_rule_equals_a_second_transcription_on_random_answers() -> None:
    rng = random.Random(3)
    words = ["No", "no", "not", "NO", "Not", "yes", "Yes", "there", ".", ",", " ", "\n", "is", "a", "dog."]
    for _ in range(2000):
        text = "".join(rng.choice(words) + rng.choice(["", " "]) for _ in range(rng.randint(0, 8)))
        first = text[:text.index(".")] if "." in text else text
        expected = not set(first.replace(",", "").split(" ")) & {"No", "not", "no"}
        assert yesno.pope_says_yes(text) is expected, text
