"""Video task kinds end to end on clips written here: video-qa with frames sent as images or natively, a
multiple-choice task over video items, video-text retrieval with mean-pooled frame embeddings, and the temporal
probe (a model that reads motion comes out uses-time; the same model shown one frame comes out static)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import yaml

av = pytest.importorskip("av", reason="PyAV not installed (pip install 'mmbench[video]')")

from mmbench.adapters.base import Adapter  # noqa: E402
from mmbench.capabilities import Capability, Generation  # noqa: E402
from mmbench.cli.main import main  # noqa: E402
from mmbench.results import RunResult  # noqa: E402

COLOURS = {"red": (220, 30, 30), "blue": (40, 60, 220)}
FRAMES, FPS, SIZE = 8, 4, 64


def write_motion(path: Path, direction: str, colour: str) -> Path:
    """A 2 s clip: a coloured square crossing a grey frame left to right ("right") or right to left."""
    xs = np.linspace(4, SIZE - 16, FRAMES).astype(int)
    xs = xs if direction == "right" else xs[::-1]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width = stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        for x in xs:
            arr = np.full((SIZE, SIZE, 3), 128, dtype=np.uint8)
            arr[26:38, x:x + 12] = COLOURS[colour]
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def square_x(image) -> float:
    """The x centre of the saturated pixels (the square), or -1 when there are none."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float64)
    mask = (arr.max(2) - arr.min(2)) > 60
    return float(np.nonzero(mask)[1].mean()) if mask.any() else -1.0


class MotionReader(Adapter):
    """Answers which way the square moves from the first and last frames it is given; takes frames as images."""

    capabilities: ClassVar[frozenset] = frozenset({Capability.GENERATE_TEXT})

    def prepare(self, requests, config):
        return list(requests)

    def frames(self, request) -> tuple:
        return request.images

    def generate(self, prepared, config):
        out = []
        for r in prepared:
            frames = self.frames(r)
            if "colour" in r.prompt:
                arr = np.asarray(frames[0], dtype=np.float64).reshape(-1, 3)
                sat = arr[(arr.max(1) - arr.min(1)) > 60].mean(0)
                answer = min(COLOURS, key=lambda c: np.sum((np.asarray(COLOURS[c]) - sat) ** 2))
            else:
                answer = "right" if square_x(frames[-1]) > square_x(frames[0]) else "left"
            out.append(Generation(answer, prompt_sent=f"[{len(frames)} frames] {r.prompt}"))
        return out


class NativeMotionReader(MotionReader):
    """The same, taking the video natively (GenerationRequest.video); refuses images."""

    accepts_video = True

    def frames(self, request) -> tuple:
        assert request.video is not None and not request.images, "expected a native video"
        assert len(request.video.timestamps) == len(request.video.frames)
        return request.video.frames


class FrameEncoder(Adapter):
    """A dual encoder: an image embeds as (x position of the square, 1); "moving right/left at x" texts embed
    the position the square has on average over a clip."""

    capabilities: ClassVar[frozenset] = frozenset({Capability.EMBED})

    def preprocess_images(self, images):
        return [square_x(im) for im in images]

    def embed_images(self, batch):
        return np.stack([[np.cos(x / 20.0), np.sin(x / 20.0)] for x in batch])

    def embed_texts(self, texts):
        return np.stack([[np.cos(float(t.split()[-1]) / 20.0), np.sin(float(t.split()[-1]) / 20.0)] for t in texts])

    def truncated(self, texts):
        return [False] * len(texts)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("video-data")
    rows, mc = [], []
    for i in range(12):
        direction, colour = ("right", "left")[i % 2], ("red", "blue")[(i // 2) % 2]
        write_motion(root / f"clip{i}.mp4", direction, colour)
        rows.append({"id": f"v{i}-dir", "video": f"clip{i}.mp4", "question": "which way does the square move?",
                     "answers": [direction]})
        rows.append({"id": f"v{i}-col", "video": f"clip{i}.mp4", "question": "what colour is the square?",
                     "answers": [colour]})
        mc.append({"id": f"m{i}", "video": f"clip{i}.mp4", "question": "which way does the square move?",
                   "options": ["left", "right"], "answer": "AB"[["left", "right"].index(direction)]})
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "dir.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if r["id"].endswith("-dir")))
    (root / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mc))
    return root


@pytest.fixture
def models():
    from mmbench.registry import MODELS

    for name, cls in (("motion-reader", MotionReader), ("native-motion-reader", NativeMotionReader),
                      ("frame-encoder", FrameEncoder)):
        MODELS.register(name, cls, overwrite=True)  # conftest restores the registries after each test


def task_file(folder: Path, name: str, body: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"task": name, **body}))
    return path


