"""Training, evaluation and the card of mini-diffusion (the pipeline itself: mmbench/mini/diffusion.py).

Training (``python -m mmbench.mini.train.diffusion --out FOLDER``): v-prediction MSE on 32x32 single-object
scenes of the mini-shapes *train* split (box-downsampled from 64x64), class dropped to the null class 15%
of the time, AdamW + cosine schedule, EMA weights saved in float16. The folder's README.md is the card.
The scores on the card come from the runner, exactly as ``mmbench run`` computes them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from diffusers import DDIMScheduler, UNet2DModel
from PIL import Image

from mmbench import files
from mmbench.mini import shapes
from mmbench.mini.diffusion import CLASS_NAMES, IMAGE_SIZE, NULL_CLASS, MiniShapesDiffusionPipeline


# ------------------------------------------------------------------------------------------- the model

@dataclass(frozen=True)
class Recipe:
    """Everything that defines a training run (written into the card)."""

    steps: int = 3000
    batch_size: int = 32
    lr: float = 2e-3
    warmup: int = 100
    weight_decay: float = 0.0
    p_uncond: float = 0.15
    ema_decay: float = 0.995
    n_train_images: int = 9000
    block_out_channels: tuple[int, ...] = (16, 32, 64)
    layers_per_block: int = 1
    attention_at_lowest: bool = True
    seed: int = 0


def build_unet(recipe: Recipe) -> UNet2DModel:
    levels = len(recipe.block_out_channels)
    down = ["DownBlock2D"] * levels
    if recipe.attention_at_lowest:
        down[-1] = "AttnDownBlock2D"
    up = [t.replace("Down", "Up") for t in reversed(down)]
    return UNet2DModel(sample_size=IMAGE_SIZE, in_channels=3, out_channels=3,
                       block_out_channels=tuple(recipe.block_out_channels), down_block_types=tuple(down),
                       up_block_types=tuple(up), layers_per_block=recipe.layers_per_block,
                       num_class_embeds=len(CLASS_NAMES) + 1, norm_num_groups=8,
                       attention_head_dim=min(32, recipe.block_out_channels[-1]))


def build_scheduler(prediction_type: str = "v_prediction") -> DDIMScheduler:
    """Cosine noise schedule, 1000 training steps; 'trailing' spacing so few-step sampling starts at t=999.

    v-prediction: at t=999 the cosine schedule leaves almost no signal, where an epsilon-predicting model's
    x0 estimate divides by ~0 (saturated, wrongly tinted backgrounds in few-step sampling); v stays
    well-conditioned at every noise level."""
    return DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=True,
                         prediction_type=prediction_type, timestep_spacing="trailing", set_alpha_to_one=True)


def training_images(n: int, seed: int = shapes.DEFAULT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` single-object scenes of the train split: (n, 3, 32, 32) in [-1, 1] and class ids."""
    xs, ys = [], []
    for scene in shapes.iter_scenes("train", seed):
        if scene.label is None:
            continue
        small = scene.image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX)
        xs.append(np.asarray(small, dtype=np.uint8))
        ys.append(CLASS_NAMES.index(scene.label))
        if len(xs) == n:
            break
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return x, torch.tensor(ys)


