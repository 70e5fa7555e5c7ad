"""Speech recognition end to end: pocketsphinx on mini-speech (clean and noisy) through the CLI, a tiny random
Whisper and a tiny Wav2Vec2-CTC through the CLI (batch-size invariance, long-form audio, failed items),
`mmbench score wer` reproducing a run, the LibriSpeech / HF audio / mini-speech data formats, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import tiny_speech
from conftest import run_cli
from mmbench.cli.main import main
from mmbench.errors import DataError, ItemError, MMBenchError
from mmbench.results import RunResult

WER_KEYS = ("wer", "cer", "wer_mean_utterance")


def run_asr(capsys, out_dir: Path, model: str, model_args: str, tasks: str, task_dir: Path, data_dir: Path | None,
            *extra: str) -> tuple[RunResult, Path]:
    args = ["run", "--model", model, "--model-args", model_args, "--tasks", tasks, "--include-path", str(task_dir),
            "--output-dir", str(out_dir), "--no-progress", *extra]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    run_dir = sorted(p for p in out_dir.iterdir() if p.is_dir())[-1]
    return RunResult.read(run_dir), run_dir


def samples(run_dir: Path, result) -> dict[str, dict]:
    lines = (run_dir / result.files["samples"]).read_text().splitlines()
    return {row["id"]: row for row in map(json.loads, lines)}


def metrics(result) -> dict[str, float]:
    return {m["name"]: m["value"] for m in result.metrics}


@pytest.fixture(scope="module")
def speech_data(tmp_path_factory) -> Path:
    """A data dir: a JSONL manifest of 6 utterances + a 44.1 kHz stereo WAV + a corrupt FLAC, and a long one."""
    root = tmp_path_factory.mktemp("speech")
    tiny_speech.make_speech_manifest(root / "m", n=6, corrupt=True, stereo_44k=True)
    long_dir = root / "long"
    tiny_speech.make_speech_manifest(long_dir, n=3)
    from mmbench.mini.speech import load_items

    items = load_items()[:14]
    wave = np.concatenate([sf.read(it["path"], dtype="float32")[0] for it in items])  # 35 s
    sf.write(long_dir / "audio" / "long.flac", wave, 16000)
    with open(long_dir / "manifest.jsonl", "a") as fh:
        fh.write(json.dumps({"id": "long", "audio": "audio/long.flac", "text": " ".join(i["text"] for i in items)})
                 + "\n")
    return root


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("asr-tasks")
    (d / "m.yaml").write_text("task: tiny-asr\nkind: asr\ndata: {format: jsonl, path: m/manifest.jsonl}\n")
    (d / "long.yaml").write_text("task: tiny-asr-long\nkind: asr\nmetrics: [{name: wer, normalizer: basic}]\n"
                                 "data: {format: jsonl, path: long/manifest.jsonl}\n")
    (d / "c.yaml").write_text("task: ms-clean6\nkind: asr\ndata: {format: mini-speech, n: 6}\n"
                              "curve: {name: WER vs SNR, x: null, x_label: SNR (dB)}\n")
    (d / "n.yaml").write_text("task: ms-snr20-6\nkind: asr\nnoise_snr_db: 20\ndata: {format: mini-speech, n: 6}\n"
                              "curve: {name: WER vs SNR, x_label: SNR (dB)}\n")
    return d


@pytest.fixture(scope="module")
def sphinx():
    """The default pocketsphinx adapter (the wheel's model), shared: a decoder takes 1-3 s to load."""
    pytest.importorskip("pocketsphinx")
    from mmbench.adapters.pocketsphinx import PocketSphinx

    adapter = PocketSphinx.from_args({})
    yield adapter
    adapter.close()


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory) -> Path:
    return tiny_speech.make_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper"))


