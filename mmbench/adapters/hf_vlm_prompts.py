"""Prompt building for Hugging Face image+prompt->text models: the text sent (chat template or prompt_format)
and where the images go, turned into model inputs by the model's own processor.

The text is rendered by ``processor.apply_chat_template`` when there is a template; otherwise by the user's
``prompt_format``. How images enter the inputs differs by family and is a small named strategy
(``ImageSlots``), detected from the processor rather than from model names. A request's video (families whose
processor has a video processor) is one ``{"type": "video"}`` part in front of the content, encoded by the
processor from the frames mmbench sampled (``video_call_kwargs``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

from mmbench.capabilities import IMAGE_MARKER, GenerationRequest, VideoInput
from mmbench.errors import MMBenchError

PROMPT = "{prompt}"
IMAGE = "{image}"
SYSTEM = "{system}"
_PLACEHOLDERS = re.compile(r"\{(?:prompt|image|system)\}")


@dataclass(frozen=True)
class ChatTemplate:
    """The Jinja chat template in use (None: none) and where it came from: processor, file:<path> or none."""

    text: str | None
    source: str

    @property
    def digest(self) -> str:
        return hashlib.sha256((self.text or "").encode()).hexdigest()[:16]


def resolve_chat_template(arg: str, processor: Any) -> ChatTemplate:
    """``auto``: the processor's template if it has one; ``none``: never; else a path to a Jinja file."""
    if arg == "none":
        return ChatTemplate(None, "none")
    if arg == "auto":
        for source, owner in (("processor", processor), ("tokenizer", getattr(processor, "tokenizer", None))):
            own = getattr(owner, "chat_template", None)
            if isinstance(own, dict):  # several named templates: the "default" one, as transformers picks it
                own = own.get("default")
            if own:
                # Some processors (IdeficsProcessor in transformers 5) drop their template when loaded while
                # the tokenizer saved beside them keeps it: the checkpoint's template either way.
                return ChatTemplate(own, source)
        return ChatTemplate(None, "none")
    path = Path(arg).expanduser()
    if not path.is_file():
        raise MMBenchError(f"chat_template={arg!r}: no such file; use auto, none or the path to a Jinja file")
    return ChatTemplate(path.read_text(encoding="utf-8"), f"file:{path}")


class ImageSlots:
    """Where a family's processor wants the images: this base is the common case ("inline"), one image
    token per image written into the text, which the processor expands (LLaVA, LLaVA-NeXT, Idefics2/3, ...)."""

    name: ClassVar[str] = "inline"
    placeholder_separator: ClassVar[str] = "\n"  # after the images when prompt_format has no {image}

    def __init__(self, processor: Any, call_kwargs: dict | None = None) -> None:
        self.processor = processor
        self.call_kwargs = dict(call_kwargs or {})  # family options the processor takes with each call
        token = getattr(processor, "image_token", None)  # a str, or an AddedToken (BLIP-2)
        self.image_token: str | None = getattr(token, "content", token) or None
        token = getattr(processor, "video_token", None) if getattr(processor, "video_processor", None) else None
        self.video_token: str | None = getattr(token, "content", token) or None  # None: no native video

    def placeholder(self, n_images: int) -> str:
        """What stands for ``n_images`` images in the text (one image token each)."""
        return (self.image_token or "") * n_images

    def video_placeholder(self) -> str:
        """What stands for a video in a prompt_format text (the processor expands it)."""
        return self.video_token or ""

    def check(self, text: str, n_images: int) -> None:
        found = text.count(self.image_token) if self.image_token else n_images
        if found != n_images:
            raise MMBenchError(f"the prompt has {found} image placeholder(s) {self.image_token!r} for {n_images} "
                               f"image(s); fix the chat template or prompt_format")

    def check_video(self, text: str, n_videos: int) -> None:
        found = text.count(self.video_token) if self.video_token else 0
        if found != n_videos:
            raise MMBenchError(f"the prompt has {found} video placeholder(s) {self.video_token!r} for {n_videos} "
                               f"video(s); fix the chat template or prompt_format, or send the video's frames as "
                               f"images (the task's video input: frames)")

    def encode(self, texts: list[str], images: list[list[Any]], add_special_tokens: bool | None,
               videos: Sequence[VideoInput | None] = ()) -> Any:
        kwargs: dict[str, Any] = {"padding": True, "padding_side": "left", "return_tensors": "pt",
                                  **self.call_kwargs}
        if add_special_tokens is not None:
            kwargs["add_special_tokens"] = add_special_tokens
        has_images = any(images)
        present = [v for v in videos if v is not None]
        if present:  # one video per request that has one, in order (the processor pairs them with the prompts)
            kwargs.update(videos=[list(v.frames) for v in present], **video_call_kwargs(present))
        batch = self.processor(text=texts, images=images if has_images else None, **kwargs)
        batch.pop("labels", None)  # PaliGemma's processor always adds training labels; generate takes none
        return batch


