"""``mmbench compare`` (the regression gate), ``mmbench leaderboard`` and the pytest helper, end to end on
run folders and a store written as the runner writes them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report_leaderboard import (
    DEFINITION,
    build_fixture_store,
    classification_entry,
    retrieval_entry,
    vqa_entry,
    wer_entry,
    write_run,
)

from mmbench.cli.report_cmds import add_parsers
from mmbench.errors import MMBenchError
from mmbench.report.compare import compare_runs
from mmbench.store import Store
from mmbench.testing import assert_no_regression


def cli(argv: list[str]) -> int:
    """The commands as ``mmbench`` runs them: MMBenchError -> one line on stderr and exit code 2."""
    parser = argparse.ArgumentParser(prog="mmbench")
    add_parsers(parser.add_subparsers())
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MMBenchError as exc:
        print(f"mmbench: error: {exc}", file=__import__("sys").stderr)
        return exc.exit_code


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """BASE (a CLIP-like model), a fine-tune that lost 8 points of top-1 but kept retrieval, an improved
    one, a run on fewer items, and ASR runs where NEW has a higher (worse) WER; all in one store."""
    root = tmp_path_factory.mktemp("compare")
    store = Store(root / "results.sqlite")
    rng = np.random.default_rng(0)
    labels, u = rng.integers(0, 10, 800), rng.random(800)

    def clip(model, acc, n=800):
        return [classification_entry(model, (u < acc)[:n], labels[:n], seed=1),
                retrieval_entry(model, 1.5, seed=1)]

    out = {"store": root / "results.sqlite", "drop": np.mean(u < 0.72) - np.mean(u < 0.80),
           "gain": np.mean(u < 0.86) - np.mean(u < 0.80)}
    out["base"] = write_run(root, store, "20260301-000000-base00", clip("clip-base", 0.80),
                            created_at="2026-03-01T00:00:00+00:00")
    out["worse"] = write_run(root, store, "20260302-000000-worse0", clip("clip-ft", 0.72),
                             created_at="2026-03-02T00:00:00+00:00")
    out["better"] = write_run(root, store, "20260303-000000-bettr0", clip("clip-ft2", 0.86),
                              created_at="2026-03-03T00:00:00+00:00")
    out["fewer"] = write_run(root, store, "20260304-000000-fewer0", clip("clip-lim", 0.80, n=700),
                             created_at="2026-03-04T00:00:00+00:00")
    out["asr_base"] = write_run(root, store, "20260305-000000-asr000", [wer_entry("asr", 20, 0.05, seed=1)],
                                created_at="2026-03-05T00:00:00+00:00")
    out["asr_new"] = write_run(root, store, "20260306-000000-asr001", [wer_entry("asr-ft", 20, 0.20, seed=1)],
                               created_at="2026-03-06T00:00:00+00:00")
    store.close()
    return out


def test_identical_runs_compare_as_equal(runs, capsys):
    assert cli(["compare", str(runs["base"]), str(runs["base"]), "--fail-on-regression"]) == 0
    text = capsys.readouterr().out
    assert "RESULT: no regression" in text and "WORSE" not in text and "better" not in text
    c = compare_runs(runs["base"], runs["base"], resamples=200)
    assert (c.tests["diff"] == 0).all() and (c.tests["p_two_sided"] == 1).all() and (c.tests["p_worse"] == 1).all()
    assert set(c.tests["verdict"]) == {"no significant difference"}


def test_planted_regression_fails_the_gate(runs, capsys):
    assert cli(["compare", str(runs["base"]), str(runs["worse"]), "--fail-on-regression"]) == 1
    text = capsys.readouterr().out
    top1 = next(line for line in text.splitlines() if " top1 " in f" {line} ")
    assert "WORSE" in top1 and f"{runs['drop']:+.4f}" in top1
    assert "RESULT: " in text and "RESULT: no regression" not in text
    c = compare_runs(runs["base"], runs["worse"], resamples=300)
    bad = c.regressions
    assert "top1" in set(bad["metric"]) and set(bad["task"]) == {"zs"}  # retrieval was not touched
    ret = c.tests[c.tests["task"] == "ret"]
    assert (ret["diff"] == 0).all() and (ret["verdict"] == "no significant difference").all()
    # Without the flag the table is the same but the exit code stays 0 (a report, not a gate).
    assert cli(["compare", str(runs["base"]), str(runs["worse"])]) == 0


def test_max_drop_tolerates_small_drops(runs, capsys):
    assert cli(["compare", str(runs["base"]), str(runs["worse"]), "--fail-on-regression", "--max-drop", "0.1",
                "--metrics", "top1"]) == 0
    text = capsys.readouterr().out
    assert "worse, within max-drop" in text and "drop by more than 0.1" in text
    assert cli(["compare", str(runs["base"]), str(runs["worse"]), "--fail-on-regression", "--max-drop", "0.05",
                "--metrics", "zs:top1"]) == 1


def test_improvement_is_reported_as_better(runs, capsys):
    assert cli(["compare", str(runs["base"]), str(runs["better"]), "--fail-on-regression", "--tasks", "zs"]) == 0
    text = capsys.readouterr().out
    top1 = next(line for line in text.splitlines() if " top1 " in f" {line} ")
    assert "better" in top1 and f"{runs['gain']:+.4f}" in top1


def test_lower_is_better_regression(runs, capsys):
    assert cli(["compare", str(runs["asr_base"]), str(runs["asr_new"]), "--fail-on-regression"]) == 1
    assert "wer (lower is better)" in capsys.readouterr().out


def test_different_items_are_refused(runs, capsys):
    assert cli(["compare", str(runs["base"]), str(runs["fewer"]), "--tasks", "zs"]) == 2
    err = capsys.readouterr().err
    assert "task 'zs': the runs are on different items (BASE 800, NEW 700; first difference: 'img0700' is only " \
           "in BASE)" in err
    assert err.count("\n") == 1  # one line


def test_store_run_ids_and_model_names(runs, capsys):
    store = str(runs["store"])
    assert cli(["compare", "20260301", "model:clip-ft", "--store", store, "--format", "json",
                "--fail-on-regression"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] is False and doc["settings"]["resamples"] == 1000
    top1 = next(t for t in doc["tests"] if t["metric"] == "top1")
    assert top1["base_run"] == "20260301-000000-base00" and top1["new_run"] == "20260302-000000-worse0"
    assert top1["diff"] == pytest.approx(runs["drop"]) and top1["verdict"] == "WORSE"
    assert cli(["compare", "nope", "20260301", "--store", store]) == 2
    assert "neither a run folder nor a run id" in capsys.readouterr().err
    assert cli(["compare", "20260301", "20260302", "--store", store, "--metrics", "nosuch"]) == 2
    assert "metric 'nosuch' is not in the compared tasks" in capsys.readouterr().err


def test_pytest_helper(runs):
    c = assert_no_regression(runs["base"], runs["base"], resamples=200)
    assert c.passed and len(c.tests) > 0
    with pytest.raises(AssertionError, match=r"regressed against .*zs/top1 -0\.081"):
        assert_no_regression(runs["base"], runs["worse"], resamples=200)
    assert_no_regression(runs["base"], runs["worse"], max_drop=0.1, metrics=["top1"], resamples=200)
    with pytest.raises(MMBenchError, match="different items"):
        assert_no_regression(runs["base"], runs["fewer"], tasks=["zs"])


def test_multi_model_runs_pair_by_model(tmp_path):
    a = write_run(tmp_path, None, "ra", [vqa_entry("m1", 0.5, seed=1), vqa_entry("m2", 0.6, seed=2)],
                  created_at="2026-01-01T00:00:00+00:00")
    b = write_run(tmp_path, None, "rb", [vqa_entry("m1", 0.5, seed=1), vqa_entry("m2", 0.6, seed=2)],
                  created_at="2026-01-02T00:00:00+00:00")
    c = compare_runs(a, b, resamples=100)
    assert sorted(zip(c.tests["base_model"], c.tests["new_model"])) == [("m1", "m1"), ("m2", "m2")]
    c = compare_runs(a, b, base_model="m1", new_model="m2", resamples=100)
    assert list(zip(c.tests["base_model"], c.tests["new_model"])) == [("m1", "m2")]
    other = write_run(tmp_path, None, "rc", [vqa_entry("m3", 0.5, seed=1), vqa_entry("m4", 0.6, seed=2)],
                      created_at="2026-01-03T00:00:00+00:00")
    with pytest.raises(MMBenchError, match="none in common; choose one of each with --base-model"):
        compare_runs(a, other)


# ------------------------------------------------------------------------------------------------ leaderboard

@pytest.fixture(scope="module")
def board_store(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("lb-cli")
    store, _ = build_fixture_store(root)
    definition = root / "fixture.yaml"
    definition.write_text(DEFINITION)
    return store, definition


def test_leaderboard_writes_every_format_in_one_command(board_store, tmp_path, capsys):
    store, definition = board_store
    outs = [tmp_path / f"board.{s}" for s in ("md", "tex", "csv", "json", "html")]
    argv = ["leaderboard", str(definition), "--store", str(store), "--resamples", "100", "--plots",
            str(tmp_path / "plots")]
    for o in outs:
        argv += ["--output", str(o)]
    assert cli(argv) == 0
    assert all(o.stat().st_size > 500 for o in outs)
    assert (tmp_path / "board.md").read_text().startswith("# Fixture board")
    assert "\\toprule" in (tmp_path / "board.tex").read_text()
    df = pd.read_csv(tmp_path / "board.csv")
    assert set(df["resamples"]) == {100}
    assert json.loads((tmp_path / "board.json").read_text())["leaderboard"] == "fixture"
    assert (tmp_path / "board.html").read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.suffix for p in (tmp_path / "plots").iterdir()) == [".pdf"] * 3 + [".png"] * 3
    # To stdout, filtered by model, with a baseline given on the command line.
    # 300 resamples: with B resamples no p-value is below 1/(B+1), and Holm multiplies by the row's tests.
    assert cli(["leaderboard", str(definition), "--store", str(store), "--resamples", "300", "--model",
                "vlm-a,vlm-blind", "--baseline", "vlm-blind", "--format", "csv"]) == 0
    df = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert set(df["model"]) == {"vlm-a", "vlm-blind"}
    assert df[(df["model"] == "vlm-a") & (df["column"] == "VQA")]["sig"].iloc[0] == 1


def test_leaderboard_without_a_definition_uses_every_task(board_store, capsys):
    store, _ = board_store
    assert cli(["leaderboard", "--store", str(store), "--resamples", "50", "--tag", "nightly"]) == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if line.startswith("| Model"))
    assert "zs top1" in header and "ret t2i_R@1" in header and "vqa" not in text


def test_leaderboard_bad_input_exits_2(board_store, tmp_path, capsys):
    store, definition = board_store
    assert cli(["leaderboard", str(definition), "--store", str(tmp_path / "none.sqlite")]) == 2
    assert "no results store" in capsys.readouterr().err
    assert cli(["leaderboard", str(definition), "--store", str(store), "--output", str(tmp_path / "x.docx")]) == 2
    assert "cannot tell the format" in capsys.readouterr().err
    assert cli(["leaderboard", str(definition), "--store", str(store), "--baseline", "nobody"]) == 2
    assert "baseline 'nobody' is not a row" in capsys.readouterr().err
    assert cli(["leaderboard", "no-such-board", "--store", str(store)]) == 2
    assert "unknown leaderboard 'no-such-board'" in capsys.readouterr().err
