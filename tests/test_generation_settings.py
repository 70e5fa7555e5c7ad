"""Decoding settings have one definition (GenerationConfig / DecodingSettings in mmbench.capabilities) and
per-run overrides one spec operation (TaskSpec.with_overrides): fast checks, no model runs."""

from __future__ import annotations

import dataclasses

import pytest

from mmbench.capabilities import DecodingSettings, GenerationConfig, SettingError
from mmbench.cli.main import main
from mmbench.errors import MMBenchError
from mmbench.serve import RequestError, parse_config
from mmbench.specs import TaskSpec
from mmbench.tasks.base import TaskContext
from mmbench.tasks.captioning import CaptioningConfig
from mmbench.tasks.catalog import build_task
from mmbench.tasks.generative import GENERATION_KEYS, GenerativeConfig
from mmbench.tasks.catalog import probe_spec
from mmbench.tasks.vqa import VQAConfig

DATA = {"format": "jsonl", "path": "unused.jsonl"}  # never read: the settings fail first
USER = [{"role": "user", "content": "hi"}]


def test_the_settings_are_defined_once():
    names = [f.name for f in dataclasses.fields(GenerationConfig)]
    assert GENERATION_KEYS == tuple(n for n in names if n != "seed") == DecodingSettings.keys()
    assert issubclass(GenerativeConfig, DecodingSettings) and issubclass(GenerationConfig, DecodingSettings)
    assert set(GenerationConfig.descriptions()) == set(names)  # every setting says what it is
    # the kinds keep their defaults; the rest are the one definition's
    assert VQAConfig().max_new_tokens == 16 and CaptioningConfig().max_new_tokens == 32
    for key in GENERATION_KEYS:
        if key != "max_new_tokens":
            assert getattr(VQAConfig(), key) == getattr(GenerationConfig(), key)


def test_a_task_generates_with_its_settings_and_the_run_seed():
    task = build_task(TaskSpec("t", "vqa", {"data": DATA, "temperature": 1, "do_sample": True, "stop": "\n"}),
                      TaskContext(seed=7))
    assert task.generation_config() == GenerationConfig(max_new_tokens=16, do_sample=True, temperature=1.0,
                                                        stop=("\n",), seed=7)


# The same bad value, refused by the same check with the same words, wherever it comes from: a task file, the
# command line, a serve request (which spells max_new_tokens max_tokens).
BAD = [("top_p", 1.5, "top_p must be in (0, 1], got 1.5"),
       ("top_p", -0.25, "top_p must be in (0, 1], got -0.25"),
       ("stop", ["", "x"], "stop strings must be non-empty"),
       ("max_new_tokens", 0, "max_new_tokens must be >= 1, got 0")]


