"""Modality-collapse probes on hand-built models with known behaviour, and the determinism of shuffling."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

import probe_models
from mmbench.cli.main import main
from mmbench.results import RunResult
from mmbench.tasks.probe import derangement


@pytest.fixture(autouse=True)
def registered():
    probe_models.register()  # per test: conftest restores the registries after each one


@pytest.fixture(scope="module")
def probe_data(tmp_path_factory):
    import tiny_models

    root = tmp_path_factory.mktemp("probe-data")
    vqa, caps = [], []
    for i, (colour, shape) in enumerate((c, s) for c in tiny_models.COLOURS for s in tiny_models.SHAPES):
        for rep in range(2):
            name = f"img{i}-{rep}.png"
            tiny_models.draw(colour, shape, jitter=3 * rep).save(root / name)
            vqa.append({"id": f"c{i}-{rep}", "image": name, "image_id": name, "question": "what color is the shape?",
                        "answers": [colour] * 10, "answer_type": "other"})
            vqa.append({"id": f"s{i}-{rep}", "image": name, "image_id": name, "question": "is the shape a circle?",
                        "answers": ["yes" if shape == "circle" else "no"] * 10, "answer_type": "yes/no"})
            caps.append({"id": name, "image": name, "captions": [f"a {colour} {shape}", f"the {colour} {shape}"]})
    (root / "vqa.jsonl").write_text("\n".join(map(json.dumps, vqa)) + "\n")
    (root / "caps.jsonl").write_text("\n".join(map(json.dumps, caps)) + "\n")
    tasks = tmp_path_factory.mktemp("probe-tasks")
    (tasks / "v.yaml").write_text("task: pv\nkind: vqa\ndata: {format: jsonl, path: vqa.jsonl}\n")
    (tasks / "r.yaml").write_text("task: pr\nkind: retrieval\ndata: {format: jsonl, path: caps.jsonl}\n")
    return root, tasks


def probe(capsys, model, task, data, tasks, out):
    code = main(["run", "--model", model, "--tasks", f"probe:{task}", "--include-path", str(tasks),
                 "--data-dir", str(data), "--output-dir", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    result = RunResult.read(run_dir).results[0]
    return {m["name"]: m for m in result.metrics}, result, captured.out


def test_model_reading_only_the_image_uses_image_and_ignores_text(capsys, probe_data, tmp_path):
    data, tasks = probe_data
    m, result, out = probe(capsys, "image-only", "pv", data, tasks, tmp_path)
    assert m["vqa_accuracy[real]"]["value"] == pytest.approx(0.5)  # every colour question right, no shape question
    assert m["vqa_accuracy[blank]"]["value"] == 0.0 and m["vqa_accuracy[none]"]["value"] == 0.0
    assert m["relative_image_reliance"]["extra"]["verdict"] == "uses-image"
    lo, hi = m["relative_image_reliance"]["extra"]["ci95"]
    assert lo >= 0.25 and lo <= m["relative_image_reliance"]["value"] <= hi
    assert m["relative_text_reliance"]["extra"]["verdict"] == "collapsed"  # it ignores its text
    assert m["relative_text_reliance"]["value"] == 0.0
    assert m["answer_change_rate"]["value"] > 0.5
    assert "image verdict: uses-image" in out


def test_model_ignoring_its_image_is_collapsed(capsys, probe_data, tmp_path):
    data, tasks = probe_data
    m, result, _ = probe(capsys, "text-only", "pv", data, tasks, tmp_path)
    for cond in ("real", "blank", "noise", "shuffled", "none"):
        assert m[f"vqa_accuracy[{cond}]"]["value"] == m["vqa_accuracy[real]"]["value"]
    assert m["image_reliance"]["value"] == 0.0 and m["answer_change_rate"]["value"] == 0.0
    assert m["relative_image_reliance"]["extra"]["verdict"] == "collapsed"
    assert m["relative_text_reliance"]["extra"]["verdict"] in ("uses-text", "weak")
    assert m["relative_text_reliance"]["value"] > 0


def test_no_image_condition_skipped_when_the_model_needs_an_image(capsys, probe_data, tmp_path):
    data, tasks = probe_data
    m, result, _ = probe(capsys, "needs-image", "pv", data, tasks, tmp_path)
    assert "vqa_accuracy[none]" not in m and result.n_failed == 0
    assert any("condition none unavailable" in n for n in result.notes)
    assert m["relative_image_reliance"]["extra"]["verdict"] == "uses-image"


def test_embedding_probe(capsys, probe_data, tmp_path):
    data, tasks = probe_data
    m, result, _ = probe(capsys, "colour-encoder", "pr", data, tasks, tmp_path)
    # 6 images per colour tie, broken by index: 5 of each 6 reach the top 5
    assert m["t2i_R@5[real]"]["value"] == pytest.approx(5 / 6) and m["t2i_R@5[shuffled]"]["value"] < 0.5
    assert m["relative_image_reliance"]["extra"]["verdict"] == "uses-image"
    assert {"modality_gap", "alignment", "uniformity_image", "uniformity_text"} <= set(m)
    assert m["alignment"]["value"] == pytest.approx(0.0, abs=1e-9)  # captions embed exactly like their image


def test_shuffling_is_a_seeded_derangement():
    a, b = derangement(50, 7), derangement(50, 7)
    assert np.array_equal(a, b) and sorted(a) == list(range(50)) and not np.any(a == np.arange(50))
    assert not np.array_equal(a, derangement(50, 8))


def test_probe_aggregate_recomputes_reliance(capsys, probe_data, tmp_path):
    from mmbench.metrics.api import aggregator_for
    from mmbench.store import unpack_stats

    data, tasks = probe_data
    m, result, _ = probe(capsys, "image-only", "pv", data, tasks, tmp_path)
    run_dir = sorted(p for p in tmp_path.iterdir() if p.is_dir())[-1]
    ids, stats = unpack_stats((run_dir / result.files["item_stats"]).read_bytes())
    assert result.aggregator == "kind:probe"
    again = aggregator_for(result.aggregator)(stats)
    assert again["relative_image_reliance"] == pytest.approx(m["relative_image_reliance"]["value"], abs=1e-12)
    assert again["vqa_accuracy[shuffled]"] == pytest.approx(m["vqa_accuracy[shuffled]"]["value"], abs=1e-12)


def test_attention_measures_on_tiny_vlms(capsys, probe_data, tmp_path):
    """LLaVA-style models report the share of attention on image tokens, Idefics the gates' output size, BLIP-2
    the share on its query outputs and the queries' focus on patches."""
    import torch
    import tiny_vlms

    torch.set_num_threads(1)
    data, tasks = probe_data
    for family, make, measure in (("hf-llava", tiny_vlms.make_tiny_llava, "image_attention_share"),
                                  ("hf-idefics", tiny_vlms.make_tiny_idefics, "xattn_gate_ratio"),
                                  ("hf-blip2", tiny_vlms.make_tiny_blip2, "qformer_query_share")):
        folder = make(tmp_path / family)
        code = main(["run", "--model", family, "--model-args", f"pretrained={folder}", "--tasks", "probe:pv",
                     "--include-path", str(tasks), "--data-dir", str(data), "--output-dir", str(tmp_path / "o"),
                     "--no-progress", "--limit", "6"])
        assert code == 0, capsys.readouterr().err
        result = RunResult.read(sorted(p for p in (tmp_path / "o").iterdir() if p.is_dir())[-1]).results[0]
        values = {m["name"]: m["value"] for m in result.metrics}
        assert 0.0 < values[measure] < 1.0 + (measure == "xattn_gate_ratio") * 100
        assert "relative_image_reliance" in values
        assert ("qformer_patch_focus" in values) == (family == "hf-blip2")  # the queries' focus on patches too
        if family == "hf-blip2":
            assert 0.0 <= values["qformer_patch_focus"] <= 1.0
            assert "Q-Former" in next(m["variant"] for m in result.metrics if m["name"] == "qformer_patch_focus")


