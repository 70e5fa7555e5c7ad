"""Records larger than memory: JSONL manifests and Hugging Face datasets are read once to check them and then
row by row when used (mmbench.data.lazy); the runner's results do not change."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from mmbench.data.lazy import LazyRecords
from mmbench.data.sources import DataContext, load_hf, load_jsonl
from mmbench.errors import DataError


def write_manifest(path, n: int) -> None:
    with open(path, "w") as fh:
        for i in range(n):
            if i == 3:
                fh.write("\n")  # blank lines are skipped; line numbers still count them
            fh.write(json.dumps({"id": f"q{i}", "image": f"img/{i % 7}.png", "question": f"what is object {i}?",
                                 "answers": ["red"] * 10, "label": ["blue", "red"][i % 2]}) + "\n")


def test_lazy_records_are_a_sequence_with_views():
    built = []
    recs = LazyRecords(10, lambda i: built.append(i) or {"id": str(i)})
    assert len(recs) == 10 and recs[3] == {"id": "3"} and recs[-1] == {"id": "9"} and built == [3, 9]
    view = recs[2:8][::2]
    assert isinstance(view, LazyRecords) and [r["id"] for r in view] == ["2", "4", "6"]
    assert recs[1::2][1:3] == [{"id": "3"}, {"id": "5"}] and len(recs[20:]) == 0 and not recs[20:]
    with pytest.raises(IndexError):
        recs[10]


def test_a_manifest_is_checked_once_and_read_back_by_line(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest(path, 50)
    data = load_jsonl({"path": str(path)}, DataContext(task="t"))
    assert isinstance(data.records, LazyRecords) and len(data.records) == 50 and data.class_names == ["blue", "red"]
    r = data.records[7]
    assert r["id"] == "q7" and r["image"] == tmp_path / "img" / "0.png" and r["label"] == 1
    assert r["answers"] == ["red"] * 10 and r["question"] == "what is object 7?"
    # the same records as reading every line at once
    eager = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    assert [x["id"] for x in data.records] == [e["id"] for e in eager]
    assert [x["label"] for x in data.records] == [["blue", "red"].index(e["label"]) for e in eager]
    # the fingerprint follows the file's bytes
    again = load_jsonl({"path": str(path)}, DataContext(task="t"))
    path.write_text(path.read_text().replace("object 9?", "object nine?"))
    assert again.fingerprint == data.fingerprint != load_jsonl({"path": str(path)}, DataContext(task="t")).fingerprint


def test_manifest_errors_name_the_line_and_a_file_changed_under_a_run_is_caught(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"id": "a"}\n\n{"id": "a"}\n')
    with pytest.raises(DataError, match=r"line 3: duplicate id 'a'"):
        load_jsonl({"path": str(path)}, DataContext(task="t"))
    path.write_text('{"id": "a"}\n{"id": "b"\n')
    with pytest.raises(DataError, match=r"m.jsonl line 2 is not valid JSON"):
        load_jsonl({"path": str(path)}, DataContext(task="t"))
    path.write_bytes(b'{"id": "a"}\n{"q": "\xff"}\n')
    with pytest.raises(DataError, match="is not UTF-8 text"):
        load_jsonl({"path": str(path)}, DataContext(task="t"))
    path.write_text('{"id": "a"}\n{"id": "b"}\n')
    data = load_jsonl({"path": str(path)}, DataContext(task="t"))
    path.write_text('{"id": "a"}\n')  # truncated after the check
    with pytest.raises(DataError, match="changed while it was being read"):
        data.records[1]


def test_a_manifest_is_never_held_whole(tmp_path):
    """100,000 records: what the loaded data set keeps is a few offsets per line, not the records (measured in a
    fresh process, where no other test's threads allocate)."""
    path = tmp_path / "big.jsonl"
    write_manifest(path, 100_000)
    code = ("import gc, json, sys, tracemalloc\n"
            "from mmbench.data.sources import DataContext, load_jsonl\n"
            "import mmbench.data.lazy, mmbench.files  # imported before the measurement\n"
            "gc.collect(); tracemalloc.start()\n"
            f"data = load_jsonl({{'path': {str(path)!r}}}, DataContext(task='t'))\n"
            "gc.collect(); kept = tracemalloc.get_traced_memory()[0]; tracemalloc.stop()\n"
            "print(json.dumps([kept, len(json.dumps(data.records[0], default=str)), len(data.records), "
            "sum(1 for _ in data.records)]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    kept, json_bytes, n, iterated = json.loads(out.stdout.strip().splitlines()[-1])
    assert n == iterated == 100_000
    # a parsed record (its dict, its list of 10 answers, its strings and Path) takes about 1.5 KB: the records
    # held whole would be about 150 MB; the offsets, lengths and line numbers take 24 bytes a line
    assert kept < 60 * n, kept


def test_preparation_threads_read_the_same_records(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest(path, 400)
    data = load_jsonl({"path": str(path)}, DataContext(task="t"))
    want = [r["id"] for r in data.records]
    got: dict[int, list] = {}

    def read(k: int) -> None:
        got[k] = [data.records[i]["id"] for i in range(k, 400, 4)]

    threads = [threading.Thread(target=read, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(got[k] == want[k::4] for k in range(4))


def test_hf_records_are_built_from_the_arrow_table_when_used(tmp_path):
    import datasets

    from mmbench.data.sources import HFRef

    ds = datasets.Dataset.from_dict({"image": [{"bytes": b"x", "path": None}] * 6, "q": [f"q{i}" for i in range(6)],
                                     "ans": [["a", "b"], ["c"], [], None, ["e"], ["f"]],
                                     "qid": [10, 11, 12, 13, 14, 15], "split": ["human_test", "aug"] * 3})
    ds = ds.cast_column("image", datasets.Image(decode=False))
    ds.save_to_disk(str(tmp_path / "d"))
    data = load_hf({"path": "x", "local": "d", "answers_column": "ans", "id_column": "qid",
                    "columns": {"question": "q", "kind": "split"}, "rename_values": {"kind": {"human_test": "human"}}},
                   DataContext(task="t", data_dir=tmp_path))
    assert isinstance(data.records, LazyRecords) and len(data.records) == 6
    first, second = data.records[0], data.records[1]
    assert first["id"] == "10" and first["question_id"] == 10 and isinstance(first["image"], HFRef)
    assert first["answers"] == ["a", "b"] and first["question"] == "q0" and first["kind"] == "human"
    assert second["answers"] == ["c"] and second["kind"] == "aug" and data.records[5]["answers"] == ["f"]
    assert "answers" not in data.records[2] and "answers" not in data.records[3]
    assert [r["id"] for r in data.records[1::2]] == ["11", "13", "15"]
    # a dataset of images alone (e.g. a generator's reference images) has no other column to read
    ds.select_columns(["image"]).save_to_disk(str(tmp_path / "only-images"))
    images = load_hf({"path": "x", "local": "only-images"}, DataContext(task="t", data_dir=tmp_path))
    assert [r["id"] for r in images.records] == [str(i) for i in range(6)] and isinstance(images.records[5]["image"],
                                                                                       HFRef)
