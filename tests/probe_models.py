"""Hand-built models with known behaviour, for the probes: one reads only the image, one only the text, and
a dual encoder that embeds colour."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from mmbench.adapters.base import Adapter
from mmbench.capabilities import Capability, Generation

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220), "yellow": (230, 210, 40)}


def dominant_colour(image) -> str:
    arr = np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3)
    saturated = arr[(arr.max(1) - arr.min(1)) > 60]
    if len(saturated) == 0:
        return "gray"
    mean = saturated.mean(0)
    return min(COLOURS, key=lambda c: np.sum((np.asarray(COLOURS[c]) - mean) ** 2))


class _Generator(Adapter):
    capabilities: ClassVar[frozenset] = frozenset({Capability.GENERATE_TEXT})

    def prepare(self, requests, config):
        return list(requests)

    def generate(self, prepared, config):
        return [Generation(self.answer(r), prompt_sent=r.prompt) for r in prepared]


class ImageOnly(_Generator):
    """Answers with the colour it sees, whatever the question (ignores its text)."""

    def answer(self, request) -> str:
        return dominant_colour(request.images[0]) if request.images else "none"


class TextOnly(_Generator):
    """Answers from the question alone, never looking at the image (a collapsed model)."""

    def answer(self, request) -> str:
        return "yes" if "circle" in request.prompt else "red"


class NeedsImage(ImageOnly):
    def prepare(self, requests, config):
        if any(not r.images for r in requests):
            raise ValueError("this model needs exactly one image per prompt")
        return list(requests)


class ColourEncoder(Adapter):
    """A dual encoder that embeds the dominant colour of an image and the colour word of a text."""

    capabilities: ClassVar[frozenset] = frozenset({Capability.EMBED})

    @staticmethod
    def _one_hot(colour: str) -> np.ndarray:
        v = np.full(len(COLOURS) + 1, 0.05, dtype=np.float32)
        v[list(COLOURS).index(colour) if colour in COLOURS else len(COLOURS)] = 1.0
        return v

    def preprocess_images(self, images):
        return [dominant_colour(im) for im in images]

    def embed_images(self, batch):
        return np.stack([self._one_hot(c) for c in batch])

    def truncated(self, texts):
        return [False] * len(texts)

    def embed_texts(self, texts):
        return np.stack([self._one_hot(next((w for w in t.split() if w in COLOURS), "?")) for t in texts])


MODELS_HERE = {"image-only": ImageOnly, "text-only": TextOnly, "needs-image": NeedsImage,
               "colour-encoder": ColourEncoder}


def register() -> None:
    from mmbench.registry import MODELS

    for name, cls in MODELS_HERE.items():
        MODELS.register(name, cls, overwrite=True)


def unregister() -> None:
    from mmbench.registry import MODELS

    for name in MODELS_HERE:
        MODELS.unregister(name)
