"""The image-text-to-text model families mmbench knows by name: plain data read by the ``hf-vlm`` adapter.

Each family is one ``model_type`` group of transformers configs with: its preset name (``hf-qwen2.5-vl``, ...),
the config architectures a local folder is matched to it by, the first transformers release that has its classes (an
older one is refused with one line), how many images a prompt may hold and where, which of its model types take a
video natively (the processor's video processor encodes the sampled frames; the others get a video's frames as
images), and the image-processor options a user may set as model args (``min_pixels`` for Qwen2-VL,
``do_image_splitting`` for Idefics3, ...). Everything else (where image tokens go, BOS, padding) is detected from
the processor, so a model type missing here still runs through plain ``hf-vlm``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from mmbench.errors import MMBenchError

# multi_image values: where the images of one prompt may go
INTERLEAVED = "interleaved"  # anywhere in the text, each where its marker stands
FRONT = "front"  # several, but all in front of the text (the processor puts them there)
ONE = "one"  # exactly one image per prompt

# video values: how a model type takes GenerationRequest.video
NO_VIDEO = ""  # not natively: tasks send the video's frames as images
VIDEO = "video"  # natively, one video per prompt, without images in the same prompt (refused in one line)
VIDEO_AND_IMAGES = "video+images"  # natively, one video per prompt, and images may share the prompt


@dataclass(frozen=True)
class FamilyOption:
    """A family option given as a model arg and handed to the processor's ``from_pretrained``."""

    name: str
    kind: str  # int | bool | pinpoints ("HxW|HxW": a list of [height, width])
    help: str
    per_call: bool = False  # also passed with every processor call (the processor's own call defaults win else)


OPTIONS = {o.name: o for o in (
    FamilyOption("min_pixels", "int", "Qwen2-VL: fewest pixels an image is resized to (image tokens = pixels / 28^2)"),
    FamilyOption("max_pixels", "int", "Qwen2-VL: most pixels an image is resized to"),
    FamilyOption("image_grid_pinpoints", "pinpoints", "LLaVA-NeXT/OneVision anyres grid: resolutions HxW|HxW|..."),
    FamilyOption("do_image_splitting", "bool", "Idefics2/3, SmolVLM: split large images into tiles plus a global view"),
    # InternVLProcessor's call defaults set crop_to_patches=True over the image processor's own setting
    FamilyOption("crop_to_patches", "bool", "InternVL: tile the image into up to max_patches crops plus a thumbnail",
                 per_call=True),
    FamilyOption("max_patches", "int", "InternVL: the most crops with crop_to_patches", per_call=True),
    # Gemma3Processor's call defaults set do_pan_and_scan=False over the image processor's own setting
    FamilyOption("do_pan_and_scan", "bool", "Gemma 3: add pan-and-scan crops of non-square images", per_call=True),
)}


@dataclass(frozen=True)
class Family:
    """One model family: its preset, the model types it covers and what the adapter must know about it."""

    preset: str
    model_types: tuple[str, ...]
    description: str
    min_transformers: str
    multi_image: str = INTERLEAVED
    options: tuple[str, ...] = ()
    preset_args: Mapping[str, str] | None = None  # fixed by the preset (e.g. PaliGemma: no chat template)
    generated_token_type: int = 0  # token_type_ids of generated tokens (PaliGemma: 1, its causal suffix)
    also_accepts: tuple[str, ...] = ()  # other families its preset loads (hf-llava took LLaVA-NeXT before)
    architectures: tuple[str, ...] = ()  # config.json architectures a local folder is matched to the preset by
    # model type -> VIDEO or VIDEO_AND_IMAGES for the types that take GenerationRequest.video natively (their
    # processor's video processor encodes the frames as one video); the others get a video's frames as images
    video: Mapping[str, str] | None = None
    # model types added to transformers after the family's first one: their own first release
    later_types: Mapping[str, str] | None = None

    def video_mode(self, model_type: str | None) -> str:
        """How ``model_type`` takes a video: NO_VIDEO, VIDEO or VIDEO_AND_IMAGES."""
        return (self.video or {}).get(model_type or "", NO_VIDEO)

    def min_transformers_for(self, model_type: str | None) -> str:
        return (self.later_types or {}).get(model_type or "", self.min_transformers)

    @property
    def name(self) -> str:
        return self.model_types[0]


