"""Image-text retrieval with a dual encoder (COCO / Flickr30k style: each image has several captions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mmbench.capabilities import Capability
from mmbench.data.images import load_image
from mmbench.errors import MMBenchError
from mmbench.metrics.api import EMBEDDINGS
from mmbench.tasks.base import Batch, ScoreReport, Task, decode_each


@dataclass(frozen=True)
class RetrievalConfig:
    captions_per_image: int | None = None  # keep the first N captions of each image (None: all)


class ImageTextRetrieval(Task):
    kind: ClassVar[str] = "retrieval"
    requires: ClassVar[Capability] = Capability.EMBED
    Config: ClassVar[type] = RetrievalConfig
    default_batch_size: ClassVar[int] = 64
    input_bound: ClassVar[bool] = True  # image decoding and resizing cost as much as a small encoder
    metric_inputs: ClassVar[str] = EMBEDDINGS
    default_metrics: ClassVar[tuple] = ("recall_at_k",)

    def captions(self, item: dict) -> list[str]:
        caps = item.get("captions")
        if not caps:
            raise MMBenchError(f"task {self.name!r}: item {item['id']!r} has no captions; retrieval needs "
                               f"`captions` for every image")
        n = self.config.captions_per_image
        return list(caps[:n] if n else caps)

    def output_config(self) -> dict:
        return {"captions_per_image": self.config.captions_per_image}

    def prepare(self, model: Any, items: list[dict]) -> Batch:
        ok, images, failed = decode_each(items, lambda it: load_image(it.get("image")))
        payload = (model.preprocess_images(images) if images else None, [self.captions(it) for it in ok])
        return Batch(ok, payload, failed)

    def predict(self, model: Any, batch: Batch) -> list[dict]:
        pixels, captions = batch.payload
        img = model.embed_images(pixels)
        flat = [c for caps in captions for c in caps]
        txt = model.embed_texts(flat)
        cut = model.truncated(flat)
        out, start = [], 0
        for i, caps in enumerate(captions):
            out.append({"image_embedding": img[i].astype(np.float32),
                        "text_embeddings": txt[start:start + len(caps)].astype(np.float32),
                        "events": ["text_truncated"] * sum(cut[start:start + len(caps)])})
            start += len(caps)
        return out

    def score(self, items: list[dict], outputs: list[dict | None]) -> ScoreReport:
        if all(o is None for o in outputs):
            raise MMBenchError(f"task {self.name!r}: every item failed; nothing to score")
        reports = self.run_metrics(outputs, items)
        kept = reports[0].kept if reports[0].kept is not None else list(range(len(items)))
        samples = {}
        for j, i in enumerate(kept):
            samples[items[i]["id"]] = {"captions": self.captions(items[i]),
                                       **{k: v[j] for r in reports for k, v in r.per_item.items()}}
        images = np.stack([outputs[i]["image_embedding"] for i in kept])
        texts = np.concatenate([outputs[i]["text_embeddings"] for i in kept])
        t2i = np.concatenate([np.full(len(outputs[i]["text_embeddings"]), j) for j, i in enumerate(kept)])
        return ScoreReport(metrics=[v for r in reports for v in r.values], item_ids=[items[i]["id"] for i in kept],
                           stats={k: v for r in reports for k, v in r.stats.items()}, aggregator=self.aggregator,
                           notes=[n for r in reports for n in r.notes], samples=samples,
                           artifacts={"image_embeddings.npy": images, "text_embeddings.npy": texts,
                                      "text_image_index.json": t2i.tolist()})
