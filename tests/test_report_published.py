"""Published reference rows: definitions, checks against the leaderboard's intervals, every output format, and
``mmbench compare RUN --published BOARD:REFERENCE`` with its exit codes.

The store holds synthetic runs scored by the real metric code (tests/test_report_leaderboard.py builders):
``my-7b`` reproduces the VQA value of Paper-7B but not its Top-1, has a server-scored task (a result with no
metric, written as a submission file) and lacks the captioning task; ``my-13b`` reproduces Paper-13B.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from test_compare_cli import cli
from test_report_leaderboard import classification_entry, make_result, vqa_entry, write_run

from mmbench.errors import MMBenchError
from mmbench.report.html import to_html
from mmbench.report.leaderboard import build_leaderboard, load_definition, parse_definition
from mmbench.report.published import assign_references, compare_published
from mmbench.report.render import to_csv, to_json, to_latex, to_markdown
from mmbench.report.select import open_store, run_records
from mmbench.store import Store

RESAMPLES = 200
COLUMNS = [{"task": "vqa", "metric": "vqa_accuracy", "label": "VQA", "scale": 100},
           {"task": "zs", "metric": "top1", "label": "Top-1", "scale": 100},
           {"task": "srv", "metric": "vqa_accuracy", "label": "Server", "scale": 100},
           {"task": "cap", "metric": "CIDEr-D", "label": "CIDEr"}]


def _server_entry(model: str):
    """A test split: the run wrote the evaluation server's submission file and has no score here."""
    result = make_result(model, "srv", "vqa", [], "vqa_accuracy")
    result.task_info["config"]["submission"] = "vqav2"
    ids = [f"t{i:03d}" for i in range(20)]
    return result, ids, {}, []


@pytest.fixture(scope="module")
def paper(tmp_path_factory) -> dict:
    """The store, the run folders, and a definition whose published values are placed inside or outside the
    runs' intervals (from the runs' own values: the point estimate, or 25 points away)."""
    root = tmp_path_factory.mktemp("published")
    store = Store(root / "results.sqlite")
    rng = np.random.default_rng(0)
    labels, u = rng.integers(0, 10, 400), rng.random(400)
    seven = [vqa_entry("my-7b-run", 0.85, seed=3), classification_entry("my-7b-run", u < 0.7, labels, seed=1),
             _server_entry("my-7b-run")]
    thirteen = [vqa_entry("my-13b-run", 0.6, seed=4), classification_entry("my-13b-run", u < 0.5, labels, seed=2)]
    other = [vqa_entry("other-model", 0.3, seed=5)]
    runs = {"7b": write_run(root, store, "20260401-000000-seven0", seven, created_at="2026-04-01T00:00:00+00:00"),
            "13b": write_run(root, store, "20260402-000000-thirt0", thirteen, created_at="2026-04-02T00:00:00+00:00"),
            "other": write_run(root, store, "20260403-000000-other0", other, created_at="2026-04-03T00:00:00+00:00")}
    store.close()
    value = {(e[0].model, e[0].task): e[0].metrics[0]["value"] * 100 for e in seven + thirteen if e[0].metrics}
    definition = {
        "leaderboard": "paper", "title": "Paper table", "columns": COLUMNS, "digits": 1, "resamples": RESAMPLES,
        "samples": 0,
        "references": [
            {"model": "Paper-7B", "source": "Doe et al. 2024, Table 1 <b>",
             "values": {"VQA": round(value[("my-7b-run", "vqa")], 1), "Top-1": value[("my-7b-run", "zs")] + 25,
                        "Server": 78.5, "CIDEr": 1.1},
             "splits": {"VQA": "val, 200 questions", "Server": "test-dev (EvalAI)"}, "note": "greedy decoding"},
            {"model": "Paper-13B", "source": "Doe et al. 2024, Table 1",
             "values": {"VQA": round(value[("my-13b-run", "vqa")], 1),
                        "Top-1": round(value[("my-13b-run", "zs")], 1)}}],
        "reproduce": {"*MY-7B*": "Paper-7B", "*my-13b*": "Paper-13B"}}
    path = root / "paper.yaml"
    path.write_text(json.dumps(definition))  # JSON is YAML
    return {"store": root / "results.sqlite", "runs": runs, "definition": path, "value": value}


@pytest.fixture(scope="module")
def board(paper):
    store = open_store(paper["store"])
    try:
        return build_leaderboard(load_definition(str(paper["definition"])), store)
    finally:
        store.close()


