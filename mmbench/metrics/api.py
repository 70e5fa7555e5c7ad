"""The metric interface: a named metric with options, explicit state, ``update()`` and ``compute()``.

A task file names the metrics it reports (``metrics: [vqa_accuracy]``, ``metrics: [{name: anls,
threshold: 0.5}]``); each name is looked up in ``mmbench.registry.METRICS``. A metric scores one kind of
input (``inputs``: text answers, captions, transcripts, class scores, embeddings, generated images), and a
task kind feeds every metric of its input type the same predictions and targets, so a kind never chooses
metrics itself. Like torchmetrics: options fixed at construction, state accumulated by ``update()``, values
from ``compute()``. Unlike torchmetrics, ``compute()`` also returns per-item statistics, and the class
method ``aggregate(stats)`` recomputes the values from the statistics of any subset of items (reports
bootstrap with it), so it must not depend on the options: everything it needs is in the statistics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
import re
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.metrics.base import ItemStats, MetricValue
from mmbench.typed import fill

# What a metric scores; a task kind declares which of these it produces.
ANSWERS = "answers"  # generated text vs reference answers (targets: {"answers": [...], fields...})
CHOICES = "choices"  # a multiple-choice question's answered passes vs each pass's options and answer letter
CAPTIONS = "captions"  # generated captions vs reference captions
TRANSCRIPTS = "transcripts"  # ASR hypotheses vs reference transcripts
CLASS_SCORES = "class-scores"  # per-item class scores vs labels
EMBEDDINGS = "image-text-embeddings"  # image and caption embeddings of a retrieval gallery
GENERATED_IMAGES = "generated-images"  # features of generated images vs a reference set
INPUTS = (ANSWERS, CHOICES, CAPTIONS, TRANSCRIPTS, CLASS_SCORES, EMBEDDINGS, GENERATED_IMAGES)

BY_PREFIX = "/by:"
KIND_PREFIX = "kind:"  # an aggregator name "kind:<task kind>": a wrapping kind (a probe) aggregates itself  # stats key "<metric>/by:<field>" holds each item's group label for a breakdown


@dataclass
class MetricReport:
    """What ``Metric.compute`` returns."""

    values: list[MetricValue]
    stats: dict[str, np.ndarray]  # per-item statistics, first dimension = number of items
    # Per-item fields for the samples log, e.g. {"anls": [...]} or {"answer": [normalised answers]}.
    per_item: dict[str, list] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # The items the statistics rows belong to (indices into the inputs); None: every item. A retrieval
    # gallery leaves failed images out, for instance.
    kept: list[int] | None = None


@dataclass(frozen=True)
class NoOptions:
    pass


def parse_options(cls: type, raw: Mapping[str, Any], where: str) -> Any:
    """Fill the options dataclass ``cls`` from ``raw``, every value checked against its type (mmbench.typed)."""
    return fill(cls, raw, where, noun="option")


@dataclass
class MetricContext:
    """What a metric may use besides its inputs: run-wide resources (e.g. the Java caption scorer, closed by
    the runner) and whether the items are a subset of the task's data (--limit)."""

    resources: dict = field(default_factory=dict)
    is_subset: bool = False
    # what a distribution metric compares against (e.g. the reference images' features for FID)
    reference: Any = None
    # how the task made the inputs, appended to variants where it changes the number (e.g. a prompt ensemble)
    input_note: str = ""


