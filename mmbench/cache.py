"""The per-item output cache: append-only SQLite keyed by (model fingerprint, task fingerprint, item id).

Every batch's outputs are committed as soon as they exist, so an interrupted run resumes where it stopped
(nothing lost, nothing computed twice), with any batch size or number of processes: the key is the item,
never the batch or the rank. Values are JSON with numpy arrays stored as raw bytes beside it (no pickle).
"""

from __future__ import annotations

import json
import sqlite3
import struct
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

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


class Cache:
    """Per-item outputs on disk. Safe for several processes (WAL journal, busy timeout)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(_SCHEMA)

    def get_many(self, model_fp: str, task_fp: str, ids: Iterable[str]) -> dict[str, tuple[Any, float]]:
        """{item_id: (value, seconds)} for the ids that are cached."""
        wanted = set(ids)
        rows = self.conn.execute("SELECT item_id, value, seconds FROM outputs WHERE model_fp=? AND task_fp=?",
                                 (model_fp, task_fp))
        return {i: (decode(v), s) for i, v, s in rows if i in wanted}

    def put_many(self, model_fp: str, task_fp: str, entries: Iterable[tuple[str, Any, float]]) -> None:
        """Commit one batch atomically: either all of its items are cached or none."""
        now = time.time()
        rows = [(model_fp, task_fp, i, encode(v), float(s), now) for i, v, s in entries]
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany("INSERT OR REPLACE INTO outputs (model_fp, task_fp, item_id, value, seconds, "
                                  "created) VALUES (?, ?, ?, ?, ?, ?)", rows)

    def memo(self, model_fp: str, task_fp: str, key: str, compute) -> Any:
        """A cached value for a whole task (e.g. class embeddings), computed once."""
        item = f"__setup__/{key}"
        hit = self.get_many(model_fp, task_fp, [item])
        if item in hit:
            return hit[item][0]
        value = compute()
        self.put_many(model_fp, task_fp, [(item, value, 0.0)])
        return value

    def close(self) -> None:
        self.conn.close()
