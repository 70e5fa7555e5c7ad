"""Where a run's output goes: the console gets the progress bar, mmbench's own lines at the chosen verbosity
and the summary; everything else goes to the run's log file (``run.log`` in the run folder).

"Everything else" is what third-party code writes while the run is in progress: transformers' loading bars
and warnings, Python warnings, the Java PTBTokenizer/SPICE lines pycocoevalcap's subprocesses write, native
library messages. Those writers do not go through Python's ``logging`` (Java children inherit file
descriptor 2, tqdm writes to ``sys.stderr``, transformers' handler holds the stream it found at import), so
the only place that catches all of them is file descriptor 2 itself: ``RunLog`` points it at the log file
for the duration of the run and keeps a duplicate of the original for the console. ``--verbosity debug``
redirects nothing: third-party output stays on the console, as it was before mmbench had a log.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

VERBOSITIES = ("quiet", "info", "debug")
DEFAULT_VERBOSITY = "quiet"
# The console's level per verbosity; the log file always gets mmbench's DEBUG lines.
CONSOLE_LEVEL = {"quiet": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
log = logging.getLogger("mmbench")


def _stderr_fd() -> int | None:
    """2 when sys.stderr is the process's own file descriptor 2, else None (e.g. captured by pytest)."""
    try:
        return 2 if sys.stderr.fileno() == 2 else None
    except (AttributeError, OSError, ValueError):
        return None


def _text_stream(fd: int, closefd: bool) -> IO[str]:
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=closefd), encoding="utf-8", errors="backslashreplace",
                            line_buffering=True, write_through=True)


class _ThirdParty:
    """The global switches of third-party libraries that mmbench turns off for a run and back on after."""

    def __init__(self) -> None:
        self._undo: list[Any] = []

    def quiet(self, stream: Any) -> None:
        """Turn the switches off; a library imported here binds ``stream`` (the original stderr), not the log."""
        saved, sys.stderr = sys.stderr, stream
        try:
            self._quiet()
        finally:
            sys.stderr = saved

    def _quiet(self) -> None:
        try:  # transformers' "Loading weights" bars, and its warnings: to the log through our handler
            import transformers.utils.logging as tf_logging

            if tf_logging.is_progress_bar_enabled():
                tf_logging.disable_progress_bar()
                self._undo.append(tf_logging.enable_progress_bar)
            tf_logging.disable_default_handler()  # it writes to the stream it found at import
            self._undo.append(tf_logging.enable_default_handler)
        except ImportError:
            pass
        try:  # the hub's and datasets' download/conversion bars
            import huggingface_hub.utils as hub_utils

            if not hub_utils.are_progress_bars_disabled():
                hub_utils.disable_progress_bars()
                self._undo.append(hub_utils.enable_progress_bars)
        except ImportError:
            pass
        logging.captureWarnings(True)  # warnings.warn -> the "py.warnings" logger -> the log file
        self._undo.append(lambda: logging.captureWarnings(False))

    def restore(self) -> None:
        while self._undo:
            self._undo.pop()()


class RunLog:
    """A context for one ``mmbench run``: ``console`` is the stream for the progress bar and the summary's
    neighbours; ``attach(path)`` moves the log (kept in a temporary file until the run folder exists) to
    ``path``. Leaving the context restores file descriptor 2, ``sys.stderr`` and the libraries' switches."""

    def __init__(self, verbosity: str = DEFAULT_VERBOSITY) -> None:
        if verbosity not in VERBOSITIES:
            raise ValueError(f"verbosity {verbosity!r}: one of {', '.join(VERBOSITIES)}")
        self.verbosity = verbosity
        self.redirects = verbosity != "debug"
        self.path: Path | None = None
        self.console: IO[str] = sys.stderr
        self._saved_fd: int | None = None
        self._saved_stderr: Any = None
        self._tmp: Path | None = None
        self._file: IO[str] | None = None  # the log as a text stream (fd 2 when redirected)
        self._handlers: list[tuple[logging.Logger, logging.Handler]] = []
        self._third_party = _ThirdParty()
        self._original_stderr: Any = sys.stderr
        self._saved_level = log.level
        self._saved_propagate = log.propagate

    def __enter__(self) -> "RunLog":
        self._original_stderr = sys.stderr
        fd, tmp = tempfile.mkstemp(prefix="mmbench-run-", suffix=".log")
        self._tmp = Path(tmp)
        if self.redirects and _stderr_fd() is not None:
            sys.stderr.flush()
            self._saved_fd = os.dup(2)
            self.console = _text_stream(os.dup(self._saved_fd), closefd=True)
            os.dup2(fd, 2)
            os.close(fd)
            self._file = _text_stream(2, closefd=False)
            self._saved_stderr, sys.stderr = sys.stderr, self._file
        else:  # debug, or stderr is not fd 2 (captured): the console stays sys.stderr, the log is a plain file
            self.console = sys.stderr
            self._file = _text_stream(fd, closefd=True)
            if self.redirects:
                self._saved_stderr, sys.stderr = sys.stderr, self._file
        to_file = logging.StreamHandler(self._file)
        to_file.setFormatter(logging.Formatter(LOG_FORMAT))
        to_console = logging.StreamHandler(self.console)
        to_console.setLevel(CONSOLE_LEVEL[self.verbosity])
        to_console.setFormatter(logging.Formatter("mmbench: %(message)s"))
        self._add(log, to_file)
        self._add(log, to_console)
        log.setLevel(logging.DEBUG)
        log.propagate = False  # mmbench's lines reach the console and the file once each
        if self.redirects:
            for name in ("py.warnings", "transformers"):
                self._add(logging.getLogger(name), to_file)
        log.debug("mmbench %s; command: %s", _version(), " ".join(sys.argv))
        return self

    def _add(self, logger: logging.Logger, handler: logging.Handler) -> None:
        logger.addHandler(handler)
        self._handlers.append((logger, handler))

    def attach(self, path: Path) -> None:
        """From now on the log is ``path`` (its earlier lines copied there first)."""
        assert self._file is not None and self._tmp is not None, "attach() inside the context"
        self._file.flush()
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._tmp, path)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        if self._saved_fd is not None:  # fd 2 is the log: point it at the new file; the wrapper follows
            os.dup2(fd, 2)
            os.close(fd)
        else:
            old = self._file
            self._file = _text_stream(fd, closefd=True)
            for _, handler in self._handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream is old:
                    handler.setStream(self._file)
            if sys.stderr is old:
                sys.stderr = self._file
            old.close()
        self._tmp.unlink(missing_ok=True)
        self._tmp, self.path = None, path
        if self.redirects:  # the run is planned and models are about to load: now (not for a usage error) import
            self._third_party.quiet(self._original_stderr)  # transformers to turn its bars off

    def __exit__(self, *exc: Any) -> None:
        for logger, handler in self._handlers:
            logger.removeHandler(handler)
        self._handlers.clear()
        log.setLevel(self._saved_level)
        log.propagate = self._saved_propagate
        self._third_party.restore()
        if self._saved_stderr is not None:
            sys.stderr = self._saved_stderr
        if self._file is not None:
            self._file.flush()
        if self._saved_fd is not None:
            os.dup2(self._saved_fd, 2)
            os.close(self._saved_fd)
            self._saved_fd = None
            self.console.close()
        if self._file is not None and not self._file.closed and self._file.fileno() != 2:
            self._file.close()
        self.console = sys.stderr
        if self._tmp is not None:  # never attached (the run failed before its folder existed)
            self._tmp.unlink(missing_ok=True)


def _version() -> str:
    from mmbench.provenance import mmbench_version

    return mmbench_version()

