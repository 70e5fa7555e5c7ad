"""Text-to-image: generate (or read) one image per prompt, then FID/KID against a reference image set and
CLIP-score against the prompts, with every choice that moves those numbers written next to them.

Items are prompts from the task's data (a ``prompt`` template filled from each record: ``{prompt}``,
``{caption}``, ``{class_name}``...). The reference images are, by ``reference_split``: ``same``, every
record's own image (the COCO protocol: prompts are the captions of the reference images); ``alternate``,
the odd records' images while the even records are the prompts (disjoint sets from one distribution); or
the images of a separate ``reference_data:`` section. Each item's noise seed comes from the run seed and
the item id. The feature extractor (``features``, see mmbench.features) and the CLIP-score model
(``clip_model``) are what the task ``needs()``: the runner loads them once per run on its device and hands
them to ``setup``; reference features are cached per (reference data,
extractor). Per-item statistics are the generated images' feature rows and CLIP cosines; the reference
set's mean/covariance/features are ``const:`` entries, so a bootstrap over generated items re-aggregates
FID, KID and CLIP-score. The numbers are the task's ``metrics:`` (fid, kid, clip_score, precision_recall;
see mmbench.metrics.generation_metrics; default fid, kid and clip_score when there is a clip_model).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np
from PIL import Image

from mmbench.capabilities import Capability, ImageGenerationConfig, ImageRequest
from mmbench.data.images import load_image
from mmbench.data.sources import DataContext
from mmbench.errors import DataError, ItemError, MMBenchError
from mmbench.features import DEFAULT_EXTRACTOR, EmbedderFeatures, FeatureExtractor
from mmbench.metrics.api import GENERATED_IMAGES
from mmbench.registry import DATA_FORMATS
from mmbench.seeding import item_seed
from mmbench.specs import fingerprint
from mmbench.specs import ModelNeed
from mmbench.tasks.base import Batch, RunContext, ScoreReport, Task, fill_prompt

REFERENCE_SPLITS = ("same", "alternate")
# Settings that change a generated image or its features (the per-item cache key); the rest only scores.
OUTPUT_KEYS = ("prompt", "negative_prompt", "guidance_scale", "num_inference_steps", "height", "width",
               "features", "clip_model", "clip_text_prefix", "save_images")


@dataclass(frozen=True)
class TextToImageConfig:
    prompt: str = "{prompt}"  # filled from each record; also {caption}, {class_name}, {article}
    negative_prompt: str | None = None
    guidance_scale: float = 7.5
    num_inference_steps: int = 25
    height: int | None = None
    width: int | None = None
    reference_split: str = "same"  # same | alternate (ignored when reference_data is given)
    reference_data: Mapping[str, Any] | None = None  # a `data:`-style section for the reference images
    features: str = DEFAULT_EXTRACTOR  # inception[:PATH] | clip:MODEL | an image-text embedder name
    clip_model: str | None = DEFAULT_EXTRACTOR  # None: no CLIP-score
    clip_text_prefix: str = ""  # prepended to prompts for CLIP-score (the paper uses "A photo depicts ")
    feature_batch_size: int = 32
    save_images: bool = True  # PNG artifacts + a prompts.jsonl that the image-folder model reads back
    curve: Mapping[str, Any] | None = None  # {name, x, x_label}: a point on a leaderboard curve


def _png(image: Image.Image) -> np.ndarray:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG", optimize=False)
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)


def image_file_name(item_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", item_id).strip("_") + ".png"


class TextToImage(Task):
    kind: ClassVar[str] = "text-to-image"
    requires: ClassVar[Capability] = Capability.GENERATE_IMAGE
    Config: ClassVar[type] = TextToImageConfig
    default_batch_size: ClassVar[int] = 16
    metric_inputs: ClassVar[str] = GENERATED_IMAGES

    def __init__(self, spec, ctx) -> None:
        super().__init__(spec, ctx)
        c = self.config
        checks = [(c.reference_split in REFERENCE_SPLITS, f"reference_split {c.reference_split!r} is not one of "
                   f"{', '.join(REFERENCE_SPLITS)}"),
                  (c.clip_model or not any(m.name == "clip_score" for m in self.metrics),
                   "metric clip_score needs a clip_model"),
                  (c.reference_data is None or isinstance(c.reference_data, Mapping) and "format" in c.reference_data,
                   "reference_data needs a `format:` like a `data:` section"),
                  (c.curve is None or isinstance(c.curve, Mapping) and "name" in c.curve,
                   "curve needs a `name:` (and x:, x_label:)")]
        for ok, message in checks:
            if not ok:
                raise MMBenchError(f"task {self.name!r}: {message}; fix the task file")
        self.extractor: FeatureExtractor | None = None
        self.clip: Any = None
        self.real: np.ndarray | None = None
        self.n_reference_failed = 0
        self._reference: tuple[list[dict], str, str] | None = None
        self._text_cache: dict[str, tuple[np.ndarray, bool]] = {}

    def metric_entries(self) -> list:
        """Default: FID and KID, and CLIP-score when the task names a clip_model."""
        if self.spec.config.get("metrics"):
            return super().metric_entries()
        return ["fid", "kid", *(["clip_score"] if self.spec.config.get("clip_model", DEFAULT_EXTRACTOR) else [])]

    def check_items(self, items: list[dict]) -> None:
        self.check_counts(len(self.reference_records()[0]))

    def check_counts(self, n_reference: int) -> None:
        """E.g. a KID subset larger than either set: refused before anything is generated. Not under --limit:
        the user asked for a small subset (e.g. `mmbench run --limit 8` over the whole mini suite), so such a
        metric is reported unavailable with its reason and the other numbers of the task still come out."""
        if self.ctx.limit is not None:
            return
        for m in self.metrics:
            try:
                m.check_counts(len(self.items()), n_reference)
            except MMBenchError as exc:
                raise MMBenchError(f"task {self.name!r}: {exc}") from exc

    # -- items and reference set --------------------------------------------------------------------------
    def prompt_records(self) -> list[dict]:
        records = self.data.records
        return records[0::2] if self.config.reference_data is None and self.config.reference_split == "alternate" \
            else records

    def items(self) -> list[dict]:
        records = self.prompt_records()
        n = self.limit_count(len(records))
        return records[:n] if n is not None else records

    @property
    def is_subset(self) -> bool:
        n = self.limit_count(len(self.prompt_records()))
        return n is not None and n < len(self.prompt_records())

    def reference_records(self) -> tuple[list[dict], str, str]:
        """(records with an ``image``, fingerprint, description) of the reference set."""
        if self._reference is None:
            self._reference = self._load_reference()
        return self._reference

    def _load_reference(self) -> tuple[list[dict], str, str]:
        c = self.config
        if c.reference_data is not None:
            loader = DATA_FORMATS.get(c.reference_data["format"])
            ctx = DataContext(task=self.name, data_dir=self.ctx.data_dir, help=str(c.reference_data.get("help", "")))
            data = loader({k: v for k, v in c.reference_data.items() if k not in ("format", "help")}, ctx)
            return data.records, data.fingerprint, f"reference_data: {data.description}"
        if c.reference_split == "alternate":
            return (self.data.records[1::2], fingerprint([self.data.fingerprint, "odd"]),
                    "the odd-numbered records of the task data (prompts: the even-numbered ones)")
        return self.data.records, self.data.fingerprint, "every record's own image (prompts: all records)"

    def prompt_fields(self, item: dict) -> dict:
        fields = {k: v for k, v in item.items() if isinstance(v, (str, int, float))}
        if item.get("captions"):
            fields.setdefault("caption", str(item["captions"][0]))
        names = self.data.class_names
        if isinstance(item.get("label"), int) and names and 0 <= item["label"] < len(names):
            fields.setdefault("class_name", names[item["label"]])
        if "class_name" in fields:
            fields.setdefault("article", "an" if str(fields["class_name"])[:1].lower() in "aeiou" else "a")
        return fields

    def prompt(self, item: dict) -> str:
        return fill_prompt(self.name, self.config.prompt, self.prompt_fields(item), item["id"])

    def generation_config(self) -> ImageGenerationConfig:
        c = self.config
        return ImageGenerationConfig(guidance_scale=float(c.guidance_scale),
                                     num_inference_steps=int(c.num_inference_steps), height=c.height,
                                     width=c.width, negative_prompt=c.negative_prompt)

    # -- the models it uses besides the generator ---------------------------------------------------------
    def needs(self) -> dict:
        """The feature extractor, and the CLIP-score model when it is another one than the extractor's
        embedder: loaded by the runner (once per run, on its device), given back in ``run.models``."""
        c = self.config
        needs = {"features": ModelNeed("image-features", c.features, int(c.feature_batch_size))}
        if c.clip_model and c.clip_model.removeprefix("clip:") != c.features.removeprefix("clip:"):
            needs["clip"] = ModelNeed("image-text-embedder", c.clip_model)
        return needs

    def _models(self) -> None:
        if self.extractor is None:
            raise MMBenchError(f"task {self.name!r}: setup() has not run: its feature extractor comes from the "
                               f"runner (Task.needs)")

    def output_config(self) -> dict:
        self._models()
        cfg = {k: getattr(self.config, k) for k in OUTPUT_KEYS}
        return {"config": cfg, "run_seed": self.ctx.seed, "extractor": self.extractor.fingerprint(),
                "clip_model": self.clip.fingerprint() if self.clip is not None else None}

    def describe(self) -> dict:
        self._models()
        c = self.config
        _, ref_fp, ref_desc = self.reference_records()
        d = super().describe()
        d.update({
            "prompt_template": c.prompt, "generation": self.generation_config().to_dict(),
            "seeds": "per item: 31 bits of sha256('<run seed>/<item id>'), one torch.Generator per image",
            "features": self.extractor.describe(),
            "reference": {"description": ref_desc, "fingerprint": ref_fp,
                          "n_images": None if self.real is None else int(self.real.shape[0]),
                          "n_unreadable": self.n_reference_failed},
            "clip_score": None if self.clip is None else {
                "model": c.clip_model, "text_prefix": c.clip_text_prefix,
                "max_text_length": getattr(self.clip, "max_text_length", None)},
            })
        return d

    # -- the steps ----------------------------------------------------------------------------------------
    def setup(self, model: Any, run: RunContext) -> None:
        super().setup(model, run)
        ex = self.extractor = run.models["features"]
        if self.config.clip_model:
            # the extractor's own embedder when it is the CLIP-score model too (one load, one fingerprint)
            self.clip = run.models.get("clip") or (ex.adapter if isinstance(ex, EmbedderFeatures) else None)
        records, ref_fp, _ = self.reference_records()
        key = "reference-features:" + fingerprint([ref_fp, ex.fingerprint()])

        def compute() -> dict:
            images, failed = [], 0
            for rec in records:
                try:
                    images.append(load_image(rec["image"]))
                except (ItemError, KeyError):
                    failed += 1
            if len(images) < 2:
                raise DataError(f"task {self.name!r}: the reference set has {len(images)} readable images; FID "
                                f"needs at least 2 (check reference_data / the task data)")
            return {"features": np.asarray(ex.features(images), dtype=np.float32), "n_unreadable": failed}

        if key not in run.resources:  # every task of the run with this reference set and extractor shares it
            run.resources[key] = run.memo(key, compute)
        cached = run.resources[key]
        self.real, self.n_reference_failed = np.asarray(cached["features"]), int(cached["n_unreadable"])
        self.check_counts(int(self.real.shape[0]))

    def prepare(self, model: Any, items: list[dict]) -> Batch:
        requests = [ImageRequest(it["id"], self.prompt(it), item_seed(self.ctx.seed, it["id"])) for it in items]
        prepared = model.prepare_images(requests, self.generation_config())
        failed = dict(prepared.failed)
        ok = [it for it in items if it["id"] not in failed]
        return Batch(ok, (prepared.payload, [r for r in requests if r.id not in failed]), failed)

    def _text_embeddings(self, prompts: list[str]) -> tuple[np.ndarray, list[bool]]:
        """CLIP text embeddings of ``prompts`` (with the prefix) and whether each was truncated."""
        todo = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
        if todo:
            texts = [self.config.clip_text_prefix + p for p in todo]
            emb = np.asarray(self.clip.embed_texts(texts), dtype=np.float32)
            for p, e, cut in zip(todo, emb, self.clip.truncated(texts)):  # the embedder says which it cut
                self._text_cache[p] = (e, bool(cut))
        return (np.stack([self._text_cache[p][0] for p in prompts]), [self._text_cache[p][1] for p in prompts])

    def predict(self, model: Any, batch: Batch) -> list[dict]:
        payload, requests = batch.payload
        images = model.generate_images(payload, self.generation_config())
        if len(images) != len(requests):
            return images  # the runner reports the count mismatch
        images = [im.convert("RGB") for im in images]
        feats = np.asarray(self.extractor.features(images), dtype=np.float32)
        outs = [{"prompt": r.prompt, "seed": r.seed, "features": feats[i], "size": list(images[i].size)}
                for i, r in enumerate(requests)]
        if self.clip is not None:
            img_emb = np.asarray(self.clip.embed_images(self.clip.preprocess_images(images)), dtype=np.float32)
            txt_emb, cut = self._text_embeddings([r.prompt for r in requests])
            for i, out in enumerate(outs):
                out.update(clip_image=img_emb[i], clip_text=txt_emb[i], clip_truncated=cut[i])
        if self.config.save_images:
            for out, im in zip(outs, images):
                out["png"] = _png(im)
        return outs

    # -- scoring ------------------------------------------------------------------------------------------
    def score(self, items: list[dict], outputs: list[dict | None]) -> ScoreReport:
        assert self.real is not None and self.extractor is not None, "setup() must run before score()"
        ex = self.extractor
        ok = [i for i, o in enumerate(outputs) if o is not None]
        reference = {"features": self.real, "extractor": ex.variant, "clip_model": str(self.config.clip_model),
                     "text_prefix": self.config.clip_text_prefix,
                     "text_max_length": getattr(self.clip, "max_text_length", None)}
        reports = self.run_metrics(outputs, items, reference=reference)
        notes = [f"{len(ok)} generated images vs {self.real.shape[0]} reference images; features: {ex.variant}"]
        if len(ok) < len(items):
            notes.append(f"{len(items) - len(ok)} failed item(s) are left out of FID/KID/CLIP-score (n_fake={len(ok)})")
        if self.n_reference_failed:
            notes.append(f"{self.n_reference_failed} unreadable reference image(s) left out of the reference set")
        notes += [n for r in reports for n in r.notes]
        stats = {k: v for r in reports for k, v in r.stats.items()}
        cos = np.asarray(stats.get("cosine", np.full(len(items), np.nan)), dtype=np.float64)
        samples, artifacts = self._samples_and_artifacts(items, outputs, cos)
        # `mmbench score fid --real-features real_features.npy --fake-features fake_features.npy` re-scores
        # the run (the generated images that did not fail, in item order).
        artifacts["fake_features.npy"] = np.stack([outputs[i]["features"] for i in ok]).astype(np.float32) if ok \
            else np.zeros((0, self.real.shape[1]), np.float32)
        artifacts["real_features.npy"] = self.real.astype(np.float32)
        return ScoreReport(metrics=[v for r in reports for v in r.values], item_ids=[it["id"] for it in items],
                           stats=stats, aggregator=self.aggregator, notes=notes, samples=samples,
                           artifacts=artifacts)

    def _samples_and_artifacts(self, items: list[dict], outputs: list[dict | None],
                               cos: np.ndarray) -> tuple[dict, dict]:
        """Per-item sample lines, and (with save_images) one PNG per image plus the image-folder manifest."""
        samples, artifacts, manifest = {}, {}, []
        for i, (it, out) in enumerate(zip(items, outputs)):
            if out is None:
                samples[it["id"]] = {"prompt": self.prompt(it)}
                continue
            line = {"prompt": out["prompt"], "seed": int(out["seed"])}
            if np.isfinite(cos[i]):
                line["clip_cosine"] = round(float(cos[i]), 6)
            if "png" in out:
                name = image_file_name(it["id"])
                artifacts[name] = np.asarray(out["png"], dtype=np.uint8).tobytes()
                line["image"] = name
                manifest.append(json.dumps({"id": it["id"], "prompt": out["prompt"], "image": name}))
            samples[it["id"]] = line
        if manifest:
            artifacts["prompts.jsonl"] = ("\n".join(manifest) + "\n").encode("utf-8")
        return samples, artifacts