# -- pocketsphinx ------------------------------------------------------------------------------------------
def test_pocketsphinx_mini_speech_clean_and_noisy(capsys, task_dir, tmp_path):
    pytest.importorskip("pocketsphinx")
    run, run_dir = run_asr(capsys, tmp_path / "out", "pocketsphinx", "", "ms-clean6,ms-snr20-6", task_dir, None)
    clean, noisy = run.results
    c, n = metrics(clean), metrics(noisy)
    # measured: 0.024 clean (1 error in 42 words), 0.71 at 20 dB; the whole clean set gives ~0.12
    assert 0.0 < c["wer"] <= 0.15 and c["cer"] < c["wer"]
    assert n["wer"] > c["wer"] + 0.3
    assert c["rtfx"] > 0.5 and n["rtfx"] > 0.1  # pocketsphinx runs ~2-10x faster than real time here
    counts = next(m for m in clean.metrics if m["name"] == "wer")["extra"]
    assert counts["ref_words"] == 42 and counts["n_utterances"] == 6
    assert counts["substitutions"] + counts["deletions"] + counts["insertions"] == round(c["wer"] * 42)
    rt = next(m for m in clean.metrics if m["name"] == "rtfx")
    assert rt["higher_is_better"] and "transcribe()" in rt["variant"]
    assert rt["extra"]["audio_seconds"] == pytest.approx(15.35, abs=0.01)
    assert "whisper-english" in next(m for m in clean.metrics if m["name"] == "wer")["variant"]
    assert clean.model_info["batching"].startswith("not batched") and clean.model_info["sample_rate"] == 16000
    assert clean.task_info["curve"] == {"name": "WER vs SNR", "x": None, "x_label": "SNR (dB)"}
    assert noisy.task_info["curve"]["x"] == 20 and "20 dB SNR" in noisy.task_info["noise"]
    s = samples(run_dir, clean)["ms000-rms"]
    assert s["reference"] == "The weather is cold today." and s["reference_normalized"] == "the weather is cold today"
    assert s["hypothesis_normalized"] == "the weather is cold today" and s["wer"] == 0.0 and s["hits"] == 5
    assert samples(run_dir, noisy)["ms000-rms"]["snr_db"] == 20.0


def test_pocketsphinx_transcripts_do_not_depend_on_decoding_order(sphinx):
    """Utterance ms041 came out differently after ms040 than alone until the front end was reset per utterance."""
    from mmbench.data.audio import load_audio
    from mmbench.mini.speech import load_items

    items = {it["id"]: it for it in load_items()}
    asr = sphinx
    waves = {k: load_audio(items[k]["path"], 16000) for k in ("ms040-rms", "ms041-slt")}
    alone = asr.transcribe(asr.prepare([waves["ms041-slt"]], 16000))
    after = asr.transcribe(asr.prepare([waves["ms040-rms"], waves["ms041-slt"]], 16000))
    assert alone[0] == after[1] and alone[0].startswith("we're planning a trip")


def test_pocketsphinx_domain_lm_from_corpus(sphinx, tmp_path):
    from mmbench.adapters.pocketsphinx import PocketSphinx
    from mmbench.data.audio import load_audio
    from mmbench.metrics.wer import wer_scores
    from mmbench.mini.speech import load_items

    items = load_items()[40:43]  # sentences without digits (the CMU dictionary spells no "101")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(it["text"] for it in load_items()))
    refs, waves = [it["text"] for it in items], [load_audio(it["path"], 16000) for it in items]
    default, asr = sphinx, PocketSphinx.from_args({"lm_corpus": str(corpus)})
    assert wer_scores(default.transcribe(default.prepare(waves, 16000)), refs).value("wer") > 0.05  # "trip in honest"
    assert wer_scores(asr.transcribe(asr.prepare(waves, 16000)), refs).value("wer") == 0.0  # the LM knows them
    assert "ArpaBoLM" in asr.describe()["lm"] and "en-us.lm.bin" in default.describe()["lm"]
    assert asr.weights_fingerprint() != default.weights_fingerprint()  # the built LM's bytes are hashed
    with pytest.raises(MMBenchError, match="lm='/nope.lm' not found"):
        PocketSphinx.from_args({"lm": "/nope.lm"})
    with pytest.raises(MMBenchError, match="not key=value"):
        PocketSphinx.from_args({"options": "beam"})
    asr.close()


