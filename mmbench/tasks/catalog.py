"""Task files: find them (built-in folder, --include-path folders, plugins), read and validate the YAML.

A task file has ``task:`` (its name) and ``kind:`` (a registered task kind); ``include: other.yaml`` merges
a base file first (for shared templates). A suite file has ``suite:`` and lists ``tasks:`` and ``models:``.
Files whose names start with ``_`` are only included, never listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Iterable

from mmbench import files
from mmbench.capabilities import Capability
from mmbench.errors import MMBenchError, UnknownNameError
from mmbench.registry import TASK_KINDS, Registry
from mmbench.specs import TaskSpec

ENTRY_POINT_GROUP = "mmbench.tasks"


def builtin_task_dir() -> Path:
    """The shipped task folder: package data when installed, the repository's tasks/ when run from source."""
    try:
        import mmbench.builtin_tasks as builtin

        return Path(builtin.__file__).parent
    except ImportError:  # editable installs do not map the folder into the package
        import mmbench

        return Path(mmbench.__file__).resolve().parent.parent / "tasks"


def read_yaml(path: Path) -> dict:
    data = files.read_yaml(path, "task file")
    if not isinstance(data, dict):
        raise MMBenchError(f"task file {path}: expected a mapping of keys (task:, kind:, ...) at the top level")
    return data


def _with_includes(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if path in seen:
        raise MMBenchError(f"task file {path}: include cycle ({' -> '.join(map(str, seen + (path,)))})")
    data = read_yaml(path)
    base = data.pop("include", None)
    if base is None:
        return data
    merged = {}
    for inc in [base] if isinstance(base, str) else list(base):
        merged.update(_with_includes((path.parent / inc).resolve(), seen + (path,)))
    merged.update(data)
    return merged


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    tasks: tuple[str, ...]
    models: tuple[str, ...]
    description: str = ""
    source: str = ""


class TaskCatalog:
    """All task and suite files visible to this run, by name."""

    def __init__(self, include_paths: Iterable[Path] = ()) -> None:
        self.dirs = [builtin_task_dir(), *[Path(p) for p in include_paths]]
        self._tasks: dict[str, Path] = {}
        self._aliases: dict[str, str] = {}  # other harnesses' names (lmms-eval's textvqa_val) -> task name
        self._suites: dict[str, Path] = {}
        self._load_plugins()
        for d in self.dirs:
            if not d.is_dir():
                raise MMBenchError(f"task folder {d} not found; check --include-path")
            for f in sorted(d.rglob("*.yaml")):
                if f.name.startswith("_"):
                    continue
                data = read_yaml(f)
                if "suite" in data:
                    self._suites[str(data["suite"])] = f
                elif "task" in data:
                    self._tasks[str(data["task"])] = f  # later folders override earlier ones
                    aliases = data.get("aliases") or []
                    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                        raise MMBenchError(f"task file {f}: `aliases:` must be a list of names")
                    for alias in aliases:
                        self._aliases[alias] = str(data["task"])

    def _load_plugins(self) -> None:
        """Entry points in ``mmbench.tasks``: folders of task files. (New task kinds come through the
        ``mmbench.task_kinds`` group of the TASK_KINDS registry, like models through ``mmbench.models``.)"""
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            obj = ep.load()
            if isinstance(obj, (str, Path)) and Path(obj).is_dir():
                self.dirs.append(Path(obj))
            else:
                raise MMBenchError(f"plugin entry point {ep.name!r} ({ep.value}) in group {ENTRY_POINT_GROUP!r} "
                                   f"is not a folder of task files (a new task kind goes in the "
                                   f"'mmbench.task_kinds' group)")

    def task_names(self) -> list[str]:
        return sorted(self._tasks)

    def suite_names(self) -> list[str]:
        return sorted(self._suites)

    def _unknown(self, kind: str, name: str, names: list[str]) -> UnknownNameError:
        reg: Registry = Registry(kind)
        for n in names:
            reg.register(n, n)
        return UnknownNameError(reg.unknown_message(name))

    def task_spec(self, name_or_path: str) -> TaskSpec:
        """A task by name, a path to a task file, or ``probe:<task>`` (a modality probe of that task)."""
        if name_or_path.startswith("probe:probe:"):
            raise MMBenchError(f"task {name_or_path!r}: a probe wraps a task, not another probe; use "
                               f"probe:{name_or_path.removeprefix('probe:probe:')}")
        if name_or_path.startswith("probe:"):
            return probe_spec(self.task_spec(name_or_path[len("probe:"):]))
        if name_or_path.endswith((".yaml", ".yml")) and Path(name_or_path).exists():
            path = Path(name_or_path).resolve()
        elif name_or_path in self._tasks:
            path = self._tasks[name_or_path]
        elif name_or_path in self._aliases and self._aliases[name_or_path] in self._tasks:
            path = self._tasks[self._aliases[name_or_path]]
        else:
            raise self._unknown("task", name_or_path, self.task_names() + sorted(self._aliases))
        data = _with_includes(path)
        if "task" not in data or "kind" not in data:
            raise MMBenchError(f"task file {path}: needs `task:` (its name) and `kind:` "
                               f"(one of: {', '.join(TASK_KINDS.names())})")
        TASK_KINDS.get(str(data["kind"]))  # unknown kind -> did you mean
        if isinstance(data.get("wraps"), str):  # a probe file naming the task it wraps (`wraps: mmstar`)
            if data["wraps"].startswith("probe:"):
                raise MMBenchError(f"task file {path}: wraps {data['wraps']!r}; a probe wraps a task, not a probe")
            data = {**data, "wraps": self.task_spec(data["wraps"]).to_dict()}
        return TaskSpec(name=str(data["task"]), kind=str(data["kind"]), config=data, source=str(path))

    def suite(self, name: str) -> SuiteSpec:
        if name not in self._suites:
            raise self._unknown("suite", name, self.suite_names())
        data = read_yaml(self._suites[name])
        return SuiteSpec(name=name, tasks=tuple(data.get("tasks", ())), models=tuple(data.get("models", ())),
                         description=str(data.get("description", "")), source=str(self._suites[name]))

    def aliases_of(self, name: str) -> list[str]:
        return sorted(a for a, t in self._aliases.items() if t == name)

    def describe(self, name: str) -> dict[str, Any]:
        spec = self.task_spec(name)
        return {"task": spec.name, "kind": spec.kind, "description": spec.config.get("description", ""),
                "aliases": self.aliases_of(spec.name), "source": spec.source}


def build_task(spec: TaskSpec, ctx: Any) -> Any:
    """Instantiate the task kind named by the spec."""
    return TASK_KINDS.get(spec.kind)(spec, ctx)


def probe_spec(inner: TaskSpec) -> TaskSpec:
    """The spec of ``probe:<task>``: an input-ablation probe, or the embedding probe for dual-encoder tasks."""
    kind = "embedding-probe" if TASK_KINDS.get(inner.kind).requires == Capability.EMBED else "probe"
    name = f"probe:{inner.name}"
    config = {"task": name, "kind": kind, "wraps": inner.to_dict(),
              "description": f"modality-collapse probe of {inner.name}"}
    if inner.config.get("batch_size"):  # batched like the wrapped task (a throughput setting, never a score's)
        config["batch_size"] = inner.config["batch_size"]
    return TaskSpec(name=name, kind=kind, config=config, source=inner.source)
