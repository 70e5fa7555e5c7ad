"""Named metrics of the multiple-choice and yes/no benchmarks: ``mc_accuracy`` and ``mmmu_accuracy`` score
what the multiple-choice kind produces (``inputs: choices``); ``pope`` and ``mme`` score yes/no answers of
a VQA-style task (``inputs: answers``). The rules live in :mod:`mmbench.metrics.choice`,
:mod:`mmbench.metrics.mmmu` and :mod:`mmbench.metrics.yesno`; this module adapts them to the interface.

A multiple-choice prediction is the list of a question's passes (one, or k under CircularEval), each
``{"text": answer, "judge": letter or None}`` (``judge``: what an LLM judge read when the rule found no
letter); its target carries ``passes`` (``[{"options": [...], "answer": letter}]``) and the fields
breakdowns read. A question is right only if every pass is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping, Sequence

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.metrics import choice, mmmu, yesno
from mmbench.metrics.api import (ANSWERS, BY_PREFIX, CHOICES, Metric, MetricReport, aggregate_mean, breakdown,
                                 group_labels, left_to_right_mean)
from mmbench.metrics.base import ItemStats, MetricValue


def _passes(target: object, i: int, name: str) -> list[dict]:
    passes = target.get("passes") if isinstance(target, Mapping) else None
    if not isinstance(passes, (list, tuple)) or not passes:
        raise MMBenchError(f"metric {name!r}: item {i} has no `passes` (options and answer per pass)")
    return list(passes)


def _pass_answers(prediction: object, n: int, i: int, name: str) -> list[dict]:
    if isinstance(prediction, str):
        prediction = [{"text": prediction}]
    if not isinstance(prediction, (list, tuple)) or len(prediction) != n or not all(
            isinstance(p, Mapping) and isinstance(p.get("text"), str) for p in prediction):
        raise MMBenchError(f"metric {name!r}: item {i} needs one answer per pass ({n}), got {str(prediction)[:80]!r}")
    return list(prediction)


def read_pass(rule_name: str, answer: Mapping, options: Sequence[str], item_id: str) -> choice.Read:
    """The letter of one pass: the rule's reading, else the judge's when a judge read the answer."""
    read = choice.rule(rule_name)(answer["text"], options, item_id)
    if read.letter is None and answer.get("judge"):
        return choice.Read(str(answer["judge"]), "judge")
    return read


@dataclass(frozen=True)
class ChoiceOptions:
    rule: str = "letter"  # see mmbench.metrics.choice.RULES
    by: tuple[str, ...] = ()


class MultipleChoiceAccuracy(Metric):
    """Accuracy of the letters read under the benchmark's rule (every pass right under CircularEval), the
    share of questions with a pass no rule or judge could read, and breakdowns (``by``)."""

    name: ClassVar[str] = "mc_accuracy"
    values: ClassVar[tuple[str, ...]] = ("mc_accuracy", "mc_accuracy_first_pass", "mc_unparseable_rate",
                                         "mc_accuracy_answered")
    # rules whose official scorer divides by the questions it could read: they also report mc_accuracy_answered
    ANSWERED_DENOMINATOR: ClassVar[frozenset[str]] = frozenset({"videomme"})
    headline: ClassVar[tuple[str, ...]] = ("mc_accuracy",)
    inputs: ClassVar[str] = CHOICES
    description: ClassVar[str] = "multiple-choice accuracy under a benchmark's reading rule (+ CircularEval)"
    Options: ClassVar[type] = ChoiceOptions

    def check_options(self) -> None:
        choice.rule(self.options.rule)

    def variant(self, circular: bool) -> str:
        v = f"multiple choice, letters read by {self.options.rule}: {choice.RULES[self.options.rule][1]}"
        return v + ("; CircularEval: right only if every rotation of the options is" if circular else "")

    def score(self, predictions: list, targets: list) -> MetricReport:
        correct, unparsed, first, letters, hows = [], [], [], [], []
        for i, (pred, target) in enumerate(zip(predictions, targets)):
            passes = _passes(target, i, self.name)
            reads = [read_pass(self.options.rule, a, p["options"], f"{target.get('id', i)}/{k}")
                     for k, (a, p) in enumerate(zip(_pass_answers(pred, len(passes), i, self.name), passes))]
            right = [r.letter == choice.letter_of(p["answer"], len(p["options"]), f"item {i}")
                     for r, p in zip(reads, passes)]
            correct.append(float(all(right)))
            first.append(float(right[0]))
            unparsed.append(float(any(r.letter is None for r in reads)))
            letters.append([r.letter for r in reads])
            hows.append([r.how for r in reads])
        circular = any(len(x) > 1 for x in letters)
        labels, missing = group_labels(targets, self.options.by)
        variant = self.variant(circular)
        parts, stats = breakdown(self.name, correct, labels, variant)
        stats.update({self.name: np.asarray(correct), "mc_unparseable": np.asarray(unparsed)})
        n = len(correct)
        values = [MetricValue(self.name, left_to_right_mean(correct), variant, extra={"n": n}), *parts,
                  MetricValue("mc_unparseable_rate", left_to_right_mean(unparsed), variant + "; share of questions "
                              "with a pass whose letter could not be read (counted wrong)", higher_is_better=False)]
        if circular:
            stats["mc_first_pass_correct"] = np.asarray(first)
            values.append(MetricValue("mc_accuracy_first_pass", left_to_right_mean(first),
                                      f"the first pass only (the options in their original order); {variant}"))
        if self.options.rule in self.ANSWERED_DENOMINATOR:
            stats["mc_answered"] = 1.0 - np.asarray(unparsed)
            answered = answered_accuracy(stats)
            values += [MetricValue(k, v, variant + "; over the questions whose letter was read (the official "
                                   "scorer's denominator)", extra={"n": int(stats["mc_answered"].sum())})
                       for k, v in answered.items()]
        notes = [f"{self.name}: no breakdown by {f!r} (some items lack it)" for f in missing]
        counts = {h: sum(x.count(h) for x in hows) for h in ("judge", "random")}
        notes += [f"{self.name}: {c} pass(es) read by the judge" if h == "judge" else
                  f"{self.name}: {c} pass(es) got the rule's random letter (no letter found)"
                  for h, c in counts.items() if c]
        return MetricReport(values, stats, {self.name: correct, "choice": letters, "read_by": hows}, notes)

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        out = aggregate_mean(cls.name, stats)
        if "mc_unparseable" in stats:
            out["mc_unparseable_rate"] = left_to_right_mean(stats["mc_unparseable"])
        if "mc_first_pass_correct" in stats:
            out["mc_accuracy_first_pass"] = left_to_right_mean(stats["mc_first_pass_correct"])
        if "mc_answered" in stats:
            out |= answered_accuracy(stats)
        return out


def answered_accuracy(stats: ItemStats) -> dict[str, float]:
    """``mc_accuracy_answered`` and its breakdowns: right answers over the questions whose letter was read (NaN
    where none was), from any subset's statistics."""
    correct = np.asarray(stats[MultipleChoiceAccuracy.name], dtype=np.float64)
    answered = np.asarray(stats["mc_answered"], dtype=bool)

    def mean(mask: np.ndarray) -> float:
        return left_to_right_mean(correct[mask]) if mask.any() else float("nan")

    out = {"mc_accuracy_answered": mean(answered)}
    prefix = f"{MultipleChoiceAccuracy.name}{BY_PREFIX}"
    for key in stats:
        if key.startswith(prefix):
            fld, labels = key[len(prefix):], np.asarray(stats[key])
            for lab in dict.fromkeys(labels.tolist()):
                out[f"mc_accuracy_answered[{fld}={lab}]"] = mean(answered & (labels == lab))
    return out


