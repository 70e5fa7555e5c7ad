"""Modality-collapse probes: run a task again with its image (or audio) ablated and measure how much of the
score came from it.

``probe:<task>`` wraps any image+prompt->text task (VQA, captioning) or speech task (ASR). Every item is
evaluated under each condition; the wrapped task scores each condition on its own; the probe reports the
per-condition scores, the reliance on the input with a paired-bootstrap CI, and a verdict
(mmbench/metrics/reliance.py). Conditions:

- image tasks: ``real``; ``blank`` (a flat mid-grey image of the same size); ``noise`` (Gaussian noise,
  mean 128, std ``noise_std``, seeded per item); ``shuffled`` (another scene's image: a seeded derangement
  over distinct images, so no item keeps its own); ``none`` (no image at all, when the model accepts that:
  tested in setup); ``text-shuffled`` (another item's question with the real image: reliance on the text);
  ``llm-base`` (with ``llm_base: {model: NAME, args: {...}}``: the questions without images answered by the
  evaluated model's base LLM, e.g. an openai-chat endpoint serving it). With ``none`` the probe reports
  MMStar's multi-modal gain (score with the image minus without it) and, with ``llm-base``, its multi-modal
  leakage (max(0, score without the image - the base LLM's score)).
- speech tasks: ``real``; ``silence`` (zeros of the same length); ``noise`` (white noise at the utterance's
  RMS). Also the hallucination rate: the share of ablated inputs for which the model produced any word.
- video tasks (``video-qa``, or any generative task with ``video:`` settings), the temporal probe: ``real``;
  ``frames-shuffled`` (the same sampled frames in a seeded order with no frame in its place);
  ``frames-reversed``; ``one-frame`` (the middle frame, repeated as often as there were frames). Every
  condition keeps the frames' times; only their content moves. Reports temporal reliance and a verdict:
  ``uses-time``, ``weak`` or ``static`` (a model that reads one frame, or none, comes out static).

What every wrapping kind shares (building the wrapped task, delegation, the per-condition statistics and
their aggregation) is in ``mmbench/tasks/wrapping.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np
from PIL import Image

from mmbench.capabilities import Capability, GenerationRequest
from mmbench.data.audio import load_audio
from mmbench.data.video import Clip
from mmbench.seeding import stable_seed
from mmbench.data.images import load_image
from mmbench.errors import ItemError, MMBenchError
from mmbench.metrics import reliance as rel
from mmbench.metrics.base import MetricValue
from mmbench.metrics.api import aggregator_for
from mmbench.tasks.base import Batch, RunContext, ScoreReport
from mmbench.specs import ModelNeed
from mmbench.tasks.video_input import load_item_video
from mmbench.tasks.wrapping import (LLM_BASE, TEMPORAL_CONDITIONS, TEXT_CONDITIONS, WrappingTask, condition_stats,
                                    modality_ablations)

IMAGE_CONDITIONS = ("real", "blank", "noise", "shuffled", "none", "text-shuffled")
AUDIO_CONDITIONS = ("real", "silence", "noise")
VIDEO_CONDITIONS = ("real", *TEMPORAL_CONDITIONS)
# the verdict words of the temporal probe (mmbench/metrics/reliance.py's, renamed for time)
TIME_VERDICTS = {"uses-image": "uses-time", "weak": "weak", "collapsed": "static"}
# The metric a probe judges by, per wrapped kind, and the metric's worst value (for relative reliance).
MAIN_METRIC = {"vqa": ("vqa_accuracy", 0.0), "captioning": ("CIDEr-D", 0.0), "asr": ("wer", 1.0),
               "multiple-choice": ("mc_accuracy", 0.0), "video-qa": ("exact_match", 0.0)}
SEP = "|"
# The event a real-condition output carries when it is the wrapped task's cached output (counted in the notes).
REUSED = "real-answer-reused-from-wrapped-task"
CONDITION_TEXT = {
    "real": "the real inputs", "blank": "a flat mid-grey image", "noise": "a noise input (seeded per item)",
    "shuffled": "another scene's image (seeded derangement)", "none": "no image", "silence": "silence of the same "
    "length", "text-shuffled": "the real image and another item's question",
    "frames-shuffled": "the video's frames in a seeded order (none in its place)",
    "frames-reversed": "the video's frames in reverse order", "one-frame": "the video's middle frame, repeated",
    LLM_BASE: "no image, answered by the base LLM (text only)",
}
ATTENTION_VARIANTS = {
    "image_attention_share": "share of attention mass that the positions producing generated tokens put on image "
                             "tokens, mean over layers and heads (inline image tokens, LLaVA-style; eager attention)",
    "xattn_gate_ratio": "||gated cross-attention block output - input|| / ||input|| at the positions producing "
                        "generated tokens, mean over blocks (Flamingo-style gates)",
    "qformer_query_share": "share of attention mass that the positions producing generated tokens put on the "
                           "Q-Former's query outputs, mean over layers and heads (BLIP-2-style; eager attention)",
    "qformer_patch_focus": "1 - entropy of each Q-Former query's cross-attention over the vision tokens / log(vision "
                           "tokens), mean over cross-attention layers, heads and queries (0: uniform, 1: one patch)",
}


@dataclass(frozen=True)
class ProbeConfig:
    wraps: Mapping[str, Any]  # the wrapped task's spec (name, kind, config)
    conditions: tuple[str, ...] | None = None  # default: every condition of the modality
    metric: str | None = None  # the wrapped task's metric to judge by (default: MAIN_METRIC)
    resamples: int = 1000
    noise_std: float = 64.0
    attention: bool = True  # also measure attention to the image on the real items, where the adapter can
    llm_base: Mapping[str, Any] | None = None  # {model: NAME, args: {...}}: adds the llm-base condition


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation without fixed points (Sattolo's algorithm: one random cycle)."""
    rng = np.random.default_rng(seed)
    perm = np.arange(n)
    for i in range(n - 1, 0, -1):
        j = int(rng.integers(0, i))
        perm[i], perm[j] = perm[j], perm[i]
    return perm


