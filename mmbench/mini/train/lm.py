"""mini-lm: a tiny LlamaForCausalLM pre-trained on the text of the training captions and Q&A.

Its weights initialise the language model of both VLM bridges (LLaVA's LlamaModel and Idefics's LLaMA-style
decoder), so the LLaMA hyper-parameters here are chosen to exist in both formats: no grouped-query attention,
no biases, SiLU gated MLP, RMSNorm, default RoPE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from mmbench.mini import shapes
from mmbench.mini.train import common, vlm


@dataclass(frozen=True)
class LmRecipe:
    """Architecture and optimisation of mini-lm."""

    hidden: int = 128
    layers: int = 4
    heads: int = 4
    intermediate: int = 384
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    steps: int = 300
    batch_size: int = 128
    peak_lr: float = 2e-3
    warmup: int = 20
    weight_decay: float = 0.05


def llama_config(tokenizer: PreTrainedTokenizerFast, r: LmRecipe) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=r.hidden, intermediate_size=r.intermediate,
        num_hidden_layers=r.layers, num_attention_heads=r.heads, num_key_value_heads=r.heads,
        hidden_act="silu", max_position_embeddings=256, rms_norm_eps=r.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": r.rope_theta}, tie_word_embeddings=False,
        attention_bias=False, mlp_bias=False, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)


def generation_config(tokenizer: PreTrainedTokenizerFast) -> GenerationConfig:
    """Greedy decoding that stops at eos (the mini models' default)."""
    return GenerationConfig(do_sample=False, max_new_tokens=32, bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)


def build(tokenizer: PreTrainedTokenizerFast, r: LmRecipe) -> LlamaForCausalLM:
    model = LlamaForCausalLM(llama_config(tokenizer, r))
    model.generation_config = generation_config(tokenizer)
    return model


def corpus(scenes: list[shapes.Scene]) -> list[str]:
    """The training text: every caption, and every question followed by its majority answer."""
    texts = []
    for s in scenes:
        texts += s.captions
        # (ties: the first answer in order, as the bridges' examples; a set here would make ties hash-seeded)
        texts += [f"{q['question']} {vlm.majority(q['answers'])}" for q in s.questions]
    return texts


def encode(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> list[list[int]]:
    """bos + words + eos for each text (the tokenizer adds no special tokens by itself)."""
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [[tokenizer.bos_token_id] + x + [tokenizer.eos_token_id] for x in ids]


def pad_batch(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask (training only; generation pads on the left)."""
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask


def train(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, texts: list[str], r: LmRecipe,
          seed: int) -> common.TrainLog:
    """Next-token prediction over the corpus in a fixed shuffled order."""
    common.seed_everything(seed)
    seqs = encode(tokenizer, texts)
    order = np.random.default_rng([seed, 202]).permutation(len(seqs))
    opt = common.make_optimizer(model.parameters(), r.peak_lr, r.weight_decay)
    log = common.TrainLog(steps=r.steps, batch_size=r.batch_size, peak_lr=r.peak_lr)
    losses = []
    model.train()
    with common.Stopwatch() as sw:
        for step in range(r.steps):
            idx = [order[(step * r.batch_size + j) % len(order)] for j in range(r.batch_size)]
            ids, mask = pad_batch([seqs[i] for i in idx], tokenizer.pad_token_id)
            labels = ids.masked_fill(mask == 0, -100)
            common.set_lr(opt, common.lr_at(step, r.steps, r.peak_lr, r.warmup))
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
    model.eval()
    log.seconds, log.cpu_seconds, log.losses = sw.seconds, sw.cpu_seconds, common.loss_curve(losses)
    return log


@torch.no_grad()
def perplexity(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> float:
    """Per-token perplexity of ``texts`` (each as bos + words + eos; the eos is predicted, the bos is not)."""
    model.eval()
    total, count = 0.0, 0
    seqs = encode(tokenizer, texts)
    for i in range(0, len(seqs), 256):
        ids, mask = pad_batch(seqs[i:i + 256], tokenizer.pad_token_id)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                                   ignore_index=-100, reduction="sum").item()
        count += int((target != -100).sum())
    return float(np.exp(total / count))
