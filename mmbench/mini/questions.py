"""POPE-style and multiple-choice questions about mini-shapes scenes: the mini suite's hallucination and
multiple-choice benchmarks (``mini-pope``, ``mini-mc``) and the matching examples the mini VLMs train on.

mini-pope asks "is there a <colour> <shape> in the image?" about every object of a scene (yes) and as many
absent objects (no), sampled three ways as POPE samples its negatives: ``random`` (uniformly among the
absent colour+shape classes), ``popular`` (the absent classes most frequent in the question set's scenes)
and ``adversarial`` (POPE takes the objects that most often co-occur with the ones present; mini-shapes
places objects independently, so the confusable ones are those sharing a colour or a shape with an object
present: absent classes ranked by how many present objects they share an attribute with, then by how
often they co-occur with the present classes in the scenes). mini-mc turns the scene's questions into
lettered options: the answer among distractors of the same kind (colours, shapes, positions, counts; two
options for sizes), in a seeded order.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np

from mmbench.mini import shapes

VERSION = "1"  # bump on any change to the questions generated here (part of the data fingerprint)
POPE_CATEGORIES = ("random", "popular", "adversarial")
MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
# What each VQA question type's answer is chosen among, for the distractors of mini-mc.
ANSWER_SPACE: dict[str, tuple[str, ...]] = {
    "what color": tuple(shapes.COLOURS), "what shape": shapes.SHAPES,
    "where": tuple(shapes.POSITIONS.values()), "how many": ("0", "1", "2", "3"), "what size": ("small", "large"),
}
LETTERS = "ABCD"


def _classes(scene: shapes.Scene) -> list[str]:
    return [f"{o['colour']} {o['shape']}" for o in scene.objects]


def pope_question(cls: str) -> str:
    colour, shape = cls.split()
    return f"is there {shapes._a(colour)} {colour} {shape} in the image?"


def pope_questions(scenes: list[shapes.Scene], seed: int) -> list[dict]:
    """Per scene and category: a yes question for every object and a no question for as many absent
    classes (see the module doc), ids ``<scene>-<category>-<k>``."""
    frequency = Counter(c for s in scenes for c in _classes(s))
    cooccur = Counter(frozenset(p) for s in scenes for p in combinations(_classes(s), 2))
    out = []
    for i, scene in enumerate(scenes):
        present = _classes(scene)
        absent = [c for c in shapes.CLASS_NAMES if c not in present]
        rng = np.random.default_rng([seed, 707, i])
        order = {c: k for k, c in enumerate(rng.permutation(absent).tolist())}  # seeded tie-break
        shared = {c: sum(c.split()[0] == p.split()[0] or c.split()[1] == p.split()[1] for p in present)
                  for c in absent}
        together = {c: sum(cooccur[frozenset((c, p))] for p in present) for c in absent}
        negatives = {
            "random": sorted(absent, key=order.__getitem__),
            "popular": sorted(absent, key=lambda c: (-frequency[c], order[c])),
            "adversarial": sorted(absent, key=lambda c: (-shared[c], -together[c], order[c])),
        }
        for category in POPE_CATEGORIES:
            asked = [(c, "yes") for c in present] + [(c, "no") for c in negatives[category][:len(present)]]
            for k, (cls, label) in enumerate(asked):
                out.append({"id": f"{scene.id}-{category}-{k}", "image": scene.image, "image_id": scene.id,
                            "question": pope_question(cls), "answers": [label], "label": label,
                            "category": category})
    return out


def mc_question(question: dict, rng: np.random.Generator) -> tuple[list[str], str] | None:
    """(options, answer letter) for one VQA question of a scene, or None for types without options."""
    space = ANSWER_SPACE.get(question["question_type"])
    if space is None:
        return None
    answer = max(question["answers"], key=question["answers"].count)
    others = [a for a in space if a != answer]
    picked = [others[int(j)] for j in rng.choice(len(others), size=min(3, len(others)), replace=False)]
    options = [answer, *picked]
    options = [options[int(j)] for j in rng.permutation(len(options))]
    return options, LETTERS[options.index(answer)]


def mc_questions(scenes: list[shapes.Scene], seed: int) -> list[dict]:
    """The scenes' VQA questions (except yes/no ones) as lettered multiple-choice questions."""
    out = []
    for i, scene in enumerate(scenes):
        rng = np.random.default_rng([seed, 808, i])
        for q in scene.questions:
            made = mc_question(q, rng)
            if made is not None:
                out.append({"id": str(q["question_id"]), "image": scene.image, "image_id": scene.id,
                            "question": q["question"], "options": made[0], "answer": made[1],
                            "question_type": q["question_type"]})
    return out


def mc_prompt(question: str, options: list[str]) -> str:
    """The prompt of mini-mc (as the multiple-choice kind renders its default template without a hint)."""
    lettered = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
    return f"{question}\n{lettered}\n{MC_INSTRUCTION}"


def training_examples(scene: shapes.Scene, rng: np.random.Generator) -> list[tuple[str, str]]:
    """(user prompt, reply) pairs the VLMs train on for one training scene: two lettered multiple-choice
    questions (two of its questions with options, or one in two orders) answered with the option's text, as
    many VLMs answer (the benchmark's rule finds the letter of the option named), and two object-existence
    questions, one about an object present (yes) and one about an absent class (no): a random one or, half
    the time, one sharing a colour or a shape with an object present."""
    from mmbench.mini import prompts

    out = []
    eligible = [q for q in scene.questions if q["question_type"] in ANSWER_SPACE]
    for k in range(2 if eligible else 0):
        q = eligible[k % len(eligible)]
        options, letter = mc_question(q, rng)
        out.append((mc_prompt(q["question"], options), options[LETTERS.index(letter)]))
    present = _classes(scene)
    absent = [c for c in shapes.CLASS_NAMES if c not in present]
    near = [c for c in absent if any(c.split()[0] == p.split()[0] or c.split()[1] == p.split()[1] for p in present)]
    pool = near if near and rng.integers(2) == 0 else absent
    for cls, reply in ((present[int(rng.integers(len(present)))], "yes"), (pool[int(rng.integers(len(pool)))], "no")):
        out.append((prompts.vqa_prompt(pope_question(cls)), reply))
    return out
