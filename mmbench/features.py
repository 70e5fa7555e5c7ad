"""Pluggable image feature extractors for FID/KID/precision-recall, and the corruption ladder that checks one.

An extractor turns images into one feature row each and says exactly how (weights, resize, layer), since
those choices move FID as much as the generator does. Names (``load_extractor``):

- ``inception`` / ``inception:PATH``: FID's standard network, the TF-ported Inception-v3 of pytorch-fid
  (``pt_inception-2015-12-05-6726825d.pth``), 2048-d pool3 features. Never downloaded: PATH, or the file
  where pytorch-fid's own download puts it (torch hub's ``checkpoints`` folder). The network is written
  here in plain torch because every installable implementation (pytorch-fid, torch-fidelity, clean-fid,
  piq) needs torchvision, which does not install beside the project's torch.
- ``clip:NAME`` or ``NAME``: any model mmbench can load that embeds images (``mini-clip``, the offline
  default, an ``hf-clip``/``open-clip`` name, a local CLIP folder): the projected image embedding, not
  normalised, after the model's own preprocessing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image, ImageFilter

from mmbench.errors import MMBenchError
from mmbench.files import sha256_file

DEFAULT_EXTRACTOR = "mini-clip"
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                 "pt_inception-2015-12-05-6726825d.pth")
# torch.hub names downloads <name>-<first 8 hex digits of the sha256>.pth: the published file's prefix.
INCEPTION_SHA256_PREFIX = "6726825d"
INCEPTION_PREPROCESSING = ("RGB uint8 -> float32 /255 -> bilinear resize to 299x299 (torch interpolate, "
                           "align_corners=False, antialias=False, as pytorch-fid) -> 2x-1")


# --------------------------------------------------------------------------------------------- Inception


def build_fid_inception() -> Any:
    """An uninitialised FID Inception network (load the pytorch-fid weights into it)."""
    from mmbench.inception import FIDInception

    return FIDInception()


def default_inception_path() -> Path:
    """Where pytorch-fid's download puts the weights: torch hub's checkpoints folder."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


class FeatureExtractor:
    """Base: ``features(images)`` -> float32 ``[n, dim]``; ``variant`` is the short provenance string that
    goes into FID/KID variants, ``describe()`` the full record for task_info."""

    name: str = ""
    dim: int = 0
    variant: str = ""
    preprocessing: str = ""

    def features(self, images: Sequence[Image.Image]) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name, "variant": self.variant, "dim": self.dim, "preprocessing": self.preprocessing}

    def fingerprint(self) -> str:
        """Changes whenever the features could: cache key of the reference-set features."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the model."""


class InceptionFeatures(FeatureExtractor):
    """pytorch-fid's FID Inception (pool3, 2048-d) from a local weights file."""

    dim = 2048
    preprocessing = INCEPTION_PREPROCESSING

    def __init__(self, path: Path | None = None, device: str = "cpu", batch_size: int = 32) -> None:
        import torch

        self.torch = torch
        given = path is not None
        self.path = Path(path).expanduser() if given else default_inception_path()
        if not self.path.is_file():
            where = f"at {self.path}" if given else f"in torch hub's checkpoints folder ({self.path})"
            raise MMBenchError(f"FID Inception weights not found {where}: download {INCEPTION_FILE} from "
                               f"{INCEPTION_URL} and pass --features inception:PATH (nothing is downloaded here)")
        self.sha256 = sha256_file(self.path)
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise MMBenchError(f"{self.path} is not a readable torch weights file ({type(exc).__name__}); "
                               f"use pytorch-fid's {INCEPTION_FILE}") from exc
        net = build_fid_inception()
        own = net.state_dict()
        missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
        bad_shape = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        if missing or bad_shape:
            first = (missing or bad_shape)[0]
            raise MMBenchError(f"{self.path} does not hold the FID Inception weights ({len(missing)} tensors "
                               f"missing, {len(bad_shape)} of another shape, e.g. {first!r}); use pytorch-fid's "
                               f"{INCEPTION_FILE}")
        net.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
        self.net = net.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.name = f"inception:{self.path}"
        official = self.sha256.startswith(INCEPTION_SHA256_PREFIX)
        self.variant = (f"inception-v3-fid/pool3-2048/weights-sha256={self.sha256[:8]}"
                        f"{'' if official else '(NOT pytorch-fid)'}/bilinear299-no-antialias")

    def _pixels(self, images: Sequence[Image.Image]) -> Any:
        torch, F = self.torch, self.torch.nn.functional
        out = []
        for img in images:  # each image resized on its own: sizes may differ within a batch
            arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
            x = torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 255.0
            out.append(F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=False))
        return torch.cat(out) * 2.0 - 1.0

    def features(self, images: Sequence[Image.Image]) -> np.ndarray:
        rows = []
        for start in range(0, len(images), self.batch_size):
            x = self._pixels(images[start:start + self.batch_size]).to(self.device)
            with self.torch.inference_mode():
                rows.append(self.net(x).float().cpu().numpy())
        return np.concatenate(rows) if rows else np.zeros((0, self.dim), np.float32)

    def describe(self) -> dict:
        official = self.sha256.startswith(INCEPTION_SHA256_PREFIX)
        return {**super().describe(), "layer": "pool3 (global average pool after Mixed_7c)",
                "weights": {"file": str(self.path), "sha256": self.sha256, "is_pytorch_fid_file": official}}

    def fingerprint(self) -> str:
        return f"inception/{self.sha256[:16]}/bilinear299-no-antialias"

    def close(self) -> None:
        self.net = None


