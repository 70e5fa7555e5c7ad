"""What the two VLM bridges share: training examples, the image pool, prompt rendering and the training loop.

Both bridges see exactly the same examples in the same order, with the same images, steps, batch size,
learning-rate schedule and starting weights (mini-clip's vision tower, frozen, and mini-lm); only the bridge
(LLaVA's MLP projector vs Idefics's perceiver resampler + gated cross-attention) and the chat format differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from mmbench.mini import prompts, questions, shapes
from mmbench.mini.train import common


# Both bridges read the vision tower's penultimate layer, as LLaVA does: the last layer's patch tokens never feed
# mini-clip's pooled embedding, so contrastive training leaves them unsupervised (with the last layer, mini-llava
# answered 'what color' questions at 0.38 VQA accuracy; with the penultimate one at 0.68, same recipe).
VISION_FEATURE_LAYER = -2


@dataclass(frozen=True)
class BridgeRecipe:
    """Optimisation shared by mini-llava, mini-flamingo and mini-llava-blind."""

    steps: int = 1200
    batch_size: int = 48
    peak_lr: float = 1e-3
    # The new bridge parameters (projector; perceiver + cross-attention) learn 3x faster than the pretrained LM:
    # at 1x, mini-flamingo reached 0.55 VQA accuracy (0.45 on "what shape"); at 3x 0.60 (0.71), mini-llava 0.62.
    bridge_lr_scale: float = 3.0
    warmup: int = 30
    weight_decay: float = 0.0
    pool_scenes: int = 12000  # training scenes whose images and text make the examples
    captions_per_scene: int = 2  # caption examples per scene (different references), beside all its questions


@dataclass(frozen=True)
class Example:
    """One training example: an image of the pool, the user prompt and the assistant's reply."""

    scene: int
    prompt: str
    target: str


def majority(answers: list[str]) -> str:
    """The most frequent of the 10 reference answers (ties: the first in order)."""
    return max(answers, key=answers.count)


def make_examples(scenes: list[shapes.Scene], seed: int, captions_per_scene: int) -> list[Example]:
    """Per scene: caption examples (distinct references), every question with its majority answer, and a
    lettered multiple-choice question and an object-existence question (mmbench.mini.questions)."""
    rng = np.random.default_rng([seed, 303])
    out = []
    for i, s in enumerate(scenes):
        for k in rng.choice(len(s.captions), size=captions_per_scene, replace=False):
            out.append(Example(i, prompts.CAPTION_PROMPT, s.captions[int(k)]))
        out += [Example(i, prompts.vqa_prompt(q["question"]), majority(q["answers"])) for q in s.questions]
        out += [Example(i, p, r) for p, r in questions.training_examples(s, np.random.default_rng([seed, 909, i]))]
    return out


def pool_pixels(scenes: list[shapes.Scene], *, blind: bool, seed: int) -> np.ndarray:
    """(N, 64, 64, 3) uint8 images of the pool; uniform noise instead of the scenes when ``blind``."""
    if blind:
        rng = np.random.default_rng([seed, 404])
        return rng.integers(0, 256, size=(len(scenes), shapes.IMAGE_SIZE, shapes.IMAGE_SIZE, 3), dtype=np.uint8)
    return np.stack([np.asarray(s.image, dtype=np.uint8) for s in scenes])


def normalise(u8: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> the processors' normalised (B, 3, H, W) float tensor."""
    x = torch.from_numpy(u8).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - torch.tensor(common.IMAGE_MEAN).view(1, 3, 1, 1)) / torch.tensor(common.IMAGE_STD).view(1, 3, 1, 1)


def user_message(prompt: str, n_images: int = 1) -> list[dict]:
    """The one-turn conversation the harness sends: the image (a video's frames: one per frame), then the
    prompt."""
    return [{"role": "user", "content": [{"type": "image"}] * n_images + [{"type": "text", "text": prompt}]}]


def chat_template_of(processor) -> str:
    """The processor's chat template, or its tokenizer's (IdeficsProcessor drops its own when loaded)."""
    return processor.chat_template or processor.tokenizer.chat_template


