"""Audio decoding (round trips, mixdown, resampling, broken files) and deterministic noise at a given SNR."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mmbench.data.audio import add_noise, decode, duration, load_audio
from mmbench.seeding import stable_seed
from mmbench.errors import ItemError, MMBenchError


def _pcm16(sr: int = 16000, seconds: float = 0.5, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    ints = np.round(x * 32767).astype(np.int16)
    return ints if channels == 1 else np.stack([ints] + [ints // (c + 2) for c in range(channels - 1)], axis=1)


@pytest.mark.parametrize("fmt,ext", [("FLAC", "flac"), ("WAV", "wav"), ("OGG", "ogg")])
def test_round_trip_file_and_bytes(tmp_path: Path, fmt: str, ext: str) -> None:
    ints = _pcm16()
    path = tmp_path / f"a.{ext}"
    if fmt == "OGG":
        sf.write(path, ints.astype(np.float32) / 32768, 16000, format="OGG", subtype="VORBIS")
    else:
        sf.write(path, ints, 16000, format=fmt, subtype="PCM_16")
    w = load_audio(path, 16000)
    assert w.dtype == np.float32 and w.ndim == 1 and len(w) == len(ints)
    if fmt != "OGG":  # lossless: exactly the int16 samples over 32768
        np.testing.assert_array_equal(w, ints.astype(np.float32) / 32768)
    else:
        assert np.max(np.abs(w - ints / 32768)) < 0.05
    np.testing.assert_array_equal(load_audio(path.read_bytes(), 16000), w)
    np.testing.assert_array_equal(load_audio(str(path), 16000), w)


def test_stereo_mixdown_is_channel_mean(tmp_path: Path) -> None:
    ints = _pcm16(channels=2)
    path = tmp_path / "st.wav"
    sf.write(path, ints, 16000, subtype="PCM_16")
    expected = (ints[:, 0].astype(np.float64) + ints[:, 1]) / 2 / 32768
    np.testing.assert_allclose(load_audio(path, 16000), expected, rtol=0, atol=1e-7)


def test_resample_44k_to_16k_keeps_length_and_frequency() -> None:
    sr, f0 = 44100, 1000.0
    t = np.arange(sr * 2) / sr  # 2 s
    x = (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)
    y = load_audio(x, 16000, sampling_rate=sr)
    assert len(y) == 32000  # soxr: round(n * out / in)
    assert duration(y, 16000) == 2.0
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    peak_hz = np.argmax(spec) * 16000 / len(y)
    assert abs(peak_hz - f0) <= 0.5
    core = slice(1000, -1000)  # amplitude preserved away from the edges
    assert np.sqrt(np.mean(y[core] ** 2)) == pytest.approx(0.3 / np.sqrt(2), rel=1e-3)


def test_8k_file_upsampled(tmp_path: Path) -> None:
    path = tmp_path / "n.wav"
    sf.write(path, _pcm16(sr=8000, seconds=1.0), 8000, subtype="PCM_16")
    assert len(load_audio(path, 16000)) == 16000


def test_datasets_audio_values() -> None:
    ints = _pcm16()
    arr = ints.astype(np.float32) / 32768
    buf = io.BytesIO()
    sf.write(buf, ints, 16000, format="FLAC")
    # {"array", "sampling_rate"} (datasets 2.x/3.x decoded) and {"path", "bytes"} (datasets 5.x decode=False)
    np.testing.assert_array_equal(load_audio({"array": arr, "sampling_rate": 16000}, 16000), arr)
    np.testing.assert_array_equal(load_audio({"path": "x.flac", "bytes": buf.getvalue()}, 16000), arr)
    # channels-first 2-D arrays (torch / torchcodec layout) are mixed down too
    frames, sr = decode(np.stack([arr, np.zeros_like(arr)]), sampling_rate=16000)
    assert frames.shape == (len(arr), 2) and sr == 16000
    # integer PCM arrays are scaled by the type's full range
    np.testing.assert_array_equal(load_audio(ints, 16000, sampling_rate=16000), arr)


def test_datasets_audio_column_without_decoding(tmp_path: Path) -> None:
    import datasets

    path = tmp_path / "d.flac"
    sf.write(path, _pcm16(), 16000)
    ds = datasets.Dataset.from_dict({"audio": [str(path)]}).cast_column("audio", datasets.Audio(decode=False))
    np.testing.assert_array_equal(load_audio(ds[0]["audio"], 16000), load_audio(path, 16000))


class _FakeTorchcodecDecoder:
    """Mimics torchcodec's AudioDecoder: get_all_samples() -> .data (channels, frames) tensor, .sample_rate."""

    def __init__(self, data: np.ndarray, sr: int) -> None:
        import torch

        self._samples = type("Samples", (), {"data": torch.from_numpy(data), "sample_rate": sr})()

    def get_all_samples(self):
        return self._samples


