"""Image decoding with one clear error per bad file: a corrupt image fails its item, not the run."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from mmbench.errors import ItemError


def describe_source(src: Any) -> str:
    """A short name for an image source, for error messages and sample logs."""
    if isinstance(src, (str, Path)):
        return str(src)
    if isinstance(src, dict):
        return str(src.get("path") or "<image bytes>")
    if isinstance(src, (bytes, bytearray)):
        return "<image bytes>"
    return f"<{type(src).__name__}>"


def load_image(src: Any) -> Image.Image:
    """Decode ``src`` (a path, bytes, a PIL image or an HF ``{"bytes", "path"}`` dict) to an RGB image.

    Raises ItemError naming the file when it is missing, empty, truncated or not an image.
    """
    if src is None:
        raise ItemError("no image: the item has no `image` field")
    if hasattr(src, "fetch"):  # a lazy reference into a dataset (HFRef)
        src = src.fetch()
    if isinstance(src, Image.Image):
        return src if src.mode == "RGB" else src.convert("RGB")
    name = describe_source(src)
    try:
        if isinstance(src, dict):
            data = src.get("bytes")
            fp: Any = io.BytesIO(data) if data else src.get("path")
            if fp is None:
                raise ItemError(f"image {name}: neither bytes nor a path in the record")
        elif isinstance(src, (bytes, bytearray)):
            fp = io.BytesIO(src)
        else:
            fp = Path(src)
            if not fp.exists():
                raise ItemError(f"image {name}: file not found")
            if fp.stat().st_size == 0:
                raise ItemError(f"image {name}: file is empty")
        with Image.open(fp) as img:
            # A decompression bomb (a small file declaring a huge canvas) fails its item before any pixel is
            # decoded; PIL itself only warns between MAX_IMAGE_PIXELS and twice that, and raises above.
            pixels = img.size[0] * img.size[1]
            if Image.MAX_IMAGE_PIXELS and pixels > Image.MAX_IMAGE_PIXELS:
                raise ItemError(f"image {name}: {img.size[0]}x{img.size[1]} pixels exceeds the decompression-bomb "
                                f"limit of {Image.MAX_IMAGE_PIXELS} pixels")
            img.load()  # force a full decode here so truncated files fail now, in their own item
            return img.convert("RGB")
    except ItemError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            MemoryError) as exc:
        raise ItemError(f"image {name}: cannot be decoded ({exc.__class__.__name__}: {exc})") from exc
