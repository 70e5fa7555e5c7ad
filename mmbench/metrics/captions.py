"""COCO caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE) exactly as pycocoevalcap computes them.

The official pipeline (pycocoevalcap's ``COCOEvalCap``) PTB-tokenises references and predictions (lowercase,
punctuation removed) and hands them to each scorer; :class:`CaptionScorer` runs the same library code, but
keeps the METEOR Java process alive across calls (start-up ~10 s: it loads a 62 MB paraphrase table) and
returns per-item statistics so that :func:`aggregate` can recompute the corpus values on any subset of
images (bootstrap):

- BLEU: per-item matched/total n-gram counts, hypothesis length and the reference length chosen by the
  'closest' rule; ``aggregate`` reproduces pycocoevalcap's corpus BLEU bit for bit, smoothing included.
- CIDEr-D: per-item scores, with document frequencies from all the evaluated references; the mean over a
  subset is not what CIDEr-D recomputed from scratch on that subset gives (its document frequencies differ).
- ROUGE-L: per-item scores; the corpus value is their mean.
- METEOR: the corpus score comes from the METEOR scorer on aggregated alignment statistics and is not a
  mean of segment scores. ``aggregate`` gives the mean of segment scores; the exact corpus METEOR of a
  subset is :meth:`CaptionScorer.meteor_corpus` on the subset's ``meteor_stats``.
- SPICE: needs Stanford CoreNLP 3.6.0 jars that pycocoevalcap downloads on first use; without them SPICE is
  reported unavailable (value None, with the reason), never 0.

Deviation from the official code, on inputs where it silently breaks: besides the ``\\n`` it replaces, the
characters that the PTB tokenizer also takes as line ends (``\\r``, ``\\v``, ``\\f``, U+2028, U+2029) become
spaces; the official code would shift every later caption onto the wrong image.
"""

from __future__ import annotations

import math
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Hashable, Mapping, Sequence

import numpy as np
import pycocoevalcap.spice
from pycocoevalcap.bleu.bleu_scorer import BleuScorer
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from mmbench.errors import MMBenchError
from mmbench.metrics.api import CAPTIONS, Metric, MetricReport, group_labels
from mmbench.metrics.base import ItemStats, MetricValue

BLEU_NAMES = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4")
SUBSET_NOTE = ("CIDEr-D document frequencies come from the evaluated references; scores on a subset are not "
               "comparable to the full set")

# pycocoevalcap's BleuScorer constants: added to matched counts and to totals so that a zero never divides.
_BLEU_TINY = 1e-15
_BLEU_SMALL = 1e-9
_BLEU_N = 4

GROUP_PREFIX = "captions/by:"  # stats key holding each image's group label (e.g. NoCaps' domain)

_TOKENISATION = "PTB-tokenised (Stanford CoreNLP 3.4.1 PTBTokenizer, lowercase, punctuation removed)"
_VARIANTS = {
    "Bleu": ("pycocoevalcap 1.2 Bleu(4): corpus BLEU-{n}, " + _TOKENISATION + ", 'closest' reference length, "
             "smoothing tiny=1e-15 small=1e-9"),
    "METEOR": ("METEOR 1.5 via pycocoevalcap (-l en -norm), " + _TOKENISATION + "; the value is the scorer's "
               "corpus score from summed alignment statistics; aggregate() gives the mean of segment scores "
               "instead (extra['segment_mean']); exact corpus METEOR of a subset: CaptionScorer.meteor_corpus"),
    "ROUGE_L": ("pycocoevalcap 1.2 ROUGE-L: LCS F-measure beta=1.2 on the best precision/recall over "
                "references, mean over images, " + _TOKENISATION),
    "CIDEr-D": ("pycocoevalcap 1.2 Cider (CIDEr-D: n=4, sigma=6, clipped counts, x10), " + _TOKENISATION + "; "
                "document frequencies from the {n} evaluated images' references: a subset's CIDEr-D computed "
                "from scratch differs from aggregate() over its items"),
    "SPICE": "SPICE 1.0 via pycocoevalcap (Stanford CoreNLP 3.6.0), mean of per-image F-scores, " + _TOKENISATION,
}

