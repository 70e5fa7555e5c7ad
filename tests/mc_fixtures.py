"""Small copies of the multiple-choice and yes/no benchmarks (MMBench, MMMU, ScienceQA, SEED-Bench, AI2D,
MMStar, POPE, MME) in their exact official release layouts and in the Hugging Face hub-cache layout of their
copies, plus a scripted VLM whose answers exercise each benchmark's reading rule.

Each benchmark is a list of questions with the answer the scripted model gives (a string, or a function of
the prompt for answers that depend on the option order of a circular pass), so the expected scores below
can be worked out by hand from the official rules.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Callable, ClassVar

import benchmark_fixtures
from benchmark_fixtures import COLOURS, _img, image, write
from mmbench.adapters.base import Adapter
from mmbench.capabilities import Capability, Generation

ANSWER_DIRECTLY = "Answer with the option's letter from the given choices directly."
SHORT = "Answer the question using a single word or phrase."


def letter_of_option(text: str) -> Callable[[str], str]:
    """A scripted answer: the letter the prompt shows before ``text`` (right in every circular pass)."""
    def answer(prompt: str) -> str:
        m = re.search(rf"^([A-Z])\. {re.escape(text)}$", prompt, re.M)
        return m.group(1) if m else "?"
    return answer


class ScriptedMC(Adapter):
    """Answers each prompt with the answer scripted for the question it contains (the longest match), and
    records the colours of the images each prompt came with (``seen``)."""

    capabilities: ClassVar[frozenset] = frozenset({Capability.GENERATE_TEXT})
    answers: ClassVar[dict[str, str | Callable[[str], str]]] = {}
    seen: ClassVar[list[tuple[str, list[str]]]] = []

    def prepare(self, requests, config):
        return list(requests)

    def generate(self, prepared, config):
        out = []
        for r in prepared:
            colours = []
            for img in r.images:
                rgb = img.convert("RGB").getpixel((0, 0))
                colours.append(min(COLOURS, key=lambda c: sum((a - b) ** 2 for a, b in zip(COLOURS[c], rgb))))
            type(self).seen.append((r.prompt, colours))
            hits = [q for q in self.answers if q in r.prompt]
            answer = self.answers[max(hits, key=len)] if hits else "?"
            out.append(Generation(answer(r.prompt) if callable(answer) else answer, prompt_sent=r.prompt))
        return out


def b64(colour: str) -> str:
    return base64.b64encode(image(colour)).decode()


# ------------------------------------------------------------------------------------------ MMBench
# (index, question, hint, options A-D (None: empty), answer, category, l2-category, colour, scripted answer)
# CircularEval with VLMEvalKit's 2024 can_infer and no judge: a question counts only if every pass is right.
MMBENCH_EN = [
    (0, "What is the main object in the image?", None, ["cat", "dog", "teddy bear", "rabbit"], "C",
     "image_topic", "coarse_perception", "red", letter_of_option("teddy bear")),  # right in all 4 passes: 1
    (1, "Which animal barks?", "Think of pets.", ["cat", "dog", None, None], "B",
     "attribute_recognition", "finegrained_perception (instance-level)", "green", "B"),  # pass 2 shows dog as A: 0
    (2, "What colour is the sky?", None, ["blue", "green", "red", None], "A",
     "image_scene", "coarse_perception", "blue", "It is blue"),  # the option's text in every pass: 1
    (3, "How many wheels does a bicycle have?", None, ["one", "two", None, None], "B",
     "physical_property_reasoning", "attribute_reasoning", "yellow", "I am not sure"),  # unparsed, no judge: 0
]
MMBENCH_EN_EXPECTED = {"mc_accuracy": 0.5, "mc_accuracy[l2_category=coarse_perception]": 1.0,
                       "mc_accuracy[l2_category=finegrained_perception (instance-level)]": 0.0,
                       "mc_accuracy[l2_category=attribute_reasoning]": 0.0,
                       "mc_accuracy[category=image_scene]": 1.0, "mc_accuracy_first_pass": 0.75,
                       "mc_unparseable_rate": 0.25}
MMBENCH_CN = [
    (0, "图中的主要物体是什么？", None, ["猫", "狗", None, None], "B", "image_topic", "coarse_perception", "red", "B"),
    (1, "天空是什么颜色？", "看天空。", ["蓝色", "绿色", None, None], "A", "image_scene", "coarse_perception", "blue",
     letter_of_option("蓝色")),
]
MMBENCH_CN_EXPECTED = {"mc_accuracy": 0.5, "mc_accuracy_first_pass": 1.0}
MMBENCH_TEST = {  # (index, question, options, colour, scripted answer): no answers in test files
    "EN": [(10, "Which one is a fruit?", ["apple", "car"], "red", "A"),
           (11, "Which one is a vehicle?", ["car", "apple", "tree"], "green", "C")],
    "CN": [(20, "哪一个是水果？", ["苹果", "汽车"], "red", "A")],
}


def _rotated(options: list, answer: str | None, p: int) -> tuple[list, str | None]:
    opts = [o for o in options if o is not None]
    k = len(opts)
    shown = [opts[(j + p) % k] for j in range(k)] + [None] * (len(options) - k)
    return shown, None if answer is None else "ABCD"[("ABCD".index(answer) - p) % k]


def mmbench_rows(bench: list, with_answer: bool = True, shared_images: bool = True, split: str = "dev") -> list[dict]:
    """One row per circular pass (index + p * 1e6), passes after all main rows as in VLMEvalKit's files; a
    pass's image cell names its main row (``shared_images``) or repeats the base64 (the legacy files)."""
    rows = {0: [], 1: []}
    for index, question, hint, options, answer, category, l2, colour, _ in bench:
        k = sum(o is not None for o in options)
        for p in range(k):
            shown, gold = _rotated(options, answer, p)
            row = {"index": index + p * 1_000_000, "question": question, "hint": hint,
                   **dict(zip("ABCD", shown)), "category": category, "image": b64(colour),
                   "source": "fixture", "l2-category": l2, "split": split}
            if with_answer:
                row["answer"] = gold
            if p and shared_images:
                row["image"] = str(index)
            rows[min(p, 1)].append(row)
    return rows[0] + rows[1]