# -- Whisper -----------------------------------------------------------------------------------------------
def test_tiny_whisper_cli_batch_invariant_with_failed_item(capsys, tiny_whisper, speech_data, task_dir, tmp_path):
    margs = f"pretrained={tiny_whisper},max_new_tokens=8"
    runs = [run_asr(capsys, tmp_path / f"bs{bs}", "hf-whisper", margs, "tiny-asr", task_dir, speech_data,
                    "--batch-size", str(bs), "--no-cache") for bs in (1, 4)]
    texts = [{k: v["hypothesis"] for k, v in samples(d, r.results[0]).items()} for r, d in runs]
    assert texts[0] == texts[1]
    ok = {k: v for k, v in texts[0].items() if v is not None}
    assert len(ok) == 7 and texts[0]["broken"] is None  # 6 FLACs + the 44.1 kHz stereo WAV; the corrupt one failed
    assert all(ok.values()) and len(set(ok.values())) >= 5  # random weights, but different text per utterance
    result = runs[1][0].results[0]
    assert result.n_failed == 1 and any("1 failed item(s) scored as empty" in n for n in result.notes)
    broken = samples(runs[1][1], result)["broken"]
    assert "cannot be decoded" in broken["error"] and broken["deletions"] == 4 and broken["hits"] == 0
    m = metrics(result)
    assert metrics(runs[0][0].results[0])["wer"] == m["wer"] and m["wer"] >= 0.9 and m["rtfx"] > 0
    info = result.model_info
    assert info["model_class"] == "WhisperForConditionalGeneration" and info["language"] == "language forced: en"
    assert "sequential" in info["long_form"] and info["decoding"] == "greedy"
    assert runs[1][0].results[0].model_fingerprint == runs[0][0].results[0].model_fingerprint


def test_whisper_long_form_sequential_and_chunked(capsys, tiny_whisper, speech_data, task_dir, tmp_path):
    """A 35 s utterance goes through long-form decoding; the short ones batched beside it are unaffected."""
    texts = {}
    for mode, bs in (("sequential", 4), ("sequential", 1), ("chunked", 4)):
        run, run_dir = run_asr(capsys, tmp_path / f"{mode}{bs}", "hf-whisper",
                               f"pretrained={tiny_whisper},max_new_tokens=6,long_form={mode}", "tiny-asr-long",
                               task_dir, speech_data, "--batch-size", str(bs), "--no-cache")
        r = run.results[0]
        assert "long_form_utterance: 1" in r.notes and r.counters["long_form_utterance"] == 1
        assert mode in r.model_info["long_form"] and "normaliser=basic" in r.metrics[0]["variant"]
        texts[(mode, bs)] = {k: v["hypothesis"] for k, v in samples(run_dir, r).items()}
        assert samples(run_dir, r)["long"]["duration_s"] == pytest.approx(34.98, abs=0.01)
    assert texts[("sequential", 4)] == texts[("sequential", 1)]
    short = [k for k in texts[("sequential", 4)] if k != "long"]
    assert all(texts[("chunked", 4)][k] == texts[("sequential", 4)][k] for k in short)
    assert texts[("chunked", 4)]["long"] and texts[("sequential", 4)]["long"]


def test_whisper_and_generic_adapters_refuse_each_others_models(tiny_whisper, tmp_path):
    from mmbench.adapters.speech_hf import HFSpeechRecognizer, Whisper

    with pytest.raises(MMBenchError, match="use --model hf-whisper"):
        HFSpeechRecognizer.from_args({"pretrained": str(tiny_whisper)})
    w2v = tiny_speech.make_tiny_wav2vec2(tmp_path / "w2v")
    with pytest.raises(MMBenchError, match="not Whisper; use --model hf-speech"):
        Whisper.from_args({"pretrained": str(w2v)})
    with pytest.raises(MMBenchError, match="long_form='stream'"):
        Whisper.from_args({"pretrained": str(tiny_whisper), "long_form": "stream"})
    with pytest.raises(MMBenchError, match="does not exist"):
        Whisper.from_args({"pretrained": str(tmp_path / "missing")})
    with pytest.raises(MMBenchError, match="language='klingon': not a language of .*use a code it knows \\(de, en, fr"):
        Whisper.from_args({"pretrained": str(tiny_whisper), "language": "klingon"})
    german = Whisper.from_args({"pretrained": str(tiny_whisper), "language": "German"})
    assert german.language == "<|de|>" and german.describe()["language"] == "language forced: German"
    assert Whisper.from_args({"pretrained": str(tiny_whisper), "language": "detect"}).language is None


