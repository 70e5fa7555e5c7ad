"""Speech data formats: LibriSpeech from a local folder and Hugging Face ``datasets`` audio datasets.

Records are ``{"id", "audio", "text", ...}`` with the audio left undecoded (a path or a lazy dataset cell):
the ASR task decodes it in a preparation thread with ``mmbench.data.audio.load_audio``, so an unreadable file
fails its own item only. JSONL manifests (``{"audio": path, "text": ...}``) use the generic ``jsonl`` format.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping

from mmbench.data.sources import (DataContext, DataSet, HFRef, _require, check_columns, copy_columns,
                                  open_hf_dataset, resolve_path, row_ids)
from mmbench.errors import DataError
from mmbench.specs import fingerprint


def _audio_seconds(path: Path) -> float | None:
    """Duration from the file header (soundfile reads no samples); None when the header is unreadable."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, OSError):
        return None
    return info.frames / float(info.samplerate) if info.samplerate else None


def load_librispeech(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """A LibriSpeech split as distributed by openslr.org: ``root/<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac``
    with one ``<speaker>-<chapter>.trans.txt`` per chapter (lines ``<utterance id> <TRANSCRIPT>``).

    ``root``: the split's folder (e.g. ``LibriSpeech/test-clean``), absolute or under --data-dir. Records are
    sorted by utterance id and carry ``speaker``, ``chapter`` and ``duration_s`` (from the FLAC headers; None
    for a file that is missing or unreadable, which then fails as an item).
    """
    root = resolve_path(_require(cfg, "root", ctx, "librispeech"), ctx, "LibriSpeech folder")
    if not root.is_dir():
        raise DataError(f"task {ctx.task!r}: LibriSpeech root {root} is not a folder; point `root:` at a split "
                        f"folder such as LibriSpeech/test-clean")
    transcripts = sorted(root.glob("*/*/*.trans.txt"))
    if not transcripts:
        hint = f" {ctx.help.strip()}" if ctx.help else ""
        raise DataError(f"task {ctx.task!r}: no <speaker>/<chapter>/*.trans.txt files under {root}; it is not a "
                        f"LibriSpeech split folder (expected e.g. LibriSpeech/test-clean).{hint}")
    records, digest = [], hashlib.sha256()
    for trans in transcripts:
        raw = trans.read_bytes()
        digest.update(str(trans.relative_to(root)).encode() + b"\0" + raw)
        speaker, chapter = trans.parent.parent.name, trans.parent.name
        for lineno, line in enumerate(raw.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            utt, _, text = line.strip().partition(" ")
            if not text.strip():
                raise DataError(f"task {ctx.task!r}: {trans} line {lineno} has no transcript after the id "
                                f"{utt!r}; re-extract the archive")
            audio = trans.parent / f"{utt}.flac"
            records.append({"id": utt, "audio": audio, "text": text.strip(), "speaker": speaker,
                            "chapter": chapter, "duration_s": _audio_seconds(audio)})
    records.sort(key=lambda r: r["id"])
    sizes = [r["audio"].stat().st_size if r["audio"].is_file() else -1 for r in records]
    fp = fingerprint(["librispeech", digest.hexdigest(), sizes])
    hours = sum(r["duration_s"] or 0.0 for r in records) / 3600
    return DataSet(records, fp, f"LibriSpeech {root.name} ({len(records)} utterances, "
                                f"{len({r['speaker'] for r in records})} speakers, {hours:.2f} h) at {root}")


def load_hf_audio(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """A Hugging Face audio dataset: ``path`` (+ ``name``, ``split``, ``revision``, ``local``), ``audio_column``
    (default ``audio``), ``text_column`` (default ``text``), optional ``id_column`` and ``columns:`` (more
    record fields: ``{field: column}``, e.g. ``{speaker: speaker_id}``).

    The audio column is cast to ``Audio(decode=False)``: datasets 5 decodes audio only through torchcodec,
    while mmbench decodes the raw bytes itself (soundfile + soxr), lazily, one item at a time.
    """
    import datasets

    ds, source, split = open_hf_dataset(cfg, ctx, "hf-audio")
    audio_col, text_col = cfg.get("audio_column", "audio"), cfg.get("text_column", "text")
    check_columns(ds, {"audio_column": audio_col, "text_column": text_col, "id_column": cfg.get("id_column")},
                  ctx, source)
    if isinstance(ds.features.get(audio_col), datasets.Audio):
        ds = ds.cast_column(audio_col, datasets.Audio(decode=False))
    records: list[dict] = [{"id": i, "audio": HFRef(ds, audio_col, n), "text": t}
                           for n, (i, t) in enumerate(zip(row_ids(ds, cfg.get("id_column"), ctx), ds[text_col]))]
    copy_columns(records, ds, dict(cfg.get("columns") or {}), ctx, source)
    bad = next((r for r in records if not isinstance(r["text"], str)), None)
    if bad is not None:
        raise DataError(f"task {ctx.task!r}: row {bad['id']!r} has a {type(bad['text']).__name__} in text column "
                        f"{text_col!r}, not a string; name the transcript column with text_column:")
    fp = fingerprint(["hf-audio", getattr(ds, "_fingerprint", source), split, sorted(cfg.items(), key=str)])
    return DataSet(records, fp, f"HF audio dataset {source} split={split} ({len(records)} rows)")
