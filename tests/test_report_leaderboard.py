"""Leaderboards from a store of realistic results: selection, cells with intervals, marks, every format, plots.

The fixture store holds results made by the real metric code (classification and retrieval scorers, VQA item
accuracy, jiwer-based WER statistics, caption statistics shaped as the caption scorer stores them), written
the way the runner writes them (run folders with results.json, item statistics and samples, plus the SQLite
store). The builders below are also used by the compare and browser tests.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmbench.errors import MMBenchError
from mmbench.metrics import classification, retrieval, wer
from mmbench.metrics.base import MetricValue
from mmbench.metrics.captions import aggregate as captions_aggregate
from mmbench.metrics.vqa import vqa_item_accuracy
from mmbench.report import plots
from mmbench.report.html import to_html
from mmbench.report.leaderboard import build_leaderboard, load_definition, parse_definition
from mmbench.report.render import latex_escape, to_csv, to_json, to_latex, to_markdown
from mmbench.report.select import metrics_frame, open_store, results_frame, run_records
from mmbench.results import PeakMemory, RunResult, TaskResult, Throughput
from mmbench.store import Store, pack_stats

XSS = "<script>window.__pwned = 1; alert(1)</script>"
EVIL_MODEL = 'vlm-<b>"x"</b>'

# ------------------------------------------------------------------------------------------------ builders


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def make_result(model: str, task: str, kind: str, metrics: list[MetricValue], aggregator: str, *,
                items_per_s: float = 100.0, peak_bytes: int = 300 * 2**20, data_fp: str = "data-1",
                curve: dict | None = None, created_at: str = "2026-03-01T00:00:00+00:00") -> TaskResult:
    config = {"task": task, "kind": kind, **({"curve": curve} if curve else {})}
    return TaskResult(
        model=model, task=task, kind=kind, metrics=[m.to_dict() for m in metrics], n_items=0, n_failed=0,
        n_cached=0, throughput=Throughput(items_per_s, "wall time (test fixture)", 1.0), wall_time_s=1.0,
        peak_memory=PeakMemory(peak_bytes, "process_rss_peak"), model_info={}, task_info={
            "config": config, "data": {"fingerprint": data_fp, "is_subset": False}},
        model_fingerprint=f"m-{model}", task_fingerprint=f"t-{task}", data_fingerprint=data_fp,
        aggregator=aggregator, created_at=created_at)


def write_run(root: Path, store: Store | None, run_id: str, entries: list, *, created_at: str,
              tags: tuple[str, ...] = (), status: str = "complete") -> Path:
    """A run folder as the runner writes it (+ the store rows). ``entries``: (TaskResult, item_ids, stats,
    samples) tuples."""
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    run = RunResult(run_id=run_id, created_at=created_at, mmbench_version="test", git_revision=None,
                    command=["mmbench", "run"], seed=0, options={}, environment={}, status=status)
    for result, ids, stats, samples in entries:
        result.created_at = created_at
        result.n_items = len(ids)
        out = run_dir / _slug(result.model)
        out.mkdir(exist_ok=True)
        (out / f"item_stats_{_slug(result.task)}.npz").write_bytes(pack_stats(ids, stats))
        with open(out / f"samples_{_slug(result.task)}.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in samples)
        result.files = {"samples": f"{_slug(result.model)}/samples_{_slug(result.task)}.jsonl",
                        "item_stats": f"{_slug(result.model)}/item_stats_{_slug(result.task)}.npz"}
        run.results.append(result)
    run.write(run_dir / "results.json")
    if store is not None:
        store.save_run(run, run_dir, tags)
        for result, ids, stats, _ in entries:
            store.add_result(run_id, result, ids, stats)
    return run_dir


def sim_classification(correct: np.ndarray, labels: np.ndarray, n_classes: int, seed: int):
    """Logits whose top-1 is right exactly where ``correct`` says, scored by the real classification code."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(labels), n_classes))
    wrong = (labels + 1 + rng.integers(0, n_classes - 1, len(labels))) % n_classes
    target = np.where(correct, labels, wrong)
    logits[np.arange(len(labels)), target] = logits.max(axis=1) + 1.0
    return classification.score(logits, labels, variant="test prompts")


