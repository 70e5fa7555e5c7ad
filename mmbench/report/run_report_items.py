"""The per-item side of ``mmbench report``: samples rows -> plain item dicts, and each item's media inline.

A task writes one ``samples_<task>.jsonl`` row per item, with fields that depend on its kind (VQA:
``prompt_sent``, ``generation``, ``answer``, ``references``, ``score``; multiple choice: ``passes``; ASR:
``hypothesis``, ``reference``, ``wer``; a probe adds ``condition`` and ``item``; a failed item has ``error``).
:func:`item_view` maps every kind onto the same few columns (prompt, output, references, score) and keeps
the remaining fields as "details", so a kind nobody taught the report still shows everything.

The samples hold no images: :func:`task_items` rebuilds the task from the ``task_info.config`` kept in the
result and reads its items (id -> image or audio source). :class:`MediaTable` turns those into data URIs
(downscaled thumbnails, audio as its file or 16 kHz WAV), each distinct one stored once, at most
``max_media`` of them, so a page for tens of thousands of items stays a file a browser opens.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

DEFAULT_MAX_IMAGES = 2000  # distinct images and audio clips embedded in one page (--max-images)
# How `mmbench report RUN --compare OTHER` pairs results and items (also in the page and the CLI help).
COMPARE_RULE = ("results are matched by task; within a task by model name when both runs have that model, else, "
                "when each run has exactly one model for the task, those two (e.g. a base model against its "
                "fine-tune under another name); items are matched by id")
THUMBNAIL_PX = 256  # longest side of an inline image
SMALL_PX = 128  # images this small (or smaller) are stored as PNG (exact); larger ones as JPEG
JPEG_QUALITY = 80
MAX_AUDIO_FILE_BYTES = 512 * 1024  # a WAV/FLAC/MP3/OGG file up to this size is inlined as it is
MAX_AUDIO_SECONDS = 30.0  # longer audio is transcoded and cut to this length
AUDIO_MIME = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg"}
IMAGES_PER_ITEM = 4  # of a multi-image item, the first this many are shown

# Per-item score fields, in the order they are looked for: (field, best value or None, higher is better).
# "best" defines a wrong item (score short of it); scores without a best (CIDEr, CLIP cosine) never are.
SCORE_FIELDS: tuple[tuple[str, float | None, bool], ...] = (
    ("score", 1.0, True), ("vqa_accuracy", 1.0, True), ("mc_accuracy", 1.0, True), ("mmmu_accuracy", 1.0, True),
    ("gqa_accuracy", 1.0, True), ("exact_match", 1.0, True), ("relaxed_accuracy", 1.0, True),
    ("anls", 1.0, True), ("correct", 1.0, True), ("wer", 0.0, False), ("cer", 0.0, False),
    ("image_to_text_best_rank", 0.0, False), ("cider_d", None, True), ("clip_cosine", None, True))
_SCORE_NAMES = {name for name, _, _ in SCORE_FIELDS}
PROMPT_FIELDS = ("prompt_sent", "prompt", "question")
OUTPUT_FIELDS = ("generation", "hypothesis", "prediction", "caption", "answer")
REFERENCE_FIELDS = ("references", "reference", "labels", "label", "captions")


@dataclass(frozen=True)
class ScoreField:
    """Which sample field is an item's score, its best value (None: unbounded) and direction."""

    name: str
    best: float | None
    higher_is_better: bool

    def is_wrong(self, value: float | None) -> bool:
        return self.best is not None and value is not None and not math.isclose(value, self.best, abs_tol=1e-9)


