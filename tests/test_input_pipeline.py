"""Batches prepared by a pool of threads: delivered in order, failed items kept, the same outputs at any worker
count; the split of cores between preparation threads and torch threads, and its record in the result."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest

from mmbench.batching import BatchSizer
from mmbench.execution import plan_threads, prepared_batches
from mmbench.tasks.base import Batch


class SlowTask:
    """prepare() sleeps a random time (so later batches often finish first) and fails items whose id says so."""

    def __init__(self) -> None:
        self.threads: set[str] = set()
        self.rng = random.Random(0)
        self.lock = threading.Lock()

    def prepare(self, model, chunk):
        with self.lock:
            delay = self.rng.random() * 0.01
        self.threads.add(threading.current_thread().name)
        time.sleep(delay)
        ok = [it for it in chunk if not it["id"].endswith("bad")]
        return Batch(ok, [it["id"] for it in ok], {it["id"]: "unreadable" for it in chunk if it not in ok})


ITEMS = [{"id": f"i{n}" + ("bad" if n % 7 == 3 else "")} for n in range(60)]


@pytest.mark.parametrize("workers,prefetch", [(1, 0), (1, 1), (2, 1), (4, 0), (8, 3)])
def test_batches_arrive_in_order_with_their_failures_at_any_worker_count(workers, prefetch):
    task = SlowTask()
    batches = list(prepared_batches(task, None, ITEMS, BatchSizer(size=4), prefetch, workers))
    assert [i for b in batches for i in b.payload] == [it["id"] for it in ITEMS if not it["id"].endswith("bad")]
    assert sorted(k for b in batches for k in b.failed) == sorted(it["id"] for it in ITEMS if it["id"].endswith("bad"))
    if workers > 1:
        assert len(task.threads) > 1  # the work was spread over the pool


def test_a_shrunk_batch_size_applies_to_batches_not_yet_scheduled():
    sizer = BatchSizer(size=8)
    sizes = []
    for batch in prepared_batches(SlowTask(), None, ITEMS, sizer, 0, 2):
        sizes.append(len(batch.items) + len(batch.failed))
        sizer.size = 2
    # two batches were scheduled at the start and a third when the first was taken: they keep their size
    assert sizes[:3] == [8, 8, 8] and set(sizes[3:]) == {2} and sum(sizes) == len(ITEMS)


def test_the_cores_go_where_the_time_goes():
    # input-bound (embedding images): every core prepares, a quarter compute, one thread over the cores
    assert plan_threads(None, None, False, True, 2, cores=2).describe() == \
        "2 preparation thread(s), 1 torch thread(s) on 2 usable core(s)"
    assert (lambda p: (p.workers, p.torch_threads))(plan_threads(None, None, False, True, 16, cores=16)) == (13, 4)
    # model-bound (generation): torch keeps every core, one preparation thread
    assert (lambda p: (p.workers, p.torch_threads))(plan_threads(None, None, False, False, 2, cores=2)) == (1, 2)
    # what the user fixes wins; the other side follows
    assert (lambda p: (p.workers, p.torch_threads))(plan_threads(3, None, False, True, 16, cores=16)) == (3, 4)
    assert (lambda p: (p.workers, p.torch_threads))(plan_threads(None, 8, False, True, 16, cores=16)) == (9, 8)
    gpu = plan_threads(None, None, True, False, 16, cores=16)
    assert (gpu.workers, gpu.torch_threads) == (15, 16)
    assert plan_threads(None, None, False, True, 1, cores=1).workers == 1


def test_outputs_are_identical_at_1_and_3_workers_and_the_split_is_recorded(cli, tiny_clip, embed_data, embed_tasks,
                                                                            tmp_path):
    from mmbench.results import RunResult

    samples, basis = {}, {}
    for workers in (1, 3):
        out = tmp_path / f"w{workers}"
        code, _, err = cli("run", "--model", "hf-clip", "--model-args", f"pretrained={tiny_clip}", "--tasks",
                           "tiny-zeroshot,tiny-retrieval", "--include-path", str(embed_tasks), "--data-dir",
                           str(embed_data), "--output-dir", str(out), "--no-progress", "--no-cache",
                           "--batch-size", "5", "--num-workers", str(workers), "--threads", "1")
        assert code == 0, err
        run_dir = next(p for p in out.iterdir() if p.is_dir())
        run = RunResult.read(run_dir)
        samples[workers] = {r.task: [json.loads(x) for x in (run_dir / r.files["samples"]).read_text().splitlines()]
                            for r in run.results}
        basis[workers] = {r.task: r.throughput.basis for r in run.results}
        metrics = {r.task: r.metrics for r in run.results}
        if workers == 1:
            first = metrics
        else:
            assert metrics == first
    assert samples[1] == samples[3]
    assert all("3 preparation thread(s), 1 torch thread(s)" in b for b in basis[3].values())


@pytest.mark.parametrize("argv", [["--help"], ["list", "models"], ["list", "tasks"], ["list", "metrics"],
                                  ["run", "--model", "no-such-model", "--tasks", "mini-vqa"],
                                  ["run", "--model", "mini-llava", "--tasks", "no-such-task"],
                                  ["run", "--batch-size", "0"]])
def test_help_listings_and_argument_errors_import_neither_torch_nor_transformers(argv):
    import subprocess
    import sys

    code = ("import sys\nfrom mmbench.cli.main import main\ntry:\n    rc = main(%r)\nexcept SystemExit as e:\n"
            "    rc = e.code\nprint('HEAVY', sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules),"
            " rc)" % (argv,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    heavy = next(line for line in out.splitlines() if line.startswith("HEAVY"))
    assert heavy.startswith("HEAVY []"), heavy


def test_a_result_records_its_time_to_first_batch(cli, tiny_clip, embed_data, embed_tasks, tmp_path):
    from mmbench.results import RunResult

    code, _, err = cli("run", "--model", "hf-clip", "--model-args", f"pretrained={tiny_clip}", "--tasks",
                       "tiny-zeroshot", "--include-path", str(embed_tasks), "--data-dir", str(embed_data),
                       "--output-dir", str(tmp_path), "--no-progress")
    assert code == 0, err
    result = RunResult.read(next(p for p in tmp_path.iterdir() if p.is_dir())).results[0]
    assert 0 < result.throughput.first_batch_s < result.wall_time_s
    code, _, err = cli("run", "--model", "hf-clip", "--model-args", f"pretrained={tiny_clip}", "--tasks",
                       "tiny-zeroshot", "--include-path", str(embed_tasks), "--data-dir", str(embed_data),
                       "--output-dir", str(tmp_path), "--no-progress")  # all resumed from the cache
    runs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert RunResult.read(runs[-1]).results[0].throughput.first_batch_s is None


def test_pinning_reaches_every_tensor_of_a_payload():
    import torch

    from mmbench.adapters.hf_vlm import PreparedBatch
    from mmbench.execution import pin_tensors

    seen = []

    def pin(t):
        seen.append(tuple(t.shape))
        return t + 0

    enc = {"input_ids": torch.zeros(2, 3), "pixel_values": torch.ones(2, 3, 4, 4), "n": 3}
    payload = PreparedBatch(inputs=[enc, {"input_ids": torch.zeros(1, 5)}], prompts=["a", "b"], image_tokens=[1, 2])
    out = pin_tensors((payload, torch.arange(4)), pin)
    assert sorted(seen) == sorted([(2, 3), (2, 3, 4, 4), (1, 5), (4,)])
    assert out[0] is payload and payload.inputs[0]["n"] == 3 and payload.prompts == ["a", "b"]


def test_processes_on_one_node_share_its_cores():
    from types import SimpleNamespace

    from mmbench.distributed import Dist
    from mmbench.execution import usable_cores
    from mmbench.runner import Runner
    from mmbench.specs import RunOptions

    runner = Runner(RunOptions())
    adapter, task = SimpleNamespace(device="cpu"), SimpleNamespace(input_bound=True)
    alone = runner.thread_plan(adapter, task)
    runner.dist = Dist(local_world_size=4)
    shared = runner.thread_plan(adapter, task)
    assert alone.cores == usable_cores() and shared.cores == max(1, usable_cores() // 4)
