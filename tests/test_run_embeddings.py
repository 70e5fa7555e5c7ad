"""End to end through the CLI: tiny CLIP on zero-shot and retrieval, batch-size invariance, resume after a
kill, failed items, `mmbench score` reproducing a run, and bad input exiting with code 2."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import counting_adapter
from conftest import run_cli
from mmbench.cli.main import main
from mmbench.results import RunResult

TASKS = "tiny-zeroshot,tiny-retrieval"


def run_embed(capsys, tiny_clip, embed_data, embed_tasks, out_dir, *extra, model="hf-clip", model_args=""):
    margs = f"pretrained={tiny_clip}" + (f",{model_args}" if model_args else "")
    code, out, err = run_cli(capsys, "run", "--model", model, "--model-args", margs, "--tasks", TASKS,
                             "--include-path", str(embed_tasks), "--data-dir", str(embed_data),
                             "--output-dir", str(out_dir), "--no-progress", *extra)
    assert code == 0, err
    runs = sorted(p for p in out_dir.iterdir() if p.is_dir())
    return RunResult.read(runs[-1]), runs[-1], out


def scores(run: RunResult) -> dict:
    return {(r.task, m["name"]): m["value"] for r in run.results for m in r.metrics}


def test_run_end_to_end(capsys, tiny_clip, embed_data, embed_tasks, tmp_path):
    run, run_dir, out = run_embed(capsys, tiny_clip, embed_data, embed_tasks, tmp_path / "out")
    assert [r.task for r in run.results] == ["tiny-zeroshot", "tiny-retrieval"]
    zs, rt = run.results
    assert zs.n_items == 36 and rt.n_items == 12 and zs.n_failed == 0
    assert {m["name"] for m in zs.metrics} == {"top1", "top5", "mean_per_class_recall"}
    assert {m["name"] for m in rt.metrics} == {f"{d}_R@{k}" for d in ("t2i", "i2t") for k in (1, 5, 10)}
    assert all(0.0 <= m["value"] <= 1.0 for r in run.results for m in r.metrics)
    assert zs.throughput.items_per_s > 0 and zs.peak_memory.bytes > 10 * 2**20
    assert zs.task_info["prompt_templates"] == ["a photo of a {c}.", "a {c}."]
    assert zs.model_info["model_class"] == "CLIPModel" and run.environment["packages"]["torch"]
    # the summary: the model's row with each task's headline metric and its interval, and where the run is
    row = next(line for line in out.splitlines() if line.startswith("| hf-clip"))
    assert f"{zs.value('top1'):.4f} ±" in row and f"{rt.value('t2i_R@5'):.4f} ±" in row
    assert f"mmbench show {run_dir}" in out and f"results: {run_dir}/results.json" in out
    # `mmbench show`: every number with its variant footnote and the data/model fingerprints
    code, shown, _ = run_cli(capsys, "show", str(run_dir))
    assert code == 0
    assert "[1] top-1 accuracy over 36 items" in shown and zs.data_fingerprint in shown
    assert zs.model_fingerprint in shown
    samples = (run_dir / zs.files["samples"]).read_text().splitlines()
    assert len(samples) == 36 and {"id", "label", "prediction", "top5", "correct"} <= set(json.loads(samples[0]))
    # the store has the run, one row per task and one per metric
    con = sqlite3.connect(tmp_path / "out" / "results.sqlite")
    assert con.execute("select count(*) from task_results").fetchone()[0] == 2
    assert con.execute("select count(*) from metrics where model='hf-clip:" +
                       "/".join(Path(tiny_clip).parts[-2:]) + "'").fetchone()[0] == 9


def test_same_scores_at_batch_sizes_1_7_64(capsys, tiny_clip, embed_data, embed_tasks, tmp_path):
    results = [scores(run_embed(capsys, tiny_clip, embed_data, embed_tasks, tmp_path / f"bs{bs}",
                                "--batch-size", str(bs), "--no-cache")[0]) for bs in (1, 7, 64)]
    assert results[0] == results[1] == results[2]


def test_score_command_reproduces_run(capsys, tiny_clip, embed_data, embed_tasks, tmp_path):
    run, run_dir, _ = run_embed(capsys, tiny_clip, embed_data, embed_tasks, tmp_path / "out")
    zs, rt = run.results
    art = run_dir / zs.files["artifacts"]
    code, out, _ = run_cli(capsys, "score", "classification", "--logits", str(art / "logits.npy"),
                           "--labels", str(art / "labels.json"))
    assert code == 0
    assert json.loads(out)["metrics"] == {m["name"]: m["value"] for m in zs.metrics}
    art = run_dir / rt.files["artifacts"]
    code, out, _ = run_cli(capsys, "score", "retrieval", "--image-embeddings", str(art / "image_embeddings.npy"),
                           "--text-embeddings", str(art / "text_embeddings.npy"),
                           "--text-image-index", str(art / "text_image_index.json"))
    assert code == 0
    assert json.loads(out)["metrics"] == {m["name"]: m["value"] for m in rt.metrics}


def test_resume_after_interrupt_loses_and_repeats_nothing(capsys, tiny_clip, embed_data, embed_tasks, tmp_path):
    counting_adapter.register()
    log = tmp_path / "log.txt"
    out_dir = tmp_path / "out"
    reference = scores(run_embed(capsys, tiny_clip, embed_data, embed_tasks, tmp_path / "ref", "--no-cache")[0])
    # "kill" on the 4th image batch of the first task (batch size 5: 15 of 36 items done)
    code, _, err = run_cli(capsys, "run", "--model", "counting-clip", "--model-args",
                           f"pretrained={tiny_clip},log={log},stop_after=3", "--tasks", TASKS,
                           "--include-path", str(embed_tasks), "--data-dir", str(embed_data),
                           "--output-dir", str(out_dir), "--no-progress", "--batch-size", "5")
    assert code == 130 and "resume" in err
    assert RunResult.read(sorted(p for p in out_dir.iterdir() if p.is_dir())[-1]).status == "interrupted"
    first = [int(x) for x in log.read_text().split()]
    assert sum(first) == 15
    run, _, _ = run_embed(capsys, tiny_clip, embed_data, embed_tasks, out_dir, "--batch-size", "5",
                          model="counting-clip", model_args=f"log={log}")
    second = [int(x) for x in log.read_text().split()][len(first):]
    assert run.results[0].n_cached == 15
    assert sum(first) + sum(second) == 36 + 12  # every item embedded exactly once over both invocations
    assert scores(run) == reference


def test_resume_after_sigkill_with_another_batch_size(tiny_clip, embed_data, embed_tasks, tmp_path):
    """A real kill -9 of a CLI process mid-run; the rerun (other batch size) recomputes only what was not
    committed: at most the one batch in flight."""
    log, out_dir = tmp_path / "log.txt", tmp_path / "out"
    code = ("import sys, counting_adapter; counting_adapter.register(); from mmbench.cli.main import main; "
            "sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    args = ["run", "--model", "counting-clip", "--tasks", "tiny-zeroshot", "--include-path", str(embed_tasks),
            "--data-dir", str(embed_data), "--output-dir", str(out_dir), "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-c", code, *args, "--batch-size", "2", "--model-args",
                             f"pretrained={tiny_clip},log={log},sleep=0.3"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().split()) < 4):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = RunResult.read(sorted(p for p in out_dir.iterdir() if p.is_dir())[-1])
    assert killed.status == "running" and killed.results == []  # what a killed run is left at
    done_before = sum(int(x) for x in log.read_text().split())
    assert 8 <= done_before < 36
    subprocess.run([sys.executable, "-c", code, *args, "--batch-size", "7", "--model-args",
                    f"pretrained={tiny_clip},log={log}"], env=env, check=True, capture_output=True)
    run = RunResult.read(sorted(p for p in out_dir.iterdir() if p.is_dir())[-1])
    assert run.status == "complete"
    total = sum(int(x) for x in log.read_text().split())
    cached = run.results[0].n_cached
    assert cached >= done_before - 2  # at most the batch in flight (size 2) was lost
    assert total - done_before == 36 - cached  # nothing cached was computed again
    assert run.results[0].n_items == 36 and run.results[0].n_failed == 0


def test_corrupt_image_is_a_failed_item(capsys, tiny_clip, embed_data, embed_tasks, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(embed_data, data)
    (data / "shapes" / "red circle" / "9.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (data / "shapes" / "blue square" / "9.png").write_bytes(b"")
    run, run_dir, out = run_embed(capsys, tiny_clip, data, embed_tasks, tmp_path / "out")
    zs = run.results[0]
    assert zs.n_items == 38 and zs.n_failed == 2
    assert any("2 item(s) failed" in n for n in zs.notes) and "2 item(s) failed" in out
    errors = [json.loads(line) for line in (run_dir / zs.files["samples"]).read_text().splitlines()
              if "error" in line]
    assert {e["id"] for e in errors} == {"red circle/9.png", "blue square/9.png"}
    assert "cannot be decoded" in errors[0]["error"] or "file is empty" in errors[0]["error"]


def test_bad_input_exits_2_with_one_line(capsys, tiny_clip, embed_data, embed_tasks, tmp_path):
    base = ["run", "--tasks", "tiny-zeroshot", "--include-path", str(embed_tasks), "--output-dir", str(tmp_path)]
    cases = [
        (["--model", "hf-clipp", "--data-dir", str(embed_data)], "did you mean 'hf-clip'"),
        (["--model", "hf-clip", "--model-args", f"pretrained={tiny_clip}", "--data-dir", str(tmp_path)],
         "image folder not found"),
        (["--model", "hf-clip", "--model-args", f"pretrained={tiny_clip},dtyp=fp16", "--data-dir",
          str(embed_data)], "did you mean 'dtype'"),
        (["--model", "hf-clip", "--model-args", f"pretrained={tmp_path / 'nope'}", "--data-dir", str(embed_data)],
         "does not exist"),
    ]
    for extra, message in cases:
        code, out, err = run_cli(capsys, *base, *extra)
        assert code == 2, (extra, err)
        assert message in err and len(err.strip().splitlines()) == 1 and err.startswith("mmbench: error:")
    bad = tmp_path / "labels.json"
    bad.write_text("[0, 1")
    code, _, err = run_cli(capsys, "score", "classification", "--logits", str(bad), "--labels", str(bad))
    assert code == 2 and "not a readable .npy" in err
    import numpy as np
    np.save(tmp_path / "l.npy", np.zeros((3, 4)))
    (tmp_path / "ok.json").write_text("[0, 1]")
    code, _, err = run_cli(capsys, "score", "classification", "--logits", str(tmp_path / "l.npy"),
                           "--labels", str(tmp_path / "ok.json"))
    assert code == 2 and "shape mismatch" in err


def test_error_in_later_task_keeps_earlier_results(capsys, tiny_clip, embed_data, tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "a.yaml").write_text("task: a\nkind: zeroshot-classification\ndata: {format: imagefolder, root: shapes}\n")
    # task b's manifest points at captions-less records: fails at run time, after task a finished
    (embed_data / "nocaps.jsonl").write_text('{"image": "caps/img0.png"}\n')
    (tasks / "b.yaml").write_text("task: b\nkind: retrieval\ndata: {format: jsonl, path: nocaps.jsonl}\n")
    code, _, err = run_cli(capsys, "run", "--model", "hf-clip", "--model-args", f"pretrained={tiny_clip}",
                           "--tasks", "a,b", "--include-path", str(tasks), "--data-dir", str(embed_data),
                           "--output-dir", str(tmp_path / "out"), "--no-progress")
    # several (model, task) pairs: the failing one is recorded with its reason, the run goes on, exit 1
    last = err.strip().splitlines()[-1]  # (transformers' loading bars come before it)
    assert code == 1 and "1 (model, task) pair(s) failed" in last and "has no captions" in last
    run = RunResult.read(next(p for p in (tmp_path / "out").iterdir() if p.is_dir()))
    assert [r.task for r in run.results] == ["a"] and run.failures[0]["task"] == "b"
    assert "has no captions" in run.failures[0]["error"] and run.status == "complete"
    # --fail-fast: today's behaviour, the first error ends the run (exit 2) and the run says so
    code, _, err = run_cli(capsys, "run", "--model", "hf-clip", "--model-args", f"pretrained={tiny_clip}",
                           "--tasks", "b,a", "--include-path", str(tasks), "--data-dir", str(embed_data),
                           "--output-dir", str(tmp_path / "ff"), "--no-progress", "--fail-fast")
    assert code == 2 and "has no captions" in err
    run = RunResult.read(next(p for p in (tmp_path / "ff").iterdir() if p.is_dir()))
    assert run.results == [] and run.status == "interrupted" and run.failures[0]["task"] == "b"
