"""The mini video suite: mini-motion's generated clips (deterministic, held out by content, answers right, files
that decode to exactly the rendered frames), the shipped mini-video through the runner (its card's subset
score, batch invariance, the temporal probe's verdicts) and its trainer (inputs as the processor builds them,
a --quick run)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av", reason="PyAV not installed (pip install 'mmbench[video]')")

from mmbench.cli.main import main  # noqa: E402
from mmbench.data.video import FrameSampling, load_clip  # noqa: E402
from mmbench.errors import MMBenchError  # noqa: E402
from mmbench.mini import motion, shapes  # noqa: E402
from mmbench.mini.zoo import model_dir  # noqa: E402
from mmbench.results import RunResult  # noqa: E402

SHIPPED = Path(model_dir("mini-video"))


@pytest.fixture(autouse=True)
def clip_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test writes its clip files under one temporary cache (never the user's)."""
    root = tmp_path_factory.getbasetemp() / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(root))
    return root / "mmbench"


def card() -> dict:
    return json.loads((SHIPPED / "card.json").read_text())


def run(capsys, tmp_path, *args: str) -> tuple[RunResult, Path]:
    out = tmp_path / "out"
    code = main(["run", *args, "--output-dir", str(out), "--no-progress", "--no-cache"])
    assert code == 0, capsys.readouterr().err
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    return RunResult.read(run_dir), run_dir


def metrics(result) -> dict:
    return {m["name"]: m for m in result.metrics}


def samples(run_dir: Path, result) -> dict:
    path = run_dir / result.files["samples"]
    return {s["id"]: s for s in map(json.loads, path.read_text().splitlines())}


# ------------------------------------------------------------------------------------------------------ the data

def test_splits_are_deterministic_balanced_and_held_out_by_content():
    test, val = motion.generate("test"), motion.generate("val")
    assert len(test) == motion.SPLITS["test"].size == 240 and len(val) == motion.SPLITS["val"].size == 120
    assert [c.record() for c in test] == [c.record() for c in motion.generate("test")]  # same content twice
    assert [c.record() for c in motion.generate("test", n=10)] == [c.record() for c in test[:10]]  # a prefix
    assert len({c.content for c in test}) == 240 and len({c.content for c in val}) == 120
    assert {shapes.bucket(c.content) for c in test} == {0} and {shapes.bucket(c.content) for c in val} == {1}
    train = [c for c, _ in zip(motion.iter_clips("train"), range(600))]
    assert all(shapes.bucket(c.content) >= 4 for c in train)
    assert not {c.content for c in train} & {c.content for c in test + val}
    # 80 questions per type; directions and first shapes balanced, crossing counts uniform given n
    kinds = [c.kind for c in test]
    assert all(kinds.count(t) == 80 for t in motion.QUESTION_TYPES)
    answers = {t: [c.question["answers"][0] for c in test if c.kind == t] for t in motion.QUESTION_TYPES}
    assert all(answers["direction"].count(d) == 20 for d in motion.DIRECTIONS)
    assert all(answers["appear"].count(s) == 16 for s in shapes.SHAPES)
    assert set(answers["crossing"]) == {"0", "1", "2", "3"}
    with pytest.raises(MMBenchError, match="has 240 clips"):
        motion.generate("test", n=241)
    with pytest.raises(MMBenchError, match="unknown mini-motion split"):
        motion.generate("tests")