# ------------------------------------------------------------------------------------------------ definitions

def _error(raw: dict) -> str:
    with pytest.raises(MMBenchError) as info:
        parse_definition({"columns": COLUMNS, **raw}, "t", "boards/t.yaml")
    message = str(info.value)
    assert "\n" not in message and message.startswith("leaderboard boards/t.yaml")
    return message


def test_definition_errors_are_one_line_naming_the_key():
    ref = {"model": "P", "source": "S", "values": {"VQA": 50.0}}
    assert "`references:` must be a list" in _error({"references": {"model": "P"}})
    assert "references[1]: needs `model:`" in _error({"references": [{"values": {"VQA": 1}}]})
    assert "reference 'P': unknown key 'valeus' (did you mean 'values'?)" in _error(
        {"references": [{"model": "P", "source": "S", "valeus": {}}]})
    assert "reference 'P', values: 'VQAA' is not a column label (did you mean 'VQA'?)" in _error(
        {"references": [{**ref, "values": {"VQAA": 50.0}}]})
    assert "reference 'P', values: 'Zzz' is not a column label; the labels are VQA, Top-1, Server, CIDEr" in \
        _error({"references": [{**ref, "values": {"Zzz": 50.0}}]})
    assert "reference 'P', values: VQA: '62.0' is not a number" in _error(
        {"references": [{**ref, "values": {"VQA": "62.0"}}]})
    assert "VQA: True is not a number" in _error({"references": [{**ref, "values": {"VQA": True}}]})
    assert "reference 'P', values: no published value" in _error({"references": [{**ref, "values": {}}]})
    assert "reference 'P', splits: 'Top1' is not a column label (did you mean 'Top-1'?)" in _error(
        {"references": [{**ref, "splits": {"Top1": "val"}}]})
    assert "two reference rows are called 'P'" in _error({"references": [ref, ref]})
    assert "reproduce '*p*': 'Paper-8B' is not a reference row (did you mean 'Paper-7B'?); references: " \
           "Paper-7B" in _error({"references": [{**ref, "model": "Paper-7B"}], "reproduce": {"*p*": "Paper-8B"}})
    assert "`reproduce:` must map run model name patterns" in _error({"references": [ref], "reproduce": ["P"]})
    assert "column 1: unknown key 'rnak'" in _error({"columns": [{"task": "t", "metric": "m", "rnak": False}]})
    assert "average column 'd' has `rank: false`" in _error(
        {"columns": [{"task": "t", "metric": "m", "label": "d", "rank": False}], "average": {"columns": ["d"]}})
    with pytest.raises(MMBenchError, match=r"unknown leaderboard 'llava-15' \(did you mean 'llava-1.5'\?\)"):
        load_definition("llava-15")


def test_shipped_llava_and_hallucination_definitions_load():
    llava = load_definition("llava-1.5")
    assert [c.label for c in llava.columns] == ["VQAv2", "GQA", "VizWiz", "SciQA-IMG", "TextVQA", "POPE", "MME",
                                                "MMB", "MMB-CN", "SEED-IMG"]
    assert [(c.task, c.metric) for c in llava.columns][5:7] == [("pope", "pope_f1[mean over category]"),
                                                                ("mme", "mme_perception")]
    scale = {c.label: c.scale for c in llava.columns}
    assert scale["MME"] == 1 and {v for k, v in scale.items() if k != "MME"} == {100}
    seven, thirteen = llava.references
    assert dict(seven.values) == {"VQAv2": 78.5, "GQA": 62.0, "VizWiz": 50.0, "SciQA-IMG": 66.8, "TextVQA": 58.2,
                                  "POPE": 85.9, "MME": 1510.7, "MMB": 64.3, "MMB-CN": 58.3, "SEED-IMG": 66.1}
    assert dict(thirteen.values) == {"VQAv2": 80.0, "GQA": 63.3, "VizWiz": 53.6, "SciQA-IMG": 71.6, "TextVQA": 61.3,
                                     "POPE": 85.9, "MME": 1531.3, "MMB": 67.7, "MMB-CN": 63.6, "SEED-IMG": 68.2}
    assert "2910" in seven.split("POPE") and "e3e39262" in thirteen.split("POPE")
    assert "mmbench_dev_cn_20231003" in seven.split("MMB-CN") and "EvalAI" in seven.split("VizWiz")
    models = ["liuhaotian/llava-v1.5-7b", "LLaVA-1.5-13B-hf", "llava-hf/llava-1.5-7b-hf", "qwen-vl"]
    assert assign_references(llava, models) == {"liuhaotian/llava-v1.5-7b": "LLaVA-1.5-7B",
                                                "LLaVA-1.5-13B-hf": "LLaVA-1.5-13B",
                                                "llava-hf/llava-1.5-7b-hf": "LLaVA-1.5-7B"}
    hall = load_definition("hallucination")
    yes = next(c for c in hall.columns if c.metric == "pope_yes_ratio[mean over category]")
    assert yes.rank is False and all(c.rank for c in hall.columns if c is not yes)
    assert dict(hall.references[0].values) == {"POPE F1 random": 87.3, "POPE F1 popular": 86.1,
                                               "POPE F1 adversarial": 84.2, "MME perception": 1510.7}
    assert dict(hall.references[1].values) == {"POPE F1 random": 87.1, "POPE F1 popular": 86.2,
                                               "POPE F1 adversarial": 84.5, "MME perception": 1531.3}
    assert "MME cognition" in [c.label for c in hall.columns]


