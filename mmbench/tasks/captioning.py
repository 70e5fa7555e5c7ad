"""Image captioning scored with the COCO caption evaluation (PTB tokenisation, BLEU, METEOR, ROUGE-L,
CIDEr-D; SPICE when its jars are present, otherwise reported as unavailable with the reason)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.tasks.base import ScoreReport
from mmbench.tasks.generative import GenerativeConfig, GenerativeTask

SCORER_KEY = "caption-scorer"


@dataclass(frozen=True)
class CaptioningConfig(GenerativeConfig):
    prompt: str = "Provide a one-sentence caption for the provided image."
    max_new_tokens: int = 32
    spice: str = "auto"  # auto: when the CoreNLP jars are present; "off": never


class ImageCaptioning(GenerativeTask):
    kind: ClassVar[str] = "captioning"
    Config: ClassVar[type] = CaptioningConfig

    def scorer(self):
        """One CaptionScorer (and so one METEOR Java process) per run, shared by every captioning task."""
        from mmbench.metrics.captions import CaptionScorer

        if SCORER_KEY not in self.shared:
            self.shared[SCORER_KEY] = CaptionScorer(spice=None if self.config.spice == "auto" else False)
        return self.shared[SCORER_KEY]

    def score(self, items: list[dict], outputs: list[dict | None]) -> ScoreReport:
        refs = {}
        for it in items:
            if not it.get("captions"):
                raise MMBenchError(f"task {self.name!r}: image {it['id']!r} has no reference captions")
            refs[it["id"]] = list(it["captions"])
        # A failed item (unreadable image) and an empty generation are both scored as an empty caption.
        preds = {it["id"]: "" if o is None else self.extract(o["generation"]) for it, o in zip(items, outputs)}
        n_empty = sum(1 for it, o in zip(items, outputs) if o is not None and not preds[it["id"]].strip())
        result = self.scorer().score(preds, refs, is_subset=self.is_subset)
        notes = list(result.notes)
        if n_empty:
            notes.append(f"{n_empty} empty generation(s) scored as empty captions")
        cider = np.asarray(result.stats["CIDEr-D"])
        samples = {it["id"]: {"prompt_sent": None if o is None else o["prompt_sent"],
                              "generation": None if o is None else o["generation"], "caption": preds[it["id"]],
                              "references": refs[it["id"]], "cider_d": float(cider[i])}
                   for i, (it, o) in enumerate(zip(items, outputs))}
        return ScoreReport(metrics=list(result.values), item_ids=[it["id"] for it in items],
                           stats={k: np.asarray(v) for k, v in result.stats.items()}, aggregator="captions",
                           notes=notes, samples=samples, artifacts=self.artifacts(items, preds, refs))

    @staticmethod
    def artifacts(items: list[dict], preds: dict, refs: dict) -> dict:
        """COCO results and annotations files: ``mmbench score captions`` reproduces the run from them."""
        ids = {it["id"]: n for n, it in enumerate(items)}
        return {"predictions.json": [{"image_id": i, "caption": preds[i]} for i in ids],
                "references.json": {"images": [{"id": i} for i in ids],
                                    "annotations": [{"image_id": i, "id": k, "caption": c}
                                                    for k, (i, c) in enumerate((i, c) for i in ids for c in refs[i])]}}
