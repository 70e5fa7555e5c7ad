"""open_clip models (``hf-hub:`` names, pretrained tags, local checkpoints, custom configs).

Needs the ``openclip`` extra (open_clip_torch, which needs torchvision); the core never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from mmbench.adapters.base import Adapter, ModelArgs, hash_model_files
from mmbench.capabilities import Capability
from mmbench.errors import MMBenchError
from mmbench.specs import fingerprint

PRECISIONS = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "auto": "fp32"}


@dataclass(frozen=True)
class OpenCLIPArgs(ModelArgs):
    model: str | None = None  # architecture ("ViT-B-32") or "hf-hub:org/repo"
    # `pretrained` (from ModelArgs): a pretrained tag ("laion2b_s34b_b79k") or a local checkpoint file
    model_config: str | None = None  # a JSON model config (file or folder) to register before loading


class OpenCLIP(Adapter):
    """open_clip dual encoders: an architecture with a pretrained tag, a local checkpoint or an hf-hub: repo."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.EMBED})
    Args: ClassVar[type] = OpenCLIPArgs
    default_batch_size = 64

    def __init__(self, args: OpenCLIPArgs, name: str = "") -> None:
        super().__init__(args, name)
        try:
            import open_clip
            import torch
        except ImportError as exc:
            raise MMBenchError(f"open-clip needs the openclip extra ({exc.name} is missing): "
                               f"pip install 'mmbench[openclip]' (with torch==2.14.1 torchvision==0.29.1 here)")
        if not args.model:
            raise MMBenchError("open-clip needs model=<architecture or hf-hub:org/repo> in --model-args")
        self.torch = torch
        if args.model_config:
            cfg = Path(args.model_config).expanduser()
            if not cfg.exists():
                raise MMBenchError(f"open-clip model_config {cfg} not found")
            open_clip.add_model_config(cfg)
        pretrained = args.pretrained
        if pretrained and not args.model.startswith("hf-hub:") and ("/" in pretrained or pretrained.endswith(
                (".pt", ".bin", ".safetensors"))) and not Path(pretrained).expanduser().exists():
            raise MMBenchError(f"open-clip checkpoint {pretrained} not found; pass an existing file or a "
                               f"pretrained tag from open_clip.list_pretrained()")
        precision = PRECISIONS.get(args.dtype, "fp32")
        try:
            self.model, _, self.preprocess = open_clip.create_model_and_transforms(
                args.model, pretrained=pretrained, precision=precision, device=self.device)
            self.tokenizer = open_clip.get_tokenizer(args.model)
        except (RuntimeError, OSError, ValueError) as exc:
            raise MMBenchError(f"open-clip cannot load model={args.model!r} pretrained={pretrained!r} "
                               f"({str(exc).splitlines()[0][:200]}); check the names with open_clip.list_models() "
                               f"and open_clip.list_pretrained(), or pass a local checkpoint") from exc
        self.model.eval()
        self.dtype = next(self.model.parameters()).dtype
        self.context_length = int(getattr(self.tokenizer, "context_length", 77))

    def weights_fingerprint(self) -> str:
        p = self.args.pretrained
        if p and Path(p).expanduser().is_file():
            return hash_model_files(Path(p).expanduser())
        return fingerprint([self.args.model, p, self.args.model_config])

    def extra_description(self) -> dict:
        return {"model_class": type(self.model).__name__, "architecture": self.args.model,
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "dtype": str(self.dtype).replace("torch.", ""), "context_length": self.context_length,
                "image_preprocessing": repr(self.preprocess).replace("\n", " ")}

    def preprocess_images(self, images: Sequence[Any]) -> Any:
        return self.torch.stack([self.preprocess(img) for img in images])

    def embed_images(self, batch: Any) -> np.ndarray:
        with self.torch.inference_mode():
            out = self.model.encode_image(batch.to(self.device, self.dtype, non_blocking=batch.is_pinned()))
        return out.float().cpu().numpy()

    def truncated(self, texts: Sequence[str]) -> list[bool]:
        encode = getattr(self.tokenizer, "encode", None)
        if not callable(encode):  # a tokenizer that cannot say: nothing reported as cut
            return [False] * len(texts)
        # open_clip truncates silently at context_length (+2 for the start and end tokens)
        return [len(encode(t)) + 2 > self.context_length for t in texts]

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        tokens = self.tokenizer(list(texts)).to(self.device)
        with self.torch.inference_mode():
            out = self.model.encode_text(tokens)
        return out.float().cpu().numpy()
