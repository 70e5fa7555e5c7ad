"""How a generative task hands a video item to a model: its frames are sampled (mmbench/data/video.py), then
sent natively (``GenerationRequest.video``) to an adapter that takes video (Qwen2-VL, LLaVA-OneVision, ...), or
as several images to any other multi-image model (openai-chat included): in front of the prompt, or each
after a label such as "Frame {n} at {t} s:" when the task file gives ``frame_prompt``.

A task file's ``video:`` mapping holds the settings: ``frames`` (uniform count, default 8) or ``fps`` (with
``max_frames``), ``input`` (auto: native when the model takes video, else frames; native; frames) and
``frame_prompt``. An item's ``video`` is a file path, or an already sampled ``Clip`` (what the temporal probe
sends: the same frames shuffled, reversed or repeated).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from mmbench.capabilities import IMAGE_MARKER, VideoInput
from mmbench.data.video import Clip, FrameSampling, load_clip, load_frame_folder
from mmbench.errors import ItemError, MMBenchError

INPUT_MODES = {
    "auto": "natively when the model takes video, else its frames as images",
    "native": "natively (the model's own video encoding); refused for models that do not take video",
    "frames": "the sampled frames as images, whatever the model",
}
KEYS = ("frames", "fps", "max_frames", "input", "frame_prompt")


@dataclass(frozen=True)
class VideoSettings:
    """A task's video settings (the ``video:`` mapping of its file)."""

    sampling: FrameSampling = FrameSampling()
    input: str = "auto"
    frame_prompt: str | None = None  # e.g. "Frame {n} at {t} s:" ({n}: 1-based, {t}: seconds, one decimal)

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, where: str) -> "VideoSettings":
        raw = dict(raw or {})
        for key in raw:
            if key not in KEYS:
                near = difflib.get_close_matches(str(key), KEYS, n=1)
                hint = f"; did you mean {near[0]!r}" if near else f"; accepted: {', '.join(KEYS)}"
                raise MMBenchError(f"{where}: unknown video setting {key!r}{hint}")
        mode = raw.get("input", "auto")
        if mode not in INPUT_MODES:
            raise MMBenchError(f"{where}: video input {mode!r} is not one of {', '.join(INPUT_MODES)}")
        label = raw.get("frame_prompt")
        if label is not None:
            if not isinstance(label, str):
                raise MMBenchError(f"{where}: video frame_prompt must be text, got {label!r}")
            try:
                label.format(n=1, t="0.0")
            except (KeyError, IndexError, ValueError) as exc:
                raise MMBenchError(f"{where}: video frame_prompt {label!r} may use {{n}} and {{t}} only "
                                   f"({type(exc).__name__}: {exc})") from None
        try:
            sampling = FrameSampling.from_config(raw)
        except MMBenchError as exc:
            raise MMBenchError(f"{where}: {exc}") from None
        return cls(sampling, mode, label)

    def native_for(self, model: Any, where: str) -> bool:
        """Whether ``model`` gets the video natively (checked once per model, in the task's setup)."""
        takes = bool(getattr(model, "accepts_video", False))
        if self.input == "native" and not takes:
            raise MMBenchError(f"{where}: video input 'native' but model {getattr(model, 'name', '?')!r} does not "
                               f"take video; use input: frames (or auto) to send the frames as images")
        return takes and self.input != "frames"

    def describe(self, native: bool | None = None) -> dict:
        d = {"sampling": self.sampling.describe(), "input": f"{self.input}: {INPUT_MODES[self.input]}",
             "frame_prompt": self.frame_prompt}
        if native is not None:
            d["sent_as"] = "video (the model's own encoding)" if native else "frames as images"
        return d


@dataclass(frozen=True)
class VideoParts:
    """What one video item adds to its request: images or a video, a prompt prefix, and the clip's record."""

    images: tuple[Any, ...]
    video: VideoInput | None
    prefix: str  # text before the task's prompt (frame labels with image markers), or ""
    record: dict  # for the samples log: frame indices and times, the video's frame count, duration, rate


def load_item_video(item: dict, sampling: FrameSampling) -> Clip:
    """The item's clip: sampled from its file, or from a folder of frames shown at ``video_frame_rate`` per
    second; only between ``video_start`` and ``video_end`` seconds when the item names them (a question about
    part of a video); or the clip it already holds (a probe's ablation)."""
    src = item.get("video")
    if src is None:
        raise ItemError("no video: the item has no `video` field")
    if isinstance(src, Clip):
        return src
    sampling = sampling.within(item.get("video_start"), item.get("video_end"))
    rate = item.get("video_frame_rate")
    if rate is not None or Path(str(src)).is_dir():  # a folder of frames
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate <= 0:
            raise ItemError(f"video {src} is a folder of frames: the item needs their rate per second "
                            f"(`video_frame_rate`), got {rate!r}")
        return load_frame_folder(Path(str(src)), sampling, float(rate))
    return load_clip(src, sampling)


def video_parts(item: dict, settings: VideoSettings, native: bool) -> VideoParts:
    """Decode and sample the item's video, then shape it for the model (see the module doc)."""
    clip = load_item_video(item, settings.sampling)
    record = clip.record()
    if item.get("video_start") is not None or item.get("video_end") is not None:
        record["segment"] = [item.get("video_start"), item.get("video_end")]
    if native:
        return VideoParts((), VideoInput(clip.frames, clip.timestamps), "", record)
    if settings.frame_prompt is None:  # frames in front of the prompt, in time order
        return VideoParts(tuple(clip.frames), None, "", record)
    labels = [settings.frame_prompt.format(n=i + 1, t=f"{t:.1f}") for i, t in enumerate(clip.timestamps)]
    prefix = "".join(f"{label} {IMAGE_MARKER}\n" for label in labels)
    return VideoParts(tuple(clip.frames), None, prefix, record)


def video_record_of(output: dict | None) -> dict:
    """The clip record a task output carries (for its sample), or nothing."""
    return {"video": output["video"]} if output and "video" in output else {}
