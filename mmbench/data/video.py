"""Video decoding and frame sampling, with one clear error per bad file: an unreadable video fails its item.

Decoding uses PyAV (the `video` extra): its wheels ship FFmpeg's decoders (H.264, HEVC, VP9, AV1, MPEG-4,
...) so no system FFmpeg is needed, it is maintained, and its demuxer gives every frame's presentation
timestamp without decoding, which makes sampling exact. (decord, which lmms-eval used first, has had no
release since 2022 and no wheel for current Pythons; torchvision's video reader is deprecated.)

Two samplings, recorded with every clip (``FrameSampling.describe``):
- ``frames: N``: N frames uniform over the video, at frame indices ``round(linspace(0, n - 1, N))`` as
  Qwen2-VL's vision utilities sample (lmms-eval's loaders floor instead of rounding); a video with fewer than
  N frames gives all of them, none repeated.
- ``fps: F``: the frame on screen at t = 0, 1/F, 2/F, ... up to the last frame's timestamp (the last frame
  whose timestamp is <= t), at most ``max_frames`` (uniformly thinned beyond).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import ItemError, MMBenchError

DEFAULT_FRAMES = 8
DEFAULT_MAX_FRAMES = 64


@dataclass(frozen=True)
class FrameSampling:
    """How frames are taken from a video: ``frames`` uniform over it, or ``fps`` frames per second."""

    frames: int | None = DEFAULT_FRAMES
    fps: float | None = None
    max_frames: int = DEFAULT_MAX_FRAMES

    def __post_init__(self) -> None:
        if (self.frames is None) == (self.fps is None):
            raise MMBenchError("frame sampling: give exactly one of frames (a count) or fps (frames per second)")
        if self.frames is not None and (isinstance(self.frames, bool) or int(self.frames) != self.frames
                                        or self.frames < 1):
            raise MMBenchError(f"frame sampling: frames must be a whole number >= 1, got {self.frames!r}")
        if self.fps is not None and not (isinstance(self.fps, (int, float)) and 0 < self.fps <= 240):
            raise MMBenchError(f"frame sampling: fps must be a number in (0, 240], got {self.fps!r}")
        if int(self.max_frames) != self.max_frames or self.max_frames < 1:
            raise MMBenchError(f"frame sampling: max_frames must be a whole number >= 1, got {self.max_frames!r}")

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "FrameSampling":
        """``frames:`` or ``fps:`` (and ``max_frames:``) from a task file; ``frames: 8`` when neither is set."""
        fps = cfg.get("fps")
        return cls(frames=cfg.get("frames", None if fps is not None else DEFAULT_FRAMES), fps=fps,
                   max_frames=cfg.get("max_frames", DEFAULT_MAX_FRAMES))

    def describe(self) -> str:
        if self.frames is not None:
            return f"{self.frames} frames uniform over the video (indices round(linspace(0, n-1, {self.frames})))"
        return f"{self.fps:g} fps from t=0 (the frame on screen at each time), at most {self.max_frames} frames"

    def within(self, start: float | None, end: float | None) -> "FrameSampling":
        """The same sampling over the frames shown between ``start`` and ``end`` seconds only (a question about
        part of a video: MVBench's STAR and STA tasks)."""
        if start is None and end is None:
            return self
        return SegmentSampling(self.frames, self.fps, self.max_frames,
                               0.0 if start is None else float(start), math.inf if end is None else float(end))

    def indices(self, timestamps: np.ndarray) -> np.ndarray:
        """Which frames (positions in presentation order, ``timestamps`` sorted) this sampling takes."""
        n = len(timestamps)
        if self.frames is not None:
            return np.unique(np.round(np.linspace(0, n - 1, min(int(self.frames), n))).astype(np.int64))
        times = np.arange(0.0, float(timestamps[-1] - timestamps[0]) + 1e-9, 1.0 / float(self.fps))
        picked = np.searchsorted(timestamps - timestamps[0], times + 1e-9, side="right") - 1
        picked = np.unique(np.clip(picked, 0, n - 1))
        if len(picked) > self.max_frames:
            picked = picked[np.unique(np.round(np.linspace(0, len(picked) - 1, self.max_frames)).astype(np.int64))]
        return picked


@dataclass(frozen=True)
class SegmentSampling(FrameSampling):
    """A sampling applied to the frames shown between ``start`` and ``end`` seconds (the frame nearest the
    segment's middle when none is)."""

    start: float = 0.0
    end: float = math.inf

    def describe(self) -> str:
        return f"{super().describe()}, within seconds {self.start:g}-{self.end:g}"

    def indices(self, timestamps: np.ndarray) -> np.ndarray:
        t = np.asarray(timestamps, dtype=np.float64)
        inside = np.nonzero((t >= self.start - 1e-6) & (t <= self.end + 1e-6))[0]
        if len(inside) == 0:
            middle = (self.start + min(self.end, float(t[-1]))) / 2
            inside = np.array([int(np.argmin(np.abs(t - middle)))])
        return inside[FrameSampling.indices(self, t[inside])]


@dataclass(frozen=True)
class Clip:
    """The sampled frames of one video and where they came from."""

    frames: tuple[Any, ...]  # PIL RGB images, in time order
    timestamps: tuple[float, ...]  # seconds from the video's first frame
    indices: tuple[int, ...]  # positions among the video's frames (presentation order)
    n_frames: int  # frames in the video stream
    duration: float  # seconds from the first frame to the last
    native_fps: float | None  # the stream's average frame rate, when it declares one

    def record(self) -> dict[str, Any]:
        """What a sample log keeps about the clip (the frames themselves are not logged)."""
        return {"frame_indices": list(self.indices), "frame_times": [round(t, 4) for t in self.timestamps],
                "video_frames": self.n_frames, "video_duration": round(self.duration, 4),
                "video_fps": None if self.native_fps is None else round(self.native_fps, 4)}


def require_av() -> Any:
    """The PyAV module, or a one-line error naming the extra that installs it."""
    try:
        import av
    except ImportError:
        raise MMBenchError("video tasks need PyAV: pip install 'mmbench[video]' (or pip install av)") from None
    return av


def load_clip(src: Any, sampling: FrameSampling) -> Clip:
    """Decode the frames ``sampling`` picks from the video file ``src`` (a path). Raises ItemError naming the
    file when it is missing, empty, not a video, has no frames, or fails to decode."""
    av = require_av()
    path = Path(str(src))
    if not path.exists():
        raise ItemError(f"video {path}: file not found")
    if path.stat().st_size == 0:
        raise ItemError(f"video {path}: file is empty")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ItemError(f"video {path}: no video stream (audio or data only)")
            stream = container.streams.video[0]
            _check_size(path, stream)
            # pass 1: every frame's presentation time from the packets (no decoding)
            pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None and p.size > 0)
            if not pts:
                raise ItemError(f"video {path}: no frames")
            base = stream.time_base or Fraction(1, 1)
            times = (np.asarray(pts, dtype=np.float64) - pts[0]) * float(base)
            picked = sampling.indices(times)
            wanted = {pts[i]: i for i in picked}
            # pass 2: decode from the start, keep the picked frames, stop after the last one
            container.seek(0, stream=stream)
            got: dict[int, Any] = {}
            for frame in container.decode(stream):
                if frame.pts in wanted:
                    got[wanted[frame.pts]] = frame.to_image()
                    if len(got) == len(wanted):
                        break
    except ItemError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise ItemError(f"video {path}: cannot be decoded ({type(exc).__name__}: {exc})") from None
    if len(got) != len(wanted):
        missing = sorted(set(wanted.values()) - set(got))
        raise ItemError(f"video {path}: frames {missing[:5]} could not be decoded (truncated or corrupt file)")
    rate = stream.average_rate
    return Clip(frames=tuple(got[i].convert("RGB") for i in picked), timestamps=tuple(float(times[i]) for i in picked),
                indices=tuple(int(i) for i in picked), n_frames=len(pts), duration=float(times[-1]),
                native_fps=float(rate) if rate else None)


