"""The multiple-choice kind end to end with hand-built models: prompts as the protocol writes them,
CircularEval passes, scores identical at any batch size, the optional judge (in process and through an
openai-chat endpoint served by `mmbench serve`), cached judge replies, probes and MMStar's multi-modal gain."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import Image

from mmbench.adapters.base import Adapter
from mmbench.capabilities import Capability, Generation
from mmbench.registry import MODELS
from mmbench.results import RunResult
from probe_models import COLOURS, dominant_colour
from test_scale import needs_loopback

QUESTIONS = [  # (id, colour of the image, options, answer letter)
    ("q0", "red", ["red", "green", "blue", "yellow"], "A"),
    ("q1", "green", ["blue", "green", "red"], "B"),
    ("q2", "blue", ["yellow", "red", "green", "blue"], "D"),
    ("q3", "yellow", ["yellow", "green"], "A"),
]


class ColourPicker(Adapter):
    """Answers with the letter of the option naming the image's colour; in the prompts of ``verbose`` colours
    it writes the option's text instead ("It is blue"), which no letter rule reads; without an image it
    answers A."""

    capabilities: ClassVar[frozenset] = frozenset({Capability.GENERATE_TEXT})
    verbose: ClassVar[tuple] = ()

    def prepare(self, requests, config):
        return list(requests)

    def generate(self, prepared, config):
        out = []
        for r in prepared:
            colour = dominant_colour(r.images[0]) if r.images else None
            letter = next((line[0] for line in r.prompt.splitlines() if line.endswith(f". {colour}")), "A")
            out.append(Generation(f"I would say {colour}" if colour in self.verbose else letter, prompt_sent=r.prompt))
        return out


class Judge(Adapter):
    """A judge: the letter of the option whose text the graded answer contains (Z when none); counts calls."""

    capabilities: ClassVar[frozenset] = frozenset({Capability.GENERATE_TEXT})
    calls: ClassVar[list] = []

    def prepare(self, requests, config):
        return list(requests)

    def generate(self, prepared, config):
        out = []
        for r in prepared:
            Judge.calls.append(r.prompt)
            item = r.prompt.rsplit("Question: ", 1)[1]
            answer = item.split("\nAnswer: ", 1)[1].split("\n")[0]
            options = [line for line in item.split("\n") if len(line) > 3 and line[1:3] == ". "]
            found = [line[0] for line in options if line[3:] in answer]
            out.append(Generation(found[0] if len(found) == 1 else "Z", prompt_sent=r.prompt))
        return out


@pytest.fixture
def mc_task(tmp_path):
    rows = []
    for qid, colour, options, answer in QUESTIONS:
        Image.new("RGB", (16, 16), COLOURS[colour]).save(tmp_path / f"{qid}.png")
        rows.append({"id": qid, "image": f"{qid}.png", "question": "Which colour fills the image?",
                     "options": options, "answer": answer, "hint": "Look at the pixels." if qid == "q0" else "",
                     "category": "warm" if colour in ("red", "yellow") else "cold"})
    (tmp_path / "mc.jsonl").write_text("\n".join(json.dumps(r) for r in rows))

    def write(**config) -> Path:
        spec = {"task": "tiny-mc", "kind": "multiple-choice", "circular": True,
                "metrics": [{"name": "mc_accuracy", "rule": "vlmevalkit", "by": ["category"]}],
                "data": {"format": "jsonl", "path": str(tmp_path / "mc.jsonl")}, **config}
        path = tmp_path / "tiny-mc.yaml"
        path.write_text(json.dumps(spec))
        return path

    return write


@pytest.fixture(autouse=True)
def models():
    ColourPicker.verbose = ()
    Judge.calls = []
    MODELS.register("colour-picker", ColourPicker)
    MODELS.register("judge", Judge)
    yield


def run(cli, task: Path, out: Path, *extra: str, model: str = "colour-picker"):
    code, _, err = cli("run", "--model", model, "--tasks", str(task), "--output-dir", str(out), "--no-progress",
                       *extra)
    assert code == 0, err
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    result = RunResult.read(run_dir).results[0]
    samples = [json.loads(line) for line in (run_dir / result.files["samples"]).read_text().splitlines()]
    return {m["name"]: m["value"] for m in result.metrics}, {s["id"]: s for s in samples}, result


def test_circular_passes_prompts_and_batch_size_invariance(cli, mc_task, tmp_path):
    task = mc_task()
    values, samples, result = run(cli, task, tmp_path / "b1", "--batch-size", "1", "--no-cache")
    assert values["mc_accuracy"] == 1.0 and values["mc_unparseable_rate"] == 0.0
    q0 = samples["q0"]["passes"]
    assert len(q0) == 4 and len(samples["q3"]["passes"]) == 2  # k passes for k options
    assert q0[0]["prompt_sent"] == ("Look at the pixels.\nWhich colour fills the image?\nA. red\nB. green\nC. blue\n"
                                   "D. yellow\nAnswer with the option's letter from the given choices directly.")
    assert "A. green\nB. blue\nC. yellow\nD. red" in q0[1]["prompt_sent"]  # rotated one place
    assert samples["q0"]["choice"] == ["A", "D", "C", "B"] and samples["q0"]["reference"] == "A"
    again, _, _ = run(cli, task, tmp_path / "b3", "--batch-size", "3", "--no-cache")
    assert again == values
    # a verbose answer is read through the option's text (VLMEvalKit's can_infer_text)
    ColourPicker.verbose = ("blue",)
    values, samples, _ = run(cli, task, tmp_path / "verbose", "--no-cache")
    assert samples["q2"]["read_by"] == ["option text"] * 4 and values["mc_accuracy"] == 1.0


def test_the_judge_reads_only_what_the_rule_cannot_and_its_replies_are_cached(cli, mc_task, tmp_path):
    ColourPicker.verbose = ("green",)  # "I would say green": no letter, and "green" matches no option text
    task = mc_task(judge={"model": "judge"}, metrics=[{"name": "mc_accuracy", "rule": "letter"}])
    values, samples, result = run(cli, task, tmp_path / "out")
    assert len(Judge.calls) == 3 and values["mc_accuracy"] == 1.0  # q1's three passes, each read by the judge
    p = samples["q1"]["passes"][0]
    assert p["judge"] == "B" and p["judge_reply"] == "B" and "Answer: I would say green" in p["judge_prompt"]
    assert samples["q1"]["read_by"] == ["judge"] * 3 and any("read by the judge" in n for n in result.notes)
    Judge.calls = []
    again, _, _ = run(cli, task, tmp_path / "out")  # resumed from the cache: no judge call
    assert again == values and Judge.calls == []
    # without the judge the same answers are unparseable and the question fails
    values, _, _ = run(cli, mc_task(metrics=[{"name": "mc_accuracy", "rule": "letter"}]), tmp_path / "nojudge")
    assert values["mc_accuracy"] == 0.75 and values["mc_unparseable_rate"] == 0.25


@needs_loopback
def test_an_openai_compatible_endpoint_can_judge(cli, mc_task, tmp_path):
    from mmbench.adapters import load_model
    from mmbench.serve import ServeOptions, make_server
    from mmbench.specs import ModelSpec

    srv = make_server(load_model(ModelSpec("judge")), ServeOptions(port=0), "judge-model")
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        ColourPicker.verbose = ("green",)
        url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
        task = mc_task(judge={"model": "openai-chat", "args": {"base_url": url, "model": "judge-model"}},
                       metrics=[{"name": "mc_accuracy", "rule": "letter"}])
        values, samples, result = run(cli, task, tmp_path / "out")
        assert values["mc_accuracy"] == 1.0 and samples["q1"]["read_by"] == ["judge"] * 3
        assert result.task_info["config"]["judge"]["model"] == "openai-chat"
    finally:
        srv.shutdown()
        srv.server_close()
        srv.worker.stop()


def test_a_judge_that_cannot_generate_text_is_refused(cli, mc_task, tmp_path):
    code, _, err = cli("run", "--model", "colour-picker", "--tasks", str(mc_task(judge={"model": "mini-clip"})),
                       "--output-dir", str(tmp_path), "--no-progress")
    assert code == 2 and "does not generate text" in err and len(err.strip().splitlines()) == 1


def test_probe_of_a_multiple_choice_task_reports_the_multimodal_gain(cli, mc_task, tmp_path):
    task = mc_task(task="tiny-mc")
    code, _, err = cli("run", "--model", "colour-picker", "--tasks", "probe:tiny-mc", "--include-path",
                       str(task.parent), "--output-dir", str(tmp_path / "out"), "--no-progress", "--no-cache")
    assert code == 0, err
    result = RunResult.read(sorted(p for p in (tmp_path / "out").iterdir() if p.is_dir())[-1]).results[0]
    v = {m["name"]: m["value"] for m in result.metrics}
    # without an image the picker answers A: right only where every pass's answer is A (never, circularly)
    assert v["mc_accuracy[real]"] == 1.0 and v["mc_accuracy[none]"] == 0.0
    assert v["multimodal_gain"] == 1.0 and v["image_reliance"] >= 0.75


class AlwaysB(ColourPicker):
    """A text-only 'base LLM': answers B whatever it is asked."""

    def generate(self, prepared, config):
        return [Generation("B", prompt_sent=r.prompt) for r in prepared]


def test_a_probe_file_with_a_base_llm_reports_mmstar_gain_and_leakage(cli, mc_task, tmp_path):
    MODELS.register("always-b", AlwaysB)
    task = mc_task(task="tiny-mc", circular=False)
    probe = tmp_path / "tiny-mc-mmstar.yaml"
    probe.write_text(json.dumps({"task": "tiny-mc-mmstar", "kind": "probe", "wraps": "tiny-mc",
                                 "conditions": ["real", "none"], "llm_base": {"model": "always-b"}}))
    code, _, err = cli("run", "--model", "colour-picker", "--tasks", str(probe), "--include-path", str(task.parent),
                       "--output-dir", str(tmp_path / "out"), "--no-progress", "--no-cache")
    assert code == 0, err
    result = RunResult.read(sorted(p for p in (tmp_path / "out").iterdir() if p.is_dir())[-1]).results[0]
    v = {m["name"]: m["value"] for m in result.metrics}
    # S_v = 1 (the image), S_wv = 0.5 (no image: always A; q0 and q3 are A), S_t = 0.25 (the base LLM: B, q1)
    assert (v["mc_accuracy[real]"], v["mc_accuracy[none]"], v["mc_accuracy[llm-base]"]) == (1.0, 0.5, 0.25)
    assert v["multimodal_gain"] == 0.5 and v["multimodal_leakage"] == 0.25
    assert "image_reliance" in v and v["image_reliance"] == 0.5  # the base LLM is not an ablation of the model
    from mmbench.store import unpack_stats
    from mmbench.tasks.wrapping import aggregate  # the values come back from the statistics (bootstrap)

    run_dir = sorted(p for p in (tmp_path / "out").iterdir() if p.is_dir())[-1]
    _, stats = unpack_stats((run_dir / result.files["item_stats"]).read_bytes())
    again = aggregate(stats)
    assert again["multimodal_gain"] == 0.5 and again["multimodal_leakage"] == 0.25