# ------------------------------------------------------------------------------------------------ checks

def test_checks_use_the_cells_intervals(board, paper):
    assert "Paper-7B" not in board.models and "Paper-13B" not in board.models  # never ranked
    vqa, top1 = board.check("my-7b-run", "VQA"), board.check("my-7b-run", "Top-1")
    cell = board.cell("my-7b-run", "VQA")
    assert vqa["low"] == pytest.approx(cell["low"] * 100) and vqa["high"] == pytest.approx(cell["high"] * 100)
    assert vqa["status"] == "inside" and vqa["low"] <= vqa["published"] <= vqa["high"]
    assert top1["status"] == "outside" and top1["published"] > top1["high"]
    assert top1["value"] == pytest.approx(paper["value"][("my-7b-run", "zs")])
    server = board.check("my-7b-run", "Server")
    assert server["status"] == "no score" and "evaluation server" in server["reason"]
    assert server["split"] == "test-dev (EvalAI)"
    cider = board.check("my-7b-run", "CIDEr")
    assert cider["status"] == "not run" and cider["reason"] == "no result for task cap"
    assert {board.check("my-13b-run", c)["status"] for c in ("VQA", "Top-1")} == {"inside"}
    assert board.check("other-model", "VQA") is None  # no reproduce pattern matches it
    seven = next(line for line in board.reproduction if line.startswith("my-7b-run vs published Paper-7B"))
    t = top1
    assert (f"reproduces 1 of 2 published columns (the published value inside the run's 95% interval); outside: "
            f"Top-1 ({t['value']:.2f} [{t['low']:.2f}, {t['high']:.2f}] vs published {t['published']:.1f})") in seven
    assert "not checked: Server (no score: scored by its evaluation server" in seven
    assert "CIDEr (not run: no result for task cap)" in seven
    assert any(line.startswith("my-13b-run vs published Paper-13B: reproduces 2 of 2") for line in board.reproduction)


def test_markdown_marks_published_rows_and_checks(board):
    md = to_markdown(board)
    lines = md.splitlines()
    table = [line for line in lines if line.startswith("| ")]
    names = [line.split("|")[1].strip() for line in table[1:]]
    assert names[-2:] == ["Paper-7B (published, ref. 1)", "Paper-13B (published, ref. 2)"]  # after measured rows
    paper7 = table[-2]
    assert "±" not in paper7 and "**" not in paper7 and "▲" not in paper7 and "78.5" in paper7
    seven = next(line for line in table if line.startswith("| my-7b-run"))
    published = board.check("my-7b-run", "VQA")["published"]
    assert f"✓ {published:.1f}" in seven and "✗ " in seven and "(no score; pub. 78.5)" in seven
    assert "(not run; pub. 1.1)" in seven
    assert "Rows marked (published)" in md and "✓/✗ and a published value" in md
    assert "- ref. 1, Paper-7B (published, not measured here): Doe et al. 2024, Table 1 &lt;b&gt;. Splits: VQA: " \
           "val, 200 questions; Server: test-dev (EvalAI). greedy decoding" in md
    assert "- my-7b-run vs published Paper-7B: reproduces 1 of 2" in md


