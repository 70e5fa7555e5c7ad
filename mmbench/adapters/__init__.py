"""Model adapters: resolve a model name (or a local Hugging Face folder) to an adapter instance."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mmbench.adapters.base import Adapter, ModelPreset, parse_model_args
from mmbench.adapters.vlm_families import FAMILIES
from mmbench.capabilities import Capability
from mmbench.errors import MMBenchError
from mmbench.registry import MODELS
from mmbench.specs import ModelSpec

# A local folder given as --model is matched to an adapter by the architecture in its config.json.
AUTO_ARCHITECTURES: dict[str, str] = {
    "CLIPModel": "hf-clip",
    "SiglipModel": "hf-clip",
    "Siglip2Model": "hf-clip",
    "AltCLIPModel": "hf-clip",
    "ChineseCLIPModel": "hf-clip",
    # image-text-to-text checkpoints: their family's preset (the family checks and options come with it)
    **{arch: family.preset for family in FAMILIES for arch in family.architectures},
    "WhisperForConditionalGeneration": "hf-whisper",
    **{arch: "hf-speech" for arch in ("Wav2Vec2ForCTC", "HubertForCTC", "WavLMForCTC", "Data2VecAudioForCTC",
                                      "Speech2TextForConditionalGeneration", "MoonshineForConditionalGeneration")},
}


def _auto_adapter_for_folder(path: Path) -> str | None:
    config = path / "config.json"
    if not config.is_file():
        return None
    from mmbench.files import read_json

    data = read_json(config, f"model folder {path}:")
    archs = data.get("architectures") if isinstance(data, dict) else None
    if not isinstance(archs, list):
        archs = []
    for arch in archs:
        if arch in AUTO_ARCHITECTURES:
            return AUTO_ARCHITECTURES[arch]
    return None


def _entry(spec: ModelSpec) -> tuple[Any, dict]:
    """The registry entry (Adapter class or ModelPreset) for a spec and the raw args it adds."""
    if spec.name in MODELS:
        return MODELS.get(spec.name), dict(spec.args)
    path = Path(spec.name).expanduser()
    if path.is_dir():
        adapter = _auto_adapter_for_folder(path)
        if adapter is None:
            raise MMBenchError(f"model folder {path}: cannot tell which adapter loads it (no known architecture "
                               f"in config.json); pass --model <adapter> --model-args pretrained={path}")
        return MODELS.get(adapter), {"pretrained": str(path), **spec.args}
    MODELS.get(spec.name)  # raises "unknown model ... did you mean"
    raise AssertionError("unreachable")


def resolve(spec: ModelSpec) -> tuple[type[Adapter], dict[str, str]]:
    """The Adapter class for a spec and the raw args to build it with, following presets of presets
    (``mini-flamingo`` -> ``hf-idefics`` -> ``hf-vlm``): the spec's own args win, then the nearer preset's."""
    entry, raw = _entry(spec)
    seen: set[int] = set()
    fixed: dict[str, str] = {}
    while isinstance(entry, ModelPreset):
        if id(entry) in seen:
            raise MMBenchError(f"model {spec.name!r}: its presets refer back to themselves ({entry.adapter!r}); "
                               f"register a preset on an adapter class")
        seen.add(id(entry))
        fixed = {**entry.fixed_args(), **fixed}
        entry = MODELS.get(entry.adapter)
    if not (isinstance(entry, type) and issubclass(entry, Adapter)):  # the registry admits nothing else
        raise MMBenchError(f"model {spec.name!r}: registry entry {entry!r} is not an adapter")
    return entry, {**fixed, **raw}


def summary(name: str) -> tuple[str, str]:
    """(description, family) of a registered model name: the nearest preset's description (else the adapter's
    docstring's first line) and the nearest preset's family, for `mmbench list models`."""
    entry, description, family = MODELS.get(name), "", ""
    while isinstance(entry, ModelPreset):
        description, family = description or entry.description, family or entry.family
        entry = MODELS.get(entry.adapter)
    doc = (getattr(entry, "__doc__", None) or "").strip().splitlines()
    return description or (doc[0] if doc else ""), family


def capabilities_of(spec: ModelSpec) -> frozenset[Capability]:
    return resolve(spec)[0].capabilities


def check_args(spec: ModelSpec) -> None:
    """Parse the model's --model-args into its adapter's typed Args without loading anything, so a typo is
    a one-line error before any model runs."""
    cls, raw = resolve(spec)
    parse_model_args(cls.Args, raw, spec.name)


def load_model(spec: ModelSpec, overrides: Mapping[str, str] | None = None) -> Adapter:
    """Instantiate the adapter for ``spec``; ``overrides`` (e.g. device from --device) fill unset args."""
    cls, raw = resolve(spec)
    for key, value in (overrides or {}).items():
        raw.setdefault(key, value)
    return cls.from_args(raw, name=spec.name)


__all__ = ["Adapter", "ModelPreset", "AUTO_ARCHITECTURES", "resolve", "summary", "capabilities_of", "check_args",
           "load_model"]
