"""Word and character error rates for speech recognition, with the text normaliser named in every result.

Convention: corpus WER = (substitutions + deletions + insertions) / reference words, summed over all
utterances (jiwer's list input; the open ASR leaderboard's convention). The mean of per-utterance WERs is
also returned, under its own name, because some papers report it; it is not comparable to corpus WER.

Empty references (an utterance whose *normalised* reference has no words, e.g. "[noise]" or "um"): its
hypothesis words count as insertions in the corpus totals (so a hallucination on silence costs errors),
its reference contributes 0 words, and its per-utterance WER is undefined (NaN); the mean-of-utterance
WER skips it. If a set of utterances has no reference words at all, corpus WER is undefined (None / NaN).
Empty hypotheses are ordinary: every reference word is a deletion.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import metadata
from typing import Callable, Sequence

import numpy as np

from typing import ClassVar

from mmbench.errors import MMBenchError, UnknownNameError
from mmbench.metrics.api import TRANSCRIPTS, Metric, MetricReport
from mmbench.metrics.base import ItemStats, MetricValue

# The normalisers one can name, and what each does (recorded in every variant string).
NORMALIZERS: dict[str, str] = {
    "none": "identity: case, punctuation and symbols kept; words split on whitespace",
    "basic": ("Whisper BasicTextNormalizer (transformers): lowercase; remove text in [] <> and (); "
              "replace NFKC punctuation/symbol/mark characters with spaces; collapse whitespace"),
    "whisper-english": ("Whisper EnglishTextNormalizer (transformers) with the 1739-entry British->American "
                        "spelling map from whisper-normalizer: basic rules plus fillers removed (um, uh, hmm), "
                        "contractions and titles expanded (can't -> can not, Mr -> mister), diacritics dropped, "
                        "spelled numbers and currency to digits (twenty five dollars -> $25)"),
}

# Per-item statistic keys (arrays of length n_items), in a stable order.
COUNT_KEYS = ("hits", "substitutions", "deletions", "insertions", "ref_words", "hyp_words",
              "char_hits", "char_substitutions", "char_deletions", "char_insertions", "ref_chars")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


@functools.lru_cache(maxsize=1)
def _english_spelling_map() -> dict[str, str]:
    """The British->American spelling map shipped in the whisper-normalizer wheel, found via its file list."""
    try:
        files = metadata.files("whisper-normalizer") or []
    except metadata.PackageNotFoundError:
        files = []
    for f in files:
        if str(f).replace("\\", "/").endswith("whisper_normalizer/normalizers/english.json"):
            with open(f.locate(), encoding="utf-8") as fh:
                return json.load(fh)
    raise MMBenchError("normaliser 'whisper-english' needs the spelling map from the whisper-normalizer "
                       "package: pip install whisper-normalizer")


@functools.lru_cache(maxsize=None)
def get_normalizer(name: str) -> Callable[[str], str]:
    """The text normaliser called ``name`` (one of NORMALIZERS); built once and cached."""
    if name == "none":
        return lambda s: s
    if name == "basic":
        from transformers.models.whisper.english_normalizer import BasicTextNormalizer
        return BasicTextNormalizer()
    if name == "whisper-english":
        from transformers.models.whisper.english_normalizer import EnglishTextNormalizer
        return EnglishTextNormalizer(_english_spelling_map())
    raise UnknownNameError(f"unknown WER normaliser {name!r}: use one of {', '.join(NORMALIZERS)}")


def normalize(texts: Sequence[str], name: str) -> list[str]:
    """Apply the normaliser ``name`` to every text."""
    fn = get_normalizer(name)
    return [fn(t) for t in texts]


def normalizer_variant(name: str) -> str:
    """A short provenance string for the normaliser: its name and the library versions that implement it."""
    if name not in NORMALIZERS:
        get_normalizer(name)  # raises with the valid names
    if name == "none":
        return "normaliser=none"
    libs = f"transformers {_version('transformers')}"
    if name == "whisper-english":
        libs += f", spelling map whisper-normalizer {_version('whisper-normalizer')}"
    return f"normaliser={name} ({libs})"


@dataclass(frozen=True)
class WERResult:
    """Corpus metrics, per-item statistics and the normalised texts they were computed on."""

    values: list[MetricValue]
    stats: dict[str, np.ndarray]
    normalizer: str
    references: list[str] = field(repr=False)
    hypotheses: list[str] = field(repr=False)

    def value(self, name: str) -> float | None:
        """The value of the metric called ``name`` (wer, cer, wer_mean_utterance)."""
        for v in self.values:
            if v.name == name:
                return v.value
        raise KeyError(name)


def _per_utterance_counts(out, hyp_key: str) -> dict[str, np.ndarray]:
    """Per-utterance hits/S/D/I from jiwer's alignment chunks.

    jiwer counts these per sentence internally but only exposes corpus totals and the alignment chunks;
    summing each chunk's span gives the per-sentence counts (checked against jiwer's totals below).
    """
    n = len(out.alignments)
    c = {k: np.zeros(n, dtype=np.int64) for k in ("hits", "substitutions", "deletions", "insertions")}
    for i, chunks in enumerate(out.alignments):
        for ch in chunks:
            if ch.type == "equal":
                c["hits"][i] += ch.ref_end_idx - ch.ref_start_idx
            elif ch.type == "substitute":
                c["substitutions"][i] += ch.ref_end_idx - ch.ref_start_idx
            elif ch.type == "delete":
                c["deletions"][i] += ch.ref_end_idx - ch.ref_start_idx
            elif ch.type == "insert":
                c["insertions"][i] += ch.hyp_end_idx - ch.hyp_start_idx
    for k in c:
        if int(c[k].sum()) != int(getattr(out, k)):
            raise AssertionError(f"per-utterance {k} do not sum to jiwer's total")  # a jiwer API change
    c["ref_len"] = np.array([len(r) for r in out.references], dtype=np.int64)
    c[hyp_key] = np.array([len(h) for h in out.hypotheses], dtype=np.int64)
    return c


def _rate(errors: np.ndarray, n_ref: np.ndarray) -> np.ndarray:
    """errors / n_ref elementwise, NaN where the reference is empty."""
    errors = np.asarray(errors, dtype=np.float64)
    n_ref = np.asarray(n_ref, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_ref > 0, errors / np.where(n_ref > 0, n_ref, 1.0), np.nan)


def item_stats(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-utterance error counts (words and characters) and rates on already normalised texts."""
    import jiwer

    words = jiwer.process_words(list(references), list(hypotheses))
    chars = jiwer.process_characters(list(references), list(hypotheses))
    w = _per_utterance_counts(words, "hyp_words")
    ch = _per_utterance_counts(chars, "hyp_chars")
    stats = {k: w[k] for k in ("hits", "substitutions", "deletions", "insertions", "hyp_words")}
    stats["ref_words"] = w["ref_len"]
    for k in ("hits", "substitutions", "deletions", "insertions"):
        stats[f"char_{k}"] = ch[k]
    stats["ref_chars"] = ch["ref_len"]
    stats["wer"] = _rate(stats["substitutions"] + stats["deletions"] + stats["insertions"], stats["ref_words"])
    stats["cer"] = _rate(stats["char_substitutions"] + stats["char_deletions"] + stats["char_insertions"],
                         stats["ref_chars"])
    return stats