# Characters that Stanford's PTBTokenizer treats as line ends (measured): '\n' is replaced by the official code.
_LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\v\f\u2028\u2029"})

# pycocoevalcap is a namespace package: its spice/ sub-package (an empty __init__) locates the files.
_SPICE_DIR = Path(pycocoevalcap.spice.__file__).resolve().parent
_CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


def spice_unavailable_reason() -> str | None:
    """Why SPICE cannot run here (None when it can): checked without constructing ``Spice`` (which downloads)."""
    lib = _SPICE_DIR / "lib"
    missing = [jar for jar in _CORENLP_JARS if not (lib / jar).is_file()]
    if not missing:
        return None
    return (f"SPICE unavailable: Stanford CoreNLP 3.6.0 jars missing ({', '.join(missing)}); pycocoevalcap "
            f"would download them at first use, which fails offline. Put them (from "
            f"stanford-corenlp-full-2015-12-09.zip) into {lib}")


def _check_java() -> None:
    if shutil.which("java") is None:
        raise MMBenchError("java not found on PATH: the COCO caption metrics run Java scorers; install a Java "
                           "runtime (e.g. apt-get install default-jre-headless)")


def _check_inputs(predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]) -> list:
    if not isinstance(predictions, Mapping) or not isinstance(references, Mapping):
        raise MMBenchError("predictions and references must be dicts keyed by image id")
    for pid in predictions:
        if pid not in references:
            raise MMBenchError(f"prediction id {pid!r} has no references: score the same ids on both sides")
    for rid in references:
        if rid not in predictions:
            raise MMBenchError(f"reference id {rid!r} has no prediction: score the same ids on both sides")
    if not references:
        raise MMBenchError("no captions to score: pass at least one image")
    for rid, refs in references.items():
        if isinstance(refs, str) or not isinstance(refs, Sequence) or len(refs) == 0:
            raise MMBenchError(f"references of id {rid!r} must be a non-empty list of caption strings")
        if not all(isinstance(r, str) for r in refs):
            raise MMBenchError(f"references of id {rid!r} contain a non-string: pass caption strings")
        if not isinstance(predictions[rid], str):
            raise MMBenchError(f"prediction of id {rid!r} is {type(predictions[rid]).__name__}, not a string")
    return list(references)


def tokenize(captions: Mapping[Hashable, Sequence[str]], tokenizer: PTBTokenizer | None = None
             ) -> dict[Hashable, list[str]]:
    """PTB-tokenise ``{id: [caption, ...]}`` as COCOEvalCap does (one Java call)."""
    coco = {k: [{"caption": c.translate(_LINE_BREAKS)} for c in caps] for k, caps in captions.items()}
    out = (tokenizer or PTBTokenizer()).tokenize(coco)
    for k, caps in captions.items():
        if len(out.get(k, ())) != len(caps):
            raise RuntimeError(f"PTBTokenizer returned {len(out.get(k, ()))} captions for id {k!r} instead of "
                               f"{len(caps)}: its output lines are misaligned")
    return out


def bleu_item_stats(gts: Mapping[Hashable, list[str]], res: Mapping[Hashable, list[str]], ids: Sequence
                    ) -> tuple[list[float], dict[str, np.ndarray]]:
    """pycocoevalcap's corpus BLEU-1..4 and the per-item statistics it is summed from."""
    scorer = BleuScorer(n=_BLEU_N)
    for i in ids:
        scorer += (res[i][0], gts[i])
    corpus, _ = scorer.compute_score(option="closest", verbose=0)
    cooked = scorer.ctest
    testlen = np.asarray([c["testlen"] for c in cooked], dtype=np.int64)
    # The 'closest' rule of BleuScorer: the reference length nearest the hypothesis length, the shorter on a tie.
    reflen = np.asarray([min((abs(r - c["testlen"]), r) for r in c["reflen"])[1] for c in cooked], dtype=np.int64)
    stats = {"bleu_correct": np.asarray([c["correct"] for c in cooked], dtype=np.int64),
             "bleu_guess": np.asarray([c["guess"] for c in cooked], dtype=np.int64),
             "bleu_testlen": testlen, "bleu_reflen": reflen}
    return [float(v) for v in corpus], stats


