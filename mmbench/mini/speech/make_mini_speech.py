"""Regenerate the mini-speech set: flite speaks SENTENCES, saved as 16 kHz mono 16-bit FLAC with transcripts.

Made with Debian flite 2.2-5 ("flite-2.2-current Sep 2018"); the same flite version yields the same samples
(synthesis is deterministic; FLAC headers may differ with the libFLAC version, the decoded audio does not).
Usage: ``python -m mmbench.mini.speech.make_mini_speech --out DIR`` (needs ``apt-get install flite``).
Sentence i is spoken by VOICES[i % len(VOICES)]: ``rms`` (male) and ``slt`` (female) are the two flite voices
that pocketsphinx recognises best.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from mmbench.data.audio import duration, load_audio
from mmbench.errors import MMBenchError
from mmbench.mini.speech.sentences import SENTENCES

VOICES: tuple[str, ...] = ("rms", "slt")
SAMPLE_RATE = 16000
FLITE_VERSION_MADE_WITH = "flite-2.2-current Sep 2018 (Debian package 2.2-5)"


def flite_version(flite: str) -> str:
    """The version line that ``flite --version`` prints."""
    out = subprocess.run([flite, "--version"], capture_output=True, text=True).stdout  # exits 1 after printing
    for line in out.splitlines():
        if "version:" in line:
            return line.split("version:", 1)[1].strip()
    return out.strip()


def synthesise(flite: str, text: str, voice: str, workdir: Path) -> np.ndarray:
    """``text`` spoken by ``voice`` as float32 mono at SAMPLE_RATE (flite writes 8 or 16 kHz WAV)."""
    wav = workdir / "utt.wav"
    subprocess.run([flite, "-voice", voice, "-t", text, "-o", str(wav)], check=True, capture_output=True)
    return load_audio(wav, SAMPLE_RATE)


def to_pcm16(wave: np.ndarray) -> np.ndarray:
    """float in [-1, 1) -> int16 with the same 1/32768 scale soundfile reads with (lossless round trip)."""
    return np.clip(np.round(wave.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def make(out: Path, flite: str = "flite") -> list[dict]:
    """Write ``out/audio/*.flac``, ``out/transcripts.jsonl`` and ``out/info.json``; return the records."""
    import soundfile as sf

    exe = shutil.which(flite)
    if exe is None:
        raise MMBenchError(f"{flite!r} not found: install it with `apt-get install flite`")
    (out / "audio").mkdir(parents=True, exist_ok=True)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(SENTENCES):
            voice = VOICES[i % len(VOICES)]
            uid = f"ms{i:03d}-{voice}"
            pcm = to_pcm16(synthesise(exe, text, voice, Path(tmp)))
            rel = f"audio/{uid}.flac"
            sf.write(out / rel, pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16", compression_level=1.0)
            records.append({"id": uid, "audio": rel, "text": text, "voice": voice,
                            "duration_s": round(duration(pcm, SAMPLE_RATE), 4)})
    with open(out / "transcripts.jsonl", "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    info = {"generator": "mmbench.mini.speech.make_mini_speech", "flite_version": flite_version(exe),
            "voices": list(VOICES), "sample_rate": SAMPLE_RATE, "format": "FLAC PCM_16 mono",
            "n_utterances": len(records),
            "total_duration_s": round(sum(r["duration_s"] for r in records), 4)}
    with open(out / "info.json", "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=2)
        fh.write("\n")
    return records


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--flite", default="flite", help="flite executable")
    args = p.parse_args(argv)
    recs = make(args.out, args.flite)
    print(f"wrote {len(recs)} utterances, {sum(r['duration_s'] for r in recs):.1f} s, to {args.out}")


if __name__ == "__main__":
    main()
