"""Hugging Face speech recognisers: Whisper (``hf-whisper``) and any seq2seq or CTC model (``hf-speech``).

Both load a hub name or a local folder with AutoProcessor + the model class, compute features (log-mel for
Whisper, normalised samples for wav2vec2-style models) in ``prepare`` (the runner's preparation threads) and run
the model in ``transcribe``, batched.

Whisper sees at most 30 s at a time. Utterances up to 30 s are padded to 30 s and decoded in one
``generate`` call without timestamps (the standard short-form path); longer ones go, by themselves,
through either transformers' sequential long-form algorithm (``long_form=sequential``: timestamp-predicted
30 s windows, as in the Whisper paper section 3.8, without temperature fallback) or the ASR pipeline's
chunking (``long_form=chunked``: overlapping chunks merged on their common tokens). Keeping the two paths
apart is what makes a short utterance's transcript independent of whatever long one shares its batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np

from mmbench.adapters.base import Adapter, ModelArgs, inputs_to
from mmbench.adapters.hf_loading import load_pretrained
from mmbench.capabilities import Capability, Transcript
from mmbench.errors import MMBenchError

LONG_FORM = {
    "sequential": ("transformers' Whisper long-form generate: 30 s windows moved along by predicted timestamps "
                   "(return_timestamps=True), no temperature fallback, no conditioning on previous text"),
    "chunked": ("transformers' ASR pipeline: {chunk} s chunks overlapping by {stride} s on each side, "
                "merged on their longest common token sequence"),
}
ARCHITECTURES = ("auto", "seq2seq", "ctc")


@dataclass(frozen=True)
class HFSpeechArgs(ModelArgs):
    architecture: str = "auto"  # auto: seq2seq or CTC, from the config's model type
    max_new_tokens: int | None = None  # seq2seq only; default: the checkpoint's generation config
    num_beams: int = 1  # seq2seq only; 1 = greedy
    attn_implementation: str | None = None  # passed to from_pretrained (eager, sdpa, ...)


@dataclass(frozen=True)
class WhisperArgs(ModelArgs):
    language: str = "en"  # a code or name (en, english, de, ...), or "detect" (per utterance)
    task: str = "transcribe"  # or translate (to English)
    long_form: str = "sequential"  # how audio over 30 s is decoded: sequential | chunked (see LONG_FORM)
    chunk_length_s: float = 30.0  # chunked only
    stride_length_s: float | None = None  # chunked only; default: chunk_length_s / 6
    max_new_tokens: int | None = None  # per 30 s window; default: the checkpoint's limit (448 tokens in all)
    num_beams: int = 1  # 1 = greedy
    attn_implementation: str | None = None


class _HFSpeech(Adapter):
    """Loading, device/dtype handling and provenance shared by the two transformers speech adapters."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.TRANSCRIBE})
    default_batch_size = 16

    def __init__(self, args: Any, name: str = "") -> None:
        super().__init__(args, name)
        if not args.pretrained:
            raise MMBenchError(f"{self.name} needs pretrained=<hub name or local folder> in --model-args")
        if args.num_beams < 1:
            raise MMBenchError(f"model arg num_beams={args.num_beams}: use 1 (greedy) or more (beam search)")
        import torch

        self.torch = torch
        self.processor, self.model = self._load(args)
        self.feature_extractor = getattr(self.processor, "feature_extractor", None)
        self.tokenizer = getattr(self.processor, "tokenizer", None)
        if self.feature_extractor is None or self.tokenizer is None:
            raise MMBenchError(f"{args.pretrained!r}: its processor {type(self.processor).__name__} lacks a feature "
                               f"extractor or a tokenizer; it is not a speech recognition model")
        self.sample_rate = int(self.feature_extractor.sampling_rate)
        self.dtype = next(self.model.parameters()).dtype
        self.resolved_revision = getattr(self.model.config, "_commit_hash", None)

    def _load(self, args: Any) -> tuple[Any, Any]:
        processor, model = load_pretrained(
            args.pretrained, revision=args.revision, trust_remote_code=args.trust_remote_code, dtype=args.dtype,
            model_class=self._model_class, attn_implementation=args.attn_implementation)
        return processor, model.to(self.device).eval()

    def _model_class(self, config: Any) -> Any:
        raise NotImplementedError

    def _on_device(self, inputs: Any) -> dict:
        return inputs_to(inputs, self.device, self.dtype)

    def _decode(self, ids: Any, skip_special_tokens: bool = True) -> list[str]:
        return [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=skip_special_tokens)]

    def extra_description(self) -> dict:
        return {"model_class": type(self.model).__name__, "processor_class": type(self.processor).__name__,
                "feature_extractor": type(self.feature_extractor).__name__,
                "resolved_revision": self.resolved_revision,
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "dtype": str(self.dtype).replace("torch.", ""), "sample_rate": self.sample_rate}

    def close(self) -> None:
        self.model = None