def test_rows(bench: list) -> list[dict]:
    return mmbench_rows([(i, q, None, opts + [None] * (4 - len(opts)), None, "c", "l2", colour, None)
                         for i, q, opts, colour, _ in bench], with_answer=False, split="test")


def _tsv(path: Path, rows: list[dict]) -> None:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)


# ------------------------------------------------------------------------------------------ MMMU
# (id, question, options list-literal, answer, question type, {image n: colour}, scripted answer)
MMMU_VAL = [
    ("validation_Math_1", "What is x in <image 1>?", "['12', '24', '42', '84']", "C", "multiple-choice",
     {1: "red"}, "(A) or (C)"),  # the last bracketed letter: C, right
    ("validation_Physics_2", "Compare <image 2> with <image 1>. Which is heavier?", "['the ball', 'the cube']",
     "B", "multiple-choice", {1: "red", 2: "green"}, "B"),  # images sent as image_1, image_2
    ("validation_Art_Theory_3", "What year was <image 1> painted?", "[]", "1889", "open", {1: "blue"},
     "It was painted in 1889."),  # open: the number 1889 is found: right
    ("validation_Accounting_4", "Which amount is shown in <image 1>?", "['$5', '$10', '$15']", "A",
     "multiple-choice", {1: "yellow"}, "The answer is B"),  # " B ": wrong
    ("validation_Math_5", "What is 24/7 as in <image 1>?", "[]", "['24/7', '3.429']", "open", {1: "red"},
     "3.43"),  # 3.429 rounds to 3.43: right
    ("validation_Biology_6", "Which picture shows a cell?", "['<image 1>', '<image 2>']", "A", "multiple-choice",
     {1: "green", 2: "blue"}, "A"),  # images named only in the options
]
MMMU_VAL_EXPECTED = {"mmmu_accuracy": 5 / 6, "mmmu_accuracy[discipline=Science]": 1.0,
                     "mmmu_accuracy[discipline=Business]": 0.0, "mmmu_accuracy[discipline=Art and Design]": 1.0,
                     "mmmu_accuracy[subject=Math]": 1.0, "mmmu_accuracy[subject=Accounting]": 0.0}
