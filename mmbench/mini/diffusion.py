"""mini-diffusion at inference: the pipeline the ``diffusers`` adapter loads from the shipped folder.

A tiny class-conditional pixel-space DDPM on mini-shapes single objects with classifier-free guidance:
diffusers' ``UNet2DModel`` with a class embedding (30 colour x shape classes + one null class for the
unconditional branch), sampled with ``DDIMScheduler``. No stock diffusers pipeline samples a class-conditional
pixel-space UNet with guidance (DiTPipeline needs a VAE and hard-codes ImageNet's null class), so
``MiniShapesDiffusionPipeline`` does: it maps a prompt to the class whose name it contains ("a red circle" ->
"red circle"), runs guided DDIM, and returns PIL images. Training, evaluation and the card are in
mmbench/mini/train/diffusion.py (``python -m mmbench.mini.train.diffusion --out FOLDER``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from diffusers import DDIMScheduler, DiffusionPipeline, UNet2DModel
from diffusers.utils import BaseOutput
from PIL import Image

from mmbench.mini import shapes

IMAGE_SIZE = 32
CLASS_NAMES: tuple[str, ...] = shapes.CLASS_NAMES
NULL_CLASS = len(CLASS_NAMES)  # the "no condition" class of classifier-free guidance


@dataclass
class MiniImageOutput(BaseOutput):
    images: list[Image.Image]


class MiniShapesDiffusionPipeline(DiffusionPipeline):
    """Class-conditional DDIM with classifier-free guidance; prompts name a class ("a red circle").

    A prompt that names no class (or a negative prompt of None) selects the null class; guidance is
    ``eps_uncond + g * (eps_cond - eps_uncond)``, where the negative prompt's class, when given, replaces
    the null class in ``eps_uncond``. Each image draws its initial noise from its own generator (a list of
    generators, one per prompt), and DDIM with eta=0 adds no noise after that, so an image depends on its
    prompt, seed and settings only.
    """

    model_cpu_offload_seq = "unet"

    def __init__(self, unet: UNet2DModel, scheduler: DDIMScheduler, class_names: Sequence[str] | None = None) -> None:
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)
        self.register_to_config(class_names=list(class_names if class_names is not None else CLASS_NAMES))

    def class_ids(self, prompts: Sequence[str | None]) -> list[int]:
        """The class each prompt names (the longest class name it contains), else the null class."""
        names = list(self.config.class_names)
        ids = []
        for p in prompts:
            text = " ".join(str(p or "").lower().replace(".", " ").split())
            found = [i for i, n in enumerate(names) if f" {n} " in f" {text} "]
            ids.append(max(found, key=lambda i: len(names[i])) if found else len(names))
        return ids

    @torch.no_grad()
    def __call__(self, prompt: str | Sequence[str], negative_prompt: str | Sequence[str] | None = None,
                 guidance_scale: float = 2.0, num_inference_steps: int = 10,
                 generator: torch.Generator | Sequence[torch.Generator] | None = None, height: int | None = None,
                 width: int | None = None, output_type: str = "pil", return_dict: bool = True) -> Any:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        n = len(prompts)
        size = int(self.unet.config.sample_size)
        if (height or size) != size or (width or size) != size:
            raise ValueError(f"this pipeline generates {size}x{size} images only; leave height/width unset")
        negatives = [negative_prompt] * n if negative_prompt is None or isinstance(negative_prompt, str) \
            else list(negative_prompt)
        device, dtype = self.unet.device, self.unet.dtype
        cond = torch.tensor(self.class_ids(prompts), device=device)
        uncond = torch.tensor(self.class_ids(negatives), device=device)
        gens = list(generator) if isinstance(generator, (list, tuple)) else [generator] * n
        if len(gens) != n:
            raise ValueError(f"{len(gens)} generators for {n} prompts; pass one per prompt")
        shape = (1, self.unet.config.in_channels, size, size)
        x = torch.cat([torch.randn(shape, generator=g, dtype=torch.float32) for g in gens]).to(device, dtype)
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        for t in self.scheduler.timesteps:
            if guidance_scale == 1.0:
                eps = self.unet(x, t, class_labels=cond).sample
            else:
                e_u, e_c = self.unet(torch.cat([x, x]), t, class_labels=torch.cat([uncond, cond])).sample.chunk(2)
                eps = e_u + guidance_scale * (e_c - e_u)
            x = self.scheduler.step(eps, t, x).prev_sample
        arr = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        images: Any = arr if output_type == "np" else [Image.fromarray(a, "RGB") for a in arr]
        return MiniImageOutput(images=images) if return_dict else (images,)