def train(recipe: Recipe, log_every: int = 250) -> tuple[MiniShapesDiffusionPipeline, dict]:
    """Train the UNet; returns the pipeline (with EMA weights) and training facts for the card."""
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from diffusers.training_utils import EMAModel

    torch.manual_seed(recipe.seed)
    start = time.perf_counter()
    x_all, y_all = training_images(recipe.n_train_images)
    unet = build_unet(recipe).train()
    scheduler = build_scheduler()
    ema = EMAModel(unet.parameters(), decay=recipe.ema_decay)
    opt = torch.optim.AdamW(unet.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    lr_sched = get_cosine_schedule_with_warmup(opt, recipe.warmup, recipe.steps)
    g = torch.Generator().manual_seed(recipe.seed)
    log = []
    running = 0.0
    for step in range(1, recipe.steps + 1):
        idx = torch.randint(0, x_all.shape[0], (recipe.batch_size,), generator=g)
        x0, y = x_all[idx], y_all[idx].clone()
        y[torch.rand(recipe.batch_size, generator=g) < recipe.p_uncond] = NULL_CLASS
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (recipe.batch_size,), generator=g)
        target = scheduler.get_velocity(x0, noise, t) if scheduler.config.prediction_type == "v_prediction" else noise
        loss = torch.nn.functional.mse_loss(unet(scheduler.add_noise(x0, noise, t), t, class_labels=y).sample, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        lr_sched.step()
        ema.step(unet.parameters())
        running += loss.item()
        if step % log_every == 0 or step == recipe.steps:
            n = log_every if step % log_every == 0 else step % log_every
            log.append({"step": step, "loss": round(running / n, 5), "seconds": round(time.perf_counter() - start, 1)})
            print(json.dumps(log[-1]), flush=True)
            running = 0.0
    ema.copy_to(unet.parameters())
    pipe = MiniShapesDiffusionPipeline(unet.eval(), scheduler)
    facts = {"train_seconds": round(time.perf_counter() - start, 1), "torch_threads": torch.get_num_threads(),
             "parameters": sum(p.numel() for p in unet.parameters()), "log": log}
    return pipe, facts


def save(pipe: MiniShapesDiffusionPipeline, folder: Path) -> None:
    """save_pretrained, then the UNet's weights rewritten in float16 (the size budget): loading with
    dtype=float32 upcasts them, so the shipped model is exactly these rounded weights."""
    from safetensors.torch import load_file, save_file

    pipe.save_pretrained(folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    save_file({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in state.items()}, weights,
              metadata={"format": "pt"})


def colour_accuracy(images: Sequence[Image.Image], prompts: Sequence[str], min_pixels: int = 5) -> float:
    """Share of images whose object (pixels far from grey) is nearest in median colour to the prompt's colour:
    a model-free check of class adherence (shape is left to CLIP-score)."""
    hits = 0
    for image, prompt in zip(images, prompts):
        px = np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3)
        obj = px[np.abs(px - px.mean(axis=1, keepdims=True)).max(axis=1) > 40]
        if len(obj) < min_pixels:
            continue
        named = next((c for c in shapes.COLOURS if c in prompt.split()), None)
        centre = np.median(obj, axis=0)  # the median resists edge pixels blended with the background
        dists = {c: float(np.linalg.norm(centre - np.asarray(v))) for c, v in shapes.COLOURS.items()}
        hits += named is not None and min(dists, key=dists.__getitem__) == named
    return hits / max(1, len(images))


def evaluate(folder: Path, tasks: Sequence[str] = ("mini-generation-g1", "mini-generation", "mini-generation-g4"),
             extractor: str | None = None) -> dict[str, dict]:
    """The mini suite's generation tasks on the pipeline in ``folder``, through the runner exactly as
    ``mmbench run`` scores them (run seed 0): their metric values plus the colour accuracy of the generated
    images (read back from the run's artifacts). Needs mini-clip (the tasks' extractor), or ``extractor``:
    another image-text embedder for both the features and CLIP-score."""
    import tempfile

    from mmbench.results import RunResult
    from mmbench.runner import Runner
    from mmbench.specs import ModelSpec, RunOptions, RunSpec
    from mmbench.tasks.catalog import TaskCatalog

    catalog = TaskCatalog()
    specs = []
    for name in tasks:
        spec = catalog.task_spec(name)
        if extractor is not None:
            spec = dataclasses.replace(spec, config={**spec.config, "features": extractor, "clip_model": extractor})
        specs.append(spec)
    with tempfile.TemporaryDirectory() as out:
        options = RunOptions(output_dir=Path(out), cache=False, seed=0, show_progress=False, fail_fast=True)
        run, run_dir = Runner(options).run(RunSpec(models=(ModelSpec("diffusers", {"pretrained": str(folder)}),),
                                                   tasks=tuple(specs)))
        assert isinstance(run, RunResult) and run_dir is not None
        result = {}
        for r in run.results:
            art = run_dir / r.files["artifacts"]
            lines = [row for _, row in files.iter_jsonl(art / "prompts.jsonl", "generated-image prompts")]
            images = [Image.open(art / line["image"]).convert("RGB") for line in lines]
            result[r.task] = {"guidance_scale": r.task_info["generation"]["guidance_scale"],
                              **{m["name"]: round(float(m["value"]), 4) for m in r.metrics if m["value"] is not None},
                              "colour_accuracy": round(colour_accuracy(images, [line["prompt"] for line in lines]), 4)}
    return result


def write_card(folder: Path, recipe: Recipe, facts: dict, scores: dict, extractor: str = "mini-clip") -> None:
    """README.md + card.json in the zoo's card format (mmbench.mini.train.cards)."""
    from mmbench.mini.train import cards

    losses = [e["loss"] for e in facts["log"]]
    step = max(1, len(losses) // 10)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    card = {
        "name": "mini-diffusion", "bytes": size,
        "summary": "A tiny class-conditional pixel-space DDPM with classifier-free guidance, trained on 32x32 "
                   "single-object mini-shapes scenes: the generator of the mini suite's text-to-image tasks.",
        "class": "MiniShapesDiffusionPipeline (diffusers UNet2DModel + DDIMScheduler)",
        "processor": "none: a prompt selects the class whose name it contains",
        "architecture": {"UNet": f"UNet2DModel, 32x32x3, block channels {list(recipe.block_out_channels)}, "
                                 f"{recipe.layers_per_block} resnet(s) per level, "
                                 f"{'attention at the lowest level and ' if recipe.attention_at_lowest else ''}"
                                 "in the mid block",
                         "conditioning": f"class embedding: {len(CLASS_NAMES)} colour x shape classes + 1 null "
                                         "class (unconditional branch)",
                         "noise schedule": "1000 steps, squaredcos_cap_v2 (cosine), v-prediction",
                         "sampler": "DDIM (eta 0, trailing timestep spacing, x0 clipped to [-1, 1])"},
        "parameters": {"total": facts["parameters"], "trainable": facts["parameters"]},
        "training": {"data": f"mini-shapes train split, the first {recipe.n_train_images} single-object scenes, "
                             "box-downsampled 64->32 px",
                     "init": f"random (seed {recipe.seed})", "frozen": "nothing",
                     "steps": recipe.steps, "batch_size": recipe.batch_size, "peak_lr": recipe.lr,
                     "seed": recipe.seed, "seconds": facts["train_seconds"],
                     "cpu_seconds": facts["train_seconds"] * facts["torch_threads"],
                     "losses": [round(x, 4) for x in losses[step - 1::step][:10]]},
        "scores": {f"{name} (guidance {v['guidance_scale']})": ", ".join(f"{k}={x}" for k, x in v.items()
                                                                         if k != "guidance_scale")
                   for name, v in scores.items()},
        "notes": [f"recipe: {json.dumps(asdict(recipe))}",
                  f"class dropout to the null class: {recipe.p_uncond}; EMA decay {recipe.ema_decay}; AdamW, "
                  f"cosine schedule with {recipe.warmup} warm-up steps; weights stored in float16",
                  "scores: the mini suite's tasks (150 prompts, 8 DDIM steps, run seed 0; FID/KID against 150 "
                  f"held-out 64x64 images); features and CLIP-score from {extractor}; colour_accuracy: share of "
                  "images whose object's median colour is nearest the prompt's colour"
                  if scores else "scores: not measured yet (they need mini-clip): python -m mmbench.mini.train.diffusion "
                                 "--out mmbench/mini/models/mini-diffusion --eval-only",
                  "the generator makes 32x32 images; the feature extractor resizes them like any other input",
                  "retrain this model alone: python -m mmbench.mini.train.diffusion "
                  "--out mmbench/mini/models/mini-diffusion", *([facts["note"]] if "note" in facts else [])],
        "usage": ["from mmbench.adapters import load_model", "from mmbench.specs import ModelSpec",
                  "model = load_model(ModelSpec('mini-diffusion'))",
                  "# or: DiffusionPipeline subclass mmbench.mini.diffusion.MiniShapesDiffusionPipeline"
                  ".from_pretrained(folder)",
                  "mmbench run --model mini-diffusion --tasks mini-generation"],
    }
    cards.write_card(folder, card)


TRAINING_FILE = "training.json"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="train the mini-diffusion generator (mini-shapes, 2 CPU cores), "
                                            "score it on the mini suite's generation tasks and write its card")
    p.add_argument("--out", type=Path, required=True, help="the pipeline folder to write")
    p.add_argument("--steps", type=int, default=Recipe.steps)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-eval", action="store_true", help="skip the scores (they need mini-clip)")
    p.add_argument("--eval-only", action="store_true",
                   help=f"re-score the model already in --out (from its {TRAINING_FILE}) and rewrite the card")
    p.add_argument("--eval-extractor", default=None,
                   help="features and CLIP-score model for the scores (default: the tasks' own, mini-clip)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.eval_only:
        saved = json.loads((args.out / TRAINING_FILE).read_text())
        recipe = Recipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.pop("recipe").items()})
        facts = saved
    else:
        recipe = Recipe(steps=args.steps)
        pipe, facts = train(recipe)
        save(pipe, args.out)
        (args.out / TRAINING_FILE).write_text(json.dumps({"recipe": asdict(recipe), **facts}, indent=1) + "\n")
    scores = {} if args.no_eval else evaluate(args.out, extractor=args.eval_extractor)
    write_card(args.out, recipe, facts, scores, args.eval_extractor or "mini-clip")
    print(json.dumps(scores, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