MMMU_DEV = [("dev_Math_1", "What is 2+2 in <image 1>?", "['3', '4']", "B", "multiple-choice", {1: "red"}, "(B)")]
MMMU_TEST = [
    ("test_Math_1", "What is 3+3 in <image 1>?", "['6', '7']", "?", "multiple-choice", {1: "red"}, "(A) 6"),
    ("test_Art_Theory_2", "Name the colour of <image 1>.", "[]", "?", "open", {1: "red"}, "red"),
]
MMMU_SUBJECTS = ("Math", "Physics", "Art_Theory", "Accounting", "Biology")

# ------------------------------------------------------------------------------------------ ScienceQA
# (pid, question, choices, answer index, hint, has image, subject, scripted answer): LLaVA's eval_science_qa.py
SCIENCEQA = [
    ("11", "Which organelle is labeled?", ["nucleus", "ribosome", "wall"], 1, "A cell is shown.", True,
     "natural science", "The answer is B."),  # the answer phrase: right
    ("12", "Which continent is highlighted?", ["Asia", "Africa"], 0, "", True, "social science", "A"),
    ("13", "Which word rhymes with cat?", ["hat", "dog"], 0, "", False, "language science", "A"),  # no image
    ("14", "Which state is farthest north?", ["Ohio", "Maine", "Texas", "Utah"], 1, "Look at the map.", True,
     "social science", "B."),  # "B." is neither a letter nor "B. ...": wrong
    ("15", "What is the source of energy?", ["sun", "wind"], 0, "", True, "natural science", "A. sun"),
]
SCIENCEQA_EXPECTED = {"mc_accuracy": 0.75, "mc_accuracy[subject=natural science]": 1.0,
                      "mc_accuracy[subject=social science]": 0.5}

# ------------------------------------------------------------------------------------------ SEED-Bench
# (question_id, question, choices, answer, dimension id, data_type, data_id, image file, scripted answer)
SEED = [
    ("101669", "How many towels are in the image?", ["One", "Two", "Three", "Four"], "A", 5, "image",
     "1454426_2591111986", "1454426_2591111986.jpg", "A"),  # data_id without the file's extension
    ("101670", "What is the setting of the image?", ["beach", "forest", "city", "desert"], "B", 1, "image",
     "img_2.png", "img_2.png", "A."),  # LLaVA's check is exact: "A." is wrong anyway
    ("101671", "What is the weather like?", ["rainy", "snowy", "sunny", "foggy"], "C", 1, "image",
     "img_3.png", "img_3.png", " C "),  # stripped (LLaVA strips every output): right
    ("v1738", "What is the person doing?", ["running", "sitting", "eating", "reading"], "A", 10, "video",
     "v1738.mp4", None, "A"),  # a video question: not in the image dimensions
    ("101672", "What does the sign say?", ["stop", "go", "yield", "exit"], "D", 9, "image", "img_5.png",
     "img_5.png", "D"),
]
SEED_EXPECTED = {"mc_accuracy": 0.75, "mc_accuracy[dimension=Instances Counting]": 1.0,
                 "mc_accuracy[dimension=Scene Understanding]": 0.5, "mc_accuracy[dimension=Text Understanding]": 1.0}
SEED_DIMENSION_NAMES = {"Scene Understanding": 1, "Instance Identity": 2, "Instance Attributes": 3,
                        "Instance Location": 4, "Instances Counting": 5, "Spatial Relation": 6,
                        "Instance Interaction": 7, "Visual Reasoning": 8, "Text Understanding": 9,
                        "Action Recognition": 10, "Action Prediction": 11, "Procedure Understanding": 12}

# ------------------------------------------------------------------------------------------ AI2D
AI2D = [  # (question, options, answer index as lmms-lab writes it, scripted answer): lmms-eval's reading
    ("Which label shows the sun?", ["D", "A", "C", "B"], "1", "B. the sun"),  # leading "B.": right
    ("What stage comes after the egg?", ["larva", "pupa", "adult"], "0", "The answer is A."),  # wrong
    ("Which is a producer?", ["grass", "fox"], "0", "(A)"),  # punctuation ignored: right
]
AI2D_EXPECTED = 2 / 3

