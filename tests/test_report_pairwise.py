"""Pairwise paired significance between leaderboard rows (the definition key ``pairwise:``): the values are
those of stats.paired_test on the aligned pair, Holm runs across the pairs of a column, untestable pairs say
why, and every format carries the table while a definition without the key renders as before."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_report_leaderboard import captions_entry, vqa_entry, wer_entry, write_run

from mmbench.errors import MMBenchError
from mmbench.report.compare import align
from mmbench.report.html import to_html
from mmbench.report.leaderboard import build_leaderboard, parse_definition
from mmbench.report.render import latex_escape, md_escape, to_csv, to_json, to_latex, to_markdown
from mmbench.report.select import load_records, open_store, results_frame
from mmbench.report.stats import holm, paired_test, resolve_aggregator
from mmbench.store import Store

SCRIPT = "bad-<script>alert(1)</script>"
B, SEED = 200, 3

DEFINITION = f"""
leaderboard: pw
title: Rows compared
columns:
  - {{task: vqa, metric: vqa_accuracy, label: VQA, scale: 100}}
  - {{task: cap, metric: Bleu_4, label: BLEU-4, scale: 100}}
  - {{task: cap, metric: ROUGE_L, label: ROUGE-L (diagnostic), scale: 100, rank: false}}
  - {{task: asr-snr20, metric: wer, label: WER, scale: 100}}