def bleu_from_stats(stats: ItemStats) -> dict[str, float]:
    """Corpus BLEU-1..4 from summed per-item statistics, in BleuScorer.compute_score's exact float order."""
    # Re-stated from the library because it only scores its own cooked sentences, one Python loop per item;
    # on integer sums the same operations in the same order give the same bits.
    correct = [int(v) for v in np.asarray(stats["bleu_correct"]).sum(axis=0)]
    guess = [int(v) for v in np.asarray(stats["bleu_guess"]).sum(axis=0)]
    testlen = int(np.asarray(stats["bleu_testlen"]).sum())
    reflen = int(np.asarray(stats["bleu_reflen"]).sum())
    bleus, bleu = [], 1.0
    for k in range(_BLEU_N):
        bleu *= float(correct[k] + _BLEU_TINY) / (guess[k] + _BLEU_SMALL)
        bleus.append(bleu ** (1.0 / (k + 1)))
    ratio = (testlen + _BLEU_TINY) / (reflen + _BLEU_SMALL)
    if ratio < 1:
        bleus = [b * math.exp(1 - 1 / ratio) for b in bleus]
    return dict(zip(BLEU_NAMES, bleus))


def aggregate(stats: ItemStats) -> dict[str, float]:
    """Corpus values from the per-item statistics of any subset of images.

    BLEU-n: exact corpus BLEU of the subset. METEOR: mean of segment scores (not the scorer's corpus METEOR).
    ROUGE_L, CIDEr-D, SPICE: means of per-image scores (CIDEr-D keeps the full set's document frequencies).
    Per group (``captions/by:<field>`` labels): the same per group, CIDEr-D from the group-scored values.
    """
    if len(np.asarray(stats["bleu_testlen"])) == 0:
        raise MMBenchError("cannot aggregate caption metrics over zero images: pass a non-empty subset")
    out = _plain(stats)
    for key in stats:
        if key.startswith(GROUP_PREFIX):
            fld, labels = key[len(GROUP_PREFIX):], np.asarray(stats[key])
            for lab in dict.fromkeys(labels.tolist()):
                rows = labels == lab
                part = {k: np.asarray(v)[rows] for k, v in stats.items() if np.ndim(v)}
                part["CIDEr-D"] = part[f"CIDEr-D/within:{fld}"]
                out.update({f"{name}[{fld}={lab}]": v for name, v in _plain(part).items()})
    return out


def _plain(stats: ItemStats) -> dict[str, float]:
    out = bleu_from_stats(stats)
    for name in ("METEOR", "ROUGE_L", "CIDEr-D", "SPICE"):
        if name in stats:
            out[name] = float(np.mean(np.asarray(stats[name], dtype=np.float64)))
    return out


@dataclass(frozen=True)
class CaptionResult:
    """Corpus caption metrics, per-item statistics (keyed as ``aggregate`` expects) and notes."""

    ids: list
    values: list[MetricValue]
    stats: ItemStats
    notes: list[str] = field(default_factory=list)
    tokenized_predictions: dict = field(default_factory=dict)

    def value(self, name: str) -> float | None:
        """The corpus value of the metric called ``name`` (e.g. "CIDEr-D")."""
        for v in self.values:
            if v.name == name:
                return v.value
        raise KeyError(name)


