"""WER/CER against jiwer, aggregation by hand, and the normalisers against the reference Whisper normaliser."""

from __future__ import annotations

import math

import jiwer
import numpy as np
import pytest

from mmbench.errors import MMBenchError
from mmbench.metrics.base import subset
from mmbench.metrics.wer import NORMALIZERS, aggregate, get_normalizer, normalize, wer_scores

REFS = [
    "The cat sat on the mat.",
    "Mr. Smith paid $25 for twenty five colourful pencils!",
    "I can't believe it's already December",
    "hello world",
    "[noise]",
]
HYPS = [
    "the cat sat on a mat",
    "mister smith paid twenty five dollars for 25 colorful pencils",
    "i cannot believe its already december",
    "",
    "uh oh",
]


@pytest.mark.parametrize("norm", list(NORMALIZERS))
def test_corpus_wer_cer_match_jiwer(norm: str) -> None:
    r = wer_scores(HYPS, REFS, norm)
    refs, hyps = normalize(REFS, norm), normalize(HYPS, norm)
    assert r.references == refs and r.hypotheses == hyps
    words = jiwer.process_words(refs, hyps)
    assert r.value("wer") == jiwer.wer(refs, hyps)
    assert r.value("cer") == jiwer.cer(refs, hyps)
    ex = r.values[0].extra
    assert (ex["substitutions"], ex["deletions"], ex["insertions"], ex["hits"]) == (
        words.substitutions, words.deletions, words.insertions, words.hits)
    assert ex["ref_words"] == words.hits + words.substitutions + words.deletions
    # per-utterance counts equal jiwer run on each utterance alone
    for i, (ref, hyp) in enumerate(zip(refs, hyps)):
        one = jiwer.process_words(ref, hyp)
        assert (r.stats["substitutions"][i], r.stats["deletions"][i], r.stats["insertions"][i],
                r.stats["hits"][i]) == (one.substitutions, one.deletions, one.insertions, one.hits)
        if r.stats["ref_words"][i] > 0:
            assert r.stats["wer"][i] == pytest.approx(one.wer, abs=0, rel=1e-15)
            assert r.stats["cer"][i] == pytest.approx(jiwer.cer(ref, hyp), rel=1e-15)


def test_hand_worked_corpus_vs_mean_of_utterances() -> None:
    # utt 1: 1 substitution / 2 words; utt 2: 0 errors / 8 words; utt 3: empty hyp, 2 deletions / 2 words
    refs = ["a b", "c d e f g h i j", "k l"]
    hyps = ["a x", "c d e f g h i j", ""]
    r = wer_scores(hyps, refs, "none")
    assert r.value("wer") == 3 / 12
    assert r.value("wer_mean_utterance") == (0.5 + 0.0 + 1.0) / 3
    assert r.stats["wer"].tolist() == [0.5, 0.0, 1.0]
    assert r.values[0].extra["deletions"] == 2 and r.values[0].extra["substitutions"] == 1
    # CER counts spaces: "a b" -> "a x" is 1 of 3 chars; "k l" -> "" deletes 3 chars; 15 chars in the middle
    assert r.value("cer") == 4 / 21
    assert all(v.higher_is_better is False for v in r.values)


def test_empty_reference_counts_insertions_and_is_skipped_in_mean() -> None:
    # "[noise]" normalises to nothing: its two hypothesis words are insertions in the corpus totals
    r = wer_scores(["hello there", "a b"], ["[noise]", "a b"], "basic")
    assert r.stats["ref_words"].tolist() == [0, 2]
    assert r.stats["insertions"].tolist() == [2, 0]
    assert math.isnan(r.stats["wer"][0])
    assert r.value("wer") == 2 / 2
    assert r.value("wer_mean_utterance") == 0.0
    assert r.values[0].extra["empty_references"] == 1


def test_no_reference_words_is_unavailable_not_zero() -> None:
    r = wer_scores(["", "um"], ["[music]", "hmm"], "whisper-english")
    wer = r.values[0]
    assert wer.value is None and "no reference words" in wer.unavailable
    assert math.isnan(aggregate(r.stats)["wer"])


def test_aggregate_subset_equals_direct_computation() -> None:
    rng = np.random.default_rng(0)
    vocab = "one two three four five six seven".split()
    refs = [" ".join(rng.choice(vocab, rng.integers(1, 9))) for _ in range(40)]
    hyps = [" ".join(w for w in r.split() if rng.random() > 0.2) + (" six" if rng.random() < 0.3 else "")
            for r in refs]
    full = wer_scores(hyps, refs, "none")
    assert aggregate(full.stats) == pytest.approx(
        {"wer": full.value("wer"), "cer": full.value("cer"), "wer_mean_utterance": full.value("wer_mean_utterance")},
        rel=1e-15)
    idx = np.array([3, 5, 5, 11, 17, 30, 39])  # a bootstrap-style subset, with a repeat
    direct = wer_scores([hyps[i] for i in idx], [refs[i] for i in idx], "none")
    for key in ("wer", "cer", "wer_mean_utterance"):
        assert aggregate(full.stats, idx)[key] == pytest.approx(direct.value(key), rel=1e-14)
        assert aggregate(subset(full.stats, idx))[key] == pytest.approx(direct.value(key), rel=1e-14)
    assert aggregate(full.stats, idx)["wer"] == jiwer.wer([refs[i] for i in idx], [hyps[i] for i in idx])


