"""Shared machinery of the image+prompt->text task kinds (VQA, captioning): prompts, decoding settings,
batching by prompt length, and the per-sample log of exactly what was sent and generated."""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from mmbench.capabilities import Capability, DecodingSettings, GenerationConfig, GenerationRequest
from mmbench.data.images import load_image
from mmbench.errors import ItemError, MMBenchError
from mmbench.tasks.base import Batch, RunContext, Task, decode_each, fill_prompt, template_fields
from mmbench.tasks.video_input import VideoParts, VideoSettings, video_parts

ANSWER_EXTRACTIONS = {
    "raw": "the generation as is (the metric's own normalisation applies)",
    "first-line": "the first non-empty line of the generation",
    "strip": "the generation without surrounding whitespace (as LLaVA's and lmms-eval's loaders pass it on)",
}


@dataclass(frozen=True)
class GenerativeConfig(DecodingSettings):
    """The task file's keys: the decoding settings (max_new_tokens, do_sample, temperature, top_p, num_beams,
    stop: flat keys, defined once in mmbench.capabilities.DecodingSettings, whose ``check`` holds their
    ranges; a kind may change a default, e.g. VQA's max_new_tokens) and the prompt settings below."""

    prompt: str = "{question}"  # the user prompt; {fields} are filled from the item
    # The published protocol the prompt follows (e.g. "LLaVA-1.5 short answer"): recorded with the result.
    protocol: str | None = None
    # Per-model prompts: {pattern: prompt}; a pattern (fnmatch) matches the model's name or its family (the
    # transformers model_type, e.g. "blip-2"); the first match wins, else `prompt`. --prompt overrides all.
    prompt_overrides: Mapping[str, str] | None = None
    system: str | None = None
    answer_extraction: str = "raw"
    # A test split without references lists `metrics: []` and names the evaluation server's file format.
    submission: str | None = None
    # Items with a `video`: frame sampling and how the frames reach the model (mmbench/tasks/video_input.py)
    video: Mapping[str, Any] | None = None


GENERATION_KEYS = DecodingSettings.keys()  # the decoding keys of a task file (and of --gen-kwargs)