def video_metadata(video: VideoInput) -> dict:
    """What the processor knows of a video mmbench already sampled (transformers' VideoMetadata): the frames
    are the whole clip it sees, at the sampled rate. ``frames_indices`` are the frames' positions on that rate
    (time x fps: the real times even when the sampling was not evenly spaced), so processors that turn them
    into times (Qwen3-VL's "<t seconds>") read the sampled times; the rate (Qwen2.5-VL's second_per_grid_ts =
    temporal_patch_size / fps) is ``VideoInput.fps``, 1.0 for a single frame (no time step to encode)."""
    fps = video.fps or 1.0
    return {"total_num_frames": len(video.frames), "fps": fps,
            "frames_indices": [t * fps for t in video.timestamps],
            "duration": (video.timestamps[-1] - video.timestamps[0]) if video.timestamps else 0.0}


def video_call_kwargs(videos: Sequence[VideoInput]) -> dict:
    """The processor's video options for frames mmbench sampled: ``do_sample_frames=False`` because the frames
    were already picked by the task's sampling (a processor whose checkpoint samples by default, e.g. Qwen3-VL
    at 2 fps, would otherwise pick again among them), and each video's timing as ``video_metadata`` (without it
    a processor assumes 24 fps: Qwen2.5-VL's time positions would be 12x too dense at 2 fps)."""
    return {"do_sample_frames": False, "video_metadata": [video_metadata(v) for v in videos]}


class ProcessorSlots(ImageSlots):
    """The processor puts the image tokens in front of the text itself (BLIP-2, InstructBLIP: one token per
    Q-Former query), so the text carries no placeholder."""

    name = "processor"

    def placeholder(self, n_images: int) -> str:
        return ""

    def encode(self, texts: list[str], images: list[list[Any]], add_special_tokens: bool | None,
               videos: Sequence[VideoInput | None] = ()) -> Any:
        return qformer_pads_last(pads_first(super().encode(texts, images, add_special_tokens)))

    def check(self, text: str, n_images: int) -> None:
        if n_images != 1:
            raise MMBenchError(f"{type(self.processor).__name__} takes exactly one image per prompt, got {n_images}; "
                               f"use a task with one image per item or another model")
        if self.image_token and self.image_token in text:
            raise MMBenchError(f"{type(self.processor).__name__} adds the image tokens itself: remove "
                               f"{self.image_token!r} from the chat template or prompt_format")


def is_left_padded(batch: Any) -> bool:
    """True when every row's attention mask reads 0...0 1...1 (or there is no mask)."""
    mask = batch.get("attention_mask")
    return mask is None or bool((mask[:, 1:] >= mask[:, :-1]).all())