def classification_entry(model: str, correct: np.ndarray, labels: np.ndarray, *, seed: int, task: str = "zs",
                         **kw):
    metrics, extra = sim_classification(correct, labels, 10, seed)
    ids = [f"img{i:04d}" for i in range(len(labels))]
    return make_result(model, task, "zeroshot-classification", metrics, "classification", **kw), ids, \
        extra["stats"], [{"id": i, "label": int(y)} for i, y in zip(ids[:3], labels)]


def retrieval_entry(model: str, noise: float, *, seed: int, n_images: int = 120, **kw):
    rng = np.random.default_rng(100)  # the same images and captions for every model
    img = rng.normal(size=(n_images, 16))
    t2i = np.repeat(np.arange(n_images), 2)
    txt = img[t2i] + np.random.default_rng(seed).normal(scale=noise, size=(len(t2i), 16))
    metrics, extra = retrieval.score(img, txt, t2i, variant="test")
    ids = [f"im{i:04d}" for i in range(n_images)]
    return make_result(model, "ret", "retrieval", metrics, "recall_at_k", **kw), ids, extra["stats"], []


VQA_ANSWERS = ["red", "blue", "green", "two", "three", "circle", "square"]


def vqa_entry(model: str, skill: float, *, seed: int, n: int = 200, **kw):
    rng = np.random.default_rng(7)  # the same questions for every model
    truth = rng.integers(0, len(VQA_ANSWERS), n)
    refs = [[VQA_ANSWERS[t]] * 8 + [VQA_ANSWERS[(t + 1) % len(VQA_ANSWERS)]] * 2 for t in truth]
    model_rng = np.random.default_rng(seed)
    preds = [VQA_ANSWERS[t] if model_rng.random() < skill else VQA_ANSWERS[(t + 1) % len(VQA_ANSWERS)]
             if model_rng.random() < 0.5 else "purple" for t in truth]
    acc = np.array([vqa_item_accuracy(p, r) for p, r in zip(preds, refs)])
    ids = [f"q{i:04d}" for i in range(n)]
    metrics = [MetricValue("vqa_accuracy", float(acc.mean()), f"VQAv2 accuracy over {n} questions")]
    samples = [{"id": i, "question": "what colour?", "generation": p, "references": r}
               for i, p, r in zip(ids[:3], preds, refs)]
    return make_result(model, "vqa", "vqa", metrics, "vqa_accuracy", **kw), ids, {"vqa_accuracy": acc}, samples


def captions_entry(model: str, quality: float, *, seed: int, n: int = 150, generation: str = "a red circle",
                   **kw):
    """Per-image statistics shaped as CaptionScorer stores them; METEOR reported as a corpus score that
    differs from the mean of segment scores (as the real scorer's does)."""
    rng = np.random.default_rng(seed)
    testlen = rng.integers(6, 12, n)
    guess = np.stack([np.maximum(testlen - k, 0) for k in range(4)], axis=1)
    correct = np.floor(guess * np.clip(quality + rng.normal(0, 0.15, (n, 1)), 0, 1)).astype(np.int64)
    stats = {"bleu_correct": correct, "bleu_guess": guess, "bleu_testlen": testlen,
             "bleu_reflen": testlen + rng.integers(-1, 2, n),
             "METEOR": np.clip(quality * 0.5 + rng.normal(0, 0.05, n), 0, 1),
             "ROUGE_L": np.clip(quality + rng.normal(0, 0.1, n), 0, 1),
             "CIDEr-D": np.clip(quality * 2 + rng.normal(0, 0.4, n), 0, None)}
    values = captions_aggregate(stats)
    metrics = [MetricValue(k, float(values[k]), f"test {k}") for k in ("Bleu_4", "ROUGE_L", "CIDEr-D")]
    metrics.append(MetricValue("METEOR", float(values["METEOR"]) + 0.01, "corpus METEOR (test)"))
    metrics.append(MetricValue("SPICE", None, "SPICE", unavailable="SPICE unavailable: no CoreNLP jars"))
    ids = [f"c{i:04d}" for i in range(n)]
    samples = [{"id": ids[0], "prompt_sent": "Describe the image.", "generation": generation},
               {"id": ids[1], "prompt_sent": "Describe the image.", "generation": "two squares"}]
    return make_result(model, "cap", "captioning", metrics, "coco_captions", **kw), ids, stats, samples


