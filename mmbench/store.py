"""The results store: every run's task results in one SQLite file, for leaderboards and comparisons.

Tables: ``runs`` (one row per run, the whole results.json), ``task_results`` (one row per (run, model,
task) with throughput, memory, fingerprints and the per-item statistics as an .npz blob), ``metrics``
(one row per number, with its variant), so SQL alone can answer "latest top-1 of every model".
"""

from __future__ import annotations

import io
import json
import sqlite3
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.results import RunResult, TaskResult
from mmbench.schema import migrate, unchanged

# The layout of the store (PRAGMA user_version); version 0 files (before versioning) have the same tables.
STORE_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, run_dir TEXT, command TEXT, mmbench_version TEXT,
    git_revision TEXT, tags TEXT NOT NULL DEFAULT '[]', run_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS task_results (
    result_id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(run_id),
    model TEXT NOT NULL, task TEXT NOT NULL, kind TEXT NOT NULL, created_at TEXT NOT NULL,
    n_items INTEGER, n_failed INTEGER, items_per_s REAL, wall_time_s REAL, peak_memory_bytes INTEGER,
    peak_memory_kind TEXT, model_fingerprint TEXT, task_fingerprint TEXT, data_fingerprint TEXT,
    aggregator TEXT, result_json TEXT NOT NULL, item_stats BLOB
);
CREATE TABLE IF NOT EXISTS metrics (
    result_id INTEGER NOT NULL REFERENCES task_results(result_id), run_id TEXT NOT NULL,
    model TEXT NOT NULL, task TEXT NOT NULL, metric TEXT NOT NULL, value REAL, variant TEXT,
    higher_is_better INTEGER, unavailable TEXT
);
CREATE INDEX IF NOT EXISTS task_results_model_task ON task_results (model, task, created_at);
"""


def pack_stats(item_ids: list[str], stats: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    arrays = {f"stat__{k}": np.asarray(v) for k, v in stats.items()}
    np.savez_compressed(buf, item_ids=np.asarray(item_ids, dtype=str), **arrays)
    return buf.getvalue()


def unpack_stats(blob: bytes) -> tuple[list[str], dict[str, np.ndarray]]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        ids = [str(x) for x in z["item_ids"]]
        return ids, {k[len("stat__"):]: z[k] for k in z.files if k.startswith("stat__")}


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise MMBenchError(f"results store {self.path} is a folder; pass the SQLite file (--store)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=60)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.executescript(_SCHEMA)
            migrate(self.conn, self.path, STORE_VERSION, {0: unchanged}, "results store")
        except sqlite3.DatabaseError as exc:
            raise MMBenchError(f"results store {self.path} is not an mmbench results store ({exc}); move it away "
                               f"or pass another --store") from None

    def save_run(self, run: RunResult, run_dir: Path, tags: tuple[str, ...] = ()) -> None:
        """Insert or update the run row (called after each task so nothing computed is lost)."""
        with self.conn:
            self.conn.execute(
                "INSERT INTO runs (run_id, created_at, run_dir, command, mmbench_version, git_revision, tags, "
                "run_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET "
                "run_json=excluded.run_json",
                (run.run_id, run.created_at, str(run_dir), json.dumps(run.command), run.mmbench_version,
                 run.git_revision, json.dumps(list(tags)), json.dumps(run.to_dict(), default=str)))

    def add_result(self, run_id: str, result: TaskResult, item_ids: list[str], stats: dict[str, Any]) -> int:
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO task_results (run_id, model, task, kind, created_at, n_items, n_failed, items_per_s, "
                "wall_time_s, peak_memory_bytes, peak_memory_kind, model_fingerprint, task_fingerprint, "
                "data_fingerprint, aggregator, result_json, item_stats) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, result.model, result.task, result.kind, result.created_at, result.n_items,
                 result.n_failed, result.throughput.items_per_s, result.wall_time_s, result.peak_memory.bytes,
                 result.peak_memory.kind, result.model_fingerprint, result.task_fingerprint,
                 result.data_fingerprint, result.aggregator, json.dumps(asdict(result), default=str),
                 pack_stats(item_ids, stats)))
            result_id = int(cur.lastrowid)
            self.conn.executemany(
                "INSERT INTO metrics (result_id, run_id, model, task, metric, value, variant, higher_is_better, "
                "unavailable) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(result_id, run_id, result.model, result.task, m["name"], m["value"], m["variant"],
                  int(m.get("higher_is_better", True)), m.get("unavailable")) for m in result.metrics])
        return result_id

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return list(self.conn.execute(sql, params))

    def close(self) -> None:
        self.conn.close()
