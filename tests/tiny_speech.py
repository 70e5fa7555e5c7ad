"""Tiny random speech models (Whisper, Wav2Vec2-CTC) and small audio data sets, built offline in a folder.

Nothing is downloaded: tokenizers are trained or written here, feature extractors are built from their
defaults, models get random weights from tiny configs and everything is saved with ``save_pretrained`` so
that ``from_pretrained(folder)`` loads it as it would a hub checkpoint.

The tiny Whisper is made to say something that depends on its input, so that a batch-invariance test can
fail: its generation config suppresses EOS at the first step (as real checkpoints do with
``begin_suppress_tokens``), its weights are drawn with a large ``init_std`` (with the default 0.02 every
utterance gives the same text), and the output embeddings of the 1501 timestamp tokens are scaled down (they
are 80 % of the vocabulary and a random model would otherwise emit nothing else).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

# Whisper's special tokens in the order the real tokenizer has them; timestamp tokens follow <|notimestamps|>.
WHISPER_LANGUAGES = ("en", "de", "fr")
WHISPER_SPECIALS = ("<|endoftext|>", "<|startoftranscript|>", *(f"<|{lang}|>" for lang in WHISPER_LANGUAGES),
                    "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>",
                    "<|notimestamps|>")
# Text the BPE merges are learned from (a few words beyond those the models are asked to say).
CORPUS = ("the weather is cold today where is the nearest train station she bought three apples and two "
          "oranges mister brown arrives on monday at nine o'clock the meeting moved to the fourth of july "
          "please call me back when you can a quick brown fox jumps over the lazy dog").split()


def whisper_tokenizer() -> Any:
    """A byte-level BPE WhisperTokenizer (~300 merges) with Whisper's special and timestamp tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import WhisperTokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=320, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator([" ".join(CORPUS)] * 4, trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = WhisperTokenizer(vocab=dict(model["vocab"]), merges=merges, model_max_length=448)
    tok.add_special_tokens({"additional_special_tokens": list(WHISPER_SPECIALS[1:])})
    tok.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(1501)])  # <|0.00|> ... <|30.00|>
    return tok


def make_tiny_whisper(folder: Path, *, d_model: int = 32, layers: int = 1, heads: int = 2,
                      init_std: float = 1.0, seed: int = 0) -> Path:
    """A random WhisperForConditionalGeneration + WhisperProcessor saved into ``folder``.

    The defaults are tiny (milliseconds per step); whisper-tiny's dimensions are d_model=384, layers=4,
    heads=6 (used by the RTFx benchmark)."""
    import torch
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperProcessor)

    tok = whisper_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in WHISPER_SPECIALS}
    eos, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    config = WhisperConfig(vocab_size=len(tok), num_mel_bins=80, d_model=d_model, encoder_layers=layers,
                           decoder_layers=layers, encoder_attention_heads=heads, decoder_attention_heads=heads,
                           encoder_ffn_dim=4 * d_model, decoder_ffn_dim=4 * d_model, max_source_positions=1500,
                           max_target_positions=448, pad_token_id=eos, bos_token_id=eos, eos_token_id=eos,
                           decoder_start_token_id=sot, begin_suppress_tokens=None, suppress_tokens=None,
                           init_std=init_std)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # the output projection is tied to these embeddings
        model.model.decoder.embed_tokens.weight[ids["<|notimestamps|>"] + 1:] *= 0.1
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos,
        is_multilingual=True, max_length=448, max_initial_timestamp_index=50,
        lang_to_id={f"<|{lang}|>": ids[f"<|{lang}|>"] for lang in WHISPER_LANGUAGES},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"], prev_sot_token_id=ids["<|startofprev|>"],
        begin_suppress_tokens=[eos], suppress_tokens=[])
    processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tok)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return Path(folder)