def aggregate(stats: ItemStats, idx: np.ndarray | None = None) -> dict[str, float]:
    """Corpus WER, CER and mean-of-utterance WER from per-item statistics (of the items at ``idx``).

    Sums the error counts first, so any subset gives exactly what scoring that subset directly gives.
    Undefined values (no reference words) are NaN.
    """
    if idx is not None:
        stats = {k: np.asarray(v)[idx] for k, v in stats.items()}
    s = {k: np.asarray(stats[k]) for k in ("substitutions", "deletions", "insertions", "ref_words",
                                           "char_substitutions", "char_deletions", "char_insertions",
                                           "ref_chars")}
    w_err = float(s["substitutions"].sum() + s["deletions"].sum() + s["insertions"].sum())
    c_err = float(s["char_substitutions"].sum() + s["char_deletions"].sum() + s["char_insertions"].sum())
    n_w, n_c = float(s["ref_words"].sum()), float(s["ref_chars"].sum())
    per_utt = _rate(s["substitutions"] + s["deletions"] + s["insertions"], s["ref_words"])
    defined = per_utt[~np.isnan(per_utt)]
    return {
        "wer": w_err / n_w if n_w > 0 else float("nan"),
        "cer": c_err / n_c if n_c > 0 else float("nan"),
        "wer_mean_utterance": float(defined.mean()) if defined.size else float("nan"),
    }