def pads_first(batch: Any) -> Any:
    """Move each row's padding in front of all its tokens.

    Blip2Processor pads the text and then puts the image tokens in front, so left padding ends up between
    image and text tokens. Decoder-only LMs (OPT) take positions from the attention mask and do not mind, but
    T5's relative position bias counts the pads as distance: the text would change with the batch. The
    processor has no option for this, hence this stable reordering of the per-token tensors.
    """
    import torch

    if is_left_padded(batch):
        return batch
    mask = batch["attention_mask"]
    order = torch.argsort(mask, dim=1, stable=True)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        value = batch.get(key)
        if isinstance(value, torch.Tensor) and value.shape == mask.shape:
            batch[key] = torch.gather(value, 1, order)
    return batch


def qformer_pads_last(batch: Any) -> Any:
    """Move the padding of InstructBLIP's Q-Former text behind its tokens.

    The processor pads the Q-Former's instruction on the side it pads the LM's text (left, for batched
    generation); the Q-Former's BERT takes absolute positions from 0, so left pads would shift them and the
    output would change with the batch (measured: 14 of 16 requests). Pads at the end leave every real token
    at its own position, as one request alone has it."""
    import torch

    mask = batch.get("qformer_attention_mask")
    if mask is None or bool((mask[:, :-1] >= mask[:, 1:]).all()):
        return batch
    order = torch.argsort(1 - mask, dim=1, stable=True)
    for key in ("qformer_input_ids", "qformer_attention_mask", "qformer_token_type_ids"):
        value = batch.get(key)
        if isinstance(value, torch.Tensor) and value.shape == mask.shape:
            batch[key] = torch.gather(value, 1, order)
    return batch


class InterleavedSlots(ImageSlots):
    """Idefics v1 takes each prompt as a list of text pieces and images; it adds BOS and the tokens around
    each image. The rendered text is split at the image token and the images are put in its place."""

    name = "interleaved"
    placeholder_separator = ""

    def __init__(self, processor: Any, call_kwargs: dict | None = None) -> None:
        super().__init__(processor, call_kwargs)
        self.image_token = self.image_token or "<image>"

    def check(self, text: str, n_images: int) -> None:
        # A template that writes no image marker: the images go in front of the text, as IdeficsProcessor
        # itself places them when given images and text separately.
        if self.image_token not in text:
            return
        super().check(text, n_images)

    def encode(self, texts: list[str], images: list[list[Any]], add_special_tokens: bool | None,
               videos: Sequence[VideoInput | None] = ()) -> Any:
        bos = getattr(self.processor.tokenizer, "bos_token", None)
        samples = []
        for text, imgs in zip(texts, images):
            if bos and text.startswith(bos):  # the processor writes BOS itself
                text = text[len(bos):]
            if self.image_token not in text:
                text = self.image_token * len(imgs) + text
            pieces = text.split(self.image_token)
            sample: list[Any] = []
            for i, piece in enumerate(pieces):
                if i:
                    sample.append(imgs[i - 1])
                if piece:
                    sample.append(piece)
            samples.append(sample)
        return self.processor(text=samples, padding="longest", padding_side="left", return_tensors="pt")


def detect_image_slots(processor: Any, model_type: str, call_kwargs: dict | None = None) -> ImageSlots:
    """Pick the strategy from the processor (and Idefics v1's model type, whose processor API is unique);
    ``call_kwargs``: family options passed with every processor call."""
    if model_type == "idefics" or type(processor).__name__ == "IdeficsProcessor":
        return InterleavedSlots(processor, call_kwargs)
    if getattr(processor, "num_query_tokens", None) is not None:
        return ProcessorSlots(processor, call_kwargs)
    if getattr(processor, "image_token", None):
        return ImageSlots(processor, call_kwargs)
    return ProcessorSlots(processor, call_kwargs)


