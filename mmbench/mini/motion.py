"""mini-motion: deterministic generated video clips of mini-shapes objects that move or appear, with open-ended
questions whose answers need the order of the frames.

A clip is 8 frames at 4 fps (2 s), 64x64, drawn with mini-shapes' colours, shapes, sizes and drawing code
(mmbench/mini/shapes.py) over a grey background with a fixed per-clip noise texture. Three kinds of clip, one
question each (``question_type``):

- ``direction``: 1-3 objects (of distinct colours, as in every clip of moving objects) stand still, then
  (frames 5 to 7) each moves 16 px in a straight line (left, right, up or down: the asked object's direction
  cycles through the four, the others' are uniform) from a start uniform over [20, 44]^2: "which way does the
  red circle move?".
- ``crossing``: 1-3 objects starting near the vertical middle line (x in [22, 42], not 32); k of them (k uniform
  over 0..n) then move 16 px horizontally towards the line and so cross it, the others move away from it or
  vertically: "how many shapes cross the middle?" (the centre is left of x = 32 in the first frame and right of
  it in the last, or the reverse).
- ``appear``: two objects of different shapes, in different grid cells; the first frame is empty, one object
  (its shape cycles through the five) appears at frame 1 or 2, the other at frame 3, 4 or 5, and both stay:
  "which shape appears first?".

The objects move only after frame 5, so the frames a single-frame view gets show no motion: the first frame (what
``frames: 1`` samples) and the middle frame the temporal probe repeats (frame 5 of the 4 uniform frames 0, 2, 5,
7; frame 4 of 8) show every object at its start. Shown one such frame, the best answer is right about 1/4 of the
time for direction (the start does not depend on the direction; only the no-overlap rule couples them a little
in clips of several objects), about E[1/(n+1)] = 0.36 for crossing (only the number of objects tells anything)
and 1/5 for appear from the first frame (it is empty), 1/2 from the middle one (both objects are there). Any 4
uniform frames show each event: an appear clip shows nothing, the first object, then both.

Splits are held out by content as in shapes.py: a clip's descriptor (kind and every object's class, size, start,
displacement and appearance frame) is hashed into one of 16 buckets; ``test`` takes bucket 0, ``val`` bucket 1,
the unbounded ``train`` stream buckets 4-15, and a fixed split never repeats a descriptor.

Clips are written as files, so a run exercises the real demuxer and decoder (mmbench/data/video.py): H.264
(libx264rgb, lossless: qp 0, RGB planes) in MP4, one file per clip, created on first use under a cache folder
(``cache_dir`` in the task's data section, else the platform's cache folder: $XDG_CACHE_HOME/mmbench or
~/.cache/mmbench, as the Hugging Face caches find theirs; then ``mini-motion/v<VERSION>/seed-<seed>/<split>/<clip
id>.mp4``). Lossless coding makes the
decoded frames bit-identical to the rendered ones (tested), so scores do not depend on the encoder build, and
training can render frames directly. A file is written to a temporary name and renamed, so concurrent runs
never read a partial file.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from mmbench.errors import DataError, MMBenchError
from mmbench.mini import shapes

# Bump on ANY change to the generated clips, questions or files: it is part of the harness's data fingerprint.
VERSION = "1"
DEFAULT_SEED = shapes.DEFAULT_SEED
N_FRAMES = 8
FPS = 4
SIZE = shapes.IMAGE_SIZE
# The frames the mini-motion task samples (round(linspace(0, 7, 4)): 0, 2, 5, 7) and the mini models are
# trained on; mini-lm's positions hold 4 x 65 vision tokens + the question with its RoPE range raised to 512.
TASK_FRAMES = 4
SHIFT = 16  # px a moving object travels from the first frame to the last
MOVE_FROM = 5  # objects stand still up to this frame, then move at a constant speed until the last one
MIDDLE = SIZE // 2  # the vertical middle line of "how many shapes cross the middle?"
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
QUESTION_TYPES = ("direction", "crossing", "appear")
N_BUCKETS = shapes.N_BUCKETS
CODEC = {"codec": "libx264rgb", "options": {"qp": "0"}, "pix_fmt": "rgb24", "container": "mp4"}
UNITS = ("question", "clip")


@dataclass(frozen=True)
class SplitInfo:
    name: str
    size: int | None  # clips (one question each); None: unbounded
    buckets: tuple[int, ...]
    key: int
    purpose: str


SPLITS: dict[str, SplitInfo] = {s.name: s for s in (
    SplitInfo("train", None, tuple(range(4, N_BUCKETS)), 0, "training stream of mini-video"),
    SplitInfo("test", 240, (0,), 1, "240 clips x 1 question, 80 per question type"),
    SplitInfo("val", 120, (1,), 2, "development split for training-time checks"),
)}


@dataclass(frozen=True)
class MotionClip:
    """One generated clip: its objects and motion, its question, and how to render its frames."""

    id: str
    kind: str  # the question type: direction | crossing | appear
    objects: tuple[dict, ...]  # {shape, colour, size, r, x, y (first frame), dx, dy (to the last frame), appear}
    question: dict  # {question_id, question, answers [1], answer_type, question_type}
    caption: str
    content: str  # the descriptor the hold-out hashes
    render_key: tuple[int, ...]  # seeds the background, colour jitter and noise texture

    def frames(self, indices: Sequence[int] | None = None) -> list[Image.Image]:
        """The rendered RGB frames (all 8, or those at ``indices``); exactly what the clip's file decodes to."""
        return render(self.objects, self.render_key, range(N_FRAMES) if indices is None else indices)

    def record(self) -> dict:
        return {"id": self.id, "kind": self.kind, "objects": [dict(o) for o in self.objects],
                "question": dict(self.question, answers=list(self.question["answers"])), "caption": self.caption,
                "content": self.content}


