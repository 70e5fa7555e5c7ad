"""Audio decoding to float32 mono at a target rate (soundfile + soxr), and deterministic noise for robustness runs.

Accepted sources: a path, encoded bytes (FLAC/WAV/OGG and whatever else libsndfile reads), a Hugging Face
``datasets`` audio value (``{"array", "sampling_rate"}``, ``{"path", "bytes"}`` from ``Audio(decode=False)``,
or the torchcodec ``AudioDecoder`` that datasets 5.x returns when decoding), or an array with its rate.
Every problem with one item raises ``ItemError`` naming the item, so a run records it and goes on.
"""

from __future__ import annotations

import io
import os
from typing import Any, Mapping, Sequence

import numpy as np

from mmbench.errors import ItemError, MMBenchError

# soxr quality used for every resampling ("HQ" is soxr's default: 20-bit precision, linear phase).
RESAMPLE_QUALITY = "HQ"


def _describe(source: Any, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, Mapping) and source.get("path"):
        return str(source["path"])
    return f"<{type(source).__name__} audio>"


def _read_file(src: str | os.PathLike | bytes | bytearray, label: str) -> tuple[np.ndarray, int]:
    """Decode a file or encoded bytes with soundfile: (frames, channels) float32 and the sampling rate."""
    import soundfile as sf

    if isinstance(src, (str, os.PathLike)):
        if not os.path.isfile(src):
            raise ItemError(f"audio file {label} not found: check the path")
        target: Any = os.fspath(src)
    else:
        if len(src) == 0:
            raise ItemError(f"audio {label} is empty (0 bytes): re-export or drop the item")
        target = io.BytesIO(bytes(src))
    try:
        data, sr = sf.read(target, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ItemError(f"audio {label} cannot be decoded ({first}): re-encode it as WAV or FLAC") from e
    return data, int(sr)


def _from_decoder(decoder: Any, label: str) -> tuple[np.ndarray, int]:
    """Samples of a torchcodec ``AudioDecoder`` (what datasets 5.x yields for a decoded Audio column)."""
    try:
        samples = decoder.get_all_samples()
        data = samples.data.cpu().numpy()  # (channels, frames)
        sr = int(samples.sample_rate)
    except Exception as e:  # torchcodec raises RuntimeError/ValueError subclasses on bad streams
        raise ItemError(f"audio {label} cannot be decoded by torchcodec ({e}): re-encode it") from e
    return np.asarray(data, dtype=np.float32).T, sr


def _as_frames(array: Any, label: str) -> np.ndarray:
    """An in-memory waveform as (frames, channels): 1-D is mono, 2-D is (frames, channels) or (channels, frames)."""
    a = np.asarray(array)
    if a.ndim == 1:
        a = a[:, None]
    elif a.ndim == 2:
        # A waveform has many more frames than channels; datasets/torch use (channels, frames).
        if a.shape[0] < a.shape[1]:
            a = a.T
    else:
        raise ItemError(f"audio {label} has shape {a.shape}: expected 1-D or (frames, channels)")
    if np.issubdtype(a.dtype, np.integer):
        # integer PCM: scale to [-1, 1) by the type's full scale
        a = a.astype(np.float64) / float(-np.iinfo(a.dtype).min)
    return a.astype(np.float32, copy=False)


def decode(source: Any, *, sampling_rate: int | None = None, name: str | None = None) -> tuple[np.ndarray, int]:
    """The raw samples of any accepted source as (frames, channels) float32, and their rate; no resampling."""
    label = _describe(source, name)
    if isinstance(source, (str, os.PathLike, bytes, bytearray)):
        return _read_file(source, label)
    if isinstance(source, np.ndarray) or (isinstance(source, Sequence) and not isinstance(source, str)
                                          and sampling_rate is not None):
        if sampling_rate is None:
            raise MMBenchError(f"audio {label} is an array without a sampling rate: pass sampling_rate=")
        return _as_frames(source, label), int(sampling_rate)
    if isinstance(source, Mapping):
        if source.get("array") is not None:
            sr = source.get("sampling_rate", sampling_rate)
            if sr is None:
                raise ItemError(f"audio {label} has an 'array' but no 'sampling_rate'")
            return _as_frames(source["array"], label), int(sr)
        if source.get("bytes") is not None:
            return _read_file(source["bytes"], label)
        if source.get("path") is not None:
            return _read_file(source["path"], label)
        raise ItemError(f"audio {label} has none of 'array', 'bytes' or 'path': check the audio column")
    if hasattr(source, "get_all_samples"):
        return _from_decoder(source, label)
    raise MMBenchError(f"cannot read audio from a {type(source).__name__}: pass a path, bytes, "
                       "a datasets audio value or an array with sampling_rate=")


def load_audio(source: Any, target_sr: int = 16000, *, sampling_rate: int | None = None,
               name: str | None = None) -> np.ndarray:
    """Decode ``source`` to a float32 mono waveform at ``target_sr`` Hz.

    Channels are mixed down by their mean, then resampled with soxr (quality RESAMPLE_QUALITY) when the
    rate differs. ``sampling_rate`` is the rate of an in-memory array; ``name`` labels the item in errors.
    """
    if target_sr <= 0:
        raise MMBenchError(f"target sampling rate must be positive, got {target_sr}")
    label = _describe(source, name)
    frames, sr = decode(source, sampling_rate=sampling_rate, name=name)
    if frames.shape[0] == 0:
        raise ItemError(f"audio {label} has no samples: drop the item or fix the file")
    if sr <= 0:
        raise ItemError(f"audio {label} reports sampling rate {sr}")
    mono = frames.mean(axis=1, dtype=np.float64) if frames.shape[1] > 1 else frames[:, 0]
    if not np.all(np.isfinite(mono)):
        raise ItemError(f"audio {label} contains NaN or infinite samples")
    if sr != target_sr:
        import soxr

        mono = soxr.resample(np.asarray(mono, dtype=np.float64), sr, target_sr, quality=RESAMPLE_QUALITY)
    return np.ascontiguousarray(mono, dtype=np.float32)


def duration(wave: np.ndarray, sr: int) -> float:
    """Length of a mono waveform in seconds."""
    return len(wave) / float(sr)


def add_noise(wave: np.ndarray, snr_db: float, seed: int | Sequence[int]) -> np.ndarray:
    """``wave`` plus white Gaussian noise at exactly ``snr_db`` dB signal-to-noise ratio.

    SNR = 10 log10(P_signal / P_noise) with P = mean of squared samples over the whole waveform. The noise
    is drawn from ``numpy.random.default_rng(seed)`` (seed: an int, or ints such as (run seed,
    stable_seed(item id))) and rescaled so that its own mean power is P_signal / 10^(snr_db / 10); the
    result is deterministic and reaches the SNR up to float32 rounding. A silent or empty wave is returned
    unchanged (no signal power to scale to).
    """
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim != 1:
        raise MMBenchError(f"add_noise expects a mono 1-D waveform, got shape {x.shape}")
    if not np.isfinite(snr_db):
        raise MMBenchError(f"SNR must be a finite number of dB, got {snr_db}")
    p_signal = float(np.mean(x * x)) if x.size else 0.0
    if p_signal == 0.0:
        return np.asarray(wave, dtype=np.float32).copy()
    noise = np.random.default_rng(seed).standard_normal(x.size)
    target = p_signal / (10.0 ** (snr_db / 10.0))
    noise *= np.sqrt(target / float(np.mean(noise * noise)))
    return (x + noise).astype(np.float32)