SENTENCES = ["the cat sat on the mat", "a red circle left of a blue square", "two green triangles",
             "turn the light off please", "what time is it now"]


def wer_entry(model: str, snr: int, error_rate: float, *, seed: int, n: int = 60, **kw):
    rng = np.random.default_rng(seed + snr)
    refs = [SENTENCES[i % len(SENTENCES)] for i in range(n)]
    hyps = [" ".join(w if rng.random() > error_rate else "uh" for w in r.split()) for r in refs]
    stats = wer.item_stats(hyps, refs)
    values = wer.aggregate(stats)
    metrics = [MetricValue("wer", values["wer"], "corpus WER (test)", higher_is_better=False)]
    ids = [f"u{i:03d}" for i in range(n)]
    return make_result(model, f"asr-snr{snr}", "asr", metrics, "wer", data_fp=f"asr-{snr}",
                       curve={"name": "noise", "x": snr, "x_label": "SNR (dB)"}, **kw), ids, stats, []


def build_fixture_store(root: Path) -> tuple[Path, Path]:
    """A store with two runs of embedding models (old and new), a VLM run, an ASR run; returns (store, runs)."""
    runs = root / "runs"
    store = Store(root / "results.sqlite")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400)
    u = rng.random(400)
    old = [classification_entry("clip-a", u < 0.40, labels, seed=1),
           retrieval_entry("clip-a", 3.0, seed=1)]
    write_run(runs, store, "20260101-000000-aaaaaa", old, created_at="2026-01-01T00:00:00+00:00")
    new = [classification_entry("clip-a", u < 0.80, labels, seed=1, items_per_s=900.0),
           retrieval_entry("clip-a", 1.0, seed=1, items_per_s=1200.0),
           classification_entry("clip-b", u < 0.60, labels, seed=2, items_per_s=3000.0, peak_bytes=150 * 2**20),
           retrieval_entry("clip-b", 2.0, seed=2, items_per_s=3500.0, peak_bytes=150 * 2**20)]
    write_run(runs, store, "20260201-000000-bbbbbb", new, created_at="2026-02-01T00:00:00+00:00",
              tags=("nightly",))
    vlms = [vqa_entry("vlm-a", 0.85, seed=3, items_per_s=20.0, peak_bytes=2 * 2**30),
            captions_entry("vlm-a", 0.7, seed=3, items_per_s=15.0, peak_bytes=2 * 2**30),
            vqa_entry(EVIL_MODEL, 0.5, seed=4, items_per_s=25.0),
            captions_entry(EVIL_MODEL, 0.5, seed=4, generation=XSS),
            vqa_entry("vlm-blind", 0.3, seed=5, items_per_s=40.0),
            captions_entry("vlm-blind", 0.2, seed=5, items_per_s=40.0)]
    write_run(runs, store, "20260202-000000-cccccc", vlms, created_at="2026-02-02T00:00:00+00:00")
    asr = [wer_entry(m, snr, rate + 0.25 * (20 - snr) / 20, seed=s)
           for m, rate, s in (("asr-a", 0.05, 6), ("asr-b", 0.15, 7)) for snr in (0, 10, 20)]
    write_run(runs, store, "20260203-000000-dddddd", asr, created_at="2026-02-03T00:00:00+00:00")
    store.close()
    return root / "results.sqlite", runs


