"""Loading the models a task uses besides the one it evaluates: image feature extractors for FID/KID,
image-text embedders for CLIP-score and text generators (a multiple-choice judge), by name, through the
model registry.

This sits in the adapters layer (it loads adapters); mmbench/features.py below it only defines what a
feature extractor is and computes with one. The runner calls these, on its device and rank, and closes
what they return at the end of the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.features import DEFAULT_EXTRACTOR, EmbedderFeatures, FeatureExtractor, InceptionFeatures


def load_embedder(name: str, device: str | None = None) -> Any:
    """The adapter of a model that embeds images and texts (``NAME`` or ``clip:NAME``), or an MMBenchError."""
    from mmbench.adapters import capabilities_of, load_model
    from mmbench.capabilities import Capability
    from mmbench.distributed import local_device
    from mmbench.specs import ModelSpec

    name = name.removeprefix("clip:")
    spec = ModelSpec(name)
    if Capability.EMBED not in capabilities_of(spec):
        raise MMBenchError(f"model {name!r} does not embed images (it offers "
                           f"{', '.join(sorted(c.value for c in capabilities_of(spec)))}); use an image-text "
                           f"embedder such as mini-clip, or inception[:PATH]")
    # No device given: this process's GPU (LOCAL_RANK's under torchrun, as Dist.device places models), not
    # whichever device "cuda" means at the time; the adapter's own default (the CPU) without CUDA.
    device = device or local_device()
    return load_model(spec, {"device": device} if device else {})


def load_extractor(name: str = DEFAULT_EXTRACTOR, device: str | None = None, batch_size: int = 32) -> FeatureExtractor:
    """``inception[:PATH]``, ``clip:MODEL`` or a model name/folder that embeds images (see the module doc).

    ``device`` None: an embedder goes on this process's GPU (see ``load_embedder``); Inception stays on the CPU."""
    if not name:
        raise MMBenchError("empty feature extractor name; use inception[:PATH], clip:MODEL or mini-clip")
    if name == "inception" or name.startswith("inception:"):
        path = name.partition(":")[2] or None
        return InceptionFeatures(Path(path) if path else None, device=device or "cpu", batch_size=batch_size)
    model = name[len("clip:"):] if name.startswith("clip:") else name
    return EmbedderFeatures(model, load_embedder(model, device), batch_size=batch_size)


def load_need(need: Any, device: str | None = None) -> Any:
    """What a task's ``needs()`` names (a specs.ModelNeed), loaded on ``device``."""
    if need.kind == "image-features":
        return load_extractor(need.name, device=device, batch_size=need.batch_size)
    if need.kind == "image-text-embedder":
        return load_embedder(need.name, device=device)
    if need.kind == "text-generator":
        return load_generator(need.name, dict(need.args), device=device)
    raise MMBenchError(f"unknown kind of model need {need.kind!r}: image-features, image-text-embedder or "
                       f"text-generator")


def load_generator(name: str, args: dict, device: str | None = None) -> Any:
    """The adapter of a model that answers prompts (a multiple-choice judge), or an MMBenchError."""
    from mmbench.adapters import capabilities_of, check_args, load_model
    from mmbench.capabilities import Capability
    from mmbench.distributed import local_device
    from mmbench.specs import ModelSpec

    spec = ModelSpec(name, args)
    if Capability.GENERATE_TEXT not in capabilities_of(spec):
        raise MMBenchError(f"model {name!r} does not generate text (it offers "
                           f"{', '.join(sorted(c.value for c in capabilities_of(spec)))}); a judge must be a text "
                           f"generator such as openai-chat")
    check_args(spec)
    device = device or local_device()
    return load_model(spec, {"device": device} if device else {})

