"""mini-clip: a tiny CLIPModel trained contrastively on mini-shapes images and their captions and class prompts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, PreTrainedTokenizerFast

from mmbench.mini import prompts, shapes
from mmbench.mini.train import common


@dataclass(frozen=True)
class ClipRecipe:
    """Architecture and optimisation of mini-clip (the vision half is reused, frozen, by both VLM bridges)."""

    width: int = 128
    vision_layers: int = 4
    text_layers: int = 2
    heads: int = 4
    mlp_ratio: int = 3
    projection_dim: int = 128
    patch_size: int = 8
    steps: int = 2000
    batch_size: int = 64
    # Tiny ViTs trained from scratch only learn shape with a small learning rate (1e-3 and more: never).
    peak_lr: float = 4e-4
    warmup: int = 50
    weight_decay: float = 0.05
    prompt_prob: float = 0.3  # share of single-object scenes paired with a zero-shot class prompt
    single_steps: int = 800  # first phase: single-object scenes only (a curriculum: shape is learnt there first)
    single_prompt_prob: float = 0.7  # in the first phase, share of scenes paired with a zero-shot class prompt


def vision_config(r: ClipRecipe) -> dict:
    """The vision tower's hyper-parameters (shared verbatim by LLaVA's CLIPVisionConfig and Idefics's)."""
    return dict(image_size=shapes.IMAGE_SIZE, patch_size=r.patch_size, hidden_size=r.width,
                intermediate_size=r.width * r.mlp_ratio, num_hidden_layers=r.vision_layers,
                num_attention_heads=r.heads, hidden_act="gelu", layer_norm_eps=1e-5)


def image_processor() -> CLIPImageProcessor:
    """Resize/crop to 64 px and CLIP-normalise (identity resize on mini-shapes images)."""
    return CLIPImageProcessor(size={"shortest_edge": shapes.IMAGE_SIZE},
                              crop_size={"height": shapes.IMAGE_SIZE, "width": shapes.IMAGE_SIZE},
                              image_mean=list(common.IMAGE_MEAN), image_std=list(common.IMAGE_STD))


def build(tokenizer: PreTrainedTokenizerFast, r: ClipRecipe) -> tuple[CLIPModel, CLIPProcessor]:
    """A randomly initialised mini-clip and its processor."""
    text = dict(vocab_size=len(tokenizer), hidden_size=r.width, intermediate_size=r.width * r.mlp_ratio,
                num_hidden_layers=r.text_layers, num_attention_heads=r.heads, max_position_embeddings=48,
                hidden_act="gelu", pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id)
    config = CLIPConfig(text_config=text, vision_config=vision_config(r), projection_dim=r.projection_dim)
    return CLIPModel(config), CLIPProcessor(image_processor=image_processor(), tokenizer=tokenizer)


_SIZE_WORDS = {"small", "large", "little", "big"}
_POSITION_WORDS = {"left", "right", "top", "bottom", "center", "middle"}


def _text_for(scene: shapes.Scene, change: str, rng: np.random.Generator, prompt_prob: float) -> str:
    """A caption of ``scene`` that names the attribute its twin differs in (or a class prompt, for shape)."""
    if change == "shape" and scene.label is not None and rng.random() < prompt_prob:
        return prompts.zeroshot_prompts(scene.label)[int(rng.integers(len(prompts.ZEROSHOT_TEMPLATES)))]
    words = {"size": _SIZE_WORDS, "position": _POSITION_WORDS}.get(change)
    caps = [c for c in scene.captions if words is None or words & set(c.rstrip(".").replace(",", "").split())]
    caps = caps or scene.captions
    return caps[int(rng.integers(len(caps)))]


def _contrastive_loss(model: CLIPModel, pixel: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor,
                      texts: list[str]) -> torch.Tensor:
    """Symmetric InfoNCE; identical texts in a batch (e.g. two "a red circle." prompts) all count as positives."""
    img = F.normalize(model.get_image_features(pixel_values=pixel).pooler_output, dim=-1)
    txt = F.normalize(model.get_text_features(input_ids=ids, attention_mask=mask).pooler_output, dim=-1)
    logits = model.logit_scale.exp().clamp(max=100) * txt @ img.T  # (texts, images)
    index = {t: i for i, t in enumerate(texts)}
    key = torch.tensor([index[t] for t in texts])
    target = (key[:, None] == key[None, :]).float()
    target = target / target.sum(dim=1, keepdim=True)
    return 0.5 * (torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean()
                  + torch.sum(-target * F.log_softmax(logits.T, dim=1), dim=1).mean())


