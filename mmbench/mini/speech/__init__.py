"""The mini-speech set: 56 English sentences spoken by flite voices, shipped as 16 kHz FLAC with transcripts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from mmbench import files
from mmbench.data.sources import DataContext, DataSet
from mmbench.errors import DataError
from mmbench.specs import fingerprint

DATA_DIR = Path(__file__).resolve().parent / "data"


def load_items(data_dir: Path | None = None) -> list[dict]:
    """The transcript records (id, audio, text, voice, duration_s) with ``path``: the audio file's full path."""
    root = Path(data_dir) if data_dir is not None else DATA_DIR
    manifest = root / "transcripts.jsonl"
    if not manifest.is_file():
        raise DataError(f"mini-speech transcripts {manifest} not found: regenerate them with "
                        f"`python -m mmbench.mini.speech.make_mini_speech --out {root}`")
    return [{**rec, "path": str(root / rec["audio"])}
            for _, rec in files.iter_jsonl(manifest, "mini-speech transcripts")]


def load_mini_speech(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """The ``mini-speech`` data format: the shipped utterances as ASR records (id, audio, text, voice,
    duration_s). ``n``: only the first n (ids alternate the two voices, so any prefix is balanced), e.g. to
    keep the noisy variants of the mini suite fast. The fingerprint covers the transcripts and the audio bytes.
    """
    items = load_items()
    n = cfg.get("n")
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise DataError(f"task {ctx.task!r}: mini-speech n={n!r} must be a positive integer "
                            f"(at most {len(items)})")
        items = items[:n]
    unknown = sorted(set(cfg) - {"n"})
    if unknown:
        raise DataError(f"task {ctx.task!r}: mini-speech data has no option {unknown[0]!r}; it takes only n")
    digest = hashlib.sha256()
    records = []
    for it in items:
        path = Path(it["path"])
        digest.update(json.dumps([it["id"], it["text"]]).encode() + path.read_bytes())
        records.append({"id": it["id"], "audio": path, "text": it["text"], "voice": it["voice"],
                        "duration_s": it["duration_s"]})
    seconds = sum(r["duration_s"] for r in records)
    voices = sorted({r["voice"] for r in records})
    which = f"first {len(records)} of {len(load_items())}" if n is not None else f"all {len(records)}"
    return DataSet(records, fingerprint(["mini-speech", digest.hexdigest()]),
                   f"mini-speech: {which} utterances ({seconds:.1f} s), flite voices {', '.join(voices)}, "
                   f"16 kHz FLAC")