def render(processor, prompt: str, n_images: int = 1) -> str:
    """What ``apply_chat_template`` renders for one user prompt, with the generation prompt."""
    return processor.apply_chat_template(user_message(prompt, n_images), add_generation_prompt=True,
                                         tokenize=False, chat_template=chat_template_of(processor))


def pad_right(seqs: list[list[int]], labels: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    lab = torch.full((len(seqs), n), -100, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, (s, l) in enumerate(zip(seqs, labels)):
        ids[i, :len(s)], lab[i, :len(l)], mask[i, :len(s)] = torch.tensor(s), torch.tensor(l), 1
    return {"input_ids": ids, "attention_mask": mask, "labels": lab}


class PromptCache:
    """Token ids of rendered prompts (a few hundred distinct ones) and of targets, computed once each."""

    def __init__(self, render_ids: Callable[[str], list[int]], tokenizer) -> None:
        self._render_ids, self._tok = render_ids, tokenizer
        self._prompts: dict[str, list[int]] = {}

    def prompt(self, prompt: str) -> list[int]:
        if prompt not in self._prompts:
            self._prompts[prompt] = self._render_ids(prompt)
        return self._prompts[prompt]

    def target(self, target: str) -> list[int]:
        return self._tok(target, add_special_tokens=False)["input_ids"] + [self._tok.eos_token_id]


def text_batch(examples: list[Example], cache: PromptCache, pad_id: int) -> dict[str, torch.Tensor]:
    """Prompt + reply token ids, right-padded, with the loss on the reply (and its eos) only."""
    seqs, labels = [], []
    for ex in examples:
        p, t = cache.prompt(ex.prompt), cache.target(ex.target)
        seqs.append(p + t)
        labels.append([-100] * len(p) + t)
    return pad_right(seqs, labels, pad_id)


Encoder = Callable[[list[Example], torch.Tensor], dict[str, torch.Tensor]]


def prompt_encoder(render_ids: Callable[[str], list[int]], tokenizer) -> Encoder:
    """An encoder whose batches are the rendered prompts' ids (cached) + the replies, right-padded, with the
    images as ``pixel_values`` (LLaVA, BLIP-2, and a LLaVA reading frames)."""
    cache = PromptCache(render_ids, tokenizer)

    def encode(examples: list[Example], pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = text_batch(examples, cache, tokenizer.pad_token_id)
        batch["pixel_values"] = pixels
        return batch

    return encode


def train_bridge(model: torch.nn.Module, encode: Encoder, examples: list[Example], pixels: np.ndarray,
                 r: BridgeRecipe, seed: int, bridge: list[torch.nn.Parameter]) -> common.TrainLog:
    """The shared loop: fixed example order, loss on the reply tokens only, frozen parameters untouched;
    ``bridge`` (the new parameters between vision and language) learn at ``r.bridge_lr_scale`` x the rate."""
    common.seed_everything(seed)
    order = np.random.default_rng([seed, 505]).permutation(len(examples))
    opt = common.make_optimizer(model.parameters(), r.peak_lr, r.weight_decay, bridge, r.bridge_lr_scale)
    log = common.TrainLog(steps=r.steps, batch_size=r.batch_size, peak_lr=r.peak_lr)
    trainable = [p for p in model.parameters() if p.requires_grad]
    losses = []
    model.train()
    with common.Stopwatch() as sw:
        for step in range(r.steps):
            batch = [examples[order[(step * r.batch_size + j) % len(order)]] for j in range(r.batch_size)]
            inputs = encode(batch, normalise(pixels[[ex.scene for ex in batch]]))
            common.set_lr(opt, common.lr_at(step, r.steps, r.peak_lr, r.warmup))
            loss = model(**inputs).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            opt.step()
            losses.append(loss.item())
    model.eval()
    log.seconds, log.cpu_seconds, log.losses = sw.seconds, sw.cpu_seconds, common.loss_curve(losses)
    return log