DEFINITION = """
leaderboard: fixture
title: Fixture board
description: Results from the test fixture.
columns:
  - {task: zs, metric: top1, label: "Top-1", scale: 100}
  - {task: ret, metric: t2i_R@5, label: "T2I R@5", scale: 100}
  - {task: ret, metric: i2t_R@5, label: "I2T R@5", scale: 100}
  - {task: vqa, metric: vqa_accuracy, label: "VQA", scale: 100}
  - {task: cap, metric: CIDEr-D, label: "CIDEr-D", scale: 100}
  - {task: cap, metric: METEOR, label: "METEOR", scale: 100}
  - {task: cap, metric: SPICE, label: "SPICE"}
  - {task: asr-snr20, metric: wer, label: "WER (20 dB)", scale: 100}
baseline: vlm-blind
average: {label: "Embedding mean", columns: ["Top-1", "T2I R@5", "I2T R@5"]}
curves: [{name: noise, y: wer, label: "WER vs SNR"}]
digits: 1
resamples: 300
samples: 2
"""


@pytest.fixture(scope="session")
def fixture_store(tmp_path_factory) -> tuple[Path, Path]:
    return build_fixture_store(tmp_path_factory.mktemp("report-store"))


@pytest.fixture(scope="session")
def definition_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("boards") / "fixture.yaml"
    path.write_text(DEFINITION)
    return path


@pytest.fixture(scope="session")
def board(fixture_store, definition_file):
    store = open_store(fixture_store[0])
    try:
        return build_leaderboard(load_definition(str(definition_file)), store)
    finally:
        store.close()


# ------------------------------------------------------------------------------------------------ selection

def test_select_latest_per_model_task_and_filters(fixture_store):
    store = open_store(fixture_store[0])
    try:
        everything = results_frame(store, latest=False)
        assert len(everything) == 2 + 4 + 6 + 6
        latest = results_frame(store)
        assert len(latest) == 4 + 6 + 6
        clip_a = latest[(latest["model"] == "clip-a") & (latest["task"] == "zs")].iloc[0]
        assert clip_a["run_id"] == "20260201-000000-bbbbbb"  # the newer of its two runs
        assert list(results_frame(store, tags="nightly")["model"].unique()) == ["clip-a", "clip-b"]
        older = results_frame(store, until="2026-01-15")
        assert list(older["run_id"].unique()) == ["20260101-000000-aaaaaa"]
        assert set(results_frame(store, since="2026-02-02")["task"]) == {"vqa", "cap", "asr-snr0", "asr-snr10",
                                                                          "asr-snr20"}
        assert results_frame(store, models=["nobody"]).empty
        curves = results_frame(store, tasks="asr-snr10")["curve"]
        assert all(c == {"name": "noise", "x": 10, "x_label": "SNR (dB)"} for c in curves)
        m = metrics_frame(store, models="clip-a", tasks="zs")
        top1 = m[m["metric"] == "top1"].iloc[0]
        rng = np.random.default_rng(0)
        rng.integers(0, 10, 400)
        assert top1["value"] == pytest.approx(np.mean(rng.random(400) < 0.8))  # as planted in the fixture
        assert bool(top1["higher_is_better"]) is True
        assert "top-1 accuracy over 400 items; test prompts" == top1["variant"]
        with pytest.raises(MMBenchError, match="--since"):
            results_frame(store, since="last tuesday")
    finally:
        store.close()


def test_open_store_refuses_a_missing_file(tmp_path):
    with pytest.raises(MMBenchError, match="no results store"):
        open_store(tmp_path / "nothing.sqlite")
    assert not (tmp_path / "nothing.sqlite").exists()