# -- Whisper ---------------------------------------------------------------------------------------------
@dataclass
class WhisperBatch:
    """Features for the short (<= 30 s) and the long utterances of a batch, and where each goes back."""

    n: int
    short: list[int] = field(default_factory=list)
    short_inputs: Any = None
    long: list[int] = field(default_factory=list)
    long_inputs: Any = None  # features (sequential) or the waveforms themselves (chunked: the pipeline cuts)


class Whisper(_HFSpeech):
    """OpenAI Whisper checkpoints (WhisperForConditionalGeneration + WhisperProcessor), batched.

    Greedy (or beam) decoding with the language and task tokens forced (``language=detect`` lets the model
    pick per utterance); English-only checkpoints (``*.en``) get no language or task token.
    """

    Args: ClassVar[type] = WhisperArgs

    def __init__(self, args: WhisperArgs, name: str = "") -> None:
        if args.long_form not in LONG_FORM:
            raise MMBenchError(f"model arg long_form={args.long_form!r}: use one of {', '.join(LONG_FORM)}")
        if args.task not in ("transcribe", "translate"):
            raise MMBenchError(f"model arg task={args.task!r}: use transcribe or translate")
        if args.chunk_length_s <= 0 or (args.stride_length_s is not None and
                                        not 0 <= 2 * args.stride_length_s < args.chunk_length_s):
            raise MMBenchError("model args chunk_length_s / stride_length_s: need chunk > 0 and 0 <= 2 * stride "
                               "< chunk")
        super().__init__(args, name)
        gen = self.model.generation_config
        self.multilingual = bool(getattr(gen, "is_multilingual", bool(getattr(gen, "lang_to_id", None))))
        if not self.multilingual:
            self.language, self.task = None, None
            self.language_policy = "English-only checkpoint: no language or task token"
        elif args.language.lower() in ("detect", "auto", "none", ""):
            self.language, self.task = None, args.task
            self.language_policy = "language detected per utterance by the model"
        else:
            self.language, self.task = self._language_token(args.language, gen), args.task
            self.language_policy = f"language forced: {args.language}"
        self.max_samples = int(self.feature_extractor.n_samples)  # 30 s at the feature extractor's rate
        self.stride_s = args.stride_length_s if args.stride_length_s is not None else args.chunk_length_s / 6
        self._pipeline: Any = None

    def _language_token(self, language: str, gen: Any) -> str:
        """``<|xx|>`` for a language code, name or token the checkpoint knows (what generate accepts), checked
        here so that a typo fails before any audio is decoded."""
        from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

        lang = language.lower().strip()
        code = TO_LANGUAGE_CODE.get(lang, lang)
        token = lang if lang.startswith("<|") else f"<|{code}|>"
        known = getattr(gen, "lang_to_id", None) or {}
        if token not in known:
            sample = ", ".join(k.strip("<|>") for k in list(known)[:8])
            raise MMBenchError(f"model arg language={language!r}: not a language of {self.args.pretrained!r}; use a "
                               f"code it knows ({sample}, ...) or language=detect")
        return token

    def _model_class(self, config: Any) -> Any:
        from transformers import WhisperForConditionalGeneration

        if config.model_type != "whisper":
            raise MMBenchError(f"{self.args.pretrained!r} is a {config.model_type!r} model, not Whisper; use "
                               f"--model hf-speech for other speech recognisers")
        return WhisperForConditionalGeneration

    def long_form_description(self) -> str:
        return LONG_FORM[self.args.long_form].format(chunk=self.args.chunk_length_s, stride=self.stride_s)

    def extra_description(self) -> dict:
        decoding = "greedy" if self.args.num_beams == 1 else f"beam search, {self.args.num_beams} beams"
        return {**super().extra_description(), "language": self.language_policy, "task": self.task,
                "decoding": decoding, "max_new_tokens": self.args.max_new_tokens,
                "short_form": "utterances up to 30 s: padded to 30 s of log-mel features, one generate call, "
                              "no timestamps",
                "long_form": f"utterances over 30 s ({self.args.long_form}): {self.long_form_description()}",
                "batching": "batched; short and long utterances of a batch decoded apart"}

    # -- the protocol -----------------------------------------------------------------------------
    def prepare(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> WhisperBatch:
        if sample_rate != self.sample_rate:
            raise MMBenchError(f"Whisper expects {self.sample_rate} Hz audio, got {sample_rate} Hz")
        fe = self.feature_extractor
        batch = WhisperBatch(n=len(waveforms))
        for i, wave in enumerate(waveforms):
            (batch.short if len(wave) <= self.max_samples else batch.long).append(i)
        if batch.short:
            batch.short_inputs = fe([waveforms[i] for i in batch.short], sampling_rate=sample_rate,
                                    return_tensors="pt", return_attention_mask=True)
        if batch.long and self.args.long_form == "sequential":
            # all the features of each utterance, padded to the longest; the mask tells where each one ends
            batch.long_inputs = fe([waveforms[i] for i in batch.long], sampling_rate=sample_rate,
                                   return_tensors="pt", truncation=False, padding="longest",
                                   return_attention_mask=True)
        elif batch.long:
            batch.long_inputs = [waveforms[i] for i in batch.long]
        return batch

    def _generate_kwargs(self) -> dict:
        kw: dict[str, Any] = {"num_beams": self.args.num_beams}
        if self.multilingual:
            kw.update(language=self.language, task=self.task)
        if self.args.max_new_tokens is not None:
            kw["max_new_tokens"] = self.args.max_new_tokens
        return kw

    def transcribe(self, prepared: WhisperBatch) -> list[Transcript]:
        texts = [""] * prepared.n
        if prepared.short:
            with self.torch.inference_mode():
                ids = self.model.generate(**self._on_device(prepared.short_inputs), **self._generate_kwargs())
            for i, text in zip(prepared.short, self._decode(ids)):
                texts[i] = text
        if prepared.long:
            for i, text in zip(prepared.long, self._transcribe_long(prepared.long_inputs)):
                texts[i] = text
        long = set(prepared.long)
        return [Transcript(t, ("long_form_utterance",) if i in long else ()) for i, t in enumerate(texts)]

    def _transcribe_long(self, inputs: Any) -> list[str]:
        if self.args.long_form == "sequential":
            with self.torch.inference_mode():
                ids = self.model.generate(**self._on_device(inputs), return_timestamps=True,
                                          **self._generate_kwargs())
            return self._decode(ids)
        if self._pipeline is None:
            from transformers import pipeline

            self._pipeline = pipeline("automatic-speech-recognition", model=self.model, tokenizer=self.tokenizer,
                                      feature_extractor=self.feature_extractor, device=self.model.device)
        with self.torch.inference_mode():
            outs = self._pipeline([{"raw": w, "sampling_rate": self.sample_rate} for w in inputs],
                                  chunk_length_s=self.args.chunk_length_s, stride_length_s=self.stride_s,
                                  batch_size=len(inputs), generate_kwargs=self._generate_kwargs())
        return [o["text"].strip() for o in outs]


# -- any seq2seq or CTC model ------------------------------------------------------------------------------
@dataclass
class SpeechBatch:
    inputs: Any
    lengths: list[int]  # samples per utterance (CTC: where each one's output frames end)


class HFSpeechRecognizer(_HFSpeech):
    """Any transformers speech recogniser: seq2seq (AutoModelForSpeechSeq2Seq, ``generate``) or CTC
    (AutoModelForCTC, greedy argmax per frame, repeats merged and blanks dropped by the CTC tokenizer, no LM).

    Batches are padded to their longest utterance with the feature extractor's attention mask; CTC outputs
    are cut at each utterance's own frame count. Whether padding leaves a model's outputs unchanged is the
    model's property: wav2vec2-large-style CTC models (layer norm + attention mask) are invariant, while
    models that normalise over time including the padding are not (wav2vec2-base style, whose extractor
    returns no mask; Moonshine, whose conv stem's GroupNorm spans all samples: a tiny one changed its encoder
    output everywhere when batched). Use batch_size=1 for those when exact batch invariance matters.
    """

    Args: ClassVar[type] = HFSpeechArgs

    def __init__(self, args: HFSpeechArgs, name: str = "") -> None:
        if args.architecture not in ARCHITECTURES:
            raise MMBenchError(f"model arg architecture={args.architecture!r}: use one of {', '.join(ARCHITECTURES)}")
        self.kind = ""
        super().__init__(args, name)

    def _model_class(self, config: Any) -> Any:
        from transformers import AutoModelForCTC, AutoModelForSpeechSeq2Seq

        if config.model_type == "whisper":
            raise MMBenchError(f"{self.args.pretrained!r} is a Whisper model; use --model hf-whisper (it handles "
                               f"language, task and audio over 30 s)")
        kind = self.args.architecture
        if kind == "auto":
            if type(config) in AutoModelForSpeechSeq2Seq._model_mapping:
                kind = "seq2seq"
            elif type(config) in AutoModelForCTC._model_mapping:
                kind = "ctc"
            else:
                raise MMBenchError(f"{self.args.pretrained!r} ({config.model_type}) is neither a speech seq2seq nor "
                                   f"a CTC model in transformers; pass architecture=seq2seq or ctc to force one")
        self.kind = kind
        return AutoModelForSpeechSeq2Seq if kind == "seq2seq" else AutoModelForCTC

    def extra_description(self) -> dict:
        if self.kind == "ctc":
            decoding = "CTC greedy: argmax per frame, repeats merged, blanks dropped (no LM)"
        else:
            decoding = "greedy" if self.args.num_beams == 1 else f"beam search, {self.args.num_beams} beams"
        mask = getattr(self.feature_extractor, "return_attention_mask", True)
        return {**super().extra_description(), "architecture": self.kind, "decoding": decoding,
                "max_new_tokens": self.args.max_new_tokens if self.kind == "seq2seq" else None,
                "batching": "batched, padded to the longest utterance " +
                            ("with an attention mask" if mask else "with zeros (no attention mask)")}

    def prepare(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> SpeechBatch:
        if sample_rate != self.sample_rate:
            raise MMBenchError(f"{self.args.pretrained!r} expects {self.sample_rate} Hz audio, got {sample_rate} Hz")
        kw: dict[str, Any] = {"sampling_rate": sample_rate, "return_tensors": "pt", "padding": "longest"}
        if self.kind == "seq2seq":
            kw["return_attention_mask"] = True
        inputs = self.feature_extractor(list(waveforms), **kw)
        return SpeechBatch(inputs=inputs, lengths=[len(w) for w in waveforms])

    def transcribe(self, prepared: SpeechBatch) -> list[str]:
        torch = self.torch
        inputs = self._on_device(prepared.inputs)
        if self.kind == "seq2seq":
            kw: dict[str, Any] = {"num_beams": self.args.num_beams}
            if self.args.max_new_tokens is not None:
                kw["max_new_tokens"] = self.args.max_new_tokens
            with torch.inference_mode():
                ids = self.model.generate(**inputs, **kw)
            return self._decode(ids)
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        best = logits.argmax(dim=-1).cpu()
        frames = [best.shape[1]] * len(prepared.lengths)
        if hasattr(self.model, "_get_feat_extract_output_lengths"):  # wav2vec2 family: frames per utterance
            frames = [int(n) for n in self.model._get_feat_extract_output_lengths(torch.tensor(prepared.lengths))]
        # skip_special_tokens=False: the CTC tokenizer must see the blanks (its pad token) while it merges
        # repeats ("l <pad> l" is two letters), and drops them itself after; skipping them first would merge.
        return self._decode([best[i, :n].tolist() for i, n in enumerate(frames)], skip_special_tokens=False)
