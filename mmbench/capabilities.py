"""Capabilities: what a model adapter offers and a task needs, one small batch-in/batch-out protocol each.

A task names the capability it needs; an adapter lists the ones it offers. Adapters never know which task
calls them, so any model with a capability runs every task that needs it.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, runtime_checkable

from mmbench.errors import MMBenchError

if TYPE_CHECKING:  # keep imports light: numpy/PIL types only for annotations
    import numpy as np
    from PIL import Image


class Capability(str, enum.Enum):
    EMBED = "image-text-embedding"        # embed_images / embed_texts
    GENERATE_TEXT = "image-prompt-to-text"  # generate(requests, config)
    TRANSCRIBE = "audio-to-text"          # prepare(waveforms, sample_rate) / transcribe(prepared)
    GENERATE_IMAGE = "prompt-to-image"    # prepare_images(requests, config) / generate_images(prepared, config)

    def __str__(self) -> str:
        return self.value


@runtime_checkable
class ImageTextEmbedder(Protocol):
    """Dual encoders (CLIP, SigLIP, open_clip): one vector per image and per text, in a shared space.

    Returned arrays are float32 ``[n, d]`` on the CPU and *not* normalised: tasks normalise, so the raw
    embeddings can be saved and rescored elsewhere.
    """

    def preprocess_images(self, images: Sequence["Image.Image"]) -> Any:
        """CPU-only and thread-safe: runs in a preparation thread, ahead of the model."""

    def embed_images(self, batch: Any) -> "np.ndarray":
        """Embeds what ``preprocess_images`` returned."""

    def embed_texts(self, texts: Sequence[str]) -> "np.ndarray": ...

    def truncated(self, texts: Sequence[str]) -> list[bool]:
        """Per text, whether the text encoder cuts it at its maximum length (its embedding then only sees the
        beginning): a declared per-text output, so tasks report truncation without watching counters."""


# Marks where an image goes inside a prompt (U+FFFC, Unicode's "object replacement character": a placeholder
# for an embedded object, which no dataset's text uses for anything else).
IMAGE_MARKER = "\ufffc"


@dataclass(frozen=True)
class VideoInput:
    """A video as a model takes it natively: its sampled frames (RGB, in time order) and their times in seconds
    from the video's start (models that encode time, e.g. Qwen2.5-VL's absolute time, read them)."""

    frames: tuple["Image.Image", ...]
    timestamps: tuple[float, ...]

    @property
    def fps(self) -> float | None:
        """The sampled frames' rate (frames over the span they cover), or None for a single frame."""
        span = self.timestamps[-1] - self.timestamps[0] if len(self.timestamps) > 1 else 0.0
        return (len(self.timestamps) - 1) / span if span > 0 else None


@dataclass(frozen=True)
class GenerationRequest:
    """One image+prompt->text request: the task's user prompt, its images (0..n), a system prompt, and a video
    (only for adapters whose ``accepts_video`` is true; tasks give other models a video's frames as images).

    The images (and the video) go in front of the prompt, unless the prompt holds IMAGE_MARKER once per image:
    then each image goes where its marker stands, in order (interleaved text and images, as MMMU needs)."""

    prompt: str
    images: tuple["Image.Image", ...] = ()
    system: str | None = None
    video: VideoInput | None = None

    @property
    def interleaved(self) -> bool:
        return IMAGE_MARKER in self.prompt

    def parts(self) -> list[str | int]:
        """The prompt as text pieces and image indices in order; images in front when it has no markers.
        Empty text pieces are dropped."""
        if not self.interleaved:
            return [*range(len(self.images)), *([self.prompt] if self.prompt else [])]
        pieces = self.prompt.split(IMAGE_MARKER)
        if len(pieces) - 1 != len(self.images):
            raise MMBenchError(f"the prompt marks {len(pieces) - 1} image place(s) for {len(self.images)} "
                               f"image(s); mark each image once")
        out: list[str | int] = []
        for i, piece in enumerate(pieces):
            if i:
                out.append(i - 1)
            if piece:
                out.append(piece)
        return out

    def images_in_front(self) -> bool:
        """True when every image comes before any text (what single-position processors can take)."""
        parts = self.parts()
        first_text = next((i for i, p in enumerate(parts) if isinstance(p, str) and p.strip()), len(parts))
        return all(isinstance(p, str) for p in parts[first_text:])