def test_run_records_from_folder_id_prefix_and_model(fixture_store):
    store_path, runs = fixture_store
    from_dir = run_records(runs / "20260202-000000-cccccc")
    from_id = run_records("20260202", store_path)
    assert sorted((r.model, r.task) for r in from_dir) == sorted((r.model, r.task) for r in from_id)
    assert len(from_dir) == 6
    a = next(r for r in from_dir if r.model == "vlm-a" and r.task == "vqa")
    b = next(r for r in from_id if r.model == "vlm-a" and r.task == "vqa")
    assert a.item_ids == b.item_ids and np.array_equal(a.stats["vqa_accuracy"], b.stats["vqa_accuracy"])
    latest = run_records("model:clip-a", store_path)
    assert {r.run_id for r in latest} == {"20260201-000000-bbbbbb"}
    with pytest.raises(MMBenchError, match="matches 4 runs"):
        run_records("2026", store_path)
    with pytest.raises(MMBenchError, match="neither a run folder nor a run id"):
        run_records("nope", store_path)


# ------------------------------------------------------------------------------------------------ definitions

def test_definition_errors_name_the_key():
    with pytest.raises(MMBenchError, match="unknown key 'colums'"):
        parse_definition({"colums": []}, "x")
    with pytest.raises(MMBenchError, match="column 1 needs"):
        parse_definition({"columns": [{"task": "zs"}]}, "x")
    with pytest.raises(MMBenchError, match="labelled 'a'"):
        parse_definition({"columns": [{"task": "t", "metric": "m", "label": "a"},
                                      {"task": "u", "metric": "m", "label": "a"}]}, "x")
    with pytest.raises(MMBenchError, match="average column 'zz'"):
        parse_definition({"columns": [{"task": "t", "metric": "m"}], "average": {"columns": ["zz"]}}, "x")
    with pytest.raises(MMBenchError, match="unknown leaderboard 'no-such-board'"):
        load_definition("no-such-board")


def test_shipped_mini_definition_parses():
    from mmbench.tasks.catalog import TaskCatalog

    d = load_definition("mini")
    suite = TaskCatalog().suite("mini")  # every column is filled by the default run (`mmbench run`)
    assert {c.task for c in d.columns} <= set(suite.tasks) and d.baseline in suite.models
    assert {c.name for c in d.curves} == {"WER vs SNR", "guidance sweep"}
    assert d.baseline == "mini-llava-blind" and d.resamples == 1000


# ------------------------------------------------------------------------------------------------ building

def test_cells_values_intervals_and_ranking(board, fixture_store):
    store = open_store(fixture_store[0])
    try:
        m = metrics_frame(store, models="clip-a", tasks="zs")
    finally:
        store.close()
    top1 = board.cell("clip-a", "Top-1")
    assert top1["value"] == m[m["metric"] == "top1"]["value"].iloc[0]
    assert top1["low"] < top1["value"] < top1["high"]
    assert top1["se_analytic"] == pytest.approx(np.sqrt(top1["value"] * (1 - top1["value"]) / 399), rel=1e-6)
    assert top1["n"] == 400 and top1["run_id"] == "20260201-000000-bbbbbb"
    # Embedding models rank by their average (clip-a is better everywhere), models without it come after.
    assert board.models[:2] == ["clip-a", "clip-b"]
    assert board.cell("clip-a", "Top-1")["best"] and not board.cell("clip-b", "Top-1")["best"]
    rows = board.rows.set_index("model")
    avg = rows.loc["clip-a", "average"]
    expected = np.mean([board.cell("clip-a", c)["value"] * 100 for c in ("Top-1", "T2I R@5", "I2T R@5")])
    assert avg == pytest.approx(expected)
    assert rows.loc["clip-a", "average_low"] < avg < rows.loc["clip-a", "average_high"]
    assert pd.isna(rows.loc["vlm-a", "average"])
    # items/s over the columns' tasks: 800 items in 400/900 + 120/1200 seconds.
    assert rows.loc["clip-a", "items_per_s"] == pytest.approx(520 / (400 / 900 + 120 / 1200))
    assert rows.loc["vlm-a", "peak_memory_bytes"] == 2 * 2**30


