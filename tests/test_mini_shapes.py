"""mini-shapes: determinism, fixed split sizes, content hold-out, and VQAv2-normalised annotations."""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest

from mmbench.errors import MMBenchError
from mmbench.metrics.vqa import normalize_prediction
from mmbench.mini import prompts, shapes

TEST_SPLITS = [name for name, info in shapes.SPLITS.items() if info.size is not None]


@pytest.fixture(scope="module")
def fixed_splits() -> dict[str, list[shapes.Scene]]:
    return {name: shapes.generate(name) for name in TEST_SPLITS}


def test_same_seed_same_bytes_and_records():
    a = shapes.generate("vqa-test", n=12)
    b = shapes.generate("vqa-test", n=12)
    assert [s.image.tobytes() for s in a] == [s.image.tobytes() for s in b]
    assert [s.record() for s in a] == [s.record() for s in b]
    c = shapes.generate("vqa-test", seed=shapes.DEFAULT_SEED + 1, n=12)
    assert all(x.image.tobytes() != y.image.tobytes() for x, y in zip(a, c))
    assert [s.content for s in a] != [s.content for s in c]


def test_train_stream_is_deterministic_and_a_prefix():
    a = shapes.generate("train", seed=7, n=5)
    b = list(itertools.islice(shapes.iter_scenes("train", seed=7), 8))
    assert [s.image.tobytes() for s in a] == [s.image.tobytes() for s in b[:5]]
    assert shapes.generate("captions-test", n=6)[3].record() == shapes.generate("captions-test", n=4)[3].record()


def test_fixed_split_sizes_and_images(fixed_splits):
    for name, scenes in fixed_splits.items():
        assert len(scenes) == shapes.SPLITS[name].size
        assert len({s.id for s in scenes}) == len(scenes)
        img = scenes[0].image
        assert (img.mode, img.size) == ("RGB", (64, 64))
    assert len(fixed_splits["retrieval-test"]) == 1000
    n_questions = sum(len(s.questions) for s in fixed_splits["vqa-test"])
    assert 1000 <= n_questions <= 1500


def test_zeroshot_split_is_balanced_single_objects(fixed_splits):
    scenes = fixed_splits["zeroshot-test"]
    names = shapes.class_names("zeroshot-test")
    assert len(names) == 30 and names[0] == "red circle"
    assert all(len(s.objects) == 1 and s.label == f"{s.objects[0]['colour']} {s.objects[0]['shape']}"
               for s in scenes)
    counts = collections.Counter(s.label for s in scenes)
    assert set(counts) == set(names) and set(counts.values()) == {20}
    with pytest.raises(MMBenchError, match="zeroshot-test"):
        shapes.class_names("vqa-test")


def test_test_content_is_distinct_and_held_out(fixed_splits):
    contents = [s.content for scenes in fixed_splits.values() for s in scenes]
    assert len(set(contents)) == len(contents)  # no scene twice, within or across test splits
    for name, scenes in fixed_splits.items():
        assert {shapes.bucket(s.content) for s in scenes} == set(shapes.SPLITS[name].buckets)
    train_buckets = set(shapes.SPLITS["train"].buckets)
    assert not train_buckets & {b for n in TEST_SPLITS for b in shapes.SPLITS[n].buckets}
    train = shapes.generate("train", seed=3, n=1500)
    assert {shapes.bucket(s.content) for s in train} <= train_buckets
    assert not {s.content for s in train} & set(contents)
    twins = [x for a, b, _ in itertools.islice(shapes.iter_twins(seed=3), 200) for x in (a, b)]
    assert {shapes.bucket(s.content) for s in twins} <= train_buckets


def test_twins_differ_in_exactly_one_attribute():
    seen = set()
    for a, b, change in itertools.islice(shapes.iter_twins(), 60):
        only_a = {tuple(sorted(o.items())) for o in a.objects} - {tuple(sorted(o.items())) for o in b.objects}
        only_b = {tuple(sorted(o.items())) for o in b.objects} - {tuple(sorted(o.items())) for o in a.objects}
        assert len(only_a) == len(only_b) == 1 and len(a.objects) == len(b.objects)
        old, new = dict(only_a.pop()), dict(only_b.pop())
        changed = {k for k in old if old[k] != new[k]}
        expected = {"shape": {"shape"}, "size": {"size"}}.get(change)
        assert changed == expected if expected else (changed and changed <= {"x", "y"})
        seen.add(change)
    assert seen == set(shapes.TWIN_CHANGES)


def test_answers_are_vqa_normalised_with_a_clear_majority(fixed_splits):
    qids = set()
    for s in fixed_splits["vqa-test"]:
        assert 2 <= len(s.questions) <= 3
        for q in s.questions:
            assert q["question_id"] not in qids
            qids.add(q["question_id"])
            assert len(q["answers"]) == 10
            assert all(normalize_prediction(a) == a for a in q["answers"])  # already normalised
            top, count = collections.Counter(q["answers"]).most_common(1)[0]
            assert count >= 8
            assert q["answer_type"] == {"how many": "number", "is there": "yes/no"}.get(q["question_type"], "other")
            if q["answer_type"] == "yes/no":
                assert top in ("yes", "no")
            if q["answer_type"] == "number":
                assert top.isdigit()
    # A generation like "Two." only scores through the official normalisation.
    assert normalize_prediction("Two.") == "2" and normalize_prediction("the red") == "red"


def test_answers_match_the_scene():
    for s in shapes.generate("vqa-test", n=60):
        for q in s.questions:
            top = collections.Counter(q["answers"]).most_common(1)[0][0]
            if q["question"] in ("how many shapes are there?", "how many objects are in the image?"):
                assert top == str(len(s.objects))
            if q["question_type"] == "what color":
                shape = q["question"].split()[-1].rstrip("?")
                assert [o["colour"] for o in s.objects if o["shape"] == shape] == [top]


def test_captions_name_every_object():
    for s in shapes.generate("captions-test", n=40):
        assert len(s.captions) == 5 and len(set(s.captions)) == 5
        for c in s.captions:
            assert c == c.lower() and c.endswith(".")
            for o in s.objects:
                assert f"{o['colour']} {o['shape']}" in c


def test_questions_balance_yes_and_no(fixed_splits):
    answers = [collections.Counter(q["answers"]).most_common(1)[0][0]
               for s in fixed_splits["vqa-test"] for q in s.questions if q["answer_type"] == "yes/no"]
    share = answers.count("yes") / len(answers)
    assert 0.35 < share < 0.65


def test_fingerprint_and_errors():
    fp = shapes.fingerprint("vqa-test", 5)
    assert shapes.VERSION in fp and "vqa-test" in fp and "5" in fp
    assert fp != shapes.fingerprint("vqa-test", 6) != shapes.fingerprint("captions-test", 5)
    with pytest.raises(MMBenchError, match="unknown mini-shapes split"):
        shapes.generate("nope")
    with pytest.raises(MMBenchError, match="n="):
        shapes.generate("train")
    with pytest.raises(MMBenchError, match="600"):
        shapes.generate("zeroshot-test", n=601)


def test_noise_image_and_prompts():
    img = shapes.noise_image(np.random.default_rng(0))
    assert img.size == (64, 64) and np.asarray(img).std() > 60
    assert prompts.vqa_prompt("what color is the circle?") == (
        "what color is the circle?\nAnswer the question using a single word or phrase.")
    assert prompts.zeroshot_prompts("red circle") == ["a photo of a red circle.", "a red circle."]