def run(capsys, tmp_path, model: str, task: Path, *extra: str) -> tuple[RunResult, Path]:
    out = tmp_path / "out"
    code = main(["run", "--model", model, "--tasks", str(task), "--output-dir", str(out), "--no-progress", *extra])
    assert code == 0, capsys.readouterr().err
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    return RunResult.read(run_dir), run_dir


def samples(run_dir: Path, result) -> dict:
    path = run_dir / result.files["samples"]
    return {s["id"]: s for s in map(json.loads, path.read_text().splitlines())}


def qa_task(tmp_path, clips, name="vqa-motion", manifest="qa.jsonl", **video) -> Path:
    return task_file(tmp_path / "tasks", name, {"kind": "video-qa", "data": {"format": "jsonl",
                                                                         "path": str(clips / manifest)},
                                                 **({"video": video} if video else {})})


def test_video_qa_sends_frames_as_images_and_logs_the_sampling(capsys, tmp_path, clips, models):
    res, run_dir = run(capsys, tmp_path, "motion-reader", qa_task(tmp_path, clips, frames=4))
    r = res.results[0]
    assert r.kind == "video-qa" and {m["name"]: m["value"] for m in r.metrics}["exact_match"] == 1.0
    s = samples(run_dir, r)["v0-dir"]
    assert s["prompt_sent"].startswith("[4 frames] which way") and s["answer"] == "right"
    assert s["video"] == {"frame_indices": [0, 2, 5, 7], "frame_times": [0.0, 0.5, 1.25, 1.75], "video_frames": 8,
                          "video_duration": 1.75, "video_fps": 4.0}
    video = r.task_info["video"]
    assert video["sent_as"] == "frames as images" and video["sampling"].startswith("4 frames uniform")