class SettingError(MMBenchError):
    """A decoding setting of the wrong type or out of range. ``param`` is the setting as the caller spelled it
    (``max_tokens`` in an OpenAI request), ``reason`` the message without the ``where`` prefix."""

    def __init__(self, where: str | None, param: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}" if where else reason)
        self.param, self.reason = param, reason


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class DecodingSettings:
    """The decoding settings a task file sets (flat keys: ``max_new_tokens: 8``) and ``--gen-kwargs``
    overrides: every setting of GenerationConfig except the seed, which is the run's ``--seed``.

    This is the one definition of those settings: their types and defaults here, their descriptions in the
    field metadata (``help``), their ranges in ``check``. Generative task configs inherit these fields.
    """

    max_new_tokens: int = _setting(32, "the most tokens generated per answer (OpenAI: max_tokens)")
    do_sample: bool = _setting(False, "sample (with temperature, top_p and the seed) instead of greedy decoding")
    temperature: float = _setting(1.0, "the sampling temperature, > 0 (used only when do_sample)")
    top_p: float = _setting(1.0, "nucleus sampling: the probability mass kept, in (0, 1] (used only when do_sample)")
    num_beams: int = _setting(1, "beam search width (1: no beam search; OpenAI endpoints ignore it)")
    stop: tuple[str, ...] = _setting((), "strings that end a generation (cut from the text)")

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The setting names, in order (those of DecodingSettings itself, whatever subclass asks)."""
        return tuple(f.name for f in fields(DecodingSettings))

    @classmethod
    def descriptions(cls) -> dict[str, str]:
        """Setting name -> its one-line description (GenerationConfig adds the seed)."""
        return {f.name: f.metadata.get("help", "") for f in fields(cls) if "help" in f.metadata}

    def check(self, where: str | None = None, names: Mapping[str, str] | None = None) -> None:
        """Refuse out-of-range settings with one line (SettingError, an MMBenchError): ``where`` prefixes the
        message (task files: ``task 'x'``, the command line: ``--gen-kwargs``, serve: none), ``names`` renames
        settings in it (serve: max_new_tokens -> max_tokens). The only range checks of decoding settings."""
        names = names or {}

        def fail(key: str, reason: str) -> None:
            name = names.get(key, key)
            raise SettingError(where, name, reason.replace("{name}", name))

        if self.max_new_tokens < 1:
            fail("max_new_tokens", f"{{name}} must be >= 1, got {self.max_new_tokens}")
        if self.num_beams < 1:
            fail("num_beams", f"{{name}} must be >= 1, got {self.num_beams}")
        if not self.temperature > 0:
            fail("temperature", f"{{name}} must be > 0, got {self.temperature} (greedy decoding is do_sample: false)")
        if not 0 < self.top_p <= 1:
            fail("top_p", f"{{name}} must be in (0, 1], got {self.top_p}")
        if not all(self.stop):
            fail("stop", "{name} strings must be non-empty")

    @classmethod
    def parse(cls, raw: Mapping[str, Any], where: str) -> "DecodingSettings":
        """Settings given as plain data (YAML values, ``--gen-kwargs``): unknown names are refused with the
        accepted ones listed, values are typed (mmbench.typed) and range-checked (``check``)."""
        from mmbench import typed

        if not isinstance(raw, Mapping):
            raise MMBenchError(f"{where}: expected a mapping of decoding settings, got {type(raw).__name__}")
        accepted = DecodingSettings.keys()
        unknown = [k for k in raw if k not in accepted]
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), accepted, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise MMBenchError(f"{where}: unknown setting {unknown[0]!r}{hint}; accepted: {', '.join(accepted)}")
        settings = typed.fill(DecodingSettings, raw, where, noun="setting")
        settings.check(where)
        return settings


# The OpenAI chat-completions API's own limits (GenerationConfig.from_openai)
OPENAI_MAX_TEMPERATURE = 2.0  # the API's range is [0, 2]; 0 is greedy decoding
OPENAI_MAX_STOP = 16


@dataclass(frozen=True)
class GenerationConfig(DecodingSettings):
    """Decoding settings, recorded in the results next to every score they produced: what an adapter
    receives. The settings and their ranges are DecodingSettings'; the seed is the run's (``--seed``) or the
    request's."""

    seed: int = _setting(0, "the sampling seed (the run's --seed; greedy decoding does not use it)")

    @classmethod
    def of(cls, settings: DecodingSettings, seed: int = 0) -> "GenerationConfig":
        """The config of ``settings`` (e.g. a task's config, which inherits DecodingSettings) and ``seed``."""
        return cls(**{k: getattr(settings, k) for k in DecodingSettings.keys()}, seed=seed)

    def to_dict(self) -> dict:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    # -- the OpenAI chat-completions parameters -------------------------------------------------------------
    def to_openai(self) -> dict:
        """The request parameters of these settings: max_tokens, seed, temperature (0: greedy), top_p (when
        sampling), stop (when given). num_beams has no OpenAI counterpart and is not sent."""
        body: dict[str, Any] = {"max_tokens": self.max_new_tokens, "seed": self.seed,
                                "temperature": self.temperature if self.do_sample else 0.0}
        if self.do_sample:
            body["top_p"] = self.top_p
        if self.stop:
            body["stop"] = list(self.stop)
        return body

    @classmethod
    def from_openai(cls, body: Mapping[str, Any], defaults: "GenerationConfig | None" = None,
                    max_tokens_limit: int | None = None, where: str | None = None) -> "GenerationConfig":
        """The settings of a chat-completions request body; what it leaves out comes from ``defaults``.

        ``max_tokens`` (or ``max_completion_tokens``; both: they must agree) -> max_new_tokens, at most
        ``max_tokens_limit``. Decoding samples when ``temperature`` > 0 (OpenAI's range, [0, 2]); 0 (or no
        temperature with greedy defaults) is greedy, as is ``top_p`` 0 (only the most probable token). ``stop``:
        a string or a list of at most 16; ``seed``: a 64-bit integer. The values are range-checked by
        ``check`` (names as the request spells them); greedy configs are then normalised (top_p 1, seed 0,
        temperature 1) so that greedy requests batch together. Bad values: SettingError naming the param.
        """
        d = defaults if defaults is not None else cls()

        def number(param: str) -> float | None:
            value = body.get(param)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value if isinstance(value, float) else 0.0):
                raise SettingError(where, param, f"{param} must be a number, got {_short(value)}")
            try:
                return float(value)
            except OverflowError:
                raise SettingError(where, param, f"{param} must be a number, got {_short(value)}") from None

        given = {}
        for param in ("max_completion_tokens", "max_tokens"):
            value = body.get(param)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise SettingError(where, param, f"{param} must be an integer, got {_short(value)}")
            if max_tokens_limit is not None and value > max_tokens_limit:
                raise SettingError(where, param, f"{param}={value} is over this server's limit of {max_tokens_limit}")
            given[param] = value
        if len(set(given.values())) > 1:
            raise SettingError(where, "max_tokens", f"max_tokens={given['max_tokens']} and max_completion_tokens="
                                                    f"{given['max_completion_tokens']} disagree; send one")
        tokens_param = next(iter(given), "max_tokens")
        max_new_tokens = next(iter(given.values()), d.max_new_tokens)
        temperature = number("temperature")
        if temperature is not None and not 0 <= temperature <= OPENAI_MAX_TEMPERATURE:
            raise SettingError(where, "temperature", f"temperature must be a number in [0, "
                               f"{OPENAI_MAX_TEMPERATURE:g}], got {_short(body.get('temperature'))}")
        top_p = number("top_p")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                                 or not -(2 ** 63) <= seed < 2 ** 63):
            raise SettingError(where, "seed", f"seed must be a 64-bit integer, got {_short(seed)}")
        stop = body.get("stop")
        if stop is not None:
            if isinstance(stop, str):
                stop = (stop,)  # one stop string, not its characters
            elif isinstance(stop, list) and len(stop) <= OPENAI_MAX_STOP and all(isinstance(x, str) for x in stop):
                stop = tuple(stop)
            else:
                raise SettingError(where, "stop", f"stop must be a string or a list of at most {OPENAI_MAX_STOP} "
                                                  f"strings")
        sampling = temperature > 0 if temperature is not None else d.do_sample
        if top_p == 0:  # only the most probable token: greedy decoding
            sampling, top_p = False, None
        config = cls(max_new_tokens=max_new_tokens, do_sample=sampling,
                     temperature=(temperature or d.temperature) if sampling else 1.0,
                     top_p=d.top_p if top_p is None else top_p, num_beams=d.num_beams,
                     stop=d.stop if stop is None else stop, seed=d.seed if seed is None else seed)
        config.check(where, names={"max_new_tokens": tokens_param})
        if not sampling:  # greedy decoding ignores top_p and the seed: normalised so greedy requests batch together
            config = dataclasses.replace(config, top_p=1.0, seed=0)
        return config