def test_lower_is_better_and_unavailable_cells(board):
    a, b = board.cell("asr-a", "WER (20 dB)"), board.cell("asr-b", "WER (20 dB)")
    assert a["value"] < b["value"] and a["best"] and not b["best"]  # lower WER wins
    assert bool(a["higher_is_better"]) is False
    spice = board.cell("vlm-a", "SPICE")
    assert spice["value"] is None and "CoreNLP" in spice["unavailable"]
    assert any("SPICE unavailable" in n for n in board.notes)


def test_approximation_note_for_meteor(board):
    meteor = board.cell("vlm-a", "METEOR")
    assert meteor["low"] is not None and "approximation" in meteor["note"]
    assert board.cell("vlm-a", "CIDEr-D")["note"] == ""


def test_significance_marks_against_baseline(board):
    assert board.cell("vlm-a", "VQA")["sig"] == 1 and board.cell("vlm-a", "CIDEr-D")["sig"] == 1
    assert board.cell("vlm-a", "VQA")["p_vs_baseline"] < 0.01
    assert board.cell("vlm-blind", "VQA")["sig"] == 0 and board.cell("vlm-blind", "VQA")["p_vs_baseline"] is None
    assert board.cell("clip-a", "Top-1")["sig"] == 0  # the baseline has no such column


def test_curve_points_with_intervals(board):
    c = board.curves
    assert sorted(c["model"].unique()) == ["asr-a", "asr-b"]
    a = c[c["model"] == "asr-a"].sort_values("x")
    assert list(a["x"]) == [0, 10, 20] and a["y"].is_monotonic_decreasing
    assert (a["y_low"] <= a["y"]).all() and (a["y_high"] >= a["y"]).all() and (a["y_high"] > a["y_low"]).any()