def test_latex_separates_published_rows_and_compiles(board, tmp_path):
    tex = to_latex(board)
    body = tex[tex.index("\\midrule"):tex.index("\\bottomrule")].splitlines()
    assert body.count("\\midrule") == 2
    published = body[body.index("\\midrule", 1) + 1:]
    assert [r.split(" & ")[0] for r in published] == ["Paper-7B (published, ref. 1)", "Paper-13B (published, ref. 2)"]
    assert all("$\\pm$" not in r and "\\textbf" not in r for r in published)
    assert "$\\surd$" in tex and "$\\times$" in tex and "Doe et al. 2024" in tex
    engine = shutil.which("pdflatex")
    if engine is None:
        pytest.skip("pdflatex not installed: LaTeX not compiled")
    preamble = ("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n"
                "\\usepackage{booktabs}\n\\begin{document}\n")
    (tmp_path / "t.tex").write_text(preamble + tex + "\\end{document}\n")
    proc = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_csv_and_json_keep_published_rows_apart(board):
    df = pd.read_csv(io.StringIO(to_csv(board)))
    pub = df[df["row_kind"] == "published"]
    assert set(pub["model"]) == {"Paper-7B", "Paper-13B"} and pub["rank"].isna().all()
    assert pub["low"].isna().all() and pub["best"].isna().all() and pub["sig"].isna().all()
    server = pub[(pub["model"] == "Paper-7B") & (pub["column"] == "Server")].iloc[0]
    assert server["published_value"] == 78.5 and server["value"] == pytest.approx(0.785)
    assert server["split"] == "test-dev (EvalAI)" and server["source"].startswith("Doe et al.")
    mine = df[(df["model"] == "my-7b-run") & (df["row_kind"] == "measured")].set_index("column")
    assert mine.loc["VQA", "reproduces"] == "inside" and mine.loc["Top-1", "reproduces"] == "outside"
    assert mine.loc["CIDEr", "reproduces"] == "not run" and pd.isna(mine.loc["CIDEr", "value"])
    assert mine.loc["VQA", "rank"] == 0
    doc = json.loads(to_json(board))
    assert "Paper-7B" not in doc["models"] and [r["model"] for r in doc["references"]] == ["Paper-7B", "Paper-13B"]
    assert doc["references"][0]["values"]["Server"] == 78.5 and doc["reproduce"] == {"my-7b-run": "Paper-7B",
                                                                                     "my-13b-run": "Paper-13B"}
    statuses = {(c["model"], c["column"]): c["status"] for c in doc["checks"]}
    assert statuses[("my-7b-run", "Top-1")] == "outside" and statuses[("my-7b-run", "Server")] == "no score"
    assert not any(c["model"].startswith("Paper") for c in doc["cells"])


def test_html_puts_published_rows_in_their_own_tbody(board):
    page = to_html(board)
    main, published = page.split('<tbody class="published">')
    assert "Paper-7B (published, ref. 1)" in published and "(published, ref." not in main
    assert "±" not in published.split("</tbody>")[0] and 'class="best"' not in published.split("</tbody>")[0]
    assert '<span class="check inside"' in main and '<span class="check outside"' in main
    assert '<span class="check unchecked"' in main  # the server-scored and the not-run cells
    assert "Doe et al. 2024, Table 1 &lt;b&gt;" in page and "Table 1 <b>" not in page
    assert "my-7b-run vs published Paper-7B: reproduces 1 of 2" in page


def test_rank_false_columns_are_never_best_or_ranked(paper):
    d = parse_definition({"columns": [{"task": "vqa", "metric": "vqa_accuracy", "label": "ratio", "rank": False},
                                      {"task": "zs", "metric": "top1", "label": "Top-1"}]}, "t")
    store = open_store(paper["store"])
    try:
        lb = build_leaderboard(d, store, resamples=50)
    finally:
        store.close()
    assert not any(lb.cell(m, "ratio")["best"] for m in lb.models)
    assert lb.models == ["my-7b-run", "my-13b-run", "other-model"]  # by Top-1, then the rest by name
    assert any(n.startswith("ratio: vqa_accuracy of vqa (a diagnostic, not ranked)") for n in lb.notes)


# ------------------------------------------------------------------------------------------------ CLI

