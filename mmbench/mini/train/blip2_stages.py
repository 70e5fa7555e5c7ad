"""mini-blip2 trained in BLIP-2's two stages: the experiment behind its card's note on why it trails.

``python -m mmbench.mini.train.blip2_stages --out FOLDER [--stage1-steps N] [--train-qformer] [--quick]``

The shipped mini-blip2 is trained like the other two bridges (one stage, the language model's loss, the bridge
from random weights), which is what the bridging comparison holds equal. BLIP-2 itself first trains its Q-Former
alone against text (stage 1), then connects it to the language model (stage 2). Here:

- stage 1: image-text contrastive learning (BLIP-2's ITC: an image-text similarity is the best of the queries')
  of the Q-Former and its queries against mini-clip's frozen text embeddings of each bridge-pool scene's first
  caption, with a linear head from the query outputs to the text embedding; symmetric InfoNCE, learned
  temperature, cosine schedule; the vision tower is the shipped mini-blip2's (frozen);
- stage 2: the shipped recipe unchanged (same examples, order, steps, schedule), with the Q-Former and its
  queries frozen (``--train-qformer``: trained at the bridge's rate, as the shipped one-stage model).

It prints and writes (``result.json`` in ``--out``) the card's VQA accuracy and CIDEr-D and the bridge probes
after each stage. Not a shipped model: it uses more than the equal budget (the stage-1 steps and mini-clip's
text tower).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from transformers import AutoProcessor, Blip2ForConditionalGeneration, CLIPModel, CLIPProcessor, LlamaForCausalLM

from mmbench.mini import shapes
from mmbench.mini.train import blip2, bridge_probe, common, evaluate, vlm
from mmbench.mini.train import tokenizer as tok_lib
from mmbench.mini.train.options import SHIPPED


def text_embeddings(clip: CLIPModel, processor: CLIPProcessor, texts: list[str]) -> torch.Tensor:
    """mini-clip's normalised text embeddings (frozen), in chunks."""
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), 500):
            feats = clip.get_text_features(**processor(text=texts[i:i + 500], return_tensors="pt", padding=True))
            out.append(feats.pooler_output if hasattr(feats, "pooler_output") else feats)
    return torch.nn.functional.normalize(torch.cat(out), dim=-1)


def pretrain_qformer(model: Blip2ForConditionalGeneration, pixels: np.ndarray, texts: torch.Tensor, seed: int,
                     steps: int, batch_size: int = 64, peak_lr: float = 1e-3, warmup: int = 20) -> list[float]:
    """Stage 1 (see the module doc); returns the loss per step."""
    common.seed_everything(seed)
    head = torch.nn.Linear(model.config.qformer_config.hidden_size, texts.shape[1])
    logit_scale = torch.nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))
    params = [*model.qformer.parameters(), model.query_tokens, *head.parameters(), logit_scale]
    opt = torch.optim.AdamW(params, lr=peak_lr, weight_decay=0.0)
    rng = np.random.default_rng([seed, 77])
    losses = []
    for step in range(steps):
        idx = rng.choice(len(pixels), size=min(batch_size, len(pixels)), replace=False)
        for g in opt.param_groups:
            g["lr"] = peak_lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * step / steps))
        with torch.no_grad():
            vision = model.vision_model(pixel_values=vlm.normalise(pixels[idx])).last_hidden_state
        queries = model.qformer(query_embeds=model.query_tokens.expand(len(idx), -1, -1),
                                encoder_hidden_states=vision).last_hidden_state
        z = torch.nn.functional.normalize(head(queries), dim=-1)
        sim = torch.einsum("bqd,cd->bqc", z, texts[idx]).max(1).values * logit_scale.exp()
        target = torch.arange(len(idx))
        loss = (torch.nn.functional.cross_entropy(sim, target) + torch.nn.functional.cross_entropy(sim.T, target)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mmbench.mini.train.blip2_stages", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the model and result.json")
    p.add_argument("--models", type=Path, default=SHIPPED, help="folder with mini-clip, mini-lm and mini-blip2")
    p.add_argument("--stage1-steps", type=int, default=400)
    p.add_argument("--train-qformer", action="store_true", help="stage 2 trains the Q-Former too (default: frozen)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a few steps and a tiny evaluation (smoke test)")
    args = p.parse_args(argv)
    missing = [m for m in ("mini-clip", "mini-lm", "mini-blip2") if not (args.models / m / "config.json").is_file()]
    if missing:
        p.error(f"--models {args.models} lacks {', '.join(missing)}: pass the folder of the mini zoo "
                f"(default: the shipped one)")
    from mmbench.mini.train import driver  # the shipped recipe (imported here: it imports every model family)

    recipe = driver.QUICK if args.quick else driver.FULL
    eval_n = 4 if args.quick else None
    stage1_steps = 3 if args.quick else args.stage1_steps
    clip = CLIPModel.from_pretrained(args.models / "mini-clip", dtype=torch.float32)
    lm = LlamaForCausalLM.from_pretrained(args.models / "mini-lm", dtype=torch.float32)
    tower = Blip2ForConditionalGeneration.from_pretrained(args.models / "mini-blip2", dtype=torch.float32).vision_model
    words = tok_lib.vlm_vocabulary(tok_lib.vocabulary())
    common.seed_everything(args.seed)  # as mmbench mini train extends mini-lm's vocabulary
    lm.resize_token_embeddings(len(tok_lib.build_tokenizer(words)))
    pool = shapes.generate("train", args.seed, recipe.bridge.pool_scenes)
    examples = vlm.make_examples(pool, args.seed, recipe.bridge.captions_per_scene)
    pixels = vlm.pool_pixels(pool, blind=False, seed=args.seed)
    common.seed_everything(args.seed)
    model, processor = blip2.build(clip, lm, blip2.build_tokenizer(words), tower, recipe.blip2)
    torch.set_num_threads(common.THREADS)
    clip_processor = CLIPProcessor.from_pretrained(args.models / "mini-clip")
    texts = text_embeddings(clip, clip_processor, [s.captions[0] for s in pool])
    losses = pretrain_qformer(model, pixels, texts, args.seed, stage1_steps)
    after_stage1 = bridge_probe.measure(model)
    if not args.train_qformer:
        model.qformer.requires_grad_(False)
        model.query_tokens.requires_grad_(False)
    model.train()
    bridge = [q for q in blip2.bridge_parameters(model) if q.requires_grad]
    log = vlm.train_bridge(model, blip2.encoder(processor), examples, pixels, recipe.bridge, args.seed, bridge)
    common.save_compact(model, processor, args.out)
    model = Blip2ForConditionalGeneration.from_pretrained(args.out, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(args.out)
    vqa = evaluate.vqa_scores(model, processor, n=eval_n)
    result = {"stage1_steps": stage1_steps, "stage2_trains_qformer": args.train_qformer, "seed": args.seed,
              "stage1_loss": common.loss_curve(losses), "stage2_seconds": round(log.seconds),
              "vqa_accuracy": vqa["vqa_accuracy"], "vqa_per_question_type": vqa["per_question_type"],
              "cider": evaluate.caption_scores(model, processor, n=eval_n)["cider"],
              "bridge_probe_after_stage1": after_stage1, "bridge_probe": bridge_probe.measure(model)}
    (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
