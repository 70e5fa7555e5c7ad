"""Loading a transformers model and its processor from a hub name or a local folder, with one-line errors.

Shared by the transformers adapters (image-text-to-text, speech): the config is read first so that the
adapter can pick the model class from it, then the processor, then the weights.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable

from mmbench.adapters.base import torch_dtype
from mmbench.errors import MMBenchError

FIX = ("pass a local folder with config.json, weights and processor files, or a hub name that is in the local "
       "Hugging Face cache")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (transformers' errors run over many lines)."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:240]


def looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or Path(name).expanduser().exists()


def load_pretrained(pretrained: str, *, revision: str | None, trust_remote_code: bool, dtype: str,
                    model_class: Callable[[Any], Any], check_processor: Callable[[Any], None] | None = None,
                    device_map: str | None = None, attn_implementation: str | None = None,
                    processor_kwargs: dict | None = None, config_overrides: dict | None = None) -> tuple[Any, Any]:
    """(processor, model) of ``pretrained``; ``model_class(config)`` chooses the class to instantiate and
    ``check_processor`` may reject the processor before any weights are read. ``processor_kwargs`` go to the
    processor's from_pretrained (image-processor options); ``config_overrides`` set the config attributes of
    the same name that the config (or its vision/text part) already has, so model and processor agree."""
    from transformers import AutoConfig, AutoProcessor

    where = pretrained
    if looks_like_path(where):
        if not Path(where).expanduser().is_dir():
            raise MMBenchError(f"model folder {where!r} does not exist; pass an existing folder or a hub name")
        where = str(Path(where).expanduser())
    if device_map and importlib.util.find_spec("accelerate") is None:
        raise MMBenchError(f"device_map={device_map!r} needs the accelerate package: pip install 'mmbench[multigpu]' "
                           f"(or accelerate), or drop device_map and use device=")
    hub_kw = {"revision": revision, "trust_remote_code": trust_remote_code}
    try:
        config = AutoConfig.from_pretrained(where, **hub_kw)
    except (OSError, ValueError) as exc:
        raise MMBenchError(f"cannot load the config of {pretrained!r} ({first_line(exc)}); {FIX}") from exc
    for key, value in (config_overrides or {}).items():
        for part in (config, getattr(config, "vision_config", None)):
            if part is not None and hasattr(part, key):
                setattr(part, key, value)
    model_cls = model_class(config)
    try:
        processor = AutoProcessor.from_pretrained(where, **hub_kw, **(processor_kwargs or {}))
    except (OSError, ValueError, TypeError) as exc:
        raise MMBenchError(f"cannot load the processor of {pretrained!r} ({first_line(exc)}); {FIX}") from exc
    except ImportError as exc:  # e.g. a video processor that needs torchvision (LLaVA-OneVision, SmolVLM, Qwen2-VL)
        why = first_line(exc).split(". ")[0]
        raise MMBenchError(f"cannot load the processor of {pretrained!r}: {why}; install it, e.g. pip install "
                           f"'mmbench[vision]' (torchvision and num2words)") from exc
    if check_processor is not None:
        check_processor(processor)
    load_kw: dict[str, Any] = {**hub_kw, "config": config, "dtype": torch_dtype(dtype)}
    if device_map:
        load_kw["device_map"] = device_map
    if attn_implementation:
        load_kw["attn_implementation"] = attn_implementation
    try:
        model = model_cls.from_pretrained(where, **load_kw)
    except (OSError, ValueError) as exc:
        raise MMBenchError(f"cannot load {pretrained!r} with {getattr(model_cls, '__name__', model_cls)} "
                           f"({first_line(exc)}); {FIX}") from exc
    return processor, model


def read_model_type(pretrained: str, revision: str | None = None) -> str | None:
    """The ``model_type`` in a checkpoint's config.json (local folder or local hub cache), read as plain JSON so
    that a model type this transformers does not know can still be named; None when it cannot be read."""
    from transformers import PretrainedConfig

    where = str(Path(pretrained).expanduser()) if looks_like_path(pretrained) else pretrained
    try:
        config, _ = PretrainedConfig.get_config_dict(where, revision=revision)
    except (OSError, ValueError, TypeError):
        return None  # load_pretrained reports the missing config in its own words
    model_type = config.get("model_type") if isinstance(config, dict) else None
    return model_type if isinstance(model_type, str) else None
