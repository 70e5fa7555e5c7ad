"""Capabilities: what a model adapter offers and a task needs, one small batch-in/batch-out protocol each.

A task names the capability it needs; an adapter lists the ones it offers. Adapters never know which task
calls them, so any model with a capability runs every task that needs it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # keep imports light: numpy/PIL types only for annotations
    import numpy as np
    from PIL import Image


class Capability(str, enum.Enum):
    EMBED = "image-text-embedding"        # embed_images / embed_texts
    GENERATE_TEXT = "image-prompt-to-text"  # generate(requests, config)
    TRANSCRIBE = "audio-to-text"          # transcribe(waveforms, sample_rate)
    GENERATE_IMAGE = "prompt-to-image"    # generate_images(prompts, seeds, config)

    def __str__(self) -> str:
        return self.value


@runtime_checkable
class ImageTextEmbedder(Protocol):
    """Dual encoders (CLIP, SigLIP, open_clip): one vector per image and per text, in a shared space.

    Returned arrays are float32 ``[n, d]`` on the CPU and *not* normalised: tasks normalise, so the raw
    embeddings can be saved and rescored elsewhere.
    """

    def preprocess_images(self, images: Sequence["Image.Image"]) -> Any:
        """CPU-only and thread-safe: runs in the prefetch thread, ahead of the model."""

    def embed_images(self, batch: Any) -> "np.ndarray":
        """Embeds what ``preprocess_images`` returned."""

    def embed_texts(self, texts: Sequence[str]) -> "np.ndarray": ...


@dataclass(frozen=True)
class GenerationRequest:
    """One image+prompt->text request: the task's user prompt, its images (0..n) and a system prompt."""

    prompt: str
    images: tuple["Image.Image", ...] = ()
    system: str | None = None


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding settings, recorded in the results next to every score they produced."""

    max_new_tokens: int = 32
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    num_beams: int = 1
    stop: tuple[str, ...] = ()
    seed: int = 0

    def to_dict(self) -> dict:
        return {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample,
                "temperature": self.temperature, "top_p": self.top_p, "num_beams": self.num_beams,
                "stop": list(self.stop), "seed": self.seed}


@dataclass(frozen=True)
class Generation:
    """What a text generator returns per request: the text, plus the exact prompt it sent."""

    text: str
    prompt_sent: str = ""
    extra: dict = field(default_factory=dict)


@runtime_checkable
class ImagePromptToText(Protocol):
    """Vision-language generators (LLaVA, Idefics, BLIP-2, any image-text-to-text model, served APIs).

    ``prepare`` builds the model inputs (prompt formatting, tokenisation with left padding, image
    processing) on the CPU in the prefetch thread; ``generate`` runs the model on them. One Generation per
    request, in order; greedy decoding must give the same text at any batch size.
    """

    def prepare(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> Any: ...

    def generate(self, prepared: Any, config: GenerationConfig) -> list[Generation]: ...


@runtime_checkable
class SpeechToText(Protocol):
    """ASR models (Whisper, CTC models, pocketsphinx). ``sample_rate`` is the rate they expect."""

    sample_rate: int

    def transcribe(self, waveforms: Sequence["np.ndarray"], sample_rate: int) -> list[str]: ...


@dataclass(frozen=True)
class ImageGenerationConfig:
    """Sampling settings for text-to-image generators."""

    guidance_scale: float = 7.5
    num_inference_steps: int = 25
    height: int | None = None
    width: int | None = None

    def to_dict(self) -> dict:
        return {"guidance_scale": self.guidance_scale, "num_inference_steps": self.num_inference_steps,
                "height": self.height, "width": self.width}


@runtime_checkable
class PromptToImage(Protocol):
    """Text-to-image generators (diffusers pipelines, folders of images generated elsewhere)."""

    def generate_images(self, prompts: Sequence[str], seeds: Sequence[int],
                        config: ImageGenerationConfig) -> list["Image.Image"]: ...


PROTOCOLS: dict[Capability, type] = {
    Capability.EMBED: ImageTextEmbedder,
    Capability.GENERATE_TEXT: ImagePromptToText,
    Capability.TRANSCRIBE: SpeechToText,
    Capability.GENERATE_IMAGE: PromptToImage,
}
