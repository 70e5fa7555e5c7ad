"""Scale-out: the same scores and per-sample outputs with 1 and 2 processes (torchrun, gloo on CPU), per-rank
cache files a 1-process rerun resumes from, a 2-process run killed half-way resumed by 1 process, and
--batch-size auto backing off on out-of-memory."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import counting_adapter
from mmbench.cli.main import main
from mmbench.results import RunResult

HERE = Path(__file__).parent
SCRIPT = str(HERE / "run_with_counting.py")


def loopback_works() -> bool:
    """torch.distributed needs 127.0.0.1 (down inside a bare `unshare -n` namespace)."""
    try:
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen(1)
            with socket.create_connection(srv.getsockname(), timeout=2):
                return True
    except OSError:
        return False


needs_loopback = pytest.mark.skipif(not loopback_works(), reason="no loopback network for torch.distributed")


def kill_tree(pid: int) -> None:
    """kill -9 the launcher and every worker it started (torchrun puts workers in their own sessions)."""
    import psutil

    parent = psutil.Process(pid)
    for p in [*parent.children(recursive=True), parent]:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


def latest_run(out_dir: Path) -> tuple[RunResult, Path]:
    run_dir = sorted(p for p in out_dir.iterdir() if p.is_dir())[-1]
    return RunResult.read(run_dir), run_dir


def cli_args(tiny_clip, embed_data, embed_tasks, out_dir, extra_model_args="", tasks="tiny-zeroshot,tiny-retrieval"):
    return ["run", "--model", "counting-clip", "--model-args", f"pretrained={tiny_clip}{extra_model_args}",
            "--tasks", tasks, "--include-path", str(embed_tasks), "--data-dir", str(embed_data),
            "--output-dir", str(out_dir), "--no-progress"]


def torchrun(nproc: int, args: list[str], **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", SCRIPT, *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def samples(run_dir: Path, result) -> list[dict]:
    return [json.loads(line) for line in (run_dir / result.files["samples"]).read_text().splitlines()]


def comparable(sample: dict) -> dict:
    return {k: v for k, v in sample.items() if k != "error"}


@needs_loopback
def test_two_processes_give_identical_outputs_and_scores(tiny_clip, embed_data, embed_tasks, tmp_path):
    one = subprocess.run([sys.executable, SCRIPT, *cli_args(tiny_clip, embed_data, embed_tasks, tmp_path / "one"),
                          "--batch-size", "4"], capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    proc = torchrun(2, [*cli_args(tiny_clip, embed_data, embed_tasks, tmp_path / "two"), "--batch-size", "4"])
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.count("| model ") == 1 and out.count("results: ") == 1  # only rank 0 prints the summary
    run1, dir1 = latest_run(tmp_path / "one")
    run2, dir2 = latest_run(tmp_path / "two")
    assert len(list((tmp_path / "two").glob("2*"))) == 1  # one run folder, written by rank 0
    # each rank's log in it: rank 0's run.log, the others' run.rank<N>.log
    assert sorted(p.name for p in dir2.glob("run*.log")) == ["run.log", "run.rank1.log"]
    assert f"INFO mmbench.runner: run {run2.run_id}" in (dir2 / "run.rank1.log").read_text()
    store_runs = sqlite3.connect(tmp_path / "two" / "results.sqlite").execute("SELECT count(*) FROM runs")
    assert store_runs.fetchone()[0] == 1  # the store too: rank 0 alone writes it
    assert run2.options["world_size"] == 2 and "2 processes" in run2.results[0].throughput.basis
    for r1, r2 in zip(run1.results, run2.results):
        assert r1.metrics == r2.metrics and r1.n_items == r2.n_items
        assert [comparable(s) for s in samples(dir1, r1)] == [comparable(s) for s in samples(dir2, r2)]
        # every process's peak, named by rank and device; the number is the largest process's
        assert set(r2.peak_memory.devices) == {"rank0/cpu", "rank1/cpu"}
        assert r2.peak_memory.bytes == max(r2.peak_memory.devices.values())
        assert r1.peak_memory.devices == {"cpu": r1.peak_memory.bytes}
    # one cache file per rank, rollback journal (no -wal/-shm: nothing that needs shared memory on NFS/Lustre)
    cache_files = sorted(p.name for p in (tmp_path / "two").iterdir() if p.name.startswith("cache"))
    assert cache_files == ["cache.rank1.sqlite", "cache.sqlite"]
    # a rerun with one process resumes every item from both ranks' files, with the same scores and samples
    again = subprocess.run([sys.executable, SCRIPT, *cli_args(tiny_clip, embed_data, embed_tasks, tmp_path / "two"),
                            "--batch-size", "3"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    run3, dir3 = latest_run(tmp_path / "two")
    assert [r.n_cached for r in run3.results] == [r.n_items for r in run3.results]
    for r1, r3 in zip(run1.results, run3.results):
        assert r1.metrics == r3.metrics
        assert [comparable(s) for s in samples(dir1, r1)] == [comparable(s) for s in samples(dir3, r3)]
    assert not (tmp_path / "two" / "cache.rank1.sqlite").exists()  # folded into cache.sqlite


@needs_loopback
def test_killed_two_process_run_resumes_with_one(tiny_clip, embed_data, embed_tasks, tmp_path):
    log, out_dir = tmp_path / "log.txt", tmp_path / "out"
    reference = subprocess.run([sys.executable, SCRIPT, *cli_args(tiny_clip, embed_data, embed_tasks, tmp_path / "ref",
                                                                  tasks="tiny-zeroshot"), "--no-cache"],
                               capture_output=True, text=True, check=True)
    assert reference.returncode == 0
    proc = torchrun(2, [*cli_args(tiny_clip, embed_data, embed_tasks, out_dir, f",log={log},sleep=0.4",
                                  tasks="tiny-zeroshot"), "--batch-size", "2"])
    deadline = time.time() + 180
    while time.time() < deadline and (not log.exists() or len(log.read_text().split()) < 6):
        time.sleep(0.05)
    kill_tree(proc.pid)
    proc.communicate()
    done_before = sum(int(x) for x in log.read_text().split())
    assert 12 <= done_before < 36
    resumed = subprocess.run([sys.executable, SCRIPT, *cli_args(tiny_clip, embed_data, embed_tasks, out_dir,
                                                                f",log={log}", tasks="tiny-zeroshot"),
                              "--batch-size", "5"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    run, _ = latest_run(out_dir)
    total = sum(int(x) for x in log.read_text().split())
    cached = run.results[0].n_cached
    assert cached >= done_before - 2 * 2  # at most one batch in flight per rank was lost
    assert total - done_before == 36 - cached  # nothing committed was computed again
    ref_run, _ = latest_run(tmp_path / "ref")
    assert run.results[0].metrics == ref_run.results[0].metrics


def test_batch_size_auto_backs_off_on_out_of_memory(capsys, tiny_clip, embed_data, embed_tasks, tmp_path):
    counting_adapter.register()
    log = tmp_path / "log.txt"
    assert main(cli_args(tiny_clip, embed_data, embed_tasks, tmp_path / "ref") + ["--no-cache"]) == 0
    ref, _ = latest_run(tmp_path / "ref")
    code = main(cli_args(tiny_clip, embed_data, embed_tasks, tmp_path / "auto", f",log={log},oom_above=5")
                + ["--batch-size", "auto"])
    assert code == 0, capsys.readouterr().err
    run, _ = latest_run(tmp_path / "auto")
    sizes = [int(x) for x in log.read_text().split()]
    assert sum(sizes) == 36 + 12 and max(sizes) <= 5  # every item once, never above the limit
    assert [r.metrics for r in run.results] == [r.metrics for r in ref.results]
    assert any("auto (settled at" in n for n in run.results[0].notes)
    assert "auto (settled at" in run.results[0].throughput.basis


def test_out_of_memory_at_batch_size_one_is_a_clear_error(capsys, tiny_clip, embed_data, embed_tasks, tmp_path):
    counting_adapter.register()
    code = main(cli_args(tiny_clip, embed_data, embed_tasks, tmp_path, ",oom_above=0", tasks="tiny-zeroshot")
                + ["--batch-size", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "out of memory at batch size 1" in err