def test_compare_published_exit_codes_and_table(paper, board, capsys):
    board_file = str(paper["definition"])
    assert cli(["compare", str(paper["runs"]["7b"]), "--published", f"{board_file}:Paper-7B"]) == 1
    out = capsys.readouterr().out
    top1 = next(line for line in out.splitlines() if line.startswith("Top-1"))
    assert "OUTSIDE ✗" in top1 and "400" in top1
    assert "no score: scored by its evaluation server" in out and "not run: no result for task cap" in out
    assert "RESULT: NOT REPRODUCED: reproduces 1 of 2 published columns" in out and "outside: Top-1 (" in out
    assert f"{RESAMPLES} resamples, seed 0, alpha 0.05 (the leaderboard's settings)" in out
    assert cli(["compare", str(paper["runs"]["13b"]), "--published", f"{board_file}:paper-13b", "--format",
                "md"]) == 0
    out = capsys.readouterr().out
    assert "RESULT: REPRODUCED: reproduces 2 of 2" in out and "| VQA " in out
    # The same bootstrap as the leaderboard: identical intervals.
    assert cli(["compare", "20260401", "--store", str(paper["store"]), "--published", f"{board_file}:Paper-7B",
                "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    vqa = next(c for c in doc["checks"] if c["column"] == "VQA")
    assert vqa["low"] == board.check("my-7b-run", "VQA")["low"] and vqa["status"] == "inside"
    assert doc["passed"] is False and doc["settings"]["resamples"] == RESAMPLES and doc["model"] == "my-7b-run"
    c = compare_published(run_records(paper["runs"]["7b"]), load_definition(board_file), "Paper-7B", resamples=50,
                          alpha=0.1)
    assert c.settings["from"] == "the leaderboard's settings, overridden on the command line"
    assert c.settings["resamples"] == 50 and c.rows.set_index("column").loc["VQA", "status"] == "inside"


def test_compare_published_bad_input_exits_2(paper, tmp_path, capsys):
    run, board_file = str(paper["runs"]["7b"]), str(paper["definition"])
    cases = [
        (["--published", f"{board_file}:Paper-8B"], "no reference row 'Paper-8B' (did you mean 'Paper-7B'?)"),
        (["--published", "llava-15:LLaVA-1.5-7B"], "unknown leaderboard 'llava-15' (did you mean 'llava-1.5'?)"),
        (["--published", "llava-1.5"], "--published expects LEADERBOARD:REFERENCE"),
        ([run, "--published", f"{board_file}:Paper-7B"], "drop a second run (NEW)"),
        (["--published", f"{board_file}:Paper-7B", "--max-drop", "0.1"], "drop --max-drop"),
        (["--published", f"{board_file}:Paper-7B", "--new-model", "nobody"], "has no results for model 'nobody'"),
    ]
    for extra, message in cases:
        assert cli(["compare", run, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (extra, err)
    assert cli(["compare", run]) == 2
    assert "compare needs two runs, BASE and NEW, or one RUN with --published" in capsys.readouterr().err
    both = write_run(tmp_path, None, "both", [vqa_entry("my-7b-run", 0.85, seed=3), vqa_entry("b", 0.5, seed=1)],
                     created_at="2026-01-01T00:00:00+00:00")
    assert cli(["compare", str(both), "--published", f"{board_file}:Paper-7B"]) == 2
    assert "holds 2 models (b, my-7b-run): choose one with --new-model" in capsys.readouterr().err
    assert cli(["compare", str(both), "--published", f"{board_file}:Paper-7B", "--new-model", "my-7b-run"]) == 0
    assert "RESULT: REPRODUCED: reproduces 1 of 1" in capsys.readouterr().out
    unrelated = write_run(tmp_path, None, "unrelated", [vqa_entry("m", 0.5, seed=1)],
                          created_at="2026-01-02T00:00:00+00:00")
    (unrelated / "results.json").write_text((unrelated / "results.json").read_text().replace('"vqa"', '"elsewhere"'))
    assert cli(["compare", str(unrelated), "--published", f"{board_file}:Paper-7B"]) == 2
    assert "has none of the tasks of leaderboard 'paper'" in capsys.readouterr().err


def test_leaderboard_reproduce_option(paper, capsys):
    argv = ["leaderboard", str(paper["definition"]), "--store", str(paper["store"]), "--resamples", "50",
            "--format", "json"]
    assert cli(argv + ["--reproduce", "other-model=Paper-13B"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["reproduce"]["other-model"] == "Paper-13B" and doc["reproduce"]["my-7b-run"] == "Paper-7B"
    assert cli(argv + ["--reproduce", "other-model"]) == 2
    assert "--reproduce expects MODEL=REFERENCE" in capsys.readouterr().err
    assert cli(argv + ["--reproduce", "other-model=Paper-14B"]) == 2
    assert "no reference row 'Paper-14B' (did you mean" in capsys.readouterr().err
    assert cli(argv + ["--reproduce", "nobody=Paper-7B"]) == 2
    assert "--reproduce nobody=Paper-7B: 'nobody' is not a row of leaderboard 'paper'" in capsys.readouterr().err