class EmbedderFeatures(FeatureExtractor):
    """The image embeddings of an mmbench image-text embedder (CLIP-like adapter); also serves CLIP-score."""

    def __init__(self, name: str, adapter: Any, batch_size: int = 64) -> None:
        self.name = f"clip:{name}"
        self.adapter = adapter
        self.batch_size = batch_size
        probe = self.features([Image.new("RGB", (32, 32), (128, 128, 128))])
        self.dim = int(probe.shape[1])
        info = adapter.describe()
        self.preprocessing = (f"the model's own image preprocessing ({info.get('image_preprocessing', 'adapter')});"
                              f" features = projected image embedding, not normalised")
        self._weights = str(info.get("weights_fingerprint", ""))
        self.variant = f"clip:{name}/image-embedding-{self.dim}/weights={self._weights[:8]}"

    def features(self, images: Sequence[Image.Image]) -> np.ndarray:
        a, step = self.adapter, self.batch_size
        rows = [np.asarray(a.embed_images(a.preprocess_images(list(images[s:s + step]))), dtype=np.float32)
                for s in range(0, len(images), step)]
        return np.concatenate(rows) if rows else np.zeros((0, self.dim), np.float32)

    def describe(self) -> dict:
        return {**super().describe(), "model": self.adapter.describe()}

    def fingerprint(self) -> str:
        return f"embedder/{self.adapter.fingerprint()}"

    def close(self) -> None:
        self.adapter.close()


# ------------------------------------------------------------------------------------- corruption ladder
# Reference images against increasingly corrupted copies of themselves: an extractor fit for FID must
# rank every ladder monotonically (FID rising with the level). Levels are fixed so results compare.


def _gaussian_noise(img: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    arr = np.asarray(img.convert("RGB"), dtype=np.float64) + rng.normal(0.0, sigma, size=(img.height, img.width, 3))
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")


def _blur(img: Image.Image, radius: float, rng: np.random.Generator) -> Image.Image:
    return img.convert("RGB").filter(ImageFilter.GaussianBlur(radius))


def _colour_shift(img: Image.Image, amount: float, rng: np.random.Generator) -> Image.Image:
    """Adds ``amount`` to red and subtracts it from blue (a warm cast), clipped to [0, 255]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float64).copy()
    arr[..., 0] += amount
    arr[..., 2] -= amount
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")


Corruption = Callable[[Image.Image, float, np.random.Generator], Image.Image]
# name -> (function, levels, what a level means)
CORRUPTIONS: dict[str, tuple[Corruption, tuple[float, ...], str]] = {
    "noise": (_gaussian_noise, (8.0, 24.0, 48.0, 96.0), "additive Gaussian noise, sigma in 8-bit levels"),
    "blur": (_blur, (0.5, 1.0, 2.0, 4.0), "PIL GaussianBlur, radius in pixels"),
    "colour-shift": (_colour_shift, (10.0, 25.0, 50.0, 100.0), "red +x, blue -x, in 8-bit levels"),
}


def corrupt(images: Sequence[Image.Image], kind: str, level: float, seed: int = 0) -> list[Image.Image]:
    """``images`` with one corruption at one strength (noise drawn from ``seed``: the same copies every time)."""
    if kind not in CORRUPTIONS:
        raise MMBenchError(f"unknown corruption {kind!r}; use one of {', '.join(CORRUPTIONS)}")
    fn = CORRUPTIONS[kind][0]
    rng = np.random.default_rng(seed)
    return [fn(img, level, rng) for img in images]


def corruption_ladder(real: np.ndarray, images: Sequence[Image.Image], extractor: FeatureExtractor,
                      kinds: Sequence[str] = tuple(CORRUPTIONS), seed: int = 0) -> list[dict]:
    """FID of ``real`` features against ``images`` clean (level 0) and at each level of each corruption.

    One row per (kind, level), each with ``monotonic``: whether that kind's FID rises strictly from the
    clean baseline through every level. With ``real`` the features of ``images`` themselves (the ladder's
    usual form: a set against corrupted copies of itself) the clean baseline is 0 and nothing but the
    corruption moves the number; with another sample from the same distribution the baseline is the
    sampling-noise floor, which hides the weakest corruptions.
    """
    from mmbench.metrics.image_generation import fid_from_features

    for kind in kinds:
        if kind not in CORRUPTIONS:
            raise MMBenchError(f"unknown corruption {kind!r}; use one of {', '.join(CORRUPTIONS)}")

    def fid(imgs: Sequence[Image.Image]) -> float:
        value = fid_from_features(real, extractor.features(imgs), features=extractor.variant).value
        assert value is not None
        return float(value)

    clean = fid(images)
    rows: list[dict] = []
    for kind in kinds:
        levels = CORRUPTIONS[kind][1]
        values = [clean] + [fid(corrupt(images, kind, lv, seed)) for lv in levels]
        rising = all(b > a for a, b in zip(values, values[1:]))
        rows += [{"corruption": kind, "level": lv, "fid": v, "monotonic": rising}
                 for lv, v in zip((0.0, *levels), values)]
    return rows
