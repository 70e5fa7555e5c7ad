"""Records built when they are used: a data set larger than memory is never held whole.

A loader scans its source once (validation, ids, class names, fingerprint) and keeps only what finds each row
again (a manifest line's byte offset, a dataset's row index); :class:`LazyRecords` builds a record on access, so
the runner's batches, ``--limit`` and rank shards read only the rows they use, in the preparation threads. Slices
are views. A record is rebuilt on every access: it is plain data, so mutating one changes nothing (loaders do all
their normalisation in the builder).
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence, overload


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
