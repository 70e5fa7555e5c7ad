"""Hugging Face dual encoders (CLIPModel, SiglipModel and alikes) through transformers' Auto classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from mmbench.adapters.base import Adapter, ModelArgs
from mmbench.capabilities import Capability
from mmbench.errors import MMBenchError


@dataclass(frozen=True)
class HFDualEncoderArgs(ModelArgs):
    # "auto": pad to max_length for SigLIP-family models (trained that way), else to the longest text
    text_padding: str = "auto"
    max_text_length: int | None = None  # default: what the text encoder supports


def as_embedding(out: Any) -> Any:
    """transformers 5 returns BaseModelOutputWithPooling from get_*_features (the embedding is
    ``.pooler_output``); 4.x returned the tensor itself. Accept both."""
    if hasattr(out, "pooler_output") and out.pooler_output is not None:
        return out.pooler_output
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


class HFDualEncoder(Adapter):
    """Any transformers model with ``get_image_features`` / ``get_text_features`` (hub name or folder)."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.EMBED})
    Args: ClassVar[type] = HFDualEncoderArgs
    default_batch_size = 64

    def __init__(self, args: HFDualEncoderArgs, name: str = "") -> None:
        super().__init__(args, name)
        if not args.pretrained:
            raise MMBenchError("hf-clip needs pretrained=<hub name or local folder> in --model-args")
        import torch
        from transformers import AutoModel

        from mmbench.adapters.hf_loading import load_pretrained

        self.torch = torch
        # the transformers loading path every transformers adapter shares (config, processor, weights)
        self.processor, self.model = load_pretrained(
            args.pretrained, revision=args.revision, trust_remote_code=args.trust_remote_code, dtype=args.dtype,
            model_class=lambda config: AutoModel)
        for method in ("get_image_features", "get_text_features"):
            if not hasattr(self.model, method):
                raise MMBenchError(f"{args.pretrained!r} ({type(self.model).__name__}) has no {method}: "
                                   f"it is not a dual encoder; use an adapter for its capability")
        self.model.to(self.device).eval()
        self.dtype = next(self.model.parameters()).dtype
        self.tokenizer = getattr(self.processor, "tokenizer", None) or self.processor
        self.image_processor = getattr(self.processor, "image_processor", None) or self.processor
        self.resolved_revision = getattr(self.model.config, "_commit_hash", None)
        text_cfg = getattr(self.model.config, "text_config", self.model.config)
        limits = [getattr(text_cfg, "max_position_embeddings", None), args.max_text_length,
                  getattr(self.tokenizer, "model_max_length", None)]
        self.max_text_length = int(min(x for x in limits if x and x < 1_000_000))
        padding = args.text_padding
        if padding == "auto":
            padding = "max_length" if "siglip" in self.model.config.model_type else "longest"
        self.text_padding = padding

    def extra_description(self) -> dict:
        return {"model_class": type(self.model).__name__, "resolved_revision": self.resolved_revision,
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "dtype": str(self.dtype).replace("torch.", ""), "text_padding": self.text_padding,
                "max_text_length": self.max_text_length,
                "image_preprocessing": type(self.image_processor).__name__}

    def preprocess_images(self, images: Sequence[Any]) -> Any:
        return self.image_processor(images=list(images), return_tensors="pt")["pixel_values"]

    def embed_images(self, batch: Any) -> np.ndarray:
        pixels = batch.to(self.device, self.dtype, non_blocking=batch.is_pinned())  # pinned: overlaps compute
        with self.torch.inference_mode():
            out = self.model.get_image_features(pixel_values=pixels)
        return as_embedding(out).float().cpu().numpy()

    def truncated(self, texts: Sequence[str]) -> list[bool]:
        full = self.tokenizer(list(texts), verbose=False)["input_ids"]  # untruncated, only to measure
        return [len(ids) > self.max_text_length for ids in full]

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        enc = self.tokenizer(list(texts), padding=self.text_padding, truncation=True,
                             max_length=self.max_text_length, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        with self.torch.inference_mode():
            out = self.model.get_text_features(**enc)
        return as_embedding(out).float().cpu().numpy()

    def close(self) -> None:
        self.model = None