class ModalityProbe(WrappingTask):
    kind: ClassVar[str] = "probe"
    Config: ClassVar[type] = ProbeConfig
    default_batch_size: ClassVar[int] = 8

    def __init__(self, spec, ctx) -> None:
        super().__init__(spec, ctx)
        self.requires = self.inner.requires  # the probe needs what the wrapped task needs
        if self.requires not in (Capability.GENERATE_TEXT, Capability.TRANSCRIBE):
            raise MMBenchError(f"task {self.name!r}: probes wrap image+prompt->text or speech tasks; "
                               f"{self.inner.name!r} needs {self.requires.value!r} (use an embedding task's own probe)")
        self.audio = self.requires == Capability.TRANSCRIBE
        self.video = not self.audio and (self.inner.kind == "video-qa"
                                         or getattr(self.inner.config, "video", None) is not None)
        allowed = AUDIO_CONDITIONS if self.audio else VIDEO_CONDITIONS if self.video else IMAGE_CONDITIONS
        conditions = tuple(self.config.conditions or allowed)
        bad = [c for c in conditions if c not in allowed]
        if bad or "real" not in conditions or len(conditions) < 2:
            raise MMBenchError(f"task {self.name!r}: conditions must include 'real' and at least one of "
                               f"{', '.join(a for a in allowed if a != 'real')}; got {list(conditions)}")
        if "text-shuffled" in conditions and "{question}" not in getattr(self.inner.config, "prompt", ""):
            conditions = tuple(c for c in conditions if c != "text-shuffled")  # no text to shuffle (captioning)
        base = self.config.llm_base
        if base is not None:
            if self.audio or not isinstance(base, Mapping) or not isinstance(base.get("model"), str) \
                    or set(base) - {"model", "args"}:
                raise MMBenchError(f"task {self.name!r}: llm_base must be {{model: NAME, args: {{...}}}} (a text "
                                   f"generator answering the image task's questions without images), got {base!r}")
            conditions = (*conditions, LLM_BASE)
        self.conditions = conditions
        if self.inner.kind not in MAIN_METRIC and not self.config.metric:
            raise MMBenchError(f"task {self.name!r}: name the wrapped task's metric to judge by (`metric:`)")
        self.metric, self.worst = (self.config.metric, 0.0) if self.config.metric else MAIN_METRIC[self.inner.kind]
        self.unavailable: dict[str, str] = {}
        self._donors: dict[str, dict] | None = None
        self.inner_fingerprint = ""  # set by setup(), after the wrapped task's own setup

    # -- data: the wrapped task's, each item once per condition -----------------------------------------------
    def items(self) -> list[dict]:
        inner = self.inner.items()
        return [{**it, "id": f"{c}{SEP}{it['id']}", "_condition": c, "_inner": it["id"]}
                for c in self.conditions if c not in self.unavailable for it in inner]

    def output_config(self) -> dict:
        base = self.config.llm_base
        return {"wraps": self.inner.fingerprint(), "conditions": list(self.conditions), "noise_std": self.config.noise_std,
                **({"llm_base": {"model": base["model"], "args": dict(base.get("args") or {})}} if base else {})}

    def needs(self) -> dict:
        needs = dict(self.inner.needs())
        if self.config.llm_base is not None:
            args = tuple(sorted((str(k), str(v)) for k, v in dict(self.config.llm_base.get("args") or {}).items()))
            needs["llm_base"] = ModelNeed("text-generator", self.config.llm_base["model"], args=args)
        return needs

    def describe(self) -> dict:
        d = super().describe()
        d["conditions"] = [c for c in self.conditions if c not in self.unavailable]
        d["unavailable_conditions"] = dict(self.unavailable)
        return d

    # -- conditions -------------------------------------------------------------------------------------------
    def setup(self, model: Any, run: RunContext) -> None:
        super().setup(model, run)
        self.inner_fingerprint = self.inner.fingerprint()  # keys the wrapped task's cached answers (reused)
        if "none" in self.conditions and not self.audio and not self.video:
            try:  # does the model accept a request without an image?
                req = [GenerationRequest(prompt="Describe this.", images=())]
                cfg = self.inner.generation_config()
                model.generate(model.prepare(req, cfg), cfg)
            except Exception as exc:  # noqa: BLE001 - any refusal means the condition is not available
                self.unavailable["none"] = f"the model needs an image ({type(exc).__name__}: {str(exc)[:120]})"

    def donors(self) -> dict[str, dict]:
        """For each inner item, the item whose image (``shuffled``) or question (``text-shuffled``) it gets."""
        if self._donors is None:
            inner = self.inner.items()
            key = [str(it.get("image_id", it["id"])) for it in inner]
            images = sorted(set(key))
            perm = derangement(len(images), self.ctx.seed) if len(images) > 1 else np.zeros(1, int)
            image_of = {images[i]: images[int(perm[i])] for i in range(len(images))}
            first = {}
            for it, k in zip(inner, key):
                first.setdefault(k, it)
            qperm = derangement(len(inner), self.ctx.seed + 1) if len(inner) > 1 else np.zeros(1, int)
            self._donors = {it["id"]: {"image": first[image_of[k]]["image"],
                                       "question": inner[int(qperm[i])].get("question")}
                            for i, (it, k) in enumerate(zip(inner, key))}
        return self._donors

    def ablate(self, item: dict) -> dict:
        """The item as the model sees it under its condition."""
        cond, out = item["_condition"], dict(item)
        seed = stable_seed(self.ctx.seed, item["_inner"])
        if self.video:
            if cond != "real":
                out["video"] = reorder_frames(load_item_video(item, self.inner.video.sampling), cond, seed)
            return out
        if self.audio:
            if cond != "real":
                sr = 16000
                wave = load_audio(item["audio"], sr)
                if cond == "silence":
                    fake = np.zeros_like(wave)
                else:
                    rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2))) or 1e-3
                    fake = np.random.default_rng(seed).normal(0, rms, len(wave)).astype(np.float32)
                out["audio"] = {"array": fake, "sampling_rate": sr}
            return out
        if cond in ("blank", "noise"):
            size = load_image(item.get("image")).size
            if cond == "blank":
                out["image"] = Image.new("RGB", size, (128, 128, 128))
            else:
                arr = np.random.default_rng(seed).normal(128, self.config.noise_std, (size[1], size[0], 3))
                out["image"] = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        elif cond == "shuffled":
            out["image"] = self.donors()[item["_inner"]]["image"]
        elif cond in ("none", LLM_BASE):
            out["image"] = None
            out.pop("images", None)
        elif cond == "text-shuffled":
            out["question"] = self.donors()[item["_inner"]]["question"]
        return out

    def prepare(self, model: Any, items: list[dict]) -> Batch:
        """One wrapped-task batch per condition present (so the real items can also be measured alone)."""
        parts, failed = [], {}
        for cond in dict.fromkeys(it["_condition"] for it in items):
            ablated = []
            for it in (i for i in items if i["_condition"] == cond):
                try:
                    ablated.append(self.ablate(it))
                except ItemError as exc:
                    failed[it["id"]] = str(exc)
            part = self.inner.prepare(self.model_for(cond, model), ablated)
            failed.update(part.failed)
            if part.items:
                parts.append((cond, part))
        return Batch([it for _, part in parts for it in part.items], parts, failed)

    def predict(self, model: Any, batch: Batch) -> list[dict]:
        outputs = []
        for cond, part in batch.payload:
            outs = self.reused(part) if cond == "real" else None
            if outs is None:
                outs = self.inner.predict(self.model_for(cond, model), part)
            if cond == "real" and self.config.attention and "attention" not in self.unavailable \
                    and hasattr(model, "image_attention"):
                try:
                    # the greedy generation the task just made (its token ids) is what the measure reads
                    ids = [o.get("token_ids") for o in outs]
                    for out, att in zip(outs, model.image_attention(part.payload, self.inner.generation_config(),
                                                                    token_ids=ids if all(ids) else None)):
                        out["image_attention"] = att
                except MMBenchError as exc:
                    self.unavailable["attention"] = str(exc)
            outputs += outs
        return outputs

    def reused(self, part: Batch) -> list[dict] | None:
        """The wrapped task's own outputs for these real items when the cache holds every one (same model, same
        inputs: generating again would repeat its work), each with a ``REUSED`` event; else None. The attention
        measure still runs on them, reading their token ids."""
        ids = [it["_inner"] for it in part.items]
        known = self.run.outputs_of(self.inner_fingerprint, ids) if ids else {}
        if len(known) < len(ids) or not all(isinstance(known[i], dict) for i in ids):
            return None
        return [{**known[i], "events": [*known[i].get("events", ()), REUSED]} for i in ids]

    def model_for(self, condition: str, model: Any) -> Any:
        """The evaluated model, or for ``llm-base`` the base LLM the runner loaded (``needs()``)."""
        return self.run.models["llm_base"] if condition == LLM_BASE else model

    def batch_order(self, items: list[dict]) -> list[dict]:
        """The wrapped task's order within each condition, conditions one after another: a batch then holds
        one or two conditions (prepare() splits it per condition), not six small slices of one."""
        by_condition: dict[str, list[dict]] = {}
        for it in items:
            by_condition.setdefault(it["_condition"], []).append(it)
        return [it for part in by_condition.values() for it in self.inner.batch_order(part)]

    # -- scoring ------------------------------------------------------------------------------------------------
    def score(self, items: list[dict], outputs: list[dict | None]) -> ScoreReport:
        inner_items = self.inner.items()
        by_id = {it["id"]: out for it, out in zip(items, outputs)}
        conditions = [c for c in self.conditions if c not in self.unavailable]
        reports = {c: self.inner.score(inner_items, [by_id.get(f"{c}{SEP}{it['id']}") for it in inner_items])
                   for c in conditions}
        real_report = reports["real"]
        higher = next(m.higher_is_better for m in real_report.metrics if m.name == self.metric)
        value = {c: next(m.value for m in r.metrics if m.name == self.metric) for c, r in reports.items()}
        inner_aggregate = aggregator_for(real_report.aggregator)
        per_cond = {c: r.stats for c, r in reports.items()}
        stats = condition_stats(per_cond, aggregator=real_report.aggregator, metric=self.metric,
                                higher_is_better=higher, worst=self.worst)
        image_conds = modality_ablations(conditions)
        text_conds = [c for c in conditions if c in TEXT_CONDITIONS]
        modality = "audio" if self.audio else "temporal" if self.video else "image"
        metrics = [MetricValue(f"{self.metric}[{c}]", value[c], f"{self.inner.name} {self.metric} with "
                               f"{CONDITION_TEXT[c]}", higher) for c in conditions]
        notes = [f"{'condition ' + c if c != 'attention' else 'attention measure'} unavailable: {why}"
                 for c, why in self.unavailable.items()]
        n = len(next(iter(real_report.stats.values())))

        for label, ablations in ((modality, image_conds), ("text", text_conds)):
            if not ablations:
                continue
            absolute, relative, best = rel.reliance(value["real"], {c: value[c] for c in ablations}, higher, self.worst)
            lo, hi, _ = rel.reliance_interval(per_cond, inner_aggregate, self.metric, ablations, n, higher, self.worst,
                                              self.config.resamples, self.ctx.seed)
            word = rel.verdict(lo, hi)
            word = TIME_VERDICTS[word] if label == "temporal" else word.replace("image", label)
            extra = {"ci95": [lo, hi], "verdict": word, "best_ablation": best, "resamples": self.config.resamples,
                     "seed": self.ctx.seed}
            # (which ablation was best is a per-model finding, kept in extra, not part of the metric's variant)
            what = f"{self.metric}(real) - best {self.metric} over {', '.join(ablations)}"
            metrics.append(MetricValue(f"{label}_reliance", absolute, what, extra=extra))
            metrics.append(MetricValue(f"relative_{label}_reliance", relative,
                                       f"({what}) / distance of the real score from the worst value "
                                       f"{self.worst}; {verdict_rule(label)}", extra=extra))
            notes.append(f"{label} verdict: {word} (relative {label} reliance {relative:.3f}, 95% CI "
                         f"[{lo:.3f}, {hi:.3f}], {self.config.resamples} paired resamples)")
        if "none" in value:
            metrics.append(MetricValue("multimodal_gain", value["real"] - value["none"],
                                       f"multi-modal gain as MMStar defines it (MG = S_v - S_wv): {self.metric} with "
                                       f"the image minus without it, the same model", higher))
        if "none" in value and LLM_BASE in value:
            metrics.append(MetricValue("multimodal_leakage", max(0.0, value["none"] - value[LLM_BASE]),
                                       f"multi-modal leakage as MMStar defines it (ML = max(0, S_wv - S_t)): {self.metric} "
                                       f"without the image minus the base LLM's ({self.config.llm_base['model']})",
                                       not higher))
        attention = [o["image_attention"] for it in inner_items
                     if (o := by_id.get(f"real{SEP}{it['id']}")) is not None and "image_attention" in o]
        if attention:
            measure = attention[0]["measure"]
            metrics.append(MetricValue(measure, float(np.mean([a["value"] for a in attention])),
                                       ATTENTION_VARIANTS[measure] + f" (mean over {len(attention)} real items)"))
            for other in attention[0].get("also", {}):  # e.g. a Q-Former's patch focus beside its query share
                metrics.append(MetricValue(other, float(np.mean([a["also"][other] for a in attention])),
                                           ATTENTION_VARIANTS[other] + f" (mean over {len(attention)} real items)"))
        answers = {c: [self.answer(reports[c].samples.get(it["id"], {})) for it in inner_items] for c in conditions}
        for c in ("shuffled",) if "shuffled" in conditions else ():
            metrics.append(MetricValue("answer_change_rate", rel.answer_change_rate(answers["real"], answers[c]),
                                       "share of items whose answer changes when the image is swapped for another "
                                       "scene's (case and surrounding spaces ignored)", higher_is_better=True))
        if self.audio:
            for c in (c for c in conditions if c != "real"):
                words = [len(a.split()) for a in answers[c]]
                metrics.append(MetricValue(f"hallucination_rate[{c}]", float(np.mean([w > 0 for w in words])),
                                           f"share of {c} inputs for which the model produced any word "
                                           f"(mean {np.mean(words):.2f} words)", higher_is_better=False))
        samples = {}
        for c in conditions:
            for it in inner_items:
                samples[f"{c}{SEP}{it['id']}"] = {"condition": c, "item": it["id"], **reports[c].samples.get(it["id"], {})}
        return ScoreReport(metrics=metrics, item_ids=real_report.item_ids, stats=stats, aggregator="kind:probe",
                           notes=notes, samples=samples)

    @staticmethod
    def answer(sample: dict) -> str:
        for key in ("answer", "caption", "hypothesis", "generation"):
            if isinstance(sample.get(key), str):
                return sample[key]
        return ""


def reorder_frames(clip: Clip, condition: str, seed: int) -> Clip:
    """A temporal ablation of ``clip``: its frames shuffled (a seeded derangement), reversed, or its middle
    frame repeated; the times stay where they were, so only what is shown at each time changes."""
    n = len(clip.frames)
    if condition == "frames-shuffled":
        order = [int(i) for i in derangement(n, seed)] if n > 1 else [0]
    elif condition == "frames-reversed":
        order = list(range(n - 1, -1, -1))
    elif condition == "one-frame":
        order = [n // 2] * n
    else:
        raise MMBenchError(f"unknown temporal condition {condition!r}")
    return dataclasses.replace(clip, frames=tuple(clip.frames[i] for i in order),
                               indices=tuple(clip.indices[i] for i in order))


def verdict_rule(label: str) -> str:
    """How the verdict is read, in the words of the probed input (image, audio, text; time for video)."""
    if label == "temporal":
        return rel.VERDICT_RULE.replace("uses-image", "uses-time").replace("collapsed", "static")
    return rel.VERDICT_RULE.replace("image", label)
