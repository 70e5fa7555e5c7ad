"""Reliability of what mmbench reports: the regression gate refuses an unfinished NEW run, leaderboards say
which results come from runs that did not finish, reports keep hostile model names literal, and model
arguments keep their quotes."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from test_compare_cli import cli
from test_report_leaderboard import classification_entry, retrieval_entry, write_run

from mmbench.errors import MMBenchError
from mmbench.report.leaderboard import build_leaderboard, parse_definition
from mmbench.report.render import to_csv, to_latex, to_markdown
from mmbench.specs import parse_kv_args
from mmbench.store import Store
from mmbench.testing import assert_no_regression


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    store = Store(root / "results.sqlite")
    rng = np.random.default_rng(0)
    labels, u = rng.integers(0, 10, 300), rng.random(300)
    base = write_run(root, store, "r-base", [classification_entry("m", u < 0.8, labels, seed=1),
                                              retrieval_entry("m", 1.5, seed=1)], created_at="2026-03-01T00:00:00+00:00")
    # NEW was killed before its retrieval task: only the classification result exists
    new = write_run(root, store, "r-new", [classification_entry("m2", u < 0.8, labels, seed=1)],
                    created_at="2026-03-02T00:00:00+00:00", status="running")
    store.close()
    return root, base, new


def test_compare_refuses_a_new_run_that_lacks_tasks(gate, capsys):
    _, base, new = gate
    assert cli(["compare", str(base), str(new), "--fail-on-regression"]) == 2
    err = capsys.readouterr().err
    assert "NEW" in err and "lacks 1 result(s) that BASE has: ret" in err and "--allow-missing" in err
    assert cli(["compare", str(base), str(new), "--fail-on-regression", "--allow-missing"]) == 0
    assert "not compared, missing from NEW: ret" in capsys.readouterr().out
    with pytest.raises(MMBenchError, match="lacks 1 result"):
        assert_no_regression(base, new)
    assert assert_no_regression(base, new, allow_missing=True).passed


def test_leaderboard_names_results_from_unfinished_runs(gate):
    root, _, _ = gate
    store = Store(root / "results.sqlite")
    lb = build_leaderboard(parse_definition({"columns": [{"task": "zs", "metric": "top1"}]}, "t"), store, resamples=50)
    store.close()
    notes = [n for n in lb.notes if "not complete" in n]
    assert notes == ["results of m2 on zs come from run r-new, which is running (not complete: killed, "
                     "interrupted or still running)"]


HOSTILE = ["[evil] model", "two\nlines | cell", "[x](javascript:alert(1))", "=HYPERLINK(\"http://x\")",
           "<script>alert(1)</script>", "back\\slash *bold*"]


def test_reports_keep_hostile_model_names_literal(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 100)
    for i, name in enumerate(HOSTILE):
        write_run(tmp_path, store, f"r{i}", [classification_entry(name, rng.random(100) < 0.5, labels, seed=i)],
                  created_at=f"2026-03-0{i + 1}T00:00:00+00:00")
    lb = build_leaderboard(parse_definition({"columns": [{"task": "zs", "metric": "top1"}]}, "t"), store,
                           resamples=20)
    store.close()
    md = to_markdown(lb)
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(HOSTILE)  # header, rule, one row per model: no name broke a row
    assert all(line.count(" | ") + line.count("|") >= 4 for line in table)
    assert "](javascript:" not in md.replace("\\](javascript:", "") and "<script>" not in md
    tex = to_latex(lb)
    assert "\\\\\n[" not in tex and "\\\\ [" not in tex and "{[}evil{]} model" in tex
    rows = list(csv.DictReader(io.StringIO(to_csv(lb))))
    assert {r["model"] for r in rows} >= {"'=HYPERLINK(\"http://x\")", "[evil] model"}
    assert not any(r["model"].startswith(("=", "+", "-", "@")) for r in rows)


def test_model_args_keep_quotes_inside_values():
    assert parse_kv_args('alias=my "best" model,dtype=fp16') == {"alias": 'my "best" model', "dtype": "fp16"}
    assert parse_kv_args('alias="a, b",x=1') == {"alias": "a, b", "x": "1"}
    assert parse_kv_args('alias="say ""hi"""') == {"alias": 'say "hi"'}
    with pytest.raises(MMBenchError, match="no closing quote"):
        parse_kv_args('alias="open')


def test_store_and_cache_carry_a_schema_version_with_a_migration_path(tmp_path):
    import sqlite3

    from mmbench.cache import CACHE_VERSION, Cache
    from mmbench.store import STORE_VERSION

    store = Store(tmp_path / "s.sqlite")
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == STORE_VERSION == 1
    store.close()
    cache = Cache(tmp_path / "c.sqlite")
    cache.put_many("m", "t", [("i", {"x": 1}, 0.1)])
    cache.close()
    conn = sqlite3.connect(tmp_path / "c.sqlite")  # a file from before versioning: same table, version 0
    conn.execute("PRAGMA user_version = 0")
    conn.commit()
    conn.close()
    again = Cache(tmp_path / "c.sqlite")
    assert again.get_many("m", "t", ["i"])["i"][0] == {"x": 1}
    assert again.conn.execute("PRAGMA user_version").fetchone()[0] == CACHE_VERSION
    again.close()
    conn = sqlite3.connect(tmp_path / "s.sqlite")  # written by a newer mmbench
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(MMBenchError, match="written by a newer mmbench .schema version 99"):
        Store(tmp_path / "s.sqlite")


def test_outputs_cached_in_an_older_layout_are_not_reused(monkeypatch):
    # a task's fingerprint (half of the cache key) includes the layout of its per-item outputs
    from mmbench.tasks import base
    from mmbench.tasks.base import TaskContext
    from mmbench.tasks.catalog import TaskCatalog, build_task

    task = build_task(TaskCatalog().task_spec("mini-vqa"), TaskContext())
    now = task.fingerprint()
    monkeypatch.setattr(base, "OUTPUT_LAYOUT", base.OUTPUT_LAYOUT - 1)
    assert task.fingerprint() != now