def _check_inputs(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise MMBenchError(f"WER needs one hypothesis per reference: got {len(hypotheses)} hypotheses "
                           f"for {len(references)} references")
    if len(references) == 0:
        raise MMBenchError("WER needs at least one utterance: got none")
    for kind, texts in (("hypothesis", hypotheses), ("reference", references)):
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise MMBenchError(f"WER {kind} {i} is {type(t).__name__}, not a string: pass '' for "
                                   "an empty transcript")


def wer_scores(hypotheses: Sequence[str], references: Sequence[str],
               normalizer: str = "whisper-english") -> WERResult:
    """Normalise both sides with ``normalizer``, then score corpus WER, CER and mean-of-utterance WER."""
    _check_inputs(hypotheses, references)
    refs = normalize(references, normalizer)
    hyps = normalize(hypotheses, normalizer)
    stats = item_stats(hyps, refs)
    agg = aggregate(stats)
    norm = normalizer_variant(normalizer)
    jw = f"jiwer {_version('jiwer')}"
    counts = {k: int(stats[k].sum()) for k in COUNT_KEYS}
    counts["n_utterances"] = len(refs)
    counts["empty_references"] = int((stats["ref_words"] == 0).sum())
    undefined = "no reference words after normalisation"

    def mv(name: str, variant: str) -> MetricValue:
        v = agg[name]
        ok = not np.isnan(v)
        return MetricValue(name=name, value=float(v) if ok else None, variant=variant,
                           higher_is_better=False, unavailable=None if ok else undefined, extra=counts)

    values = [
        mv("wer", f"corpus WER = (S+D+I) / reference words ({jw}), {norm}"),
        mv("cer", f"corpus CER = (S+D+I) / reference characters incl. spaces ({jw}), {norm}"),
        mv("wer_mean_utterance", f"non-standard mean of per-utterance WERs, empty references skipped "
                                 f"({jw}), {norm}"),
    ]
    return WERResult(values=values, stats=stats, normalizer=normalizer, references=refs, hypotheses=hyps)


@dataclass(frozen=True)
class WEROptions:
    normalizer: str = "whisper-english"  # see NORMALIZERS; applied to both sides and named in every variant


class WordErrorRate(Metric):
    """Corpus WER, CER and the mean of utterance WERs; predictions are transcripts, targets
    ``{"text": reference}`` (a failed item is an empty transcript: every reference word a deletion)."""

    name: ClassVar[str] = "wer"
    values: ClassVar[tuple[str, ...]] = ("wer", "cer", "wer_mean_utterance")
    headline: ClassVar[tuple[str, ...]] = ("wer",)
    inputs: ClassVar[str] = TRANSCRIPTS
    description: ClassVar[str] = "corpus WER/CER (jiwer) after a named normaliser, S/D/I counts, mean-of-utterance WER"
    Options: ClassVar[type] = WEROptions

    def check_options(self) -> None:
        if self.options.normalizer not in NORMALIZERS:
            raise MMBenchError(f"metric 'wer': normalizer {self.options.normalizer!r} is not one of "
                               f"{', '.join(NORMALIZERS)}")

    def score(self, predictions: list, targets: list) -> MetricReport:
        refs = [t.get("text") if isinstance(t, dict) else t for t in targets]
        res = wer_scores(predictions, refs, self.options.normalizer)
        stats = {k: np.asarray(v) for k, v in res.stats.items()}
        notes = []
        empty_refs = int((stats["ref_words"] == 0).sum())
        if empty_refs:
            notes.append(f"{empty_refs} reference(s) empty after normalisation: their words count as insertions, "
                         f"their utterance WER is undefined")
        per_item = {"reference_normalized": res.references, "hypothesis_normalized": res.hypotheses,
                    **{k: stats[k].tolist() for k in ("wer", "cer", "hits", "substitutions", "deletions",
                                                      "insertions", "ref_words")}}
        return MetricReport(list(res.values), stats, per_item, notes)

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        return aggregate(stats)
