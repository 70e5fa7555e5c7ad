"""Shared fixtures: tiny models built from configs and small generated datasets, in temp folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import tiny_models  # noqa: E402


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
