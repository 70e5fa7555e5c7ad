"""Registry, specs, cache codec, task files: the pieces under the runner."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import numpy as np
import pytest

from mmbench import registry as registry_mod
from mmbench.cache import Cache, decode, encode
from mmbench.errors import MMBenchError, UnknownNameError
from mmbench.registry import MODELS, Registry
from mmbench.specs import ModelSpec, parse_kv_args
from mmbench.tasks.catalog import TaskCatalog, builtin_task_dir


def test_registry_decorator_lazy_alias_and_suggestions():
    reg: Registry = Registry("widget")

    @reg.register("alpha", aliases=("a",))
    class Alpha:
        pass

    reg.register("json-dumps", lazy="json:dumps")
    assert reg.get("alpha") is Alpha and reg.get("a") is Alpha
    import json
    assert reg.get("json-dumps") is json.dumps
    assert reg.names() == ["alpha", "json-dumps"]
    with pytest.raises(UnknownNameError, match="did you mean 'alpha'"):
        reg.get("alpah")
    with pytest.raises(UnknownNameError, match="mmbench list widgets"):
        reg.get("zzzzzz")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha", Alpha)


def test_registry_lazy_import_error_is_user_error():
    reg: Registry = Registry("widget")
    reg.register("broken", lazy="no_such_module_xyz:thing")
    with pytest.raises(MMBenchError, match="could not be imported"):
        reg.get("broken")


def test_registry_entry_points(monkeypatch):
    eps = [EntryPoint(name="plugin-model", value="json:loads", group="mmbench.test")]
    monkeypatch.setattr(registry_mod, "entry_points", lambda group: eps if group == "mmbench.test" else [])
    reg: Registry = Registry("model", "mmbench.test")
    import json
    assert "plugin-model" in reg and reg.get("plugin-model") is json.loads


def test_model_registry_has_builtin_adapters():
    assert {"hf-clip", "open-clip"} <= set(MODELS.names())


def test_parse_kv_args():
    assert parse_kv_args('pretrained=a/b,dtype=fp16, stop="x,y"') == {"pretrained": "a/b", "dtype": "fp16",
                                                                      "stop": "x,y"}
    assert parse_kv_args('{"batch_size": 4, "device": "cpu"}') == {"batch_size": "4", "device": "cpu"}
    with pytest.raises(MMBenchError, match="key=value"):
        parse_kv_args("pretrained")
    with pytest.raises(MMBenchError, match="malformed JSON"):
        parse_kv_args("{bad json")


def test_display_name():
    assert ModelSpec("hf-clip", {"pretrained": "openai/clip-vit-base-patch32"}).display_name == \
        "hf-clip:openai/clip-vit-base-patch32"
    assert ModelSpec("hf-clip", {"pretrained": "/x/y/z"}).display_name == "hf-clip:y/z"
    assert ModelSpec("mini-clip").display_name == "mini-clip"
    assert ModelSpec("hf-clip", {"pretrained": "/x"}, alias="mine").display_name == "mine"


def test_cache_codec_round_trip():
    value = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [1, "x", {"c": np.array([1.5])}],
             "s": np.float64(2.5), "empty": np.zeros((0, 4), dtype=np.int64)}
    back = decode(encode(value))
    assert back["a"].dtype == np.float32 and np.array_equal(back["a"], value["a"])
    assert back["b"][2]["c"].tolist() == [1.5] and back["s"] == 2.5 and back["empty"].shape == (0, 4)


def test_cache_put_get_memo(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    cache.put_many("m", "t", [("1", {"x": 1}, 0.5), ("2", {"x": 2}, 0.5)])
    assert cache.get_many("m", "t", ["1", "2", "3"]) == {"1": ({"x": 1}, 0.5), "2": ({"x": 2}, 0.5)}
    assert cache.get_many("other", "t", ["1"]) == {}
    calls = []
    assert cache.memo("m", "t", "k", lambda: calls.append(1) or 42) == 42
    assert cache.memo("m", "t", "k", lambda: calls.append(1) or 43) == 42
    assert calls == [1]
    cache.close()


def test_cache_lookups_by_key_span_several_queries(tmp_path, monkeypatch):
    """get_many asks for its ids LOOKUP_CHUNK at a time (a probe looks up one batch's ids in a big task): every
    cached id comes back, whichever chunk it falls in, repeated and unknown ids ask for nothing more."""
    import mmbench.cache as cache_mod

    monkeypatch.setattr(cache_mod, "LOOKUP_CHUNK", 3)
    cache = Cache(tmp_path / "c.sqlite")
    cache.put_many("m", "t", [(str(i), {"x": i}, 0.1 * i) for i in range(10)])
    cache.put_many("m", "u", [("1", {"x": -1}, 0.0)])
    got = cache.get_many("m", "t", ["9", "1", "x", "1", "4", "5", "6", "0", "y"])
    assert got == {i: ({"x": int(i)}, 0.1 * int(i)) for i in ("9", "1", "4", "5", "6", "0")}
    assert cache.get_many("m", "t", []) == {} and cache.get_many("m", "u", ["0", "1"]) == {"1": ({"x": -1}, 0.0)}
    cache.close()


def test_builtin_tasks_parse():
    catalog = TaskCatalog()
    assert builtin_task_dir().is_dir()
    names = catalog.task_names()
    assert {"cifar10", "cifar100", "imagenet1k", "coco-retrieval", "flickr30k-retrieval"} <= set(names)
    spec = catalog.task_spec("imagenet1k")
    assert len(spec.config["templates"]) == 80 and len(set(spec.config["templates"])) == 80
    assert len(catalog.task_spec("cifar10").config["templates"]) == 18
    with pytest.raises(UnknownNameError, match="did you mean 'cifar10'"):
        catalog.task_spec("cifar1O")


def test_malformed_yaml_and_bad_kind(tmp_path):
    (tmp_path / "bad.yaml").write_text("task: x\nkind: [unclosed\n")
    with pytest.raises(MMBenchError, match=r"bad.yaml: line 3, column 1: malformed YAML"):
        TaskCatalog([tmp_path])
    (tmp_path / "bad.yaml").write_text("task: x\nkind: retreival\ndata: {format: jsonl, path: x}\n")
    with pytest.raises(UnknownNameError, match="did you mean 'retrieval'"):
        TaskCatalog([tmp_path]).task_spec("x")


def test_unknown_task_key_is_caught(tmp_path, embed_data):
    from mmbench.tasks.base import TaskContext
    from mmbench.tasks.catalog import build_task

    (tmp_path / "t.yaml").write_text("task: t\nkind: zeroshot-classification\n"
                                     "data: {format: imagefolder, root: shapes}\ntemplate: ['{c}']\n")
    spec = TaskCatalog([tmp_path]).task_spec("t")
    with pytest.raises(MMBenchError, match="unknown key 'template'.*did you mean 'templates'"):
        build_task(spec, TaskContext(data_dir=embed_data))


def test_core_imports_without_torchvision():
    """The core (CLI, runner, HF adapters) must not need torchvision; only the openclip extra does."""
    import subprocess
    import sys

    code = ("import sys; import mmbench.cli.main, mmbench.runner, mmbench.adapters.hf_clip, mmbench.tasks.retrieval;"
            "from mmbench.cli.main import build_parser; build_parser();"
            "print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
