"""The registries check what they hold, and tests leave them as mmbench ships them."""

from __future__ import annotations

from typing import ClassVar

import pytest

from mmbench.adapters.base import Adapter, ModelPreset
from mmbench.capabilities import Capability
from mmbench.errors import MMBenchError
from mmbench.registry import DATA_FORMATS, METRICS, MODELS, TASK_KINDS


class HalfEmbedder(Adapter):
    """Declares the embedding capability but implements only part of its protocol."""

    capabilities: ClassVar[frozenset] = frozenset({Capability.EMBED})

    def embed_images(self, batch):
        return batch


def test_models_hold_adapters_that_implement_what_they_declare():
    with pytest.raises(MMBenchError, match="declares 'image-text-embedding' but does not implement"):
        MODELS.register("half", HalfEmbedder)
    with pytest.raises(MMBenchError, match="register an Adapter subclass or a ModelPreset"):
        MODELS.register("factory", lambda args: None)
    MODELS.register("preset", ModelPreset("hf-clip", {"pretrained": "x"}))  # a preset of a registered adapter
    assert "preset" in MODELS
    MODELS.register("lazy-bad", lazy="mmbench.metrics.api:Metric")  # checked when first imported
    with pytest.raises(MMBenchError, match="register an Adapter subclass"):
        MODELS.get("lazy-bad")


def test_kinds_metrics_and_formats_are_checked():
    with pytest.raises(MMBenchError, match="register a Task subclass"):
        TASK_KINDS.register("not-a-kind", object)
    with pytest.raises(MMBenchError, match="register a Metric subclass"):
        METRICS.register("not-a-metric", dict)
    with pytest.raises(MMBenchError, match="register a loader function"):
        DATA_FORMATS.register("not-a-loader", 3)
    assert TASK_KINDS.entry_point_group == "mmbench.task_kinds" and MODELS.entry_point_group == "mmbench.models"


def test_registrations_do_not_leak_between_tests():
    # test_models_hold_adapters... registered "preset" and "lazy-bad": conftest put the registries back
    assert "preset" not in MODELS and "lazy-bad" not in MODELS


def test_presets_of_presets_resolve_to_the_adapter_with_merged_args():
    from mmbench.adapters import check_args, resolve
    from mmbench.adapters.hf_vlm import HFImageTextToText
    from mmbench.specs import ModelSpec

    cls, args = resolve(ModelSpec("mini-flamingo"))  # mini-flamingo -> hf-idefics -> hf-vlm
    assert cls is HFImageTextToText
    assert args["pretrained"].endswith("mini-flamingo")
    assert args["prompt_format"] == MODELS.get("hf-idefics").args["prompt_format"]
    MODELS.register("nearer", ModelPreset("hf-idefics", {"prompt_format": "{image}{prompt}"}))
    assert resolve(ModelSpec("nearer"))[1]["prompt_format"] == "{image}{prompt}"  # the nearer preset wins
    assert resolve(ModelSpec("nearer", {"prompt_format": "x{image}{prompt}"}))[1]["prompt_format"] == "x{image}{prompt}"
    for name in MODELS.names():  # every shipped name's args parse before anything loads (the runner's plan)
        check_args(ModelSpec(name))
    with pytest.raises(MMBenchError, match="max_new_tokens"):
        check_args(ModelSpec("mini-flamingo", {"max_new_tokens": "many"}))


def test_a_preset_cycle_is_a_one_line_error():
    from mmbench.adapters import resolve
    from mmbench.specs import ModelSpec

    MODELS.register("loop-a", ModelPreset("loop-b"))
    MODELS.register("loop-b", ModelPreset("loop-a"))
    with pytest.raises(MMBenchError, match="refer back to themselves"):
        resolve(ModelSpec("loop-a"))