# -- generic CTC ---------------------------------------------------------------------------------------------
def test_tiny_wav2vec2_ctc_cli_and_reference_decode(capsys, speech_data, task_dir, tmp_path):
    import torch
    from transformers import AutoModelForCTC, AutoProcessor

    from mmbench.adapters.speech_hf import HFSpeechRecognizer
    from mmbench.data.audio import load_audio

    w2v = tiny_speech.make_tiny_wav2vec2(tmp_path / "w2v")
    runs = [run_asr(capsys, tmp_path / f"bs{bs}", "hf-speech", f"pretrained={w2v}", "tiny-asr", task_dir,
                    speech_data, "--batch-size", str(bs), "--no-cache") for bs in (1, 3)]
    texts = [{k: v["hypothesis"] for k, v in samples(d, r.results[0]).items()} for r, d in runs]
    assert texts[0] == texts[1] and len({t for t in texts[0].values() if t}) >= 5
    info = runs[0][0].results[0].model_info
    assert info["architecture"] == "ctc" and "attention mask" in info["batching"]
    # the adapter's CTC decoding = the transformers documentation's: argmax, then processor.batch_decode
    adapter = HFSpeechRecognizer.from_args({"pretrained": str(w2v)})
    wave = load_audio(speech_data / "m" / "audio" / "ms000-rms.flac", 16000)
    proc, model = AutoProcessor.from_pretrained(w2v), AutoModelForCTC.from_pretrained(w2v).eval()
    with torch.no_grad():
        ids = model(**proc(wave, sampling_rate=16000, return_tensors="pt")).logits.argmax(-1)
    assert adapter.transcribe(adapter.prepare([wave], 16000)) == [proc.batch_decode(ids)[0].strip()]
    assert texts[0]["ms000-rms"] == proc.batch_decode(ids)[0].strip()


def test_generic_seq2seq_adapter_matches_generate(tmp_path):
    """hf-speech on a seq2seq model (a tiny Moonshine) gives what generate + batch_decode give, one at a time."""
    import torch
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

    from mmbench.adapters.speech_hf import HFSpeechRecognizer
    from mmbench.data.audio import load_audio
    from mmbench.mini.speech import load_items

    folder = tiny_speech.make_tiny_moonshine(tmp_path / "moonshine")
    adapter = HFSpeechRecognizer.from_args({"pretrained": str(folder), "max_new_tokens": "5"})
    assert adapter.kind == "seq2seq" and adapter.describe()["decoding"] == "greedy"
    proc, model = AutoProcessor.from_pretrained(folder), AutoModelForSpeechSeq2Seq.from_pretrained(folder).eval()
    for it in load_items()[:3]:
        wave = load_audio(it["path"], 16000)
        with torch.no_grad():
            ids = model.generate(**proc(wave, sampling_rate=16000, return_tensors="pt"), max_new_tokens=5)
        expected = proc.batch_decode(ids, skip_special_tokens=True)[0].strip()
        assert expected and adapter.transcribe(adapter.prepare([wave], 16000)) == [expected]


# -- score wer ---------------------------------------------------------------------------------------------
def test_score_wer_reproduces_the_run(capsys, tiny_whisper, speech_data, task_dir, tmp_path):
    run, run_dir = run_asr(capsys, tmp_path / "out", "hf-whisper", f"pretrained={tiny_whisper},max_new_tokens=8",
                           "tiny-asr", task_dir, speech_data)
    r = run.results[0]
    art = run_dir / r.files["artifacts"]
    hyp_lines = (art / "hypotheses.jsonl").read_text().splitlines()
    assert len(hyp_lines) == 8 and set(json.loads(hyp_lines[0])) == {"id", "text"}
    code, out, err = run_cli(capsys, "score", "wer", "--predictions", str(art / "hypotheses.jsonl"),
                             "--references", str(art / "references.jsonl"))
    assert code == 0, err
    scored = json.loads(out)
    assert {k: scored["metrics"][k] for k in WER_KEYS} == {k: metrics(r)[k] for k in WER_KEYS}
    wer_extra = next(m for m in r.metrics if m["name"] == "wer")["extra"]
    assert all(scored["counts"][k] == wer_extra[k] for k in ("substitutions", "deletions", "insertions", "hits"))
    assert scored["n"] == 8 and "whisper-english" in scored["normalizer"]