class Metric:
    """Base class of named metrics (see the module doc)."""

    name: ClassVar[str] = ""
    # the value names a one-line summary shows for this metric, first present wins (default: its first value)
    headline: ClassVar[tuple[str, ...]] = ()
    # the value names it reports (default: its own name), as `compare --metrics` takes them; "{k}" stands for a
    # number from its options; breakdowns add "[field=label]" or "[mean over field]" to a name
    values: ClassVar[tuple[str, ...]] = ()
    inputs: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions
    # value name -> why aggregate() only approximates the reported value (e.g. corpus METEOR)
    approximations: ClassVar[Mapping[str, str]] = {}

    def __init__(self, options: Mapping[str, Any] | None = None, *, where: str = "",
                 context: MetricContext | None = None) -> None:
        self.options = parse_options(self.Options, dict(options or {}), where or f"metric {self.name!r}")
        self.context = context or MetricContext()
        self.check_options()
        self.reset()

    def check_options(self) -> None:
        """Refuse option values outside their range (one-line MMBenchError)."""

    def reset(self) -> None:
        self.predictions: list = []
        self.targets: list = []

    def update(self, predictions: Sequence, targets: Sequence) -> None:
        """Add a batch: one prediction and one target per item."""
        if len(predictions) != len(targets):
            raise MMBenchError(f"metric {self.name!r}: {len(predictions)} predictions for {len(targets)} targets")
        self.predictions.extend(predictions)
        self.targets.extend(targets)

    def compute(self) -> MetricReport:
        if not self.predictions:
            raise MMBenchError(f"metric {self.name!r}: nothing to score (no items were added)")
        return self.score(self.predictions, self.targets)

    def score(self, predictions: list, targets: list) -> MetricReport:
        raise NotImplementedError

    @classmethod
    def aggregate(cls, stats: ItemStats) -> dict[str, float]:
        """The metric's values recomputed from the per-item statistics of any subset of items."""
        raise NotImplementedError

    @classmethod
    def value_names(cls) -> tuple[str, ...]:
        return cls.values or (cls.name,)

    @classmethod
    def declares(cls, value: str) -> bool:
        """Whether ``value`` (e.g. "t2i_R@5" or "vqa_accuracy[question_type=what color]") is one of ``values``."""
        base = value.split("[", 1)[0]
        return any(re.fullmatch(re.escape(v).replace(r"\{k\}", r"\d+"), base) for v in cls.value_names())

    def describe(self) -> dict:
        return {"name": self.name, **dataclasses.asdict(self.options)}


# -- building metrics from a task file ----------------------------------------------------------------------

def metric_class(name: str) -> type[Metric]:
    from mmbench.registry import METRICS

    cls = METRICS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Metric)):
        raise MMBenchError(f"metric {name!r} is registered as {cls!r}, which is not a Metric subclass")
    return cls


def build_metrics(entries: Any, inputs: str, where: str, context: MetricContext | None = None) -> list[Metric]:
    """``metrics:`` of a task file (names, or mappings with ``name:`` plus options) -> Metric objects, each
    checked to score ``inputs``."""
    if isinstance(entries, (str, Mapping)):
        entries = [entries]
    if not isinstance(entries, (list, tuple)) or not entries:
        raise MMBenchError(f"{where}: `metrics:` must be a non-empty list of metric names "
                           f"(or {{name: ..., option: ...}} mappings)")
    out, seen = [], set()
    for entry in entries:
        if isinstance(entry, Mapping):
            if not isinstance(entry.get("name"), str):
                raise MMBenchError(f"{where}: a metric given as a mapping needs `name:` ({dict(entry)!r})")
            name, options = entry["name"], {k: v for k, v in entry.items() if k != "name"}
        elif isinstance(entry, str):
            name, options = entry, {}
        else:
            raise MMBenchError(f"{where}: {entry!r} in `metrics:` is neither a metric name nor a mapping")
        cls = metric_class(name)
        if cls.inputs != inputs:
            raise MMBenchError(f"{where}: metric {name!r} scores {cls.inputs}, but this task kind produces "
                               f"{inputs}; run `mmbench list metrics` for the metrics of each input")
        if cls.name in seen:
            raise MMBenchError(f"{where}: metric {name!r} is listed twice; list each metric once")
        seen.add(cls.name)
        out.append(cls(options, where=f"{where}: metric {name!r}", context=context))
    return out


def compute_all(metrics: Sequence[Metric], predictions: Sequence, targets: Sequence) -> list[MetricReport]:
    """Reset, update and compute every metric on the same inputs; statistics must not collide."""
    reports, keys = [], {}
    for m in metrics:
        m.reset()
        m.update(predictions, targets)
        report = m.compute()
        if reports and report.kept != reports[0].kept:
            raise MMBenchError(f"metric {m.name!r} scores other items than {metrics[0].name!r}; list metrics "
                               f"that keep the same items")
        for key, value in report.stats.items():
            if key in keys and not _same(keys[key], value):
                raise MMBenchError(f"metrics {m.name!r} and another metric of the task both write the per-item "
                                   f"statistic {key!r} with different values")
            keys[key] = value
        undeclared = [v.name for v in report.values if not type(m).declares(v.name)]
        if undeclared:  # a programming error: `list metrics` and `compare --metrics` would not know them
            raise RuntimeError(f"metric {m.name!r} reports {undeclared}, which its class does not declare in `values`")
        reports.append(report)
    return reports