def train(model: CLIPModel, processor: CLIPProcessor, r: ClipRecipe, seed: int) -> common.TrainLog:
    """Contrastive training on a fresh stream of training scene pairs (no scene is seen twice)."""
    common.seed_everything(seed)
    rng = np.random.default_rng([seed, 101])
    twins = shapes.iter_twins(seed)
    singles = shapes.iter_scenes("train", seed)
    opt = common.make_optimizer(model.parameters(), r.peak_lr, r.weight_decay)
    log = common.TrainLog(steps=r.steps, batch_size=r.batch_size, peak_lr=r.peak_lr)
    losses = []
    model.train()
    with common.Stopwatch() as sw:
        for step in range(r.steps):
            scenes, texts = [], []
            if step < r.single_steps:  # one object per image: the text names exactly its colour and shape
                while len(scenes) < r.batch_size:
                    s = next(singles)
                    if s.label is not None:
                        scenes.append(s)
                        texts.append(_text_for(s, "shape", rng, r.single_prompt_prob))
            else:
                for _ in range(r.batch_size // 2):  # pairs of scenes that differ in one attribute
                    a, b, change = next(twins)
                    scenes += [a, b]
                    texts += [_text_for(a, change, rng, r.prompt_prob), _text_for(b, change, rng, r.prompt_prob)]
            tok = processor.tokenizer(texts, padding=True, return_tensors="pt")
            common.set_lr(opt, common.lr_at(step, r.steps, r.peak_lr, r.warmup))
            loss = _contrastive_loss(model, common.pixel_values([s.image for s in scenes]),
                                     tok["input_ids"], tok["attention_mask"], texts)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
    model.eval()
    log.seconds, log.cpu_seconds, log.losses = sw.seconds, sw.cpu_seconds, common.loss_curve(losses)
    return log


@torch.no_grad()
def embed_images(model: CLIPModel, processor: CLIPProcessor, images: list, batch: int = 250) -> np.ndarray:
    out = []
    for i in range(0, len(images), batch):
        px = processor(images=images[i:i + batch], return_tensors="pt")["pixel_values"]
        out.append(F.normalize(model.get_image_features(pixel_values=px).pooler_output, dim=-1))
    return torch.cat(out).numpy()


@torch.no_grad()
def embed_texts(model: CLIPModel, processor: CLIPProcessor, texts: list[str], batch: int = 500) -> np.ndarray:
    out = []
    for i in range(0, len(texts), batch):
        tok = processor(text=texts[i:i + batch], return_tensors="pt", padding=True)
        out.append(F.normalize(model.get_text_features(**tok).pooler_output, dim=-1))
    return torch.cat(out).numpy()


def evaluate(model: CLIPModel, processor: CLIPProcessor, seed: int = shapes.DEFAULT_SEED,
             n: int | None = None) -> dict[str, float]:
    """Zero-shot top-1 (zeroshot-test, prompt ensemble) and COCO-style recall@k (retrieval-test), standard API."""
    model.eval()
    zs = shapes.generate("zeroshot-test", seed, n)
    names = shapes.class_names("zeroshot-test")
    t = embed_texts(model, processor, [p for c in names for p in prompts.zeroshot_prompts(c)])
    t = t.reshape(len(names), len(prompts.ZEROSHOT_TEMPLATES), -1).mean(axis=1)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    pred = (embed_images(model, processor, [s.image for s in zs]) @ t.T).argmax(axis=1)
    top1 = float(np.mean([names[p] == s.label for p, s in zip(pred, zs)]))

    rt = shapes.generate("retrieval-test", seed, n)
    img = embed_images(model, processor, [s.image for s in rt])
    caps = [c for s in rt for c in s.captions]
    owner = np.repeat(np.arange(len(rt)), [len(s.captions) for s in rt])
    sim = embed_texts(model, processor, caps) @ img.T  # (captions, images)
    # Rank of the matching image for each caption (ties broken pessimistically).
    t2i_rank = (sim > sim[np.arange(len(caps)), owner][:, None]).sum(axis=1)
    # For each image, the best rank among its own captions.
    order = np.argsort(-sim.T, axis=1, kind="stable")  # (images, captions)
    first_own = np.array([np.flatnonzero(owner[order[i]] == i)[0] for i in range(len(rt))])
    scores = {"zeroshot_top1": top1}
    for k in (1, 5, 10):
        scores[f"t2i_recall@{k}"] = float(np.mean(t2i_rank < k))
        scores[f"i2t_recall@{k}"] = float(np.mean(first_own < k))
    return scores