# ------------------------------------------------------------------------------------------ MMStar
MMSTAR = [  # (index, question with inline options, answer, category, l2 category, scripted answer)
    (0, "Which fruit is shown?\nOptions: A: apple, B: banana, C: cherry, D: grape", "A", "coarse perception",
     "image scene and topic", "apple"),  # the official matcher reads the first character: A, right
    (1, "How many dots are there?\nOptions: A: 1, B: 2, C: 3, D: 4", "C", "fine-grained perception",
     "object counting", "The answer is C"),
    (2, "Where is the cup relative to the plate?\nOptions: A: left of, B: right of", "B", "instance reasoning",
     "cross-instance relation reasoning", "I think B"),  # first character "i": wrong
    (3, "Which pair is complementary?\nOptions: A: red, blue, B: green, C: yellow", "A", "math", "geometry",
     "(a) red, blue"),  # an option with a comma; "(a": right
]
MMSTAR_EXPECTED = {"mc_accuracy": 0.75, "mc_accuracy[category=instance reasoning]": 0.0,
                   "mc_accuracy[category=math]": 1.0, "mc_accuracy[l2_category=object counting]": 1.0}

# ------------------------------------------------------------------------------------------ POPE
# {category: [(question_id, question, label, scripted answer)]}; question ids restart in every file
POPE = {
    "random": [(1, "Is there a dog in the image?", "yes", "Yes"),  # TP
               (2, "Is there a snowboard in the image?", "no", "No"),  # TN
               (3, "Is there a person in the image?", "yes", "Yes, no doubt"),  # "no" token: FN
               (4, "Is there a giraffe in the image?", "no", "NO")],  # case-sensitive: yes, FP
    "popular": [(1, "Is there a car in the image?", "yes", "Yes."),  # TP
                (2, "Is there a chair in the image?", "no", "Not sure."),  # "Not" is not a no word: FP
                (3, "Is there a cup in the image?", "yes", "There is a cup, yes."),  # TP
                (4, "Is there a bus in the image?", "no", "no")],  # TN
    "adversarial": [(1, "Is there a fork in the image?", "yes", "I do not know."),  # FN
                    (2, "Is there a knife in the image?", "no", "No, there is not."),  # TN
                    (3, "Is there a spoon in the image?", "yes", "Yes")],  # TP
}
POPE_EXPECTED = {  # per category: accuracy, precision, recall, F1, yes-ratio
    "random": {"pope_accuracy": 0.5, "pope_precision": 0.5, "pope_recall": 0.5, "pope_f1": 0.5,
               "pope_yes_ratio": 0.5},
    "popular": {"pope_accuracy": 0.75, "pope_precision": 2 / 3, "pope_recall": 1.0, "pope_f1": 0.8,
                "pope_yes_ratio": 0.75},
    "adversarial": {"pope_accuracy": 2 / 3, "pope_precision": 1.0, "pope_recall": 0.5, "pope_f1": 2 / 3,
                    "pope_yes_ratio": 1 / 3},
}
POPE_POOLED = {"pope_accuracy": 7 / 11, "pope_precision": 4 / 6, "pope_recall": 4 / 6, "pope_f1": 2 / 3,
               "pope_yes_ratio": 6 / 11}

# ------------------------------------------------------------------------------------------ MME
MME_FOLDERS = ("artwork", "celebrity", "landmark", "posters", "scene")  # images/ + questions_answers_YN/
MME_SUFFIX = " Please answer yes or no."


def mme_images() -> dict[str, list[tuple[str, list[tuple[str, str, str]]]]]:
    """{subtask: [(image stem, [(question, gt, scripted answer), (..)])]}: every subtask right except
    existence (one image with a wrong answer) and count (an unparseable answer; a double space before
    "Please answer yes or no.")."""
    from mmbench.metrics.yesno import MME_SUBTASKS

    out = {}
    for sub in MME_SUBTASKS:
        noun = sub.replace("_", " ")
        out[sub] = [(f"{sub[:3]}0001", [(f"Is this a {noun} image with a red square?{MME_SUFFIX}", "Yes", "Yes"),
                                        (f"Is this a {noun} image with a blue circle?{MME_SUFFIX}", "No", "No")])]
    out["existence"].append(("000000006040", [("Is there a train in this image?" + MME_SUFFIX, "Yes", "Not sure."),
                                              ("Is there a boat in this image?" + MME_SUFFIX, "No", "No")]))
    out["count"][0] = ("000000001234", [("Is there a total of two dogs in the image?  Please answer yes or no.",
                                         "Yes", "Yes"),
                                        ("Are there three dogs in the image?" + MME_SUFFIX, "No", "Unknown")])
    out["artwork"][0] = ("14777", [("Is this artwork created by Monet?" + MME_SUFFIX, "Yes", "yes."),
                                   ("Is this artwork created by Goya?" + MME_SUFFIX, "No", "no")])
    return out