def _same(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    try:
        return np.array_equal(a, b, equal_nan=True)
    except TypeError:  # strings: no NaN to compare
        return np.array_equal(a, b)


def aggregator_name(metrics: Sequence[Metric]) -> str:
    """What a result records as its aggregator: the metric names joined by '+'."""
    return "+".join(m.name for m in metrics)


def aggregator_for(name: str) -> Callable[[ItemStats], dict[str, float]]:
    """The function recomputing every value of a result from its per-item statistics: ``name`` is what
    :func:`aggregator_name` wrote (metric names joined by '+'), or ``kind:<task kind>`` for a wrapping kind
    (a probe) that aggregates its own statistics. Raises MMBenchError for an unknown name."""
    if name.startswith(KIND_PREFIX):
        from mmbench.registry import TASK_KINDS

        kind = TASK_KINDS.get(name[len(KIND_PREFIX):])
        if not callable(getattr(kind, "aggregate", None)):
            raise MMBenchError(f"task kind {name[len(KIND_PREFIX):]!r} does not aggregate its own statistics")
        return kind.aggregate
    classes = [metric_class(n) for n in name.split("+")]

    def aggregate(stats: ItemStats) -> dict[str, float]:
        out: dict[str, float] = {}
        for cls in classes:
            out.update(cls.aggregate(stats))
        return out

    # values whose aggregate is an approximation of the reported value (reports say so beside the interval)
    aggregate.approximations = {k: v for cls in classes for k, v in cls.approximations.items()}  # type: ignore
    return aggregate


# -- breakdowns (per answer type, per domain, ...) ---------------------------------------------------------

def left_to_right_mean(values: Sequence[float] | np.ndarray) -> float:
    """A plain left-to-right float sum divided by n, as the official VQA and ChartQA scripts compute a mean,
    so full-set values agree with them to the last bit."""
    values = np.asarray(values, dtype=np.float64).tolist()
    if not values:
        raise MMBenchError("cannot average over zero items: pass a non-empty subset")
    return float(sum(values)) / len(values)


def group_labels(targets: Sequence[Mapping], by: Sequence[str]) -> tuple[dict[str, list[str]], list[str]]:
    """For each breakdown field every item has, the items' labels as strings; and the fields some item lacks
    (no breakdown for those: a partial breakdown would not be comparable)."""
    present, missing = {}, []
    for fld in by:
        values = [t.get(fld) if isinstance(t, Mapping) else None for t in targets]
        if any(v is None for v in values):
            missing.append(fld)
        else:
            present[fld] = [_label(v) for v in values]
    return present, missing


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def breakdown(name: str, per_item: Sequence[float], labels: Mapping[str, list[str]], variant: str,
              higher_is_better: bool = True, extra: Callable[[list[float]], dict] | None = None
              ) -> tuple[list[MetricValue], dict[str, np.ndarray]]:
    """``name[field=value]`` means per group (in first-appearance order) and the label statistics."""
    values, stats = [], {}
    for fld, labs in labels.items():
        groups: dict[str, list[float]] = {}
        for v, lab in zip(per_item, labs):
            groups.setdefault(lab, []).append(float(v))
        for lab, vs in groups.items():
            values.append(MetricValue(f"{name}[{fld}={lab}]", left_to_right_mean(vs), variant, higher_is_better,
                                      extra={"n": len(vs), **(extra(vs) if extra else {})}))
        stats[f"{name}{BY_PREFIX}{fld}"] = np.asarray(labs)
    return values, stats


def aggregate_mean(name: str, stats: ItemStats) -> dict[str, float]:
    """``name`` (the mean of its per-item statistic) and its breakdowns, from any subset's statistics."""
    if name not in stats:
        return {}
    values = np.asarray(stats[name], dtype=np.float64)
    out = {name: left_to_right_mean(values)}
    prefix = f"{name}{BY_PREFIX}"
    for key in stats:
        if key.startswith(prefix):
            fld, labels = key[len(prefix):], np.asarray(stats[key])
            for lab in dict.fromkeys(labels.tolist()):
                out[f"{name}[{fld}={lab}]"] = left_to_right_mean(values[labels == lab])
    return out
