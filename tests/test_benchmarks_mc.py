"""The multiple-choice and yes/no benchmark tasks (MMBench, MMMU, ScienceQA-IMG, SEED-Bench, AI2D, MMStar,
POPE, MME) end to end, from fixtures written in each benchmark's official release layout and in the Hugging
Face hub-cache layout of its copy: scores equal the official rules worked out by hand (CircularEval, MME's
acc+, POPE per setting and their mean, MMMU per discipline), the prompts follow the named protocols,
submission files have the servers' formats, and missing data is one line naming where to put it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import benchmark_fixtures as bf
import mc_fixtures as mcf
from mmbench.cli.main import main
from mmbench.errors import DataError
from mmbench.registry import MODELS
from mmbench.results import RunResult

MC_TASKS = ["mmbench-dev-en", "mmbench-dev-cn", "mmmu-val", "mmmu-dev", "scienceqa-img", "seedbench-img",
            "ai2d-test", "mmstar"]
YESNO_TASKS = ["pope", "pope-random", "pope-popular", "pope-adversarial", "mme"]
SUBMISSION_TASKS = ["mmbench-test-en", "mmbench-test-cn", "mmmu-test"]
ALL_TASKS = MC_TASKS + YESNO_TASKS + SUBMISSION_TASKS


def register_scripted() -> None:
    mcf.ScriptedMC.answers = {**bf.scripted_answers(), **mcf.scripted_answers()}
    MODELS.register("scripted-mc", mcf.ScriptedMC, overwrite=True)


def run_tasks(tasks: list[str], data_dir: Path, out: Path, *extra: str) -> tuple[dict, Path]:
    register_scripted()
    mcf.ScriptedMC.seen = []
    code = main(["run", "--model", "scripted-mc", "--tasks", ",".join(tasks), "--data-dir", str(data_dir),
                 "--output-dir", str(out), "--no-progress", "--no-cache", *extra])
    assert code == 0
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    return {r.task: r for r in RunResult.read(run_dir).results}, run_dir


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> Path:
    return mcf.write_official(tmp_path_factory.mktemp("mc-official"))


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Path:
    return mcf.write_hf_cache(tmp_path_factory.mktemp("mc-hub"))


def offline_hub(mp: pytest.MonkeyPatch, hub: Path, cache: Path) -> None:
    """Point the hub cache (and the datasets cache the parquet files are prepared into) at ``hub``."""
    import datasets.config
    import huggingface_hub.constants

    mp.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    mp.setattr(datasets.config, "HF_DATASETS_CACHE", cache)


@pytest.fixture(scope="module")
def official_run(official, hub, tmp_path_factory):
    """Every task from its official layout, in one run (MMMU's official release is MMMU/MMMU on the hub; the
    other tasks find their official files first)."""
    tmp = tmp_path_factory.mktemp("official-run")
    with pytest.MonkeyPatch.context() as mp:
        offline_hub(mp, hub, tmp / "datasets-cache")
        res, run_dir = run_tasks(ALL_TASKS, official, tmp / "out")
    return res, run_dir, list(mcf.ScriptedMC.seen)


@pytest.fixture(scope="module")
def hf_run(hub, tmp_path_factory):
    """Every task from its Hugging Face copy (an empty --data-dir: no official files)."""
    tmp = tmp_path_factory.mktemp("hf-run")
    (tmp / "empty").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        offline_hub(mp, hub, tmp / "datasets-cache")
        res, run_dir = run_tasks(ALL_TASKS, tmp / "empty", tmp / "out")
    return res, run_dir, list(mcf.ScriptedMC.seen)


def values(result) -> dict:
    return {m["name"]: m["value"] for m in result.metrics}


def samples(run_dir: Path, result) -> list[dict]:
    return [json.loads(line) for line in (run_dir / result.files["samples"]).read_text().splitlines()]


def prompts(run_dir: Path, result) -> list[str]:
    """Every prompt sent, in the samples' order (a multiple-choice question's passes in order)."""
    out = []
    for s in samples(run_dir, result):
        out += [p["prompt_sent"] for p in s["passes"]] if "passes" in s else [s["prompt_sent"]]
    return out


def submission(run_dir: Path, result):
    return json.loads((run_dir / result.files["artifacts"] / "submission.json").read_text())


def check_subset(got: dict, expected: dict) -> None:
    assert {k: got.get(k) for k in expected} == pytest.approx(expected, abs=1e-12)


def check_scores(res: dict) -> None:
    check_subset(values(res["mmbench-dev-en"]), mcf.MMBENCH_EN_EXPECTED)
    check_subset(values(res["mmbench-dev-cn"]), mcf.MMBENCH_CN_EXPECTED)
    check_subset(values(res["mmmu-val"]), mcf.MMMU_VAL_EXPECTED)
    assert values(res["mmmu-dev"])["mmmu_accuracy"] == 1.0
    check_subset(values(res["scienceqa-img"]), mcf.SCIENCEQA_EXPECTED)
    check_subset(values(res["seedbench-img"]), mcf.SEED_EXPECTED)
    assert values(res["ai2d-test"])["mc_accuracy"] == pytest.approx(mcf.AI2D_EXPECTED, abs=1e-12)
    check_subset(values(res["mmstar"]), mcf.MMSTAR_EXPECTED)
    pope = values(res["pope"])
    for category, expected in mcf.POPE_EXPECTED.items():
        check_subset(pope, {f"{k}[category={category}]": v for k, v in expected.items()})
        check_subset(values(res[f"pope-{category}"]), expected)  # one setting per task
        assert not any("mean over" in k for k in values(res[f"pope-{category}"]))
    check_subset(pope, mcf.POPE_POOLED)  # all 11 answers pooled (lmms-eval's single `pope` number)
    assert pope["pope_f1[mean over category]"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3, abs=1e-12)
    check_subset(values(res["mme"]), mcf.MME_EXPECTED)
    # the number of questions each benchmark's own selection keeps
    n = {t: res[t].n_items for t in MC_TASKS + YESNO_TASKS}
    assert n["mmbench-dev-en"] == 4 and n["scienceqa-img"] == 4 and n["seedbench-img"] == 4
    assert n["pope"] == 11 and n["pope-adversarial"] == 3 and n["mme"] == 30 and n["mmstar"] == 4
    assert n["mmmu-val"] == 6 and n["mmmu-dev"] == 5  # MMMU/MMMU: dev_Math_1 and the other subjects' questions
    assert n["ai2d-test"] == 3  # the questions of the test images only
    assert all(res[t].n_failed == 0 for t in ALL_TASKS)


def test_official_layouts_score_exactly_as_the_official_rules(official_run):
    res, _, _ = official_run
    check_scores(res)
    desc = {t: res[t].task_info["data"]["description"] for t in ALL_TASKS}
    assert desc["mmbench-dev-en"].startswith("MMBench MMBench_DEV_EN.tsv (4 questions, 11 rows)")
    assert desc["mme"].startswith("MME MME_Benchmark_release_version")
    assert desc["pope"].startswith("POPE coco_pope_adversarial.json") and desc["mmstar"].startswith("MMStar MMStar.tsv")
    assert desc["scienceqa-img"].startswith("ScienceQA test") and desc["seedbench-img"].startswith("SEED-Bench SEED")
    assert "MMMU/MMMU@" in desc["mmmu-val"] and "(5 of 30 subject configs" in desc["mmmu-val"]
    assert desc["ai2d-test"].startswith("AI2D ") and desc["ai2d-test"].endswith("ai2d test (3 questions)")
    for task in ALL_TASKS:
        assert res[task].task_info["protocol"], task


def test_hf_cache_layouts_give_the_same_scores_offline(hf_run):
    res, _, _ = hf_run
    check_scores(res)
    desc = {t: res[t].task_info["data"]["description"] for t in ALL_TASKS}
    assert f"lmms-lab/MMBench@{mcf.commit_of('lmms-lab/MMBench')[:12]} (local hub cache)" in desc["mmbench-dev-en"]
    assert "Lin-Chen/MMStar@" in desc["mmstar"] and "lmms-lab/POPE@" in desc["pope-random"]
    assert "split=random" in desc["pope-random"]  # config Full, split random


def test_prompts_follow_the_protocols(official_run, hf_run):
    for res, run_dir, _ in (official_run, hf_run):
        sent = {t: prompts(run_dir, res[t]) for t in ALL_TASKS}
        assert ("Think of pets.\nWhich animal barks?\nA. cat\nB. dog\n" + mcf.ANSWER_DIRECTLY) in sent["mmbench-dev-en"]
        assert ("Think of pets.\nWhich animal barks?\nA. dog\nB. cat\n" + mcf.ANSWER_DIRECTLY) in sent["mmbench-dev-en"]
        assert len(sent["mmbench-dev-en"]) == 11  # 4 + 2 + 3 + 2 circular passes, as the file lists them
        assert "看天空。\n天空是什么颜色？\nA. 蓝色\nB. 绿色\n请直接回答选项字母。" in sent["mmbench-dev-cn"]
        assert ("What is x in <image 1>?\n(A) 12\n(B) 24\n(C) 42\n(D) 84\n\n" + mcf.ANSWER_DIRECTLY) in sent["mmmu-val"]
        assert f"What year was <image 1> painted?\n{mcf.SHORT}" in sent["mmmu-val"]
        assert ("Context: A cell is shown.\nWhich organelle is labeled?\nA. nucleus\nB. ribosome\nC. wall\n"
                + mcf.ANSWER_DIRECTLY) in sent["scienceqa-img"]
        assert f"Which continent is highlighted?\nA. Asia\nB. Africa\n{mcf.ANSWER_DIRECTLY}" in sent["scienceqa-img"]
        assert ("How many towels are in the image?\nA. One\nB. Two\nC. Three\nD. Four\n" + mcf.ANSWER_DIRECTLY) \
            in sent["seedbench-img"]
        assert f"Which label shows the sun?\nA. D\nB. A\nC. C\nD. B\n{mcf.ANSWER_DIRECTLY}" in sent["ai2d-test"]
        assert ("Which fruit is shown?\nOptions: A: apple, B: banana, C: cherry, D: grape\n" + mcf.ANSWER_DIRECTLY) \
            in sent["mmstar"]
        assert f"Is there a dog in the image?\n{mcf.SHORT}" in sent["pope"]
        # MME: "Please answer yes or no." and the two spaces before it are dropped (LLaVA-1.5's questions)
        assert f"Is there a total of two dogs in the image?\n{mcf.SHORT}" in sent["mme"]
        assert all("Please answer" not in p for p in sent["mme"])
        assert res["mmbench-dev-en"].task_info["protocol"].startswith("LLaVA-1.5 MMBench")


def test_mmmu_sends_every_named_image_in_ascending_order(official_run, hf_run):
    for _, _, seen in (official_run, hf_run):
        colours = {p.split("\n")[0]: c for p, c in seen}
        assert colours["Compare <image 2> with <image 1>. Which is heavier?"] == ["red", "green"]  # image_1 first
        assert colours["Which picture shows a cell?"] == ["green", "blue"]  # named only in the options
        assert colours["What is x in <image 1>?"] == ["red"]


def test_samples_show_how_each_answer_was_read(official_run):
    res, run_dir, _ = official_run
    mmb = {s["question"]: s for s in samples(run_dir, res["mmbench-dev-en"])}
    barks = mmb["Which animal barks?"]
    assert [p["text"] for p in barks["passes"]] == ["B", "B"] and barks["choice"] == ["B", "B"]
    assert barks["mc_accuracy"] == 0.0  # the second pass shows dog as A: CircularEval fails the question
    assert mmb["What colour is the sky?"]["read_by"] == ["option text"] * 3
    mmmu = {s["question"]: s for s in samples(run_dir, res["mmmu-val"])}
    assert mmmu["What is x in <image 1>?"]["parsed"] == "C"  # "(A) or (C)": the last bracketed letter
    assert mmmu["What year was <image 1> painted?"]["mmmu_accuracy"] == 1.0


def test_submission_files_have_the_servers_formats(official_run, hf_run):
    for res, run_dir, _ in (official_run, hf_run):
        for task in SUBMISSION_TASKS:
            assert res[task].metrics == [] and any("submission file" in n for n in res[task].notes), task
        rows = submission(run_dir, res["mmbench-test-en"])
        assert [(r["index"], r["prediction"]) for r in rows] == [
            (10, "A"), (1000010, "A"), (11, "C"), (1000011, "C"), (2000011, "C")]
        assert rows[1] == {"index": 1000010, "question": "Which one is a fruit?", "prediction": "A",
                           "A": "car", "B": "apple"}  # the options as that pass showed them
        assert [(r["index"], r["A"], r["B"]) for r in submission(run_dir, res["mmbench-test-cn"])] == [
            (20, "苹果", "汽车"), (1000020, "汽车", "苹果")]
        mmmu = submission(run_dir, res["mmmu-test"])
        assert mmmu["test_Math_1"] == "A" and mmmu["test_Art_Theory_2"] == ["red"]
    res, run_dir, _ = official_run
    assert len(submission(run_dir, res["mmmu-test"])) == 5  # and the other subjects' test questions


def test_missing_data_is_one_line_naming_every_place(capsys, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    register_scripted()
    for task, places in (("mmbench-dev-en", ["mmbench/MMBench_DEV_EN.tsv", "mmbench/mmbench_dev_20230712.tsv",
                                             "'lmms-lab/MMBench' is not in the local hub cache",
                                             "'lmms-lab-encoder/MMBench'"]),
                         ("mme", ["mme/MME_Benchmark_release_version", "'lmms-lab/MME' is not"]),
                         ("mmmu-val", ["'MMMU/MMMU' is not in the local hub cache", "'lmms-lab/MMMU'"]),
                         ("pope-random", ["pope/coco_pope_random.json", "'lmms-lab/POPE' is not"])):
        code = main(["run", "--model", "scripted-mc", "--tasks", task, "--data-dir", str(tmp_path),
                     "--output-dir", str(tmp_path / "out"), "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert all(p in err for p in places) and "never downloads" in err, err


def test_the_llava_suite_runs_from_official_layouts_and_names_missing_data(capsys, official, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    data = tmp_path / "data"
    shutil.copytree(official, data)
    bf.write_official(data)  # VQAv2, GQA, VizWiz, TextVQA
    res, _ = run_tasks([], data, tmp_path / "out", "--suite", "llava-1.5")
    assert set(res) == {"vqav2-testdev", "gqa-testdev-balanced", "vizwiz-test", "scienceqa-img", "textvqa-val",
                        "pope", "mme", "mmbench-dev-en", "mmbench-dev-cn", "seedbench-img"}
    check_subset(values(res["mme"]), mcf.MME_EXPECTED)
    # the paper's table from the store: the paper's column order, the run's row, the published rows
    code = main(["leaderboard", "llava-1.5", "--store", str(tmp_path / "out" / "results.sqlite"), "--format", "md",
                 "--resamples", "50"])
    table = capsys.readouterr().out
    assert code == 0
    header = next(line for line in table.splitlines() if line.startswith("|") and "GQA" in line)
    labels = ["VQAv2", "GQA", "VizWiz", "SciQA-IMG", "TextVQA", "POPE", "MME", "MMB", "MMB-CN", "SEED-IMG"]
    assert [header.index(f" {label} ") for label in labels] == sorted(header.index(f" {label} ") for label in labels)
    assert "LLaVA-1.5-7B (published" in table and "scripted-mc" in table
    shutil.rmtree(data / "mme")
    shutil.rmtree(data / "seed_bench")
    code = main(["run", "--model", "scripted-mc", "--suite", "llava-1.5", "--data-dir", str(data),
                 "--output-dir", str(tmp_path / "out2"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "task 'mme': no copy of its data found" in err and "mme/MME_Benchmark_release_version" in err


def test_a_suite_names_every_task_whose_data_is_missing(capsys, official, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    register_scripted()
    code = main(["run", "--model", "scripted-mc", "--suite", "hallucination", "--data-dir", str(tmp_path),
                 "--output-dir", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "task 'pope'" in err and "task 'mme'" in err


def test_a_tiny_llava_runs_the_benchmarks_from_their_official_layouts(official, hub, tmp_path, monkeypatch):
    import tiny_vlms

    offline_hub(monkeypatch, hub, tmp_path / "datasets-cache")
    folder = tiny_vlms.make_tiny_llava(tmp_path / "llava")
    code = main(["run", "--model", "hf-llava", "--model-args", f"pretrained={folder}", "--gen-kwargs",
                 "max_new_tokens=3", "--tasks", "mmbench-dev-en,mmmu-val,pope,mme,mmmu-test", "--data-dir",
                 str(official), "--output-dir", str(tmp_path / "out"), "--no-progress", "--no-cache"])
    assert code == 0
    run_dir = sorted(p for p in (tmp_path / "out").iterdir() if p.is_dir())[-1]
    res = {r.task: r for r in RunResult.read(run_dir).results}
    for task, r in res.items():
        assert r.n_failed == 0 and r.n_items >= 4, task
        assert all("USER:" in p for p in prompts(run_dir, r)), task
    two = next(s for s in samples(run_dir, res["mmmu-val"]) if s["id"] == "validation_Physics_2")
    assert two["passes"][0]["prompt_sent"].startswith("USER: <image>\n<image>\nCompare <image 2> with <image 1>.")
    assert 0.0 <= values(res["pope"])["pope_f1[mean over category]"] <= 1.0


def test_mmmu_interleaved_places_each_image_at_its_tag(official, hub, tmp_path, monkeypatch):
    import tiny_vlm_families_a

    offline_hub(monkeypatch, hub, tmp_path / "datasets-cache")
    folder = tiny_vlm_families_a.make_tiny_gemma3(tmp_path / "gemma3")
    code = main(["run", "--model", str(folder), "--gen-kwargs", "max_new_tokens=3", "--tasks",
                 "mmmu-val-interleaved", "--data-dir", str(official), "--output-dir", str(tmp_path / "out"),
                 "--no-progress", "--no-cache"])
    assert code == 0
    run_dir = sorted(p for p in (tmp_path / "out").iterdir() if p.is_dir())[-1]
    result = RunResult.read(run_dir).results[0]
    assert result.n_failed == 0 and result.task_info["config"]["images"] == "interleaved"
    by_id = {s["id"]: s for s in samples(run_dir, result)}
    sent = by_id["validation_Physics_2"]["passes"][0]["prompt_sent"]
    # "Compare <image 2> with <image 1>.": an image at each tag (4 tokens each; Gemma 3's template trims the
    # text pieces around them)
    assert "\nCompare<start_of_image>with<start_of_image>. Which is heavier?\n(A) the ball" in sent
    assert by_id["validation_Physics_2"]["passes"][0]["image_tokens"] == 8


# -- the layouts' traps, loader by loader ----------------------------------------------------------------------

def load(fmt: str, cfg: dict, data_dir: Path):
    from mmbench.data.sources import DataContext
    from mmbench.registry import DATA_FORMATS

    return DATA_FORMATS.get(fmt)(cfg, DataContext("t", data_dir=data_dir))


def test_mmbench_tsv_rows_become_questions_with_their_passes(official, tmp_path):
    from mmbench.data.images import load_image

    data = load("mmbench-tsv", {"tsv": "mmbench/MMBench_DEV_EN.tsv"}, official)
    by_id = {r["id"]: r for r in data.records}
    sky = by_id["2"]
    assert sky["pass_indices"] == [2, 1000002, 2000002] and sky["options"] == ["blue", "green", "red"]
    assert [p["answer"] for p in sky["passes"]] == ["A", "C", "B"]
    assert load_image(sky["image"]).getpixel((0, 0)) == bf.COLOURS["blue"]  # the passes' cells name row 2
    assert by_id["1"]["options"] == ["cat", "dog"] and by_id["1"]["hint"] == "Think of pets."  # NaN C, D dropped
    assert by_id["0"]["hint"] is None and by_id["0"]["l2_category"] == "coarse_perception"
    # a file without circular copies: no passes, so `circular: true` rotates the options itself
    import pandas as pd

    rows = [r for r in mcf.mmbench_rows(mcf.MMBENCH_EN, shared_images=False) if r["index"] < 1_000_000]
    pd.DataFrame(rows).to_csv(tmp_path / "plain.tsv", sep="\t", index=False)
    plain = load("mmbench-tsv", {"tsv": str(tmp_path / "plain.tsv")}, tmp_path)
    assert all("passes" not in r for r in plain.records) and plain.fingerprint != data.fingerprint
    # an image cell naming a row that holds no image: one line naming the file and the row
    bad = mcf.mmbench_rows(mcf.MMBENCH_EN)
    bad[-1]["image"] = "77"
    pd.DataFrame(bad).to_csv(tmp_path / "bad.tsv", sep="\t", index=False)
    with pytest.raises(DataError, match=r"bad.tsv index 1000003: its image cell '77' refers to row 77"):
        load("mmbench-tsv", {"tsv": str(tmp_path / "bad.tsv")}, tmp_path)


def test_mmmu_single_config_copy(hub, tmp_path, monkeypatch):
    offline_hub(monkeypatch, hub, tmp_path / "datasets-cache")
    data = load("mmmu", {"path": "lmms-lab/MMMU", "per_subject": False, "split": "validation", "download": False},
                tmp_path)
    assert [r["id"] for r in data.records] == [r[0] for r in mcf.MMMU_VAL] and "(1 config" in data.description
    physics = data.records[1]
    assert physics["subject"] == "Physics" and physics["discipline"] == "Science" and len(physics["images"]) == 2
    assert data.records[2]["options"] == [] and data.records[2]["question_type"] == "open"
    one = load("mmmu", {"path": "MMMU/MMMU", "name": "Math", "split": "validation", "download": False}, tmp_path)
    assert [r["id"] for r in one.records] == ["validation_Math_1", "validation_Math_5"]
    with pytest.raises(DataError, match="MMMU has no subject 'Maths'"):
        load("mmmu", {"path": "MMMU/MMMU", "subjects": ["Maths"]}, tmp_path)
    # a hub cache holding only some subjects' files: missing data, so the task falls back to lmms-lab/MMMU
    from mmbench.tasks.base import load_first_source
    from mmbench.tasks.catalog import TaskCatalog

    partial = tmp_path / "hub"
    shutil.copytree(hub, partial)
    shutil.rmtree(partial / "datasets--MMMU--MMMU" / "snapshots" / mcf.commit_of("MMMU/MMMU") / "Physics")
    offline_hub(monkeypatch, partial, tmp_path / "datasets-cache-2")
    data = load_first_source("mmmu-val", TaskCatalog().task_spec("mmmu-val").config["data"], tmp_path)
    assert data.description.startswith("MMMU lmms-lab/MMMU@") and len(data.records) == 6


def test_inline_options_and_mmmu_images():
    from mmbench.data.mc_sources import inline_options, mmmu_image_numbers

    assert inline_options("Q?\nOptions: A: red, blue, B: green, C: yellow") == ["red, blue", "green", "yellow"]
    assert inline_options("What is 3:2 as a ratio?\nOptions: A: 1.5, B: 2:3") == ["1.5", "2:3"]
    assert inline_options("No options here") == []
    assert mmmu_image_numbers("<image 2> and <image 1>", ["<image 3>", "x", "<image 1>"]) == [1, 2, 3]


def test_malformed_files_are_one_line_errors(official, tmp_path):
    (tmp_path / "mme" / "existence").mkdir(parents=True)
    with pytest.raises(DataError, match="lacks the MME subtask folder"):
        load("mme", {"root": "mme"}, tmp_path)
    shutil.copytree(official / "mme", tmp_path / "mme2")
    txt = next((tmp_path / "mme2" / "MME_Benchmark_release_version" / "color").glob("*.txt"))
    txt.write_text("Is it red?\tMaybe\n")
    with pytest.raises(DataError, match=r"color/.*\.txt line 1 is not 'question<TAB>Yes\|No'"):
        load("mme", {"root": "mme2/MME_Benchmark_release_version"}, tmp_path)
    with pytest.raises(DataError, match="video dimension"):
        load("seed-bench", {"annotations": "seed_bench/SEED-Bench.json", "images": "seed_bench/SEED-Bench-image",
                            "dimensions": [1, 10]}, official)
    pope = tmp_path / "pope.jsonl"
    pope.write_text('{"question_id": 1, "image": "x.jpg", "text": "q?", "label": "yes"}\n')
    with pytest.raises(DataError, match="no category"):
        load("pope", {"file": str(pope), "images": str(tmp_path)}, tmp_path)
    assert load("pope", {"file": str(pope), "category": "random", "images": str(tmp_path)},
                tmp_path).records[0]["id"] == "random/1"
