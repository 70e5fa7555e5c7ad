"""Video task kinds: open-ended video question answering and video-text retrieval with a dual encoder.

``video-qa``: the VQA kind over items with a ``video`` (a file path) instead of an image: its frames are
sampled and sent natively or as images (mmbench/tasks/video_input.py; the task file's ``video:`` settings),
the answers scored by the task's named metrics (default ``exact_match``: MSVD-QA, MSRVTT-QA and
ActivityNet-QA report top-1 accuracy of the single reference answer). Multiple-choice video benchmarks
(NExT-QA, MVBench, Video-MME) use the ``multiple-choice`` kind, whose items may carry a ``video`` too.

``video-retrieval``: each video's embedding is the mean of its frames' L2-normalised image embeddings (CLIP4Clip's
zero-shot "meanP" baseline), then text->video and video->text recall@k exactly as image-text retrieval
(``recall_at_k``'s t2i/i2t values read text->video and video->text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.tasks.base import Batch, ScoreReport, decode_each
from mmbench.tasks.retrieval import ImageTextRetrieval, RetrievalConfig
from mmbench.tasks.video_input import VideoSettings, load_item_video
from mmbench.tasks.vqa import VisualQuestionAnswering, VQAConfig


def check_videos(task_name: str, items: list[dict]) -> None:
    missing = next((it["id"] for it in items if not it.get("video")), None)
    if missing is not None:
        raise MMBenchError(f"task {task_name!r}: item {missing!r} has no `video`; a video task's items name their "
                           f"video file")


@dataclass(frozen=True)
class VideoQAConfig(VQAConfig):
    max_new_tokens: int = 16


class VideoQuestionAnswering(VisualQuestionAnswering):
    kind: ClassVar[str] = "video-qa"
    Config: ClassVar[type] = VideoQAConfig
    default_metrics: ClassVar[tuple] = ("exact_match",)
    default_batch_size: ClassVar[int] = 4
    submission_formats: ClassVar[tuple[str, ...]] = ()

    def check_items(self, items: list[dict]) -> None:
        check_videos(self.name, items)
        super().check_items(items)


@dataclass(frozen=True)
class VideoRetrievalConfig(RetrievalConfig):
    video: Mapping[str, Any] | None = None  # frames / fps / max_frames (how the frames are sampled)


class VideoTextRetrieval(ImageTextRetrieval):
    kind: ClassVar[str] = "video-retrieval"
    Config: ClassVar[type] = VideoRetrievalConfig
    default_batch_size: ClassVar[int] = 8  # videos (x frames each)
    POOLING: ClassVar[str] = ("video embedding = mean of the frames' L2-normalised image embeddings (CLIP4Clip "
                              "zero-shot mean pooling); t2i/i2t read text->video and video->text")

    def __init__(self, spec, ctx) -> None:
        super().__init__(spec, ctx)
        self.video = VideoSettings.parse(self.config.video, f"task {self.name!r}")

    def check_items(self, items: list[dict]) -> None:
        check_videos(self.name, items)

    def output_config(self) -> dict:
        return {**super().output_config(), "video": self.video.sampling.describe(), "pooling": self.POOLING}

    def describe(self) -> dict:
        return {**super().describe(), "video": {"sampling": self.video.sampling.describe(), "pooling": self.POOLING}}

    def prepare(self, model: Any, items: list[dict]) -> Batch:
        ok, clips, failed = decode_each(items, lambda it: load_item_video(it, self.video.sampling))
        frames = [f for clip in clips for f in clip.frames]
        payload = (model.preprocess_images(frames) if frames else None, [len(c.frames) for c in clips],
                   [self.captions(it) for it in ok])
        return Batch(ok, payload, failed, [c.record() for c in clips])

    def predict(self, model: Any, batch: Batch) -> list[dict]:
        pixels, counts, captions = batch.payload
        frames = np.asarray(model.embed_images(pixels), dtype=np.float64)
        frames /= np.maximum(np.linalg.norm(frames, axis=1, keepdims=True), 1e-12)
        flat = [c for caps in captions for c in caps]
        txt = model.embed_texts(flat)
        cut = model.truncated(flat)
        out, start, t = [], 0, 0
        for n, caps, record in zip(counts, captions, batch.extras):
            out.append({"image_embedding": frames[start:start + n].mean(0).astype(np.float32),
                        "text_embeddings": np.asarray(txt[t:t + len(caps)], dtype=np.float32),
                        "events": ["text_truncated"] * sum(cut[t:t + len(caps)]), "video": record})
            start, t = start + n, t + len(caps)
        return out

    def score(self, items: list[dict], outputs: list[dict | None]) -> ScoreReport:
        report = super().score(items, outputs)
        for it, out in zip(items, outputs):
            if out is not None and it["id"] in report.samples:
                report.samples[it["id"]]["video"] = out["video"]
        report.notes.append(self.POOLING)
        return report
