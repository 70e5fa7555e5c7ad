"""The per-item output cache: append-only SQLite keyed by (model fingerprint, task fingerprint, item id).

Every batch's outputs are committed as soon as they exist, so an interrupted run resumes where it stopped
(nothing lost, nothing computed twice), with any batch size or number of processes: the key is the item,
never the batch or the rank. Values are JSON with numpy arrays stored as raw bytes beside it (no pickle).

Several processes (torchrun, possibly several nodes on a shared network filesystem such as NFS or Lustre):
each rank writes only its own file, ``cache.sqlite`` for rank 0 (and a world of one), ``cache.rank<k>.sqlite``
for rank k, so no file ever has two writers in a run. ``Cache.open`` folds the rank files a previous run
left (e.g. a killed one) into ``cache.sqlite`` on rank 0 and deletes them, while the other ranks wait; then
each other rank copies the task-setup values (``memo``) from ``cache.sqlite`` into its own file, while rank 0
waits. During the run rank 0 reads only its own file, which the runner completes with the other ranks'
outputs at the end of every task (they arrive with the gather), and the other ranks read only theirs: no
process reads a file another one is writing, so nothing depends on file locking across hosts.

Journal mode: the rollback journal (DELETE), not WAL. WAL keeps its index in shared memory (a ``-shm`` file
mapped by every process), which does not work on a network filesystem; the rollback journal needs no shared
memory. Several independent runs sharing an output folder at once stay safe on a local disk (SQLite's
locks, busy timeout) but not on a network filesystem, whose locks may not work: give concurrent runs their
own ``--output-dir`` there.

An unreadable cache file (not SQLite, truncated, another schema) is an MMBenchError naming the file: move it
away (what it held is recomputed) or run with ``--no-cache``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import struct
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.schema import migrate, unchanged

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outputs (
    model_fp TEXT NOT NULL, task_fp TEXT NOT NULL, item_id TEXT NOT NULL,
    value BLOB NOT NULL, seconds REAL NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (model_fp, task_fp, item_id)
);
"""


