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
    TRANSCRIBE = "audio-to-text"          # prepare(waveforms, sample_rate) / transcribe(prepared)
    GENERATE_IMAGE = "prompt-to-image"    # prepare_images(requests, config) / generate_images(prepared)

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
    """ASR models (Whisper, CTC models, pocketsphinx): one transcript per waveform.

    ``sample_rate`` is the rate the model expects: tasks decode, mix down to mono and resample every
    waveform to it before calling ``prepare``. ``prepare`` does the model's CPU-side work (log-mel
    features, padding, PCM conversion) in the prefetch thread and never touches the model; ``transcribe``
    runs the model on what ``prepare`` returned. Greedy decoding must give the same text at any batch size.
    """

    sample_rate: int

    def prepare(self, waveforms: Sequence["np.ndarray"], sample_rate: int) -> Any:
        """``waveforms``: float32 mono arrays in [-1, 1] at ``sample_rate`` Hz (CPU only, thread-safe)."""

    def transcribe(self, prepared: Any) -> list[str]:
        """The transcripts, in order; an empty string when nothing was recognised."""


@dataclass(frozen=True)
class ImageGenerationConfig:
    """Sampling settings for text-to-image generators, recorded in the results next to every score.

    ``negative_prompt`` replaces the unconditional branch of classifier-free guidance (None: the empty
    prompt / null condition); ``height``/``width`` None: the generator's native size.
    """

    guidance_scale: float = 7.5
    num_inference_steps: int = 25
    height: int | None = None
    width: int | None = None
    negative_prompt: str | None = None

    def to_dict(self) -> dict:
        return {"guidance_scale": self.guidance_scale, "num_inference_steps": self.num_inference_steps,
                "height": self.height, "width": self.width, "negative_prompt": self.negative_prompt}


@dataclass(frozen=True)
class ImageRequest:
    """One prompt->image request: the task's item id (image folders look images up by it), the prompt and the
    seed that fixes this image's noise (derived from the run seed and the item id, so it never depends on
    the batch)."""

    id: str
    prompt: str
    seed: int


@dataclass
class PreparedImages:
    """What ``PromptToImage.prepare_images`` returns: the payload for ``generate_images`` (covering the
    requests that are not in ``failed``, in order) and the requests that cannot be served (id -> reason)."""

    payload: Any
    failed: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class PromptToImage(Protocol):
    """Text-to-image generators (diffusers pipelines, folders of images generated elsewhere).

    ``prepare_images`` runs on the CPU in the prefetch thread (an image folder reads its files there; a
    request it cannot serve, e.g. a missing file, goes to ``failed`` and becomes a failed item);
    ``generate_images`` returns one RGB image per request that was not failed, in order. The same request
    (prompt, seed, config) must give the same image at any batch size.
    """

    def prepare_images(self, requests: Sequence[ImageRequest], config: ImageGenerationConfig) -> PreparedImages:
        ...

    def generate_images(self, prepared: Any, config: ImageGenerationConfig) -> list["Image.Image"]:
        """``prepared``: the ``payload`` of what ``prepare_images`` returned."""


PROTOCOLS: dict[Capability, type] = {
    Capability.EMBED: ImageTextEmbedder,
    Capability.GENERATE_TEXT: ImagePromptToText,
    Capability.TRANSCRIBE: SpeechToText,
    Capability.GENERATE_IMAGE: PromptToImage,
}
