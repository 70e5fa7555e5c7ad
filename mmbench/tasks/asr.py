"""Speech recognition (``kind: asr``): corpus WER and CER under a named normaliser, error counts, and RTFx.

Items are utterances: ``audio`` (a path, bytes, a dataset cell) and ``text`` (the reference transcript).
``prepare`` (a preparation thread) decodes each file, mixes it down to mono and resamples it to the model's
rate (mmbench.data.audio: soundfile + soxr, no torchaudio), adds noise when the task asks for it, and hands
the waveforms to the adapter's own ``prepare`` (features); ``predict`` times the adapter's ``transcribe``.

Each output keeps the item's audio duration and its share of the batch's seconds (split in proportion to
duration), so RTFx = audio seconds / transcription seconds is recomputed over every item, resumed ones too.

Metrics: ``metrics: [{name: wer, normalizer: whisper-english}]`` (the default; normalizers none | basic |
whisper-english, recorded in every variant). Task-file keys: ``noise_snr_db`` (white Gaussian noise at that SNR, seeded by (run seed, item id): the same noisy
audio for every model and every run with that seed) and ``curve`` (``{name, x, x_label}``: this task is the
point ``x`` of the named curve, e.g. WER vs SNR; ``x: null`` marks the clean point, which has no finite SNR
and is plotted at the clean end of the axis labelled "clean"; ``x`` defaults to ``noise_snr_db``).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np

from mmbench.capabilities import Capability, Transcript
from mmbench.data.audio import add_noise, load_audio
from mmbench.seeding import stable_seed
from mmbench.errors import ItemError, MMBenchError
from mmbench.metrics.base import MetricValue
from mmbench.metrics.api import TRANSCRIPTS
from mmbench.tasks.base import Batch, ScoreReport, Task, decode_each

# Noise is added at this rate, before resampling to the model's, so every model hears the same signal.
NOISE_RATE = 16000
CURVE_KEYS = ("name", "x", "x_label")
RTFX_VARIANT = ("RTFx = audio seconds / seconds inside the adapter's transcribe() (the model and decoding to "
                "text), summed over all utterances; audio decoding, resampling, added noise and the adapter's "
                "prepare() (e.g. log-mel features) are excluded: they run in a preparation thread")


@dataclass(frozen=True)
class ASRConfig:
    noise_snr_db: float | None = None  # add white Gaussian noise at this SNR (dB); None: the audio as is
    curve: Mapping[str, Any] | None = None  # {name, x, x_label}: where this task sits on a plotted curve


@dataclass
class AudioBatch:
    """What ``prepare`` hands to ``predict``: the adapter's prepared inputs and the utterances' durations."""

    prepared: Any
    durations: list[float]


def _json_float(x: float) -> float | None:
    """NaN (an undefined per-utterance WER) as None, so sample logs stay valid JSON."""
    return None if x is None or math.isnan(float(x)) else float(x)


class SpeechRecognition(Task):
    """Transcribe every utterance and score the transcripts against the references."""

    kind: ClassVar[str] = "asr"
    requires: ClassVar[Capability] = Capability.TRANSCRIBE
    Config: ClassVar[type] = ASRConfig
    default_batch_size: ClassVar[int] = 16
    metric_inputs: ClassVar[str] = TRANSCRIPTS
    default_metrics: ClassVar[tuple] = ("wer",)

    def __init__(self, spec, ctx) -> None:
        super().__init__(spec, ctx)
        c = self.config
        if c.noise_snr_db is not None and (isinstance(c.noise_snr_db, bool) or
                                           not isinstance(c.noise_snr_db, (int, float)) or
                                           not math.isfinite(c.noise_snr_db)):
            raise MMBenchError(f"task {self.name!r}: noise_snr_db {c.noise_snr_db!r} must be a finite number of dB "
                               f"(or left out for the audio as is)")
        self.curve = self._curve(c.curve)

    def _curve(self, curve: Any) -> dict | None:
        if curve is None:
            return None
        if not isinstance(curve, Mapping) or not isinstance(curve.get("name"), str) or not curve["name"]:
            raise MMBenchError(f"task {self.name!r}: curve must be a mapping with a name, e.g. "
                               f"{{name: WER vs SNR, x: 20, x_label: SNR (dB)}}")
        unknown = sorted(set(curve) - set(CURVE_KEYS))
        if unknown:
            raise MMBenchError(f"task {self.name!r}: curve has no key {unknown[0]!r}; use {', '.join(CURVE_KEYS)}")
        x = curve.get("x", self.config.noise_snr_db)
        if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float))):
            raise MMBenchError(f"task {self.name!r}: curve x {x!r} must be a number, or null for the clean point")
        return {"name": curve["name"], "x": x, "x_label": str(curve.get("x_label", ""))}

    # -- identity and provenance -------------------------------------------------------------------
    def output_config(self) -> dict:
        """What changes the transcripts: the data and the noise (with its seed). The normaliser and the curve
        only change scoring, so cached transcripts are rescored under another normaliser."""
        cfg = {k: v for k, v in super().output_config().items() if k != "curve"}
        if self.config.noise_snr_db is not None:
            cfg["noise"] = {"snr_db": float(self.config.noise_snr_db), "seed": self.ctx.seed, "rate": NOISE_RATE,
                            "kind": "white-gaussian"}
        return cfg

    def noise_description(self) -> str:
        if self.config.noise_snr_db is None:
            return "none (the audio as is)"
        return (f"white Gaussian noise at {float(self.config.noise_snr_db):g} dB SNR (power over the whole "
                f"utterance), added at {NOISE_RATE} Hz before resampling to the model's rate, drawn from "
                f"numpy default_rng(stable_seed(run seed {self.ctx.seed}, item id))")

    def describe(self) -> dict:
        d = super().describe()
        d["noise"] = self.noise_description()
        d["audio_preprocessing"] = ("soundfile decode, channel mean to mono, soxr resampling (HQ) to the model's "
                                    "sample rate")
        if self.curve is not None:
            d["curve"] = self.curve
        return d

    # -- the steps ----------------------------------------------------------------------------------
    def batch_order(self, items: list[dict]) -> list[dict]:
        """Longest utterances first when every item knows its duration (less padding per batch)."""
        if items and all(isinstance(it.get("duration_s"), (int, float)) for it in items):
            return sorted(items, key=lambda it: -float(it["duration_s"]))
        return items

    def load_wave(self, item: dict, sample_rate: int) -> np.ndarray:
        """The item's audio as float32 mono at ``sample_rate``, with the task's noise added; ItemError if bad."""
        source = item.get("audio")
        if source is None:
            raise ItemError(f"item {item['id']!r} has no audio field")
        if hasattr(source, "fetch"):  # a lazy dataset cell
            source = source.fetch()
        # errors name the item, and its file when it has one
        name = f"{item['id']} ({os.fspath(source)})" if isinstance(source, (str, os.PathLike)) else str(item["id"])
        if self.config.noise_snr_db is None:
            return load_audio(source, sample_rate, name=name)
        wave = load_audio(source, NOISE_RATE, name=name)
        wave = add_noise(wave, float(self.config.noise_snr_db), stable_seed(self.ctx.seed, item["id"]))
        if sample_rate != NOISE_RATE:
            wave = load_audio(wave, sample_rate, sampling_rate=NOISE_RATE, name=name)
        return wave

    def prepare(self, model: Any, items: list[dict]) -> Batch:
        rate = int(model.sample_rate)
        ok, waves, failed = decode_each(items, lambda it: self.load_wave(it, rate))
        prepared = model.prepare(waves, rate) if waves else None
        return Batch(ok, AudioBatch(prepared, [len(w) / rate for w in waves]), failed)

    def predict(self, model: Any, batch: Batch) -> list[dict]:
        start = time.perf_counter()
        texts = model.transcribe(batch.payload.prepared)
        seconds = time.perf_counter() - start
        if not isinstance(texts, list) or len(texts) != len(batch.items):
            return texts  # the runner reports the count mismatch
        bad = next((t for t in texts if not isinstance(t, (str, Transcript))), None)
        if bad is not None:
            raise MMBenchError(f"the model returned a {type(bad).__name__} transcript on task {self.name!r}; a "
                               f"SpeechToText adapter must return strings or Transcripts ('' for nothing recognised)")
        events = [list(t.events) if isinstance(t, Transcript) else [] for t in texts]
        texts = [t.text if isinstance(t, Transcript) else t for t in texts]
        durations = batch.payload.durations
        total = sum(durations)
        shares = [d / total if total > 0 else 1.0 / len(durations) for d in durations]
        return [{"text": t, "duration_s": d, "transcribe_s": seconds * s, "events": e}
                for t, d, s, e in zip(texts, durations, shares, events)]

    # -- scoring ------------------------------------------------------------------------------------
    def reference(self, item: dict) -> str:
        text = item.get("text")
        if not isinstance(text, str):
            raise MMBenchError(f"task {self.name!r}: utterance {item['id']!r} has no reference transcript (a "
                               f"string `text` field)")
        return text

    def rtfx(self, outputs: list[dict | None]) -> MetricValue:
        """Audio seconds / transcription seconds over the items that have outputs (resumed ones included)."""
        done = [o for o in outputs if o is not None]
        audio = float(sum(o["duration_s"] for o in done))
        seconds = float(sum(o["transcribe_s"] for o in done))
        ok = seconds > 0 and audio > 0
        return MetricValue(name="rtfx", value=audio / seconds if ok else None, variant=RTFX_VARIANT,
                           higher_is_better=True, unavailable=None if ok else "no utterance was transcribed",
                           extra={"audio_seconds": round(audio, 4), "transcription_seconds": round(seconds, 4),
                                  "n_utterances": len(done)})

    def score(self, items: list[dict], outputs: list[dict | None]) -> ScoreReport:
        refs = [self.reference(it) for it in items]
        # A failed item (unreadable audio) scores as an empty transcript: all its reference words are deletions.
        hyps = ["" if o is None else o["text"] for o in outputs]
        reports = self.run_metrics(hyps, [{"text": r} for r in refs])
        notes = []
        n_failed = sum(o is None for o in outputs)
        n_empty = sum(1 for o in outputs if o is not None and not o["text"].strip())
        if n_failed:
            notes.append(f"{n_failed} failed item(s) scored as empty transcripts (every reference word a deletion)")
        if n_empty:
            notes.append(f"{n_empty} empty transcript(s) from the model (every reference word a deletion)")
        notes += [n for r in reports for n in r.notes]
        stats = {k: np.asarray(v) for r in reports for k, v in r.stats.items()}
        for key, field in (("audio_seconds", "duration_s"), ("transcription_seconds", "transcribe_s")):
            stats[key] = np.array([0.0 if o is None else float(o.get(field, 0.0)) for o in outputs])
        samples = {}
        for i, (it, out) in enumerate(zip(items, outputs)):
            sample = {"reference": refs[i], "hypothesis": None if out is None else out["text"]}
            for r in reports:
                sample.update({k: _json_float(v[i]) if isinstance(v[i], float) else v[i] for k, v in r.per_item.items()})
            sample["duration_s"] = None if out is None else round(float(out["duration_s"]), 4)
            if self.config.noise_snr_db is not None:
                sample["snr_db"] = float(self.config.noise_snr_db)
            samples[it["id"]] = sample
        artifacts = {"hypotheses.jsonl": [{"id": it["id"], "text": h} for it, h in zip(items, hyps)],
                     "references.jsonl": [{"id": it["id"], "text": r} for it, r in zip(items, refs)]}
        return ScoreReport(metrics=[*(v for r in reports for v in r.values), self.rtfx(outputs)],
                           item_ids=[it["id"] for it in items], stats=stats, aggregator=self.aggregator,
                           notes=notes, samples=samples, artifacts=artifacts)