# existence: acc 3/4, acc+ 1/2 -> 125; count: acc 1/2, acc+ 0 -> 50; the other 12 subtasks: 200
MME_EXPECTED = {"mme_score[subtask=existence]": 125.0, "mme_score[subtask=count]": 50.0,
                "mme_acc_plus[subtask=existence]": 0.5, "mme_score[subtask=artwork]": 200.0,
                "mme_perception": 125.0 + 50.0 + 8 * 200.0, "mme_cognition": 800.0}


def _question_base(question: str) -> str:
    return re.sub(r"\s*Please answer yes or no\.$", "", question)


def scripted_answers() -> dict[str, str | Callable[[str], str]]:
    out: dict[str, str | Callable[[str], str]] = {}
    for bench in (MMBENCH_EN, MMBENCH_CN):
        out.update({q: a for _, q, *_, a in bench})
    out.update({q: a for bench in MMBENCH_TEST.values() for _, q, _, _, a in bench})
    out.update({q: a for _, q, _, _, _, _, a in MMMU_VAL + MMMU_DEV + MMMU_TEST})
    out.update({q: a for _, q, _, _, _, _, _, a in SCIENCEQA})
    out.update({q: a for _, q, *_, a in SEED})
    out.update({q: a for q, _, _, a in AI2D})
    out.update({q.split("\n")[0]: a for _, q, *_, a in MMSTAR})
    out.update({q: a for rows in POPE.values() for _, q, _, a in rows})
    out.update({_question_base(q): a for imgs in mme_images().values() for _, qs in imgs for q, _, a in qs})
    out["Filler question of"] = "(A)"  # MMMU/MMMU's other subjects (every config has every split)
    return out


# ------------------------------------------------------------------------------------------ official layouts

