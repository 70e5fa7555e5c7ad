"""Versioned SQLite files (the results store, the per-item cache): ``PRAGMA user_version`` says which
layout a file has, and each version has a migration to the next, so a file written by an older mmbench is
brought up to date in place and a file from a newer one is refused instead of misread.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable, Mapping

from mmbench.errors import MMBenchError

# version -> the step that turns a file of that version into the next one
Migrations = Mapping[int, Callable[[sqlite3.Connection], None]]


def migrate(conn: sqlite3.Connection, path: Path, current: int, migrations: Migrations, what: str) -> int:
    """Bring the file to ``current`` (running the migrations from its version on) and return the version it
    had. Version 0 is a file from before versioning (or a new, empty one)."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > current:
        raise MMBenchError(f"{what} {path} was written by a newer mmbench (schema version {found}, this one reads "
                           f"up to {current}); upgrade mmbench or use another file")
    for version in range(found, current):
        step = migrations.get(version)
        if step is None:
            raise MMBenchError(f"{what} {path} has schema version {version}, which this mmbench cannot migrate")
        step(conn)
        conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.commit()
    return found


def unchanged(conn: sqlite3.Connection) -> None:
    """A step for files from before versioning whose tables already have the versioned layout."""