# min_transformers: the release whose notes first list the model (checked against transformers' release notes).
FAMILIES: tuple[Family, ...] = (
    Family("hf-llava", ("llava",), "LLaVA-1.5 and other LlavaForConditionalGeneration checkpoints", "4.36.0",
           also_accepts=("llava_next", "llava_onevision"),
           preset_args={"prompt_format": "USER: {image}\n{prompt} ASSISTANT:"},
           architectures=("LlavaForConditionalGeneration",)),
    # LLaVA-NeXT-Video (llava_next_video, transformers 4.42.0) is LLaVA-NeXT's image path plus pooled video frames
    Family("hf-llava-next", ("llava_next", "llava_next_video"), "LLaVA-NeXT (LLaVA-1.6): anyres image tiling; "
           "LLaVA-NeXT-Video: plus native video (frames pooled 2x2)", "4.39.0",
           options=("image_grid_pinpoints",), video={"llava_next_video": VIDEO_AND_IMAGES},
           later_types={"llava_next_video": "4.42.0"},
           architectures=("LlavaNextForConditionalGeneration", "LlavaNextVideoForConditionalGeneration")),
    Family("hf-llava-onevision", ("llava_onevision",), "LLaVA-OneVision: anyres-max tiling, Qwen2 LM, native video "
           "(frames pooled 2x2)", "4.45.0", options=("image_grid_pinpoints",),
           video={"llava_onevision": VIDEO_AND_IMAGES},
           architectures=("LlavaOnevisionForConditionalGeneration",)),
    Family("hf-qwen2-vl", ("qwen2_vl",), "Qwen2-VL: native resolution, M-RoPE, native video", "4.45.0",
           options=("min_pixels", "max_pixels"), video={"qwen2_vl": VIDEO_AND_IMAGES},
           architectures=("Qwen2VLForConditionalGeneration",)),
    Family("hf-qwen2.5-vl", ("qwen2_5_vl",), "Qwen2.5-VL: native resolution, window attention, native video "
           "(absolute time)", "4.49.0", options=("min_pixels", "max_pixels"),
           video={"qwen2_5_vl": VIDEO_AND_IMAGES},
           architectures=("Qwen2_5_VLForConditionalGeneration",)),
    Family("hf-internvl", ("internvl",), "InternVL 2.5/3 (transformers-native -hf checkpoints)", "4.52.0",
           options=("crop_to_patches", "max_patches"),
           architectures=("InternVLForConditionalGeneration",)),
    Family("hf-idefics", ("idefics", "idefics2"), "Idefics v1 (Flamingo-style gated cross-attention) and Idefics2",
           "4.32.0", options=("do_image_splitting",), also_accepts=("idefics3",),
           preset_args={"prompt_format": "User:{image}{prompt}<end_of_utterance>\nAssistant:"},
           architectures=("IdeficsForVisionText2Text", "Idefics2ForConditionalGeneration")),
    Family("hf-idefics3", ("idefics3", "smolvlm"), "Idefics3 and SmolVLM: image splitting into tiles + global view",
           "4.46.0", options=("do_image_splitting",),
           architectures=("Idefics3ForConditionalGeneration", "SmolVLMForConditionalGeneration")),
    Family("hf-paligemma", ("paligemma",), "PaliGemma 1/2: prefix-LM prompt built by the processor, no chat "
           "template (mix checkpoints expect task prefixes: prompt_format='answer en {prompt}')", "4.41.0",
           multi_image=FRONT, preset_args={"chat_template": "none", "prompt_format": "{image}{prompt}"},
           generated_token_type=1,
           architectures=("PaliGemmaForConditionalGeneration",)),
    Family("hf-gemma3", ("gemma3",), "Gemma 3 (4B and larger): SigLIP image tokens, pan-and-scan", "4.50.0",
           options=("do_pan_and_scan",),
           architectures=("Gemma3ForConditionalGeneration",)),
    # no tile option: the processor's max_image_tiles must equal the vision tower's max_num_tiles (its weights)
    Family("hf-mllama", ("mllama",), "Llama 3.2 Vision: Flamingo-style cross-attention layers over image tiles",
           "4.45.0",
           architectures=("MllamaForConditionalGeneration",)),
    Family("hf-blip2", ("blip-2",), "BLIP-2 (OPT or Flan-T5 LM behind a Q-Former)", "4.27.0", multi_image=ONE,
           preset_args={"prompt_format": "Question: {prompt} Answer:"},
           architectures=("Blip2ForConditionalGeneration",)),
    Family("hf-instructblip", ("instructblip",), "InstructBLIP: instruction-aware Q-Former (Vicuna or Flan-T5 LM)",
           "4.31.0", multi_image=ONE,
           architectures=("InstructBlipForConditionalGeneration",)),
)
BY_MODEL_TYPE: dict[str, Family] = {t: f for f in FAMILIES for t in f.model_types}