def score_field(rows: Iterable[dict]) -> ScoreField | None:
    """The score field of a (model, task)'s samples: the first of SCORE_FIELDS that a row has as a number."""
    keys: set[str] = set()
    for row in rows:
        keys.update(k for k, v in row.items() if isinstance(v, (int, float)))
        if len(keys) > 64:
            break
    for name, best, higher in SCORE_FIELDS:
        if name in keys:
            return ScoreField(name, best, higher)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _text(value: Any) -> Any:
    """A sample value for the page: strings and lists of strings as they are, anything else as JSON text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def item_view(row: dict, score: ScoreField | None) -> dict:
    """One samples row as the page's item: id, condition, prompt, output, answer, references, score, wrong,
    failed (the error) and details (every other field). Compact keys keep large pages small."""
    used = {"id", "condition", "item", "error", "passes"}
    passes = row.get("passes") if isinstance(row.get("passes"), list) else None
    if passes is not None:  # multiple choice: one prompt and one reply per pass (rotated options)
        prompt: Any = [str(p.get("prompt_sent", "")) for p in passes if isinstance(p, dict)]
        output: Any = [str(p.get("text", "")) for p in passes if isinstance(p, dict)]
        answer = row.get("answer")
        used.add("answer")
    else:
        # a row with prompt_sent: null is an item that failed before anything was sent (its question is a detail)
        prompt = row["prompt_sent"] if "prompt_sent" in row else next(
            (row[k] for k in PROMPT_FIELDS if row.get(k) is not None), None)
        out_key = next((k for k in OUTPUT_FIELDS if k in row), None)
        output = row.get(out_key) if out_key else None
        answer = row.get("answer") if out_key != "answer" and row.get("answer") not in (output, "") else None
        used.update(k for k in (out_key, "answer") if k)
        if row.get("caption") == output:  # captioning: the caption scored is the generation
            used.add("caption")
    # the question is part of the prompt that was sent (shown there)
    prompts = prompt if isinstance(prompt, list) else [prompt] if isinstance(prompt, str) else []
    used.update(k for k in PROMPT_FIELDS if row.get(k) is not None and (row[k] is prompt or (
        isinstance(row[k], str) and any(row[k] in p for p in prompts))))
    ref_key = next((k for k in REFERENCE_FIELDS if k in row and k not in used), None)
    value = _number(row.get(score.name)) if score else None
    view = {"id": str(row.get("id", "")), "c": row.get("condition"), "p": _text(prompt), "o": _text(output),
            "a": _text(answer), "r": _text(row.get(ref_key)) if ref_key else None, "s": value,
            "w": bool(score and score.is_wrong(value)), "f": row.get("error"),
            "x": {k: _text(v) for k, v in row.items() if k not in used and k != ref_key and v is not None and not (
                k in _SCORE_NAMES and value is not None and _number(v) == value)}}  # the score, once
    return {k: v for k, v in view.items() if k in ("id", "s") or not (v is None or v is False or v == {})}


def media_id(row: dict) -> str:
    """The id of the data item a samples row is about (a probe's row: the wrapped item)."""
    return str(row["item"]) if row.get("condition") is not None and "item" in row else str(row.get("id", ""))


# -- the task's items (where the media are) -----------------------------------------------------------------

def task_items(task_info: dict, data_dir: Path | None, seed: int = 0) -> tuple[dict[str, dict] | None, str]:
    """The task's items by id, rebuilt from the task config kept with the result, or (None, why not)."""
    from mmbench.specs import TaskSpec
    from mmbench.tasks.base import TaskContext
    from mmbench.tasks.catalog import build_task

    config = task_info.get("config")
    if not isinstance(config, dict) or "kind" not in config:
        return None, "the result keeps no task config to find the data with"
    spec = TaskSpec(name=str(task_info.get("name", config.get("task", "?"))), kind=str(config["kind"]),
                    config=config, source=str(task_info.get("source", "")))
    try:
        task = build_task(spec, TaskContext(data_dir=data_dir, seed=seed))
        inner = getattr(task, "inner", None)  # a probe: the wrapped task's items, each once
        items = (inner or task).items()
    except Exception as exc:  # noqa: BLE001 - missing or moved data, a plugin kind not installed: say so, go on
        line = " ".join(str(exc).split())
        return None, f"data not found ({type(exc).__name__}: {line[:300]})"
    return {str(it.get("id")): it for it in items}, ""


# -- media as data URIs ----------------------------------------------------------------------------------------

def image_uri(source: Any, max_px: int = THUMBNAIL_PX) -> str:
    """An image (path, bytes, PIL image, lazy reference) as a data URI of a thumbnail; ItemError when unreadable."""
    from mmbench.data.images import load_image

    img = load_image(source).copy()
    img.thumbnail((max_px, max_px))
    buf = io.BytesIO()
    if max(img.size) <= SMALL_PX:
        img.save(buf, format="PNG", optimize=True)
        mime = "image/png"
    else:
        img.save(buf, format="JPEG", quality=JPEG_QUALITY)
        mime = "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def audio_uri(source: Any) -> str:
    """Audio as a data URI: a small WAV/FLAC/MP3/OGG file as it is, anything else as 16 kHz 16-bit WAV (at most
    MAX_AUDIO_SECONDS); ItemError when unreadable."""
    import numpy as np

    from mmbench.data.audio import load_audio

    if isinstance(source, (str, Path)):
        path = Path(source)
        mime = AUDIO_MIME.get(path.suffix.lower())
        if mime and path.is_file() and path.stat().st_size <= MAX_AUDIO_FILE_BYTES:
            return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    rate = 16000
    samples = load_audio(source, rate)[: int(MAX_AUDIO_SECONDS * rate)]
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass
class MediaTable:
    """The page's media, each distinct data URI once (by content hash), at most ``max_media`` of them.

    ``uris`` maps a short key to a data URI; items refer to keys. ``reasons`` lists why an item shows none
    (items refer to a reason by its index)."""

    max_media: int
    uris: dict[str, str] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    skipped: int = 0  # media not embedded because the cap was reached
    _by_hash: dict[str, str] = field(default_factory=dict)
    _memo: dict[tuple, tuple[list[str], int | None]] = field(default_factory=dict)

    def reason(self, text: str) -> int:
        if text not in self.reasons:
            self.reasons.append(text)
        return self.reasons.index(text)

    def full(self) -> bool:
        return len(self.uris) >= self.max_media

    def add(self, uri: str) -> str:
        digest = hashlib.sha1(uri.encode("ascii")).hexdigest()[:12]
        if digest not in self._by_hash:
            self._by_hash[digest] = f"m{len(self._by_hash)}"
            self.uris[self._by_hash[digest]] = uri
        return self._by_hash[digest]

    def for_item(self, memo_key: tuple, item: dict) -> tuple[list[str], int | None]:
        """(media keys, None) for a data item's image(s) or audio, or ([], reason index)."""
        if memo_key in self._memo:
            return self._memo[memo_key]
        if self.full():
            self.skipped += 1
            return [], self.reason(f"not embedded: the page holds at most {self.max_media} images and audio "
                                   f"clips (--max-images)")
        sources: list[tuple[str, Any]] = []
        if item.get("images"):
            sources = [("image", s) for s in list(item["images"])[:IMAGES_PER_ITEM]]
        elif item.get("image") is not None:
            sources = [("image", item["image"])]
        elif item.get("audio") is not None:
            sources = [("audio", item["audio"])]
        if not sources:
            result: tuple[list[str], int | None] = ([], self.reason("the data item has no image or audio"))
        else:
            from mmbench.errors import ItemError, MMBenchError

            try:
                result = ([self.add(image_uri(s) if kind == "image" else audio_uri(s)) for kind, s in sources], None)
            except (ItemError, MMBenchError, OSError, ValueError) as exc:
                result = ([], self.reason(f"unreadable: {' '.join(str(exc).split())[:200]}"))
        self._memo[memo_key] = result
        return result

    def generated(self, memo_key: tuple, png_base64: str | None) -> tuple[list[str], int | None]:
        """A generated image (text-to-image: the PNG in the artifacts folder, as base64) as a thumbnail."""
        if png_base64 is None:
            return [], self.reason("no generated image saved for this item (or it is too large to inline)")
        return self.for_item(memo_key, {"image": base64.b64decode(png_base64)})
