"""Hugging Face image+prompt->text models (LLaVA, LLaVA-NeXT/OneVision, Qwen2/2.5-VL, InternVL, Idefics,
PaliGemma, Gemma 3, Llama 3.2 Vision, BLIP-2, InstructBLIP, any image-text-to-text model) through AutoProcessor,
the processor's chat template and ``generate``, batched with left padding.

``hf-vlm`` is the generic adapter; the family presets (``hf-qwen2.5-vl``, ... in vlm_families.py) name a family,
its options and the prompt layout used when a checkpoint has no chat template. Where images go, BOS and the pad
token are detected from the processor and config. Families whose model type takes video (vlm_families: Qwen2-VL,
Qwen2.5-VL, LLaVA-OneVision, LLaVA-NeXT-Video) get ``GenerationRequest.video`` natively: its frames go to the
processor's video processor as one video, with their timing and without resampling (hf_vlm_prompts).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from mmbench.adapters import vlm_attention, vlm_families
from mmbench.adapters.base import Adapter, ModelArgs, ModelPreset, inputs_to
from mmbench.adapters.hf_loading import load_pretrained, read_model_type
from mmbench.adapters.hf_vlm_prompts import (ChatTemplate, PromptBuilder, detect_image_slots,
                                             is_left_padded, resolve_chat_template)
from mmbench.capabilities import Capability, Generation, GenerationConfig, GenerationRequest
from mmbench.errors import MMBenchError
from mmbench.specs import fingerprint


@dataclass(frozen=True)
class HFVLMArgs(ModelArgs):
    # auto: the processor's chat template when it has one; none: use prompt_format; or a Jinja file's path
    chat_template: str = "auto"
    # used without a chat template: {prompt} (required), {image} (the image placeholders; default: in front;
    # empty when the prompt marks the images' places), {system} (default: the system prompt and a newline in
    # front, after the images when the format opens with {image})
    prompt_format: str = "{prompt}"
    system_prompt: str | None = None  # for requests that bring none
    device_map: str | None = None  # passed to from_pretrained (e.g. "auto" for large models)
    model_class: str = "auto"  # auto: AutoModelForImageTextToText (or the config's architecture); else a class
    attn_implementation: str | None = None  # passed to from_pretrained (eager, sdpa, ...)
    family: str = "auto"  # auto: any; else the family (or families, a|b) a preset expects (qwen2_vl, ...)
    # Family options (vlm_families.OPTIONS), handed to the processor (and the config where it has them too):
    min_pixels: int | None = None
    max_pixels: int | None = None
    image_grid_pinpoints: str | None = None  # HxW|HxW|...
    do_image_splitting: bool | None = None
    crop_to_patches: bool | None = None
    max_patches: int | None = None
    do_pan_and_scan: bool | None = None


@dataclass
class PreparedBatch:
    """What ``prepare`` hands to ``generate``: processor outputs on the CPU (one per sub-batch) and the exact
    prompts."""

    inputs: list[Any]
    prompts: list[str]
    unbatched: bool = False  # the processor would not pad on the left: one request per generate call
    image_tokens: list[int] | None = None  # per request: the image (and video) positions the language model reads
    video_tokens: list[int | None] | None = None  # per request: its video's positions (None: no video)


class HFImageTextToText(Adapter):
    """Any transformers image-text-to-text model with a processor (hub name or local folder).

    Greedy decoding gives the same text at any batch size (left padding, attention masks, position ids from
    the mask). Sampled text is seeded per batch with ``config.seed``, so it depends on batch composition.
    """

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.GENERATE_TEXT})
    Args: ClassVar[type] = HFVLMArgs
    default_batch_size = 8

    def __init__(self, args: HFVLMArgs, name: str = "") -> None:
        super().__init__(args, name)
        if not args.pretrained:
            raise MMBenchError(f"{self.name} needs pretrained=<hub name or local folder> in --model-args")
        import torch

        self.torch = torch
        self.processor, self.model = self._load(args)
        self.tokenizer = getattr(self.processor, "tokenizer", None)
        if self.tokenizer is None:
            raise MMBenchError(f"{args.pretrained!r}: its processor {type(self.processor).__name__} has no tokenizer; "
                               f"it is not an image-text-to-text model")
        self.resolved_revision = getattr(self.model.config, "_commit_hash", None)
        # the language model's dtype: some wrappers keep parts in fp32 (InstructBLIP's Q-Former and queries)
        embeddings = self.model.get_input_embeddings()
        self.dtype = embeddings.weight.dtype if embeddings is not None else next(self.model.parameters()).dtype
        self.input_device = self.model.device if args.device_map else self.device
        # Batched generation needs prompts padded on the left, so new tokens follow every prompt directly.
        self.tokenizer.padding_side = "left"
        self.pad_token_policy = "tokenizer"
        if self.tokenizer.pad_token is None:
            if self.tokenizer.eos_token is None:
                raise MMBenchError(f"{args.pretrained!r}: the tokenizer has neither a pad nor an EOS token; "
                                   f"add a pad token to the tokenizer files")
            self.tokenizer.pad_token = self.tokenizer.eos_token
            self.pad_token_policy = "eos-as-pad (the tokenizer has no pad token)"
        gen_cfg = self.model.generation_config
        eos = gen_cfg.eos_token_id if gen_cfg.eos_token_id is not None else self.tokenizer.eos_token_id
        self.eos_token_ids: list[int] = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        self.is_encoder_decoder = bool(getattr(self.model.config, "is_encoder_decoder", False) or getattr(
            getattr(self.model.config, "text_config", None), "is_encoder_decoder", False))
        self.template: ChatTemplate = resolve_chat_template(args.chat_template, self.processor)
        self.prompts = PromptBuilder(self.processor, self.template, args.prompt_format, args.system_prompt,
                                     detect_image_slots(self.processor, self.model.config.model_type, {
                                         k: v for k, v in self.family_options.items()
                                         if vlm_families.OPTIONS[k].per_call}))
        self.multi_image = (self.model_family.multi_image if self.model_family is not None else
                            vlm_families.ONE if self.prompts.slots.name == "processor" else vlm_families.INTERLEAVED)
        # Video natively where the family declares it for this model type and the processor has a video processor
        # and token (transformers 5 builds these processors with one); otherwise tasks send a video's frames as
        # images. An instance attribute: the class default (Adapter.accepts_video) stays False.
        declared = (self.model_family.video_mode(self.model.config.model_type) if self.model_family is not None
                    else vlm_families.NO_VIDEO)
        self.video_mode = declared if self.prompts.slots.video_token else vlm_families.NO_VIDEO
        self.accepts_video = self.video_mode != vlm_families.NO_VIDEO
        # Video processors that flatten each video into patches report a grid per video (Qwen's video_grid_thw)
        # and take videos of any length in one call; the others stack the batch's videos into one
        # (videos, frames, ...) tensor, so videos of different lengths go to separate processor calls.
        names = getattr(getattr(self.processor, "video_processor", None), "model_input_names", None) or ()
        self.videos_stacked = self.accepts_video and not any(n.endswith("_grid_thw") for n in names)
        # prepare() runs in the preparation threads while generate() decodes: a Rust tokenizer must not be
        # reconfigured (padding) while another thread uses it ("Already borrowed"), so all take this lock
        # (one processor call at a time: several preparation threads only overlap their image decoding).
        self._tokenizer_lock = threading.Lock()
        self._stop_criteria: dict[tuple[str, ...], Any] = {}

    # -- loading ----------------------------------------------------------------------------------
    def _load(self, args: HFVLMArgs) -> tuple[Any, Any]:
        import transformers

        model_type = read_model_type(args.pretrained, revision=args.revision)
        self.model_family = vlm_families.family_of(model_type)
        what = repr(args.pretrained)
        if self.model_family is not None:
            vlm_families.check_transformers(self.model_family, transformers.__version__, what, model_type)
        expected = args.family.split("|")
        if args.family != "auto" and model_type is not None and (
                self.model_family is None or self.model_family.name not in expected):
            fix = f"use {self.model_family.preset}" if self.model_family else "use hf-vlm"
            raise MMBenchError(f"{self.name} expects a {' or '.join(expected)} model; {what} is {model_type}: "
                               f"{fix}")
        self.family_options = vlm_families.processor_options(
            self.model_family, {k: getattr(args, k) for k in vlm_families.OPTIONS}, what)

        def check(processor: Any) -> None:
            if getattr(processor, "image_processor", None) is None:
                raise MMBenchError(f"{args.pretrained!r}: AutoProcessor gave {type(processor).__name__}, which has "
                                   f"no image processor; it is not an image-text-to-text model (or lacks its "
                                   f"preprocessor files)")

        processor, model = load_pretrained(
            args.pretrained, revision=args.revision, trust_remote_code=args.trust_remote_code, dtype=args.dtype,
            model_class=lambda config: self._model_class(args, config), check_processor=check,
            device_map=args.device_map, attn_implementation=args.attn_implementation,
            processor_kwargs=self.family_options, config_overrides=self.family_options)
        if not args.device_map:
            model.to(self.device)
        model.eval()
        if not model.can_generate():
            raise MMBenchError(f"{args.pretrained!r} ({type(model).__name__}) cannot generate text; it is not an "
                               f"image-text-to-text model")
        return processor, model

    @staticmethod
    def _model_class(args: HFVLMArgs, config: Any) -> Any:
        """AutoModelForImageTextToText when it knows the config; else the config's own architecture if that is
        a generating model with a vision part (models that only register a task-specific class)."""
        import transformers
        from transformers import AutoModelForImageTextToText
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING

        if args.model_class != "auto":
            cls = getattr(transformers, args.model_class, None)
            if cls is None or not hasattr(cls, "from_pretrained"):
                raise MMBenchError(f"model_class={args.model_class!r} is not a transformers model class; use auto "
                                   f"or e.g. LlavaForConditionalGeneration")
            return cls
        if type(config) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING:
            return AutoModelForImageTextToText
        if args.trust_remote_code and "AutoModelForImageTextToText" in (getattr(config, "auto_map", None) or {}):
            return AutoModelForImageTextToText
        has_vision = any(hasattr(config, k) for k in ("vision_config", "visual", "vision_tower", "mm_vision_tower"))
        for arch in getattr(config, "architectures", None) or []:
            cls = getattr(transformers, arch, None)
            if has_vision and cls is not None and hasattr(cls, "can_generate") and cls.can_generate():
                return cls
        archs = ", ".join(getattr(config, "architectures", None) or [config.model_type])
        raise MMBenchError(f"{args.pretrained!r} ({archs}) is not an image-text-to-text model; use an adapter for "
                           f"its capability (see `mmbench list models`), or model_class=<transformers class>")

    # -- provenance -------------------------------------------------------------------------------
    def extra_description(self) -> dict:
        batching = ("batched with left padding; one request at a time in batches the processor does not pad on "
                    "the left (counted as unbatched_requests)")
        return {"model_class": type(self.model).__name__, "processor_class": type(self.processor).__name__,
                "resolved_revision": self.resolved_revision,
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "dtype": str(self.dtype).replace("torch.", ""), **self.prompts.describe(),
                "padding_side": self.tokenizer.padding_side, "pad_token_policy": self.pad_token_policy,
                "eos_token_ids": self.eos_token_ids, "batching": batching,
                "generation_defaults": self._generation_defaults(),
                "model_family": None if self.model_family is None else self.model_family.name,
                "family_preset": None if self.model_family is None else self.model_family.preset,
                "family_options": self._effective_options(), "multi_image": self.multi_image,
                "video_input": self._video_description()}

    def _video_description(self) -> str:
        if not self.accepts_video:
            return "frames as images (no native video for this model type)"
        with_images = "; images may share the prompt" if self.video_mode == vlm_families.VIDEO_AND_IMAGES else ""
        return (f"native: {type(self.processor.video_processor).__name__} encodes the task's sampled frames as one "
                f"video in front of the prompt (do_sample_frames=False; their rate from the frame times as "
                f"video_metadata){with_images}")

    def _effective_options(self) -> dict:
        """The family options in force: those set, else the processor's call defaults, else the image
        processor's (the checkpoint's) settings."""
        image_processor = getattr(self.processor, "image_processor", None)
        names = self.model_family.options if self.model_family is not None else ()
        call_defaults = getattr(type(self.processor), "images_kwargs", None)  # transformers 5: a class dict
        call_defaults = call_defaults if isinstance(call_defaults, dict) else {}
        out = {}
        for k in names:
            if k in self.family_options:
                out[k] = self.family_options[k]
            elif vlm_families.OPTIONS[k].per_call and k in call_defaults:
                out[k] = call_defaults[k]
            else:
                out[k] = getattr(image_processor, k, None)
        return out

    @property
    def family(self) -> str:
        return str(self.model.config.model_type)

    def _generation_defaults(self) -> dict:
        """The checkpoint's own generation settings that still apply (e.g. repetition_penalty)."""
        keep = ("repetition_penalty", "no_repeat_ngram_size", "length_penalty", "min_new_tokens", "top_k",
                "suppress_tokens", "bad_words_ids")
        cfg = self.model.generation_config.to_diff_dict()
        return {k: cfg[k] for k in keep if k in cfg}

    def fingerprint_args(self) -> dict:
        # the family check changes no output, and an unset family option is the checkpoint's own setting
        args = super().fingerprint_args()
        args.pop("family", None)
        return {k: v for k, v in args.items() if not (k in vlm_families.OPTIONS and v is None)}

    def fingerprint(self) -> str:
        # A template file's text can change under the same path: its hash is part of the fingerprint.
        return fingerprint([super().fingerprint(), self.template.source, self.template.digest])

    # -- the protocol -----------------------------------------------------------------------------
    def prepare(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> PreparedBatch:
        """Render prompts and run the processor (CPU only; never touches the model)."""
        for r in requests:
            self._check_images(r)
            self._check_video(r)
        prompts = [self.prompts.render(r) for r in requests]
        with self._tokenizer_lock:
            inputs = [self.prompts.encode(prompts[a:b], requests[a:b]) for a, b in self._video_runs(requests)]
            unbatched = not all(is_left_padded(part) for part in inputs)
            if unbatched:
                # A pad after a real token shifts what follows it, so the text would depend on the batch: a
                # processor that will not pad on the left gets one request per generate call instead.
                inputs = [self.prompts.encode([p], [r]) for p, r in zip(prompts, requests)]
        counts = [n for part in inputs for n in self._image_token_counts(part)]
        videos = [n for part in inputs for n in self._video_token_counts(part)]
        videos = [n if r.video is not None else None for n, r in zip(videos, requests)]
        return PreparedBatch(inputs=inputs, prompts=prompts, unbatched=unbatched,
                             image_tokens=[n + (v or 0) for n, v in zip(counts, videos)], video_tokens=videos)

    def _check_images(self, request: GenerationRequest) -> None:
        """Refuse, in one line, images a family cannot take: several for one-image families, images inside the
        text for families that only take them in front."""
        n, label = len(request.images), (self.model_family.preset if self.model_family else self.name)
        if self.multi_image == vlm_families.ONE and n > 1:
            raise MMBenchError(f"{label} takes one image per prompt, got {n}: use a task with one image per item "
                               f"(images: first) or a multi-image model")
        if self.multi_image != vlm_families.INTERLEAVED and n and not request.images_in_front():
            raise MMBenchError(f"{label} takes its images in front of the prompt only; this prompt places them "
                               f"inside the text: send them in front (images: all) or use a model that "
                               f"interleaves images")

    def _video_runs(self, requests: Sequence[GenerationRequest]) -> list[tuple[int, int]]:
        """The batch as consecutive runs (start, end) that one processor call can take: all of it, except where
        a processor that stacks videos meets videos of different frame counts (a task's fps sampling)."""
        runs, start, frames = [], 0, None
        for i, r in enumerate(requests):
            n = len(r.video.frames) if r.video is not None and self.videos_stacked else None
            if n is not None and frames is not None and n != frames:
                runs.append((start, i))
                start, frames = i, None
            frames = n if n is not None else frames
        return runs + [(start, len(requests))]

    def _check_video(self, request: GenerationRequest) -> None:
        """Refuse, in one line, a video this model cannot take natively, or next to images it cannot mix it
        with."""
        if request.video is None:
            return
        label = self.model_family.preset if self.model_family else self.name
        if not self.accepts_video:
            raise MMBenchError(f"{label} ({self.family}) takes no video natively: send the video's frames as "
                               f"images (the task's video input: frames or auto)")
        if request.images and self.video_mode != vlm_families.VIDEO_AND_IMAGES:
            raise MMBenchError(f"{label} ({self.family}) takes a video or images in one prompt, not both; this "
                               f"request has a video and {len(request.images)} image(s)")
        if not request.video.frames:
            raise MMBenchError("the request's video has no frames")

    def _video_token_counts(self, batch: Any) -> list[int]:
        """Per row: the video positions the language model reads (the processor's video token)."""
        ids = batch["input_ids"]
        video_id = getattr(self.processor, "video_token_id", None) if self.accepts_video else None
        return (ids == video_id).sum(dim=1).tolist() if video_id is not None else [0] * len(ids)

    def _image_token_counts(self, batch: Any) -> list[int]:
        """Per row: the image positions the language model reads (inline image tokens), or for cross-attention
        models the vision tokens it attends to (tiles x tokens per tile; Idefics v1: resampler latents)."""
        ids = batch["input_ids"]
        image_id = vlm_attention.image_token_id(self.model)
        if image_id is None:
            image_id = getattr(self.processor, "image_token_id", None)
        per_row = (ids == image_id).sum(dim=1).tolist() if image_id is not None else [0] * len(ids)
        if "aspect_ratio_mask" in batch:  # Llama 3.2 Vision: each tile's patches (+ class token) are cross-attended
            vision = self.model.config.vision_config
            per_tile = (vision.image_size // vision.patch_size) ** 2 + 1
            return [int(tiles) * per_tile for tiles in batch["aspect_ratio_mask"].flatten(1).sum(1).tolist()]
        if "image_attention_mask" in batch:  # Idefics v1: each image marker stands for the resampler's latents
            perceiver = getattr(self.model.config, "perceiver_config", None)
            latents = getattr(perceiver, "resampler_n_latents", 1) if self.model.config.use_resampler else 1
            return [n * latents for n in per_row]
        return [int(n) for n in per_row]

    def generate(self, prepared: PreparedBatch, config: GenerationConfig) -> list[Generation]:
        kwargs = self._generate_kwargs(config)
        if config.do_sample:
            self.torch.manual_seed(config.seed)
        per_part = [self._generate_ids(part, kwargs) for part in prepared.inputs]
        greedy = not config.do_sample and config.num_beams == 1
        ids = [row for part in per_part for row in part]
        with self._tokenizer_lock:
            texts = self.tokenizer.batch_decode(ids, skip_special_tokens=True)
        results = []
        image_tokens = prepared.image_tokens or [None] * len(ids)
        video_tokens = prepared.video_tokens or [None] * len(ids)
        for prompt, text, row, n_image, n_video in zip(prepared.prompts, texts, ids, image_tokens, video_tokens):
            text = truncate_at_stop(text, config.stop).strip()
            events = (("empty_generation",) if not text else ()) + (("unbatched_request",) if prepared.unbatched
                                                                    else ())
            n = self._count_new_tokens(row)
            kept = row[:n + (1 if self.is_encoder_decoder else 0)]  # up to and including EOS: no batch padding
            extra = {"new_tokens": n, **({"image_tokens": n_image} if n_image is not None else {}),
                     **({"video_tokens": n_video} if n_video is not None else {})}
            results.append(Generation(text=text, prompt_sent=prompt, extra=extra,
                                      token_ids=tuple(kept) if greedy else (), events=events))
        return results

    def _to_device(self, encoded: Any) -> dict:
        return inputs_to(encoded, self.input_device, self.dtype)

    def image_attention(self, prepared: PreparedBatch, config: GenerationConfig,
                        token_ids: Sequence[Sequence[int]] | None = None) -> list[dict]:
        """Per request, how much the model looks at its image while generating greedily (see
        mmbench/adapters/vlm_attention.py for the two measures); used by the modality probes. ``token_ids``:
        the requests' greedy generations (``Generation.token_ids``), reused instead of generating again."""
        from dataclasses import replace

        measure = None if self.is_encoder_decoder else vlm_attention.measure_name(self.model)
        if measure is None:
            raise MMBenchError(f"{type(self.model).__name__}: no attention probe for this architecture")
        kwargs = self._generate_kwargs(replace(config, do_sample=False, num_beams=1))
        reuse = token_ids is not None and all(token_ids) and len(token_ids) == len(prepared.prompts)
        out, start = [], 0
        for part in prepared.inputs:
            inputs = self._to_device(part)
            rows = len(inputs["input_ids"])
            new_ids = [list(t) for t in token_ids[start:start + rows]] if reuse else self._generate_ids(part, kwargs)
            start += rows
            values = vlm_attention.image_attention(
                self.model, inputs, new_ids, self.eos_token_ids, self.tokenizer.pad_token_id,
                new_token_type=self.model_family.generated_token_type if self.model_family else 0)
            # the main measure, and the others this architecture has (a Q-Former's patch focus)
            out += [{"measure": measure, "value": v[measure], "also": {k: x for k, x in v.items() if k != measure}}
                    for v in values]
        return out

    def _generate_ids(self, encoded: Any, kwargs: dict) -> list[list[int]]:
        """The new token ids of each row of one processor output."""
        torch = self.torch
        inputs = self._to_device(encoded)
        with torch.inference_mode():
            out = self.model.generate(**inputs, **kwargs)
        if not self.is_encoder_decoder:  # decoder-only models return prompt + new tokens
            out = out[:, inputs["input_ids"].shape[1]:]
        return out.cpu().tolist()

    def _generate_kwargs(self, config: GenerationConfig) -> dict:
        """The checkpoint's generation config with this run's decoding settings on top, passed as one object:
        wrappers such as BLIP-2 call their language model's generate, which would otherwise ignore the
        checkpoint's own settings (min_new_tokens, suppress_tokens, ...)."""
        gen = copy.deepcopy(self.model.generation_config)
        overrides: dict[str, Any] = {"max_new_tokens": config.max_new_tokens, "do_sample": config.do_sample,
                                     "num_beams": config.num_beams, "pad_token_id": self.tokenizer.pad_token_id,
                                     # one plain sequence per request, whatever the checkpoint asks for
                                     "num_return_sequences": 1, "return_dict_in_generate": False}
        if self.eos_token_ids:
            overrides["eos_token_id"] = self.eos_token_ids
        if config.do_sample:
            overrides.update(temperature=config.temperature, top_p=config.top_p)
        else:  # a checkpoint's sampling defaults (e.g. temperature=0.6) do not apply to greedy decoding
            overrides.update(temperature=None, top_p=None, top_k=None)
        gen.update(**overrides)
        kwargs: dict[str, Any] = {"generation_config": gen}
        if config.stop:
            criterion = self._stop_criterion(tuple(config.stop))
            if criterion is not None:
                from transformers import StoppingCriteriaList

                kwargs["stopping_criteria"] = StoppingCriteriaList([criterion])
        return kwargs

    def _stop_criterion(self, stop: tuple[str, ...]) -> Any:
        """transformers' StopStringCriteria ends a row early once it ends with a stop string; the decoded text
        is cut at the first stop string anyway, so a tokenizer it cannot handle only costs time."""
        if stop not in self._stop_criteria:
            from transformers.generation.stopping_criteria import StopStringCriteria

            with self._tokenizer_lock:  # it reads the vocabulary through the tokenizer
                try:
                    self._stop_criteria[stop] = StopStringCriteria(self.tokenizer, list(stop))
                except Exception:  # noqa: BLE001 - optional speed-up only
                    self._stop_criteria[stop] = None
        return self._stop_criteria[stop]

    def _count_new_tokens(self, ids: list[int]) -> int:
        """Generated tokens up to and including the first EOS (padding after it is not counted)."""
        if self.is_encoder_decoder:  # the decoder's start token opens the output
            ids = ids[1:]
        pad = self.tokenizer.pad_token_id
        for i, tok in enumerate(ids):
            if tok in self.eos_token_ids:
                return i + 1
            if tok == pad:
                return i
        return len(ids)

    def close(self) -> None:
        self.model = None


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the earliest occurrence of any stop string. Hand-written because generate's stop
    strings only end a row early and keep the stop string (and tokens can straddle it)."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


def _preset(family: vlm_families.Family) -> ModelPreset:
    accepted = "|".join((family.name, *family.also_accepts))
    return ModelPreset("hf-vlm", {"family": accepted, **(family.preset_args or {})}, family.description,
                       family=family.name)


# One preset per family (registered by name in mmbench/registry.py); a checkpoint's chat template takes
# precedence over a preset's prompt_format.
PRESETS: dict[str, ModelPreset] = {f.preset: _preset(f) for f in vlm_families.FAMILIES}

__all__ = ["HFVLMArgs", "HFImageTextToText", "PreparedBatch", "truncate_at_stop", "PRESETS"]
