"""The task-kind base: how a kind reads its items, turns a batch into adapter calls, and scores outputs.

A task kind is Python; a task is a YAML file that fills a kind's ``Config`` (data location, templates,
metric options). The runner drives every kind through the same five steps:
``items()`` -> ``setup()`` once -> ``prepare()`` per batch (preparation threads, CPU only) -> ``predict()`` per
batch (the model) -> ``score()`` once over all per-item outputs.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

from mmbench.capabilities import Capability
from mmbench.data.sources import DataContext, DataSet
from mmbench.errors import DataError, ItemError, MissingDataError, MMBenchError
from mmbench.metrics.api import Metric, MetricContext, MetricReport, aggregator_name, build_metrics, compute_all
from mmbench.metrics.base import MetricValue
from mmbench.registry import DATA_FORMATS
from mmbench import typed
from mmbench.specs import TaskSpec, fingerprint

# Keys every task file may have, whatever its kind.
COMMON_KEYS = {"task", "kind", "description", "data", "batch_size", "tags", "include", "reference", "metrics",
               "aliases"}
# The layout of the per-item outputs a task caches, part of its fingerprint so that outputs written in an
# older layout are recomputed instead of misread. 2: outputs carry the adapter's "events" the runner counts.
OUTPUT_LAYOUT = 2
# Keys that never change a per-item output (so never part of the cache key).
SCORING_KEYS = ("description", "tags", "batch_size", "metrics", "aliases", "reference")


@dataclass(frozen=True)
class TaskContext:
    data_dir: Path | None = None
    seed: int = 0
    limit: int | float | None = None  # a count, or a fraction of the items (0 < x < 1, rounded up)


@dataclass
class RunContext:
    """What the runner gives a task for one (model, task), through ``setup``: declared here, never assigned
    behind the task's back.

    ``memo(key, compute)``: a value computed once per (model, task) and kept in the per-item cache (a resumed
    run reuses it). ``resources``: run-wide objects every task of the run shares (the Java caption scorer,
    reference features), closed by the runner at the end. ``models``: the extra models the task named in
    ``needs()`` (role -> loaded object), loaded by the runner on its device and rank. ``outputs_of(task_fp,
    ids)``: {id: output} the cache already holds for the same model under another task's fingerprint (a probe
    reuses its wrapped task's answers to the real inputs); empty without a cache. Call it from ``predict``
    (the runner's thread), not from ``prepare``."""

    memo: Callable[[str, Callable[[], Any]], Any] = field(default=lambda key, compute: compute())
    resources: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    outputs_of: Callable[[str, list[str]], dict[str, Any]] = field(default=lambda task_fp, ids: {})


@dataclass
class Batch:
    """A prepared batch: the items that decoded, the model-ready payload, and the items that failed."""

    items: list[dict]
    payload: Any
    failed: dict[str, str] = field(default_factory=dict)
    # per item of ``items`` (when a kind has them): what the outputs carry besides the model's answer, e.g. the
    # frame indices and times a video item was sampled at
    extras: list[dict] = field(default_factory=list)


@dataclass
class ScoreReport:
    """What ``Task.score`` returns: metric values, per-item statistics and how to re-aggregate them."""

    metrics: list[MetricValue]
    item_ids: list[str]
    stats: dict[str, Any]  # arrays, first dimension = len(item_ids)
    aggregator: str  # metric names joined by '+' (or kind:<kind>): see mmbench.metrics.api.aggregator_for
    notes: list[str] = field(default_factory=list)
    samples: dict[str, dict] = field(default_factory=dict)  # per-item fields for samples_<task>.jsonl
    artifacts: dict[str, Any] = field(default_factory=dict)  # files to save: name -> array / JSON data


def parse_config(config_cls: type, raw: Mapping[str, Any], task: str) -> Any:
    """Validate a task file: the kind's ``Config`` keys by type (mmbench.typed), and the keys every task
    file may have."""
    where = f"task {task!r}"
    config = typed.fill(config_cls, raw, where, ignore=COMMON_KEYS)
    batch = raw.get("batch_size")
    if batch is not None and batch != "auto" and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise MMBenchError(f"{where}: batch_size must be a positive integer or 'auto', got {batch!r}")
    for key in ("description", "reference", "task", "kind"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise MMBenchError(f"{where}: {key} must be a string, got {type(raw[key]).__name__}")
    for key in ("tags", "aliases"):
        if raw.get(key) is not None:
            typed.coerce(raw[key], tuple[str, ...], f"{where}: {key}")
    typed.check_plain(dict(raw), where)
    return config


class Task:
    """Base class of task kinds."""

    kind: ClassVar[str] = ""
    requires: ClassVar[Capability]
    Config: ClassVar[type]
    default_batch_size: ClassVar[int] = 32
    # True when preparing a batch (decoding, resizing) costs about as much as the model's work on it, as for
    # embedding images: the runner then gives the CPU cores to preparation threads (execution.plan_threads)
    input_bound: ClassVar[bool] = False
    # What the kind's outputs are, as metrics see them (mmbench.metrics.api), and the metrics a task file
    # of this kind reports when it lists none. Empty: the kind computes its own values (a probe).
    metric_inputs: ClassVar[str] = ""
    default_metrics: ClassVar[tuple] = ()

    def __init__(self, spec: TaskSpec, ctx: TaskContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self.config = parse_config(self.Config, spec.config, spec.name)
        self._data: DataSet | None = None
        self.run = RunContext()  # what the runner gave setup(); a bare context until then (tests, scoring)
        self.metrics = self.build_metrics()  # bad metric names or options fail before any model runs

    @property
    def name(self) -> str:
        return self.spec.name

    # -- metrics ------------------------------------------------------------------------------------
    def metric_entries(self) -> list:
        """The task file's ``metrics:`` list, or the kind's defaults."""
        return list(self.spec.config.get("metrics") or self.default_metrics)

    def build_metrics(self, context: MetricContext | None = None) -> list[Metric]:
        if not self.metric_inputs:
            if self.spec.config.get("metrics"):
                raise MMBenchError(f"task {self.name!r}: a {self.kind!r} task computes its own values; remove "
                                   f"`metrics:` from the task file")
            return []
        return build_metrics(self.metric_entries(), self.metric_inputs, f"task {self.name!r}", context)

    def run_metrics(self, predictions: list, targets: list, resources: dict | None = None,
                    reference: Any = None, input_note: str = "") -> list[MetricReport]:
        """Every metric of the task on the same predictions and targets (fresh state each call)."""
        context = MetricContext(resources if resources is not None else {}, self.is_subset, reference, input_note)
        return compute_all(self.build_metrics(context), predictions, targets)

    @property
    def aggregator(self) -> str:
        return aggregator_name(self.metrics)

    # -- data ---------------------------------------------------------------------------------------
    @property
    def data(self) -> DataSet:
        if self._data is None:
            self._data = self.load_data()
        return self._data

    def load_data(self) -> DataSet:
        """The task's ``data:`` section; with ``sources: [...]`` the first layout found (e.g. the official
        release files under --data-dir, then the Hugging Face copy in the local cache)."""
        data_cfg = self.spec.config.get("data")
        if isinstance(data_cfg, Mapping) and "sources" in data_cfg:
            return load_first_source(self.name, data_cfg, self.ctx.data_dir)
        return load_source(self.name, data_cfg, self.ctx.data_dir)

    def items(self) -> list[dict]:
        """The evaluated items in a deterministic order (the first --limit of them)."""
        records = self.data.records
        n = self.limit_count(len(records))
        return records[:n] if n is not None else records

    def limit_count(self, total: int) -> int | None:
        """--limit as a number of the ``total`` items: a fraction is rounded up (lm-eval's rule), never below
        one item; None without a limit."""
        limit = self.ctx.limit
        if not limit:
            return None
        return max(1, math.ceil(limit * total)) if isinstance(limit, float) else int(limit)

    @property
    def is_subset(self) -> bool:
        n = self.limit_count(len(self.data.records))
        return n is not None and n < len(self.data.records)

    # -- identity and provenance -------------------------------------------------------------------
    def output_config(self) -> dict:
        """The parts of the config that change per-item outputs (prompts, templates): cache key input."""
        return {k: v for k, v in self.spec.config.items() if k not in SCORING_KEYS}

    def fingerprint(self) -> str:
        return fingerprint([self.kind, OUTPUT_LAYOUT, self.output_config(), self.data.fingerprint])

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "requires": self.requires.value,
                "source": self.spec.source, "config": dict(self.spec.config),
                "data": {"description": self.data.description, "fingerprint": self.data.fingerprint,
                         "n_total": len(self.data.records), "n_evaluated": len(self.items()),
                         "is_subset": self.is_subset},
                "metrics": [m.describe() for m in self.metrics]}

    def check_items(self, items: list[dict]) -> None:
        """Refuse items whose fields the metrics cannot score (MMBenchError naming the first), before any
        model runs; kinds override it."""

    # -- the five steps ------------------------------------------------------------------------------
    def batch_order(self, items: list[dict]) -> list[dict]:
        """The order in which not-yet-cached items are batched (e.g. by prompt length); never changes scores."""
        return items

    def needs(self) -> dict:
        """Models the task uses besides the evaluated one (role -> specs.ModelNeed), loaded by the runner and
        given back in ``run.models``; none by default."""
        return {}

    def setup(self, model: Any, run: RunContext) -> None:
        """Once per (model, task) before the items (e.g. embed the class prompts, via ``run.memo``). Kinds
        that override it call ``super().setup(model, run)`` first."""
        self.run = run

    def prepare(self, model: Any, items: list[dict]) -> Batch:
        """Decode the batch's inputs (runs in a preparation thread). Items that fail go to ``failed``."""
        raise NotImplementedError

    def predict(self, model: Any, batch: Batch) -> list[dict]:
        """One output dict per item of ``batch.items`` (JSON values and numpy arrays)."""
        raise NotImplementedError

    def score(self, items: list[dict], outputs: list[dict | None]) -> ScoreReport:
        """Score all items; ``outputs[i]`` is None when item i failed."""
        raise NotImplementedError


def load_source(task: str, data_cfg: Any, data_dir: Path | None, help_text: str = "") -> DataSet:
    """One ``data:`` section (a ``format:`` and its keys) -> a DataSet with at least one item."""
    if not isinstance(data_cfg, Mapping) or "format" not in data_cfg:
        raise MMBenchError(f"task {task!r}: the task file needs a `data:` section with a `format:` "
                           f"(one of: {', '.join(DATA_FORMATS.names())})")
    loader = DATA_FORMATS.get(data_cfg["format"])
    ctx = DataContext(task=task, data_dir=data_dir, help=str(data_cfg.get("help", help_text)))
    data = loader({k: v for k, v in data_cfg.items() if k not in ("format", "help")}, ctx)
    if not data.records:
        raise DataError(f"task {task!r}: the data has no items ({data.description})")
    return data


def load_first_source(task: str, data_cfg: Mapping, data_dir: Path | None) -> DataSet:
    """``data: {sources: [...], help: ...}``: the first source whose files are there; when none is, one line
    naming every place that was looked at and the help text."""
    sources = data_cfg["sources"]
    if not isinstance(sources, list) or not sources:
        raise MMBenchError(f"task {task!r}: `data: sources:` must be a non-empty list of data sections")
    missing = []
    for source in sources:
        try:
            return load_source(task, source, data_dir, help_text="")
        except MissingDataError as exc:
            place = str(exc).removeprefix(f"task {task!r}: ").split(". Pass --data-dir")[0].rstrip(".")
            if place not in missing:  # two configs of one hub copy are one place to the user
                missing.append(place)
    hint = str(data_cfg.get("help", "")).strip()
    raise MissingDataError(f"task {task!r}: no copy of its data found ({'; '.join(missing)}). {hint}".rstrip())


def template_fields(task: str, template: str, what: str = "prompt template") -> list[str]:
    """The ``{field}`` names of a prompt template. Only plain names are allowed: no format specs, conversions,
    attributes or indexes (``{question:>100000000}`` would take a gigabyte, ``{question.__class__}`` reaches
    into Python objects), and braces must balance (``{{`` and ``}}`` are literal braces)."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise MMBenchError(f"task {task!r}: {what} {template!r} is malformed ({exc}); write {{field}} for a field "
                           f"and {{{{ }}}} for literal braces") from exc
    names = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise MMBenchError(f"task {task!r}: {what} {template!r} uses {{{name}{'!' + conversion if conversion else ''}"
                               f"{':' + spec if spec else ''}}}; only plain {{field}} names are allowed")
        names.append(name)
    return names


def fill_prompt(task: str, template: str, fields: Mapping[str, Any], item_id: str) -> str:
    """The template with each ``{field}`` replaced by the item's value (plain names only, see template_fields),
    or a one-line error naming the task, the template and the missing field."""
    template_fields(task, template)
    try:
        return template.format_map({k: v for k, v in fields.items()})
    except KeyError as exc:
        raise MMBenchError(f"task {task!r}: prompt template {template!r} uses {{{exc.args[0]}}} "
                           f"but item {item_id!r} has no such field") from exc


def decode_each(items: list[dict], decode: Callable[[dict], Any]) -> tuple[list[dict], list[Any], dict[str, str]]:
    """Apply ``decode`` to every item; items raising ItemError are set aside with their message."""
    ok, decoded, failed = [], [], {}
    for item in items:
        try:
            decoded.append(decode(item))
            ok.append(item)
        except ItemError as exc:
            failed[item["id"]] = str(exc)
    return ok, decoded, failed
