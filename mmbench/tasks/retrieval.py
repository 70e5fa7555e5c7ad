"""Image-text retrieval with a dual encoder (COCO / Flickr30k style: each image has several captions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mmbench.capabilities import Capability
from mmbench.data.images import load_image
from mmbench.errors import MMBenchError
from mmbench.metrics import retrieval as metric
from mmbench.tasks.base import Batch, ScoreReport, Task, decode_each


@dataclass(frozen=True)
class RetrievalConfig:
    ks: tuple[int, ...] = metric.DEFAULT_KS
    captions_per_image: int | None = None  # keep the first N captions of each image (None: all)


class ImageTextRetrieval(Task):
    kind: ClassVar[str] = "retrieval"
    requires: ClassVar[Capability] = Capability.EMBED
    Config: ClassVar[type] = RetrievalConfig
    default_batch_size: ClassVar[int] = 64

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
        ok, images, failed = decode_each(items, lambda it: load_image(it["image"]))
        payload = (model.preprocess_images(images) if images else None, [self.captions(it) for it in ok])
        return Batch(ok, payload, failed)

    def predict(self, model: Any, batch: Batch) -> list[dict]:
        pixels, captions = batch.payload
        img = model.embed_images(pixels)
        flat = [c for caps in captions for c in caps]
        txt = model.embed_texts(flat)
        out, start = [], 0
        for i, caps in enumerate(captions):
            out.append({"image_embedding": img[i].astype(np.float32),
                        "text_embeddings": txt[start:start + len(caps)].astype(np.float32)})
            start += len(caps)
        return out

    def score(self, items: list[dict], outputs: list[dict | None]) -> ScoreReport:
        kept = [i for i, o in enumerate(outputs) if o is not None]
        if not kept:
            raise MMBenchError(f"task {self.name!r}: every item failed; nothing to score")
        images = np.stack([outputs[i]["image_embedding"] for i in kept])
        texts = np.concatenate([outputs[i]["text_embeddings"] for i in kept])
        t2i = np.concatenate([np.full(len(outputs[i]["text_embeddings"]), j) for j, i in enumerate(kept)])
        n_failed = len(items) - len(kept)
        variant = "failed images and their captions are left out of the gallery" if n_failed else ""
        metrics, extra = metric.score(images, texts, t2i, self.config.ks, variant)
        notes = [f"{n_failed} image(s) failed to decode and were left out of the gallery"] if n_failed else []
        t2i_rank = extra["t2i_rank"]
        samples, start = {}, 0
        for j, i in enumerate(kept):
            n = len(outputs[i]["text_embeddings"])
            samples[items[i]["id"]] = {"captions": self.captions(items[i]),
                                       "image_to_text_best_rank": int(extra["i2t_rank"][j]),
                                       "text_to_image_ranks": t2i_rank[start:start + n].tolist()}
            start += n
        return ScoreReport(metrics=metrics, item_ids=[items[i]["id"] for i in kept], stats=extra["stats"],
                           aggregator="retrieval", notes=notes, samples=samples,
                           artifacts={"image_embeddings.npy": images, "text_embeddings.npy": texts,
                                      "text_image_index.json": t2i.tolist()})
