"""Zero-shot image classification with a dual encoder: class prompts (a template ensemble) vs image embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmbench.capabilities import Capability
from mmbench.data.images import load_image
from mmbench.errors import DataError, MMBenchError
from mmbench.metrics.api import CLASS_SCORES
from mmbench.metrics.retrieval import normalize
from mmbench.specs import fingerprint
from mmbench.tasks.base import Batch, RunContext, ScoreReport, Task, decode_each

CLASS_NAME_TRANSFORMS = {
    "first-synonym": lambda name: name.split(",")[0].strip(),
    "underscores-to-spaces": lambda name: name.replace("_", " "),
}
ENSEMBLE_VARIANT = "class embedding = L2-normalised mean of the L2-normalised template embeddings (CLIP paper)"


@dataclass(frozen=True)
class ZeroShotConfig:
    templates: tuple[str, ...] = ("a photo of a {c}.",)  # "{c}" is replaced by the class name
    classes: tuple[str, ...] | None = None  # class names for the prompts (default: the data's names)
    classnames_file: str | None = None  # or a text file, one name per line (relative to --data-dir)
    # applied to the data's class names: "first-synonym" ("tench, Tinca tinca" -> "tench"),
    # "underscores-to-spaces" ("aquarium_fish" -> "aquarium fish")
    class_name_transform: tuple[str, ...] = ()
    text_batch_size: int = 256


class ZeroShotClassification(Task):
    kind: ClassVar[str] = "zeroshot-classification"
    requires: ClassVar[Capability] = Capability.EMBED
    Config: ClassVar[type] = ZeroShotConfig
    metric_inputs: ClassVar[str] = CLASS_SCORES
    default_metrics: ClassVar[tuple] = ("classification",)
    default_batch_size: ClassVar[int] = 64
    input_bound: ClassVar[bool] = True  # image decoding and resizing cost as much as a small encoder

    def __init__(self, spec, ctx) -> None:
        super().__init__(spec, ctx)
        if not self.config.templates or any("{c}" not in t for t in self.config.templates):
            raise MMBenchError(f"task {self.name!r}: every template needs the placeholder {{c}} for the class name")
        self.class_embeddings: np.ndarray | None = None

    # -- classes --------------------------------------------------------------------------------------
    def class_names(self) -> list[str]:
        if self.config.classes:
            return list(self.config.classes)
        if self.config.classnames_file:
            path = Path(self.config.classnames_file)
            path = path if path.is_absolute() else (self.ctx.data_dir or Path.cwd()) / path
            if not path.is_file():
                raise DataError(f"task {self.name!r}: class-names file not found at {path}; pass --data-dir")
            from mmbench.files import read_text

            return [line.strip() for line in read_text(path, f"task {self.name!r}: class-names file").splitlines()
                    if line.strip()]
        if not self.data.class_names:
            raise MMBenchError(f"task {self.name!r}: the data has no class names; add `classes:` to the task file")
        names = list(self.data.class_names)
        for transform in self.config.class_name_transform:
            if transform not in CLASS_NAME_TRANSFORMS:
                raise MMBenchError(f"task {self.name!r}: unknown class_name_transform {transform!r}; "
                                   f"use {', '.join(CLASS_NAME_TRANSFORMS)}")
            names = [CLASS_NAME_TRANSFORMS[transform](n) for n in names]
        return names

    def templates(self) -> list[str]:
        """The task file's templates, else the data's own (a WebDataset's
        zeroshot_classification_templates.txt), else the default."""
        if "templates" not in self.spec.config and self.data.meta.get("templates"):
            own = list(self.data.meta["templates"])
            if any("{c}" not in t for t in own):
                raise MMBenchError(f"task {self.name!r}: a template of the data lacks the {{c}} placeholder")
            return own
        return list(self.config.templates)

    def output_config(self) -> dict:
        # Per-item outputs are image embeddings: they depend on the model and the data only, so changing
        # the templates or class names reuses them (the class embeddings are cached under their own key).
        return {}

    def describe(self) -> dict:
        d = super().describe()
        d["prompt_templates"] = self.templates()
        d["n_classes"] = len(self.class_names())
        return d

    # -- steps ----------------------------------------------------------------------------------------
    def setup(self, model: Any, run: RunContext) -> None:
        super().setup(model, run)
        names, templates = self.class_names(), self.templates()
        n_data_classes = len(self.data.class_names or names)
        if len(names) != n_data_classes:
            raise MMBenchError(f"task {self.name!r}: {len(names)} class names for {n_data_classes} classes in the data")

        def embed_classes() -> np.ndarray:
            texts = [t.replace("{c}", c) for c in names for t in templates]
            step = self.config.text_batch_size
            emb = np.concatenate([model.embed_texts(texts[i:i + step]) for i in range(0, len(texts), step)])
            emb = normalize(emb).reshape(len(names), len(templates), -1).mean(axis=1)
            return normalize(emb).astype(np.float32)

        key = "class-embeddings:" + fingerprint([list(templates), names])
        self.class_embeddings = np.asarray(run.memo(key, embed_classes))
        prompts = [t.replace("{c}", c) for c in names for t in templates]
        self.prompts_truncated = sum(model.truncated(prompts))  # reported with the scores

    def check_items(self, items: list[dict]) -> None:
        n = len(self.class_names())
        for it in items:
            label = it.get("label")
            labels = label if isinstance(label, (list, tuple)) else [label]
            if not labels or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < n for x in labels):
                raise MMBenchError(f"task {self.name!r}: item {it['id']!r} has label {label!r}; expected a class "
                                   f"index in [0, {n - 1}] for the {n} classes (or a list of them)")

    def prepare(self, model: Any, items: list[dict]) -> Batch:
        ok, images, failed = decode_each(items, lambda it: load_image(it.get("image")))
        payload = model.preprocess_images(images) if images else None
        return Batch(ok, payload, failed)

    def predict(self, model: Any, batch: Batch) -> list[dict]:
        emb = model.embed_images(batch.payload)
        return [{"embedding": e.astype(np.float32)} for e in emb]

    def logits(self, outputs: list[dict | None]) -> np.ndarray:
        """Cosine similarity of each image to each class; NaN rows for failed items."""
        assert self.class_embeddings is not None, "setup() must run before score()"
        n, c = len(outputs), len(self.class_embeddings)
        out = np.full((n, c), np.nan)
        rows = [i for i, o in enumerate(outputs) if o is not None]
        if rows:
            emb = normalize(np.stack([outputs[i]["embedding"] for i in rows]))
            out[rows] = emb @ self.class_embeddings.astype(np.float64).T
        return out

    def score(self, items: list[dict], outputs: list[dict | None]) -> ScoreReport:
        names = self.class_names()
        logits = self.logits(outputs)
        note = f"{len(self.templates())} prompt template(s); {ENSEMBLE_VARIANT}; failed items count as misses"
        labels = [it.get("label") for it in items]
        reports = self.run_metrics(list(logits), labels, input_note=note)
        if any(isinstance(lab, (list, tuple)) for lab in labels):  # multilabel data
            targets = np.zeros_like(logits, dtype=np.int64)
            for i, lab in enumerate(labels):
                targets[i, list(lab if isinstance(lab, (list, tuple)) else [lab])] = 1
            artifacts = {"logits.npy": logits.astype(np.float32), "targets.npy": targets}
            samples = {it["id"]: {"labels": [names[j] for j in np.flatnonzero(targets[i])]}
                       for i, it in enumerate(items)}
        else:
            labels_arr = np.asarray(labels, dtype=np.int64)
            artifacts = {"logits.npy": logits.astype(np.float32), "labels.json": labels_arr.tolist(),
                         "class_names.json": names}
            top = np.argsort(-np.nan_to_num(logits, nan=-np.inf), axis=1, kind="stable")[:, :5]
            samples = {it["id"]: {"label": names[labels_arr[i]],
                                  "prediction": None if outputs[i] is None else names[top[i, 0]],
                                  "top5": None if outputs[i] is None else [names[j] for j in top[i]]}
                       for i, it in enumerate(items)}
        for r in reports:
            for i, it in enumerate(items):
                samples[it["id"]].update({k: v[i] for k, v in r.per_item.items() if len(v) == len(items)})
        return ScoreReport(metrics=[v for r in reports for v in r.values], item_ids=[it["id"] for it in items],
                           stats={k: v for r in reports for k, v in r.stats.items()}, aggregator=self.aggregator,
                           notes=[n for r in reports for n in r.notes] + self.truncation_note(), samples=samples,
                           artifacts=artifacts)

    def truncation_note(self) -> list[str]:
        n = getattr(self, "prompts_truncated", 0)
        return [f"{n} class prompt(s) were cut at the text encoder's maximum length"] if n else []
