"""The mini-speech set: 56 English sentences spoken by flite voices, shipped as 16 kHz FLAC with transcripts."""

from __future__ import annotations

import json
from pathlib import Path

from mmbench.errors import DataError

DATA_DIR = Path(__file__).resolve().parent / "data"


def load_items(data_dir: Path | None = None) -> list[dict]:
    """The transcript records (id, audio, text, voice, duration_s) with ``path``: the audio file's full path."""
    root = Path(data_dir) if data_dir is not None else DATA_DIR
    manifest = root / "transcripts.jsonl"
    if not manifest.is_file():
        raise DataError(f"mini-speech transcripts {manifest} not found: regenerate them with "
                        f"`python -m mmbench.mini.speech.make_mini_speech --out {root}`")
    items = []
    with open(manifest, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{manifest} line {n} is not JSON ({e.msg}): regenerate the set") from e
            rec["path"] = str(root / rec["audio"])
            items.append(rec)
    return items
