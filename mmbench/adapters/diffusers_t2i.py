"""diffusers text-to-image pipelines (Stable Diffusion and alikes, or the mini generator) as a PromptToImage.

The pipeline class comes from the folder's ``model_index.json``: a diffusers class loads through
``DiffusionPipeline.from_pretrained``; a class that mmbench ships (the mini generator's) or one named with
``pipeline_class=module:Class`` loads through that class's own ``from_pretrained``. Every image gets its own
CPU ``torch.Generator`` seeded from its request, so an image depends on (prompt, seed, settings) only: not
on the batch it was generated in, nor on the device.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

from mmbench.adapters.base import Adapter, ModelArgs, torch_dtype
from mmbench.capabilities import Capability, ImageGenerationConfig, ImageRequest, PreparedImages
from mmbench.errors import MMBenchError
from mmbench.registry import import_object

# Pipeline classes shipped with mmbench, by the ``_class_name`` their model_index.json records.
MMBENCH_PIPELINES = {"MiniShapesDiffusionPipeline": "mmbench.mini.diffusion:MiniShapesDiffusionPipeline"}


@dataclass(frozen=True)
class DiffusersArgs(ModelArgs):
    pipeline_class: str | None = None  # "module:Class"; default: from model_index.json
    scheduler: str | None = None  # a diffusers scheduler class name to swap in (from the pipeline's config)
    variant: str | None = None  # weights variant, e.g. fp16


def _pipeline_class(args: DiffusersArgs) -> Any:
    """The class whose ``from_pretrained`` loads ``args.pretrained``."""
    import diffusers

    if args.pipeline_class:
        try:
            return import_object(args.pipeline_class)
        except (ImportError, AttributeError) as exc:
            raise MMBenchError(f"pipeline_class={args.pipeline_class!r} cannot be imported ({exc}); pass "
                               f"'package.module:Class'") from exc
    index = Path(str(args.pretrained)).expanduser() / "model_index.json"
    if not index.is_file():  # a hub name: diffusers reads its model_index.json itself
        return diffusers.DiffusionPipeline
    try:
        class_name = json.loads(index.read_text()).get("_class_name")
    except json.JSONDecodeError as exc:
        raise MMBenchError(f"{index} is not valid JSON ({exc.msg}); re-save the pipeline") from exc
    if class_name in MMBENCH_PIPELINES:
        return import_object(MMBENCH_PIPELINES[class_name])
    if class_name and not hasattr(diffusers, str(class_name)):
        raise MMBenchError(f"{index} names pipeline class {class_name!r}, which diffusers "
                           f"{diffusers.__version__} does not have; upgrade diffusers or pass "
                           f"--model-args pipeline_class=module:Class")
    return diffusers.DiffusionPipeline


class DiffusersTextToImage(Adapter):
    """Any diffusers text-to-image pipeline, from a local folder (or a hub name in the local cache)."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.GENERATE_IMAGE})
    Args: ClassVar[type] = DiffusersArgs
    default_batch_size = 8

    def __init__(self, args: DiffusersArgs, name: str = "") -> None:
        super().__init__(args, name)
        if not args.pretrained:
            raise MMBenchError("diffusers needs pretrained=<pipeline folder or hub name> in --model-args")
        import diffusers
        import torch

        self.torch = torch
        cls = _pipeline_class(args)
        dtype = torch_dtype(args.dtype)
        kw: dict[str, Any] = {"revision": args.revision, "variant": args.variant}
        if dtype != "auto":
            kw["dtype"] = dtype
        bars = diffusers.utils.logging.is_progress_bar_enabled()
        diffusers.utils.logging.disable_progress_bar()  # no "Loading pipeline components" bar per load
        try:
            local = Path(str(args.pretrained)).expanduser()
            self.pipe = cls.from_pretrained(str(local) if local.exists() else args.pretrained,
                                            **{k: v for k, v in kw.items() if v is not None})
        except (OSError, ValueError) as exc:
            raise MMBenchError(f"cannot load diffusers pipeline {args.pretrained!r} "
                               f"({str(exc).splitlines()[0][:200]}); pass a local folder saved with "
                               f"save_pretrained (model_index.json + components)") from exc
        finally:
            if bars:
                diffusers.utils.logging.enable_progress_bar()
        if args.scheduler:
            sched_cls = getattr(diffusers, args.scheduler, None)
            if sched_cls is None or not hasattr(sched_cls, "from_config"):
                raise MMBenchError(f"scheduler={args.scheduler!r} is not a diffusers scheduler class "
                                   f"(e.g. DDIMScheduler, EulerDiscreteScheduler)")
            self.pipe.scheduler = sched_cls.from_config(self.pipe.scheduler.config)
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.resolved_revision = getattr(self.pipe.config, "_commit_hash", None)

    def extra_description(self) -> dict:
        components = {k: type(v).__name__ for k, v in self.pipe.components.items() if v is not None}
        params = sum(p.numel() for v in self.pipe.components.values() if hasattr(v, "parameters")
                     for p in v.parameters())
        sched = self.pipe.scheduler
        return {"pipeline_class": type(self.pipe).__name__, "components": components, "parameters": params,
                "scheduler": {"class": type(sched).__name__,
                              **{k: v for k, v in dict(sched.config).items() if not k.startswith("_")}},
                "diffusers_version": __import__("diffusers").__version__,
                "noise": "one CPU torch.Generator per image, seeded from the request (batch- and device-independent)"}

    # -- PromptToImage ------------------------------------------------------------------------------------
    def prepare_images(self, requests: Sequence[ImageRequest], config: ImageGenerationConfig) -> PreparedImages:
        return PreparedImages(list(requests))

    def generate_images(self, prepared: Any, config: ImageGenerationConfig) -> list[Any]:
        requests: list[ImageRequest] = list(prepared)
        if not requests:
            return []
        torch = self.torch
        generators = [torch.Generator(device="cpu").manual_seed(int(r.seed)) for r in requests]
        kw: dict[str, Any] = {"prompt": [r.prompt for r in requests], "generator": generators,
                              "guidance_scale": float(config.guidance_scale),
                              "num_inference_steps": int(config.num_inference_steps), "output_type": "pil"}
        if config.negative_prompt is not None:
            kw["negative_prompt"] = [config.negative_prompt] * len(requests)
        if config.height is not None:
            kw["height"] = int(config.height)
        if config.width is not None:
            kw["width"] = int(config.width)
        try:
            with torch.inference_mode():
                out = self.pipe(**kw)
        except ValueError as exc:  # pipelines validate their settings (sizes, steps) with ValueError
            raise MMBenchError(f"the {type(self.pipe).__name__} of model {self.name!r} rejects the generation "
                               f"settings {config.to_dict()}: {exc}; change them in the task file") from exc
        images = out.images if hasattr(out, "images") else out[0]
        return [im.convert("RGB") for im in images]

    def close(self) -> None:
        self.pipe = None