@dataclass(frozen=True)
class MMMUOptions:
    by: tuple[str, ...] = ("discipline", "subject")


class MMMUAccuracy(Metric):
    """MMMU accuracy: multiple-choice questions read by MMMU's parser, open ones by its open-answer rules;
    means over questions, per discipline and per subject."""

    name: ClassVar[str] = "mmmu_accuracy"
    headline: ClassVar[tuple[str, ...]] = ("mmmu_accuracy",)
    inputs: ClassVar[str] = CHOICES
    description: ClassVar[str] = "MMMU accuracy (official eval_utils rules for multiple-choice and open answers)"
    Options: ClassVar[type] = MMMUOptions
    VARIANT: ClassVar[str] = ("MMMU eval_utils: multiple choice by parse_multi_choice_response (random letter when "
                              "none is found, seeded by (42, item id)), open answers by parse_open_response + "
                              "eval_open; micro means")

    def score(self, predictions: list, targets: list) -> MetricReport:
        correct, parsed = [], []
        n_random = 0
        for i, (pred, target) in enumerate(zip(predictions, targets)):
            passes = _passes(target, i, self.name)
            answer = _pass_answers(pred, len(passes), i, self.name)[0]
            if passes[0].get("options"):
                read = choice.read_mmmu(answer["text"], passes[0]["options"], str(target.get("id", i)))
                n_random += read.how == "random"
                parsed.append(read.letter)
                correct.append(float(read.letter == passes[0]["answer"]))
            else:  # an open question: the reference answer(s) in `answer`
                parsed.append(mmmu.parse_open(answer["text"]))
                correct.append(float(mmmu.open_correct(passes[0]["answer"], answer["text"])))
        targets = [{**t, "subject": t.get("subject") or mmmu.subject_of(t.get("id", "")),
                    "discipline": t.get("discipline") or mmmu.DISCIPLINE_OF.get(
                        t.get("subject") or mmmu.subject_of(t.get("id", "")))} for t in targets]
        labels, missing = group_labels(targets, self.options.by)
        parts, stats = breakdown(self.name, correct, labels, self.VARIANT)
        stats[self.name] = np.asarray(correct)
        notes = [f"{self.name}: no breakdown by {f!r} (some items lack it)" for f in missing]
        if n_random:
            notes.append(f"{self.name}: {n_random} multiple-choice answer(s) named no option and got MMMU's random "
                         f"letter")
        values = [MetricValue(self.name, left_to_right_mean(correct), self.VARIANT, extra={"n": len(correct)}),
                  *parts]
        return MetricReport(values, stats, {self.name: correct, "parsed": parsed}, notes)

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        return aggregate_mean(cls.name, stats)


