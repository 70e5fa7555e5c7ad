"""The console says what matters; the run log keeps the rest: third-party output (transformers' warnings,
Python warnings, the Java tokenizer lines of pycocoevalcap's subprocesses) goes to run.log, mmbench's own lines
follow --verbosity, and everything is put back when the run ends."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

from mmbench.logs import RunLog

ROOT = Path(__file__).resolve().parents[1]


def _mmbench(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    """A real process (stderr is its own file descriptor 2, as for a user): mini-llava captioning 3 items,
    scored with CIDEr-D through the Java PTB tokenizer."""
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "mmbench", "run", "--model", "mini-llava", "--tasks", "mini-captions",
                           "--limit", "3", "--output-dir", str(out), "--no-cache", *extra],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = next(p for p in out.iterdir() if p.is_dir())
    return proc, run_dir


def test_quiet_console_and_a_complete_run_log(tmp_path):
    proc, run_dir = _mmbench(tmp_path)
    assert proc.stderr == ""  # nothing but the summary, on stdout
    assert "| mini-llava |" in proc.stdout and "run.log" in proc.stdout
    text = (run_dir / "run.log").read_text()
    assert "PTBTokenizer tokenized" in text  # the Java subprocess's lines
    assert "INFO mmbench.runner: mini-llava: loaded in" in text
    assert "INFO mmbench.runner: mini-llava | mini-captions: CIDEr-D=" in text
    assert text.index("loaded in") < text.index("PTBTokenizer") < text.index("CIDEr-D=")  # in the order they happened


def test_info_and_debug_verbosity(tmp_path):
    info, _ = _mmbench(tmp_path / "info", "--verbosity", "info")
    lines = info.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["mmbench"] * 3
    assert "mini-llava: loaded in" in lines[1] and "mini-llava | mini-captions: CIDEr-D=" in lines[2]
    assert "PTBTokenizer" not in info.stderr
    debug, run_dir = _mmbench(tmp_path / "debug", "--verbosity", "debug")
    assert "PTBTokenizer tokenized" in debug.stderr and "mmbench: mmbench " in debug.stderr
    assert "PTBTokenizer" not in (run_dir / "run.log").read_text()  # debug redirects nothing
    assert "CIDEr-D=" in (run_dir / "run.log").read_text()  # but mmbench's own lines are still logged


def test_run_log_redirects_fd2_subprocesses_and_warnings_then_restores(tmp_path, monkeypatch):
    import io

    import transformers.utils.logging as tf_logging

    # sys.stderr on file descriptor 2, as in a user's process (pytest's capture object has no fd 2)
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True))
    before_stderr = sys.stderr
    assert tf_logging.is_progress_bar_enabled()
    with RunLog("quiet") as run_log:
        assert sys.stderr is not before_stderr
        os.write(2, b"native line\n")
        subprocess.run(["sh", "-c", "echo child line >&2"], check=True)
        print("python line", file=sys.stderr)
        assert tf_logging.is_progress_bar_enabled()  # switched off once the run is planned (attach), not before
        run_log.attach(tmp_path / "run" / "run.log")
        assert not tf_logging.is_progress_bar_enabled()
        warnings.warn("a library warning")
        tf_logging.get_logger("transformers.fake").warning("a transformers warning")
        logging.getLogger("mmbench.runner").info("after attach")
        print("console line", file=run_log.console)
    assert sys.stderr is before_stderr and tf_logging.is_progress_bar_enabled()
    text = (tmp_path / "run" / "run.log").read_text()
    for line in ("native line", "child line", "python line", "a library warning", "a transformers warning",
                 "INFO mmbench.runner: after attach"):
        assert line in text, line
    assert "console line" not in text
    os.write(2, b"")  # fd 2 is usable again
    assert not list(Path(tmp_path).glob("mmbench-run-*.log"))


def test_run_log_without_a_real_stderr_keeps_the_console_and_still_logs(tmp_path, monkeypatch):
    import io

    fake = io.StringIO()
    monkeypatch.setattr(sys, "stderr", fake)
    with RunLog("info") as run_log:
        assert run_log.console is fake
        logging.getLogger("mmbench.x").info("to both")
        run_log.attach(tmp_path / "run.log")
        logging.getLogger("mmbench.x").debug("file only")
        print("library output", file=sys.stderr)
    assert sys.stderr is fake
    assert fake.getvalue() == "mmbench: to both\n"
    text = (tmp_path / "run.log").read_text()
    assert "INFO mmbench.x: to both" in text and "DEBUG mmbench.x: file only" in text and "library output" in text


def test_a_run_that_fails_before_its_folder_exists_leaves_no_temp_log(cli, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code, _, err = cli("run", "--model", "mini-lava", "--tasks", "mini-vqa", "--output-dir", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 1 and "did you mean 'mini-llava'" in err  # raised inside the run
    assert not list(tmp_path.glob("mmbench-run-*.log"))


def test_unknown_verbosity_is_a_usage_error(cli):
    code, _, err = cli("run", "--verbosity", "loud")
    assert code == 2 and "invalid choice: 'loud'" in err