def split_info(split: str) -> SplitInfo:
    try:
        return SPLITS[split]
    except KeyError:
        raise MMBenchError(f"unknown mini-motion split {split!r}: use one of {', '.join(SPLITS)}") from None


def fingerprint(split: str, seed: int = DEFAULT_SEED) -> str:
    """Identifies the generated content of a split (generator version + seed + split + codec)."""
    split_info(split)
    return f"mini-motion/v{VERSION}/{split}/seed={seed}/{CODEC['codec']}-qp0"


def task_frame_indices(n: int = TASK_FRAMES) -> list[int]:
    """The frame positions ``frames: n`` samples from a clip (mmbench.data.video.FrameSampling)."""
    return [int(i) for i in np.unique(np.round(np.linspace(0, N_FRAMES - 1, min(n, N_FRAMES))).astype(np.int64))]


def position(obj: Mapping[str, Any], k: int) -> tuple[int, int]:
    """An object's centre at frame ``k``: its start up to frame MOVE_FROM, then linear to start + (dx, dy) at the
    last frame."""
    t = max(0, k - MOVE_FROM) / (N_FRAMES - 1 - MOVE_FROM)
    return obj["x"] + int(round(obj["dx"] * t)), obj["y"] + int(round(obj["dy"] * t))


def direction_of(obj: Mapping[str, Any]) -> str | None:
    """left/right/up/down, or None for a static object."""
    for word, (ux, uy) in DIRECTIONS.items():
        if (obj["dx"], obj["dy"]) == (ux * SHIFT, uy * SHIFT):
            return word
    return None


def crosses_middle(obj: Mapping[str, Any]) -> bool:
    """Whether the centre is on one side of x = MIDDLE in the first frame and on the other in the last."""
    x0, _ = position(obj, 0)
    x1, _ = position(obj, N_FRAMES - 1)
    return (x0 - MIDDLE) * (x1 - MIDDLE) < 0


