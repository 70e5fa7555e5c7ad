"""The task-kind base: how a kind reads its items, turns a batch into adapter calls, and scores outputs.

A task kind is Python; a task is a YAML file that fills a kind's ``Config`` (data location, templates,
metric options). The runner drives every kind through the same five steps:
``items()`` -> ``setup()`` once -> ``prepare()`` per batch (prefetch thread, CPU only) -> ``predict()`` per
batch (the model) -> ``score()`` once over all per-item outputs.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

from mmbench.capabilities import Capability
from mmbench.data.sources import DataContext, DataSet
from mmbench.errors import DataError, ItemError, MMBenchError
from mmbench.metrics.base import MetricValue
from mmbench.registry import DATA_FORMATS
from mmbench.specs import TaskSpec, fingerprint

# Keys every task file may have, whatever its kind.
COMMON_KEYS = {"task", "kind", "description", "data", "batch_size", "tags", "include", "reference"}


@dataclass(frozen=True)
class TaskContext:
    data_dir: Path | None = None
    seed: int = 0
    limit: int | None = None


@dataclass
class Batch:
    """A prepared batch: the items that decoded, the model-ready payload, and the items that failed."""

    items: list[dict]
    payload: Any
    failed: dict[str, str] = field(default_factory=dict)


@dataclass
class ScoreReport:
    """What ``Task.score`` returns: metric values, per-item statistics and how to re-aggregate them."""

    metrics: list[MetricValue]
    item_ids: list[str]
    stats: dict[str, Any]  # arrays, first dimension = len(item_ids)
    aggregator: str  # a METRICS registry name: its aggregate(stats) recomputes the metrics
    notes: list[str] = field(default_factory=list)
    samples: dict[str, dict] = field(default_factory=dict)  # per-item fields for samples_<task>.jsonl
    artifacts: dict[str, Any] = field(default_factory=dict)  # files to save: name -> array / JSON data


def parse_config(config_cls: type, raw: Mapping[str, Any], task: str) -> Any:
    """Validate a task file's kind-specific keys against the kind's Config dataclass."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(raw) - names - COMMON_KEYS)
    if unknown:
        import difflib
        key = unknown[0]
        close = difflib.get_close_matches(key, sorted(names | COMMON_KEYS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"accepted: {', '.join(sorted(names | COMMON_KEYS))}"
        raise MMBenchError(f"task {task!r}: unknown key {key!r} in the task file; {hint}")
    hints = typing.get_type_hints(config_cls)
    values = {}
    for name in names:
        if name in raw:
            value = raw[name]
            if typing.get_origin(hints[name]) is tuple and isinstance(value, list):
                value = tuple(value)
            values[name] = value
    try:
        return config_cls(**values)
    except TypeError as exc:
        raise MMBenchError(f"task {task!r}: {exc}") from exc


class Task:
    """Base class of task kinds."""

    kind: ClassVar[str] = ""
    requires: ClassVar[Capability]
    Config: ClassVar[type]
    default_batch_size: ClassVar[int] = 32

    def __init__(self, spec: TaskSpec, ctx: TaskContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self.config = parse_config(self.Config, spec.config, spec.name)
        self._data: DataSet | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    # -- data ---------------------------------------------------------------------------------------
    @property
    def data(self) -> DataSet:
        if self._data is None:
            self._data = self.load_data()
        return self._data

    def load_data(self) -> DataSet:
        data_cfg = self.spec.config.get("data")
        if not isinstance(data_cfg, Mapping) or "format" not in data_cfg:
            raise MMBenchError(f"task {self.name!r}: the task file needs a `data:` section with a `format:` "
                               f"(one of: {', '.join(DATA_FORMATS.names())})")
        loader = DATA_FORMATS.get(data_cfg["format"])
        ctx = DataContext(task=self.name, data_dir=self.ctx.data_dir, help=str(data_cfg.get("help", "")))
        data = loader({k: v for k, v in data_cfg.items() if k not in ("format", "help")}, ctx)
        if not data.records:
            raise DataError(f"task {self.name!r}: the data has no items ({data.description})")
        return data

    def items(self) -> list[dict]:
        """The evaluated items in a deterministic order (the first --limit of them)."""
        records = self.data.records
        return records[: self.ctx.limit] if self.ctx.limit else records

    @property
    def is_subset(self) -> bool:
        return bool(self.ctx.limit) and self.ctx.limit < len(self.data.records)

    # -- identity and provenance -------------------------------------------------------------------
    def output_config(self) -> dict:
        """The parts of the config that change per-item outputs (prompts, templates): cache key input."""
        return {k: v for k, v in self.spec.config.items() if k not in ("description", "tags", "batch_size")}

    def fingerprint(self) -> str:
        return fingerprint([self.kind, self.output_config(), self.data.fingerprint])

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "requires": self.requires.value,
                "source": self.spec.source, "config": dict(self.spec.config),
                "data": {"description": self.data.description, "fingerprint": self.data.fingerprint,
                         "n_total": len(self.data.records), "n_evaluated": len(self.items()),
                         "is_subset": self.is_subset}}

    # -- the five steps ------------------------------------------------------------------------------
    def batch_order(self, items: list[dict]) -> list[dict]:
        """The order in which not-yet-cached items are batched (e.g. by prompt length); never changes scores."""
        return items

    def setup(self, model: Any, memo: Callable[[str, Callable[[], Any]], Any]) -> None:
        """Once per (model, task) before the items: e.g. embed the class prompts. ``memo(key, fn)`` caches."""

    def prepare(self, model: Any, items: list[dict]) -> Batch:
        """Decode the batch's inputs (runs in the prefetch thread). Items that fail go to ``failed``."""
        raise NotImplementedError

    def predict(self, model: Any, batch: Batch) -> list[dict]:
        """One output dict per item of ``batch.items`` (JSON values and numpy arrays)."""
        raise NotImplementedError

    def score(self, items: list[dict], outputs: list[dict | None]) -> ScoreReport:
        """Score all items; ``outputs[i]`` is None when item i failed."""
        raise NotImplementedError


def fill_prompt(task: str, template: str, fields: Mapping[str, Any], item_id: str) -> str:
    """``template.format(**fields)``, or a one-line error naming the task, the template and the missing field."""
    try:
        return template.format(**fields)
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
