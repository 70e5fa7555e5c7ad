"""Records built when they are used: a data set larger than memory is never held whole.

A loader scans its source once (validation, ids, class names, fingerprint) and keeps only what finds each row
again (a manifest line's byte offset, a dataset's row index); :class:`LazyRecords` builds a record on access, so
the runner's batches, ``--limit`` and rank shards read only the rows they use, in the preparation threads. Slices
are views. A record is rebuilt on every access: it is plain data, so mutating one changes nothing (loaders do all
their normalisation in the builder).
"""

from __future__ import annotations

import threading
from array import array
from pathlib import Path
from typing import Callable, Iterator, Sequence, overload

from mmbench.errors import MMBenchError
from mmbench.files import parse_json


class LazyRecords(Sequence[dict]):
    """A sequence of ``n`` records, ``build(row)`` making row ``row``'s record; ``rows`` selects a view."""

    def __init__(self, n: int, build: Callable[[int], dict], rows: range | None = None) -> None:
        self._n, self._build = n, build
        self._rows = rows if rows is not None else range(n)

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> dict: ...

    @overload
    def __getitem__(self, i: slice) -> LazyRecords: ...

    def __getitem__(self, i: int | slice) -> dict | LazyRecords:
        if isinstance(i, slice):
            return LazyRecords(self._n, self._build, self._rows[i])
        return self._build(self._rows[i])

    def __iter__(self) -> Iterator[dict]:
        for row in self._rows:
            yield self._build(row)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (LazyRecords, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{len(self)} lazy records>"


class JsonlLines:
    """Where each non-empty line of a JSON-lines file starts and ends, found in one streaming pass, and the lines
    read back by position (each reading thread with its own open file, so preparation threads never share a
    file position). Lines split at ``\\n`` only; their numbers count every line, as an editor shows them."""

    def __init__(self, path: Path, what: str) -> None:
        self.path, self.what = path, what
        self.offsets, self.lengths, self.linenos = array("q"), array("q"), array("q")
        self._local = threading.local()  # one open file per reading thread (never a shared position)

    def scan(self) -> Iterator[tuple[int, dict]]:
        """(line number, object) for each non-empty line, recording where it is; every line must be an object."""
        if self.path.is_dir():
            raise MMBenchError(f"{self.what} {self.path} is a folder; pass the file")
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            raise MMBenchError(f"{self.what} {self.path} not found") from None
        except OSError as exc:
            raise MMBenchError(f"{self.what} {self.path} cannot be read ({exc.strerror or exc})") from None
        with fh:
            offset = 0
            for lineno, raw in enumerate(fh, 1):
                start, offset = offset, offset + len(raw)
                if not raw.strip():
                    continue
                row = self._parse(raw, lineno, start)
                self.offsets.append(start)
                self.lengths.append(len(raw))
                self.linenos.append(lineno)
                yield lineno, row

    def _parse(self, raw: bytes, lineno: int, offset: int) -> dict:
        where = f"{self.what} {self.path} line {lineno}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MMBenchError(f"{self.what} {self.path} is not UTF-8 text (byte {offset + exc.start}); is it a "
                               f"binary file?") from None
        row = parse_json(text, where)
        if not isinstance(row, dict):
            raise MMBenchError(f"{where} is not a JSON object")
        return row

    def __len__(self) -> int:
        return len(self.offsets)

    def read(self, i: int) -> tuple[int, dict]:
        """(line number, object) of the i-th non-empty line."""
        try:
            fh = getattr(self._local, "fh", None)
            if fh is None:
                fh = self._local.fh = open(self.path, "rb")
            fh.seek(self.offsets[i])
            raw = fh.read(self.lengths[i])
        except OSError as exc:
            raise MMBenchError(f"{self.what} {self.path} cannot be read any more ({exc.strerror or exc})") from None
        if len(raw) != self.lengths[i]:
            raise MMBenchError(f"{self.what} {self.path} changed while it was being read; run again")
        return self.linenos[i], self._parse(raw, self.linenos[i], self.offsets[i])