# -- yes/no ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class POPEOptions:
    by: tuple[str, ...] = ("category",)  # POPE's negative sampling: random / popular / adversarial


class POPE(Metric):
    """POPE's accuracy, precision, recall, F1 and yes-ratio (yes positive), per category and their
    unweighted mean over categories (the number LLaVA-1.5 reports as POPE)."""

    name: ClassVar[str] = "pope"
    values: ClassVar[tuple[str, ...]] = ("pope_f1", "pope_accuracy", "pope_precision", "pope_recall", "pope_yes_ratio")
    headline: ClassVar[tuple[str, ...]] = ("pope_f1[mean over category]", "pope_f1")
    inputs: ClassVar[str] = ANSWERS
    description: ClassVar[str] = "POPE accuracy/precision/recall/F1/yes-ratio (official evaluate.py answer rules)"
    Options: ClassVar[type] = POPEOptions
    VARIANT: ClassVar[str] = ("POPE evaluate.py: first sentence, commas removed, split on spaces; 'No'/'not'/'no' "
                              "means no, else yes; yes is positive")

    def score(self, predictions: list, targets: list) -> MetricReport:
        said, gold = [], []
        for i, (pred, t) in enumerate(zip(predictions, targets)):
            if not isinstance(pred, str):
                raise MMBenchError(f"metric 'pope': prediction {i} is {type(pred).__name__}, not text")
            label = t.get("label", (t.get("answers") or [None])[0]) if isinstance(t, Mapping) else None
            said.append(float(yesno.pope_says_yes(pred)))
            gold.append(yesno.pope_label(label, f"item {i}"))
        labels, missing = group_labels(targets, self.options.by)
        stats = {"pope/said_yes": np.asarray(said), "pope/gold_yes": np.asarray(gold),
                 **{f"pope{BY_PREFIX}{f}": np.asarray(v) for f, v in labels.items()}}
        values = [MetricValue(k, v, self.VARIANT + ("; share of answers read as yes: half of POPE's questions are "
                                                    "yes, so 0.5 is unbiased" if "yes_ratio" in k else ""),
                              higher_is_better="yes_ratio" not in k, extra={"n": len(said)})
                  for k, v in self.aggregate(stats).items()]
        notes = [f"pope: no breakdown by {f!r} (some items lack it)" for f in missing]
        return MetricReport(values, stats, {"said_yes": [bool(x) for x in said]}, notes)

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        if "pope/said_yes" not in stats:
            return {}
        said, gold = np.asarray(stats["pope/said_yes"]), np.asarray(stats["pope/gold_yes"])
        out = yesno.pope_scores(said, gold)
        for key in stats:
            if not key.startswith(f"pope{BY_PREFIX}"):
                continue
            fld, labels = key[len(f"pope{BY_PREFIX}"):], np.asarray(stats[key])
            groups = list(dict.fromkeys(labels.tolist()))
            per = {g: yesno.pope_scores(said[labels == g], gold[labels == g]) for g in groups}
            for g, scores in per.items():
                out.update({f"{k}[{fld}={g}]": v for k, v in scores.items()})
            if len(groups) > 1:
                for k in out.copy():
                    if "[" not in k:
                        out[f"{k}[mean over {fld}]"] = float(sum(per[g][k] for g in groups)) / len(groups)
        return out


