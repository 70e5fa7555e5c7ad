"""Reading the files users hand to mmbench: one definition of what can go wrong and its one-line message.

A task file, a manifest, a prediction file or an array may be missing, a folder, unreadable, binary or not
UTF-8, malformed, nested thousands of levels deep, self-referencing (YAML anchors) or, for ``.npy``, claim a
shape its bytes cannot hold. Each case is an MMBenchError naming the file and the fix, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import threading
from array import array
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.typed import check_plain


def read_text(path: Path | str, what: str) -> str:
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MMBenchError(f"{what} {path} not found") from None
    except IsADirectoryError:
        raise MMBenchError(f"{what} {path} is a folder; pass the file") from None
    except PermissionError:
        raise MMBenchError(f"{what} {path} cannot be read (permission denied)") from None
    except UnicodeDecodeError as exc:
        raise MMBenchError(f"{what} {path} is not UTF-8 text (byte {exc.start}); is it a binary file?") from None
    except OSError as exc:
        raise MMBenchError(f"{what} {path} cannot be read ({exc.strerror or exc})") from None


def parse_json(text: str, where: str) -> Any:
    """JSON from text (``where`` names it in messages), refusing absurd nesting."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MMBenchError(f"{where} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise MMBenchError(f"{where} is nested too deeply to be real data") from None
    check_plain(data, where)
    return data


def read_json(path: Path | str, what: str) -> Any:
    return parse_json(read_text(path, what), f"{what} {path}")


def read_yaml(path: Path | str, what: str) -> Any:
    """YAML (safe loader) with the line and column of a syntax error; anchors that refer to themselves and
    absurd nesting are refused."""
    import yaml

    text = read_text(path, what)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise MMBenchError(f"{what} {path}:{where} malformed YAML ({problem}); fix the file") from None
    except RecursionError:
        raise MMBenchError(f"{what} {path} is nested too deeply to be real data") from None
    check_plain(data, f"{what} {path}")
    return data


def iter_jsonl(path: Path | str, what: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-empty line of a JSON-lines file, streamed; every line must be an
    object."""
    yield from JsonlLines(Path(path), what).scan()


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
        except PermissionError:
            raise MMBenchError(f"{self.what} {self.path} cannot be read (permission denied)") from None
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


def read_npy(path: Path | str, what: str) -> np.ndarray:
    """A real-valued numeric array from a ``.npy`` file. The header is checked against the file's size before
    anything is allocated (a header may claim any shape); booleans, strings, complex numbers and objects are
    refused instead of being coerced."""
    path = Path(path)
    if path.is_dir():
        raise MMBenchError(f"{what} {path} is a folder; pass the .npy file")
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in readers:
                raise ValueError(f"format version {version} is not a plain numeric array")
            shape, _, dtype = readers[version](fh)
            offset = fh.tell()
    except FileNotFoundError:
        raise MMBenchError(f"{what} file {path} not found") from None
    except (ValueError, OSError, SyntaxError, TypeError) as exc:
        raise MMBenchError(f"{what} file {path} is not a readable .npy array ({exc}); save it with numpy.save") from None
    if dtype.kind not in "iuf":
        raise MMBenchError(f"{what} file {path} holds {dtype} values; expected real numbers (int or float)")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize
    actual = path.stat().st_size - offset
    if expected != actual:
        raise MMBenchError(f"{what} file {path}: its header says shape {list(shape)} ({expected} bytes) but the file "
                           f"holds {actual}; the file is truncated or corrupt")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise MMBenchError(f"{what} file {path} is not a readable .npy array ({exc}); save it with numpy.save") from None


def sha256_file(path: Path | str) -> str:
    """A file's SHA-256, read in 1 MiB blocks (never whole)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