def _check_size(path: Path, stream: Any) -> None:
    """A stream declaring an absurd frame size fails its item before any frame is decoded (as images do)."""
    from PIL import Image

    w, h = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
    if Image.MAX_IMAGE_PIXELS and w * h > Image.MAX_IMAGE_PIXELS:
        raise ItemError(f"video {path}: {w}x{h} frames exceed the decompression-bomb limit of "
                        f"{Image.MAX_IMAGE_PIXELS} pixels")


FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


def load_frame_folder(folder: Path, sampling: FrameSampling, rate: float) -> Clip:
    """The sampled frames of a folder of images (``00001.jpg``, ... in name order), file k (1-based) shown at
    k / ``rate`` seconds, as MVBench's reader indexes TVQA's frames. A missing or empty folder is an ItemError."""
    from mmbench.data.images import load_image

    if not folder.is_dir():
        raise ItemError(f"frame folder {folder}: not found")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    if not files:
        raise ItemError(f"frame folder {folder}: no .jpg or .png frames")
    times = np.arange(1, len(files) + 1, dtype=np.float64) / rate
    picked = sampling.indices(times)
    return Clip(frames=tuple(load_image(files[i]) for i in picked), timestamps=tuple(float(times[i]) for i in picked),
                indices=tuple(int(i) for i in picked), n_frames=len(files), duration=float(times[-1] - times[0]),
                native_fps=rate)
