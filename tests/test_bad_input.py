"""Property-based hostile input: every `mmbench score` kind, task files, manifests, media files and command-line
options, fed generated malformed input. Each call must end with exit 2 and exactly one line on stderr, or
with a correct result (exit 0); never a Python traceback (an exception escaping `main`).

Examples are derandomised (the same inputs on every run) so CI is reproducible; `@example` pins the cases
a hostile tester reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import probe_models
import tiny_models
from mmbench.cli.main import main

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# JSON-like values of every shape, including the wrong ones
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)
# file contents: binary, not UTF-8, empty, JSON of any shape, deeply nested, truncated JSON
contents = st.one_of(
    st.binary(max_size=64),
    st.just(b"\xff\xfe\x00bad utf-8 \xc3\x28"),
    st.just(b""),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.integers(200, 3000).map(lambda n: (b"[" * n) + (b"]" * n)),
    st.just(b'{"a": [1, 2'),
)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A data folder with a few good images, a manifest and task files to corrupt one field at a time."""
    root = tmp_path_factory.mktemp("hostile")
    for i, colour in enumerate(("red", "green", "blue")):
        tiny_models.draw(colour, "circle").save(root / f"img{i}.png")
    rows = [{"id": f"q{i}", "image": f"img{i}.png", "question": "what color?", "answers": [c] * 10,
             "captions": [f"a {c} circle"], "label": i} for i, c in enumerate(("red", "green", "blue"))]
    (root / "good.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return root


@pytest.fixture(autouse=True)
def models():
    probe_models.register()  # conftest restores the registries after each test


def call(argv: list[str], capsys) -> tuple[int, str]:
    """Run the CLI; an exception escaping main is the failure this module exists to catch."""
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def assert_clean(code: int, err: str) -> None:
    assert "Traceback" not in err, err
    assert code in (0, 1, 2), (code, err)  # 1: the run went on past a failed (model, task), named on one line
    if code in (1, 2):
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("mmbench"), err


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- mmbench score, every kind ------------------------------------------------------------------------------

@SETTINGS
@given(a=contents, b=contents)
@example(a=json.dumps([{"question_id": 1, "answer": "red"}]).encode(),
         b=json.dumps({"annotations": [{"question_id": 1, "answers": "red"}]}).encode())  # answers as a string
def test_score_vqa_and_captions(tmp_path_factory, capsys, a, b):
    d = tmp_path_factory.mktemp("s")
    p, r = write(d / "p.json", a), write(d / "r.json", b)
    for kind in ("vqa", "captions"):
        assert_clean(*call(["score", kind, "--predictions", str(p), "--references", str(r)], capsys))
    assert_clean(*call(["score", "vqa", "--predictions", str(d), "--references", str(r)], capsys))  # a folder


@SETTINGS
@given(a=contents, b=contents)
def test_score_wer(tmp_path_factory, capsys, a, b):
    d = tmp_path_factory.mktemp("w")
    lines_a = a if a[:1] in (b"{", b"[") else a
    p, r = write(d / "h.jsonl", lines_a), write(d / "r.jsonl", b)
    assert_clean(*call(["score", "wer", "--predictions", str(p), "--references", str(r)], capsys))


arrays = st.one_of(
    st.sampled_from(["empty", "nan", "bool", "str", "complex", "1d", "3d", "inf"]),
    st.binary(max_size=80),
)


def npy(path: Path, spec) -> Path:
    if isinstance(spec, bytes):
        return write(path, spec)
    arr = {"empty": np.zeros((0, 4)), "nan": np.full((3, 4), np.nan), "bool": np.ones((3, 4), bool),
           "str": np.array([["a"] * 4] * 3), "complex": np.ones((3, 4), complex), "1d": np.ones(3),
           "3d": np.ones((3, 4, 2)), "inf": np.full((3, 4), np.inf)}[spec]
    np.save(path, arr)
    return path


@SETTINGS
@given(x=arrays, y=arrays, labels=contents, k=st.sampled_from(["0", "-1", "1,5", "x", "", "1,,2", "100000"]))
@example(x="nan", y="nan", labels=b"[0, 1, 2]", k="1")  # all-NaN embeddings must not score recall 1.0
def test_score_classification_retrieval_fid(tmp_path_factory, capsys, x, y, labels, k):
    d = tmp_path_factory.mktemp("n")
    a, b = npy(d / "a.npy", x), npy(d / "b.npy", y)
    lab = write(d / "labels.json", labels)
    for argv in (["score", "classification", "--logits", str(a), "--labels", str(lab)],
                 ["score", "retrieval", "--image-embeddings", str(a), "--text-embeddings", str(b),
                  "--text-image-index", str(lab), "--k", k],
                 ["score", "fid", "--real-features", str(a), "--fake-features", str(b), "--batch-size", k or "0"]):
        code, err = call(argv, capsys)
        assert_clean(code, err)
    if x == y == "nan" and labels == b"[0, 1, 2]":  # the reported wrong number: recall from NaN embeddings
        code, err = call(["score", "retrieval", "--image-embeddings", str(a), "--text-embeddings", str(b),
                          "--text-image-index", str(lab)], capsys)
        assert code == 2 and "NaN" in err


# -- task files and manifests -------------------------------------------------------------------------------

TASK_KEYS = {
    "vqa": ["prompt", "max_new_tokens", "do_sample", "temperature", "top_p", "num_beams", "stop", "batch_size",
            "metrics", "answer_extraction", "option_format", "prompt_overrides", "submission", "system"],
    "captioning": ["prompt", "max_new_tokens", "metrics", "batch_size", "stop"],
    "zeroshot-classification": ["templates", "classes", "class_name_transform", "text_batch_size", "metrics"],
}
yaml_values = st.one_of(json_values, st.sampled_from(["{question", "{question:>100000000}", "{question.__class__}",
                                                      "{0}", "{question!r}", "hot", "maybe", "[null]", "0", "-3",
                                                      "&a [*a]", "!!python/object:os.system x", "\t\x00"]))


@SETTINGS
@given(kind=st.sampled_from(sorted(TASK_KEYS)), data=st.data())
@example(kind="vqa", data=None)
def test_task_file_fields(world, tmp_path_factory, capsys, kind, data):
    import yaml

    d = tmp_path_factory.mktemp("t")
    if data is None:  # the reported cases, one file each
        bad = [("num_beams", 0), ("max_new_tokens", 0), ("temperature", "hot"), ("prompt", "{question"),
               ("batch_size", 0), ("top_p", 2), ("do_sample", "maybe"), ("stop", [None])]
    else:
        key = data.draw(st.sampled_from(TASK_KEYS[kind]))
        bad = [(key, data.draw(yaml_values))]
    model = "image-only" if kind != "zeroshot-classification" else "colour-encoder"
    for key, value in bad:
        text = f"task: t-{kind}\nkind: {kind}\ndata: {{format: jsonl, path: {world / 'good.jsonl'}}}\n"
        try:
            text += yaml.safe_dump({key: value})
        except yaml.YAMLError:
            text += f"{key}: {value}\n"
        if isinstance(value, str) and value.startswith(("&", "!!")):
            text += f"{key}: {value}\n"
        path = d / f"{key}.yaml"
        path.write_text(text)
        assert_clean(*call(["run", "--model", model, "--tasks", str(path), "--output-dir", str(d / "out"),
                            "--no-progress", "--no-cache"], capsys))
        if data is None:
            code, err = call(["run", "--model", model, "--tasks", str(path), "--output-dir", str(d / "out"),
                              "--no-progress", "--no-cache"], capsys)
            assert code == 2, (key, value)


manifest_values = st.one_of(json_values, st.sampled_from([None, 3, "", "missing.png", "/", "img0.png"]))


@SETTINGS
@given(field=st.sampled_from(["image", "question", "answers", "id", "label", "captions"]), value=manifest_values,
       drop=st.booleans(), raw=st.one_of(st.none(), contents))
def test_manifests(world, tmp_path_factory, capsys, field, value, drop, raw):
    d = tmp_path_factory.mktemp("m")
    for i in range(3):
        shutil.copy(world / f"img{i}.png", d / f"img{i}.png")
    rows = [json.loads(line) for line in (world / "good.jsonl").read_text().splitlines()]
    if drop:
        rows[1].pop(field, None)
    else:
        rows[1][field] = value
    body = raw if raw is not None else ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
    (d / "m.jsonl").write_bytes(body)
    for kind in ("vqa", "zeroshot-classification"):  # (captioning starts Java per run: its fields are in the
        (d / f"{kind}.yaml").write_text(f"task: m-{kind}\nkind: {kind}\ndata: {{format: jsonl, path: m.jsonl}}\n")
        model = "image-only" if kind != "zeroshot-classification" else "colour-encoder"  # task-file test)
        assert_clean(*call(["run", "--model", model, "--tasks", str(d / f"{kind}.yaml"), "--data-dir", str(d),
                            "--output-dir", str(d / "out"), "--no-progress", "--no-cache"], capsys))


@SETTINGS
@given(media=st.one_of(st.binary(max_size=200), st.sampled_from(["bomb", "truncated", "empty", "dir"])))
def test_media_files_are_failed_items(world, tmp_path_factory, capsys, media):
    d = tmp_path_factory.mktemp("media")
    for i in range(3):
        shutil.copy(world / f"img{i}.png", d / f"img{i}.png")
    bad = d / "img1.png"
    if media == "bomb":  # a small PNG declaring 30000 x 30000 pixels
        from PIL import Image

        Image.new("1", (30000, 30000)).save(bad)
    elif media == "truncated":
        bad.write_bytes((world / "img1.png").read_bytes()[:60])
    elif media == "empty":
        bad.write_bytes(b"")
    elif media == "dir":
        bad.unlink()
        bad.mkdir()
    else:
        bad.write_bytes(media)
    shutil.copy(world / "good.jsonl", d / "m.jsonl")
    (d / "t.yaml").write_text("task: media\nkind: vqa\ndata: {format: jsonl, path: m.jsonl}\n")
    code, err = call(["run", "--model", "image-only", "--tasks", str(d / "t.yaml"), "--data-dir", str(d),
                      "--output-dir", str(d / "out"), "--no-progress", "--no-cache"], capsys)
    assert code == 0 and "Traceback" not in err, err  # a bad file is a counted failed item; the run goes on
    run_dir = sorted(p for p in (d / "out").iterdir() if p.is_dir())[-1]
    result = json.loads((run_dir / "results.json").read_text())["results"][0]
    decodable = media not in ("bomb", "truncated", "empty", "dir")
    assert result["n_failed"] in ((0, 1) if decodable else (1,))


# -- command-line options ---------------------------------------------------------------------------------

options = st.sampled_from([
    ["--seed", "-1"], ["--seed", "x"], ["--device", "bogus"], ["--device", "cuda:99"], ["--limit", "0"],
    ["--limit", "-5"], ["--batch-size", "0"], ["--batch-size", "many"], ["--gen-kwargs", "top_p=2"],
    ["--gen-kwargs", "do_sample=maybe"], ["--gen-kwargs", "stop=[null]"], ["--gen-kwargs", "num_beams"],
    ["--gen-kwargs", "x=1"], ["--gen-kwargs", "max_new_tokens=[[["], ["--prompt", "{question"],
    ["--prompt", "{question:>100000000}"], ["--prompt", "{question.__class__.__mro__}"], ["--prompt", "{nope}"],
    ["--tasks", "probe:probe:mini-vqa"], ["--tasks", "no-such-task"], ["--model", "no-such-model"],
    ["--model-args", "a"], ["--model-args", 'alias="x'], ["--model-args", "{bad json"], ["--threads", "0"],
    ["--suite", "nope"], ["--include-path", "/nonexistent"], ["--data-dir", "/etc/passwd"]])


@SETTINGS
@given(opts=st.lists(options, min_size=1, max_size=2))
def test_run_options(world, tmp_path_factory, capsys, opts):
    d = tmp_path_factory.mktemp("o")
    (d / "t.yaml").write_text(f"task: o\nkind: vqa\ndata: {{format: jsonl, path: {world / 'good.jsonl'}}}\n")
    argv = ["run", "--model", "image-only", "--tasks", str(d / "t.yaml"), "--output-dir", str(d / "out"),
            "--no-progress", "--no-cache"]
    for o in opts:
        argv += o
    code, err = call(argv, capsys)
    assert_clean(code, err)


def test_output_dir_that_is_a_file_and_a_garbage_store(world, tmp_path, capsys):
    (tmp_path / "t.yaml").write_text(f"task: o\nkind: vqa\ndata: {{format: jsonl, path: {world / 'good.jsonl'}}}\n")
    afile = tmp_path / "file"
    afile.write_text("x")
    base = ["run", "--model", "image-only", "--tasks", str(tmp_path / "t.yaml"), "--no-progress"]
    code, err = call([*base, "--output-dir", str(afile)], capsys)
    assert code == 2 and "is a file" in err
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.sqlite").write_bytes(b"garbage, not sqlite" * 50)
    code, err = call([*base, "--output-dir", str(out)], capsys)
    assert code == 2 and "not an mmbench results store" in err and len(err.strip().splitlines()) == 1