digits: 1
resamples: {B}
seed: {SEED}
samples: 0
pairwise: [mid, good, "{SCRIPT}", short]
"""


def _definition(text: str = DEFINITION, **changes):
    raw = yaml.safe_load(text)
    raw.update(changes)
    return parse_definition({k: v for k, v in raw.items() if v is not None}, "pw")


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    """Three models on the same VQA questions and captions, two on one ASR task; ``short`` answered only the
    first 150 of the 200 VQA questions (a different item set)."""
    root = tmp_path_factory.mktemp("pairwise-store")
    store = Store(root / "results.sqlite")
    entries = [vqa_entry("good", 0.85, seed=3), captions_entry("good", 0.7, seed=3),
               vqa_entry("mid", 0.6, seed=4), captions_entry("mid", 0.5, seed=4),
               vqa_entry(SCRIPT, 0.3, seed=5), captions_entry(SCRIPT, 0.45, seed=5),
               vqa_entry("short", 0.7, seed=6, n=150),
               wer_entry("good", 20, 0.05, seed=6), wer_entry("mid", 20, 0.3, seed=7)]
    write_run(root / "runs", store, "20260301-000000-pwpwpw", entries, created_at="2026-03-01T00:00:00+00:00")
    store.close()
    return root / "results.sqlite"


def _build(store_path: Path, definition, **kw):
    store = open_store(store_path)
    try:
        return build_leaderboard(definition, store, **kw)
    finally:
        store.close()


@pytest.fixture(scope="module")
def board(store_path):
    return _build(store_path, _definition())


@pytest.fixture(scope="module")
def records(store_path) -> dict:
    store = open_store(store_path)
    try:
        return {(r.model, r.task): r for r in load_records(store, results_frame(store)["result_id"]).values()}
    finally:
        store.close()


def _row(lb, column: str, a: str, b: str) -> dict:
    hit = lb.pairwise[(lb.pairwise["column"] == column) & (lb.pairwise["model_a"] == a)
                      & (lb.pairwise["model_b"] == b)]
    assert len(hit) == 1, (column, a, b)
    return hit.iloc[0].to_dict()


# ------------------------------------------------------------------------------------------------ definitions

def test_definition_key_parses_and_errors_name_the_key(store_path):
    assert _definition().pairwise == ("mid", "good", SCRIPT, "short")
    assert _definition(pairwise=True).pairwise is True
    assert _definition(pairwise=False).pairwise is False and _definition(pairwise=None).pairwise is False
    cols = [{"task": "t", "metric": "m"}]
    with pytest.raises(MMBenchError, match=r"`pairwise:` names 'c', not a row of the leaderboard; rows: a, b") as e:
        parse_definition({"columns": cols, "models": ["a", "b"], "pairwise": ["a", "c"]}, "x")
    assert "\n" not in str(e.value)
    with pytest.raises(MMBenchError, match="`pairwise:` needs at least two models"):
        parse_definition({"columns": cols, "pairwise": ["a"]}, "x")
    with pytest.raises(MMBenchError, match="`pairwise:` needs at least two models"):
        parse_definition({"columns": cols, "pairwise": []}, "x")
    for wrong in ("yes", 3, {"a": "b"}, [["a", "b"], "c"]):
        with pytest.raises(MMBenchError, match="`pairwise:` must be true .* or a list of model names"):
            parse_definition({"columns": cols, "pairwise": wrong}, "x")
    with pytest.raises(MMBenchError, match="`pairwise:` names 'a' twice"):
        parse_definition({"columns": cols, "pairwise": ["a", "b", "a"]}, "x")
    # Without `models:`, the rows are known when the leaderboard is built: checked there, before resampling.
    with pytest.raises(MMBenchError, match=r"`pairwise:` names 'nobody', 'ghost', not rows .*; rows: ") as e:
        _build(store_path, _definition(pairwise=["good", "nobody", "ghost"]))
    assert "\n" not in str(e.value) and "good" in str(e.value)
    with pytest.raises(MMBenchError, match="`pairwise:` names 'short'"):  # --model narrowed the rows
        _build(store_path, _definition(), models=["good", "mid", SCRIPT])


# ------------------------------------------------------------------------------------------------ values

def test_differences_intervals_and_p_are_those_of_paired_test(board, records):
    table = board.pairwise
    assert list(table.columns[:13]) == ["column", "task", "metric", "model_a", "model_b", "diff", "low", "high",
                                        "p", "p_holm", "sig", "n", "note"]
    assert "ROUGE-L (diagnostic)" not in set(table["column"])  # rank: false is not compared
    pairs = [(a, b) for a, b in zip(table["model_a"], table["model_b"])]
    assert pairs[:6] == [("mid", "good"), ("mid", SCRIPT), ("mid", "short"), ("good", SCRIPT), ("good", "short"),
                         (SCRIPT, "short")]  # the VQA column, pairs in the listed order
    tested = 0
    for r in table.to_dict(orient="records"):
        a, b = board.cell(r["model_a"], r["column"]), board.cell(r["model_b"], r["column"])
        assert r["diff"] == pytest.approx((a["value"] - b["value"]) * a["scale"], abs=1e-12)
        rec_a, rec_b = records[(r["model_a"], r["task"])], records[(r["model_b"], r["task"])]
        if "short" in (r["model_a"], r["model_b"]):
            continue
        stats_b, stats_a = align(rec_b, rec_a)
        aggregate, _ = resolve_aggregator(rec_a.result.aggregator)
        t = paired_test(stats_b, stats_a, aggregate, metrics=[r["metric"]],
                        higher_is_better={r["metric"]: a["higher_is_better"]},
                        reported_base={m["name"]: m.get("value") for m in rec_b.result.metrics},
                        reported_new={m["name"]: m.get("value") for m in rec_a.result.metrics},
                        resamples=B, seed=SEED, stream=r["task"])[r["metric"]]
        assert t.p_two_sided is not None and r["p"] == t.p_two_sided and r["n"] == t.n == len(rec_a.item_ids)
        assert r["low"] == pytest.approx(t.low * a["scale"]) and r["high"] == pytest.approx(t.high * a["scale"])
        assert r["low"] <= r["diff"] <= r["high"] or r["note"]
        tested += 1
    assert tested == 3 + 3 + 1  # VQA and BLEU-4 among mid, good, SCRIPT; WER of mid - good


def test_holm_across_the_pairs_of_each_column_and_marks(board):
    table = board.pairwise
    for column, group in table.groupby("column", sort=False):
        assert list(group["p_holm"]) == holm(list(group["p"]))
    vqa = table[table["column"] == "VQA"]
    assert vqa["p"].notna().sum() == 3  # the three pairs with short are outside the family
    assert _row(board, "VQA", "mid", "good")["sig"] == -1  # mid is worse than good
    assert _row(board, "VQA", "good", SCRIPT)["sig"] == 1
    wer = _row(board, "WER", "mid", "good")  # lower is better: mid's higher WER is worse
    assert wer["diff"] > 0 and wer["sig"] == -1 and wer["p_holm"] == wer["p"]  # a family of one
    for r in table.to_dict(orient="records"):
        significant = r["p_holm"] is not None and r["p_holm"] < 0.05
        assert (r["sig"] != 0) == significant


def test_a_pair_on_different_items_gets_a_note_and_no_p(board):
    r = _row(board, "VQA", "good", "short")
    assert r["p"] is None and r["p_holm"] is None and r["low"] is None and r["sig"] == 0
    assert "different items" in r["note"] and r["diff"] is not None
    assert not ((board.pairwise["column"] == "BLEU-4") & (board.pairwise["model_b"] == "short")).any()  # no cell
    note = next(n for n in board.pairwise_notes if n.startswith("task vqa"))
    assert "mid − short, good − short" in note and "different items" in note


def test_a_metric_too_slow_to_recompute_gets_no_p_and_says_why(store_path):
    lb = _build(store_path, _definition(), time_budget_s=1e-9)
    cider = lb.pairwise[lb.pairwise["column"] == "BLEU-4"]
    assert len(cider) == 3 and cider["p"].isna().all() and cider["diff"].notna().all()
    assert all("time budget" in n for n in cider["note"])
    assert any(n.startswith("BLEU-4 (mid − good") and "no p-value" in n and "time budget" in n
               for n in lb.pairwise_notes)
    assert _row(lb, "VQA", "mid", "good")["p"] is not None  # a plain mean is resampled in one gather


def test_results_without_item_statistics_are_not_tested(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    entries = [(e[0], [], {}, []) for e in (vqa_entry("m1", 0.8, seed=1), vqa_entry("m2", 0.5, seed=2))]
    write_run(tmp_path / "runs", store, "r1", entries, created_at="2026-01-01T00:00:00+00:00")
    d = parse_definition({"columns": [{"task": "vqa", "metric": "vqa_accuracy"}], "pairwise": True}, "t")
    lb = build_leaderboard(d, store, resamples=50)
    store.close()
    (r,) = lb.pairwise.to_dict(orient="records")
    assert (r["model_a"], r["model_b"]) == ("m1", "m2") and r["p"] is None
    assert r["diff"] == pytest.approx(lb.cell("m1", "vqa vqa_accuracy")["value"]
                                      - lb.cell("m2", "vqa vqa_accuracy")["value"])
    assert lb.pairwise_notes == ["vqa vqa_accuracy (m1 − m2): no p-value: no per-item statistics were stored with "
                                 "these results"]


def test_true_compares_every_pair_of_rows_in_row_order(store_path):
    lb = _build(store_path, _definition(pairwise=True))
    vqa = lb.pairwise[lb.pairwise["column"] == "VQA"]
    expected = [(a, b) for i, a in enumerate(lb.models) for b in lb.models[i + 1:]]
    assert list(zip(vqa["model_a"], vqa["model_b"])) == expected and len(expected) == 6


def test_one_row_has_no_pair(store_path):
    lb = _build(store_path, _definition(pairwise=True), models=["good"])
    assert lb.pairwise.empty and "no pair to compare" in lb.pairwise_notes[0]
    assert "## Pairwise differences" in to_markdown(lb) and "no pair to compare" in to_markdown(lb)


# ------------------------------------------------------------------------------------------------ formats

def test_markdown_section(board):
    md = to_markdown(board)
    section = md[md.index("\n## Pairwise differences\n"):]
    lines = section.splitlines()
    header = next(line for line in lines if line.startswith("| Pair"))
    assert [h.strip() for h in header.strip("|").split("|")] == ["Pair", "VQA", "BLEU-4", "WER"]
    r = _row(board, "VQA", "mid", "good")
    mid_good = next(line for line in lines if line.startswith("| mid − good "))
    assert (f"{r['diff']:+.1f} \\[{r['low']:+.1f}, {r['high']:+.1f}\\] p={r['p_holm']:.3f} ▼" in mid_good
            or f"{r['diff']:+.1f} \\[{r['low']:+.1f}, {r['high']:+.1f}\\] p<0.001 ▼" in mid_good)
    short = next(line for line in lines if line.startswith("| mid − short "))
    assert "p=" not in short and "—" in short  # no test on VQA, no BLEU-4 cell
    assert f"| {md_escape('good − ' + SCRIPT)} " in section and SCRIPT not in md
    assert ("paired bootstrap over the items both results share (200 resamples, seed 3), Holm-adjusted across "
            "the pairs within each column" in section and "alpha 0.05" in section)
    assert "different items" in section  # the notes follow the caption


def test_latex_section_escapes_and_compiles(board, tmp_path):
    tex = to_latex(board)
    assert tex.count("\\begin{table}") == 2 and "\\label{tab:mmbench-pw-pairwise}" in tex
    second = tex[tex.rindex("\\begin{table}"):]
    assert "\\toprule" in second and "\\bottomrule" in second and "Holm-adjusted across the pairs" in second
    assert f"good $-$ {latex_escape(SCRIPT)}" in second and SCRIPT not in tex and "$^{-}$" in second
    assert "{[}" in second and "−" not in tex
    engine = next((e for e in ("pdflatex", "lualatex", "xelatex", "tectonic") if shutil.which(e)), None)
    if engine is None:
        pytest.skip("no TeX engine installed: LaTeX not compiled")
    doc = tmp_path / "t.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n"
                   "\\usepackage{booktabs}\n\\begin{document}\n" + tex + "\\end{document}\n")
    flags = [] if engine == "tectonic" else ["-interaction=nonstopmode", "-halt-on-error"]
    proc = subprocess.run([engine, *flags, doc.name], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_csv_and_json_carry_the_pairwise_rows(board):
    df = pd.read_csv(io.StringIO(to_csv(board)))
    pw = df[df["row_kind"] == "pairwise"]
    assert len(pw) == len(board.pairwise) and {"model_b", "p", "p_holm"} <= set(df.columns)
    line = pw[(pw["column"] == "VQA") & (pw["model"] == "mid") & (pw["model_b"] == "good")].iloc[0]
    r = _row(board, "VQA", "mid", "good")
    assert line["value"] * line["scale"] == pytest.approx(r["diff"])  # metric units, as the measured lines
    assert line["low"] * 100 == pytest.approx(r["low"]) and line["p_holm"] == pytest.approx(r["p_holm"])
    assert line["sig"] == -1 and line["n"] == 200
    assert (df[df["row_kind"] == "measured"]["model_b"].isna()).all()
    doc = json.loads(to_json(board))
    assert len(doc["pairwise"]) == len(board.pairwise) and doc["pairwise_notes"] == board.pairwise_notes
    first = doc["pairwise"][0]
    assert first["model_a"] == "mid" and first["diff"] == pytest.approx(board.pairwise["diff"].iloc[0])
    assert next(x for x in doc["pairwise"] if x["model_b"] == "short")["p"] is None


def test_html_section_is_escaped(board):
    page = to_html(board)
    section = page[page.index("<h2>Pairwise differences</h2>"):]
    assert '<table id="pairwise">' in section and "sortable" not in section[:200]
    assert SCRIPT not in page and "bad-&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert page.count("<script>") == 1 and "Holm-adjusted across the pairs within each column" in section
    r = _row(board, "VQA", "mid", "good")
    assert f"{r['diff']:+.1f} [{r['low']:+.1f}, {r['high']:+.1f}]" in section
    assert '<span class="down">▼</span>' in section
    assert "different items" in section


def test_without_the_key_every_output_is_as_before(store_path, board):
    plain = _build(store_path, _definition(pairwise=None))
    assert plain.definition.pairwise is False and plain.pairwise.empty and plain.pairwise_notes == []
    md, md_pw = to_markdown(plain), to_markdown(board)
    assert "Pairwise" not in md and md_pw.startswith(md) and md_pw[len(md):].startswith("\n## Pairwise differences")
    tex, tex_pw = to_latex(plain), to_latex(board)
    assert tex.count("\\begin{table}") == 1 and tex_pw.startswith(tex)
    csv, csv_pw = to_csv(plain).splitlines(), to_csv(board).splitlines()
    assert "model_b" not in csv[0] and not any(",pairwise," in line for line in csv)
    assert csv_pw[:len(csv)] == [csv[0] + ",model_b,p,p_holm"] + [line + ",,," for line in csv[1:]]
    assert all(",pairwise," in line for line in csv_pw[len(csv):])
    doc, doc_pw = json.loads(to_json(plain)), json.loads(to_json(board))
    assert "pairwise" not in doc and {k: v for k, v in doc_pw.items() if not k.startswith("pairwise")} == doc
    page, page_pw = to_html(plain), to_html(board)
    assert "airwise" not in page
    cut = re.sub(r"<h2>Pairwise differences</h2>.*?</ul>\n", "", page_pw, flags=re.S)
    assert cut.replace("#pairwise td { white-space: nowrap; }\n", "") == page
