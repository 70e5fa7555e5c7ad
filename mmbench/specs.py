"""What to run, as frozen plain data (HELM-style specs), kept apart from the code that runs it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from mmbench.errors import MMBenchError


def canonical_json(obj: Any) -> str:
    """Stable JSON (sorted keys, no whitespace) for fingerprints."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def fingerprint(obj: Any, length: int = 16) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def parse_kv_args(text: str | None, what: str = "--model-args") -> dict[str, str]:
    """Parse ``k=v,k2=v2`` (a value may be wrapped in double quotes to hold commas; ``""`` inside them is a
    quote) or a JSON object. Quotes anywhere else are part of the value."""
    if not text:
        return {}
    text = text.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MMBenchError(f"{what}: malformed JSON ({exc.msg} at char {exc.pos}); "
                               f"use k=v,k2=v2 or a JSON object") from exc
        if not isinstance(obj, dict):
            raise MMBenchError(f"{what}: expected a JSON object, got {type(obj).__name__}")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in obj.items()}
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        if text[i] in ", ":
            i += 1
            continue
        eq, comma = text.find("=", i), text.find(",", i)
        if eq < 0 or (0 <= comma < eq) or not text[i:eq].strip():
            part = text[i:comma if comma >= 0 else n]
            raise MMBenchError(f"{what}: {part!r} is not of the form key=value (e.g. dtype=fp16,device=cpu)")
        key, j = text[i:eq].strip(), eq + 1
        if j < n and text[j] == '"':  # a quoted value: commas inside, "" for a literal quote
            buf, j = [], j + 1
            while True:
                if j >= n:
                    raise MMBenchError(f"{what}: the quoted value of {key!r} has no closing quote")
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        buf.append('"')
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            value, j = "".join(buf), j + 1
            if j < n and text[j] != ",":
                raise MMBenchError(f"{what}: expected ',' after the quoted value of {key!r}, got {text[j:j + 20]!r}")
        else:  # up to the next comma; any quote inside is kept as written
            end = text.find(",", j)
            end = n if end < 0 else end
            value, j = text[j:end].strip(), end
        out[key] = value
        i = j + 1
    return out


@dataclass(frozen=True)
class ModelSpec:
    """A registered model name (or a local folder) plus its options, as given by the user."""

    name: str
    args: Mapping[str, str] = field(default_factory=dict)
    alias: str | None = None  # the name results are filed under (default: see display_name)

    @property
    def display_name(self) -> str:
        """How the model is named in results: the alias, else ``name`` plus the weights it was pointed at
        (``hf-clip:openai/clip-vit-base-patch32``; a local folder by its last two path parts)."""
        if self.alias:
            return self.alias
        pretrained = self.args.get("pretrained")
        if not pretrained:
            return self.name
        parts = Path(str(pretrained)).parts
        short = "/".join(parts[-2:]) if Path(str(pretrained)).is_absolute() else str(pretrained)
        return f"{self.name}:{short}"

    def to_dict(self) -> dict:
        return {"name": self.name, "args": dict(self.args), "alias": self.alias}


@dataclass(frozen=True)
class TaskSpec:
    """A task definition read from YAML: its name, its kind (the Python task type) and its settings."""

    name: str
    kind: str
    config: Mapping[str, Any]
    source: str = ""  # the YAML file it came from

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "config": dict(self.config), "source": self.source}

    def with_overrides(self, settings: Mapping[str, Any], where: str = "run overrides") -> "TaskSpec":
        """This spec with per-run settings applied: the one operation behind ``mmbench run``'s --gen-kwargs,
        --system-prompt and --prompt.

        ``settings`` maps task-file keys to plain values (as YAML gives them): the decoding settings
        (``DecodingSettings.keys()`` in mmbench.capabilities: max_new_tokens, do_sample, ...; the seed is
        ``--seed``), ``system`` and ``prompt``. They are checked first (an unknown key is a one-line
        MMBenchError listing the accepted ones; a bad value fails like the same value in a task file). Then:

        - a kind whose ``Config`` (looked up in ``TASK_KINDS``) has a field for every one of those keys (the
          image+prompt->text kinds) gets them all, replacing the task file's values; ``prompt`` also drops
          the task's ``prompt_overrides`` (the given prompt is the prompt for every model);
        - a kind whose ``Config`` has a ``wraps`` field (a probe) gets them applied to its wrapped task spec;
        - any other kind (embedding, ASR, text-to-image) is returned unchanged.
        """
        settings = check_overrides(settings, where)
        if not settings:
            return self
        from mmbench.registry import TASK_KINDS

        kind = TASK_KINDS.get(self.kind)
        names = {f.name for f in dataclasses.fields(kind.Config)} if dataclasses.is_dataclass(
            getattr(kind, "Config", None)) else set()
        config = dict(self.config)
        wraps = config.get("wraps")
        if "wraps" in names and isinstance(wraps, Mapping):
            inner = TaskSpec(name=wraps["name"], kind=wraps["kind"], config=wraps["config"],
                             source=wraps.get("source", "")).with_overrides(settings, where)
            config["wraps"] = {**wraps, **inner.to_dict()}
            return TaskSpec(self.name, self.kind, config, self.source)
        if not set(override_keys()) <= names:
            return self  # embedding/ASR/text-to-image tasks have no decoding settings
        if "prompt" in settings:
            config.pop("prompt_overrides", None)
        return TaskSpec(self.name, self.kind, {**config, **settings}, self.source)


