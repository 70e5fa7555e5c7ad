"""The ``wds`` data format on shards written in CLIP_benchmark's layout: indexed without reading image bytes,
the same scores as the same images in an image folder, retrieval captions, a corrupt image as a failed item,
and one-line errors for missing or broken shards."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

import tiny_models

CLASSES = [f"{c} {s}" for c in tiny_models.COLOURS for s in tiny_models.SHAPES][:6]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def write_wds(root: Path, shards: int = 3, per_class: int = 3, corrupt: str | None = None) -> list[tuple]:
    """root/test/{0..n-1}.tar + nshards.txt, classnames.txt, templates; returns (key, class index, image)."""
    samples = []
    for label, name in enumerate(CLASSES):
        colour, shape = name.split(" ")
        for j in range(per_class):
            samples.append((f"s{label:02d}{j:02d}", label, tiny_models.draw(colour, shape, jitter=j)))
    (root / "test").mkdir(parents=True)
    for s in range(shards):
        with tarfile.open(root / "test" / f"{s}.tar", "w") as tar:
            for key, label, image in samples[s::shards]:
                _add(tar, f"{key}.webp" if key.endswith("0") else f"{key}.png",
                     b"not an image" if key == corrupt else _png(image))
                _add(tar, f"{key}.cls", str(label).encode())
    (root / "test" / "nshards.txt").write_text(f"{shards}\n")
    (root / "classnames.txt").write_text("\n".join(CLASSES) + "\n")
    (root / "zeroshot_classification_templates.txt").write_text("a photo of a {c}.\na {c}.\n")
    return samples


@pytest.fixture
def tasks(tmp_path) -> Path:
    d = tmp_path / "tasks"
    d.mkdir()
    (d / "w.yaml").write_text("task: wds-zeroshot\nkind: zeroshot-classification\ndata: {format: wds, root: wds}\n")
    (d / "f.yaml").write_text("task: folder-zeroshot\nkind: zeroshot-classification\n"
                              "data: {format: imagefolder, root: folder}\ntemplates: ['a photo of a {c}.', 'a {c}.']\n")
    (d / "r.yaml").write_text("task: wds-retrieval\nkind: retrieval\ndata: {format: wds, root: cap}\n")
    return d


def test_indexing_reads_labels_but_no_image_bytes(tmp_path, monkeypatch):
    from mmbench.data.sources import DataContext
    from mmbench.data.wds import TarRef, load_wds, split_key

    write_wds(tmp_path / "wds")
    fetched = []
    real = TarRef.fetch
    monkeypatch.setattr(TarRef, "fetch", lambda self: fetched.append(self.name) or real(self))
    data = load_wds({"root": "wds"}, DataContext("t", data_dir=tmp_path))
    assert len(data.records) == 18 and data.class_names == CLASSES
    assert data.meta["templates"] == ["a photo of a {c}.", "a {c}."]
    assert all(name.endswith(".cls") for name in fetched)  # the labels only
    first = next(r for r in data.records if r["id"] == "s0100")
    assert first["label"] == 1 and isinstance(first["image"], TarRef)
    assert split_key("dir/abc.0.webp") == ("dir/abc", "0.webp") and split_key("x.cls") == ("x", "cls")


def test_zero_shot_from_shards_equals_the_same_images_in_a_folder(cli, tiny_clip, tasks, tmp_path):
    from mmbench.results import RunResult

    samples = write_wds(tmp_path / "data" / "wds")
    for key, label, image in samples:
        folder = tmp_path / "data" / "folder" / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{key}.png")
    code, _, err = cli("run", "--model", "hf-clip", "--model-args", f"pretrained={tiny_clip}", "--tasks",
                       "wds-zeroshot,folder-zeroshot", "--include-path", str(tasks), "--data-dir",
                       str(tmp_path / "data"), "--output-dir", str(tmp_path / "out"), "--no-progress",
                       "--batch-size", "4")
    assert code == 0, err
    run_dir = next(p for p in (tmp_path / "out").iterdir() if p.is_dir())
    res = {r.task: r for r in RunResult.read(run_dir).results}
    assert res["wds-zeroshot"].metrics == res["folder-zeroshot"].metrics
    assert res["wds-zeroshot"].task_info["prompt_templates"] == ["a photo of a {c}.", "a {c}."]  # the data's
    assert "WebDataset" in res["wds-zeroshot"].task_info["data"]["description"]

    def preds(r):
        lines = [json.loads(x) for x in (run_dir / r.files["samples"]).read_text().splitlines()]
        return {Path(s["id"]).stem: s.get("prediction") for s in lines}
    assert preds(res["wds-zeroshot"]) == preds(res["folder-zeroshot"])
    assert all(preds(res["wds-zeroshot"]).values()) and len(preds(res["wds-zeroshot"])) == 18


def test_retrieval_captions_and_a_corrupt_image_as_a_failed_item(cli, tiny_clip, tasks, tmp_path):
    from mmbench.results import RunResult

    root = tmp_path / "data" / "cap"
    (root / "test").mkdir(parents=True)
    with tarfile.open(root / "test" / "0.tar", "w") as tar:
        for i, name in enumerate(CLASSES):
            colour, shape = name.split(" ")
            _add(tar, f"k{i}.jpg", b"\xff\xd8 broken" if i == 2 else _png(tiny_models.draw(colour, shape)))
            _add(tar, f"k{i}.txt", f"a {name}.\na picture of a {name}.\n".encode())
    (root / "test" / "nshards.txt").write_text("1")
    (root / "dataset_type.txt").write_text("retrieval\n")
    code, _, err = cli("run", "--model", "hf-clip", "--model-args", f"pretrained={tiny_clip}", "--tasks",
                       "wds-retrieval", "--include-path", str(tasks), "--data-dir", str(tmp_path / "data"),
                       "--output-dir", str(tmp_path / "out"), "--no-progress")
    assert code == 0, err
    result = RunResult.read(next(p for p in (tmp_path / "out").iterdir() if p.is_dir())).results[0]
    assert result.n_items == 6 and result.n_failed == 1
    assert any("k2" in n and "cannot be decoded" in n for n in result.notes)


@pytest.mark.parametrize("breakage,message", [
    ("missing-shard", "1 of 3 shards named by nshards.txt are missing"),
    ("not-a-tar", "cannot be read"),
    ("bad-count", "not a shard count"),
    ("bad-label", "not a class index"),
])
def test_broken_shards_are_one_line_errors(cli, tiny_clip, tasks, tmp_path, breakage, message):
    root = tmp_path / "data" / "wds"
    write_wds(root)
    if breakage == "missing-shard":
        (root / "test" / "1.tar").unlink()
    elif breakage == "not-a-tar":
        (root / "test" / "2.tar").write_bytes(b"garbage" * 100)
    elif breakage == "bad-count":
        (root / "test" / "nshards.txt").write_text("three")
    else:
        with tarfile.open(root / "test" / "0.tar", "a") as tar:
            _add(tar, "zz.png", _png(tiny_models.draw("red", "circle")))
            _add(tar, "zz.cls", b"dog")
    code, _, err = cli("run", "--model", "hf-clip", "--model-args", f"pretrained={tiny_clip}", "--tasks",
                       "wds-zeroshot", "--include-path", str(tasks), "--data-dir", str(tmp_path / "data"),
                       "--output-dir", str(tmp_path / "out"), "--no-progress")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
