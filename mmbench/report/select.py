"""Choosing results to report: the store (or a run folder) -> pandas DataFrames and loaded task results.

The store holds every run ever made; reports want one result per (model, task), usually the latest.
``results_frame`` selects task results by model, task, tag, run and time (latest per (model, task) by
default) and ``metrics_frame`` gives the same selection one row per metric value. ``load_records`` then reads
the chosen rows back as :class:`ResultRecord` (the TaskResult plus its per-item statistics), which is what
intervals and paired tests need. ``run_records`` does the same for one run given as a folder, a run id or
``model:NAME`` (the latest result of every task for that model), for ``mmbench compare``.

Records are data only: where a result's files are (``run_dir``, ``artifacts_dir``) and what they hold.
How they are shown (e.g. generated images inlined in the HTML page) is the renderers' business.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from mmbench import files
from mmbench.errors import MMBenchError
from mmbench.results import RunResult, TaskResult
from mmbench.store import Store, unpack_stats

_RESULT_COLUMNS = (
    "result_id", "run_id", "model", "task", "kind", "created_at", "n_items", "n_failed", "items_per_s",
    "wall_time_s", "peak_memory_bytes", "peak_memory_kind", "model_fingerprint", "task_fingerprint",
    "data_fingerprint", "aggregator")


@dataclass
class ResultRecord:
    """One task result with the per-item statistics needed to resample it, and where it came from."""

    run_id: str
    result: TaskResult
    item_ids: list[str]
    stats: dict[str, np.ndarray]
    run_dir: Path | None = None  # where samples_<task>.jsonl lives (None when unknown)
    result_id: int | None = None  # the store row, when read from a store
    source: str = ""  # for messages: "store row 12" or "run folder runs/2026..."

    @property
    def model(self) -> str:
        return self.result.model

    @property
    def task(self) -> str:
        return self.result.task

    def metric(self, name: str) -> dict | None:
        """The metric dict called ``name`` (name, value, variant, higher_is_better, ...) or None: the same
        contract as TaskResult.metric, which it delegates to."""
        return self.result.metric(name)

    @property
    def artifacts_dir(self) -> Path | None:
        """The folder of the result's artifacts (submission files, generated images), None when unknown."""
        rel = self.result.files.get("artifacts")
        return self.run_dir / rel if rel and self.run_dir is not None else None

    def samples(self, limit: int) -> list[dict]:
        """The first ``limit`` lines of samples_<task>.jsonl (model outputs per item), [] when not found."""
        rel = self.result.files.get("samples")
        if not rel or self.run_dir is None:
            return []
        path = self.run_dir / rel
        if not path.is_file():
            return []
        return [row for _, row in itertools.islice(files.iter_jsonl(path, "samples file"), limit)]


def task_result_from_dict(d: dict) -> TaskResult:
    """A TaskResult from its JSON form (the store's result_json), nested dataclasses included."""
    return TaskResult.from_dict(d)


def open_store(path: Path) -> Store:
    """Open an existing store; a missing file is a user error (opening would silently create an empty one)."""
    path = Path(path)
    if not path.is_file():
        raise MMBenchError(f"no results store at {path}: run `mmbench run` first, or pass --store PATH "
                           f"(default: mmbench-runs/results.sqlite)")
    return Store(path)