def test_variant_names_normaliser_and_convention() -> None:
    r = wer_scores(["a"], ["a"], "whisper-english")
    by = {v.name: v.variant for v in r.values}
    assert by["wer"].startswith("corpus WER") and "normaliser=whisper-english" in by["wer"]
    assert "jiwer 4." in by["wer"] and "whisper-normalizer" in by["wer"]
    assert by["wer_mean_utterance"].startswith("non-standard mean")
    assert "normaliser=basic" in wer_scores(["a"], ["a"], "basic").values[1].variant


def test_bad_arguments_raise_one_line_errors() -> None:
    with pytest.raises(MMBenchError, match="none, basic, whisper-english"):
        get_normalizer("whisper")
    with pytest.raises(MMBenchError, match="one hypothesis per reference"):
        wer_scores(["a"], ["a", "b"])
    with pytest.raises(MMBenchError, match="at least one utterance"):
        wer_scores([], [])
    with pytest.raises(MMBenchError, match="hypothesis 1 is NoneType"):
        wer_scores(["a", None], ["a", "b"])  # type: ignore[list-item]


# Expected outputs written by hand after checking them against the Whisper reference code.
WHISPER_ENGLISH_CASES = {
    "Twenty five people came.": "25 people came",
    "It costs $5.": "it costs $5",
    "It costs five dollars.": "it costs $5",
    "two dollars and fifty cents": "$2.50",
    "I can't go, won't go, we're going": "i can not go will not go we are going",
    "My favourite colour!": "my favorite color",
    "A well-known five-year-old": "a well known 5 year old",
    "Mr. Smith met Dr. Jones": "mister smith met doctor jones",
    "Hello [noise] (laughs) world": "hello world",
    "Um, hmm, yes": "yes",
    "1,000 workers": "1000 workers",
    "twelve percent": "12%",
    "one oh one": "101",
    "Café naïve": "cafe naive",
    "nine o'clock": "90 clock",  # a known quirk of the Whisper normaliser, kept as is
}
BASIC_CASES = {
    "Twenty five people came.": "twenty five people came ",
    "It costs $5.": "it costs 5 ",
    "I can't go": "i can t go",
    "My favourite colour!": "my favourite colour ",
    "A well-known five-year-old": "a well known five year old",
    "Mr. Smith": "mr smith",
    "Hello [noise] (laughs) world": "hello world",
    "  Hello,   WORLD!  ": " hello world ",
    "Café naïve": "café naïve",
}


@pytest.mark.parametrize("text,expected", WHISPER_ENGLISH_CASES.items())
def test_whisper_english_normaliser(text: str, expected: str) -> None:
    assert get_normalizer("whisper-english")(text) == expected


@pytest.mark.parametrize("text,expected", BASIC_CASES.items())
def test_basic_normaliser(text: str, expected: str) -> None:
    assert get_normalizer("basic")(text) == expected


def test_none_normaliser_is_identity_and_case_sensitive() -> None:
    assert get_normalizer("none")("Hello, World!") == "Hello, World!"
    assert wer_scores(["hello world"], ["Hello world"], "none").value("wer") == 0.5


def test_normalisers_agree_with_the_whisper_normalizer_package() -> None:
    # whisper-normalizer ships an independent copy of OpenAI's Whisper normaliser code
    from whisper_normalizer.basic import BasicTextNormalizer
    from whisper_normalizer.english import EnglishTextNormalizer

    from mmbench.mini.speech.sentences import SENTENCES

    texts = list(WHISPER_ENGLISH_CASES) + list(BASIC_CASES) + list(SENTENCES)
    ref_e, ref_b = EnglishTextNormalizer(), BasicTextNormalizer()
    assert normalize(texts, "whisper-english") == [ref_e(t) for t in texts]
    assert normalize(texts, "basic") == [ref_b(t) for t in texts]


def test_spelling_map_is_the_shipped_one() -> None:
    from mmbench.metrics.wer import _english_spelling_map

    m = _english_spelling_map()
    assert len(m) == 1739 and m["colour"] == "color" and m["tyres"] == "tires"


def test_normaliser_changes_the_score() -> None:
    hyp, ref = ["twenty five dollars"], ["$25"]
    assert wer_scores(hyp, ref, "whisper-english").value("wer") == 0.0
    assert wer_scores(hyp, ref, "basic").value("wer") == 3.0  # 1 substitution + 2 insertions / 1 word
