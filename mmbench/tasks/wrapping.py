"""Task kinds that wrap another task: the probes (``probe.py``, ``probe_embedding.py``).

A wrapping kind's config has ``wraps:`` (the wrapped task's spec: name, kind, config, source). The base
builds the inner task from it and delegates to it what the wrapper does not change: the data, the items,
whether they are a subset, setup (with the run-wide resources), prepare and predict. It describes itself
with the inner task's description under ``wrapped_task``.

A wrapper scores the inner task under named conditions (``real`` and ablations of its input) and stores
the inner task's per-item statistics per condition (:func:`condition_stats`: ``<condition>/<key>``, plus
constants naming the inner aggregator, the metric judged by, its direction and worst value, and the
conditions). Its result's aggregator is ``kind:<kind>``: the class's ``aggregate`` (:func:`aggregate`)
recomputes from those statistics the metric per condition and the reliance on the input (real minus the
best ablation, mmbench/metrics/reliance.py), which is what reports resample.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from mmbench.metrics import reliance as rel
from mmbench.metrics.api import aggregator_for
from mmbench.metrics.base import CONST_PREFIX
from mmbench.specs import TaskSpec
from mmbench.tasks.base import Batch, RunContext, Task, TaskContext
from mmbench.tasks.catalog import build_task

# Conditions that ablate something other than the modality input (reliance on the text, reported apart).
TEXT_CONDITIONS = ("text-shuffled",)
# The temporal probe's ablations of a video's frames (the same frames, their order or variety destroyed).
TEMPORAL_CONDITIONS = ("frames-shuffled", "frames-reversed", "one-frame")
# The wrapped task answered by another model: the evaluated model's base LLM, text only (MMStar's S_t).
LLM_BASE = "llm-base"


def wrapped_task(wraps: Mapping[str, Any], ctx: TaskContext) -> Task:
    """The inner task of a ``wraps:`` spec."""
    return build_task(TaskSpec(name=wraps["name"], kind=wraps["kind"], config=wraps["config"],
                               source=wraps.get("source", "")), ctx)


class WrappingTask(Task):
    """Base of the kinds that wrap another task (``self.inner``); their Config has a ``wraps`` field."""

    def __init__(self, spec: TaskSpec, ctx: TaskContext) -> None:
        super().__init__(spec, ctx)
        self.inner = wrapped_task(self.config.wraps, ctx)

    @staticmethod
    def aggregate(stats: Mapping[str, np.ndarray]) -> dict[str, float]:
        """The wrapper's values recomputed from its per-item statistics (see :func:`aggregate`)."""
        return aggregate(stats)

    # -- delegated to the wrapped task -------------------------------------------------------------------
    def load_data(self):
        return self.inner.data

    def items(self) -> list[dict]:
        return self.inner.items()

    @property
    def is_subset(self) -> bool:
        return self.inner.is_subset

    def describe(self) -> dict:
        return {**super().describe(), "wrapped_task": self.inner.describe()}

    def needs(self) -> dict:
        return self.inner.needs()

    def setup(self, model: Any, run: RunContext) -> None:
        super().setup(model, run)
        self.inner.setup(model, run)  # the same context: run-wide resources and models reach the wrapped task

    def prepare(self, model: Any, items: list[dict]) -> Batch:
        return self.inner.prepare(model, items)

    def predict(self, model: Any, batch: Batch) -> list[dict]:
        return self.inner.predict(model, batch)


def condition_stats(per_condition: Mapping[str, Mapping[str, Any]], *, aggregator: str, metric: str,
                    higher_is_better: bool, worst: float) -> dict[str, np.ndarray]:
    """A wrapper's per-item statistics: the inner task's under each condition (``<condition>/<key>``, in the
    order given) and the constants :func:`aggregate` needs."""
    const = {"aggregator": aggregator, "metric": metric, "higher_is_better": higher_is_better, "worst": worst,
             "conditions": ",".join(per_condition)}
    stats = {f"{CONST_PREFIX}{k}": np.asarray(v) for k, v in const.items()}
    for c, inner in per_condition.items():
        stats.update({f"{c}/{k}": np.asarray(v) for k, v in inner.items()})
    return stats


def modality_ablations(conditions: list[str]) -> list[str]:
    """The conditions that ablate the modality input (every one but ``real`` and the text ablations)."""
    return [c for c in conditions if c != "real" and c not in TEXT_CONDITIONS and c != LLM_BASE]


def aggregate(stats: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Per-condition metric values and reliance recomputed from a wrapper's per-item statistics."""
    const = {k[len(CONST_PREFIX):]: np.asarray(v).item() for k, v in stats.items() if k.startswith(CONST_PREFIX)}
    inner = aggregator_for(const["aggregator"])
    metric, conditions = const["metric"], const["conditions"].split(",")
    values = {c: inner({k.split("/", 1)[1]: v for k, v in stats.items() if k.startswith(f"{c}/")})[metric]
              for c in conditions}
    out = {f"{metric}[{c}]": v for c, v in values.items()}
    ablations = modality_ablations(conditions)
    if ablations:
        absolute, relative, _ = rel.reliance(values["real"], {c: values[c] for c in ablations},
                                             bool(const["higher_is_better"]), float(const["worst"]))
        modality = "audio" if "silence" in conditions else \
            "temporal" if any(c in TEMPORAL_CONDITIONS for c in conditions) else "image"
        out[f"{modality}_reliance"], out[f"relative_{modality}_reliance"] = absolute, relative
    if "none" in values and "real" in values:  # MMStar's multi-modal gain: S_v - S_wv, the same model
        out["multimodal_gain"] = values["real"] - values["none"]
    if "none" in values and LLM_BASE in values:  # MMStar's multi-modal leakage: max(0, S_wv - S_t)
        out["multimodal_leakage"] = max(0.0, values["none"] - values[LLM_BASE])
    return out
