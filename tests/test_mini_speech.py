"""The shipped mini-speech set: manifest and audio agree, it is real recognisable speech, and it regenerates."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mmbench.data.audio import load_audio
from mmbench.errors import DataError
from mmbench.mini.speech import DATA_DIR, load_items
from mmbench.mini.speech.sentences import SENTENCES


def test_manifest_and_files_agree() -> None:
    items = load_items()
    assert len(items) >= 40
    assert len({it["id"] for it in items}) == len(items)
    voices = Counter(it["voice"] for it in items)
    assert len(voices) >= 2 and min(voices.values()) >= 20
    assert [it["text"] for it in items] == list(SENTENCES)
    total_bytes = 0
    for it in items:
        assert set(it) == {"id", "audio", "text", "voice", "duration_s", "path"}
        path = Path(it["path"])
        assert path.is_file() and path.parent.parent == DATA_DIR
        info = sf.info(path)
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_16", 16000, 1)
        w = load_audio(path, 16000)
        assert w.dtype == np.float32 and w.ndim == 1
        assert it["duration_s"] == pytest.approx(len(w) / 16000, abs=1e-4)
        assert 0.8 < it["duration_s"] < 6.0 and np.sqrt(np.mean(w**2)) > 0.01  # speech, not silence
        total_bytes += path.stat().st_size
    assert total_bytes < 3_000_000  # stays small enough to ship in the wheel
    info = json.loads((DATA_DIR / "info.json").read_text())
    assert info["n_utterances"] == len(items) and info["sample_rate"] == 16000


def test_missing_manifest_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="make_mini_speech"):
        load_items(tmp_path)


def test_pocketsphinx_recognises_the_speech() -> None:
    pocketsphinx = pytest.importorskip("pocketsphinx")
    from mmbench.metrics.wer import wer_scores

    items = load_items()[:6]  # three of each voice, ~14 s of audio
    dec = pocketsphinx.Decoder()
    hyps = []
    for it in items:
        pcm = np.clip(np.round(load_audio(it["path"], 16000) * 32768), -32768, 32767).astype(np.int16)
        dec.start_utt()
        dec.process_raw(pcm.tobytes(), full_utt=True)
        dec.end_utt()
        hyps.append(dec.hyp().hypstr if dec.hyp() else "")
    wer = wer_scores(hyps, [it["text"] for it in items], "whisper-english").value("wer")
    assert wer is not None and wer < 0.35  # measured 0.117 on the whole set


@pytest.mark.skipif(shutil.which("flite") is None, reason="needs Debian flite to regenerate the set")
def test_regeneration_gives_the_same_samples(tmp_path: Path) -> None:
    from mmbench.mini.speech.make_mini_speech import make

    records = make(tmp_path)
    shipped = load_items()
    assert records == [{k: v for k, v in s.items() if k != "path"} for s in shipped]
    for r, s in zip(records, shipped):
        np.testing.assert_array_equal(sf.read(tmp_path / r["audio"], dtype="int16")[0],
                                      sf.read(s["path"], dtype="int16")[0])
