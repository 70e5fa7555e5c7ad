"""Visual question answering: open-ended (VQAv2 accuracy, exact match, ANLS) and multiple choice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.metrics import vqa as metric
from mmbench.tasks.base import ScoreReport
from mmbench.tasks.generative import GenerativeConfig, GenerativeTask

METRICS = ("vqa", "exact_match", "anls", "multiple_choice")


@dataclass(frozen=True)
class VQAConfig(GenerativeConfig):
    prompt: str = "{question}\nAnswer the question using a single word or phrase."
    max_new_tokens: int = 16
    metric: str = "vqa"  # vqa | exact_match | anls | multiple_choice
    exact_match_normalization: str = "punct"  # strip | punct | vqa (see mmbench.metrics.vqa)
    anls_threshold: float = 0.5
    # multiple choice: how options appear in the prompt ({options} in the template)
    option_format: str = "{letter}. {option}"


class VisualQuestionAnswering(GenerativeTask):
    kind: ClassVar[str] = "vqa"
    Config: ClassVar[type] = VQAConfig

    def __init__(self, spec, ctx) -> None:
        super().__init__(spec, ctx)
        if self.config.metric not in METRICS:
            raise MMBenchError(f"task {self.name!r}: metric {self.config.metric!r} is not one of {', '.join(METRICS)}")

    def prompt_fields(self, item: dict) -> dict:
        fields = super().prompt_fields(item)
        if "options" in item:
            fields["options"] = "\n".join(self.config.option_format.format(letter=metric.LETTERS[i], option=o)
                                          for i, o in enumerate(item["options"]))
        return fields

    def references(self, item: dict) -> list[str]:
        answers = item.get("answers")
        if not answers:
            raise MMBenchError(f"task {self.name!r}: question {item['id']!r} has no reference answers")
        return [a["answer"] if isinstance(a, dict) else str(a) for a in answers]

    def score(self, items: list[dict], outputs: list[dict | None]) -> ScoreReport:
        # A failed item (image unreadable) and an empty generation both score as a wrong answer.
        raw = ["" if o is None else o["generation"] for o in outputs]
        answers = [self.extract(t) for t in raw]
        n_empty = sum(1 for o, a in zip(outputs, answers) if o is not None and not a.strip())
        kind = self.config.metric
        notes = [f"{n_empty} empty generation(s) scored as wrong answers"] if n_empty else []
        per_item: list[float]
        if kind == "multiple_choice":
            for it in items:
                if "options" not in it or "answer" not in it:
                    raise MMBenchError(f"task {self.name!r}: multiple-choice item {it['id']!r} needs `options` and "
                                       f"`answer` (a letter or an option index)")
            gold = [metric.LETTERS[it["answer"]] if isinstance(it["answer"], int) else str(it["answer"])
                    for it in items]
            res = metric.mc_accuracy(answers, [it["options"] for it in items], gold)
            metrics = [res.accuracy, res.unparseable_rate]
            stats, per_item = dict(res.stats), list(res.stats["mc_correct"])
            extracted = res.choices
        elif kind == "vqa":
            refs = [self.references(it) for it in items]
            types = [it.get("answer_type") for it in items]
            qtypes = [it.get("question_type") for it in items]
            res = metric.vqa_accuracy(answers, refs, None if None in types else types,
                                      None if None in qtypes else qtypes)
            metrics = [res.accuracy, *res.per_answer_type.values(), *res.per_question_type.values()]
            stats, per_item = dict(res.stats), list(res.stats["vqa_accuracy"])
            extracted = res.normalized_predictions
        else:
            refs = [self.references(it) for it in items]
            res = metric.exact_match(answers, refs, self.config.exact_match_normalization) if kind == "exact_match" \
                else metric.anls(answers, refs, self.config.anls_threshold)
            metrics, stats = [res.value], dict(res.stats)
            per_item = list(next(iter(res.stats.values())))
            extracted = answers
        samples = {}
        for i, (it, out) in enumerate(zip(items, outputs)):
            samples[it["id"]] = {"question": it.get("question"), "prompt_sent": None if out is None else out["prompt_sent"],
                                 "generation": None if out is None else out["generation"],
                                 "answer": extracted[i], "references": it.get("answers") if kind != "multiple_choice"
                                 else it.get("answer"), "score": float(per_item[i])}
        return ScoreReport(metrics=metrics, item_ids=[it["id"] for it in items],
                           stats={k: np.asarray(v) for k, v in stats.items()}, aggregator="vqa", notes=notes,
                           samples=samples,
                           artifacts=self.artifacts(items, answers))

    def artifacts(self, items: list[dict], answers: list[str]) -> dict:
        """The run's answers in the VQAv2 results format, and its references in the annotations format, so
        ``mmbench score vqa --predictions predictions.json --references annotations.json`` reproduces it."""
        if self.config.metric != "vqa":
            return {}
        preds = [{"question_id": it["id"], "answer": a} for it, a in zip(items, answers)]
        anns = [{"question_id": it["id"], "answers": [{"answer": r} for r in self.references(it)],
                 **{k: it[k] for k in ("answer_type", "question_type") if it.get(k) is not None}} for it in items]
        return {"predictions.json": preds, "annotations.json": {"annotations": anns}}
