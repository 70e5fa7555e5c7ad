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

import hashlib
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image, ImageFilter

from mmbench.errors import MMBenchError

DEFAULT_EXTRACTOR = "mini-clip"
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                 "pt_inception-2015-12-05-6726825d.pth")
# torch.hub names downloads <name>-<first 8 hex digits of the sha256>.pth: the published file's prefix.
INCEPTION_SHA256_PREFIX = "6726825d"
INCEPTION_PREPROCESSING = ("RGB uint8 -> float32 /255 -> bilinear resize to 299x299 (torch interpolate, "
                           "align_corners=False, antialias=False, as pytorch-fid) -> 2x-1")


# --------------------------------------------------------------------------------------------- Inception


def _inception_modules():
    """The network's torch classes, built on first use so importing this module does not import torch."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class ConvBN(nn.Module):
        """conv (no bias) + batch norm (eps 1e-3, as the TF graph) + ReLU; the checkpoint's ``.conv``/``.bn``."""

        def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0) -> None:
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
            self.bn = nn.BatchNorm2d(cout, eps=0.001)

        def forward(self, x):
            return F.relu(self.bn(self.conv(x)))

    def avg3(x):
        # The TF graph averages over the valid pixels only at the borders.
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)

    class MixedA(nn.Module):  # 35x35 blocks (Mixed_5b..5d)
        def __init__(self, cin: int, pool_channels: int) -> None:
            super().__init__()
            self.branch1x1 = ConvBN(cin, 64, 1)
            self.branch5x5_1 = ConvBN(cin, 48, 1)
            self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
            self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
            self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
            self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
            self.branch_pool = ConvBN(cin, pool_channels, 1)

        def forward(self, x):
            return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                              self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                              self.branch_pool(avg3(x))], 1)

    class ReduceB(nn.Module):  # 35 -> 17 (Mixed_6a)
        def __init__(self, cin: int) -> None:
            super().__init__()
            self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
            self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
            self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
            self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

        def forward(self, x):
            return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                              F.max_pool2d(x, 3, stride=2)], 1)

    class MixedC(nn.Module):  # 17x17 blocks with factorised 7x7 convolutions (Mixed_6b..6e)
        def __init__(self, cin: int, mid: int) -> None:
            super().__init__()
            self.branch1x1 = ConvBN(cin, 192, 1)
            self.branch7x7_1 = ConvBN(cin, mid, 1)
            self.branch7x7_2 = ConvBN(mid, mid, (1, 7), padding=(0, 3))
            self.branch7x7_3 = ConvBN(mid, 192, (7, 1), padding=(3, 0))
            self.branch7x7dbl_1 = ConvBN(cin, mid, 1)
            self.branch7x7dbl_2 = ConvBN(mid, mid, (7, 1), padding=(3, 0))
            self.branch7x7dbl_3 = ConvBN(mid, mid, (1, 7), padding=(0, 3))
            self.branch7x7dbl_4 = ConvBN(mid, mid, (7, 1), padding=(3, 0))
            self.branch7x7dbl_5 = ConvBN(mid, 192, (1, 7), padding=(0, 3))
            self.branch_pool = ConvBN(cin, 192, 1)

        def forward(self, x):
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            d = x
            for i in range(1, 6):
                d = getattr(self, f"branch7x7dbl_{i}")(d)
            return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(avg3(x))], 1)

    class ReduceD(nn.Module):  # 17 -> 8 (Mixed_7a)
        def __init__(self, cin: int) -> None:
            super().__init__()
            self.branch3x3_1 = ConvBN(cin, 192, 1)
            self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
            self.branch7x7x3_1 = ConvBN(cin, 192, 1)
            self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
            self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
            self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

        def forward(self, x):
            b7 = x
            for i in range(1, 5):
                b7 = getattr(self, f"branch7x7x3_{i}")(b7)
            return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)

    class MixedE(nn.Module):  # 8x8 blocks with split 1x3/3x1 outputs (Mixed_7b, 7c)
        def __init__(self, cin: int, max_pool: bool) -> None:
            super().__init__()
            self.max_pool = max_pool  # the TF graph's last block max-pools in its pool branch
            self.branch1x1 = ConvBN(cin, 320, 1)
            self.branch3x3_1 = ConvBN(cin, 384, 1)
            self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
            self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
            self.branch3x3dbl_1 = ConvBN(cin, 448, 1)
            self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
            self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
            self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
            self.branch_pool = ConvBN(cin, 192, 1)

        def forward(self, x):
            s = self.branch3x3_1(x)
            d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else avg3(x)
            return torch.cat([self.branch1x1(x), self.branch3x3_2a(s), self.branch3x3_2b(s),
                              self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d), self.branch_pool(pooled)], 1)

    class FIDInception(nn.Module):
        """Inception-v3 up to the 2048-d global average pool, with the attribute names of the checkpoint."""

        def __init__(self) -> None:
            super().__init__()
            self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
            self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
            self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
            self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
            self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
            self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = MixedA(192, 32), MixedA(256, 64), MixedA(288, 64)
            self.Mixed_6a = ReduceB(288)
            self.Mixed_6b, self.Mixed_6c = MixedC(768, 128), MixedC(768, 160)
            self.Mixed_6d, self.Mixed_6e = MixedC(768, 160), MixedC(768, 192)
            self.Mixed_7a = ReduceD(768)
            self.Mixed_7b, self.Mixed_7c = MixedE(1280, max_pool=False), MixedE(2048, max_pool=True)

        def forward(self, x):
            """``x``: (n, 3, 299, 299) in [-1, 1] -> (n, 2048) pool3 features."""
            x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
            x = F.max_pool2d(x, 3, stride=2)
            x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
            for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
                x = getattr(self, f"Mixed_{name}")(x)
            return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    return FIDInception


def build_fid_inception() -> Any:
    """An uninitialised FID Inception network (load the pytorch-fid weights into it)."""
    return _inception_modules()()


def default_inception_path() -> Path:
    """Where pytorch-fid's download puts the weights: torch hub's checkpoints folder."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
