"""Image captioning: one caption per image, scored by the task's metrics (by default the COCO caption
evaluation: PTB tokenisation, BLEU, METEOR, ROUGE-L, CIDEr-D; SPICE when its jars are present, otherwise
reported as unavailable with the reason). A test split without references lists ``metrics: []`` and
``submission: coco``: the run writes the ``[{"image_id", "caption"}]`` file evaluation servers take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.metrics.api import CAPTIONS
from mmbench.tasks.base import ScoreReport
from mmbench.tasks.generative import GenerativeConfig, GenerativeTask, image_tokens_of
from mmbench.tasks.video_input import video_record_of


@dataclass(frozen=True)
class CaptioningConfig(GenerativeConfig):
    prompt: str = "Provide a one-sentence caption for the provided image."
    max_new_tokens: int = 32


class ImageCaptioning(GenerativeTask):
    kind: ClassVar[str] = "captioning"
    Config: ClassVar[type] = CaptioningConfig
    metric_inputs: ClassVar[str] = CAPTIONS
    default_metrics: ClassVar[tuple] = ("coco_captions",)
    submission_formats: ClassVar[tuple[str, ...]] = ("coco",)

    def check_items(self, items: list[dict]) -> None:
        if not self.metrics:
            return
        for it in items:
            caps = it.get("captions")
            if isinstance(caps, str) or not isinstance(caps, (list, tuple)) or not caps or \
                    not all(isinstance(c, str) for c in caps):
                raise MMBenchError(f"task {self.name!r}: item {it['id']!r} has captions {str(caps)[:60]!r}; "
                                   f"reference captions are a non-empty list of strings")

    def score(self, items: list[dict], outputs: list[dict | None]) -> ScoreReport:
        # A failed item (unreadable image) and an empty generation are both scored as an empty caption.
        preds = ["" if o is None else self.extract(o["generation"]) for o in outputs]
        n_empty = sum(1 for p, o in zip(preds, outputs) if o is not None and not p.strip())
        targets = []
        for it in items:
            if self.metrics and not it.get("captions"):
                raise MMBenchError(f"task {self.name!r}: image {it['id']!r} has no reference captions")
            targets.append({**it, "captions": list(it.get("captions") or [])})
        reports = self.run_metrics(preds, targets, resources=self.run.resources) if self.metrics else []
        notes = [n for r in reports for n in r.notes]
        if n_empty:
            notes.append(f"{n_empty} empty generation(s) scored as empty captions")
        if not reports:
            notes.append("no reference captions: the captions are written to the submission file (artifacts); "
                         "no score here")
        samples = {}
        for i, (it, o) in enumerate(zip(items, outputs)):
            sample = {"prompt_sent": None if o is None else o["prompt_sent"],
                      "generation": None if o is None else o["generation"], "caption": preds[i],
                      "references": targets[i]["captions"], **image_tokens_of(o),
                      **video_record_of(o)}
            for r in reports:
                sample.update({k: v[i] for k, v in r.per_item.items()})
            samples[it["id"]] = sample
        return ScoreReport(metrics=[v for r in reports for v in r.values], item_ids=[it["id"] for it in items],
                           stats={k: np.asarray(v) for r in reports for k, v in r.stats.items()},
                           aggregator=self.aggregator, notes=notes, samples=samples,
                           artifacts=self.artifacts(items, preds, targets))

    def artifacts(self, items: list[dict], preds: list[str], targets: list[dict]) -> dict:
        """COCO results and annotations files: ``mmbench score captions`` reproduces the run from them; with
        ``submission: coco`` the results file uses the items' own image ids, as servers expect."""
        if self.config.submission == "coco":
            return {"submission.json": [{"image_id": it.get("image_id", it["id"]), "caption": p}
                                        for it, p in zip(items, preds)]}
        ids = [it["id"] for it in items]
        refs = [(i, c) for i, t in zip(ids, targets) for c in t["captions"]]
        return {"predictions.json": [{"image_id": i, "caption": p} for i, p in zip(ids, preds)],
                "references.json": {"images": [{"id": i, **({"domain": t["domain"]} if t.get("domain") else {})}
                                               for i, t in zip(ids, targets)],
                                    "annotations": [{"image_id": i, "id": k, "caption": c}
                                                    for k, (i, c) in enumerate(refs)]}}
