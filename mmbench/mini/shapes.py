"""mini-shapes: a deterministic synthetic image dataset (coloured shapes) with captions and VQAv2-style questions.

Every image is drawn from a seed with PIL primitives at integer coordinates and numpy's PCG64 generator, so the
same (split, seed, index) gives the same bytes on any machine with the same numpy; nothing is downloaded and no
image is stored. The fixed test splits are held out by content: a scene's *descriptor* (the exact geometry and
colour name of every object, see ``_descriptor``) is hashed into one of 16 buckets, each test split only
accepts its own bucket, and the training split only buckets 5-15, so no test scene can ever be drawn in
training, and no two test scenes (in one split or across splits) show the same content.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw

from mmbench.errors import MMBenchError

# Bump on ANY change to the generated images or records: it is part of the harness's data fingerprint.
VERSION = "1"
# The seed that fixes the test splits (documented in tasks/ and in every model card).
DEFAULT_SEED = 1234
IMAGE_SIZE = 64

# Nominal RGB colours; each object gets a small per-channel jitter so colour is not a single pixel value.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 90, 215),
    "yellow": (230, 200, 30),
    "purple": (135, 60, 175),
    "orange": (240, 130, 30),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross")
# Half-extent in pixels (a circle's radius) per size word.
SIZES: dict[str, tuple[int, ...]] = {"small": (5, 6, 7), "large": (9, 10, 11)}
# A 3x3 grid of cells; an object sits near its cell's centre (jitter +-2 px) and at most one object per cell.
CELL_CENTRES = (13, 32, 51)
JITTER = 2
POSITIONS: dict[tuple[int, int], str] = {  # (column, row) -> position word
    (0, 0): "top left", (1, 0): "top", (2, 0): "top right",
    (0, 1): "left", (1, 1): "center", (2, 1): "right",
    (0, 2): "bottom left", (1, 2): "bottom", (2, 2): "bottom right",
}
CLASS_NAMES: tuple[str, ...] = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)
NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}
N_BUCKETS = 16


@dataclass(frozen=True)
class SplitInfo:
    """One split: its size (None: unbounded, generated on the fly), objects per image and held-out bucket(s)."""

    name: str
    size: int | None
    min_objects: int
    max_objects: int
    buckets: tuple[int, ...]
    key: int  # mixed into the seed so every split has its own random stream
    purpose: str


SPLITS: dict[str, SplitInfo] = {s.name: s for s in (
    SplitInfo("train", None, 1, 3, tuple(range(5, N_BUCKETS)), 0, "training stream for the mini model zoo"),
    SplitInfo("zeroshot-test", 600, 1, 1, (0,), 1, "single objects, 20 per colour x shape class"),
    SplitInfo("retrieval-test", 1000, 1, 3, (1,), 2, "1000 images x 5 captions, COCO-style retrieval"),
    SplitInfo("vqa-test", 500, 1, 3, (2,), 3, "500 images x 2-3 VQAv2-style questions"),
    SplitInfo("captions-test", 500, 1, 3, (3,), 4, "500 images x 5 reference captions"),
    SplitInfo("val", 300, 1, 3, (4,), 5, "development split for training-time checks"),
)}


@dataclass(frozen=True)
class Scene:
    """One generated image with its annotations; plain data apart from the PIL image."""

    id: str
    image: Image.Image
    objects: list[dict]  # {shape, colour, size, x, y}, in reading order (by grid row, then column)
    label: str | None  # "red circle" for single-object scenes, else None
    captions: list[str]
    questions: list[dict]  # {question_id, question, answers (10), answer_type, question_type}
    content: str  # the content descriptor the hold-out hashes: "colour,shape,size,x,y,radius;..." sorted

    def record(self) -> dict:
        """Everything but the image, as JSON-ready plain data."""
        return {"id": self.id, "content": self.content, "objects": [dict(o) for o in self.objects],
                "label": self.label, "captions": list(self.captions),
                "questions": [dict(q, answers=list(q["answers"])) for q in self.questions]}


def split_info(split: str) -> SplitInfo:
    """The SplitInfo of ``split``; an unknown name is a user error."""
    try:
        return SPLITS[split]
    except KeyError:
        raise MMBenchError(f"unknown mini-shapes split {split!r}: use one of {', '.join(SPLITS)}") from None


def fingerprint(split: str, seed: int = DEFAULT_SEED) -> str:
    """Identifies the generated content of a split (generator version + seed + split) for data fingerprints."""
    split_info(split)
    return f"mini-shapes/v{VERSION}/{split}/seed={seed}"


def class_names(split: str = "zeroshot-test") -> list[str]:
    """The zero-shot class names ("red circle", ...) in their fixed order: colour-major, then shape."""
    if split_info(split).max_objects != 1:
        raise MMBenchError(f"mini-shapes split {split!r} has multi-object images: use 'zeroshot-test' for classes")
    return list(CLASS_NAMES)


def generate(split: str, seed: int = DEFAULT_SEED, n: int | None = None) -> list[Scene]:
    """The first ``n`` scenes of ``split`` (all of a fixed split when n is None); a prefix of the full split."""
    info = split_info(split)
    if n is None:
        if info.size is None:
            raise MMBenchError(f"mini-shapes split {split!r} is generated on the fly: pass n=<number of scenes>")
        n = info.size
    if n < 0 or (info.size is not None and n > info.size):
        raise MMBenchError(f"mini-shapes split {split!r} has {info.size} scenes: ask for 0..{info.size}, not {n}")
    it = iter_scenes(split, seed)
    return [next(it) for _ in range(n)]


def iter_scenes(split: str, seed: int = DEFAULT_SEED) -> Iterator[Scene]:
    """Scenes of ``split`` one by one, in their fixed order (unbounded for 'train')."""
    info = split_info(split)
    seen: set[str] = set()  # content descriptors already used (fixed splits only)
    i = 0
    while info.size is None or i < info.size:
        rng = np.random.default_rng([seed, info.key, i])
        while True:
            objs = _sample_objects(rng, info, i)
            desc = _descriptor(objs)
            # Fixed splits never repeat a scene's content; the unbounded training stream may (there are only
            # ~28k distinct single-object training scenes), or it would slow down and finally stall.
            if bucket(desc) in info.buckets and (info.size is None or desc not in seen):
                break
        if info.size is not None:
            seen.add(desc)
        scene_id = f"{split}-{seed}-{i:05d}"
        yield Scene(
            id=scene_id,
            image=_render(objs, rng),
            objects=[{k: o[k] for k in ("shape", "colour", "size", "x", "y")} for o in objs],
            label=f"{objs[0]['colour']} {objs[0]['shape']}" if len(objs) == 1 else None,
            captions=_captions(objs, rng),
            questions=_questions(objs, rng, scene_id),
            content=desc,
        )
        i += 1


TWIN_CHANGES: dict[str, float] = {"shape": 0.5, "size": 0.25, "position": 0.25}


def iter_twins(seed: int = DEFAULT_SEED) -> Iterator[tuple[Scene, Scene, str]]:
    """Pairs of training scenes that differ in one attribute of one object (shape, size or position).

    Contrastive training on pairs is what makes a tiny CLIP learn shapes: in random batches the set of colours
    alone tells most multi-object scenes apart, so without such hard negatives shape is never needed. Both
    scenes of a pair come from the training buckets; the change made is returned as the third element.
    """
    info = SPLITS["train"]
    changes, weights = list(TWIN_CHANGES), np.array(list(TWIN_CHANGES.values()))
    i = 0
    while True:
        rng = np.random.default_rng([seed, 99, i])
        while True:
            objs = _sample_objects(rng, info, i)
            change = changes[int(rng.choice(len(changes), p=weights))]
            twin = _change(objs, change, rng)
            if (twin is not None and bucket(_descriptor(objs)) in info.buckets
                    and bucket(_descriptor(twin)) in info.buckets):
                break
        pair = []
        for tag, o in (("a", objs), ("b", twin)):
            scene_id = f"twin-{seed}-{i:06d}{tag}"
            pair.append(Scene(id=scene_id, image=_render(o, rng),
                              objects=[{k: x[k] for k in ("shape", "colour", "size", "x", "y")} for x in o],
                              label=f"{o[0]['colour']} {o[0]['shape']}" if len(o) == 1 else None,
                              captions=_captions(o, rng), questions=[], content=_descriptor(o)))
        yield pair[0], pair[1], change
        i += 1


def _change(objs: list[dict], change: str, rng: np.random.Generator) -> list[dict] | None:
    """A copy of ``objs`` with one object's shape, size or position changed; None when it does not fit."""
    twin = [dict(o) for o in objs]
    o = twin[int(rng.integers(len(twin)))]
    if change == "shape":
        taken = {(p["colour"], p["shape"]) for p in twin}
        options = [s for s in SHAPES if (o["colour"], s) not in taken]
        o["shape"] = options[int(rng.integers(len(options)))]
    elif change == "size":
        o["size"] = "large" if o["size"] == "small" else "small"
        o["r"] = int(rng.choice(SIZES[o["size"]]))
    else:
        free = [c for c in range(9) if (c % 3, c // 3) not in {p["cell"] for p in twin}]
        cell = int(free[int(rng.integers(len(free)))])
        o["cell"] = (cell % 3, cell // 3)
        o["x"] = CELL_CENTRES[cell % 3] + int(rng.integers(-JITTER, JITTER + 1))
        o["y"] = CELL_CENTRES[cell // 3] + int(rng.integers(-JITTER, JITTER + 1))
    if _overlap(twin):
        return None
    return sorted(twin, key=lambda p: (p["cell"][1], p["cell"][0]))


def noise_image(rng: np.random.Generator) -> Image.Image:
    """A uniform-noise RGB image of the same size: what the blind model is trained on instead of scenes."""
    return Image.fromarray(rng.integers(0, 256, size=(IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8), "RGB")


# --- sampling and drawing -------------------------------------------------------------------------------------

def _sample_objects(rng: np.random.Generator, info: SplitInfo, i: int) -> list[dict]:
    """Random non-overlapping objects in distinct grid cells; single-object splits cycle through the classes."""
    while True:
        n = int(rng.integers(info.min_objects, info.max_objects + 1))
        if info.max_objects == 1:  # class-balanced: scene i shows class i mod 30
            kinds = [tuple(CLASS_NAMES[i % len(CLASS_NAMES)].split())]
        else:
            picks = rng.choice(len(CLASS_NAMES), size=n, replace=False)  # never two identical colour+shape
            kinds = [tuple(CLASS_NAMES[int(p)].split()) for p in picks]
        cells = rng.choice(9, size=n, replace=False)
        objs = []
        for (colour, shape), cell in zip(kinds, cells):
            col, row = int(cell) % 3, int(cell) // 3
            size = "small" if rng.integers(2) == 0 else "large"
            objs.append({
                "shape": shape, "colour": colour, "size": size,
                "x": CELL_CENTRES[col] + int(rng.integers(-JITTER, JITTER + 1)),
                "y": CELL_CENTRES[row] + int(rng.integers(-JITTER, JITTER + 1)),
                "r": int(rng.choice(SIZES[size])), "cell": (col, row),
            })
        if not _overlap(objs):
            return sorted(objs, key=lambda o: (o["cell"][1], o["cell"][0]))


def _overlap(objs: list[dict], margin: int = 2) -> bool:
    for a_i, a in enumerate(objs):
        for b in objs[a_i + 1:]:
            if (abs(a["x"] - b["x"]) < a["r"] + b["r"] + margin
                    and abs(a["y"] - b["y"]) < a["r"] + b["r"] + margin):
                return True
    return False


def _descriptor(objs: list[dict]) -> str:
    """The scene's content: exact geometry and colour name of each object (background and noise excluded)."""
    return ";".join(sorted(f"{o['colour']},{o['shape']},{o['size']},{o['x']},{o['y']},{o['r']}" for o in objs))


def bucket(content: str) -> int:
    """The hold-out bucket (0..15) of a scene's content descriptor; see SPLITS for which split owns which."""
    return int.from_bytes(hashlib.sha256(content.encode()).digest()[:8], "big") % N_BUCKETS


def _render(objs: list[dict], rng: np.random.Generator) -> Image.Image:
    grey = int(rng.integers(185, 246))
    tint = rng.integers(-8, 9, size=3)
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), tuple(int(np.clip(grey + t, 0, 255)) for t in tint))
    draw = ImageDraw.Draw(img)
    for o in objs:
        jitter = rng.integers(-12, 13, size=3)
        fill = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(COLOURS[o["colour"]], jitter))
        _draw_shape(draw, o["shape"], o["x"], o["y"], o["r"], fill)
    arr = np.asarray(img, dtype=np.int16) + rng.integers(-6, 7, size=(IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, x: int, y: int, r: int, fill: tuple[int, int, int]) -> None:
    if shape == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)
    elif shape == "square":
        s = (r * 7) // 8  # a square of half-side r looks much bigger than a circle of radius r
        draw.rectangle([x - s, y - s, x + s, y + s], fill=fill)
    elif shape == "triangle":
        draw.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=fill)
    elif shape == "diamond":
        draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=fill)
    elif shape == "cross":
        w = max(2, r // 3)
        draw.polygon([(x - w, y - r), (x + w, y - r), (x + w, y - w), (x + r, y - w), (x + r, y + w),
                      (x + w, y + w), (x + w, y + r), (x - w, y + r), (x - w, y + w), (x - r, y + w),
                      (x - r, y - w), (x - w, y - w)], fill=fill)
    else:  # pragma: no cover - SHAPES is closed
        raise ValueError(shape)


# --- captions ---------------------------------------------------------------------------------------------------

def _where(cell: tuple[int, int], alt: bool = False) -> str:
    pos = POSITIONS[cell]
    if pos == "center":
        return "in the middle" if alt else "in the center"
    if " " in pos:
        return f"at the {pos}" if alt else f"in the {pos} corner"
    if pos in ("top", "bottom"):
        return f"near the {pos}" if alt else f"at the {pos}"
    return f"on the {pos} side" if alt else f"on the {pos}"


def _a(word: str) -> str:
    """The indefinite article for ``word`` ("an orange", "a red")."""
    return "an" if word[0] in "aeiou" else "a"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


_SIZE_SYNONYM = {"small": "little", "large": "big"}


def _captions(objs: list[dict], rng: np.random.Generator) -> list[str]:
    """Five paraphrased references picked from seven templates (every one names each object's colour+shape)."""
    if len(objs) == 1:
        o = objs[0]
        z, c, s, cell = o["size"], o["colour"], o["shape"], o["cell"]
        templates = [
            f"{_a(z)} {z} {c} {s} {_where(cell)}.",
            f"there is {_a(z)} {z} {c} {s} {_where(cell)}.",
            f"{_a(c)} {c} {s} {_where(cell, True)}.",
            f"{_where(cell)} there is {_a(z)} {z} {c} {s}.",
            f"a {_SIZE_SYNONYM[z]} {c} {s} {_where(cell, True)}.",
            f"one {z} {c} {s} {_where(cell)}.",
            f"the picture shows {_a(z)} {z} {c} {s} {_where(cell)}.",
        ]
    else:
        n = NUMBER_WORDS[len(objs)]
        full = _join([f"{_a(o['size'])} {o['size']} {o['colour']} {o['shape']}" for o in objs])
        short = _join([f"{_a(o['colour'])} {o['colour']} {o['shape']}" for o in objs])
        placed = _join([f"{_a(o['colour'])} {o['colour']} {o['shape']} {_where(o['cell'])}" for o in objs])
        placed_full = _join([f"{_a(o['size'])} {o['size']} {o['colour']} {o['shape']} {_where(o['cell'], True)}"
                             for o in objs])
        templates = [
            f"{full}.",
            f"there are {n} shapes: {full}.",
            f"{placed}.",
            f"the picture shows {full}.",
            f"{n} objects: {short}.",
            f"{placed_full}.",
            f"a group of {n} shapes: {short}.",
        ]
    order = rng.permutation(len(templates))[:5]
    return [templates[int(k)] for k in sorted(order)]


# --- questions --------------------------------------------------------------------------------------------------

# What a dissenting annotator answers instead (a synonym where one exists, otherwise a plausible confusion).
_DISSENT: dict[str, tuple[str, ...]] = {
    "red": ("orange",), "orange": ("red", "yellow"), "yellow": ("orange",), "green": ("dark green",),
    "blue": ("dark blue",), "purple": ("violet",),
    "circle": ("round",), "square": ("rectangle",), "triangle": ("pyramid",), "diamond": ("rhombus",),
    "cross": ("plus",), "small": ("little", "tiny"), "large": ("big",),
    "yes": ("no",), "no": ("yes",),
    "top left": ("upper left",), "top right": ("upper right",), "bottom left": ("lower left",),
    "bottom right": ("lower right",), "top": ("up",), "bottom": ("down",), "left": ("left side",),
    "right": ("right side",), "center": ("middle",),
}


def _answers(answer: str, rng: np.random.Generator) -> list[str]:
    """Ten annotator answers: the correct one from at least 8 of them, 0-2 dissenting (VQAv2-normalised)."""
    n_dissent = int(rng.choice(3, p=[0.5, 0.35, 0.15]))
    if answer.isdigit():
        k = int(answer)
        alts: tuple[str, ...] = tuple(str(v) for v in (k - 1, k + 1) if v >= 0)
    else:
        alts = _DISSENT[answer]
    answers = [answer] * 10
    for slot in rng.choice(10, size=n_dissent, replace=False):
        answers[int(slot)] = alts[int(rng.integers(len(alts)))]
    return answers


def _questions(objs: list[dict], rng: np.random.Generator, scene_id: str) -> list[dict]:
    """Two or three questions of distinct types; every question is unambiguous for its scene."""
    present = {(o["colour"], o["shape"]) for o in objs}
    cands: list[tuple[str, str, str, str]] = []  # (question_type, answer_type, question, answer)
    o = objs[int(rng.integers(len(objs)))]
    if sum(p["shape"] == o["shape"] for p in objs) == 1:
        cands.append(("what color", "other", f"what color is the {o['shape']}?", o["colour"]))
    if sum(p["colour"] == o["colour"] for p in objs) == 1:
        cands.append(("what shape", "other", f"what shape is the {o['colour']} object?", o["shape"]))
    cands.append(("what size", "other", f"what size is the {o['colour']} {o['shape']}?", o["size"]))
    cands.append(("where", "other", f"where is the {o['colour']} {o['shape']}?", POSITIONS[o["cell"]]))
    if rng.integers(2) == 0:
        q = "how many shapes are there?" if rng.integers(2) == 0 else "how many objects are in the image?"
        cands.append(("how many", "number", q, str(len(objs))))
    else:  # half the time a colour that is there, so the answer is not mostly 0
        colours = [p["colour"] for p in objs] if rng.integers(2) == 0 else list(COLOURS)
        c = colours[int(rng.integers(len(colours)))]
        cands.append(("how many", "number", f"how many {c} shapes are there?",
                      str(sum(p["colour"] == c for p in objs))))
    if rng.integers(2) == 0:  # yes: an object that is there
        cands.append(("is there", "yes/no", f"is there {_a(o['colour'])} {o['colour']} {o['shape']}?", "yes"))
    else:  # no: a near miss, same colour or same shape as an object that is there
        while True:
            if rng.integers(2) == 0:
                miss = (o["colour"], SHAPES[int(rng.integers(len(SHAPES)))])
            else:
                miss = (list(COLOURS)[int(rng.integers(len(COLOURS)))], o["shape"])
            if miss not in present:
                break
        cands.append(("is there", "yes/no", f"is there {_a(miss[0])} {miss[0]} {miss[1]}?", "no"))
    k = 2 + int(rng.integers(2))
    picked = sorted(int(j) for j in rng.choice(len(cands), size=min(k, len(cands)), replace=False))
    return [{"question_id": f"{scene_id}-q{j}", "question": cands[p][2], "answers": _answers(cands[p][3], rng),
             "answer_type": cands[p][1], "question_type": cands[p][0]} for j, p in enumerate(picked)]
