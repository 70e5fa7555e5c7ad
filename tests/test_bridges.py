"""The bridging study as one command: `mmbench run --suite bridges` then `mmbench leaderboard bridges` gives the
three bridges and the blind baseline side by side, each bridge's own attention measure, and the pairwise table
between the bridges (here on VQA and its probe, a few items each, so it stays a test)."""

from __future__ import annotations

import json

import pytest

from mmbench.cli.main import main
from mmbench.report.leaderboard import build_leaderboard, load_definition
from mmbench.report.select import open_store
from mmbench.tasks.catalog import TaskCatalog

BRIDGES = ["mini-llava", "mini-flamingo", "mini-blip2"]


def test_the_bridges_definition_matches_its_suite():
    d = load_definition("bridges")
    suite = TaskCatalog().suite("bridges")
    assert list(suite.models) == [*BRIDGES, "mini-llava-blind"] and d.models == tuple(suite.models)
    assert {c.task for c in d.columns} <= set(suite.tasks) and d.baseline == "mini-llava-blind"
    assert tuple(d.pairwise) == tuple(BRIDGES)
    attention = [c for c in d.columns if c.metric in ("image_attention_share", "xattn_gate_ratio",
                                                      "qformer_query_share", "qformer_patch_focus")]
    assert len(attention) == 4 and not any(c.rank for c in attention)  # not comparable across bridges


@pytest.fixture(scope="module")
def bridges_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("bridges")
    code = main(["run", "--suite", "bridges", "--tasks", "mini-vqa,probe:mini-vqa", "--limit", "4", "--output-dir",
                 str(out), "--no-progress"])
    assert code == 0
    return out


@pytest.mark.slow
def test_suite_then_leaderboard_gives_the_study(bridges_store, tmp_path, capsys):
    store = open_store(bridges_store / "results.sqlite")
    try:
        lb = build_leaderboard(load_definition("bridges"), store, resamples=50)
    finally:
        store.close()
    assert lb.models == [*BRIDGES, "mini-llava-blind"]
    measure = {"mini-llava": "Attn. share (LLaVA)", "mini-flamingo": "Gate ratio (Flamingo)",
               "mini-blip2": "Query share (BLIP-2)"}
    for model, column in measure.items():  # each bridge fills its own attention column, and only that one
        assert lb.cell(model, column) is not None and lb.cell(model, column)["value"] > 0
        assert all(lb.cell(model, other) is None for other in measure.values() if other != column)
    focus = lb.cell("mini-blip2", "Patch focus (BLIP-2)")["value"]
    assert 0.0 <= focus <= 1.0
    pairs = {(r["model_a"], r["model_b"]) for _, r in lb.pairwise.iterrows()}
    assert pairs == {("mini-llava", "mini-flamingo"), ("mini-llava", "mini-blip2"), ("mini-flamingo", "mini-blip2")}
    vqa = lb.pairwise[(lb.pairwise["column"] == "VQA") & (lb.pairwise["model_a"] == "mini-llava")
                      & (lb.pairwise["model_b"] == "mini-blip2")].iloc[0]
    expected = (lb.cell("mini-llava", "VQA")["value"] - lb.cell("mini-blip2", "VQA")["value"]) * 100
    assert vqa["diff"] == pytest.approx(expected)
    assert set(lb.rows["model"]) == set(lb.models) and lb.rows["items_per_s"].notna().all()
    # the command writes every format
    md = tmp_path / "bridges.md"
    code = main(["leaderboard", "bridges", "--store", str(bridges_store / "results.sqlite"), "--output", str(md),
                 "--output", str(tmp_path / "bridges.json"), "--resamples", "50"])
    assert code == 0, capsys.readouterr().err
    assert "## Pairwise differences" in md.read_text() and "mini-llava − mini-blip2" in md.read_text()
    ranked = {c.label for c in load_definition("bridges").columns if c.rank}
    rows = json.loads((tmp_path / "bridges.json").read_text())["pairwise"]
    assert {r["column"] for r in rows} <= ranked and {"VQA", "Image reliance"} <= {r["column"] for r in rows}