def test_unregistered_aggregator_gives_no_interval_and_says_why(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    res, ids, stats, _ = vqa_entry("m", 0.5, seed=1)
    res.aggregator = "fid-of-the-future"
    write_run(tmp_path / "runs", store, "r1", [(res, ids, stats, [])], created_at="2026-01-01T00:00:00+00:00")
    d = parse_definition({"columns": [{"task": "vqa", "metric": "vqa_accuracy"}]}, "t")
    lb = build_leaderboard(d, store, resamples=50)
    store.close()
    cell = lb.cell("m", "vqa vqa_accuracy")
    assert cell["low"] is None and "unknown metric 'fid-of-the-future'" in cell["note"]
    assert "± " not in to_markdown(lb).split("\n")[4]  # the row shows the value without an interval


def test_subset_and_variant_mismatch_are_noted(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    r1 = vqa_entry("m1", 0.5, seed=1)
    r2 = vqa_entry("m2", 0.6, seed=2)
    r2[0].metrics[0]["variant"] = "VQAv2 accuracy, another normaliser"
    r2[0].task_info["data"]["is_subset"] = True
    write_run(tmp_path / "runs", store, "r1", [r1, r2], created_at="2026-01-01T00:00:00+00:00")
    lb = build_leaderboard(parse_definition({"columns": [{"task": "vqa", "metric": "vqa_accuracy"}]}, "t"), store,
                           resamples=50)
    store.close()
    text = "\n".join(lb.notes)
    assert "VARIANTS DIFFER: VQAv2 accuracy over 200 questions | VQAv2 accuracy, another normaliser" in text
    assert "vqa vqa_accuracy (m2): evaluated a subset" in text


# ------------------------------------------------------------------------------------------------ formats

def test_markdown(board):
    md = to_markdown(board)
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| Model"))
    assert "Top-1" in header and "Embedding mean" in header and "items/s" in header and "peak memory" in header
    clip_a = next(line for line in lines if line.startswith("| clip-a"))
    v = board.cell("clip-a", "Top-1")
    half = (v["high"] - v["low"]) * 100 / 2
    assert f"**{v['value'] * 100:.1f} ± {half:.1f}**" in clip_a
    vlm_a = next(line for line in lines if line.startswith("| vlm-a"))
    assert "▲" in vlm_a and "—" in vlm_a
    assert "300 resamples, seed 0" in md and "significantly better/worse than vlm-blind" in md
    assert "n = 400" in md and "test prompts" in md  # the column's n and metric variant


def test_latex_structure_escaping_and_compiles(board, tmp_path):
    tex = to_latex(board)
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "\\caption{" in tex
    assert "\\textbf{" in tex and "$^{+}$" in tex and "$\\pm$" in tex
    assert "\\label{tab:mmbench-fixture}" in tex
    assert latex_escape(EVIL_MODEL) in tex and EVIL_MODEL not in tex
    assert "T2I R@5" in tex and "n = 400" in tex
    engine = next((e for e in ("pdflatex", "lualatex", "xelatex", "tectonic") if shutil.which(e)), None)
    if engine is None:
        pytest.skip("no TeX engine (pdflatex, lualatex, xelatex or tectonic) installed: LaTeX not compiled")
    doc = tmp_path / "t.tex"
    # The document a paper would have: booktabs for the rules, UTF-8 input; a wide table only overflows.
    doc.write_text("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n"
                   "\\usepackage{booktabs}\n\\begin{document}\n" + tex + "\\end{document}\n")
    flags = [] if engine == "tectonic" else ["-interaction=nonstopmode", "-halt-on-error"]
    cmd = [engine, *flags, doc.name]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000


def test_csv_and_json(board):
    df = pd.read_csv(__import__("io").StringIO(to_csv(board)))
    row = df[(df["model"] == "clip-a") & (df["column"] == "Top-1")].iloc[0]
    cell = board.cell("clip-a", "Top-1")
    assert row["low"] == pytest.approx(cell["low"]) and row["high"] == pytest.approx(cell["high"])
    assert row["resamples"] == 300 and row["seed"] == 0 and row["alpha"] == 0.05
    avg = df[(df["model"] == "clip-a") & (df["column"] == "Embedding mean")].iloc[0]
    assert avg["value"] == pytest.approx(board.rows.set_index("model").loc["clip-a", "average"])
    doc = json.loads(to_json(board))
    assert doc["settings"]["resamples"] == 300 and doc["models"] == board.models
    cells = {(c["model"], c["column"]): c for c in doc["cells"]}
    assert cells[("vlm-a", "SPICE")]["value"] is None
    assert cells[("clip-a", "Top-1")]["low"] == pytest.approx(cell["low"])
    assert {p["x"] for p in doc["curves"]} == {0.0, 10.0, 20.0}


def test_html_is_self_contained_and_escaped(board):
    page = to_html(board)
    assert XSS not in page and "&lt;script&gt;window.__pwned" in page
    assert EVIL_MODEL not in page and "vlm-&lt;b&gt;&#34;x&#34;&lt;/b&gt;" in page  # Jinja2's autoescape
    assert page.count("<script>") == 1  # only the page's own sorting script
    assert "Content-Security-Policy" in page and "script-src 'sha256-" in page
    assert not re.search(r"""(src|href)=["']https?:""", page)  # nothing fetched from elsewhere
    assert page.count('src="data:image/png;base64,') == 3  # bars, score vs throughput, the noise curve


def test_plots_png_and_pdf(board, tmp_path):
    paths = plots.save_plots(board, tmp_path)
    names = sorted(p.name for p in paths)
    assert names == sorted(f"fixture_{k}.{f}" for k in ("task_bars", "score_vs_throughput", "curves")
                           for f in ("png", "pdf"))
    for p in paths:
        head = p.read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if p.suffix == ".png" else head.startswith(b"%PDF")
    again = plots.save_plots(board, tmp_path / "again", formats=("png",))  # no timestamps: identical files
    assert len(again) == 3
    name = "fixture_task_bars.png"
    assert (tmp_path / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
