"""Retrain the mini model zoo from scratch, deterministically, and write each model's card.

``python -m mmbench.mini.train [--output DIR] [--seed N] [--only NAME[,NAME]] [--quick]``. The bridges start
from mini-clip and mini-lm *as saved* (float16-rounded), so retraining one bridge alone gives the same model
as a full run.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import (AutoProcessor, Blip2ForConditionalGeneration, CLIPModel, CLIPProcessor,
                          IdeficsForVisionText2Text, LlamaForCausalLM, LlavaForConditionalGeneration)

from mmbench.errors import MMBenchError
from mmbench.mini import shapes
from mmbench.mini.train import blip2 as blip2_train
from mmbench.mini.train import bridge_probe
from mmbench.mini.train import cards, common, evaluate
from mmbench.mini.train import clip as clip_train
from mmbench.mini.train import flamingo as flamingo_train
from mmbench.mini.train import llava as llava_train
from mmbench.mini.train import lm as lm_train
from mmbench.mini.train import tokenizer as tok_lib
from mmbench.mini.train import video as video_train
from mmbench.mini.train import vlm
from mmbench.mini.train.options import MODELS, SHIPPED, parse_args


@dataclass(frozen=True)
class ZooRecipe:
    """Every knob of a zoo training run (the full recipe, or the few-step smoke test)."""

    clip: clip_train.ClipRecipe = field(default_factory=clip_train.ClipRecipe)
    lm: lm_train.LmRecipe = field(default_factory=lm_train.LmRecipe)
    bridge: vlm.BridgeRecipe = field(default_factory=vlm.BridgeRecipe)
    flamingo: flamingo_train.FlamingoBridge = field(default_factory=flamingo_train.FlamingoBridge)
    blip2: blip2_train.Blip2Bridge = field(default_factory=blip2_train.Blip2Bridge)
    video: video_train.VideoRecipe = field(default_factory=video_train.VideoRecipe)
    eval_n: int | None = None  # scenes per test split evaluated (None: the whole split)
    subset_n: int = 40  # scenes per test split of the small evaluation the tests repeat


FULL = ZooRecipe()
QUICK = ZooRecipe(
    clip=clip_train.ClipRecipe(steps=2, batch_size=8, warmup=1),
    lm=lm_train.LmRecipe(steps=2, batch_size=8, warmup=1),
    bridge=vlm.BridgeRecipe(steps=2, batch_size=4, warmup=1, pool_scenes=8),
    blip2=blip2_train.Blip2Bridge(distill_steps=2, distill_batch=4, distill_warmup=1, match_images=4),
    video=video_train.QUICK,
    eval_n=4,
    subset_n=4,
)


def selected(only: str | None) -> list[str]:
    """The models to train, in dependency order; unknown names are a user error."""
    if only is None:
        return list(MODELS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise MMBenchError(f"--only {only!r}: unknown model name(s) {unknown}; choose from {', '.join(MODELS)}")
    return [m for m in MODELS if m in names]


def main(argv: list[str] | None = None, args: argparse.Namespace | None = None) -> int:
    """Train the selected models into --output and print where they went; returns the exit code."""
    args = args if args is not None else parse_args(argv)
    names = selected(args.only)
    recipe = QUICK if args.quick else FULL
    with common.Stopwatch() as sw:
        written = train_zoo(args.output, names, args.seed, recipe)
    for c in written:
        print(f"{c['name']}: {c['scores']}")
    print(f"trained {len(written)} model(s) into {args.output} in {sw.seconds:.0f} s "
          f"({sw.cpu_seconds / common.THREADS:.0f} s CPU per thread)")
    # mini-diffusion (trained by its own command, mmbench.mini.train.diffusion) is listed in the index when present.
    all_cards = [cards.read_card(args.output / m) for m in (*MODELS, "mini-diffusion")
                 if (args.output / m / cards.CARD_FILE).exists()]
    index = args.output.parent / "MODELS.md" if args.output.resolve() == SHIPPED else args.output / "MODELS.md"
    full_run = len(written) == len(MODELS) and not args.quick
    cards.write_index(index, all_cards, sw.seconds if full_run else None, sw.cpu_seconds if full_run else None)
    return 0


def train_zoo(out: Path, names: list[str], seed: int, recipe: ZooRecipe) -> list[dict]:
    """Train ``names`` (in order) into ``out``; bridges load mini-clip and mini-lm from ``out``."""
    bridges = [n for n in names if n in ("mini-llava", "mini-flamingo", "mini-blip2", "mini-llava-blind")]
    needs = (("mini-clip", "mini-lm") if bridges else ()) + (("mini-llava",) if "mini-video" in names else ())
    for dep in needs:  # checked before any work is done
        if dep not in names and not (out / dep / "config.json").exists():
            raise MMBenchError(f"{dep} not found in {out}: train it first (add it to --only) or drop --only")
    out.mkdir(parents=True, exist_ok=True)
    words = tok_lib.vocabulary()
    written = []
    if "mini-clip" in names:
        written.append(_train_clip(out / "mini-clip", words, seed, recipe))
    # the bridges' and the LM's training scenes (CLIP streams its own)
    pool = shapes.generate("train", seed, recipe.bridge.pool_scenes) if bridges or "mini-lm" in names else []
    if "mini-lm" in names:
        written.append(_train_lm(out / "mini-lm", words, pool, seed, recipe))
    if bridges:
        clip = CLIPModel.from_pretrained(out / "mini-clip", dtype=torch.float32)
        lm = LlamaForCausalLM.from_pretrained(out / "mini-lm", dtype=torch.float32)
        # the VLMs' prompts add a few words (mini-mc's letters and instruction): new embedding rows after
        # mini-lm's, drawn from the distribution of its rows (seeded), every existing id unchanged
        vlm_words = tok_lib.vlm_vocabulary(words)
        common.seed_everything(seed)
        lm.resize_token_embeddings(len(tok_lib.build_tokenizer(vlm_words)))
        examples = vlm.make_examples(pool, seed, recipe.bridge.captions_per_scene)
        for name in bridges:
            written.append(_train_bridge(out / name, name, clip, lm, vlm_words, pool, examples, seed, recipe))
    if "mini-video" in names:  # mini-llava fine-tuned on frame sequences (its own data: mini-motion clips)
        written.append(video_train.train_model(out / "mini-video", out / "mini-llava", seed, recipe.video))
    return written


def _versions() -> dict:
    return common.versions({"mini-shapes": shapes.VERSION})


def _training(log: common.TrainLog, seed: int, data: str, init: str, frozen: str) -> dict:
    return {**log.to_dict(), "seed": seed, "data": data, "init": init, "frozen": frozen}


def _train_clip(folder: Path, words: list[str], seed: int, recipe: ZooRecipe) -> dict:
    r = recipe.clip
    common.seed_everything(seed)  # the random initialisation too: every model is built right after seeding
    model, processor = clip_train.build(tok_lib.build_tokenizer(words, clip=True), r)
    log = clip_train.train(model, processor, r, seed)
    common.save_compact(model, processor, folder)
    model = CLIPModel.from_pretrained(folder, dtype=torch.float32)
    processor = CLIPProcessor.from_pretrained(folder)
    scores = {k: round(v, 4) for k, v in clip_train.evaluate(model, processor, n=recipe.eval_n).items()}
    subset = {k: round(v, 4) for k, v in clip_train.evaluate(model, processor, n=recipe.subset_n).items()}
    card = {
        "name": "mini-clip", "class": "CLIPModel", "processor": "CLIPProcessor",
        "summary": "A tiny CLIP (ViT image tower, transformer text tower) trained contrastively on mini-shapes. "
                   "Its vision tower is the frozen image encoder of every mini VLM.",
        "architecture": {"image": f"{shapes.IMAGE_SIZE}x{shapes.IMAGE_SIZE}, patch {r.patch_size}, "
                                  f"{(shapes.IMAGE_SIZE // r.patch_size) ** 2}+1 tokens",
                         "vision tower": f"{r.vision_layers} layers, width {r.width}, {r.heads} heads, "
                                         f"MLP {r.width * r.mlp_ratio}",
                         "text tower": f"{r.text_layers} layers, width {r.width}, {r.heads} heads, word-level "
                                       f"vocabulary of {len(processor.tokenizer)}",
                         "embedding": f"{r.projection_dim}-d"},
        "parameters": common.param_counts(model) | {"trainable": common.param_counts(model)["total"]},
        "training": _training(log, seed, f"{r.steps * r.batch_size} freshly generated training scenes: first "
                                         f"{r.single_steps} steps single objects, each with a zero-shot class "
                                         f"prompt (p={r.single_prompt_prob}) or a caption; then pairs of scenes "
                                         "that differ in one object's shape, size or position (hard negatives), "
                                         "each with a caption naming that attribute (or a class prompt, "
                                         f"p={r.prompt_prob}); symmetric InfoNCE, identical texts count as "
                                         "positives", "random", "nothing"),
        "scores": scores,
        "subset": {"n": recipe.subset_n, "scores": subset},
        "notes": ["zeroshot_top1: zeroshot-test (600 single objects, 30 colour x shape classes), class embedding "
                  "= mean of the normalised prompt embeddings of mmbench.mini.prompts.ZEROSHOT_TEMPLATES.",
                  "t2i_recall@k: retrieval-test (1000 images x 5 captions); a caption is a hit when its image is "
                  "among the k most similar; i2t_recall@k: an image is a hit when any of its 5 captions is in its "
                  "top k (CLIP paper)."],
        "usage": ["from transformers import CLIPModel, CLIPProcessor",
                  "model = CLIPModel.from_pretrained(folder)", "processor = CLIPProcessor.from_pretrained(folder)",
                  "emb = model.get_image_features(**processor(images=imgs, return_tensors='pt')).pooler_output"],
        "versions": _versions(),
    }
    return _finish(folder, card)


def _train_lm(folder: Path, words: list[str], pool: list[shapes.Scene], seed: int, recipe: ZooRecipe) -> dict:
    r = recipe.lm
    tokenizer = tok_lib.build_tokenizer(words)
    common.seed_everything(seed)
    model = lm_train.build(tokenizer, r)
    texts = lm_train.corpus(pool)
    log = lm_train.train(model, tokenizer, texts, r, seed)
    common.save_compact(model, tokenizer, folder)
    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32)
    val = lm_train.corpus(shapes.generate("val", shapes.DEFAULT_SEED, recipe.eval_n))
    card = {
        "name": "mini-lm", "class": "LlamaForCausalLM", "processor": "PreTrainedTokenizerFast",
        "summary": "A tiny LLaMA pre-trained on the text of mini-shapes training captions and Q&A; it initialises "
                   "the language model of both VLM bridges.",
        "architecture": {"decoder": f"{r.layers} layers, width {r.hidden}, {r.heads} heads (no GQA), SwiGLU MLP "
                                    f"{r.intermediate}, RMSNorm, RoPE theta {r.rope_theta:g}",
                         "vocabulary": f"{len(tokenizer)} words (word-level, lowercase)"},
        "parameters": common.param_counts(model) | {"trainable": common.param_counts(model)["total"]},
        "training": _training(log, seed, f"{len(texts)} texts: the captions and question + majority answer of "
                                         f"{len(pool)} training scenes, each as <s> text </s>", "random",
                              "nothing"),
        "scores": {"val_perplexity": round(lm_train.perplexity(model, tokenizer, val), 4)},
        "notes": ["val_perplexity: per-token perplexity on the captions and Q&A text of the val split."],
        "usage": ["from transformers import AutoTokenizer, LlamaForCausalLM",
                  "model = LlamaForCausalLM.from_pretrained(folder)",
                  "tokenizer = AutoTokenizer.from_pretrained(folder)"],
        "versions": _versions(),
    }
    return _finish(folder, card)


_BRIDGE_NOTES = [
    "Same for mini-llava, mini-flamingo and mini-llava-blind: examples, their order, images (noise for the "
    "blind model), steps, batch size, learning-rate schedule, starting weights (mini-clip's vision tower, "
    "mini-lm) and policy (vision tower frozen; language model and bridge trained, the bridge's new parameters "
    "at {scale:g}x the language model's learning rate).",
    "Both read the same vision features: the 65 tokens (64 patches + CLS) of mini-clip's penultimate vision layer "
    "(the last layer's patch tokens are not trained by CLIP's objective). LLaVA takes them with "
    "vision_feature_layer=-2 from the whole tower; Idefics, which always reads its tower's last hidden state, "
    "gets a copy of the tower without its last layer.",
    "What differs by format: LLaVA feeds the 65 vision tokens through a 2-layer "
    "GELU MLP projector as tokens of the LM's input; Idefics resamples the same 65 tokens to a few latents with "
    "a perceiver and reads them through tanh-gated cross-attention blocks inserted before "
    "every 2nd decoder layer, so its bridge has more parameters and its text sequence is 65 tokens shorter. Flamingo starts the gates at "
    "0 to leave a frozen LM untouched; here the LM is trained too and closed gates would keep the bridge blind "
    "for hundreds of steps, so they start at 1 (tanh(1) = 0.76).",
    "Chat formats differ: LLaVA renders '<s>USER: <image>\\n{prompt} ASSISTANT:' (LlavaProcessor expands "
    "<image> to 65 placeholders); Idefics renders 'User: {prompt}\\nAssistant:' and IdeficsProcessor writes "
    "'<s><fake_token_around_image><image><fake_token_around_image>' in front (pass images as a flat list, one "
    "per prompt). IdeficsProcessor (transformers 5) drops its chat template when loaded: use "
    "processor.tokenizer.chat_template (identical).",
    "Scores: VQAv2 accuracy (mmbench.metrics.vqa, official normalisation) on vqa-test with the VQA prompt of "
    "mmbench.mini.prompts, greedy, up to 10 new tokens; CIDEr-D (pycocoevalcap, PTB tokenizer) on captions-test "
    "with the caption prompt, greedy, up to 32 new tokens; POPE F1 (POPE's answer rules, mean over random, "
    "popular and adversarial negatives) on mini-pope; CircularEval accuracy (every rotation of the options "
    "right) on mini-mc; batches of 50 with left padding.",
    "Training examples per scene: two caption references, every VQA question, two lettered multiple-choice "
    "questions answered with the option's text (as many VLMs answer; MMBench's rule reads the letter of the "
    "option named) and two object-existence questions, one yes and one no (mmbench.mini.questions). The VLM "
    "tokenizer is mini-lm's with the words of the multiple-choice prompt and the upper-case option letters "
    "appended (new embedding rows drawn from mini-lm's; every mini-lm id unchanged).",
]


def _train_bridge(folder: Path, name: str, clip: CLIPModel, lm: LlamaForCausalLM, words: list[str],
                  pool: list[shapes.Scene], examples: list[vlm.Example], seed: int, recipe: ZooRecipe) -> dict:
    """Train one bridge on the shared examples, save it, score it and write its card."""
    blind = name == "mini-llava-blind"
    pixels = vlm.pool_pixels(pool, blind=blind, seed=seed)
    distill = None
    if name == "mini-blip2":  # its vision tower must first learn mini-clip's features (blip2.py)
        tower, distill = blip2_train.distill_tower(clip, pixels, recipe.blip2, seed)
    common.seed_everything(seed)
    if name == "mini-flamingo":
        model, processor = flamingo_train.build(clip, lm, tok_lib.build_tokenizer(words), recipe.flamingo)
        encode, cls = flamingo_train.encoder(processor), IdeficsForVisionText2Text
        bridge = [*model.model.perceiver_resampler.parameters(), *model.model.gated_cross_attn_layers.parameters()]
    elif name == "mini-blip2":
        model, processor = blip2_train.build(clip, lm, blip2_train.build_tokenizer(words), tower, recipe.blip2)
        encode, cls = blip2_train.encoder(processor), Blip2ForConditionalGeneration
        bridge = blip2_train.bridge_parameters(model)
    else:
        model, processor = llava_train.build(clip, lm, tok_lib.build_tokenizer(words))
        encode, cls = llava_train.encoder(processor, llava_train.n_image_tokens(clip)), LlavaForConditionalGeneration
        bridge = list(model.model.multi_modal_projector.parameters())
    counts = common.param_counts(model)
    log = vlm.train_bridge(model, encode, examples, pixels, recipe.bridge, seed, bridge)
    common.save_compact(model, processor, folder)
    model = cls.from_pretrained(folder, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(folder)
    about = _bridge_description(name, model, recipe, distill)
    about["parts"]["language model"] = counts["total"] - sum(about["parts"].values())
    b = recipe.bridge
    card = {
        "name": name, "class": cls.__name__, "processor": type(processor).__name__, "summary": about["summary"],
        "architecture": about["architecture"], "parameters": {**counts, **about["parts"]},
        "training": _training(log, seed, f"{len(pool)} training scenes -> {len(examples)} examples "
                                         f"({b.captions_per_scene} caption references + every question per "
                                         f"scene); {b.steps * b.batch_size} examples seen"
                                         + ("; images replaced by uniform noise" if blind else ""),
                              ("mini-clip distilled into BLIP-2's vision tower (see notes)" if name == "mini-blip2"
                               else "mini-clip") + " + mini-lm as shipped; bridge random", "vision encoder"),
        **_bridge_scores(model, processor, recipe),
        "notes": about["notes"],
        "usage": [u.replace("{cls}", cls.__name__) for u in about["usage"]],
        "versions": _versions(),
        "bridge_probe": {"description": bridge_probe.DESCRIPTION, **bridge_probe.measure(model)},
    }
    if distill is not None:
        card["vision_distillation"] = distill
    return _finish(folder, card)


def _bridge_scores(model: Any, processor: Any, recipe: ZooRecipe) -> dict:
    """The card's scores, the subset the tests repeat and a few example outputs."""
    vqa = evaluate.vqa_scores(model, processor, n=recipe.eval_n)
    cap = evaluate.caption_scores(model, processor, n=recipe.eval_n)
    pope = evaluate.pope_scores(model, processor)
    mc = evaluate.mc_scores(model, processor)
    subset = {"vqa_accuracy": evaluate.vqa_scores(model, processor, n=recipe.subset_n)["vqa_accuracy"],
              "cider": evaluate.caption_scores(model, processor, n=recipe.subset_n)["cider"]}
    return {"scores": {"vqa_accuracy": vqa["vqa_accuracy"], "cider": cap["cider"], "pope_f1": pope["pope_f1"],
                       "mc_accuracy": mc["mc_accuracy"], "vqa_per_question_type": vqa["per_question_type"],
                       "pope_f1_per_category": pope["pope_f1_per_category"],
                       "pope_yes_ratio": pope["pope_yes_ratio"],
                       "mc_accuracy_first_pass": mc["mc_accuracy_first_pass"]},
            "subset": {"n": recipe.subset_n, "scores": subset},
            "examples": vqa["examples"][:3] + cap["examples"][:3]}