def test_score_wer_numbers_and_bad_input(capsys, tmp_path):
    import jiwer

    refs = [{"id": "a", "text": "The cat sat."}, {"id": 2, "text": "Hello world"}]
    hyps = [{"id": "2", "text": "hello word"}, {"id": "a", "text": "the cat sat on"}]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(x) + "\n" for x in refs))
    (tmp_path / "h.jsonl").write_text("".join(json.dumps(x) + "\n" for x in hyps) + "\n")
    code, out, _ = run_cli(capsys, "score", "wer", "--predictions", str(tmp_path / "h.jsonl"), "--references",
                           str(tmp_path / "r.jsonl"), "--normalizer", "none")
    res = json.loads(out)
    assert code == 0 and res["metrics"]["wer"] == pytest.approx(
        jiwer.wer(["The cat sat.", "Hello world"], ["the cat sat on", "hello word"]))  # 5 errors / 5 words
    assert res["counts"]["insertions"] == 1 and res["counts"]["ref_words"] == 5
    code, out, _ = run_cli(capsys, "score", "wer", "--predictions", str(tmp_path / "h.jsonl"), "--references",
                           str(tmp_path / "r.jsonl"))
    assert json.loads(out)["metrics"]["wer"] == pytest.approx(2 / 5)  # case and punctuation normalised away
    bad = {
        "dup.jsonl": ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "line 2: duplicate id 'a' (first on line 1)"),
        "json.jsonl": ('{"id": "a", "text": "x"}\n{"id": "2", "text": \n', "line 2 is not valid JSON"),
        "keys.jsonl": ('{"id": "a", "transcript": "x"}\n', "line 1 ({\"id\": \"a\", \"transcript\": \"x\"}) lacks"),
        "missing.jsonl": ('{"id": "a", "text": "x"}\n', "no prediction for id '2'"),
        "extra.jsonl": ('{"id": "a", "text": "x"}\n{"id": "2", "text": "x"}\n{"id": "z", "text": "x"}\n',
                        "id 'z' is not in the references"),
        "type.jsonl": ('{"id": "a", "text": null}\n', "\"text\" a string"),
    }
    for name, (content, message) in bad.items():
        (tmp_path / name).write_text(content)
        code, _, err = run_cli(capsys, "score", "wer", "--predictions", str(tmp_path / name), "--references",
                               str(tmp_path / "r.jsonl"))
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (name, err)
    code, _, err = run_cli(capsys, "score", "wer", "--predictions", str(tmp_path / "nope.jsonl"), "--references",
                           str(tmp_path / "r.jsonl"))
    assert code == 2 and "predictions file" in err and "not found" in err


