"""mini-video: a LLaVA over frame sequences, fine-tuned from mini-llava on mini-motion clips.

``python -m mmbench.mini.train.video --out FOLDER [--base FOLDER] [--seed N] [--quick] [--no-eval]``

The model is mini-llava's ``LlavaForConditionalGeneration`` as shipped (float16-rounded weights; mini-clip's
vision tower frozen) reading a clip as several images: the task sends the 4 sampled frames (mini-motion's
``video: {frames: 4}``), the chat template writes one ``<image>`` per frame and LlavaProcessor expands each to
the 65 tokens of mini-clip's penultimate layer, projected by mini-llava's MLP projector. 4 x 65 vision tokens
and the question take ~285 positions, more than the 256 mini-lm was trained on: its RoPE has no learned
positions, so the text config's ``max_position_embeddings`` is raised to 512 and the model is fine-tuned at
that length (it loads and runs through the ``hf-llava`` preset unchanged).

Training (seeded, deterministic on 2 CPU threads): every step takes clips of the mini-motion ``train`` stream
(held out from test and val by content) with their 4 task frames and a question (the clip's own, or the
direction of one of its objects), clips shown with ONE of those frames (so that the same weights give their best
single-frame answer when a task sends one frame), and mini-shapes image examples of mini-llava's training data
(so it stays a VLM). The loss is on the reply tokens only; vision tower frozen, projector and LM trained.

The card's scores come from the runner (``mmbench run`` on the saved folder, run seed 0), so the shipped
model reproduces them through ``mmbench run --model mini-video``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tokenizers import pre_tokenizers
from transformers import AutoProcessor, LlavaForConditionalGeneration, LlavaProcessor

from mmbench.errors import MMBenchError
from mmbench.mini import motion, prompts, shapes
from mmbench.mini.train import cards, common, vlm
from mmbench.mini.train import llava as llava_train
from mmbench.mini.train.llava import n_image_tokens
from mmbench.mini.train import tokenizer as tok_lib

NAME = "mini-video"
SHIPPED_BASE = Path(__file__).resolve().parents[1] / "models" / "mini-llava"
TASKS = ("mini-motion", "mini-motion-1frame", "probe:mini-motion", "probe:mini-motion-1frame")


@dataclass(frozen=True)
class VideoRecipe:
    """Every knob of a mini-video training run (written into the card)."""

    steps: int = 1600
    video_batch: int = 8  # examples with the clip's 4 task frames
    frame_batch: int = 2  # examples with one of those frames (its own question)
    image_batch: int = 2  # mini-shapes image examples (mini-llava's training examples)
    peak_lr: float = 1e-3  # mini-llava's
    bridge_lr_scale: float = 3.0  # the projector's rate relative to the LM's (mini-llava's)
    warmup: int = 20
    weight_decay: float = 0.0
    pool_clips: int = 6000  # training clips the examples come from
    pool_scenes: int = 2000  # mini-shapes training scenes of the image examples
    max_positions: int = 512  # mini-lm's RoPE range in the fine-tuned text config (was 256)
    frames: int = motion.TASK_FRAMES
    eval_n: int | None = None  # test clips of the card's scores (None: all)
    subset_n: int = 48  # test clips of the small evaluation the tests repeat (mini-motion, two batch sizes)


FULL = VideoRecipe()
QUICK = VideoRecipe(steps=2, video_batch=2, frame_batch=1, image_batch=1, warmup=1, pool_clips=9, pool_scenes=4,
                    eval_n=6, subset_n=3)


@dataclass(frozen=True)
class Example:
    """One training example: a clip with some of its task frames (positions among them) or a mini-shapes scene
    (``frames`` empty), the user prompt and the reply."""

    index: int  # into the clip pool, or the scene pool when frames == ()
    frames: tuple[int, ...]
    prompt: str
    target: str


# ------------------------------------------------------------------------------------------------ the model

def motion_words(words: list[str]) -> list[str]:
    """The words of mini-motion's questions, answers and captions that mini-llava's vocabulary lacks, sorted."""
    pre = pre_tokenizers.Whitespace()
    texts = ["which way does the red circle move ?", "how many shapes cross the middle ?",
             "which shape appears first ?", "a red circle moves left.", "a red circle appears, then a blue square "
             "appears.", *motion.DIRECTIONS]
    known = set(words)
    return sorted({w.lower() for t in texts for w, _ in pre.pre_tokenize_str(t)} - known)


def build(base: Path, seed: int, recipe: VideoRecipe) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """mini-llava as saved in ``base`` with mini-motion's words appended to its vocabulary (new embedding rows
    drawn from the distribution of the existing ones, seeded; every existing id unchanged), its RoPE range
    raised to ``recipe.max_positions`` and its vision tower frozen."""
    model = LlavaForConditionalGeneration.from_pretrained(base, dtype=torch.float32)
    shipped = AutoProcessor.from_pretrained(base)
    words = tok_lib.vlm_vocabulary(tok_lib.vocabulary())
    if tok_lib.build_tokenizer(words).get_vocab() != shipped.tokenizer.get_vocab():
        raise MMBenchError(f"{base}: its tokenizer is not mini-llava's (mmbench.mini.train.tokenizer); pass --base "
                           f"a mini-llava folder")
    tokenizer = tok_lib.build_tokenizer(words + motion_words(words))
    tokenizer.chat_template = tok_lib.LLAVA_CHAT_TEMPLATE
    processor = LlavaProcessor(image_processor=shipped.image_processor, tokenizer=tokenizer,
                               patch_size=shipped.patch_size, vision_feature_select_strategy="full",
                               num_additional_image_tokens=1, chat_template=tok_lib.LLAVA_CHAT_TEMPLATE)
    common.seed_everything(seed)
    model.resize_token_embeddings(len(tokenizer))
    model.config.text_config.max_position_embeddings = recipe.max_positions
    model.model.vision_tower.requires_grad_(False)
    return model, processor


class Encoder:
    """Training batches exactly as ``processor(images=frames, text=render(prompt))`` builds them, plus the reply:
    mini-llava's encoder for each frame count (one count per batch)."""

    def __init__(self, processor, n_tokens: int) -> None:
        self.processor, self.n_tokens = processor, n_tokens
        self._by_count: dict[int, vlm.Encoder] = {}

    def __call__(self, examples: Sequence[Example], pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        counts = {max(1, len(ex.frames)) for ex in examples}  # an image example counts as one frame
        if len(counts) != 1:
            raise ValueError(f"one frame count per batch, got {sorted(counts)}")
        n = counts.pop()
        if n not in self._by_count:
            self._by_count[n] = llava_train.encoder(self.processor, self.n_tokens, n)
        return self._by_count[n](list(examples), pixels)


# ------------------------------------------------------------------------------------------------- the data

def clip_examples(clips: Sequence[motion.MotionClip], seed: int) -> tuple[list[Example], list[Example]]:
    """(multi-frame examples: every question a clip supports with all its task frames; single-frame examples:
    each clip's own question with one of those frames, seeded)."""
    rng = np.random.default_rng([seed, 717])
    multi, single = [], []
    every = tuple(range(motion.TASK_FRAMES))
    for i, c in enumerate(clips):
        multi += [Example(i, every, prompts.vqa_prompt(q), a) for q, a in motion.training_questions(c)]
        single.append(Example(i, (int(rng.integers(motion.TASK_FRAMES)),), prompts.vqa_prompt(c.question["question"]),
                              c.question["answers"][0]))
    return multi, single


class FramePool:
    """The training clips' task frames (uint8), rendered on first use."""

    def __init__(self, clips: Sequence[motion.MotionClip]) -> None:
        self.clips = clips
        self.indices = motion.task_frame_indices()
        self._cache: dict[int, np.ndarray] = {}

    def frames(self, i: int) -> np.ndarray:
        if i not in self._cache:
            self._cache[i] = np.stack([np.asarray(f, dtype=np.uint8) for f in self.clips[i].frames(self.indices)])
        return self._cache[i]

    def pixels(self, examples: Sequence[Example]) -> np.ndarray:
        return np.stack([self.frames(ex.index)[j] for ex in examples for j in ex.frames])


# ------------------------------------------------------------------------------------------------ training

def train(model: LlavaForConditionalGeneration, processor, recipe: VideoRecipe, seed: int,
          threads: int = common.THREADS, on_step=None) -> common.TrainLog:
    """The fine-tuning loop (see the module doc) on ``threads`` torch threads; returns the log for the card."""
    r = recipe
    clips = [c for c, _ in zip(motion.iter_clips("train", seed), range(r.pool_clips))]
    multi, single = clip_examples(clips, seed)
    scenes = shapes.generate("train", seed, r.pool_scenes)
    images = [Example(e.scene, (), e.prompt, e.target) for e in vlm.make_examples(scenes, seed, captions_per_scene=1)]
    image_pixels = vlm.pool_pixels(scenes, blind=False, seed=seed)
    pool = FramePool(clips)
    encode = Encoder(processor, n_image_tokens(model))
    streams = [(multi, r.video_batch), (single, r.frame_batch), (images, r.image_batch)]
    orders = [np.random.default_rng([seed, 818, k]).permutation(len(s)) for k, (s, _) in enumerate(streams)]

    common.seed_everything(seed)
    torch.set_num_threads(threads)
    bridge = list(model.model.multi_modal_projector.parameters())
    opt = common.make_optimizer(model.parameters(), r.peak_lr, r.weight_decay, bridge, r.bridge_lr_scale)
    trainable = [p for p in model.parameters() if p.requires_grad]
    log = common.TrainLog(steps=r.steps, batch_size=r.video_batch + r.frame_batch + r.image_batch, peak_lr=r.peak_lr)
    losses = []
    model.train()
    with common.Stopwatch() as sw:
        for step in range(r.steps):
            picked = [[s[o[(step * b + j) % len(o)]] for j in range(b)] for (s, b), o in zip(streams, orders)]
            video, frame, image = picked
            # two forward passes of similar lengths: 4-frame sequences, then one-image sequences
            parts = [encode(video, vlm.normalise(pool.pixels(video)))]
            short = frame + image
            px = np.concatenate([pool.pixels(frame), image_pixels[[ex.index for ex in image]]]) if frame else \
                image_pixels[[ex.index for ex in image]]
            parts.append(encode(short, vlm.normalise(px)))
            common.set_lr(opt, common.lr_at(step, r.steps, r.peak_lr, r.warmup))
            counts = [int((p["labels"][:, 1:] != -100).sum()) for p in parts]
            loss = sum(model(**p).loss * n for p, n in zip(parts, counts)) / sum(counts)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            opt.step()
            losses.append(loss.item())
            if on_step is not None:
                on_step(step + 1)
    model.eval()
    log.seconds, log.cpu_seconds, log.losses = sw.seconds, sw.cpu_seconds, common.loss_curve(losses)
    return log


# ---------------------------------------------------------------------------------------------- evaluation

def baselines(split: str = "test", n: int | None = None) -> dict:
    """What needs no model: the majority-answer baseline (one answer for every question, and the best answer per
    question type) and the exact single-frame ceilings from the generator (shown only the first frame)."""
    clips = motion.generate(split, motion.DEFAULT_SEED, n)
    answers = [c.question["answers"][0] for c in clips]
    top = max(set(answers), key=answers.count)
    per_type = {}
    for t in motion.QUESTION_TYPES:
        mine = [a for c, a in zip(clips, answers) if c.kind == t]
        per_type[t] = round(max(mine.count(a) for a in set(mine)) / len(mine), 4) if mine else None
    ceiling = {"direction": 0.25, "appear": 1 / len(shapes.SHAPES),
               "crossing": float(np.mean([1 / (len(c.objects) + 1) for c in clips if c.kind == "crossing"]))}
    types = [c.kind for c in clips]
    return {"majority_answer": top, "majority_accuracy": round(answers.count(top) / len(answers), 4),
            "majority_per_type": per_type,
            "majority_per_type_accuracy": round(float(np.mean([per_type[t] for t in types])), 4),
            "first_frame_ceiling": {t: round(v, 4) for t, v in ceiling.items()},
            "first_frame_ceiling_accuracy": round(float(np.mean([ceiling[t] for t in types])), 4)}


def runner_scores(folder: Path, tasks: Sequence[str] = TASKS, limit: int | None = None) -> dict[str, dict]:
    """The mini video suite's tasks on the model in ``folder`` through the runner, exactly as ``mmbench run``
    scores them (run seed 0): {task: {metric: value, ..., "extra": {metric: extra}}}."""
    from mmbench.results import RunResult
    from mmbench.runner import Runner
    from mmbench.specs import ModelSpec, RunOptions, RunSpec
    from mmbench.tasks.catalog import TaskCatalog

    catalog = TaskCatalog()
    specs = tuple(catalog.task_spec(t) for t in tasks)
    with tempfile.TemporaryDirectory() as out:
        options = RunOptions(output_dir=Path(out), cache=False, seed=0, show_progress=False, fail_fast=True,
                             limit=limit)
        run, _ = Runner(options).run(RunSpec(models=(ModelSpec("hf-llava", {"pretrained": str(folder)}),),
                                             tasks=specs))
        assert isinstance(run, RunResult)
        result = {}
        for r in run.results:
            values = {m["name"]: (round(float(m["value"]), 4) if m.get("value") is not None else None)
                      for m in r.metrics}
            extra = {m["name"]: m["extra"] for m in r.metrics if m.get("extra")}
            result[r.task] = {**values, "extra": extra, "n_items": r.n_items}
    return result


# ------------------------------------------------------------------------------------------------- the card

def probe_summary(values: dict) -> dict:
    rel = values.get("extra", {}).get("relative_temporal_reliance", {})
    return {"exact_match[" + c + "]": values.get(f"exact_match[{c}]")
            for c in ("real", "frames-shuffled", "frames-reversed", "one-frame")} | {
        "temporal_reliance": values.get("temporal_reliance"),
        "relative_temporal_reliance": values.get("relative_temporal_reliance"),
        "ci95": [round(x, 4) for x in rel.get("ci95", [])], "verdict": rel.get("verdict"),
        "best_ablation": rel.get("best_ablation")}


def card_scores(scores: dict, base: dict) -> dict:
    """The card's scores: mini-motion with 4 frames and with one, beside the single-frame baselines, and the
    temporal probe of each."""
    four, one = scores.get("mini-motion", {}), scores.get("mini-motion-1frame", {})
    probe, probe_one = scores.get("probe:mini-motion", {}), scores.get("probe:mini-motion-1frame", {})
    return {"exact_match": four.get("exact_match"), "exact_match_1frame": one.get("exact_match"),
            "majority_accuracy": base["majority_accuracy"],
            "majority_per_type_accuracy": base["majority_per_type_accuracy"],
            "first_frame_ceiling_accuracy": base["first_frame_ceiling_accuracy"],
            "temporal_verdict": probe_summary(probe)["verdict"],
            "temporal_verdict_1frame": probe_summary(probe_one)["verdict"],
            "exact_match_per_question_type": {t: four.get(f"exact_match[question_type={t}]")
                                              for t in motion.QUESTION_TYPES},
            "exact_match_1frame_per_question_type": {t: one.get(f"exact_match[question_type={t}]")
                                                     for t in motion.QUESTION_TYPES},
            "majority_per_type": base["majority_per_type"], "first_frame_ceiling": base["first_frame_ceiling"],
            "probe": probe_summary(probe), "probe_1frame": probe_summary(probe_one)}


CARD_NOTES = [
    "Scores from the runner (mmbench run, run seed 0) on the saved float16 weights: mini-motion (240 test "
    "clips, 4 frames), mini-motion-1frame (the same clips, ONE frame: the first), the temporal probe of "
    "each (frames shuffled with a seeded derangement, reversed, or the middle frame repeated; verdict from "
    "the 95% paired-bootstrap CI of relative reliance: uses-time >= 0.25, static < 0.10).",
    "Single-frame baselines: the majority answer for every question; the best answer per question type "
    "(the question names its type); and the exact ceiling of any model shown only the first frame (the "
    "frame mini-motion-1frame sends): direction 1/4 (the start is independent of the direction), "
    "crossing E[1/(n+1)] (only the number of objects is visible), appear 1/5 (the first frame is empty).",
    "The one-frame model is these very weights given one frame: training includes single-frame examples, "
    "so its answer is its best single-frame guess, not an out-of-distribution input.",
    "Why 4 frames: 8 x 65 vision tokens would need 545 positions (the fine-tuning cost grows with it); 4 "
    "uniform frames (0, 2, 5, 7) show every event mini-motion asks about (appear clips: nothing, the first "
    "object, then both). LLaVA has no per-frame pooling, so each frame keeps its 65 tokens.",
    "Frames are decoded from lossless H.264 files (libx264rgb, qp 0): bit-identical to the rendered frames "
    "the model was trained on, whatever the encoder build.",
    "retrain: python -m mmbench.mini.train.video --out mmbench/mini/models/mini-video (starts from the "
    "shipped mini-llava; --quick: a few steps)",
]
CARD_USAGE = ["mmbench run --model mini-video --tasks mini-motion",
              "mmbench run --suite video",
              "from transformers import AutoProcessor, LlavaForConditionalGeneration",
              "model = LlavaForConditionalGeneration.from_pretrained(folder)",
              "processor = AutoProcessor.from_pretrained(folder); processor.tokenizer.padding_side = 'left'",
              "msgs = [{'role': 'user', 'content': [{'type': 'image'}] * len(frames) + "
              "[{'type': 'text', 'text': prompt}]}]",
              "text = processor.apply_chat_template(msgs, add_generation_prompt=True)",
              "inputs = processor(images=[frames], text=[text], return_tensors='pt', padding=True)",
              "reply = processor.batch_decode(model.generate(**inputs, max_new_tokens=8, do_sample=False)"
              "[:, inputs['input_ids'].shape[1]:], skip_special_tokens=True)"]


def make_card(folder: Path, recipe: VideoRecipe, seed: int, log: common.TrainLog, counts: dict, scores: dict,
              subset: dict, base: dict, threads: int = common.THREADS) -> dict:
    """mini-video's card: its architecture, training, the runner's scores beside the single-frame baselines."""
    r = recipe
    new_words = motion_words(tok_lib.vlm_vocabulary(tok_lib.vocabulary()))
    card = {
        "name": NAME, "class": "LlavaForConditionalGeneration", "processor": "LlavaProcessor",
        "summary": "A LLaVA over frame sequences: mini-llava fine-tuned on mini-motion clips, reading a video as "
                   f"{r.frames} frames sent as {r.frames} images. It answers which way an object moves, how many "
                   "shapes cross the middle and which shape appears first, which no single frame tells.",
        "architecture": {"vision": "mini-clip's vision tower (frozen), 65 tokens per frame (penultimate layer, "
                                   "'full')",
                         "bridge": "mini-llava's 2-layer MLP projector, fine-tuned",
                         "language model": f"mini-lm (from mini-llava), RoPE range raised from 256 to "
                                           f"{r.max_positions} positions (no learned positions to extend)",
                         "video input": f"{r.frames} frames as {r.frames} <image> entries of the chat template: "
                                        f"{r.frames} x 65 vision tokens + the question (~285 positions)",
                         "vocabulary": f"mini-llava's + {len(new_words)}"
                                       " words of mini-motion's questions (appended; new rows drawn from the "
                                       "existing ones)"},
        "parameters": counts,
        "training": {**log.to_dict(), "seed": seed, "threads": threads,
                     "data": f"{r.pool_clips} mini-motion training clips (train stream, held out from test/val by "
                             f"content): per step {r.video_batch} examples with the {r.frames} task frames (the "
                             f"clip's question or the direction of one of its objects), {r.frame_batch} with one "
                             f"of those frames and {r.image_batch} mini-shapes image examples of "
                             f"{r.pool_scenes} scenes (mini-llava's training examples); loss on the reply only",
                     "init": "mini-llava as shipped", "frozen": "vision encoder"},
        "scores": card_scores(scores, base),
        "subset": subset or {"n": r.subset_n},
        "recipe": asdict(r),
        "notes": CARD_NOTES,
        "usage": CARD_USAGE,
        "versions": common.versions({"mini-motion": motion.VERSION, "mini-shapes": shapes.VERSION}),
    }
    card["bytes"] = common.folder_bytes(folder)
    return card


def train_model(out: Path, base: Path, seed: int, recipe: VideoRecipe, threads: int = common.THREADS,
                evaluate: bool = True) -> dict:
    """Fine-tune mini-llava (the folder ``base``) into mini-video in ``out``, score it through the runner and
    write its card; returns the card (what ``mmbench mini train`` and this module's command both run)."""
    if not (base / "config.json").is_file():
        raise MMBenchError(f"no mini-llava in {base}: train it first (mmbench mini train --only mini-llava) or pass "
                           f"--base a mini-llava folder")
    model, processor = build(base, seed, recipe)
    counts = common.param_counts(model)
    counts |= {"vision (frozen)": sum(x.numel() for x in model.model.vision_tower.parameters()),
               "bridge: projector": sum(x.numel() for x in model.model.multi_modal_projector.parameters())}
    counts["language model"] = counts["total"] - counts["vision (frozen)"] - counts["bridge: projector"]
    started = time.perf_counter()

    def progress(step: int) -> None:
        if step % 200 == 0 or step == recipe.steps:
            print(f"{NAME}: step {step}/{recipe.steps}, {time.perf_counter() - started:.0f} s", flush=True)

    log = train(model, processor, recipe, seed, threads, on_step=progress)
    common.save_compact(model, processor, out)
    print(f"{NAME}: trained {recipe.steps} steps in {log.seconds:.0f} s ({log.cpu_seconds / threads:.0f} s "
          f"CPU per thread, {threads} thread(s)) into {out}", flush=True)
    scores, subset = {}, {}
    if evaluate:
        with common.Stopwatch() as sw:
            scores = runner_scores(out, limit=recipe.eval_n)
            small = runner_scores(out, ("mini-motion",), limit=recipe.subset_n)
        # the tests repeat mini-motion on this subset (and its batch invariance); the probe's verdict needs the
        # whole split's interval, so they repeat the probe on the whole split against the card's scores
        subset = {"n": recipe.subset_n,
                  "scores": {k: v for k, v in small["mini-motion"].items() if k.startswith("exact_match")}}
        print(f"{NAME}: scored through the runner in {sw.seconds:.0f} s", flush=True)
    card = make_card(out, recipe, seed, log, counts, scores, subset, baselines("test", recipe.eval_n), threads)
    cards.write_card(out, card)
    print(f"{NAME}: {card['scores']}", flush=True)
    return card


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mmbench.mini.train.video",
                                description="fine-tune mini-llava into mini-video on mini-motion clips (2 CPU "
                                            "threads), score it through the runner and write its card (also run by "
                                            "mmbench mini train)")
    p.add_argument("--out", type=Path, required=True, help="the model folder to write (shipped: "
                                                           "mmbench/mini/models/mini-video)")
    p.add_argument("--base", type=Path, default=SHIPPED_BASE, help="the mini-llava folder to start from "
                                                                   "(default: the shipped one)")
    p.add_argument("--seed", type=int, default=0, help="training seed (the test split stays fixed)")
    p.add_argument("--steps", type=int, default=None, help=f"training steps (default {FULL.steps})")
    p.add_argument("--threads", type=int, default=common.THREADS, help="torch threads while training (default 2)")
    p.add_argument("--quick", action="store_true", help="a few steps and a tiny evaluation (smoke test)")
    p.add_argument("--no-eval", action="store_true", help="skip the runner scores (the card then has none)")
    args = p.parse_args(argv)
    recipe = QUICK if args.quick else FULL
    if args.steps is not None:
        recipe = replace(recipe, steps=args.steps)
    if not (args.base / "config.json").is_file():
        p.error(f"no model in --base {args.base} (a mini-llava folder)")
    train_model(args.out, args.base, args.seed, recipe, args.threads, evaluate=not args.no_eval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