def _as_list(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _timestamp(value: str | datetime | pd.Timestamp, what: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise MMBenchError(f"{what} {value!r} is not a date or time: use ISO 8601, e.g. 2026-01-31 or "
                           f"2026-01-31T12:00") from exc
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def results_frame(store: Store, *, models: str | Sequence[str] | None = None,
                  tasks: str | Sequence[str] | None = None, tags: str | Sequence[str] | None = None,
                  run_ids: str | Sequence[str] | None = None, since: str | datetime | None = None,
                  until: str | datetime | None = None, latest: bool = True) -> pd.DataFrame:
    """One row per selected task result (throughput, memory, fingerprints, the run's tags and folder, and
    the task's ``curve`` setting when it has one: ``{"name", "x", "x_label"}``).

    ``tags``: the run must carry every tag given. ``since``/``until``: inclusive bounds on the result's
    creation time (naive times are UTC). ``latest``: keep only the newest result of each (model, task).
    Rows come sorted by model, then task.
    """
    where, params = [], []
    for column, values in (("tr.model", _as_list(models)), ("tr.task", _as_list(tasks)),
                           ("tr.run_id", _as_list(run_ids))):
        if values is not None:
            where.append(f"{column} IN ({', '.join('?' * len(values))})" if values else "0")
            params.extend(values)
    sql = (f"SELECT {', '.join('tr.' + c for c in _RESULT_COLUMNS)}, r.tags AS tags, r.run_dir AS run_dir, "
           f"json_extract(tr.result_json, '$.task_info.config.curve') AS curve, "
           f"COALESCE(json_extract(r.run_json, '$.status'), 'complete') AS run_status "
           f"FROM task_results tr JOIN runs r ON r.run_id = tr.run_id"
           + (f" WHERE {' AND '.join(where)}" if where else ""))
    df = pd.read_sql_query(sql, store.conn, params=params)
    df["tags"] = [tuple(json.loads(t or "[]")) for t in df["tags"]]
    df["curve"] = [json.loads(c) if isinstance(c, str) else None for c in df["curve"]]
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True, format="ISO8601")
    wanted = _as_list(tags)
    if wanted:
        df = df[df["tags"].map(lambda t: set(wanted) <= set(t)).astype(bool)]
    if since is not None:
        df = df[df["created_at"] >= _timestamp(since, "--since")]
    if until is not None:
        df = df[df["created_at"] <= _timestamp(until, "--until")]
    if latest:
        df = df.sort_values(["created_at", "result_id"]).drop_duplicates(["model", "task"], keep="last")
    return df.sort_values(["model", "task", "created_at", "result_id"]).reset_index(drop=True)


def metrics_frame(store: Store, **selection) -> pd.DataFrame:
    """The selection of :func:`results_frame` with one row per metric value (value, variant, direction).

    ``higher_is_better`` is a bool; ``unavailable`` holds the reason when a metric has no value.
    """
    results = results_frame(store, **selection)
    ids = [int(i) for i in results["result_id"]]
    if not ids:
        metrics = pd.DataFrame(columns=["result_id", "metric", "value", "variant", "higher_is_better",
                                        "unavailable"])
    else:
        metrics = pd.read_sql_query(
            f"SELECT result_id, metric, value, variant, higher_is_better, unavailable FROM metrics "
            f"WHERE result_id IN ({', '.join('?' * len(ids))})", store.conn, params=ids)
    metrics["higher_is_better"] = metrics["higher_is_better"].astype(bool)
    return results.merge(metrics, on="result_id", how="inner")


def _run_dir(recorded: str | None, store: Store) -> Path | None:
    """The run folder as recorded, or beside the store (the default layout) when the recorded path moved."""
    if not recorded:
        return None
    path = Path(recorded)
    if path.is_dir():
        return path
    beside = store.path.parent / path.name
    return beside if beside.is_dir() else None


def load_records(store: Store, result_ids: Iterable[int]) -> dict[int, ResultRecord]:
    """The store rows ``result_ids`` as ResultRecords (TaskResult + item ids + per-item statistics)."""
    ids = [int(i) for i in result_ids]
    out: dict[int, ResultRecord] = {}
    if not ids:
        return out
    rows = store.query(
        f"SELECT tr.result_id, tr.run_id, tr.result_json, tr.item_stats, r.run_dir FROM task_results tr "
        f"JOIN runs r ON r.run_id = tr.run_id WHERE tr.result_id IN ({', '.join('?' * len(ids))})", tuple(ids))
    for result_id, run_id, result_json, blob, run_dir in rows:
        item_ids, stats = unpack_stats(blob) if blob else ([], {})
        out[int(result_id)] = ResultRecord(
            run_id=run_id, result=task_result_from_dict(json.loads(result_json)), item_ids=item_ids,
            stats=stats, run_dir=_run_dir(run_dir, store), result_id=int(result_id),
            source=f"store row {result_id} of run {run_id}")
    return out


def records_from_run_dir(run_dir: Path) -> list[ResultRecord]:
    """Every task result of a run folder, with the item statistics from its item_stats_<task>.npz files."""
    run_dir = Path(run_dir)
    run = RunResult.read(run_dir)
    records = []
    for result in run.results:
        rel = result.files.get("item_stats")
        path = run_dir / rel if rel else None
        if path is None or not path.is_file():
            raise MMBenchError(f"run folder {run_dir}: the item statistics of {result.model} / {result.task} "
                               f"({rel or 'no item_stats entry'}) are missing; re-run the task")
        item_ids, stats = unpack_stats(path.read_bytes())
        records.append(ResultRecord(run_id=run.run_id, result=result, item_ids=item_ids, stats=stats,
                                    run_dir=run_dir, source=f"run folder {run_dir}"))
    return records


def run_records(source: str | Path, store_path: Path | None = None) -> list[ResultRecord]:
    """The task results of a run given as a run folder, a run id (or unique prefix) in the store, or
    ``model:NAME`` (the latest result of every task of that model in the store)."""
    text = str(source)
    path = Path(text)
    if path.is_dir() or (path.is_file() and path.name.endswith(".json")):
        return records_from_run_dir(path if path.is_dir() else path.parent)
    if store_path is None or not Path(store_path).is_file():
        raise MMBenchError(f"{text!r} is not a run folder, and there is no results store "
                           f"{'given' if store_path is None else 'at ' + str(store_path)} to look it up as "
                           f"a run id: pass a run folder or --store PATH")
    store = open_store(Path(store_path))
    try:
        if text.startswith("model:"):
            frame = results_frame(store, models=[text[len("model:"):]])
            if frame.empty:
                raise MMBenchError(f"no results for model {text[len('model:'):]!r} in {store.path}: check the "
                                   f"name (`mmbench leaderboard` lists the models in the store)")
        else:
            matches = sorted({r[0] for r in store.query("SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ?",
                                                        (len(text), text))})
            if not matches:
                raise MMBenchError(f"{text!r} is neither a run folder nor a run id in {store.path}: pass a "
                                   f"folder written by `mmbench run` or one of its run ids")
            if len(matches) > 1:
                raise MMBenchError(f"run id prefix {text!r} matches {len(matches)} runs "
                                   f"({', '.join(matches[:3])}...): give more of the id")
            frame = results_frame(store, run_ids=matches, latest=False)
            if frame.empty:
                raise MMBenchError(f"run {matches[0]} has no task results in {store.path} (did it fail? see "
                                   f"its results.json)")
        loaded = load_records(store, frame["result_id"])
        return [loaded[int(i)] for i in frame["result_id"]]
    finally:
        store.close()
