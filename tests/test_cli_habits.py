"""Habits users bring from other harnesses: `mmbench` alone prints help, lm-eval's underscore spellings,
--limit as a fraction, and errors about a subcommand's options that name that subcommand."""

from __future__ import annotations

import pytest

from mmbench.cli.main import lm_eval_spellings
from mmbench.errors import MMBenchError


def test_mmbench_alone_prints_help_and_runs_nothing(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli()
    assert code == 0 and out.startswith("usage: mmbench") and "run" in out
    assert not (tmp_path / "mmbench-runs").exists()


def test_lm_eval_spellings_are_turned_into_mmbench_options(capsys):
    argv = ["--model_args", "pretrained=x", "--batch_size=8", "--include_path", "t", "--output_path", "o",
            "--gen_kwargs", "max_new_tokens=4", "--log_samples", "--tasks", "a_b", "--model", "m_1"]
    assert lm_eval_spellings(argv) == ["--model-args", "pretrained=x", "--batch-size=8", "--include-path", "t",
                                       "--output-dir", "o", "--gen-kwargs", "max_new_tokens=4", "--tasks", "a_b",
                                       "--model", "m_1"]
    assert "--log_samples is not needed" in capsys.readouterr().err
    with pytest.raises(MMBenchError, match="--num_fewshot: mmbench evaluates zero-shot"):
        lm_eval_spellings(["--num_fewshot", "5"])


def test_a_run_with_lm_eval_spellings_and_a_fractional_limit(cli, tiny_clip, embed_data, embed_tasks, tmp_path):
    from mmbench.results import RunResult

    code, _, err = cli("run", "--model", "hf-clip", "--model_args", f"pretrained={tiny_clip}", "--tasks",
                       "tiny-zeroshot", "--include_path", str(embed_tasks), "--data-dir", str(embed_data),
                       "--output_path", str(tmp_path / "out"), "--batch_size", "4", "--limit", "0.1",
                       "--log_samples", "--no-progress")
    assert code == 0, err
    result = RunResult.read(next(p for p in (tmp_path / "out").iterdir() if p.is_dir())).results[0]
    assert result.n_items == 4  # 10% of 36, rounded up
    assert any("evaluated the first 4 of 36 items" in n for n in result.notes)


@pytest.mark.parametrize("args,message", [
    (["run", "--num_fewshot", "5"], "mmbench: error: --num_fewshot: mmbench evaluates zero-shot"),
    (["run", "--limit", "1.5"], "mmbench run: error: argument --limit: must be a count >= 1 or a fraction"),
    (["run", "--limit", "0"], "mmbench run: error: argument --limit: must be a count >= 1 or a fraction"),
    (["run", "--bogus"], "mmbench run: error: unrecognized arguments: --bogus (see `mmbench run --help`)"),
    (["list", "models", "--bogus_flag"], "mmbench list: error: unrecognized arguments: --bogus-flag"),
])
def test_bad_options_are_one_line_naming_the_subcommand(cli, args, message):
    code, _, err = cli(*args)
    assert code == 2 and err.strip().startswith(message) and len(err.strip().splitlines()) == 1, err


def test_mini_train_help_names_the_command_writes_to_the_working_folder_and_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys\nfrom mmbench.cli.main import main\nrc = main(['mini', 'train', '--help'])\n"
            "print('TORCH', 'torch' in sys.modules, rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "usage: mmbench mini train" in out and "default: ./mini-models" in " ".join(out.split())
    assert "TORCH False 0" in out
    from mmbench.mini.train.options import DEFAULT_OUTPUT, parse_args

    assert parse_args([]).output == DEFAULT_OUTPUT and not DEFAULT_OUTPUT.is_absolute()


@pytest.mark.parametrize("what", ["models", "tasks", "suites", "metrics", "kinds", "data-formats"])
def test_list_fits_100_columns(cli, what):
    code, out, _ = cli("list", what)
    assert code == 0 and out.strip()
    assert max(len(line) for line in out.splitlines()) <= 100
    if what == "tasks":
        assert "probe:<task>" in out and "| mini-vqa " in out
    if what == "metrics":  # the value names compare --metrics takes, beside the names task files use
        rows: dict[str, str] = {}
        for line in out.splitlines()[2:]:  # a wrapped cell continues on lines with an empty first cell
            cells = [c.strip() for c in line.split("|")[1:-1]]
            if len(cells) == 3 and cells[0]:
                name = cells[0]
                rows[name] = cells[1]
            elif len(cells) == 3 and cells[1]:
                rows[name] += " " + cells[1]
        assert rows["pope"].startswith("pope_f1,") and rows["recall_at_k"] == "t2i_R@{k}, i2t_R@{k}"
        assert rows["vqa_accuracy"] == "vqa_accuracy"


def test_the_run_summary_fits_the_console_and_show_names_a_missing_run(cli, tiny_clip, embed_data, embed_tasks,
                                                                      tmp_path):
    code, out, err = cli("run", "--model", "hf-clip", "--model-args", f"pretrained={tiny_clip}", "--tasks",
                         "tiny-zeroshot,tiny-retrieval", "--include-path", str(embed_tasks), "--data-dir",
                         str(embed_data), "--output-dir", str(tmp_path / "out"), "--no-progress")
    assert code == 0, err
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert table and max(len(line) for line in table) <= 100
    assert "top1" in table[1] and "t2i_R@5" in table[1]  # each task's headline metric under its name
    run_id = next(p for p in (tmp_path / "out").iterdir() if p.is_dir()).name
    code, shown, _ = cli("show", run_id, "--output-dir", str(tmp_path / "out"))
    assert code == 0 and "mean_per_class_recall" in shown
    code, _, err = cli("show", "no-such-run", "--output-dir", str(tmp_path / "out"))
    assert code == 2 and "no results.json" in err and len(err.strip().splitlines()) == 1


def test_a_task_without_any_value_still_gets_its_column():
    from types import SimpleNamespace

    from mmbench.report.console import summary_table

    result = SimpleNamespace(model="m", task="t", metrics=[{"name": "x", "value": None}], aggregator="",
                             notes=["x unavailable"], files={})
    run = SimpleNamespace(results=[result], failures=[], environment={}, mmbench_version="0", git_revision=None,
                          seed=0)
    out = summary_table(run)
    assert "| m " in out and "n/a" in out and "| t " in out.splitlines()[0] + " "