def test_files_are_the_same_bytes_twice_and_decode_to_the_rendered_frames(tmp_path):
    clips = motion.generate("test", n=6)
    a = motion.ensure_files(clips, tmp_path / "a")
    b = motion.ensure_files(clips, tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert [p.name for p in a] == [f"{c.id}.mp4" for c in clips]
    for clip, path in zip(clips, a):
        decoded = load_clip(path, FrameSampling(frames=motion.N_FRAMES))
        assert decoded.n_frames == 8 and decoded.native_fps == 4.0 and decoded.duration == 1.75
        for got, want in zip(decoded.frames, clip.frames()):  # lossless: bit-identical
            assert np.array_equal(np.asarray(got), np.asarray(want))
        four = load_clip(path, FrameSampling(frames=motion.TASK_FRAMES))
        assert list(four.indices) == motion.task_frame_indices() == [0, 2, 5, 7]
    # an existing file is reused, not rewritten
    stamp = a[0].stat().st_mtime_ns
    motion.ensure_files(clips[:1], tmp_path / "a")
    assert a[0].stat().st_mtime_ns == stamp


def _colour_centre(frame, rgb) -> tuple[float, float] | None:
    """Centre of the pixels within 40 of ``rgb`` (the object's jittered colour is within 12, noise 6)."""
    arr = np.asarray(frame, dtype=np.int16)
    mask = np.abs(arr - np.asarray(rgb)).max(axis=2) <= 40
    if mask.sum() < 6:
        return None
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def test_answers_follow_from_what_the_frames_show():
    clips = motion.generate("test", n=60)
    checked = {t: 0 for t in motion.QUESTION_TYPES}
    for c in clips:
        q = c.question
        first, middle, last = c.frames([0, motion.MOVE_FROM, motion.N_FRAMES - 1])
        assert np.array_equal(np.asarray(first), np.asarray(middle)) or c.kind == "appear"  # no motion before
        if c.kind == "direction":
            colour, shape = q["question"].split()[4:6]
            obj = next(o for o in c.objects if (o["colour"], o["shape"]) == (colour, shape))
            assert q["answers"] == [motion.direction_of(obj)]
            if len(c.objects) == 1:  # the object's pixels move that way between the first and last frames
                (x0, y0), (x1, y1) = _colour_centre(first, shapes.COLOURS[colour]), \
                    _colour_centre(last, shapes.COLOURS[colour])
                ux, uy = motion.DIRECTIONS[q["answers"][0]]
                assert (x1 - x0) * ux + (y1 - y0) * uy > 6 and abs((x1 - x0) * uy) + abs((y1 - y0) * ux) < 4
        elif c.kind == "crossing":
            xs = [(motion.position(o, 0)[0], motion.position(o, 7)[0]) for o in c.objects]
            assert len({o["colour"] for o in c.objects}) == len(c.objects)  # the colour names an object
            assert q["answers"] == [str(sum((a - 32) * (b - 32) < 0 for a, b in xs))]
            assert all(a != 32 and b != 32 for a, b in xs)
        else:
            arr = np.asarray(first, dtype=np.int16)
            assert (arr.max(axis=2) - arr.min(axis=2)).max() < 60  # the first frame is empty (grey + noise)
            early, late = sorted(c.objects, key=lambda o: o["appear"])
            assert q["answers"] == [early["shape"]] and early["shape"] != late["shape"]
            assert 1 <= early["appear"] <= 2 < late["appear"] <= 5
            two = c.frames([2])[0]  # frame 2 (sampled by frames: 4) shows the first object only
            sat = np.asarray(two, dtype=np.int16)
            colourful = (sat.max(axis=2) - sat.min(axis=2)) > 60
            assert colourful[early["y"], early["x"]] and not colourful[late["y"], late["x"]]
        checked[c.kind] += 1
    assert all(n == 20 for n in checked.values())


def test_the_data_format_writes_its_files_once_under_the_cache(tmp_path, clip_cache):
    from mmbench.data.sources import DataContext
    from mmbench.registry import DATA_FORMATS

    load = DATA_FORMATS.get("mini-motion")
    ds = load({"split": "test", "n": 6}, DataContext(task="t"))
    assert [r["id"] for r in ds.records] == [f"test-1234-{i:05d}-q0" for i in range(6)]
    r = ds.records[2]
    assert Path(r["video"]).is_file() and Path(r["video"]).parent == clip_cache / "mini-motion" / "v1" / "seed-1234" / \
        "test"
    assert r["question"] == "which shape appears first?" and r["question_type"] == "appear" and len(r["answers"]) == 1
    again = load({"split": "test", "n": 6}, DataContext(task="t"))
    assert again.fingerprint == ds.fingerprint and again.records == ds.records
    assert load({"split": "test", "n": 5}, DataContext(task="t")).fingerprint != ds.fingerprint
    clips = load({"split": "val", "n": 3, "unit": "clip", "cache_dir": "here"},
                 DataContext(task="t", data_dir=tmp_path))
    assert clips.records[0]["captions"][0].endswith(".") and Path(clips.records[0]["video"]).parent == \
        tmp_path / "here" / "v1" / "seed-1234" / "val"
    for cfg, message in (({"unit": "image"}, "unit 'image' is not one of question, clip"),
                         ({"split": "train"}, "unbounded training stream"), ({"frames": 4}, "no option 'frames'")):
        with pytest.raises(MMBenchError, match=message):
            load(cfg, DataContext(task="t"))


# ------------------------------------------------------------------------------------------- the shipped model

needs_model = pytest.mark.skipif(not (SHIPPED / "model.safetensors").is_file(), reason="mini-video not shipped")


@needs_model
def test_shipped_mini_video_reproduces_its_card_subset_and_is_batch_invariant(capsys, tmp_path, one_thread):
    sub = card()["subset"]
    res, run_dir = run(capsys, tmp_path, "--model", "mini-video", "--tasks", "mini-motion", "--limit", str(sub["n"]))
    got = metrics(res.results[0])
    for name, value in sub["scores"].items():
        assert round(got[name]["value"], 4) == value, name
    first = {k: s["answer"] for k, s in samples(run_dir, res.results[0]).items()}
    res2, run_dir2 = run(capsys, tmp_path / "b1", "--model", "mini-video", "--tasks", "mini-motion", "--limit",
                         str(sub["n"]), "--batch-size", "5")
    assert {k: s["answer"] for k, s in samples(run_dir2, res2.results[0]).items()} == first
    s = samples(run_dir, res.results[0])["test-1234-00000-q0"]
    assert s["video"]["frame_indices"] == [0, 2, 5, 7] and s["image_tokens"] == 4 * 65


@needs_model
def test_shipped_mini_video_uses_time_and_one_frame_is_static(capsys, tmp_path, one_thread):
    """The temporal probe on the whole test split reproduces the card: uses-time with 4 frames, static with one."""
    scores = card()["scores"]
    res, _ = run(capsys, tmp_path, "--model", "mini-video", "--tasks", "probe:mini-motion,probe:mini-motion-1frame")
    by_task = {r.task: metrics(r) for r in res.results}
    for task, key in (("probe:mini-motion", "probe"), ("probe:mini-motion-1frame", "probe_1frame")):
        got, want = by_task[task], scores[key]
        for name in ("exact_match[real]", "exact_match[frames-shuffled]", "exact_match[frames-reversed]",
                     "exact_match[one-frame]", "temporal_reliance", "relative_temporal_reliance"):
            assert round(got[name]["value"], 4) == want[name], (task, name)
        extra = got["relative_temporal_reliance"]["extra"]
        assert extra["verdict"] == want["verdict"] and [round(x, 4) for x in extra["ci95"]] == want["ci95"]
    assert scores["probe"]["verdict"] == "uses-time" and scores["probe"]["ci95"][0] >= 0.25
    # one frame: every condition shows the model the same single frame
    one = by_task["probe:mini-motion-1frame"]
    assert one["temporal_reliance"]["value"] == 0.0
    assert one["relative_temporal_reliance"]["extra"]["verdict"] == "static"


@needs_model
def test_card_scores_clear_the_single_frame_baselines():
    s = card()["scores"]
    assert s["temporal_verdict"] == "uses-time" and s["temporal_verdict_1frame"] == "static"
    best_single = max(s["exact_match_1frame"], s["majority_accuracy"], s["majority_per_type_accuracy"],
                      s["first_frame_ceiling_accuracy"], s["probe"]["exact_match[one-frame]"])
    assert s["exact_match"] >= best_single + 0.3
    assert s["exact_match_1frame"] <= s["first_frame_ceiling_accuracy"] + 0.05


# --------------------------------------------------------------------------------------------------- training

def test_training_inputs_are_what_the_processor_builds():
    from mmbench.mini import prompts
    from mmbench.mini.train import video

    model, processor = video.build(video.SHIPPED_BASE, 0, video.QUICK)
    clip = motion.generate("test", n=1)[0]
    frames = clip.frames(motion.task_frame_indices())
    encode = video.Encoder(processor, video.n_image_tokens(model))
    for shown in (frames, frames[:1]):
        ex = video.Example(0, tuple(range(len(shown))), prompts.vqa_prompt(clip.question["question"]), "left")
        batch = encode([ex], video.vlm.normalise(np.stack([np.asarray(f) for f in shown])))
        ref = processor(images=[shown], text=[video.vlm.render(processor, ex.prompt, len(shown))],
                        return_tensors="pt")
        n = ref["input_ids"].shape[1]
        assert batch["input_ids"][0, :n].tolist() == ref["input_ids"][0].tolist()
        assert (batch["input_ids"][0] == processor.tokenizer.convert_tokens_to_ids("<image>")).sum() == 65 * len(shown)
        assert np.allclose(batch["pixel_values"].numpy(), ref["pixel_values"].numpy(), atol=1e-5)
    assert "<unk>" not in processor.tokenizer.convert_ids_to_tokens(
        processor.tokenizer(" ".join(q for c in motion.generate("test", n=9) for q, _ in motion.training_questions(c)))
        ["input_ids"])


def test_quick_training_writes_a_loadable_model_and_card(tmp_path, one_thread):
    import torch
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from mmbench.mini.train import video

    out = tmp_path / "mini-video"
    assert video.main(["--out", str(out), "--quick"]) == 0
    model = LlavaForConditionalGeneration.from_pretrained(out)
    base = LlavaForConditionalGeneration.from_pretrained(video.SHIPPED_BASE)
    assert model.config.text_config.max_position_embeddings == 512
    got, ref = model.model.vision_tower.state_dict(), base.model.vision_tower.state_dict()
    assert all(torch.equal(got[k], v) for k, v in ref.items())  # the vision tower is frozen
    old = AutoProcessor.from_pretrained(video.SHIPPED_BASE).tokenizer.get_vocab()
    new = AutoProcessor.from_pretrained(out).tokenizer.get_vocab()
    assert all(new[w] == i for w, i in old.items()) and len(new) > len(old)  # mini-llava's ids unchanged
    c = json.loads((out / "card.json").read_text())
    assert c["training"]["steps"] == video.QUICK.steps and (out / "README.md").read_text().startswith("# mini-video")
    assert set(c["scores"]["probe"]) >= {"temporal_reliance", "verdict"} and c["subset"]["n"] == video.QUICK.subset_n