@dataclass(frozen=True)
class MMEOptions:
    subtask_field: str = "category"  # the item field naming its MME subtask
    image_field: str = "image_id"  # the item field the two questions of an image share


class MME(Metric):
    """MME's per-subtask acc, acc+ and score (100 * (acc + acc+)) and the perception and cognition totals."""

    name: ClassVar[str] = "mme"
    values: ClassVar[tuple[str, ...]] = ("mme_perception", "mme_cognition", "mme_score", "mme_acc", "mme_acc_plus")
    inputs: ClassVar[str] = ANSWERS
    description: ClassVar[str] = "MME perception/cognition scores (the eval tool's calculation.py rules)"
    Options: ClassVar[type] = MMEOptions
    VARIANT: ClassVar[str] = ("MME calculation.py: 'yes'/'no', else 'yes' then 'no' within the first 4 characters, "
                              "else wrong; score = 100*(acc + acc+) per subtask, summed")

    def score(self, predictions: list, targets: list) -> MetricReport:
        correct, subtasks, images = [], [], []
        for i, (pred, t) in enumerate(zip(predictions, targets)):
            if not isinstance(pred, str):
                raise MMBenchError(f"metric 'mme': prediction {i} is {type(pred).__name__}, not text")
            gold = str((t.get("answers") or [""])[0]).strip().lower()
            if gold not in ("yes", "no"):
                raise MMBenchError(f"metric 'mme': item {i} has reference {gold!r}; MME answers are yes or no")
            correct.append(float(yesno.mme_reading(pred) == gold))
            subtasks.append(yesno.mme_subtask(t.get(self.options.subtask_field), f"metric 'mme': item {i}"))
            if t.get(self.options.image_field) is None:
                raise MMBenchError(f"metric 'mme': item {i} has no {self.options.image_field!r} (the image its two "
                                   f"questions share, for acc+)")
            images.append(f"{subtasks[-1]}/{t[self.options.image_field]}")
        stats = {"mme/correct": np.asarray(correct), "mme/subtask": np.asarray(subtasks),
                 "mme/image": np.asarray(images)}
        values = [MetricValue(k, v, self.VARIANT, extra={"n": len(correct)}) for k, v in self.aggregate(stats).items()]
        absent = [s for s in yesno.MME_SUBTASKS if s not in set(subtasks)]
        notes = [f"mme: no questions of {', '.join(absent)}; the totals leave them out"] if absent else []
        return MetricReport(values, stats, {"mme_reading": [yesno.mme_reading(p) for p in predictions]}, notes)

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        if "mme/correct" not in stats:
            return {}
        return yesno.mme_scores(stats["mme/correct"], [str(s) for s in stats["mme/subtask"]],
                                [str(s) for s in stats["mme/image"]])