def first_to_appear(objects: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    return min(objects, key=lambda o: o["appear"])


# --- generation -------------------------------------------------------------------------------------------------

def generate(split: str, seed: int = DEFAULT_SEED, n: int | None = None) -> list[MotionClip]:
    """The first ``n`` clips of ``split`` (all of a fixed split when n is None); a prefix of the full split."""
    info = split_info(split)
    if n is None:
        if info.size is None:
            raise MMBenchError(f"mini-motion split {split!r} is generated on the fly: pass n=<number of clips>")
        n = info.size
    if isinstance(n, bool) or not isinstance(n, int) or n < 0 or (info.size is not None and n > info.size):
        raise MMBenchError(f"mini-motion split {split!r} has {info.size} clips: ask for 0..{info.size}, not {n!r}")
    it = iter_clips(split, seed)
    return [next(it) for _ in range(n)]


def iter_clips(split: str, seed: int = DEFAULT_SEED) -> Iterator[MotionClip]:
    """Clips of ``split`` one by one in their fixed order; clip i asks a question of type i mod 3."""
    info = split_info(split)
    seen: set[str] = set()
    i = 0
    while info.size is None or i < info.size:
        kind = QUESTION_TYPES[i % len(QUESTION_TYPES)]
        target = i // len(QUESTION_TYPES)  # cycles the direction / the first shape: balanced answers
        rng = np.random.default_rng([seed, 4242, info.key, i])
        while True:
            objs, asked = _SAMPLERS[kind](rng, target)
            content = descriptor(kind, objs)
            if shapes.bucket(content) in info.buckets and (info.size is None or content not in seen):
                break
        if info.size is not None:
            seen.add(content)
        clip_id = f"{split}-{seed}-{i:05d}"
        question = _question(kind, objs, asked, clip_id)
        render_key = (seed, 4243, info.key, i)
        yield MotionClip(clip_id, kind, tuple(objs), question, _caption(kind, objs), content, render_key)
        i += 1


def descriptor(kind: str, objs: Sequence[Mapping[str, Any]]) -> str:
    """A clip's content: its kind and each object's class, size, start, displacement and appearance frame."""
    return kind + "|" + ";".join(sorted(
        f"{o['colour']},{o['shape']},{o['size']},{o['r']},{o['x']},{o['y']},{o['dx']},{o['dy']},{o['appear']}"
        for o in objs))


def _kinds(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    """n objects of distinct colours (so the colour alone names an object) and any shapes."""
    colours = rng.choice(len(shapes.COLOURS), size=n, replace=False)
    return [(list(shapes.COLOURS)[int(c)], shapes.SHAPES[int(rng.integers(len(shapes.SHAPES)))]) for c in colours]


def _obj(colour: str, shape: str, rng: np.random.Generator, x: int, y: int, dx: int = 0, dy: int = 0,
         appear: int = 0) -> dict:
    size = "small" if rng.integers(2) == 0 else "large"
    return {"shape": shape, "colour": colour, "size": size, "r": int(rng.choice(shapes.SIZES[size])),
            "x": int(x), "y": int(y), "dx": int(dx), "dy": int(dy), "appear": int(appear)}


def _clear(objs: list[dict]) -> bool:
    """No two objects overlap (mini-shapes' rule, margin 2 px) in any frame where both are visible."""
    for a_i, a in enumerate(objs):
        for b in objs[a_i + 1:]:
            gap = a["r"] + b["r"] + 2
            for k in range(max(a["appear"], b["appear"]), N_FRAMES):
                (ax, ay), (bx, by) = position(a, k), position(b, k)
                if abs(ax - bx) < gap and abs(ay - by) < gap:
                    return False
    return True


def _place(rng: np.random.Generator, n: int, draw) -> list[dict]:
    """n objects of distinct classes, each drawn by ``draw(rng, j, colour, shape)`` until it is clear of those
    already placed (a scene that gets stuck starts again)."""
    while True:
        objs: list[dict] = []
        for j, (colour, shape) in enumerate(_kinds(rng, n)):
            for _ in range(50):
                o = draw(rng, j, colour, shape)
                if _clear(objs + [o]):
                    objs.append(o)
                    break
            else:
                break
        if len(objs) == n:
            return objs


def _sample_direction(rng: np.random.Generator, target: int) -> tuple[list[dict], int]:
    """1-3 moving objects; the one asked about (returned) moves in direction ``target``, the others anywhere."""
    n = int(rng.integers(1, 4))
    asked = int(rng.integers(n))
    words = list(DIRECTIONS)

    def draw(rng: np.random.Generator, j: int, colour: str, shape: str) -> dict:
        ux, uy = DIRECTIONS[words[target % 4] if j == asked else words[int(rng.integers(4))]]
        x, y = (int(v) for v in rng.integers(4 + SHIFT, 61 - SHIFT, size=2))
        return _obj(colour, shape, rng, x, y, ux * SHIFT, uy * SHIFT)

    return _place(rng, n, draw), asked


def _sample_crossing(rng: np.random.Generator, target: int) -> tuple[list[dict], int]:
    """1-3 objects near the middle line; k of them (uniform over 0..n) cross it."""
    n = int(rng.integers(1, 4))
    k = int(rng.integers(0, n + 1))  # how many cross: uniform, so the count is not mostly 0
    crossers = set(int(j) for j in rng.choice(n, size=k, replace=False))

    def draw(rng: np.random.Generator, j: int, colour: str, shape: str) -> dict:
        x = 22 + int(rng.integers(20))
        x += x >= MIDDLE  # 22..42 without the line itself
        y = int(rng.integers(12, 53))
        towards = 1 if x < MIDDLE else -1
        if j in crossers:
            dx, dy = towards * SHIFT, 0
        elif rng.integers(2) == 0:  # away from the line
            dx, dy = -towards * SHIFT, 0
        else:  # up or down, staying in the picture
            dx, dy = 0, (1 if rng.integers(2) == 0 else -1) * SHIFT
            dy = dy if 4 <= y + dy <= 60 else -dy
        return _obj(colour, shape, rng, x, y, dx, dy)

    return _place(rng, n, draw), 0


def _sample_appear(rng: np.random.Generator, target: int) -> tuple[list[dict], int]:
    """Two objects of different shapes; the first (of shape ``target``) appears at frame 1-2, the other at 3-5."""
    first = target % len(shapes.SHAPES)
    while True:
        other = int(rng.choice([s for s in range(len(shapes.SHAPES)) if s != first]))
        cells = rng.choice(9, size=2, replace=False)
        times = (int(rng.integers(1, 3)), int(rng.integers(3, 6)))
        objs = []
        for s, cell, t in zip((first, other), cells, times):
            colour = list(shapes.COLOURS)[int(rng.integers(len(shapes.COLOURS)))]
            x = shapes.CELL_CENTRES[int(cell) % 3] + int(rng.integers(-shapes.JITTER, shapes.JITTER + 1))
            y = shapes.CELL_CENTRES[int(cell) // 3] + int(rng.integers(-shapes.JITTER, shapes.JITTER + 1))
            objs.append(_obj(colour, shapes.SHAPES[s], rng, x, y, appear=t))
        if _clear(objs):
            return objs, 0


_SAMPLERS = {"direction": _sample_direction, "crossing": _sample_crossing, "appear": _sample_appear}


def _question(kind: str, objs: Sequence[Mapping[str, Any]], asked: int, clip_id: str) -> dict:
    if kind == "direction":
        o = objs[asked]
        text, answer, answer_type = f"which way does the {o['colour']} {o['shape']} move?", direction_of(o), "other"
    elif kind == "crossing":
        text, answer, answer_type = ("how many shapes cross the middle?",
                                     str(sum(crosses_middle(o) for o in objs)), "number")
    else:
        text, answer, answer_type = "which shape appears first?", first_to_appear(objs)["shape"], "other"
    return {"question_id": f"{clip_id}-q0", "question": text, "answers": [answer], "answer_type": answer_type,
            "question_type": kind}


def training_questions(clip: MotionClip) -> list[tuple[str, str]]:
    """(question, answer) pairs a clip supports for training: its own question and, for clips of moving
    objects, the direction of every object."""
    out = [(clip.question["question"], clip.question["answers"][0])]
    if clip.kind in ("direction", "crossing"):
        out += [(f"which way does the {o['colour']} {o['shape']} move?", str(direction_of(o))) for o in clip.objects]
    return list(dict.fromkeys(out))


def _caption(kind: str, objs: Sequence[Mapping[str, Any]]) -> str:
    if kind == "appear":
        first, second = sorted(objs, key=lambda o: o["appear"])
        return (f"{shapes._a(first['colour'])} {first['colour']} {first['shape']} appears, then "
                f"{shapes._a(second['colour'])} {second['colour']} {second['shape']} appears.")
    return shapes._join([f"{shapes._a(o['colour'])} {o['colour']} {o['shape']} moves {direction_of(o)}"
                         for o in objs]) + "."


# --- drawing and files ------------------------------------------------------------------------------------------

def render(objects: Sequence[Mapping[str, Any]], render_key: Sequence[int],
           indices: Sequence[int] | range = range(N_FRAMES)) -> list[Image.Image]:
    """Frames of a clip: mini-shapes' background (grey with a tint), each object's jittered colour and a noise
    texture fixed for the clip (as a camera's fixed-pattern noise), objects drawn where they are at frame k."""
    rng = np.random.default_rng(list(render_key))
    grey = int(rng.integers(185, 246))
    tint = rng.integers(-8, 9, size=3)
    background = tuple(int(np.clip(grey + t, 0, 255)) for t in tint)
    fills = []
    for o in objects:
        jitter = rng.integers(-12, 13, size=3)
        fills.append(tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(shapes.COLOURS[o["colour"]], jitter)))
    noise = rng.integers(-6, 7, size=(SIZE, SIZE, 3), dtype=np.int16)
    out = []
    for k in indices:
        img = Image.new("RGB", (SIZE, SIZE), background)
        draw = ImageDraw.Draw(img)
        for o, fill in zip(objects, fills):
            if o["appear"] <= k:
                x, y = position(o, int(k))
                shapes._draw_shape(draw, o["shape"], x, y, o["r"], fill)
        arr = np.asarray(img, dtype=np.int16) + noise
        out.append(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB"))
    return out


def encode(frames: Sequence[Image.Image], path: Path) -> None:
    """Write ``frames`` to ``path`` as lossless H.264 (RGB) in MP4 at FPS frames per second."""
    from mmbench.data.video import require_av

    av = require_av()

    with av.open(str(path), "w", format=CODEC["container"]) as out:
        stream = out.add_stream(CODEC["codec"], rate=FPS, options=dict(CODEC["options"]))
        stream.width = stream.height = SIZE
        stream.pix_fmt = CODEC["pix_fmt"]
        stream.codec_context.thread_count = 1  # one thread: the same bytes on every run
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.asarray(frame, dtype=np.uint8), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def cache_root(cache_dir: str | Path | None = None, data_dir: Path | None = None) -> Path:
    """The folder that holds the clip files: ``cache_dir`` (relative: to the run's --data-dir, else the working
    folder), else the platform cache folder ($XDG_CACHE_HOME, else ~/.cache) + mmbench/mini-motion."""
    if cache_dir is not None:
        p = Path(str(cache_dir)).expanduser()
        return p if p.is_absolute() else (data_dir or Path.cwd()) / p
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "mmbench" / "mini-motion"


def split_folder(root: Path, split: str, seed: int) -> Path:
    return root / f"v{VERSION}" / f"seed-{seed}" / split


def ensure_files(clips: Sequence[MotionClip], folder: Path) -> list[Path]:
    """Each clip's file in ``folder``, written (atomically) when missing; returns the paths in clip order."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"mini-motion: cannot create the clip folder {folder} ({exc}); set cache_dir in the task's "
                        f"data section to a writable folder") from None
    paths = []
    for clip in clips:
        path = folder / f"{clip.id}.mp4"
        if not path.is_file() or path.stat().st_size == 0:
            fd, tmp = tempfile.mkstemp(prefix=f".{clip.id}.", suffix=".mp4", dir=folder)
            os.close(fd)
            try:
                encode(clip.frames(), Path(tmp))
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        paths.append(path)
    return paths


# --- the data format --------------------------------------------------------------------------------------------

def load_mini_motion(cfg: Mapping[str, Any], ctx: Any) -> Any:
    """The ``mini-motion`` data format: ``split`` (test, val), ``seed`` (default: the fixed one), ``n`` (the
    first n clips), ``unit``: ``question`` (one video-qa record per clip: id, video, question, answers,
    question_type, answer_type, clip_id) or ``clip`` (id, video, captions: for video-retrieval), and
    ``cache_dir`` (where the clip files go; see cache_root)."""
    from mmbench.data.sources import DataSet
    from mmbench.specs import fingerprint as fp

    unknown = sorted(set(cfg) - {"format", "split", "seed", "n", "unit", "cache_dir"})
    if unknown:
        raise DataError(f"task {ctx.task!r}: mini-motion data has no option {unknown[0]!r}; it takes split, seed, n, "
                        f"unit and cache_dir")
    split = str(cfg.get("split", "test"))
    if split_info(split).size is None:
        raise DataError(f"task {ctx.task!r}: mini-motion split {split!r} is the unbounded training stream; evaluate on "
                        f"{', '.join(s for s, i in SPLITS.items() if i.size is not None)}")
    seed = int(cfg.get("seed", DEFAULT_SEED))
    unit = cfg.get("unit", "question")
    if unit not in UNITS:
        raise DataError(f"task {ctx.task!r}: mini-motion unit {unit!r} is not one of {', '.join(UNITS)}")
    clips = generate(split, seed, cfg.get("n"))
    folder = split_folder(cache_root(cfg.get("cache_dir"), getattr(ctx, "data_dir", None)), split, seed)
    paths = ensure_files(clips, folder)
    if unit == "question":
        records = [{"id": c.question["question_id"], "video": str(p), "clip_id": c.id,
                    "question": c.question["question"], "answers": list(c.question["answers"]),
                    "answer_type": c.question["answer_type"], "question_type": c.question["question_type"]}
                   for c, p in zip(clips, paths)]
    else:
        records = [{"id": c.id, "video": str(p), "captions": [c.caption], "kind": c.kind} for c, p in zip(clips, paths)]
    return DataSet(records, fp([fingerprint(split, seed), unit, len(clips)]),
                   f"mini-motion {split} (seed {seed}, {len(clips)} clips of {N_FRAMES} frames at {FPS} fps, "
                   f"{len(records)} {unit}s, lossless H.264 files)")
