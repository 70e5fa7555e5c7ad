"""Video decoding and frame sampling (mmbench/data/video.py) on videos written here with PyAV: exact frame
indices and timestamps for both samplings, B-frames decoded in presentation order, and one clear item error
per unreadable file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av", reason="PyAV not installed (pip install 'mmbench[video]')")

from mmbench.data.video import FrameSampling, load_clip  # noqa: E402
from mmbench.errors import ItemError, MMBenchError  # noqa: E402


def level(i: int) -> int:
    """Frame i's grey level: far enough apart that a lossy codec keeps them distinct."""
    return 16 + 9 * i


def write_video(path: Path, n: int = 25, fps: int = 10, codec: str = "libx264", size: int = 64) -> Path:
    """``n`` flat grey frames at ``fps``, frame i at grey level(i); libx264's default settings use B-frames, so
    decode order differs from presentation order."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), level(i), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "grey.mp4")


def decoded_indices(clip) -> list[int]:
    """Which source frame each decoded frame is, read from its grey level."""
    return [int(round((np.asarray(f, dtype=np.float64).mean() - 16) / 9)) for f in clip.frames]


def test_uniform_count_takes_rounded_linspace_indices_in_time_order(video):
    clip = load_clip(video, FrameSampling(frames=8))
    expected = [int(i) for i in np.round(np.linspace(0, 24, 8))]
    assert list(clip.indices) == expected == [0, 3, 7, 10, 14, 17, 21, 24]
    assert decoded_indices(clip) == expected  # the pixels are those frames' (B-frames reordered)
    assert clip.timestamps == pytest.approx([i / 10 for i in expected])
    assert (clip.n_frames, clip.duration, clip.native_fps) == (25, pytest.approx(2.4), pytest.approx(10.0))
    assert all(f.mode == "RGB" and f.size == (64, 64) for f in clip.frames)
    assert clip.record() == {"frame_indices": expected, "frame_times": [round(i / 10, 4) for i in expected],
                             "video_frames": 25, "video_duration": 2.4, "video_fps": 10.0}


def test_more_frames_asked_than_the_video_has_gives_each_once(video):
    clip = load_clip(video, FrameSampling(frames=40))
    assert list(clip.indices) == list(range(25)) and decoded_indices(clip) == list(range(25))


def test_fixed_fps_takes_the_frame_on_screen_at_each_time(video):
    clip = load_clip(video, FrameSampling(frames=None, fps=2))
    assert list(clip.indices) == [0, 5, 10, 15, 20] and decoded_indices(clip) == [0, 5, 10, 15, 20]
    assert clip.timestamps == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    # 3 fps: t = 0, 0.333, 0.667, ... -> the last frame shown at or before each time
    clip = load_clip(video, FrameSampling(frames=None, fps=3))
    assert list(clip.indices) == [int(np.floor(k / 3 * 10 + 1e-9)) for k in range(8)] == [0, 3, 6, 10, 13, 16, 20, 23]
    # at most max_frames, thinned uniformly
    clip = load_clip(video, FrameSampling(frames=None, fps=2, max_frames=3))
    assert list(clip.indices) == [0, 10, 20]


def test_other_codecs_and_containers(tmp_path):
    for name, codec in (("a.avi", "mpeg4"), ("b.webm", "libvpx-vp9"), ("c.mkv", "libx264")):
        clip = load_clip(write_video(tmp_path / name, n=9, fps=3, codec=codec), FrameSampling(frames=3))
        assert list(clip.indices) == [0, 4, 8] and decoded_indices(clip) == [0, 4, 8], name


def test_unreadable_videos_are_item_errors_naming_the_file(tmp_path, video):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 100)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    audio = tmp_path / "tone.wav"
    with av.open(str(audio), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
    cases = {tmp_path / "missing.mp4": "file not found", empty: "file is empty", garbage: "cannot be decoded",
             truncated: "cannot be decoded", audio: "no video stream"}
    for path, message in cases.items():
        with pytest.raises(ItemError, match=message) as exc:
            load_clip(path, FrameSampling())
        assert str(path) in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"frames": 8, "fps": 1.0}, "exactly one of frames"),
    ({"frames": None}, "exactly one of frames"),
    ({"frames": 0}, "frames must be a whole number >= 1"),
    ({"frames": 2.5}, "frames must be a whole number >= 1"),
    ({"frames": None, "fps": -1}, r"fps must be a number in \(0, 240\]"),
    ({"frames": None, "fps": "fast"}, r"fps must be a number in \(0, 240\]"),
    ({"max_frames": 0}, "max_frames must be a whole number >= 1"),
])
def test_bad_sampling_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(MMBenchError, match=message):
        FrameSampling(**kwargs)


def test_sampling_from_a_task_file():
    assert FrameSampling.from_config({}) == FrameSampling(frames=8)
    assert FrameSampling.from_config({"fps": 1}) == FrameSampling(frames=None, fps=1)
    assert FrameSampling.from_config({"frames": 16, "max_frames": 16}).describe().startswith("16 frames uniform")
    assert FrameSampling(frames=None, fps=0.5).describe() == ("0.5 fps from t=0 (the frame on screen at each time), "
                                                             "at most 64 frames")


def test_sampling_within_a_segment_and_a_frame_folder(video, tmp_path):
    from PIL import Image

    from mmbench.errors import ItemError
    from mmbench.tasks.video_input import load_item_video

    clip = load_clip(video, FrameSampling(frames=3).within(1.0, 2.0))  # frames 10..20 are shown in [1 s, 2 s]
    assert list(clip.indices) == [10, 15, 20] and decoded_indices(clip) == [10, 15, 20]
    assert FrameSampling(frames=3).within(1.0, 2.0).describe().endswith("within seconds 1-2")
    assert load_clip(video, FrameSampling(frames=None, fps=2).within(0.5, None)).indices == (5, 10, 15, 20)
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(1, 7):  # frame k at k / 3 s, MVBench's reading of TVQA's frame folders
        Image.new("RGB", (8, 8), (level(k),) * 3).save(folder / f"{k:05d}.jpg")
    item = {"video": folder, "video_frame_rate": 3.0, "video_start": 1.0, "video_end": 2.0}
    clip = load_item_video(item, FrameSampling(frames=8))
    assert clip.indices == (2, 3, 4, 5) and clip.timestamps == pytest.approx((1.0, 4 / 3, 5 / 3, 2.0))
    with pytest.raises(ItemError, match="needs their rate per second"):
        load_item_video({"video": folder}, FrameSampling())