@dataclass(frozen=True)
class Generation:
    """What a text generator returns per request: the text, the exact prompt it sent, the new token ids of a
    greedy generation (what an attention probe re-reads; empty when the adapter has none) and the events the
    request met (``empty_generation``, ``unbatched_request``, ``retry``...: summed per task into the
    result's counters)."""

    text: str
    prompt_sent: str = ""
    extra: dict = field(default_factory=dict)
    token_ids: tuple[int, ...] = ()
    events: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transcript:
    """A transcript with the events its utterance met (e.g. ``long_form_utterance``); ``transcribe`` may return these
    instead of plain strings."""

    text: str
    events: tuple[str, ...] = ()


@runtime_checkable
class ImagePromptToText(Protocol):
    """Vision-language generators (LLaVA, Idefics, BLIP-2, any image-text-to-text model, served APIs).

    ``prepare`` builds the model inputs (prompt formatting, tokenisation with left padding, image
    processing) on the CPU in a preparation thread; ``generate`` runs the model on them. One Generation per
    request, in order; greedy decoding must give the same text at any batch size.
    """

    def prepare(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> Any: ...

    def generate(self, prepared: Any, config: GenerationConfig) -> list[Generation]: ...


@runtime_checkable
class SpeechToText(Protocol):
    """ASR models (Whisper, CTC models, pocketsphinx): one transcript per waveform.

    ``sample_rate`` is the rate the model expects: tasks decode, mix down to mono and resample every
    waveform to it before calling ``prepare``. ``prepare`` does the model's CPU-side work (log-mel
    features, padding, PCM conversion) in a preparation thread and never touches the model; ``transcribe``
    runs the model on what ``prepare`` returned. Greedy decoding must give the same text at any batch size.
    """

    sample_rate: int

    def prepare(self, waveforms: Sequence["np.ndarray"], sample_rate: int) -> Any:
        """``waveforms``: float32 mono arrays in [-1, 1] at ``sample_rate`` Hz (CPU only, thread-safe)."""

    def transcribe(self, prepared: Any) -> list["str | Transcript"]:
        """The transcripts, in order (strings, or Transcripts carrying events); '' when nothing was recognised."""


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

    ``prepare_images`` runs on the CPU in a preparation thread (an image folder reads its files there; a
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
