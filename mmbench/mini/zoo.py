"""The mini model zoo as registered model names: each is an adapter (the same one that loads hub models)
pointed at a folder shipped in this package."""

from __future__ import annotations

from pathlib import Path

from mmbench.adapters.base import ModelPreset

MODELS_DIR = Path(__file__).resolve().parent / "models"


def model_dir(name: str) -> str:
    return str(MODELS_DIR / name)


MINI_CLIP = ModelPreset("hf-clip", {"pretrained": model_dir("mini-clip")},
                        "CLIPModel trained contrastively on mini-shapes (shipped)")
MINI_LLAVA = ModelPreset("hf-llava", {"pretrained": model_dir("mini-llava")},
                         "LLaVA-style: frozen mini-clip vision + MLP projector into mini-lm (shipped)")
MINI_FLAMINGO = ModelPreset("hf-idefics", {"pretrained": model_dir("mini-flamingo")},
                            "Flamingo-style (Idefics v1): frozen mini-clip vision + perceiver resampler + gated "
                            "cross-attention into mini-lm (shipped)")
MINI_BLIP2 = ModelPreset("hf-blip2", {"pretrained": model_dir("mini-blip2")},
                         "BLIP-2-style: mini-clip's vision features (distilled into BLIP-2's vision tower) read by a "
                         "Q-Former's 16 learned queries, projected into mini-lm (shipped)")
MINI_LLAVA_BLIND = ModelPreset("hf-llava", {"pretrained": model_dir("mini-llava-blind")},
                               "mini-llava's recipe trained on noise images: collapsed to text-only (shipped)")
MINI_VIDEO = ModelPreset("hf-llava", {"pretrained": model_dir("mini-video")},
                         "LLaVA over frame sequences: mini-llava fine-tuned on mini-motion clips, 4 frames as 4 images "
                         "(65 tokens each, mini-lm's RoPE range raised to 512 positions) (shipped)")
MINI_DIFFUSION = ModelPreset("diffusers", {"pretrained": model_dir("mini-diffusion")},
                             "tiny class-conditional DDPM with classifier-free guidance, trained on mini-shapes "
                             "(shipped, diffusers format)")