@pytest.mark.parametrize("key,value,reason", BAD)
def test_one_validation_for_task_files_the_command_line_and_serve(capsys, key, value, reason):
    with pytest.raises(SettingError) as info:
        build_task(TaskSpec("t", "vqa", {"data": DATA, key: value}), TaskContext())
    assert str(info.value) == f"task 't': {reason}"

    text = f"\"{value}\"" if isinstance(value, list) else value  # a quoted YAML list: stop="['', 'x']"
    code = main(["run", "--model", "image-only", "--tasks", "mini-vqa", "--gen-kwargs", f"{key}={text}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.endswith(f"--gen-kwargs: {reason}") and len(err.splitlines()) == 1, err
    with pytest.raises(SettingError) as parsed:
        DecodingSettings.parse({key: value}, "--gen-kwargs")
    assert str(parsed.value) == f"--gen-kwargs: {reason}"

    param = "max_tokens" if key == "max_new_tokens" else key
    for sampling in ({}, {"temperature": 0.7}):  # greedy requests are checked before they are normalised
        with pytest.raises(RequestError) as served:
            parse_config({"messages": USER, param: value, **sampling})
        assert served.value.message == reason.replace("max_new_tokens", "max_tokens") and served.value.param == param


@pytest.mark.parametrize("config", [
    GenerationConfig(),
    GenerationConfig(max_new_tokens=12, stop=("\n", "###")),
    GenerationConfig(max_new_tokens=5, do_sample=True, temperature=0.7, top_p=0.9, seed=11),
    GenerationConfig(do_sample=True, temperature=2.0, top_p=1.0, seed=-3, stop=("x",)),
])
def test_openai_parameters_round_trip(config):
    body = config.to_openai()
    assert body["max_tokens"] == config.max_new_tokens and ("top_p" in body) == config.do_sample
    assert body["temperature"] == (config.temperature if config.do_sample else 0.0)
    assert GenerationConfig.from_openai(body) == config
    assert parse_config({"messages": USER, **body})[0] == config  # what serve reads is what the client sent


def test_openai_parameters_as_serve_reads_them():
    greedy = GenerationConfig.from_openai({"max_completion_tokens": 5, "top_p": 0.3, "seed": 9})
    assert greedy == GenerationConfig(max_new_tokens=5)  # greedy ignores top_p and the seed: normalised
    assert GenerationConfig.from_openai({"temperature": 0.5, "top_p": 0}).do_sample is False  # top-1: greedy
    defaults = GenerationConfig(max_new_tokens=256)
    assert GenerationConfig.from_openai({}, defaults) == defaults
    assert GenerationConfig.from_openai({"stop": "ab"}).stop == ("ab",)  # one string, not its characters
    # a greedy config sends its seed, which greedy decoding does not use: it comes back as 0
    assert GenerationConfig.from_openai(GenerationConfig(seed=4).to_openai()) == GenerationConfig()
    with pytest.raises(SettingError, match="disagree"):
        GenerationConfig.from_openai({"max_tokens": 3, "max_completion_tokens": 4})
    with pytest.raises(SettingError, match="over this server's limit of 10"):
        GenerationConfig.from_openai({"max_tokens": 11}, max_tokens_limit=10)


def test_the_openai_chat_body_carries_the_config():
    from mmbench.adapters.openai_api import OpenAIChat

    class Chat(OpenAIChat):
        def __init__(self):  # no connection: only the body is built
            self.served_model = "m"

    sampled = GenerationConfig(max_new_tokens=4, do_sample=True, temperature=0.5, top_p=0.8, seed=2, stop=("x",))
    assert Chat().body(USER, sampled) == {"model": "m", "messages": USER, "n": 1, "max_tokens": 4, "seed": 2,
                                          "temperature": 0.5, "top_p": 0.8, "stop": ["x"]}
    assert Chat().body(USER, GenerationConfig(max_new_tokens=4)) == {"model": "m", "messages": USER, "n": 1,
                                                                     "max_tokens": 4, "seed": 0, "temperature": 0.0}


# -- the spec operation -----------------------------------------------------------------------------------

VQA = TaskSpec("v", "vqa", {"data": DATA, "max_new_tokens": 16, "prompt_overrides": {"blip-2": "Question: {question}"}})
SETTINGS = {"max_new_tokens": 3, "num_beams": 2, "system": "Be brief.", "prompt": "Q: {question} A:"}


def test_overrides_replace_the_task_files_settings_and_its_per_model_prompts():
    spec = VQA.with_overrides(SETTINGS)
    assert spec.config == {"data": DATA, "max_new_tokens": 3, "num_beams": 2, "system": "Be brief.",
                           "prompt": "Q: {question} A:"}
    assert "prompt_overrides" in VQA.with_overrides({"max_new_tokens": 3}).config  # kept without a prompt
    assert VQA.with_overrides({}) is VQA


def test_a_probes_wrapped_task_gets_the_overrides():
    probe = probe_spec(VQA)
    spec = probe.with_overrides(SETTINGS)
    assert spec.kind == "probe" and spec.name == probe.name
    inner = spec.config["wraps"]
    assert inner["config"]["max_new_tokens"] == 3 and inner["config"]["prompt"] == "Q: {question} A:"
    assert "prompt_overrides" not in inner["config"]
    assert {k: v for k, v in spec.config.items() if k != "wraps"} == {k: v for k, v in probe.config.items()
                                                                     if k != "wraps"}
    task = build_task(spec, TaskContext())
    assert task.inner.generation_config().max_new_tokens == 3 and task.inner.config.system == "Be brief."


def test_kinds_without_decoding_settings_are_untouched():
    retrieval = TaskSpec("r", "retrieval", {"data": DATA, "captions_per_image": 5})
    assert retrieval.with_overrides(SETTINGS) is retrieval
    asr = TaskSpec("s", "asr", {"data": DATA})
    assert asr.with_overrides(SETTINGS) is asr
    # text-to-image has a `prompt` key of its own, but no decoding settings: --prompt is not its prompt
    t2i = TaskSpec("g", "text-to-image", {"data": DATA, "prompt": "{caption}"})
    assert t2i.with_overrides({"prompt": "Q: {question}"}) is t2i
    probe = probe_spec(retrieval)
    assert probe.kind == "embedding-probe"
    assert probe.with_overrides(SETTINGS).config["wraps"]["config"] == retrieval.config


def test_an_unknown_setting_lists_the_accepted_ones(capsys):
    with pytest.raises(MMBenchError) as info:
        VQA.with_overrides({"max_tokens": 3})
    assert str(info.value) == ("run overrides: unknown setting 'max_tokens'; accepted: max_new_tokens, do_sample, "
                               "temperature, top_p, num_beams, stop, system, prompt")
    code = main(["run", "--model", "image-only", "--tasks", "mini-vqa", "--gen-kwargs", "tempature=0.5"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert ("--gen-kwargs: unknown setting 'tempature' (did you mean 'temperature'?); accepted: max_new_tokens, "
            "do_sample, temperature, top_p, num_beams, stop") in err
    with pytest.raises(MMBenchError, match="setting 'num_beams' must be an integer, got 'two'"):
        VQA.with_overrides({"num_beams": "two"})
