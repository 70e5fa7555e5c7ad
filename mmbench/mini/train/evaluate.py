"""Scores for the model cards, computed through the standard Hugging Face path the harness's adapters use.

VQA accuracy is mmbench's official VQAv2 implementation; CIDEr-D is pycocoevalcap's after its PTBTokenizer.
Generation: chat template (BLIP-2: the hf-blip2 preset's prompt format) -> ``processor(images=..., text=...,
padding=True)`` with left padding (BLIP-2: moved in front of the query placeholders, as the adapter does) -> greedy
``generate`` -> decode only the new tokens with ``skip_special_tokens=True``.
"""

from __future__ import annotations

import torch
from pycocoevalcap.cider.cider import Cider

from mmbench.adapters.hf_vlm_prompts import pads_first
from mmbench.metrics.captions import tokenize
from mmbench.metrics.vqa import vqa_accuracy
from mmbench.mini import prompts, shapes
from mmbench.mini.train import blip2, vlm

VQA_MAX_NEW_TOKENS = 10
CAPTION_MAX_NEW_TOKENS = 32


def _is_blip2(processor) -> bool:
    return getattr(processor, "num_query_tokens", None) is not None


def prompt_text(processor, prompt: str) -> str:
    """The text the harness's adapter sends for one user prompt: the chat template's rendering, or (BLIP-2,
    which has none) the hf-blip2 preset's prompt format."""
    return blip2.blip2_prompt(prompt) if _is_blip2(processor) else vlm.render(processor, prompt)


@torch.no_grad()
def generate(model, processor, images: list, user_prompts: list[str], max_new_tokens: int,
             batch_size: int = 50) -> list[str]:
    """Greedy replies for (image, prompt) pairs, batched with left padding."""
    processor.tokenizer.padding_side = "left"
    texts = [prompt_text(processor, p) for p in user_prompts]
    out: list[str] = []
    for i in range(0, len(texts), batch_size):
        inputs = processor(images=images[i:i + batch_size], text=texts[i:i + batch_size], return_tensors="pt",
                           padding=True)
        if _is_blip2(processor):  # its processor pads the text, then puts the query placeholders in front
            inputs = pads_first(inputs)
        ids = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        out += processor.batch_decode(ids[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    return [o.strip() for o in out]


def vqa_scores(model, processor, seed: int = shapes.DEFAULT_SEED, n: int | None = None) -> dict:
    """VQAv2 accuracy on vqa-test (overall and per question type) with a few example predictions."""
    scenes = shapes.generate("vqa-test", seed, n)
    qs = [(s, q) for s in scenes for q in s.questions]
    preds = generate(model, processor, [s.image for s, _ in qs], [prompts.vqa_prompt(q["question"]) for _, q in qs],
                     VQA_MAX_NEW_TOKENS)
    res = vqa_accuracy(preds, [q["answers"] for _, q in qs], question_types=[q["question_type"] for _, q in qs])
    return {"vqa_accuracy": round(res.accuracy.value, 4), "n_questions": len(qs),
            "per_question_type": {k: round(v.value, 4) for k, v in sorted(res.per_question_type.items())},
            "examples": [{"question": q["question"], "prediction": p, "answer": vlm.majority(q["answers"])}
                         for (_, q), p in list(zip(qs, preds))[:5]]}


def cider(predictions: dict[str, str], references: dict[str, list[str]]) -> float:
    """COCO CIDEr-D (pycocoevalcap) after the captioning metric's PTB tokenisation; document frequencies from
    these references."""
    gts = tokenize(references)
    res = tokenize({k: [predictions[k]] for k in references})
    score, _ = Cider().compute_score(gts, res)
    return float(score)


def caption_scores(model, processor, seed: int = shapes.DEFAULT_SEED, n: int | None = None) -> dict:
    """CIDEr-D on captions-test with a few example captions."""
    scenes = shapes.generate("captions-test", seed, n)
    preds = generate(model, processor, [s.image for s in scenes], [prompts.CAPTION_PROMPT] * len(scenes),
                     CAPTION_MAX_NEW_TOKENS)
    score = cider({s.id: p for s, p in zip(scenes, preds)}, {s.id: s.captions for s in scenes})
    return {"cider": round(score, 4), "n_images": len(scenes),
            "examples": [{"prediction": p, "reference": s.captions[0]} for s, p in list(zip(scenes, preds))[:5]]}


POPE_SCENES = 80  # mini-pope: the first 80 vqa-test scenes (tasks/mini-pope.yaml)
MC_SCENES = 120  # mini-mc: the multiple-choice questions of the first 120 vqa-test scenes (tasks/mini-mc.yaml)


def pope_scores(model, processor, seed: int = shapes.DEFAULT_SEED, n: int = POPE_SCENES) -> dict:
    """mini-pope's POPE F1 (mean over random/popular/adversarial, as LLaVA-1.5 reports POPE), per category,
    and the yes-ratio, under POPE's answer rules."""
    from mmbench.metrics.choice_metrics import POPE
    from mmbench.mini import questions

    qs = questions.pope_questions(shapes.generate("vqa-test", seed, n), seed)
    preds = generate(model, processor, [q["image"] for q in qs], [prompts.vqa_prompt(q["question"]) for q in qs],
                     VQA_MAX_NEW_TOKENS)
    metric = POPE()
    metric.update(preds, qs)
    v = {m.name: m.value for m in metric.compute().values}
    return {"pope_f1": round(v["pope_f1[mean over category]"], 4), "n_questions": len(qs),
            "pope_f1_per_category": {c: round(v[f"pope_f1[category={c}]"], 4) for c in questions.POPE_CATEGORIES},
            "pope_yes_ratio": round(v["pope_yes_ratio"], 4)}


def mc_scores(model, processor, seed: int = shapes.DEFAULT_SEED, n: int = MC_SCENES) -> dict:
    """mini-mc's CircularEval accuracy (every rotation of the options right; letters read by MMBench's rule,
    VLMEvalKit's can_infer) and the first-pass accuracy."""
    from mmbench.metrics.choice import rotations
    from mmbench.metrics.choice_metrics import MultipleChoiceAccuracy
    from mmbench.mini import questions

    qs = questions.mc_questions(shapes.generate("vqa-test", seed, n), seed)
    passes = [rotations(q["options"], q["answer"]) for q in qs]
    flat = [(q, opts) for q, ps in zip(qs, passes) for opts, _ in ps]
    preds = iter(generate(model, processor, [q["image"] for q, _ in flat],
                          [questions.mc_prompt(q["question"], opts) for q, opts in flat], VQA_MAX_NEW_TOKENS))
    metric = MultipleChoiceAccuracy({"rule": "vlmevalkit"})
    metric.update([[{"text": next(preds)} for _ in ps] for ps in passes],
                  [{"id": q["id"], "passes": [{"options": o, "answer": a} for o, a in ps]} for q, ps in zip(qs, passes)])
    v = {m.name: m.value for m in metric.compute().values}
    return {"mc_accuracy": round(v["mc_accuracy"], 4), "mc_accuracy_first_pass": round(v["mc_accuracy_first_pass"], 4),
            "n_questions": len(qs)}