def test_native_video_and_frame_labels(capsys, tmp_path, clips, models):
    res, run_dir = run(capsys, tmp_path, "native-motion-reader", qa_task(tmp_path, clips))
    r = res.results[0]
    assert {m["name"]: m["value"] for m in r.metrics}["exact_match"] == 1.0
    assert r.task_info["video"]["sent_as"] == "video (the model's own encoding)"
    assert samples(run_dir, r)["v1-dir"]["prompt_sent"].startswith("[8 frames]")  # default: 8 uniform frames
    # input: native is refused for a model that does not take video; frame labels interleave the frames
    code = main(["run", "--model", "motion-reader", "--tasks", str(qa_task(tmp_path, clips, "nat", input="native")),
                 "--output-dir", str(tmp_path / "o2"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "does not take video; use input: frames" in err and err.count("\n") == 1
    res, run_dir = run(capsys, tmp_path, "motion-reader",
                       qa_task(tmp_path, clips, "lab", frames=2, frame_prompt="Frame {n} at {t} s:"))
    sent = samples(run_dir, res.results[0])["v0-dir"]["prompt_sent"]
    assert sent == "[2 frames] Frame 1 at 0.0 s: \ufffc\nFrame 2 at 1.8 s: \ufffc\nwhich way does the square move?\n" \
                   "Answer the question using a single word or phrase."


def test_multiple_choice_over_video_items(capsys, tmp_path, clips, models):
    task = task_file(tmp_path / "tasks", "mc-motion", {"kind": "multiple-choice", "video": {"frames": 3},
                                                       "data": {"format": "jsonl", "path": str(clips / "mc.jsonl")},
                                                       "circular": True})
    res, run_dir = run(capsys, tmp_path, "motion-reader", task)
    r = res.results[0]
    assert {m["name"]: m["value"] for m in r.metrics}["mc_accuracy"] == 1.0  # the option's text is read
    assert samples(run_dir, r)["m0"]["video"]["frame_indices"] == [0, 4, 7]


def test_temporal_probe_uses_time_and_one_frame_is_static(capsys, tmp_path, clips, models):
    res, _ = run(capsys, tmp_path, "motion-reader", f"probe:{qa_task(tmp_path, clips, frames=4)}")
    values = {m["name"]: m for m in res.results[0].metrics}
    # direction questions flip under reversal; one repeated frame reads as "left"; colour questions never change
    assert values["exact_match[real]"]["value"] == 1.0 and values["exact_match[frames-reversed]"]["value"] == 0.5
    assert values["exact_match[one-frame]"]["value"] == 0.75
    assert values["temporal_reliance"]["value"] == pytest.approx(0.25)  # real - the best ablation (one-frame)
    assert values["relative_temporal_reliance"]["extra"]["verdict"] == "weak"  # half the questions need no time
    # on the direction questions alone the model plainly uses time
    res, _ = run(capsys, tmp_path, "motion-reader", f"probe:{qa_task(tmp_path, clips, 'dir', 'dir.jsonl', frames=4)}")
    values = {m["name"]: m for m in res.results[0].metrics}
    ablated = [values[f"exact_match[{c}]"]["value"] for c in ("frames-shuffled", "frames-reversed", "one-frame")]
    assert ablated[1:] == [0.0, 0.5] and values["temporal_reliance"]["value"] == pytest.approx(1.0 - max(ablated))
    assert values["relative_temporal_reliance"]["extra"]["verdict"] == "uses-time"
    assert any("temporal verdict: uses-time" in n for n in res.results[0].notes)
    # the same model shown one frame: every condition is the same input, so nothing depends on time
    res, _ = run(capsys, tmp_path, "motion-reader", f"probe:{qa_task(tmp_path, clips, 'one', 'dir.jsonl', frames=1)}")
    values = {m["name"]: m for m in res.results[0].metrics}
    assert values["temporal_reliance"]["value"] == 0.0
    assert values["relative_temporal_reliance"]["extra"]["verdict"] == "static"


def test_video_retrieval_mean_pools_frame_embeddings(capsys, tmp_path, clips, models):
    manifest = tmp_path / "ret.jsonl"
    # each clip's caption names its square's mean x over 4 frames (as FrameEncoder embeds it)
    rows = []
    for i in range(12):
        xs = np.linspace(4, SIZE - 16, FRAMES).astype(int)[[0, 2, 5, 7]] + 5.5
        rows.append({"id": f"c{i}", "video": str(clips / f"clip{i}.mp4"), "captions": [f"at {xs.mean() + i:.2f}"]})
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = task_file(tmp_path / "tasks", "ret", {"kind": "video-retrieval", "video": {"frames": 4},
                                                 "data": {"format": "jsonl", "path": str(manifest)}})
    res, run_dir = run(capsys, tmp_path, "frame-encoder", task)
    r = res.results[0]
    got = {m["name"]: m["value"] for m in r.metrics}
    assert 0.0 <= got["t2i_R@1"] <= 1.0 and got["t2i_R@10"] >= got["t2i_R@1"]
    emb = np.load(run_dir / r.files["artifacts"] / "image_embeddings.npy")
    frames = [x + 5.5 for x in np.linspace(4, SIZE - 16, FRAMES).astype(int)[[0, 2, 5, 7]]]
    expected = np.mean([[np.cos(x / 20.0), np.sin(x / 20.0)] for x in frames], axis=0)
    assert np.allclose(emb[0], expected, atol=0.02)  # clip0 moves right: the mean of its 4 unit frame vectors
    assert any("CLIP4Clip" in n for n in r.notes) and r.task_info["video"]["sampling"].startswith("4 frames")
    # the embedding probe reads the same per-video outputs (modality gap, shuffled pairings as the floor)
    res, _ = run(capsys, tmp_path, "frame-encoder", f"probe:{task}")
    probe = {m["name"]: m["value"] for m in res.results[0].metrics}
    assert res.results[0].kind == "embedding-probe" and "modality_gap" in probe


def test_a_corrupt_video_is_a_failed_item(capsys, tmp_path, clips, models):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    rows = [json.loads(line) for line in (clips / "qa.jsonl").read_text().splitlines()][:4]
    for r in rows:
        r["video"] = str(clips / r["video"])
    rows[1]["video"] = str(bad / "broken.mp4")
    (bad / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = task_file(tmp_path / "tasks", "bad", {"kind": "video-qa", "data": {"format": "jsonl",
                                                                          "path": str(bad / "qa.jsonl")}})
    res, run_dir = run(capsys, tmp_path, "motion-reader", task)
    r = res.results[0]
    assert r.n_failed == 1 and r.n_items == 4
    assert {m["name"]: m["value"] for m in r.metrics}["exact_match"] == 0.75
    assert "broken.mp4: cannot be decoded" in samples(run_dir, r)[rows[1]["id"]]["error"]


def test_bad_video_settings_fail_before_any_model_runs(capsys, tmp_path, clips, models):
    for video, message in (({"frame": 4}, "unknown video setting 'frame'; did you mean 'frames'"),
                           ({"frames": 4, "fps": 1}, "exactly one of frames"),
                           ({"input": "stream"}, "video input 'stream' is not one of auto, native, frames"),
                           ({"frame_prompt": "Frame {i}"}, "may use {n} and {t} only")):
        task = qa_task(tmp_path, clips, "bad-settings", **video)
        code = main(["run", "--model", "motion-reader", "--tasks", str(task), "--output-dir", str(tmp_path / "o"),
                     "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, err