def test_leaderboard_shows_reliance_and_verdict(capsys, probe_data, tmp_path):
    data, tasks = probe_data
    store = tmp_path / "results.sqlite"
    for model in ("image-only", "text-only"):
        assert main(["run", "--model", model, "--tasks", "probe:pv", "--include-path", str(tasks), "--data-dir",
                     str(data), "--output-dir", str(tmp_path / "runs"), "--store", str(store), "--no-progress"]) == 0
    board = tmp_path / "board.yaml"
    board.write_text("leaderboard: probes\ncolumns:\n"
                     "  - {task: 'probe:pv', metric: image_reliance, label: 'Image reliance', scale: 100}\n"
                     "resamples: 200\n")
    capsys.readouterr()
    assert main(["leaderboard", str(board), "--store", str(store), "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert "Image reliance (image-only): verdict uses-image" in out
    assert "Image reliance (text-only): verdict collapsed" in out


def test_attention_reuses_the_greedy_generation_and_equals_a_fresh_one(tmp_path):
    """The probe measures attention on the text it already generated; the values equal regenerating it."""
    import tiny_models
    import tiny_vlms
    import torch

    from mmbench.adapters import load_model
    from mmbench.capabilities import GenerationConfig, GenerationRequest
    from mmbench.specs import ModelSpec

    torch.set_num_threads(1)
    adapter = load_model(ModelSpec("hf-llava", {"pretrained": str(tiny_vlms.make_tiny_llava(tmp_path / "m"))}))
    requests = [GenerationRequest(prompt=f"what color is it? {i}", images=(tiny_models.draw(c, "circle"),))
                for i, c in enumerate(list(tiny_models.COLOURS)[:3])]
    config = GenerationConfig(max_new_tokens=6)
    fresh = adapter.image_attention(adapter.prepare(requests, config), config)
    prepared = adapter.prepare(requests, config)
    generations = adapter.generate(prepared, config)  # its greedy token ids are part of its output
    calls = []
    original = adapter._generate_ids
    adapter._generate_ids = lambda *a: calls.append(1) or original(*a)
    reused = adapter.image_attention(prepared, config, token_ids=[g.token_ids for g in generations])
    assert reused == fresh and not calls  # no second generation, the input was not written to


def test_probe_reuses_the_wrapped_tasks_cached_answers_and_scores_as_if_it_generated_them(capsys, probe_data,
                                                                                           tmp_path):
    """Run after its wrapped task with the same cache, a probe takes that task's answers to the real inputs
    instead of generating them again (counted in its notes), still measures attention on them, and every value
    equals a probe that generated everything itself; a batch the cache only partly answers is generated."""
    import tiny_vlms
    import torch

    from mmbench.tasks.probe import REUSED

    torch.set_num_threads(1)
    data, tasks = probe_data
    folder = tiny_vlms.make_tiny_llava(tmp_path / "m")

    def run(task_list: str, out: str, *extra: str):
        code = main(["run", "--model", "hf-llava", "--model-args", f"pretrained={folder}", "--tasks", task_list,
                     "--include-path", str(tasks), "--data-dir", str(data), "--output-dir", str(tmp_path / out),
                     "--no-progress", "--batch-size", "4", *extra])
        assert code == 0, capsys.readouterr().err
        run_dir = sorted(p for p in (tmp_path / out).iterdir() if p.is_dir())[-1]
        result = next((r for r in RunResult.read(run_dir).results if r.task == "probe:pv"), None)
        if result is None:
            return None
        samples = [json.loads(x) for x in (run_dir / result.files["samples"]).read_text().splitlines()]
        return {m["name"]: m["value"] for m in result.metrics}, result.notes, samples

    fresh, fresh_notes, fresh_samples = run("probe:pv", "fresh", "--no-cache", "--limit", "8")
    reused, notes, samples = run("pv,probe:pv", "shared", "--limit", "8")
    assert f"{REUSED}: 8" in notes and not any(REUSED in n for n in fresh_notes)
    assert reused == fresh and 0.0 < reused["image_attention_share"] < 1.0
    assert [s.get("generation") for s in samples] == [s.get("generation") for s in fresh_samples]
    # the cache lacks one of the wrapped task's 8 answers: the batch of 4 without it is reused, the other generated
    run("pv", "partly", "--limit", "8")
    with sqlite3.connect(tmp_path / "partly" / "cache.sqlite") as conn:
        assert conn.execute("DELETE FROM outputs WHERE item_id = 'c0-0'").rowcount == 1
    partly, partly_notes, _ = run("probe:pv", "partly", "--limit", "8")
    assert f"{REUSED}: 4" in partly_notes and partly == fresh


def test_both_probes_are_wrapping_tasks_with_one_aggregator():
    """The two probe kinds share the wrapping base: its per-condition statistics and their aggregator."""
    from mmbench.metrics.api import aggregator_for
    from mmbench.tasks.probe import ModalityProbe
    from mmbench.tasks.probe_embedding import EmbeddingProbe
    from mmbench.tasks.wrapping import WrappingTask

    assert issubclass(ModalityProbe, WrappingTask) and issubclass(EmbeddingProbe, WrappingTask)
    assert aggregator_for("kind:probe") is aggregator_for("kind:embedding-probe") is WrappingTask.aggregate


def test_condition_statistics_aggregate_to_values_and_reliance():
    from mmbench.metrics import reliance as rel
    from mmbench.metrics.base import subset
    from mmbench.tasks.wrapping import aggregate, condition_stats

    real, blank, text = np.array([1.0, 1, 0, 1]), np.array([0.0, 1, 0, 0]), np.array([1.0, 0, 0, 1])
    per = {"real": {"exact_match": real}, "blank": {"exact_match": blank}, "text-shuffled": {"exact_match": text}}
    stats = condition_stats(per, aggregator="exact_match", metric="exact_match", higher_is_better=True, worst=0.0)
    out = aggregate(stats)
    assert out["exact_match[real]"] == 0.75 and out["exact_match[blank]"] == 0.25
    assert out["exact_match[text-shuffled]"] == 0.5
    assert out["image_reliance"] == pytest.approx(0.5) and out["relative_image_reliance"] == pytest.approx(2 / 3)
    assert aggregate(subset(stats, np.array([0, 0, 3])))["exact_match[blank]"] == 0.0  # resamples stay paired
    # lower is better (an error rate), speech conditions: reliance on the audio
    audio = condition_stats({"real": {"exact_match": np.array([0.0, 1.0])},
                             "silence": {"exact_match": np.array([1.0, 1.0])}},
                            aggregator="exact_match", metric="exact_match", higher_is_better=False, worst=1.0)
    assert aggregate(audio) == {"exact_match[real]": 0.5, "exact_match[silence]": 1.0, "audio_reliance": 0.5,
                                "relative_audio_reliance": 1.0}
    lo, hi, reps = rel.reliance_interval(per, aggregate_exact, "exact_match", ["blank"], 4, resamples=50, seed=0)
    assert lo <= hi and len(reps) == 50


def aggregate_exact(stats):
    return {"exact_match": float(np.mean(stats["exact_match"]))}
