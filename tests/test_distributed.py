"""Device placement of every collective (NCCL: the rank's GPU; gloo: the CPU), the per-device peak memory
bookkeeping, feature extractors on the rank's GPU, and the per-rank cache files (one writer per file, no WAL)
that a rerun resumes from with any process count; a garbage or truncated cache file is one MMBenchError line.

GPU-free: NCCL and CUDA are mocked (tensors "on cuda:1" are fake tensors). The same file run as a script under
torchrun is the real 2-process check (gloo here; NCCL in tests/test_gpu.py when 2 GPUs are present).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
import torch.distributed as td

sys.path.insert(0, str(Path(__file__).parent))

from mmbench.cache import Cache, rank_files, rank_path  # noqa: E402
from mmbench.distributed import Dist, local_cuda_index, local_device  # noqa: E402
from mmbench.errors import MMBenchError  # noqa: E402
from mmbench.monitor import MemoryMonitor, model_devices  # noqa: E402
from mmbench.results import PeakMemory  # noqa: E402

HERE = Path(__file__).resolve()


# ----------------------------------------------------------------------------- collectives, mocked backends
class Recorded(Exception):
    """Raised by a mocked collective after recording: a fake tensor has no value to read back."""


def fake_cuda(monkeypatch, count: int = 2, current: int = 0) -> list[int]:
    """CUDA "available" with ``count`` GPUs; returns the list that torch.cuda.device(i) contexts push onto."""
    stack: list[int] = [current]

    class DeviceContext:
        def __init__(self, index):
            self.index = index

        def __enter__(self):
            stack.append(self.index)

        def __exit__(self, *exc):
            stack.pop()

    def is_available() -> bool:  # fake tensors ask too: they only emulate CUDA while it is not there
        return not sys._getframe(1).f_globals.get("__name__", "").startswith("torch._subclasses")

    monkeypatch.setattr(torch.cuda, "is_available", is_available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "device", DeviceContext)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: stack[-1])
    return stack


def record_collectives(monkeypatch, stack: list[int] | None, raise_after_all_reduce: bool) -> list[tuple]:
    calls: list[tuple] = []

    def broadcast_object_list(box, src=0, group=None, device=None):
        calls.append(("broadcast_object_list", str(device)))
        box[0] = "from rank 0"

    def gather_object(obj, out=None, dst=0, group=None):
        # torch places the pickled object on the *current* CUDA device under NCCL
        calls.append(("gather_object", f"cuda:{stack[-1]}" if stack is not None else "cpu"))
        if out is not None:
            out[:] = [obj] * len(out)

    def all_reduce(tensor, op=None, group=None, async_op=False):
        calls.append(("all_reduce", str(tensor.device)))
        if raise_after_all_reduce:
            raise Recorded

    def barrier(group=None, async_op=False, device_ids=None, timeout=None):
        calls.append(("barrier", device_ids))

    for name, fn in [("broadcast_object_list", broadcast_object_list), ("gather_object", gather_object),
                     ("all_reduce", all_reduce), ("barrier", barrier)]:
        monkeypatch.setattr(td, name, fn)
    return calls


def test_nccl_collectives_get_tensors_on_the_ranks_gpu(monkeypatch):
    from torch._subclasses.fake_tensor import FakeTensorMode

    stack = fake_cuda(monkeypatch, count=2, current=0)  # current device 0: what a rank that never set it has
    monkeypatch.setattr(td, "get_backend", lambda group=None: "nccl")
    calls = record_collectives(monkeypatch, stack, raise_after_all_reduce=True)
    dist = Dist(rank=1, world_size=2, local_rank=1)
    assert dist.uses_cuda and dist.comm_device == torch.device("cuda", 1)
    assert dist.broadcast("mine") == "from rank 0"
    assert dist.gather({"a": 1}) is None  # not rank 0
    with FakeTensorMode(), pytest.raises(Recorded):
        dist.max(5)
    assert calls == [("broadcast_object_list", "cuda:1"), ("gather_object", "cuda:1"), ("all_reduce", "cuda:1")]
    assert stack == [0]  # the gather's device context was left again
    assert dist.device(None) == dist.device("auto") == dist.device("cuda") == "cuda:1"
    assert dist.device("cpu") == "cpu"


def test_gloo_collectives_get_cpu_tensors(monkeypatch):
    monkeypatch.setattr(td, "get_backend", lambda group=None: "gloo")
    calls = record_collectives(monkeypatch, None, raise_after_all_reduce=False)
    dist = Dist(rank=0, world_size=2, local_rank=0)
    assert not dist.uses_cuda and dist.comm_device == torch.device("cpu")
    assert dist.broadcast("mine") == "from rank 0"
    assert dist.gather("x") == ["x", "x"]
    assert dist.max(7) == 7
    assert calls == [("broadcast_object_list", "cpu"), ("gather_object", "cpu"), ("all_reduce", "cpu")]


def test_mixed_backend_takes_cpu_tensors_and_world_of_one_touches_nothing(monkeypatch):
    monkeypatch.setattr(td, "get_backend", lambda group=None: "cpu:gloo,cuda:nccl")
    assert Dist(rank=0, world_size=2).comm_device == torch.device("cpu")

    def boom(*a, **k):
        raise AssertionError("a world of one must not call torch.distributed")

    for name in ("broadcast_object_list", "gather_object", "all_reduce", "barrier", "get_backend"):
        monkeypatch.setattr(td, name, boom)
    one = Dist()
    assert one.broadcast(3) == 3 and one.gather(3) == [3] and one.max(3) == 3 and one.backend == ""


def test_local_gpu_of_a_rank(monkeypatch):
    fake_cuda(monkeypatch, count=4)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert local_cuda_index() == 3 and local_device() == "cuda:3"
    fake_cuda(monkeypatch, count=1)  # the launcher shows each process one GPU (CUDA_VISIBLE_DEVICES)
    assert local_device() == "cuda:0"
    fake_cuda(monkeypatch, count=2)
    with pytest.raises(MMBenchError, match="only 2 GPUs"):
        local_cuda_index()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert local_device() is None


def test_feature_extractors_load_on_the_ranks_gpu(monkeypatch):
    import mmbench.adapters as adapters
    from mmbench.adapters import extractors

    fake_cuda(monkeypatch, count=2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    placed = []
    monkeypatch.setattr(adapters, "load_model", lambda spec, overrides: placed.append(overrides) or "adapter")
    assert extractors.load_embedder("mini-clip") == "adapter"
    assert extractors.load_embedder("clip:mini-clip", device="cuda:0") == "adapter"  # an explicit device wins
    assert placed == [{"device": "cuda:1"}, {"device": "cuda:0"}]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    extractors.load_embedder("mini-clip")
    assert placed[-1] == {}  # no CUDA: the adapter's own default, as before


# ----------------------------------------------------------------------------------------- peak memory
class FakeAdapter:
    def __init__(self, module, device):
        self.model = module
        self.device = device
        self.processor = object()


def mock_cuda_memory(monkeypatch, peaks: dict[str, int]) -> list[tuple]:
    calls = []
    fake_cuda(monkeypatch, count=len(peaks), current=0)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: calls.append(("sync", str(d))))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d=None: calls.append(("reset", str(d))))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d=None: peaks[str(d)])
    return calls


def test_peak_memory_of_a_model_spread_over_two_gpus(monkeypatch):
    calls = mock_cuda_memory(monkeypatch, {"cuda:0": 300, "cuda:1": 1200})
    module = torch.nn.Linear(2, 2)  # its (CPU) parameters do not count: the device map says where it runs
    module.hf_device_map = {"vision_tower": 0, "language_model.layers.0": 1, "lm_head": "cuda:1"}
    adapter = FakeAdapter(module, "cuda")
    assert model_devices(adapter) == ["cuda:0", "cuda:1", "cuda"]
    with MemoryMonitor.for_model(adapter) as mem:
        pass
    assert {c for c in calls if c[0] == "reset"} == {("reset", "cuda:0"), ("reset", "cuda:1")}
    peak = mem.result()
    assert peak == PeakMemory(bytes=1500, kind="cuda_max_allocated", devices={"cuda:0": 300, "cuda:1": 1200})


def test_peak_memory_on_a_pinned_gpu(monkeypatch):
    mock_cuda_memory(monkeypatch, {"cuda:0": 999, "cuda:1": 250})
    module = torch.nn.Linear(2, 2)
    with MemoryMonitor.for_model(FakeAdapter(module, "cuda:1")) as mem:  # --device cuda:1 (params mocked on cpu)
        pass
    assert mem.result() == PeakMemory(bytes=250, kind="cuda_max_allocated", devices={"cuda:1": 250})


def test_peak_memory_gathered_over_ranks():
    class TwoRanks:
        enabled, world_size = True, 2

        def gather(self, mine):
            return [mine, PeakMemory(bytes=700, kind="cuda_max_allocated", devices={"cuda:1": 700})]

    mem = MemoryMonitor(["cuda:0"])
    mem.peak, mem.per_device = 500, {"cuda:0": 500}
    assert mem.result(TwoRanks()) == PeakMemory(
        bytes=700, kind="cuda_max_allocated (max over 2 processes)",
        devices={"rank0/cuda:0": 500, "rank1/cuda:1": 700})

    class OtherRank(TwoRanks):
        def gather(self, mine):
            return None

    assert mem.result(OtherRank()) is None


def test_peak_memory_on_cpu_is_the_process_rss():
    with MemoryMonitor.for_model(FakeAdapter(torch.nn.Linear(2, 2), "cpu")) as mem:
        _ = bytearray(1 << 20)
    peak = mem.result()
    assert peak.kind == "process_rss_peak" and peak.bytes > 1 << 20 and peak.devices == {"cpu": peak.bytes}


# ------------------------------------------------------------------------------ the per-rank cache files
class ThreadWorld:
    """N ranks as threads: broadcast and max as real rendezvous (enough for Cache.open's protocol)."""

    def __init__(self, n: int) -> None:
        self.n, self.slots, self.barrier = n, [None] * n, threading.Barrier(n, timeout=30)

    def dist(self, rank: int) -> "ThreadDist":
        return ThreadDist(self, rank)


class ThreadDist:
    def __init__(self, world: ThreadWorld, rank: int) -> None:
        self.world, self.rank, self.world_size = world, rank, world.n
        self.enabled, self.is_main = world.n > 1, rank == 0

    def _exchange(self, value):
        self.world.slots[self.rank] = value
        self.world.barrier.wait()
        values = list(self.world.slots)
        self.world.barrier.wait()
        return values

    def broadcast(self, obj):
        return self._exchange(obj)[0]

    def max(self, value):
        return max(self._exchange(value))


def in_ranks(n: int, fn) -> list:
    """fn(dist) on n thread-ranks; each result, or the exception it raised."""
    world, out = ThreadWorld(n), [None] * n

    def run(rank):
        try:
            out[rank] = fn(world.dist(rank))
        except Exception as exc:  # noqa: BLE001 - returned to the test
            out[rank] = exc

    threads = [threading.Thread(target=run, args=(r,)) for r in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def items(cache: Cache) -> dict:
    return {i: v for i, (v, _) in cache.get_many("m", "t", [f"item{k}" for k in range(12)]).items()}


def test_two_ranks_on_one_folder_then_a_rerun_with_one_resumes_everything(tmp_path):
    path = tmp_path / "shared" / "cache.sqlite"
    memo_calls = []

    def rank_work(dist):
        cache = Cache.open(path, dist)
        value = cache.memo("m", "t", "classes", lambda: memo_calls.append(dist.rank) or "embeddings")
        mine = [k for k in range(12) if k % dist.world_size == dist.rank]
        for k in mine[:4]:  # "killed" before the last items
            cache.put_many("m", "t", [(f"item{k}", {"out": k}, 0.1)])
        cache.close()
        return value

    assert in_ranks(2, rank_work) == ["embeddings", "embeddings"]
    assert sorted(memo_calls) == [0, 1]  # a fresh cache: every rank computes its setup values
    assert sorted(p.name for p in path.parent.iterdir()) == ["cache.rank1.sqlite", "cache.sqlite"]
    for p in (path, rank_path(path, 1)):  # the rollback journal, not WAL: nothing needs shared memory
        with sqlite3.connect(p) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"

    # a resumed 3-process run: rank 0 folds rank 1's file in; ranks 1 and 2 get the setup value copied
    def resumed_setup(dist):
        cache = Cache.open(path, dist)
        try:
            return cache.memo("m", "t", "classes", lambda: memo_calls.append(dist.rank))
        finally:
            cache.close()

    memo_calls.clear()
    assert in_ranks(3, resumed_setup) == ["embeddings"] * 3
    assert memo_calls == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["cache.rank1.sqlite", "cache.rank2.sqlite",
                                                               "cache.sqlite"]
    with sqlite3.connect(rank_path(path, 2)) as conn:  # only setup values are copied to the other ranks
        assert [r[0] for r in conn.execute("SELECT item_id FROM outputs")] == ["__setup__/classes"]

    # one process afterwards: the same outputs as a single process that computed them itself
    one = Cache.open(path)
    assert rank_files(path) == []
    expected = {f"item{k}": {"out": k} for k in (0, 2, 4, 6, 1, 3, 5, 7)}
    assert items(one) == expected
    single = Cache(tmp_path / "single" / "cache.sqlite")
    single.put_many("m", "t", [(f"item{k}", {"out": k}, 0.1) for k in (0, 1, 2, 3, 4, 5, 6, 7)])
    assert items(single) == items(one)


def test_leftover_rank_files_of_a_bigger_run_are_folded_in(tmp_path):
    path = tmp_path / "cache.sqlite"
    for rank in (3, 7):
        c = Cache(rank_path(path, rank))
        c.put_many("m", "t", [(f"item{rank}", {"out": rank}, 0.5)])
        c.close()
    (tmp_path / "cache.rankX.sqlite").write_text("not a rank file")  # not ours: left alone
    cache = Cache.open(path)
    assert items(cache) == {"item3": {"out": 3}, "item7": {"out": 7}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.rankX.sqlite", "cache.sqlite"]


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_a_garbage_cache_file_is_one_error_line(tmp_path):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(MMBenchError) as info:
        Cache.open(path)
    assert str(path) in one_line(info.value) and "--no-cache" in str(info.value)
    path.unlink()
    rank_path(path, 1).write_bytes(b"\x00" * 4096)  # a rank file of a previous run: garbage too
    with pytest.raises(MMBenchError, match="cache.rank1.sqlite is not a readable mmbench cache") as info:
        Cache.open(path)
    one_line(info.value)
    assert rank_path(path, 1).exists()  # kept for the user to look at


def test_a_truncated_cache_file_is_one_error_line(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = Cache(path)
    cache.put_many("m", "t", [(f"item{k}", {"x": "y" * 5000}, 0.1) for k in range(60)])
    cache.close()
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 3)
    with pytest.raises(MMBenchError) as info:
        Cache.open(path).get_many("m", "t", [f"item{k}" for k in range(60)])
    assert str(path) in one_line(info.value)


def test_an_unreadable_cache_on_one_rank_stops_every_rank(tmp_path):
    """Nodes without a shared folder: rank 1 finds its own old file broken; both ranks stop, none hangs."""
    (tmp_path / "b").mkdir()
    rank_path(tmp_path / "b" / "cache.sqlite", 1).write_bytes(b"garbage" * 1000)
    paths = [tmp_path / "a" / "cache.sqlite", tmp_path / "b" / "cache.sqlite"]
    out = in_ranks(2, lambda d: Cache.open(paths[d.rank], d))
    assert all(isinstance(e, MMBenchError) for e in out)
    assert "another process could not open its cache" in one_line(out[0])
    assert "cache.rank1.sqlite is not a readable mmbench cache" in one_line(out[1])


def test_a_garbage_cache_through_the_cli_exits_2_with_one_line(capsys, tiny_clip, embed_data, embed_tasks, tmp_path):
    from mmbench.cli.main import main

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "cache.sqlite").write_bytes(b"garbage" * 500)
    code = main(["run", "--model", "hf-clip", "--model-args", f"pretrained={tiny_clip}", "--tasks", "tiny-zeroshot",
                 "--include-path", str(embed_tasks), "--data-dir", str(embed_data), "--output-dir",
                 str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is not a readable mmbench cache" in err
    assert "Traceback" not in err


# --------------------------------------------------------------- real processes: torchrun runs this file
def test_two_gloo_processes_collectives_and_cache(tmp_path):
    cache_path = tmp_path / "cache" / "cache.sqlite"
    old = Cache(rank_path(cache_path, 3))  # left by a killed 4-process run
    old.put_many("m", "t", [("old3", {"out": 3}, 0.1)])
    old.close()
    seed = Cache(cache_path)
    seed.put_many("m", "t", [("__setup__/classes", "from an earlier run", 0.0)])
    seed.close()
    records = run_torchrun(tmp_path, backend="gloo")
    for r in records:
        assert r["comm_device"] == "cpu"
        assert r["calls"] and all(device in ("cpu", None) for _, device in r["calls"]), r["calls"]
        assert r["broadcast"] == {"from": 0} and r["max"] == 11 and r["memo"] == "from an earlier run"
    assert records[0]["gather"] == [["r", 0], ["r", 1]] and records[1]["gather"] is None
    assert set(records[0]["peak"]["devices"]) == {"rank0/cpu", "rank1/cpu"}
    resumed = Cache.open(cache_path)
    assert set(resumed.get_many("m", "t", ["old3", "item0", "item1"])) == {"old3", "item0", "item1"}
    assert rank_files(cache_path) == []


def run_torchrun(tmp_path: Path, backend: str, nproc: int = 2, timeout: float = 240) -> list[dict]:
    """This file as a script on ``nproc`` processes; each rank's record."""
    env = {**os.environ, "MMBENCH_TEST_BACKEND": backend, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                           str(HERE), str(tmp_path)], capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(nproc)]


def _script(out_dir: Path) -> None:
    """One rank: the four collectives (recording the device of what each got), Cache.open and peak memory."""
    backend = os.environ.get("MMBENCH_TEST_BACKEND", "gloo")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    td.init_process_group(backend)
    calls: list[tuple] = []
    originals = {n: getattr(td, n) for n in ("broadcast_object_list", "gather_object", "all_reduce", "barrier")}

    def current():
        return f"cuda:{torch.cuda.current_device()}" if backend == "nccl" else "cpu"

    def broadcast_object_list(box, src=0, group=None, device=None):
        calls.append(("broadcast_object_list", str(device)))
        return originals["broadcast_object_list"](box, src=src, device=device)

    def gather_object(obj, out=None, dst=0, group=None):
        calls.append(("gather_object", current()))
        return originals["gather_object"](obj, out, dst=dst)

    def all_reduce(tensor, op=None, group=None, async_op=False):
        calls.append(("all_reduce", str(tensor.device)))
        return originals["all_reduce"](tensor, op=op)

    def barrier(group=None, async_op=False, device_ids=None, timeout=None):
        calls.append(("barrier", None if device_ids is None else f"cuda:{device_ids[0]}"))
        return originals["barrier"](device_ids=device_ids) if device_ids else originals["barrier"]()

    for name, fn in [("broadcast_object_list", broadcast_object_list), ("gather_object", gather_object),
                     ("all_reduce", all_reduce), ("barrier", barrier)]:
        setattr(td, name, fn)
    dist = Dist.from_launcher()
    if backend == "nccl":  # as if something reset the current device: the collectives must not depend on it
        torch.cuda.set_device(0)
    record = {"rank": dist.rank, "comm_device": str(dist.comm_device),
              "broadcast": dist.broadcast({"from": dist.rank}), "gather": dist.gather(("r", dist.rank)),
              "max": dist.max(10 + dist.rank)}
    cache = Cache.open(out_dir / "cache" / "cache.sqlite", dist)
    record["memo"] = cache.memo("m", "t", "classes", lambda: f"computed by rank {dist.rank}")
    cache.put_many("m", "t", [(f"item{dist.rank}", {"out": dist.rank}, 0.1)])
    cache.close()
    device = dist.device("cuda") if backend == "nccl" else "cpu"
    with MemoryMonitor(device) as mem:
        x = torch.ones(1 << 20, device=device)
        del x
    peak = mem.result(dist)
    record["peak"] = None if peak is None else {"bytes": peak.bytes, "kind": peak.kind, "devices": peak.devices}
    record["calls"] = calls
    (out_dir / f"rank{dist.rank}.json").write_text(json.dumps(record))
    td.destroy_process_group()


if __name__ == "__main__":
    _script(Path(sys.argv[1]))