# -- data formats and task options ------------------------------------------------------------------------
def test_librispeech_folder_and_missing_folder(capsys, tmp_path):
    from mmbench.data.sources import DataContext
    from mmbench.data.speech_sources import load_librispeech

    root = tiny_speech.make_librispeech(tmp_path / "LibriSpeech" / "test-clean")
    data = load_librispeech({"root": "LibriSpeech/test-clean"}, DataContext(task="t", data_dir=tmp_path))
    assert [r["id"] for r in data.records] == ["100-2000-0000", "100-2000-0001", "101-2001-0000", "101-2001-0001"]
    first = data.records[0]
    assert first["text"] == "THE WEATHER IS COLD TODAY" and first["speaker"] == "100" and first["chapter"] == "2000"
    assert first["audio"] == root / "100" / "2000" / "100-2000-0000.flac" and first["duration_s"] == pytest.approx(2.015)
    (root / "100" / "2000" / "100-2000-0001.flac").write_bytes(b"changed")
    assert load_librispeech({"root": str(root)}, DataContext(task="t")).fingerprint != data.fingerprint
    with pytest.raises(DataError, match="no <speaker>/<chapter>/\\*.trans.txt"):
        load_librispeech({"root": str(tmp_path)}, DataContext(task="t"))
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(capsys, "run", "--model", "pocketsphinx", "--tasks", "librispeech-test-clean",
                           "--data-dir", str(empty), "--output-dir", str(tmp_path / "out"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "LibriSpeech folder not found" in err and "https://www.openslr.org/12" in err and "--data-dir" in err


def test_hf_audio_dataset_decodes_lazily(tmp_path):
    import datasets

    from mmbench.data.audio import load_audio
    from mmbench.data.sources import DataContext
    from mmbench.data.speech_sources import load_hf_audio
    from mmbench.mini.speech import load_items
    from mmbench.tasks.asr import SpeechRecognition
    from mmbench.tasks.base import TaskContext
    from mmbench.specs import TaskSpec

    items = load_items()[:3]
    ds = datasets.Dataset.from_dict({"speech": [it["path"] for it in items], "sentence": [it["text"] for it in items],
                                     "uid": [it["id"] for it in items], "voice": [it["voice"] for it in items]})
    ds.cast_column("speech", datasets.Audio(sampling_rate=16000)).save_to_disk(str(tmp_path / "ds"))
    cfg = {"path": "ds", "audio_column": "speech", "text_column": "sentence", "id_column": "uid",
           "columns": {"voice": "voice"}}
    data = load_hf_audio(cfg, DataContext(task="t", data_dir=tmp_path))
    assert [r["id"] for r in data.records] == [it["id"] for it in items]
    assert data.records[1]["text"] == items[1]["text"] and data.records[1]["voice"] == "slt"
    task = SpeechRecognition(TaskSpec("t", "asr", {"data": {"format": "hf-audio", **cfg}}), TaskContext())
    wave = task.load_wave(data.records[2], 8000)  # the bytes in the dataset, decoded and resampled to 8 kHz
    np.testing.assert_allclose(wave, load_audio(items[2]["path"], 8000), atol=1e-6)
    with pytest.raises(DataError, match="column 'text' \\(text_column\\) not in dataset"):
        load_hf_audio({"path": "ds", "audio_column": "speech"}, DataContext(task="t", data_dir=tmp_path))


def test_noise_is_deterministic_and_at_the_requested_snr(tmp_path):
    from mmbench.data.audio import load_audio
    from mmbench.mini.speech import load_items
    from mmbench.specs import TaskSpec
    from mmbench.tasks.asr import SpeechRecognition
    from mmbench.tasks.base import TaskContext

    def task(seed: int, **cfg) -> SpeechRecognition:
        return SpeechRecognition(TaskSpec("t", "asr", {"data": {"format": "mini-speech", "n": 2}, **cfg}),
                                 TaskContext(seed=seed))

    item = task(0).items()[0]
    clean = load_audio(load_items()[0]["path"], 16000)
    a, b = task(0, noise_snr_db=10).load_wave(item, 16000), task(0, noise_snr_db=10).load_wave(item, 16000)
    np.testing.assert_array_equal(a, b)
    c = task(1, noise_snr_db=10).load_wave(item, 16000)
    assert not np.allclose(a, c)
    snr = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((a - clean).astype(np.float64) ** 2))
    assert snr == pytest.approx(10.0, abs=0.01)
    np.testing.assert_array_equal(task(0).load_wave(item, 16000), clean)
    # the seed is part of the cache key only when noise is added; the normaliser never is
    assert task(0, noise_snr_db=10).fingerprint() != task(1, noise_snr_db=10).fingerprint()
    basic = task(0, metrics=[{"name": "wer", "normalizer": "basic"}])
    assert task(0).fingerprint() == task(1).fingerprint() == basic.fingerprint()
    with pytest.raises(MMBenchError, match="normalizer 'whisper' is not one of"):
        task(0, metrics=[{"name": "wer", "normalizer": "whisper"}])
    with pytest.raises(MMBenchError, match="'noise_snr_db' must be a number, got 'loud'"):
        task(0, noise_snr_db="loud")
    with pytest.raises(MMBenchError, match="curve has no key 'y'"):
        task(0, curve={"name": "c", "y": 1})
    with pytest.raises(ItemError, match="has no audio"):
        task(0).load_wave({"id": "x"}, 16000)


def test_builtin_speech_tasks_and_mini_speech_format():
    from mmbench.data.sources import DataContext
    from mmbench.mini.speech import load_mini_speech
    from mmbench.tasks.base import TaskContext
    from mmbench.tasks.catalog import TaskCatalog, build_task

    catalog = TaskCatalog()
    snrs = {}
    for name in ("mini-speech-wer", "mini-speech-wer-snr30", "mini-speech-wer-snr25", "mini-speech-wer-snr20"):
        t = build_task(catalog.task_spec(name), TaskContext())
        assert t.kind == "asr" and t.metrics[0].options.normalizer == "whisper-english"
        assert t.curve["name"] == "WER vs SNR"
        snrs[name] = (t.curve["x"], t.config.noise_snr_db, len(t.items()))
    assert snrs == {"mini-speech-wer": (None, None, 56), "mini-speech-wer-snr30": (30, 30, 8),
                    "mini-speech-wer-snr25": (25, 25, 8), "mini-speech-wer-snr20": (20, 20, 8)}
    for split in ("clean", "other"):
        spec = catalog.task_spec(f"librispeech-test-{split}")
        assert spec.config["data"]["root"] == f"LibriSpeech/test-{split}" and "openslr" in spec.config["data"]["help"]
    full = load_mini_speech({}, DataContext(task="t"))
    six = load_mini_speech({"n": 6}, DataContext(task="t"))
    assert [r["id"] for r in six.records] == [r["id"] for r in full.records[:6]] and six.fingerprint != full.fingerprint
    assert sum(r["duration_s"] for r in full.records) == pytest.approx(138.2, abs=0.1)
    with pytest.raises(DataError, match="n=0 must be a positive integer"):
        load_mini_speech({"n": 0}, DataContext(task="t"))