def _bridge_description(name: str, model: Any, recipe: ZooRecipe, distill: dict | None) -> dict:
    """The card's architecture, parameter counts by part (the language model's added by the caller), summary,
    notes and usage for one bridge."""
    notes = [n.replace("{scale:g}", f"{recipe.bridge.bridge_lr_scale:g}") for n in _BRIDGE_NOTES]
    if name == "mini-blip2":
        extra = blip2_train.card_parts(model, recipe.blip2, distill, recipe.bridge.bridge_lr_scale)
        # its own notes + the scores and the training examples, as the other bridges
        return {**extra, "notes": extra["notes"] + notes[-2:]}
    if name == "mini-flamingo":
        f = recipe.flamingo
        return {"architecture": {
                    "vision": "mini-clip's vision tower without its last layer (weights copied into Idefics's vision "
                              "encoder), frozen; all 65 tokens",
                    "bridge": f"perceiver resampler ({f.n_latents} latents, depth {f.resampler_depth}) + gated "
                              f"cross-attention before every {f.cross_layer_interval}nd decoder layer",
                    "language model": "mini-lm's weights in Idefics's LLaMA-style decoder"},
                "parts": {"vision (frozen)": _count(model.model.vision_model),
                          "bridge: perceiver": _count(model.model.perceiver_resampler),
                          "bridge: gated cross-attention": _count(model.model.gated_cross_attn_layers)},
                "summary": "Flamingo-style VLM (IdeficsForVisionText2Text): frozen mini-clip vision features "
                           "through a perceiver resampler and gated cross-attention into mini-lm.",
                "notes": notes, "usage": _CHAT_USAGE}
    summary = "LLaVA-style VLM: frozen mini-clip vision tower + MLP projector into mini-lm."
    if name == "mini-llava-blind":
        summary = ("mini-llava's recipe trained with every training image replaced by uniform noise: a VLM that has "
                   "collapsed to text-only behaviour (answers from the question alone), for the modality-collapse "
                   "probes to catch.")
    return {"architecture": {"vision": "mini-clip's vision tower, frozen; all 65 tokens of the penultimate layer "
                                       "('full', vision_feature_layer=-2)",
                             "bridge": "2-layer MLP projector (GELU)",
                             "language model": "mini-lm (LlamaForCausalLM weights)"},
            "parts": {"vision (frozen)": _count(model.model.vision_tower),
                      "bridge: projector": _count(model.model.multi_modal_projector)},
            "summary": summary, "notes": notes, "usage": _CHAT_USAGE}


_CHAT_USAGE = ["from transformers import AutoProcessor, {cls}", "model = {cls}.from_pretrained(folder)",
               "processor = AutoProcessor.from_pretrained(folder); processor.tokenizer.padding_side = 'left'",
               "msgs = [{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': prompt}]}]",
               "text = processor.apply_chat_template(msgs, add_generation_prompt=True, "
               "chat_template=processor.chat_template or processor.tokenizer.chat_template)",
               "inputs = processor(images=[image], text=[text], return_tensors='pt', padding=True)",
               "out = model.generate(**inputs, max_new_tokens=20, do_sample=False)",
               "reply = processor.batch_decode(out[:, inputs['input_ids'].shape[1]:], skip_special_tokens=True)"]


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _finish(folder: Path, card: dict) -> dict:
    card["bytes"] = common.folder_bytes(folder)  # weights + configs + processor (the card itself excluded)
    cards.write_card(folder, card)
    print(f"{card['name']}: {card['scores']} ({card['training']['seconds']:.0f} s)", flush=True)
    return card