class PromptBuilder:
    """Renders each request to the exact text handed to the processor, and encodes a batch of them."""

    def __init__(self, processor: Any, template: ChatTemplate, prompt_format: str, system_prompt: str | None,
                 slots: ImageSlots) -> None:
        if PROMPT not in prompt_format:
            raise MMBenchError(f"prompt_format={prompt_format!r} has no {PROMPT} placeholder; e.g. "
                               f"prompt_format=\"Question: {{prompt}} Answer:\"")
        self.processor = processor
        self.template = template
        self.prompt_format = prompt_format
        self.system_prompt = system_prompt
        self.slots = slots
        self.bos_token: str | None = getattr(getattr(processor, "tokenizer", None), "bos_token", None)

    def render(self, request: GenerationRequest) -> str:
        system = request.system if request.system is not None else self.system_prompt
        n = len(request.images)
        video = request.video is not None  # one video, in front of the images and the text
        if self.template.text is not None:
            messages: list[dict] = []
            if system:
                messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
            if request.interleaved:  # each image where its marker stands
                content = [{"type": "image"} if isinstance(p, int) else {"type": "text", "text": p}
                           for p in request.parts()]
            else:
                content = [{"type": "image"} for _ in range(n)] + [{"type": "text", "text": request.prompt}]
            if video:
                content = [{"type": "video"}, *content]
            messages.append({"role": "user", "content": content})
            try:
                text = self.processor.apply_chat_template(messages, chat_template=self.template.text,
                                                          add_generation_prompt=True, tokenize=False)
            except Exception as exc:  # a Jinja error from a user's template file, or a template that raises
                raise MMBenchError(f"chat template ({self.template.source}) failed: {exc}; fix it or pass "
                                   f"chat_template=none with a prompt_format") from exc
        else:
            # one pass over the format (not str.format): prompts and formats may hold other braces
            prompt, front = request.prompt, self.slots.placeholder(n)
            if request.interleaved:  # the images go where the prompt marks them, not where {image} stands
                prompt, front = prompt.replace(IMAGE_MARKER, self.slots.placeholder(1)), ""
            if video:  # the video goes where {image} stands (default: in front), before the images
                front = self.slots.video_placeholder() + front
            values = {PROMPT: prompt, IMAGE: front, SYSTEM: system or ""}
            text = _PLACEHOLDERS.sub(lambda m: values[m.group(0)], self.prompt_format)
            if IMAGE not in self.prompt_format and front:
                text = front + self.slots.placeholder_separator + text
            if system and SYSTEM not in self.prompt_format:
                # in front of the text; after the images where the format opens with them (PaliGemma's prefix
                # must start with its image tokens)
                lead = front if front and self.prompt_format.startswith(IMAGE) else ""
                text = f"{lead}{system}\n{text[len(lead):]}"
        self.slots.check(text, n)
        if video or self.slots.video_token:
            self.slots.check_video(text, int(video))
        return text

    def encode(self, texts: list[str], requests: Sequence[GenerationRequest]) -> Any:
        """Model inputs for rendered texts, left-padded (the tokenizer's padding side is set by the adapter)."""
        # A rendered text that already starts with BOS must not get a second one; transformers'
        # apply_chat_template(tokenize=True) makes the same choice.
        starts = [bool(self.bos_token) and t.startswith(self.bos_token) for t in texts]
        if any(starts) and not all(starts):
            raise MMBenchError(f"the chat template ({self.template.source}) writes {self.bos_token!r} for some "
                               f"requests only; make it write BOS always or never")
        add_special = False if starts and all(starts) else None
        images, videos = [list(r.images) for r in requests], [r.video for r in requests]
        if any(v is not None for v in videos):
            return self.slots.encode(texts, images, add_special, videos)
        return self.slots.encode(texts, images, add_special)

    def describe(self) -> dict:
        """How prompts are built: the template's source and hash, or the prompt_format in use."""
        templated = self.template.text is not None
        return {"chat_template_source": self.template.source,
                "chat_template_sha256": self.template.digest if templated else None,
                "prompt_format": None if templated else self.prompt_format,
                "default_system_prompt": self.system_prompt, "image_slots": self.slots.name}