def encode(value: Any) -> bytes:
    """JSON header (arrays replaced by references) + the arrays' raw bytes."""
    blobs: list[bytes] = []

    def strip(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            arr = np.ascontiguousarray(obj)
            blobs.append(arr.tobytes())
            return {"__nd__": len(blobs) - 1, "dtype": arr.dtype.str, "shape": list(arr.shape)}
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [strip(v) for v in obj]
        if isinstance(obj, np.generic):
            return obj.item()
        return obj

    stripped = strip(value)
    header = json.dumps({"v": stripped, "sizes": [len(b) for b in blobs]}).encode()
    return struct.pack("<I", len(header)) + header + b"".join(blobs)


def decode(data: bytes) -> Any:
    (n,) = struct.unpack_from("<I", data)
    header = json.loads(data[4:4 + n])
    offsets, pos = [], 4 + n
    for size in header["sizes"]:
        offsets.append(pos)
        pos += size

    def restore(obj: Any) -> Any:
        if isinstance(obj, dict):
            if "__nd__" in obj:
                i = obj["__nd__"]
                count = int(np.prod(obj["shape"])) if obj["shape"] else 1
                arr = np.frombuffer(data, dtype=np.dtype(obj["dtype"]), count=count, offset=offsets[i])
                return arr.reshape(obj["shape"]).copy()
            return {k: restore(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [restore(v) for v in obj]
        return obj

    return restore(header["v"])


SETUP_PREFIX = "__setup__/"  # item ids of memo() values (task-wide, not items)
_COLUMNS = "model_fp, task_fp, item_id, value, seconds, created"
LOOKUP_CHUNK = 500  # ids per lookup query (well under SQLite's 999-variable limit of older builds)
# The layout of a cache file (PRAGMA user_version); version 0 files (before versioning) have the same table.
CACHE_VERSION = 1


def rank_path(path: Path, rank: int) -> Path:
    """The file rank ``rank`` writes: ``path`` itself for rank 0, else ``<stem>.rank<k><suffix>`` beside it."""
    path = Path(path)
    return path if rank == 0 else path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def rank_files(path: Path) -> list[Path]:
    """The other ranks' files beside ``path`` (not their journals), by rank."""
    path = Path(path)
    pattern = re.compile(rf"{re.escape(path.stem)}\.rank(\d+){re.escape(path.suffix)}")
    found = [(int(m.group(1)), p) for p in path.parent.glob(f"{path.stem}.rank*{path.suffix}")
             if (m := pattern.fullmatch(p.name)) and p.is_file()]
    return [p for _, p in sorted(found)]


def unreadable(path: Path, exc: Exception) -> MMBenchError:
    """One line for a cache file SQLite cannot use: a damaged file, or one it cannot open, lock or write."""
    if isinstance(exc, (sqlite3.OperationalError, OSError)):  # locked, full disk, no permission, ...
        return MMBenchError(f"cache file {path}: {exc} ({type(exc).__name__}); fix that, or run with --no-cache")
    return MMBenchError(f"{path} is not a readable mmbench cache ({type(exc).__name__}: {exc}): move it away "
                        f"(the run then recomputes what it held) or run with --no-cache")


class Cache:
    """Per-item outputs on disk; one writer per file (see the module doc for several processes)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise unreadable(self.path, exc) from None
        try:
            self.conn.execute("PRAGMA journal_mode=DELETE")
            self.conn.executescript(_SCHEMA)
            columns = [row[1] for row in self.conn.execute("PRAGMA table_info(outputs)")]
            if columns != [c.strip() for c in _COLUMNS.split(",")]:
                raise sqlite3.DatabaseError(f"table outputs has columns {columns}")
            migrate(self.conn, self.path, CACHE_VERSION, {0: unchanged}, "cache file")
        except MMBenchError:
            self.conn.close()
            raise
        except sqlite3.Error as exc:
            self.conn.close()
            raise unreadable(self.path, exc) from None

    @classmethod
    def open(cls, path: Path, dist: Any = None) -> "Cache":
        """This process's cache under ``dist`` (a Dist; None: a world of one); every rank must call it.

        Rank 0 folds the other ranks' files into ``path`` first; the other ranks then open their own file
        and copy the setup values into it. An error on any rank raises MMBenchError on every rank."""
        rank = getattr(dist, "rank", 0)
        several = bool(getattr(dist, "enabled", False))
        cache: Cache | None = None
        error: str | None = None
        if rank == 0:
            try:
                cache = cls(path)
                cache.absorb(rank_files(path))
            except MMBenchError as exc:
                error = str(exc)
        if several:
            error = dist.broadcast(error)
            if error is None and rank != 0:
                try:
                    cache = cls(rank_path(path, rank))
                    cache.copy_setup_values(Path(path))
                except MMBenchError as exc:
                    error = str(exc)
            if dist.max(int(error is not None)) and error is None:
                error = "another process could not open its cache file (its error is printed above)"
        if error is not None:
            if cache is not None:
                cache.close()
            raise MMBenchError(error)
        assert cache is not None
        return cache

    def absorb(self, others: list[Path]) -> None:
        """Copy every row of ``others`` (other ranks' files) that this file lacks, then delete them."""
        for other in others:
            try:
                self.conn.execute("ATTACH DATABASE ? AS other", (str(other),))
                try:
                    if self._has_outputs("other"):
                        with self.conn:
                            self.conn.execute("BEGIN IMMEDIATE")
                            self.conn.execute(f"INSERT OR IGNORE INTO outputs ({_COLUMNS}) "
                                              f"SELECT {_COLUMNS} FROM other.outputs")
                finally:
                    self.conn.execute("DETACH DATABASE other")
            except sqlite3.Error as exc:
                raise unreadable(other, exc) from None
            try:
                for leftover in (other, other.with_name(other.name + "-journal")):
                    leftover.unlink(missing_ok=True)
            except OSError as exc:
                raise unreadable(other, exc) from None

    def copy_setup_values(self, main: Path) -> None:
        """Copy the ``memo`` values of ``main`` (rank 0's file) this file lacks; nothing if it is not there
        (e.g. this node does not share rank 0's filesystem)."""
        if not main.is_file() or main.resolve() == self.path.resolve():
            return
        try:
            self.conn.execute("ATTACH DATABASE ? AS main0", (str(main),))
            try:
                if self._has_outputs("main0"):
                    with self.conn:
                        self.conn.execute("BEGIN IMMEDIATE")
                        self.conn.execute(
                            f"INSERT OR IGNORE INTO outputs ({_COLUMNS}) SELECT {_COLUMNS} FROM main0.outputs AS m "
                            "WHERE substr(m.item_id, 1, ?) = ? AND NOT EXISTS (SELECT 1 FROM outputs AS o WHERE "
                            "o.model_fp = m.model_fp AND o.task_fp = m.task_fp AND o.item_id = m.item_id)",
                            (len(SETUP_PREFIX), SETUP_PREFIX))
            finally:
                self.conn.execute("DETACH DATABASE main0")
        except sqlite3.Error as exc:
            raise unreadable(main, exc) from None

    def _has_outputs(self, schema: str) -> bool:
        return self.conn.execute(f"SELECT 1 FROM {schema}.sqlite_master WHERE type='table' AND name='outputs'"
                                 ).fetchone() is not None

    def get_many(self, model_fp: str, task_fp: str, ids: Iterable[str]) -> dict[str, tuple[Any, float]]:
        """{item_id: (value, seconds)} for the ids that are cached: looked up by key, LOOKUP_CHUNK ids per query,
        so a batch's few ids cost a few index probes, not a scan of the task's rows."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, tuple[Any, float]] = {}
        try:
            for start in range(0, len(wanted), LOOKUP_CHUNK):
                chunk = wanted[start:start + LOOKUP_CHUNK]
                rows = self.conn.execute(
                    f"SELECT item_id, value, seconds FROM outputs WHERE model_fp=? AND task_fp=? AND item_id IN "
                    f"({','.join('?' * len(chunk))})", (model_fp, task_fp, *chunk)).fetchall()
                found.update((i, (decode(v), s)) for i, v, s in rows)
            return found
        except sqlite3.Error as exc:
            raise unreadable(self.path, exc) from None
        except (struct.error, ValueError, TypeError, KeyError) as exc:  # a value that is not ours
            raise unreadable(self.path, exc) from None

    def put_many(self, model_fp: str, task_fp: str, entries: Iterable[tuple[str, Any, float]]) -> None:
        """Commit one batch atomically: either all of its items are cached or none."""
        now = time.time()
        rows = [(model_fp, task_fp, i, encode(v), float(s), now) for i, v, s in entries]
        try:
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.executemany(f"INSERT OR REPLACE INTO outputs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                                      rows)
        except sqlite3.Error as exc:
            raise unreadable(self.path, exc) from None

    def memo(self, model_fp: str, task_fp: str, key: str, compute) -> Any:
        """A cached value for a whole task (e.g. class embeddings), computed once."""
        item = f"{SETUP_PREFIX}{key}"
        hit = self.get_many(model_fp, task_fp, [item])
        if item in hit:
            return hit[item][0]
        value = compute()
        self.put_many(model_fp, task_fp, [(item, value, 0.0)])
        return value

    def close(self) -> None:
        self.conn.close()
