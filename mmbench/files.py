"""Reading the files users hand to mmbench: one definition of what can go wrong and its one-line message.

A task file, a manifest, a prediction file or an array may be missing, a folder, unreadable, binary or not
UTF-8, malformed, nested thousands of levels deep, self-referencing (YAML anchors) or, for ``.npy``, claim a
shape its bytes cannot hold. Each case is an MMBenchError naming the file and the fix, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
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
    """(line number, object) for each non-empty line of a JSON-lines file; every line must be an object."""
    for lineno, line in enumerate(read_text(path, what).splitlines(), 1):
        if not line.strip():
            continue
        row = parse_json(line, f"{what} {path} line {lineno}")
        if not isinstance(row, dict):
            raise MMBenchError(f"{what} {path} line {lineno} is not a JSON object")
        yield lineno, row


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