class GenerativeTask(Task):
    """Base of kinds that send one image + a prompt per item and read back text."""

    requires: ClassVar[Capability] = Capability.GENERATE_TEXT
    default_batch_size: ClassVar[int] = 8
    submission_formats: ClassVar[tuple[str, ...]] = ()  # the `submission:` formats the kind can write

    def __init__(self, spec, ctx) -> None:
        super().__init__(spec, ctx)
        if self.config.answer_extraction not in ANSWER_EXTRACTIONS:
            raise MMBenchError(f"task {self.name!r}: answer_extraction {self.config.answer_extraction!r} is not one "
                               f"of {', '.join(ANSWER_EXTRACTIONS)}")
        c, where = self.config, f"task {self.name!r}"
        overrides = c.prompt_overrides
        if overrides is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in overrides.items()):
            raise MMBenchError(f"{where}: prompt_overrides must map model name/family patterns to prompt strings")
        for template in (c.prompt, *(overrides or {}).values()):
            template_fields(self.name, template)
        c.check(where)  # the decoding settings' ranges (DecodingSettings.check)
        self.template = self.config.prompt  # the prompt template in use (setup picks the model's override)
        self.template_source = "prompt"
        self.video = VideoSettings.parse(self.config.video, where)
        self.video_native: bool | None = None  # set per model in setup
        sub, formats = self.config.submission, self.submission_formats
        if sub is not None and sub not in formats:
            raise MMBenchError(f"task {self.name!r}: submission {sub!r} is not one of {', '.join(formats) or '(none)'}")
        if not self.metrics and sub is None:
            raise MMBenchError(f"task {self.name!r}: `metrics: []` scores nothing; name a `submission:` format "
                               f"({', '.join(formats)}) to write the evaluation server's file")

    def metric_entries(self) -> list:
        if self.spec.config.get("metrics") == []:
            return []  # a test split: outputs go to the submission file only
        return super().metric_entries()

    def build_metrics(self, context=None) -> list:
        return [] if self.metric_entries() == [] else super().build_metrics(context)

    def generation_config(self) -> GenerationConfig:
        return GenerationConfig.of(self.config, seed=self.ctx.seed)  # the task's seed is the run's

    def prompt_fields(self, item: dict) -> dict:
        """The values a prompt template can use for ``item`` (kinds add their own)."""
        return {k: v for k, v in item.items() if isinstance(v, (str, int, float))}

    def prompt(self, item: dict) -> str:
        return fill_prompt(self.name, self.template, self.prompt_fields(item), item["id"])

    def setup(self, model: Any, run: RunContext) -> None:
        """Pick the prompt for this model: the first ``prompt_overrides`` pattern matching its name or family."""
        super().setup(model, run)
        self.template, self.template_source = self.config.prompt, "prompt"
        self.video_native = self.video.native_for(model, f"task {self.name!r}")
        names = [n for n in (getattr(model, "name", ""), getattr(model, "family", "")) if n]
        for pattern, template in (self.config.prompt_overrides or {}).items():
            if any(fnmatch.fnmatchcase(n, pattern) for n in names):
                self.template, self.template_source = template, f"prompt_overrides[{pattern!r}]"
                break

    def output_config(self) -> dict:
        cfg = dataclasses.asdict(self.config)
        # sampled generations depend on the run seed: part of the cache key then (greedy ones do not)
        out = {"kind": self.kind, "config": cfg, "seed": self.ctx.seed if self.config.do_sample else None}
        if self.video_native is not None and (self.config.video is not None or self.kind == "video-qa"):
            out["video_sent_as"] = "video" if self.video_native else "frames"  # per model: set in setup
        return out

    def describe(self) -> dict:
        d = super().describe()
        d["prompt_template"] = self.template
        d["prompt_template_source"] = self.template_source
        d["protocol"] = self.config.protocol
        d["system_prompt"] = self.config.system
        d["generation"] = self.generation_config().to_dict()
        d["answer_extraction"] = f"{self.config.answer_extraction}: {ANSWER_EXTRACTIONS[self.config.answer_extraction]}"
        if self.config.video is not None or any("video" in it for it in self.items()[:1]):
            d["video"] = self.video.describe(self.video_native)
        return d

    def batch_order(self, items: list[dict]) -> list[dict]:
        """Longest prompts first, so a batch pads little (outputs do not depend on the batch)."""
        return sorted(items, key=lambda it: -len(self.prompt(it)))

    def extract(self, text: str) -> str:
        if self.config.answer_extraction == "first-line":
            return next((line.strip() for line in text.splitlines() if line.strip()), "")
        if self.config.answer_extraction == "strip":
            return text.strip()
        return text

    # -- steps ------------------------------------------------------------------------------------------
    def visual(self, item: dict) -> VideoParts:
        """The item's image (none when it is None: the probes' "no image" condition) or its video's frames."""
        if "video" in item:
            return video_parts(item, self.video, bool(self.video_native))
        if "image" not in item:
            raise ItemError("no image: the item has no `image` field")
        return VideoParts(() if item["image"] is None else (load_image(item["image"]),), None, "", {})

    def prepare(self, model: Any, items: list[dict]) -> Batch:
        ok, parts, failed = decode_each(items, self.visual)
        requests = [GenerationRequest(prompt=p.prefix + self.prompt(it), images=p.images, system=self.config.system,
                                      video=p.video) for it, p in zip(ok, parts)]
        payload = model.prepare(requests, self.generation_config()) if requests else None
        return Batch(ok, payload, failed, [p.record for p in parts])

    def predict(self, model: Any, batch: Batch) -> list[dict]:
        gens = model.generate(batch.payload, self.generation_config())
        if len(gens) != len(batch.items):
            return gens  # the runner reports the count mismatch
        # the events travel with each output (and its cache entry): the runner sums them into the result's
        # counters; greedy token ids let an attention probe re-read the generation without generating again
        outputs = [{"generation": g.text, "prompt_sent": g.prompt_sent, "events": list(g.events),
                    **({"token_ids": list(g.token_ids)} if g.token_ids else {}), **image_tokens(g)} for g in gens]
        for out, record in zip(outputs, batch.extras):
            if record:
                out["video"] = record  # which frames were sampled, at what times
        return outputs


def image_tokens(generation: Any) -> dict:
    """``{"image_tokens": n}`` when the adapter counted the image positions its language model read (written to
    the samples log: the families' image-token arithmetic differs, and a wrong count is a silent error)."""
    n = (generation.extra or {}).get("image_tokens")
    return {} if n is None else {"image_tokens": n}


def image_tokens_of(output: dict | None) -> dict:
    """The image-token count a task output carries (for its sample), or nothing."""
    return {"image_tokens": output["image_tokens"]} if output and "image_tokens" in output else {}