def test_torchcodec_style_decoder() -> None:
    x = np.stack([np.ones(800, np.float32) * 0.5, np.zeros(800, np.float32)])
    y = load_audio(_FakeTorchcodecDecoder(x, 8000), 8000)
    np.testing.assert_array_equal(y, np.full(800, 0.25, np.float32))


def test_corrupt_empty_and_missing_files_raise_item_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"fLaC this is not audio" * 10)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    silent = tmp_path / "zero_frames.wav"
    sf.write(silent, np.zeros(0, np.int16), 16000)
    for bad in (corrupt, empty, silent, tmp_path / "missing.wav"):
        with pytest.raises(ItemError) as ei:
            load_audio(bad, 16000)
        msg = str(ei.value)
        assert bad.name in msg and "\n" not in msg
    with pytest.raises(ItemError, match="item-7"):
        load_audio(b"garbage bytes", 16000, name="item-7")
    with pytest.raises(ItemError, match="empty"):
        load_audio(b"", 16000)


def test_bad_arguments() -> None:
    with pytest.raises(MMBenchError, match="sampling_rate="):
        load_audio(np.zeros(10, np.float32), 16000)
    with pytest.raises(MMBenchError, match="cannot read audio"):
        load_audio(3.5, 16000)
    with pytest.raises(MMBenchError, match="positive"):
        load_audio(np.zeros(10), 0, sampling_rate=16000)


@pytest.mark.parametrize("snr", [20.0, 10.0, 5.0, 0.0, -3.0])
def test_add_noise_reaches_snr_and_is_deterministic(snr: float) -> None:
    x = load_audio(_pcm16(seconds=1.0), 16000, sampling_rate=16000)
    seed = (0, stable_seed("utt-1"))
    y = add_noise(x, snr, seed)
    noise = y.astype(np.float64) - x
    measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2))
    assert abs(measured - snr) < 0.1 and abs(measured - snr) < 1e-4  # exact up to float32 rounding
    np.testing.assert_array_equal(y, add_noise(x, snr, seed))
    assert not np.array_equal(y, add_noise(x, snr, (0, stable_seed("utt-2"))))
    # white: flat spectrum, no correlation between neighbouring samples
    assert abs(np.corrcoef(noise[:-1], noise[1:])[0, 1]) < 0.05


def test_add_noise_edge_cases() -> None:
    np.testing.assert_array_equal(add_noise(np.zeros(100, np.float32), 10, 1), np.zeros(100, np.float32))
    assert add_noise(np.zeros(0, np.float32), 10, 1).size == 0
    with pytest.raises(MMBenchError):
        add_noise(np.zeros((2, 10)), 10, 1)


def test_stable_seed_is_fixed() -> None:
    # sha256 of "0\x1futt-1": the same in every process (unlike hash())
    assert stable_seed(0, "utt-1") == stable_seed("0", "utt-1")
    assert stable_seed(0, "utt-1") != stable_seed(0, "utt-2")
    assert 0 <= stable_seed("x") < 2**63