def override_keys() -> tuple[str, ...]:
    """The keys ``TaskSpec.with_overrides`` accepts: the decoding settings, ``system`` and ``prompt``."""
    from mmbench.capabilities import DecodingSettings

    return (*DecodingSettings.keys(), "system", "prompt")


def check_overrides(settings: Mapping[str, Any], where: str = "run overrides") -> dict[str, Any]:
    """``settings`` checked for ``TaskSpec.with_overrides`` (a plain dict of them, values untouched)."""
    from mmbench.capabilities import DecodingSettings

    if not isinstance(settings, Mapping):
        raise MMBenchError(f"{where}: expected a mapping of settings, got {type(settings).__name__}")
    accepted = override_keys()
    unknown = [k for k in settings if k not in accepted]
    if unknown:
        raise MMBenchError(f"{where}: unknown setting {unknown[0]!r}; accepted: {', '.join(accepted)}")
    if "prompt" in settings and not isinstance(settings["prompt"], str):
        raise MMBenchError(f"{where}: prompt must be a string, got {type(settings['prompt']).__name__}")
    if settings.get("system") is not None and not isinstance(settings["system"], str):
        raise MMBenchError(f"{where}: system must be a string, got {type(settings['system']).__name__}")
    DecodingSettings.parse({k: v for k, v in settings.items() if k not in ("system", "prompt")}, where)
    return dict(settings)


@dataclass(frozen=True)
class RunOptions:
    """How to run: batching, limits, where data comes from and where results go."""

    batch_size: int | str | None = None  # None: the task's default; "auto": largest that fits (batching.py)
    limit: int | float | None = None  # items per task: a count, or a fraction (0 < x < 1, rounded up)
    device: str | None = None
    data_dir: Path | None = None
    output_dir: Path = Path("mmbench-runs")
    store: Path | None = None  # None: <output_dir>/results.sqlite
    cache: bool = True
    seed: int = 0
    tags: tuple[str, ...] = ()
    prefetch: int = 1  # batches queued ahead of the model beyond one per preparation thread
    num_workers: int | None = None  # threads preparing batches; None: from the usable cores (execution.plan_threads)
    threads: int | None = None  # torch's intra-op threads during the loop; None: the cores the workers leave
    show_progress: bool = True
    # False: a (model, task) that fails is recorded with its reason and the run goes on; True: stop there
    fail_fast: bool = False

    @property
    def store_path(self) -> Path:
        return self.store if self.store is not None else self.output_dir / "results.sqlite"

    @property
    def cache_path(self) -> Path:
        return self.output_dir / "cache.sqlite"


@dataclass(frozen=True)
class RunSpec:
    """Everything one ``mmbench run`` evaluates: every model on every task that fits it."""

    models: tuple[ModelSpec, ...]
    tasks: tuple[TaskSpec, ...]
    options: RunOptions = RunOptions()
    suite: str | None = None


@dataclass(frozen=True)
class ModelNeed:
    """A model a task uses besides the one it evaluates, loaded by the runner (mmbench.adapters.extractors):
    ``kind`` "image-features" (a FeatureExtractor for FID/KID), "image-text-embedder" (an adapter for
    CLIP-score) or "text-generator" (an adapter that answers prompts, e.g. a multiple-choice judge), ``name``
    as the task file gives it, ``args`` its model args, ``batch_size`` for feature extraction."""

    kind: str
    name: str
    batch_size: int = 32
    args: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.args)
        return f"{self.kind}:{self.name}:{self.batch_size}" + (f":{args}" if args else "")