def write_official(root: Path) -> Path:
    """Every benchmark's official release files under ``root`` (the --data-dir of the task files)."""
    # MMBench: VLMEvalKit's TSVs (a circular pass's image cell names its main row)
    _tsv(root / "mmbench" / "MMBench_DEV_EN.tsv", mmbench_rows(MMBENCH_EN))
    _tsv(root / "mmbench" / "MMBench_DEV_CN.tsv", mmbench_rows(MMBENCH_CN))
    _tsv(root / "mmbench" / "MMBench_TEST_EN.tsv", test_rows(MMBENCH_TEST["EN"]))
    _tsv(root / "mmbench" / "MMBench_TEST_CN.tsv", test_rows(MMBENCH_TEST["CN"]))
    # ScienceQA: problems.json, pid_splits.json, images/<split>/<pid>/image.png
    problems = {"1": {"question": "Train question?", "choices": ["a", "b"], "answer": 0, "hint": "",
                      "image": None, "task": "closed choice", "grade": "grade1", "subject": "language science",
                      "topic": "t", "category": "c", "skill": "s", "lecture": "", "solution": "", "split": "train"}}
    for pid, q, choices, answer, hint, has_image, subject, _ in SCIENCEQA:
        problems[pid] = {"question": q, "choices": choices, "answer": answer, "hint": hint,
                         "image": "image.png" if has_image else None, "task": "closed choice", "grade": "grade5",
                         "subject": subject, "topic": "topic", "category": "category", "skill": "skill",
                         "lecture": "", "solution": "", "split": "test"}
        if has_image:
            write(root / "scienceqa" / "images" / "test" / pid / "image.png", image("green"))
    write(root / "scienceqa" / "problems.json", problems)
    write(root / "scienceqa" / "pid_splits.json", {"train": ["1"], "val": [], "test": [p for p, *_ in SCIENCEQA],
                                                   "trainval": ["1"], "minitrain": [], "minival": [], "minitest": []})
    # SEED-Bench: SEED-Bench.json + SEED-Bench-image/
    questions = []
    for qid, q, choices, answer, dim, kind, data_id, file, _ in SEED:
        questions.append({"answer": answer, **{f"choice_{c}": o for c, o in zip("abcd", choices)},
                          "data_id": data_id, "data_type": kind, "question": q, "question_id": qid,
                          "question_type_id": dim, **({"segment": [0, 10]} if kind == "video" else {})})
        if file:
            fmt = "JPEG" if file.endswith("jpg") else "PNG"
            write(root / "seed_bench" / "SEED-Bench-image" / file, image("blue", fmt))
    write(root / "seed_bench" / "SEED-Bench.json", {"questions": questions, "question_type": SEED_DIMENSION_NAMES})
    # AI2D: AllenAI's ai2d-all.zip unzipped (images/, questions/<id>.png.json) + ai2d_test_ids.csv; image 7 is
    # not a test image, so its question is not asked
    per_image = {"0": AI2D[:2], "5": AI2D[2:], "7": [("Which part is the root?", ["stem", "root"], "1", "B")]}
    for image_id, rows in per_image.items():
        write(root / "ai2d" / "images" / f"{image_id}.png", image("yellow"))
        write(root / "ai2d" / "questions" / f"{image_id}.png.json", {"imageName": f"{image_id}.png", "questions": {
            q: {"abcLabel": all(len(o) == 1 for o in opts), "answerTexts": opts, "correctAnswer": int(answer),
                "questionId": f"{image_id}.png-{k}"} for k, (q, opts, answer, _) in enumerate(rows)}})
    write(root / "ai2d" / "ai2d_test_ids.csv", "0\n5\n")
    # MMStar: VLMEvalKit's MMStar.tsv
    _tsv(root / "mmstar" / "MMStar.tsv", [{"index": i, "question": q, "answer": a, "category": c, "l2-category": l2,
                                           "bench": "fixture", "image": b64("red")} for i, q, a, c, l2, _ in MMSTAR])
    # POPE: output/coco/coco_pope_<category>.json (JSON lines) + COCO val2014
    n = 0
    for category, rows in POPE.items():
        lines = []
        for qid, q, label, _ in rows:
            n += 1
            name = f"COCO_val2014_{n:012d}.jpg"
            write(root / "coco" / "val2014" / name, image("red", "JPEG"))
            lines.append({"question_id": qid, "image": name, "text": q, "label": label})
        write(root / "pope" / f"coco_pope_{category}.json", "".join(f"{_json(x)}\n" for x in lines))
    # MME: MME_Benchmark_release_version/<subtask>/ (flat, or images/ + questions_answers_YN/)
    base = root / "mme" / "MME_Benchmark_release_version"
    for sub, imgs in mme_images().items():
        for stem, qs in imgs:
            folder = sub in MME_FOLDERS
            ext = ".jpg" if folder or sub == "existence" else ".png"
            fmt = "JPEG" if ext == ".jpg" else "PNG"
            write(base / sub / ("images" if folder else "") / f"{stem}{ext}", image("yellow", fmt))
            write(base / sub / ("questions_answers_YN" if folder else "") / f"{stem}.txt",
                  "".join(f"{q}\t{gt}\n" for q, gt, _ in qs))
    return root


def _json(x: object) -> str:
    import json

    return json.dumps(x)


# ------------------------------------------------------------------------------------------ the HF cache layout

def commit_of(repo: str) -> str:
    """The fixture's snapshot commit of ``repo``: one per repository (the datasets cache keys a local folder's
    prepared copy by the folder's name, so two snapshots named alike would share it)."""
    import hashlib

    return hashlib.sha1(repo.encode()).hexdigest()


def _repo(hub: Path, repo: str, configs: dict) -> None:
    """benchmark_fixtures._repo, under this repository's own commit."""
    benchmark_fixtures._repo(hub, repo, configs)
    folder = hub / f"datasets--{repo.replace('/', '--')}"
    (folder / "snapshots" / "0123456789abcdef0123456789abcdef01234567").rename(folder / "snapshots" / commit_of(repo))
    write(folder / "refs" / "main", commit_of(repo))