class CaptionScorer:
    """Scores captions with pycocoevalcap, starting the Java scorers once per object.

    The METEOR process starts at the first ``score`` call and serves every later one; ``close()`` (or leaving
    a ``with`` block) ends it. Within a call, the Java scorers run beside the Python ones (2 cores are used).
    ``spice=None`` computes SPICE when its jars are present, ``False`` never, ``True`` requires it.
    """

    def __init__(self, *, spice: bool | None = None) -> None:
        _check_java()
        self._tokenizer = PTBTokenizer()
        self._meteor: Meteor | None = None
        self._lock = threading.Lock()
        self._spice_reason = spice_unavailable_reason() if spice is not False else \
            "SPICE unavailable: disabled by the caller (CaptionScorer(spice=False))"
        if spice is True and self._spice_reason is not None:
            raise MMBenchError(self._spice_reason)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def __enter__(self) -> CaptionScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the METEOR process (a later ``score`` starts a new one)."""
        with self._lock:
            meteor, self._meteor = self._meteor, None
        if meteor is not None:
            # What pycocoevalcap's Meteor.__del__ does; when it runs later on the closed process it is a no-op.
            with meteor.lock:
                meteor.meteor_p.stdin.close()
                meteor.meteor_p.kill()
                meteor.meteor_p.wait()
                meteor.meteor_p.stdout.close()
                meteor.meteor_p.stderr.close()

    @property
    def meteor_pid(self) -> int | None:
        """Process id of the running METEOR scorer (None before the first call or after ``close``)."""
        return None if self._meteor is None else self._meteor.meteor_p.pid

    def _meteor_process(self) -> Meteor:
        with self._lock:
            if self._meteor is None or self._meteor.meteor_p.poll() is not None:
                self._meteor = Meteor()
            return self._meteor

    # -- METEOR protocol -------------------------------------------------------------------------------------
    @staticmethod
    def _read_line(meteor: Meteor) -> str:
        line = meteor.meteor_p.stdout.readline()
        if not line:
            err = meteor.meteor_p.stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"the METEOR scorer stopped (exit code {meteor.meteor_p.poll()}): {err}")
        return line.decode().strip()

    def _meteor_eval(self, meteor: Meteor, stat_lines: list[str]) -> tuple[float, list[float]]:
        # pycocoevalcap's Meteor.compute_score protocol: one EVAL line; one score per segment, then the corpus.
        meteor.meteor_p.stdin.write(("EVAL ||| " + " ||| ".join(stat_lines) + "\n").encode())
        meteor.meteor_p.stdin.flush()
        segments = [float(self._read_line(meteor)) for _ in stat_lines]
        return float(self._read_line(meteor)), segments

    def _meteor_score(self, meteor: Meteor, gts: Mapping, res: Mapping, ids: Sequence
                      ) -> tuple[float, list[float], np.ndarray]:
        # The SCORE lines of pycocoevalcap's Meteor._stat (same hypothesis clean-up), but written all at once
        # by a writer thread while this one reads the answers: the library waits for each answer before it
        # sends the next line, which costs a round trip per caption. The scorer answers in order either way.
        requests = "".join(" ||| ".join(("SCORE", " ||| ".join(gts[i]),
                                         res[i][0].replace("|||", "").replace("  ", " "))) + "\n"
                           for i in ids).encode()

        def write() -> None:
            meteor.meteor_p.stdin.write(requests)
            meteor.meteor_p.stdin.flush()

        with meteor.lock:
            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            try:
                lines = [self._read_line(meteor) for _ in ids]
            finally:
                writer.join()
            corpus, segments = self._meteor_eval(meteor, lines)
        stats = np.asarray([[float(x) for x in line.split()] for line in lines], dtype=np.float64)
        return corpus, segments, stats

    def meteor_corpus(self, meteor_stats: np.ndarray) -> float:
        """The METEOR scorer's corpus score for items' ``meteor_stats`` rows (exact METEOR of a subset)."""
        rows = np.asarray(meteor_stats, dtype=np.float64)
        if rows.ndim != 2 or len(rows) == 0:
            raise MMBenchError("meteor_stats must be a non-empty 2-D array (CaptionResult.stats['meteor_stats'])")
        meteor = self._meteor_process()
        with meteor.lock:
            corpus, _ = self._meteor_eval(meteor, [" ".join(repr(float(x)) for x in row) for row in rows])
        return corpus

    # -- scoring ---------------------------------------------------------------------------------------------
    def score(self, predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]],
              *, is_subset: bool = False, groups: Mapping[str, Mapping[Hashable, str]] | None = None
              ) -> CaptionResult:
        """Score one caption per image against its references; item order is the order of ``references``.

        ``groups`` ({field: {id: label}}, e.g. NoCaps' domain) adds every metric per group, each group scored
        on its own images only, as if it were evaluated alone (CIDEr-D's document frequencies then come
        from the group's references: that is how NoCaps reports in-, near- and out-of-domain scores)."""
        ids = _check_inputs(predictions, references)
        # The Java scorers run beside the Python ones on the other core: METEOR starts loading now (first call),
        # the two PTB tokenisations run at once, and METEOR scores while BLEU, ROUGE-L and CIDEr-D compute.
        meteor_process = self._meteor_process()
        with ThreadPoolExecutor(max_workers=1) as pool:
            res_job = pool.submit(tokenize, {i: [predictions[i]] for i in ids}, self._tokenizer)
            gts = tokenize({i: list(references[i]) for i in ids}, self._tokenizer)
            res = res_job.result()
            if not any(c for i in ids for c in gts[i]):
                raise MMBenchError("every reference is empty after PTB tokenisation: CIDEr-D needs reference words")
            meteor_job = pool.submit(self._meteor_score, meteor_process, gts, res, ids)
            bleu, stats = bleu_item_stats(gts, res, ids)
            rouge, rouge_items = Rouge().compute_score(gts, res)
            cider, cider_items = Cider().compute_score(gts, res)
            meteor, meteor_segments, meteor_stats = meteor_job.result()
        n = len(ids)
        stats.update({"METEOR": np.asarray(meteor_segments, dtype=np.float64), "meteor_stats": meteor_stats,
                      "ROUGE_L": np.asarray(rouge_items, dtype=np.float64),
                      "CIDEr-D": np.asarray(cider_items, dtype=np.float64)})

        values = [MetricValue(name, v, _VARIANTS["Bleu"].format(n=k + 1), extra={"n": n})
                  for k, (name, v) in enumerate(zip(BLEU_NAMES, bleu))]
        values += [
            MetricValue("METEOR", float(meteor), _VARIANTS["METEOR"],
                        extra={"n": n, "segment_mean": float(np.mean(stats["METEOR"]))}),
            MetricValue("ROUGE_L", float(rouge), _VARIANTS["ROUGE_L"], extra={"n": n}),
            MetricValue("CIDEr-D", float(cider), _VARIANTS["CIDEr-D"].format(n=n), extra={"n": n}),
        ]
        values.append(self._spice(gts, res, ids, stats))
        for fld, labels in (groups or {}).items():
            values += self._group_values(fld, [str(labels[i]) for i in ids], gts, res, ids, stats)
        notes = [SUBSET_NOTE] if is_subset else []
        return CaptionResult(ids=ids, values=values, stats=stats, notes=notes,
                             tokenized_predictions={i: res[i][0] for i in ids})

    def _group_values(self, fld: str, labels: list[str], gts: Mapping, res: Mapping, ids: Sequence,
                      stats: dict) -> list[MetricValue]:
        """Every metric per group; only CIDEr-D needs new per-item scores (the others are per-image or sums)."""
        label_arr = np.asarray(labels)
        within = np.zeros(len(ids), dtype=np.float64)
        values = []
        for lab in dict.fromkeys(labels):
            rows = np.flatnonzero(label_arr == lab)
            sub = [ids[r] for r in rows]
            cider, items = Cider().compute_score({i: gts[i] for i in sub}, {i: res[i] for i in sub})
            within[rows] = items
            part = {k: np.asarray(v)[rows] for k, v in stats.items()}
            value = {**bleu_from_stats(part), "ROUGE_L": float(np.mean(part["ROUGE_L"])), "CIDEr-D": float(cider),
                     "METEOR": self.meteor_corpus(part["meteor_stats"])}
            if "SPICE" in part:
                value["SPICE"] = float(np.mean(part["SPICE"]))
            n = len(rows)
            for name in (*BLEU_NAMES, "METEOR", "ROUGE_L", "CIDEr-D", "SPICE"):
                if name in value:
                    variant = _VARIANTS["Bleu"].format(n=int(name[-1])) if name in BLEU_NAMES else \
                        _VARIANTS[name].format(n=n)
                    values.append(MetricValue(f"{name}[{fld}={lab}]", value[name],
                                              f"{variant}; the {n} images with {fld}={lab} scored on their own",
                                              extra={"n": n}))
        stats[f"{GROUP_PREFIX}{fld}"] = label_arr
        stats[f"CIDEr-D/within:{fld}"] = within
        return values

    def _spice(self, gts: Mapping, res: Mapping, ids: Sequence, stats: dict) -> MetricValue:
        if self._spice_reason is not None:
            return MetricValue("SPICE", None, _VARIANTS["SPICE"], unavailable=self._spice_reason)
        from pycocoevalcap.spice.spice import Spice  # jars checked present: constructing it downloads nothing

        corpus, items = Spice().compute_score(gts, res)
        # Spice returns per-image scores in sorted-id order (COCOEvalCap mislabels them when ids are unsorted).
        by_id = dict(zip(sorted(ids), (float(s["All"]["f"]) for s in items)))
        stats["SPICE"] = np.asarray([by_id[i] for i in ids], dtype=np.float64)
        return MetricValue("SPICE", float(corpus), _VARIANTS["SPICE"], extra={"n": len(ids)})


# Read by the reports: metrics whose aggregate is an approximation of the reported corpus value.
APPROXIMATIONS = {"METEOR": "mean of segment METEOR scores (the reported value is the Java scorer's corpus METEOR)"}


@dataclass(frozen=True)
class CaptionOptions:
    spice: str = "auto"  # auto: when the CoreNLP jars are present; off: never; on: required
    by: tuple[str, ...] = ()  # per-group scores (e.g. NoCaps' domain), each group scored on its own


class COCOCaptionMetrics(Metric):
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr-D and SPICE as the COCO caption evaluation computes them.

    Predictions are caption strings; targets are mappings with ``captions`` (the references) and the
    ``id`` of the image, plus the fields named in ``by``. The Java scorers are a run-wide resource kept in
    the context's resources, so every captioning task of a run shares one METEOR process.
    """

    name: ClassVar[str] = "coco_captions"
    values: ClassVar[tuple[str, ...]] = ("Bleu_{k}", "METEOR", "ROUGE_L", "CIDEr-D", "SPICE")
    headline: ClassVar[tuple[str, ...]] = ("CIDEr-D",)
    inputs: ClassVar[str] = CAPTIONS
    description: ClassVar[str] = "COCO caption evaluation: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE (pycocoevalcap)"
    Options: ClassVar[type] = CaptionOptions
    approximations: ClassVar[dict] = APPROXIMATIONS
    resource_key: ClassVar[str] = "caption-scorer"

    def check_options(self) -> None:
        if self.options.spice not in ("auto", "on", "off"):
            raise MMBenchError(f"metric 'coco_captions': spice {self.options.spice!r} is not one of auto, on, off")

    def scorer(self) -> CaptionScorer:
        """The run's caption scorer (made on first use in the context's resources, closed by the runner)."""
        resources = self.context.resources
        if self.resource_key not in resources:
            spice = {"auto": None, "on": True, "off": False}[self.options.spice]
            resources[self.resource_key] = CaptionScorer(spice=spice)
        return resources[self.resource_key]

    def score(self, predictions: list, targets: list) -> MetricReport:
        refs, preds = {}, {}
        for i, (p, t) in enumerate(zip(predictions, targets)):
            caps = t.get("captions") if isinstance(t, Mapping) else None
            if isinstance(caps, str) or not isinstance(caps, (list, tuple)) or not caps:
                raise MMBenchError(f"metric 'coco_captions': image {t.get('id', i)!r} has no reference captions")
            key = str(t.get("id", i))
            refs[key], preds[key] = list(caps), p
        labels, missing = group_labels(targets, self.options.by)
        groups = {fld: dict(zip(refs, labs)) for fld, labs in labels.items()}
        result = self.scorer().score(preds, refs, is_subset=self.context.is_subset, groups=groups)
        notes = [*result.notes, *(f"coco_captions: no breakdown by {f!r} (some images lack it)" for f in missing)]
        stats = {k: np.asarray(v) for k, v in result.stats.items()}
        return MetricReport(list(result.values), stats, {"cider_d": list(stats["CIDEr-D"])}, notes)

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        return aggregate(stats)
