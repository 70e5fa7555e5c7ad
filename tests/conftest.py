"""Shared fixtures: tiny models built from configs and small generated datasets, in temp folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import tiny_models  # noqa: E402
from mmbench.cli.main import main  # noqa: E402
from mmbench.registry import DATA_FORMATS, METRICS, MODELS, TASK_KINDS  # noqa: E402


@pytest.fixture(autouse=True)
def restore_registries():
    """A test may register models, kinds, metrics or formats (scripted models, probes' hand-built models):
    each test starts from, and leaves, the registries as mmbench ships them."""
    saved = [(r, dict(r._objects), dict(r._lazy), dict(r._aliases)) for r in (MODELS, TASK_KINDS, METRICS, DATA_FORMATS)]
    yield
    for registry, objects, lazy, aliases in saved:
        registry._objects, registry._lazy, registry._aliases = objects, lazy, aliases


@pytest.fixture
def one_thread():
    """Tiny models run ~10x faster on one torch thread than on two busy cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``mmbench ARGS`` in-process: (exit code, stdout, stderr)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli(capsys):
    """``cli(*args)`` -> (exit code, stdout, stderr) of ``mmbench ARGS`` run in-process."""
    return lambda *args: run_cli(capsys, *args)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    return tiny_models.make_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def embed_data(tmp_path_factory) -> Path:
    """A data dir with an image folder (12 classes x 3) and a captioned JSONL manifest (12 x 3)."""
    root = tmp_path_factory.mktemp("data")
    tiny_models.make_imagefolder(root / "shapes")
    tiny_models.make_caption_manifest(root / "caps")
    return root


@pytest.fixture(scope="session")
def embed_tasks(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tasks")
    (d / "z.yaml").write_text(
        "task: tiny-zeroshot\nkind: zeroshot-classification\n"
        "data: {format: imagefolder, root: shapes}\ntemplates: ['a photo of a {c}.', 'a {c}.']\n")
    (d / "r.yaml").write_text("task: tiny-retrieval\nkind: retrieval\ndata: {format: jsonl, path: caps/manifest.jsonl}\n")
    return d


def pytest_addoption(parser):
    parser.addoption("--require-openclip", action="store_true",
                     help="fail (instead of skip) the open_clip tests when open_clip cannot be imported")


@pytest.fixture(scope="session")
def open_clip_module(request):
    """The open_clip module, or a skip (a failure under --require-openclip, as in CI's extra environment)."""
    try:
        import open_clip
    except ImportError as exc:
        if request.config.getoption("--require-openclip"):
            pytest.fail(f"open_clip is required here but cannot be imported: {exc}")
        pytest.skip("open_clip not installed (the openclip extra)")
    return open_clip


# Exit without running native static destructors. In about one fresh-clone CI run in three, every test passed and
# the interpreter then aborted at shutdown ("terminate called without an active exception", exit 134): a C++
# thread object of an extension library destroyed while still joinable, after all results were reported. Three
# faulthandler-instrumented full runs did not reproduce it, and no test leaves a Python thread inside a native call
# (the served tests join their batching threads). Ending the process with os._exit once pytest has finished
# reporting keeps the session's real exit status and skips only that teardown.
_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if not _EXIT_STATUS or getattr(config, "workerinput", None) is not None:
        return
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT_STATUS[-1])