def make_tiny_wav2vec2(folder: Path, seed: int = 0) -> Path:
    """A random Wav2Vec2ForCTC with a character vocabulary and a processor that returns attention masks."""
    import torch
    from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor,
                              Wav2Vec2ForCTC, Wav2Vec2Processor)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = ["<pad>", "<s>", "</s>", "<unk>", "|", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ'"]
    (folder / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(chars)}))
    tok = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), pad_token="<pad>", unk_token="<unk>",
                               word_delimiter_token="|")
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                  return_attention_mask=True)
    config = Wav2Vec2Config(vocab_size=len(chars), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(32, 32, 32), conv_stride=(5, 4, 4),
                            conv_kernel=(10, 8, 4), num_feat_extract_layers=3, feat_extract_norm="layer",
                            do_stable_layer_norm=True, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                            pad_token_id=0, ctc_loss_reduction="mean")
    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(config).eval()
    model.save_pretrained(folder)
    Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(folder)
    return folder


def make_tiny_moonshine(folder: Path, seed: int = 0) -> Path:
    """A random MoonshineForConditionalGeneration (a seq2seq model on raw 16 kHz samples) with a word-level
    tokenizer; its generation config asks for at least 3 new tokens and suppresses pad/unk/BOS, so that random
    weights say something."""
    import torch
    from transformers import (GenerationConfig, MoonshineConfig, MoonshineForConditionalGeneration,
                              Wav2Vec2FeatureExtractor, Wav2Vec2Processor)

    import tiny_vlms

    tok = tiny_vlms.word_tokenizer()
    config = MoonshineConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, encoder_num_hidden_layers=1,
                             decoder_num_hidden_layers=1, encoder_num_attention_heads=2, decoder_num_attention_heads=2,
                             pad_token_id=0, bos_token_id=2, eos_token_id=3, decoder_start_token_id=2,
                             initializer_range=0.5)
    torch.manual_seed(seed)
    model = MoonshineForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(decoder_start_token_id=2, bos_token_id=2, eos_token_id=3,
                                               pad_token_id=0, min_new_tokens=3, suppress_tokens=[0, 1, 2])
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=False,
                                  return_attention_mask=True)
    model.save_pretrained(folder)
    Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(folder)
    return Path(folder)


def make_speech_manifest(folder: Path, n: int = 6, *, corrupt: bool = False, stereo_44k: bool = False) -> Path:
    """``folder/manifest.jsonl`` over the first ``n`` mini-speech utterances (copied beside it).

    ``corrupt`` adds an item whose FLAC file is truncated garbage; ``stereo_44k`` adds one utterance
    re-encoded as 44.1 kHz stereo WAV (decoding must mix it down and resample it)."""
    import soundfile as sf
    import soxr

    from mmbench.mini.speech import load_items

    folder = Path(folder)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    lines = []
    for it in load_items()[:n]:
        shutil.copy(it["path"], folder / "audio" / Path(it["path"]).name)
        lines.append({"id": it["id"], "audio": f"audio/{Path(it['path']).name}", "text": it["text"]})
    if stereo_44k:
        it = load_items()[n]
        wave, sr = sf.read(it["path"], dtype="float32")
        up = soxr.resample(wave, sr, 44100)
        sf.write(folder / "audio" / "stereo.wav", np.stack([up, 0.5 * up], axis=1), 44100)
        lines.append({"id": "stereo-44k", "audio": "audio/stereo.wav", "text": it["text"]})
    if corrupt:
        (folder / "audio" / "broken.flac").write_bytes(b"fLaC" + bytes(range(200)))
        lines.append({"id": "broken", "audio": "audio/broken.flac", "text": "this file is damaged"})
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def make_librispeech(root: Path, n_speakers: int = 2, per_chapter: int = 2) -> Path:
    """A LibriSpeech-layout folder ``root/<speaker>/<chapter>/<spk>-<ch>-<utt>.flac`` + ``.trans.txt`` files,
    with mini-speech audio and upper-case transcripts without punctuation (as LibriSpeech writes them)."""
    import re

    from mmbench.mini.speech import load_items

    items = iter(load_items())
    for s in range(n_speakers):
        speaker, chapter = str(100 + s), str(2000 + s)
        d = Path(root) / speaker / chapter
        d.mkdir(parents=True, exist_ok=True)
        lines = []
        for u in range(per_chapter):
            it = next(items)
            utt = f"{speaker}-{chapter}-{u:04d}"
            shutil.copy(it["path"], d / f"{utt}.flac")
            text = re.sub(r"[^A-Z' ]", "", it["text"].upper().replace("-", " "))
            lines.append(f"{utt} {' '.join(text.split())}")
        (d / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return Path(root)