def _mmmu_columns(rows: list) -> tuple[dict, dict]:
    from datasets import Image, Value

    s = Value("string")
    cols = {"id": [], "question": [], "options": [], "explanation": [], **{f"image_{k}": [] for k in range(1, 8)},
            "img_type": [], "answer": [], "topic_difficulty": [], "question_type": [], "subfield": []}
    for qid, q, options, answer, qtype, images, _ in rows:
        cols["id"].append(qid)
        cols["question"].append(q)
        cols["options"].append(options)
        cols["explanation"].append("")
        for k in range(1, 8):
            cols[f"image_{k}"].append(_img(images[k]) if k in images else None)
        cols["img_type"].append("['Diagrams']")
        cols["answer"].append(answer)
        cols["topic_difficulty"].append("Easy")
        cols["question_type"].append(qtype)
        cols["subfield"].append("fixture")
    feats = {k: (Image() if k.startswith("image_") else s) for k in cols}
    return cols, feats


def _by_subject(rows: list, subject: str) -> list:
    from mmbench.metrics.mmmu import subject_of

    return [r for r in rows if subject_of(r[0]) == subject]


def write_hf_cache(hub: Path) -> Path:
    """The benchmarks' Hugging Face copies, as ``load_dataset`` leaves them in the hub cache."""
    from datasets import Image, List, Value

    s, i64 = Value("string"), Value("int64")
    # MMBench: lmms-lab/MMBench configs en (dev, test) and cn (dev, test), one row per pass, images in every row
    def mmb(rows: list[dict], string_index: bool) -> tuple[dict, dict]:
        names = ["index", "question", "hint", "answer", "A", "B", "C", "D", "category", "image", "source",
                 "L2-category", "comment", "split"]
        cols = {n: [] for n in names}
        for r in rows:
            img = r["image"] if len(r["image"]) > 64 else \
                next(x["image"] for x in rows if str(x["index"]) == r["image"])
            for n in names:
                value = {"image": {"bytes": base64.b64decode(img), "path": None}, "L2-category": r.get("l2-category"),
                         "index": str(r["index"]) if string_index else r["index"]}.get(n, r.get(n))
                cols[n].append("nan" if n == "C" and value is None else value)  # lmms-lab writes some NaNs as "nan"
        feats = {n: s for n in names}
        feats.update(image=Image(), index=s if string_index else i64)
        return cols, feats
    _repo(hub, "lmms-lab/MMBench", {
        "en": {"dev": mmb(mmbench_rows(MMBENCH_EN), True), "test": mmb(test_rows(MMBENCH_TEST["EN"]), True)},
        "cn": {"dev": mmb(mmbench_rows(MMBENCH_CN), False), "test": mmb(test_rows(MMBENCH_TEST["CN"]), False)}})
    # MMMU: MMMU/MMMU (a config per subject: only the fixture's subjects are declared) and lmms-lab/MMMU
    configs = {}
    for subject in MMMU_SUBJECTS:
        configs[subject] = {}
        for split, rows in (("validation", MMMU_VAL), ("dev", MMMU_DEV), ("test", MMMU_TEST)):
            mine = _by_subject(rows, subject) or [(f"{split}_{subject}_99", f"Filler question of {subject} <image 1>?",
                                                   "['x', 'y']", "A" if split != "test" else "?", "multiple-choice",
                                                   {1: "red"}, "A")]
            configs[subject][split] = _mmmu_columns(mine)
    _repo(hub, "MMMU/MMMU", configs)
    _repo(hub, "lmms-lab/MMMU", {"default": {"validation": _mmmu_columns(MMMU_VAL), "dev": _mmmu_columns(MMMU_DEV),
                                             "test": _mmmu_columns(MMMU_TEST)}})
    # ScienceQA: lmms-lab/ScienceQA config ScienceQA-IMG (no pid column)
    img_rows = [r for r in SCIENCEQA if r[5]]
    cols = {"image": [_img("green") for _ in img_rows], "question": [r[1] for r in img_rows],
            "choices": [r[2] for r in img_rows], "answer": [r[3] for r in img_rows], "hint": [r[4] for r in img_rows],
            "task": ["closed choice"] * len(img_rows), "grade": ["grade5"] * len(img_rows),
            "subject": [r[6] for r in img_rows], "topic": ["topic"] * len(img_rows),
            "category": ["category"] * len(img_rows), "skill": ["skill"] * len(img_rows),
            "lecture": [""] * len(img_rows), "solution": [""] * len(img_rows)}
    feats = {k: s for k in cols}
    feats.update(image=Image(), choices=List(s), answer=Value("int8"))
    _repo(hub, "lmms-lab/ScienceQA", {"ScienceQA-IMG": {"test": (cols, feats)}})
    # SEED-Bench: lmms-lab/SEED-Bench, `image` a list of images (a video question: several frames)
    cols = {"answer": [], "choice_a": [], "choice_b": [], "choice_c": [], "choice_d": [], "data_id": [],
            "data_type": [], "question": [], "question_id": [], "question_type_id": [], "image": []}
    for qid, q, choices, answer, dim, kind, data_id, _, _ in SEED:
        for c, o in zip("abcd", choices):
            cols[f"choice_{c}"].append(o)
        cols["answer"].append(answer)
        cols["data_id"].append(data_id)
        cols["data_type"].append(kind)
        cols["question"].append(q)
        cols["question_id"].append(qid)
        cols["question_type_id"].append(dim)
        cols["image"].append([_img("blue")] * (3 if kind == "video" else 1))
    feats = {k: s for k in cols}
    feats.update(question_type_id=i64, image=List(Image()))
    _repo(hub, "lmms-lab/SEED-Bench", {"default": {"test": (cols, feats)}})
    # AI2D: lmms-lab/ai2d
    _repo(hub, "lmms-lab/ai2d", {"default": {"test": (
        {"question": [q for q, *_ in AI2D], "options": [o for _, o, _, _ in AI2D], "answer": [a for _, _, a, _ in AI2D],
         "image": [_img("yellow") for _ in AI2D]},
        {"question": s, "options": List(s), "answer": s, "image": Image()})}})
    # MMStar: Lin-Chen/MMStar, one config (val)
    _repo(hub, "Lin-Chen/MMStar", {"val": {"val": (
        {"index": [i for i, *_ in MMSTAR], "question": [q for _, q, *_ in MMSTAR],
         "image": [_img("red") for _ in MMSTAR],
         "answer": [a for _, _, a, *_ in MMSTAR], "category": [c for _, _, _, c, _, _ in MMSTAR],
         "l2_category": [l2 for *_, l2, _ in MMSTAR],
         "meta_info": [{"source": "fixture", "split": "val", "image_path": f"{i}.jpg"} for i, *_ in MMSTAR]},
        {"index": i64, "question": s, "image": Image(), "answer": s, "category": s, "l2_category": s,
         "meta_info": {"source": s, "split": s, "image_path": s}})}})
    # POPE: lmms-lab/POPE config default (split test, all categories) and Full (a split per category)
    def pope(categories: list[str]) -> tuple[dict, dict]:
        rows = [(c, r) for c in categories for r in POPE[c]]
        cols = {"id": [str(n) for n in range(len(rows))], "question_id": [str(r[0]) for _, r in rows],
                "question": [r[1] for _, r in rows], "answer": [r[2] for _, r in rows],
                "image_source": [f"img{n}" for n in range(len(rows))], "image": [_img("red") for _ in rows],
                "category": [c for c, _ in rows]}
        feats = {k: s for k in cols}
        feats["image"] = Image()
        return cols, feats
    _repo(hub, "lmms-lab/POPE", {"default": {"test": pope(["adversarial", "popular", "random"])},
                                 "Full": {c: pope([c]) for c in POPE}})
    # MME: lmms-lab/MME (question_id = the image's path)
    cols = {"question_id": [], "image": [], "question": [], "answer": [], "category": []}
    for sub, imgs in mme_images().items():
        for stem, qs in imgs:
            for q, gt, _ in qs:
                folder = "images/" if sub in MME_FOLDERS else ""
                cols["question_id"].append(f"{sub}/{folder}{stem}.jpg")
                cols["image"].append(_img("yellow"))
                cols["question"].append(q)
                cols["answer"].append(gt)
                cols["category"].append(sub)
    feats = {k: s for k in cols}
    feats["image"] = Image()
    _repo(hub, "lmms-lab/MME", {"default": {"test": (cols, feats)}})
    return hub
