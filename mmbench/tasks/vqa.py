"""Visual question answering: send image + question, read back an answer, score it with the task's metrics.

The kind prepares prompts (the question, optional OCR tokens or lettered options) and reads answers; which
numbers come out is the task file's ``metrics:`` list (``vqa_accuracy``, ``exact_match``, ``anls``,
``relaxed_accuracy``, ``gqa_accuracy``, ``pope``, ``mme``; see mmbench.metrics.answer_metrics and
choice_metrics; multiple-choice benchmarks have their own kind, mmbench.tasks.multiple_choice). A test split
without reference answers lists ``metrics: []`` and names a ``submission:`` format: the run then writes the
file the benchmark's evaluation server takes and reports no score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.metrics.api import ANSWERS
from mmbench.tasks.base import ScoreReport, template_fields
from mmbench.tasks.generative import GenerativeConfig, GenerativeTask, image_tokens_of
from mmbench.tasks.video_input import video_record_of

# Submission files of evaluation servers: format -> (id key, answer key, how the id is written).
SUBMISSIONS = {
    "vqav2": ("question_id", "answer"),  # EvalAI VQAv2 / TextVQA / OK-VQA: [{"question_id": int, "answer"}]
    "vizwiz": ("image", "answer"),  # EvalAI VizWiz: [{"image": "VizWiz_test_00000000.jpg", "answer"}]
    "docvqa": ("questionId", "answer"),  # RRC DocVQA / InfographicVQA: [{"questionId": int, "answer"}]
    "gqa": ("questionId", "prediction"),  # GQA eval.py predictions: [{"questionId": str, "prediction"}]
}


@dataclass(frozen=True)
class VQAConfig(GenerativeConfig):
    prompt: str = "{question}\nAnswer the question using a single word or phrase."
    max_new_tokens: int = 16
    # {ocr} in the template: the item's OCR tokens joined by ", " (TextVQA's LLaVA-1.5 protocol)
    ocr_format: str = "Reference OCR token: {tokens}"


class VisualQuestionAnswering(GenerativeTask):
    kind: ClassVar[str] = "vqa"
    Config: ClassVar[type] = VQAConfig
    metric_inputs: ClassVar[str] = ANSWERS
    default_metrics: ClassVar[tuple] = ("vqa_accuracy",)
    submission_formats: ClassVar[tuple[str, ...]] = tuple(SUBMISSIONS)

    def __init__(self, spec, ctx) -> None:
        super().__init__(spec, ctx)
        unknown = set(template_fields(self.name, self.config.ocr_format, "ocr_format")) - {"tokens"}
        if unknown:
            raise MMBenchError(f"task {self.name!r}: ocr_format {self.config.ocr_format!r} uses "
                               f"{{{sorted(unknown)[0]}}}; it can use {{tokens}}")

    def prompt_fields(self, item: dict) -> dict:
        fields = super().prompt_fields(item)
        if isinstance(item.get("ocr_tokens"), (list, tuple)):
            fields["ocr"] = self.config.ocr_format.format(tokens=", ".join(str(t) for t in item["ocr_tokens"]))
        return fields

    def check_items(self, items: list[dict]) -> None:
        if not self.metrics:
            return
        for it in items:
            answers = it.get("answers")
            if isinstance(answers, str) or not isinstance(answers, (list, tuple)) or not answers or not all(
                    isinstance(a, str) or (isinstance(a, dict) and isinstance(a.get("answer"), str)) for a in answers):
                raise MMBenchError(f"task {self.name!r}: item {it['id']!r} has answers {str(answers)[:60]!r}; "
                                   f"reference answers are a non-empty list of strings (or of {{\"answer\": ...}})")

    def target(self, item: dict) -> dict:
        """What the metrics compare an answer with: the item, its reference answers as strings."""
        answers = item.get("answers")
        if isinstance(answers, (list, tuple)):
            answers = [a["answer"] if isinstance(a, dict) else a for a in answers]
        return {**item, "answers": answers}

    def score(self, items: list[dict], outputs: list[dict | None]) -> ScoreReport:
        # A failed item (image unreadable) and an empty generation both score as a wrong answer.
        raw = ["" if o is None else o["generation"] for o in outputs]
        answers = [self.extract(t) for t in raw]
        n_empty = sum(1 for o, a in zip(outputs, answers) if o is not None and not a.strip())
        notes = [f"{n_empty} empty generation(s) scored as wrong answers"] if n_empty else []
        reports = self.run_metrics(answers, [self.target(it) for it in items]) if self.metrics else []
        samples = {}
        for i, (it, out) in enumerate(zip(items, outputs)):
            sample = {"question": it.get("question"), "prompt_sent": None if out is None else out["prompt_sent"],
                      "generation": None if out is None else out["generation"], "answer": answers[i],
                      "references": it.get("answers"), **image_tokens_of(out),
                      **video_record_of(out)}
            for r in reports:
                sample.update({k: v[i] for k, v in r.per_item.items()})
            if reports:
                sample["score"] = float(reports[0].stats[self.metrics[0].name if self.metrics[0].name in
                                                         reports[0].stats else next(iter(reports[0].stats))][i])
            samples[it["id"]] = sample
        if not reports:
            notes.append(f"no reference answers: the answers are written to the {self.config.submission} "
                         f"submission file (artifacts) for the benchmark's evaluation server; no score here")
        stats = {k: np.asarray(v) for r in reports for k, v in r.stats.items()}
        return ScoreReport(metrics=[v for r in reports for v in r.values], item_ids=[it["id"] for it in items],
                           stats=stats, aggregator=self.aggregator, notes=notes + [n for r in reports for n in r.notes],
                           samples=samples, artifacts=self.artifacts(items, answers))

    def artifacts(self, items: list[dict], answers: list[str]) -> dict:
        """The answers in the VQAv2 results format and the references in its annotations format, so ``mmbench
        score vqa --predictions predictions.json --references annotations.json`` reproduces the run; and the
        evaluation server's file when the task names a submission format."""
        out = {}
        if self.config.submission:
            id_key, answer_key = SUBMISSIONS[self.config.submission]
            rows = [{id_key: it.get("question_id", it["id"]), answer_key: a} for it, a in zip(items, answers)]
            # VQAv2 test-dev: the server takes every test2015 question; the others get an empty answer
            done = {r[id_key] for r in rows}
            rows += [{id_key: q, answer_key: ""} for q in self.data.meta.get("submission_ids", ()) if q not in done]
            out["submission.json"] = rows
        if not self.metrics:
            return out
        out["predictions.json"] = [{"question_id": it["id"], "answer": a} for it, a in zip(items, answers)]
        fields = ("answer_type", "question_type", "answerable", "split", "domain", "answer_kind", "category",
                  "image_id")
        out["annotations.json"] = {"annotations": [
            {"question_id": it["id"], "answers": [{"answer": r} for r in self.target(it)["answers"]],
             **{k: it[k] for k in fields if it.get(k) is not None}} for it in items],
            # what `mmbench score vqa` rescores with when no --metric is given: the task's metrics
            "mmbench_metrics": [m.describe() for m in self.metrics]}
        return out