def family_of(model_type: str | None) -> Family | None:
    return BY_MODEL_TYPE.get(model_type or "")


def _version_tuple(version: str) -> tuple[int, ...]:
    import re

    return tuple(int(x) for x in re.findall(r"\d+", version.split("+")[0].split(".dev")[0])[:3])


def check_transformers(family: Family, installed: str, what: str, model_type: str | None = None) -> None:
    """Refuse, in one line, a family (or one of its later model types) the installed transformers is too old
    for."""
    need = family.min_transformers_for(model_type)
    if _version_tuple(installed) < _version_tuple(need):
        name = model_type if model_type in (family.later_types or {}) else family.name
        raise MMBenchError(f"{what} is a {name} model ({family.preset}), which needs transformers>="
                           f"{need}; installed: {installed}. Fix: pip install -U 'transformers>={need}'")


def parse_option(name: str, value: Any) -> Any:
    """A family option's value as the processor takes it (pinpoints: ``336x672|672x336`` -> [[336, 672], ...])."""
    if value is None or OPTIONS[name].kind != "pinpoints":
        return value
    try:
        grid = [[int(x) for x in part.lower().split("x")] for part in str(value).split("|") if part]
        if not grid or any(len(g) != 2 or min(g) <= 0 for g in grid):
            raise ValueError
    except ValueError:
        raise MMBenchError(f"model arg {name}={value!r}: expected resolutions HxW separated by |, e.g. "
                           f"336x672|672x336|672x672") from None
    return grid


def processor_options(family: Family | None, values: Mapping[str, Any], what: str) -> dict:
    """The family options a user set, checked against the family, as processor keyword arguments."""
    given = {k: v for k, v in values.items() if v is not None}
    allowed = family.options if family is not None else ()
    for key in given:
        if key not in allowed:
            takers = ", ".join(f.preset for f in FAMILIES if key in f.options)
            mine = f"a {family.name} model" if family else "a model of no known family"
            raise MMBenchError(f"model arg {key}= does not apply to {what} ({mine}); it is an option of {takers} "
                               f"({OPTIONS[key].help})")
    return {k: parse_option(k, v) for k, v in given.items()}


__all__ = ["Family", "FamilyOption", "FAMILIES", "OPTIONS", "BY_MODEL_TYPE", "INTERLEAVED", "FRONT",
           "ONE", "NO_VIDEO", "VIDEO", "VIDEO_AND_IMAGES", "family_of", "check_transformers", "parse_option",
           "processor_options"]
