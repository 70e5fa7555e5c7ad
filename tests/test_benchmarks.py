"""The standard benchmark tasks (VQAv2, OK-VQA, TextVQA, VizWiz, GQA, DocVQA, InfographicVQA, ChartQA, COCO /
Flickr30k / NoCaps captions) end to end, from fixtures written in each benchmark's official release layout
and in the Hugging Face hub-cache layout of its lmms-lab copy: scores equal the official rules worked out by
hand, the prompts follow the named protocols, submission files have the servers' formats, and missing data
is one line naming where to put it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import benchmark_fixtures as bf
import tiny_vlms
from mmbench.cli.main import main
from mmbench.registry import MODELS
from mmbench.results import RunResult

VQA_TASKS = ["vqav2-val", "okvqa-val", "textvqa-val", "textvqa-val-noocr", "vizwiz-val", "gqa-testdev-balanced",
             "docvqa-val", "infovqa-val", "chartqa-test"]
SUBMISSION_TASKS = ["vqav2-testdev", "vizwiz-test"]
CAPTION_TASKS = ["coco-captions-karpathy", "flickr30k-captions", "nocaps-val"]


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> Path:
    return bf.write_official(tmp_path_factory.mktemp("bench-official"))


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Path:
    return bf.write_hf_cache(tmp_path_factory.mktemp("bench-hub"))


@pytest.fixture
def hf_cache(hub, monkeypatch, tmp_path) -> Path:
    """Point the hub cache (and the datasets cache the parquet files are prepared into) at the fixture."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
    return hub


@pytest.fixture(autouse=True)
def scripted():
    bf.Scripted.answers = bf.scripted_answers()
    MODELS.register("scripted", bf.Scripted, overwrite=True)
    yield
    MODELS._objects.pop("scripted", None)  # leave the registry as it was


def run(capsys, tasks: list[str], data_dir: Path, out: Path, model: str = "scripted", *extra: str):
    code = main(["run", "--model", model, "--tasks", ",".join(tasks), "--data-dir", str(data_dir),
                 "--output-dir", str(out), "--no-progress", "--no-cache", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    return {r.task: r for r in RunResult.read(run_dir).results}, run_dir


def values(result) -> dict:
    return {m["name"]: m["value"] for m in result.metrics}


def samples(run_dir: Path, result) -> list[dict]:
    return [json.loads(line) for line in (run_dir / result.files["samples"]).read_text().splitlines()]


def check_vqa_scores(res: dict, hf: bool = False) -> None:
    approx = pytest.approx
    v = values(res["vqav2-val"])
    assert v["vqa_accuracy"] == approx(bf.VQAV2_EXPECTED["vqa_accuracy"], abs=1e-12)
    assert v["vqa_accuracy[answer_type=yes/no]"] == approx(0.6, abs=1e-12)
    assert values(res["okvqa-val"])["vqa_accuracy"] == approx(bf.VQAV2_EXPECTED["vqa_accuracy"], abs=1e-12)
    for task in ("textvqa-val", "textvqa-val-noocr"):  # EvalAI rules: "dog's" and "1,000" match
        assert values(res[task])["vqa_accuracy"] == approx(bf.TEXTVQA_EXPECTED, abs=1e-12)
    v = values(res["vizwiz-val"])
    expected = dict(bf.VIZWIZ_EXPECTED)
    if hf:  # lmms-lab/VizWiz-VQA carries no answerable flags: no answerability breakdown or AP/F1
        expected = {k: x for k, x in expected.items() if "answerable" not in k}
        assert v["unanswerable_ap"] is None and v["unanswerable_f1"] is None
    assert {k: v[k] for k in expected} == approx(expected, abs=1e-12)
    assert values(res["gqa-testdev-balanced"])["gqa_accuracy"] == approx(2 / 3, abs=1e-12)
    if not hf:  # the official file has the structural types; lmms-lab's instructions config is read without them
        assert {k: values(res["gqa-testdev-balanced"])[k] for k in bf.GQA_EXPECTED} == approx(bf.GQA_EXPECTED)
    assert res["gqa-testdev-balanced"].n_items == 3  # the unbalanced question is not scored
    assert values(res["docvqa-val"])["anls"] == approx(bf.DOCVQA_EXPECTED, abs=1e-12)
    assert values(res["infovqa-val"])["anls"] == approx(2 / 3, abs=1e-12)
    v = values(res["chartqa-test"])
    assert {k: v[k] for k in bf.CHARTQA_EXPECTED} == approx(bf.CHARTQA_EXPECTED, abs=1e-12)


def test_official_layouts_score_exactly_as_the_official_rules(capsys, official, tmp_path):
    res, run_dir = run(capsys, VQA_TASKS + SUBMISSION_TASKS, official, tmp_path / "out")
    check_vqa_scores(res)
    for task in VQA_TASKS:
        assert res[task].n_failed == 0 and res[task].task_info["protocol"], task
    # the exact prompt of the protocol, per item, with the OCR tokens where the protocol has them
    text = {s["question"]: s["prompt_sent"] for s in samples(run_dir, res["textvqa-val"])}
    assert text["whose bone is it?"] == ("whose bone is it?\nReference OCR token: DOG'S, BONE\n"
                                         "Answer the question using a single word or phrase.")
    plain = {s["question"]: s["prompt_sent"] for s in samples(run_dir, res["textvqa-val-noocr"])}
    assert plain["whose bone is it?"] == "whose bone is it?\nAnswer the question using a single word or phrase."
    viz = samples(run_dir, res["vizwiz-val"])[0]
    assert "respond with 'Unanswerable'" in viz["prompt_sent"] and viz["said_unanswerable"] is True
    assert res["textvqa-val"].task_info["protocol"].startswith("LLaVA-1.5 TextVQA")
    variants = {m["name"]: m["variant"] for m in res["vizwiz-val"].metrics}
    assert variants["vqa_accuracy"].startswith("VizWiz evaluator")
    assert res["vizwiz-val"].aggregator == "vqa_accuracy+unanswerable"


def test_hf_cache_layouts_give_the_same_scores_offline(capsys, hf_cache, tmp_path):
    empty = tmp_path / "no-official-files"
    empty.mkdir()
    res, run_dir = run(capsys, VQA_TASKS + ["vqav2-testdev"], empty, tmp_path / "out")
    check_vqa_scores(res, hf=True)
    assert "lmms-lab/VQAv2@0123456789ab (local hub cache)" in res["vqav2-val"].task_info["data"]["description"]
    assert any("no breakdown by 'answerable'" in n for n in res["vizwiz-val"].notes)
    text = {s["question"]: s["prompt_sent"] for s in samples(run_dir, res["textvqa-val"])}
    assert "Reference OCR token: $1,000\n" in text["what is the price?"]  # lmms-lab's ocr_tokens column
    sub = json.loads((run_dir / res["vqav2-testdev"].files["artifacts"] / "submission.json").read_text())
    assert sub == [{"question_id": 100, "answer": "two"}, {"question_id": 101, "answer": "yes"}]


def test_submission_files_have_the_servers_formats(capsys, official, tmp_path):
    res, run_dir = run(capsys, SUBMISSION_TASKS, official, tmp_path / "out")
    for task in SUBMISSION_TASKS:
        assert res[task].metrics == [] and any("submission file" in n for n in res[task].notes)
    sub = json.loads((run_dir / res["vqav2-testdev"].files["artifacts"] / "submission.json").read_text())
    # test-dev answers, then every other test2015 question with an empty answer (as LLaVA-1.5 submits)
    assert sub == [{"question_id": 100, "answer": "two"}, {"question_id": 101, "answer": "yes"},
                   {"question_id": 102, "answer": ""}, {"question_id": 999, "answer": ""}]
    assert all(isinstance(r["question_id"], int) and isinstance(r["answer"], str) for r in sub)
    viz = json.loads((run_dir / res["vizwiz-test"].files["artifacts"] / "submission.json").read_text())
    assert viz == [{"image": f"VizWiz_test_{i:08d}.jpg", "answer": a}
                   for i, (_, a, *_) in enumerate(bf.VIZWIZ)]


@pytest.mark.java
def test_caption_benchmarks_equal_the_coco_evaluation(capsys, official, tmp_path):
    from mmbench.metrics.captions import CaptionScorer

    res, run_dir = run(capsys, CAPTION_TASKS, official, tmp_path / "out")
    preds = {str(i): f"a {c} shape" for i, c, _, _ in bf.CAPTION_IMAGES}
    refs = {str(i): r for i, _, r, _ in bf.CAPTION_IMAGES}
    with CaptionScorer(spice=False) as scorer:
        direct = {v.name: v.value for v in scorer.score(preds, refs).values}
        by_domain = {}
        for domain in ("in-domain", "near-domain", "out-domain"):
            ids = [str(i) for i, _, _, d in bf.CAPTION_IMAGES if d == domain]
            by_domain[domain] = {v.name: v.value for v in scorer.score({i: preds[i] for i in ids},
                                                                        {i: refs[i] for i in ids}).values}
    for task in CAPTION_TASKS:
        got = values(res[task])
        assert res[task].n_items == 4 and res[task].n_failed == 0
        for name in ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr-D"):
            assert got[name] == pytest.approx(direct[name], abs=1e-12), (task, name)
    got = values(res["nocaps-val"])
    for domain, expected in by_domain.items():  # each domain scored on its own images (its own CIDEr-D idf)
        for name in ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr-D"):
            assert got[f"{name}[domain={domain}]"] == pytest.approx(expected[name], abs=1e-12), (domain, name)
    near = [i for i, *_, d in bf.CAPTION_IMAGES if d == "near-domain"]
    assert len(near) == 2 and got["CIDEr-D[domain=near-domain]"] != pytest.approx(
        sum(s["cider_d"] for s in samples(run_dir, res["nocaps-val"]) if int(s["id"]) in near) / 2)
    # the leaderboard's aggregator recomputes the per-domain values from the per-item statistics
    from mmbench.metrics.api import aggregator_for
    from mmbench.store import unpack_stats

    _, stats = unpack_stats((run_dir / res["nocaps-val"].files["item_stats"]).read_bytes())
    again = aggregator_for(res["nocaps-val"].aggregator)(stats)
    assert again["CIDEr-D[domain=near-domain]"] == pytest.approx(got["CIDEr-D[domain=near-domain]"], abs=1e-12)


@pytest.mark.java
def test_nocaps_from_the_hf_cache_has_overall_scores_only(capsys, hf_cache, official, tmp_path):
    empty = tmp_path / "none"
    empty.mkdir()
    res, _ = run(capsys, ["nocaps-val"], empty, tmp_path / "hf")
    official_res, _ = run(capsys, ["nocaps-val"], official, tmp_path / "off")
    hf, off = values(res["nocaps-val"]), values(official_res["nocaps-val"])
    assert hf["CIDEr-D"] == pytest.approx(off["CIDEr-D"], abs=1e-12)
    assert not any("domain=" in k for k in hf) and any("no breakdown by 'domain'" in n for n in res["nocaps-val"].notes)


def test_missing_data_is_one_line_naming_every_place(capsys, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    code = main(["run", "--model", "scripted", "--tasks", "docvqa-val", "--data-dir", str(tmp_path),
                 "--output-dir", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "docvqa/val/val_v1.0_withQT.json" in err and "'lmms-lab/DocVQA' is not in the local hub cache" in err
    assert "never downloads" in err and "Put the SP-DocVQA val annotations" in err


def test_corrupt_image_is_a_failed_item_scored_wrong(capsys, official, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(official / "docvqa", data / "docvqa")
    (data / "docvqa" / "val" / "documents" / "doc0_1.png").write_bytes(b"not a png")
    res, _ = run(capsys, ["docvqa-val"], data, tmp_path / "out")
    r = res["docvqa-val"]
    assert r.n_failed == 1 and r.n_items == 3
    assert values(r)["anls"] == pytest.approx((0.0 + 0.5 + (1 - 1 / 3)) / 3, abs=1e-12)


def test_lmms_eval_names_are_aliases(capsys, official, tmp_path):
    res, _ = run(capsys, ["textvqa_val", "chartqa", "gqa"], official, tmp_path / "out")
    assert set(res) == {"textvqa-val-noocr", "chartqa-test", "gqa-testdev-balanced"}
    code = main(["run", "--model", "scripted", "--tasks", "textvqa_vall", "--output-dir", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "did you mean 'textvqa_val'" in err


def test_prompt_overrides_per_model_family_and_the_command_line(capsys, official, tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    src = Path(__file__).resolve().parents[1] / "tasks" / "docvqa-val.yaml"
    text = src.read_text().replace("task: docvqa-val", "task: docvqa-fam").replace("aliases: [docvqa_val]\n", "")
    text += 'prompt_overrides: {"scripted": "Q: {question} A:", "blip-2": "Question: {question} Short answer:"}\n'
    (tasks / "docvqa-fam.yaml").write_text(text)
    res, run_dir = run(capsys, ["docvqa-fam"], official, tmp_path / "out", "scripted", "--include-path", str(tasks))
    sample = samples(run_dir, res["docvqa-fam"])[0]
    assert sample["prompt_sent"] == "Q: what is the greeting? A:"
    info = res["docvqa-fam"].task_info
    assert info["prompt_template"] == "Q: {question} A:" and info["prompt_template_source"] == "prompt_overrides['scripted']"
    res, run_dir = run(capsys, ["docvqa-fam"], official, tmp_path / "out2", "scripted", "--include-path", str(tasks),
                       "--prompt", "{question}?")
    assert samples(run_dir, res["docvqa-fam"])[0]["prompt_sent"] == "what is the greeting??"


@pytest.mark.java
def test_a_tiny_llava_runs_every_benchmark_from_its_official_layout(capsys, official, tmp_path):
    folder = tiny_vlms.make_tiny_llava(tmp_path / "llava")
    res, run_dir = run(capsys, VQA_TASKS + SUBMISSION_TASKS + CAPTION_TASKS, official, tmp_path / "out", "hf-llava",
                       "--model-args", f"pretrained={folder}", "--gen-kwargs", "max_new_tokens=3")
    for task, r in res.items():
        assert r.n_failed == 0 and r.n_items >= 2, task
        first = samples(run_dir, r)[0]
        assert "USER:" in first["prompt_sent"] and r.task_info["prompt_template"].split("{")[0] in first["prompt_sent"]
        assert task in CAPTION_TASKS or first["question"] in first["prompt_sent"], task
        assert isinstance(first["generation"], str)
    for task in VQA_TASKS:
        assert all(m["value"] is None or 0.0 <= m["value"] <= 1.0 for m in res[task].metrics), task


def score(capsys, *args: str) -> dict:
    code = main(["score", "vqa", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_score_reproduces_each_run_from_its_artifacts_and_the_official_files(capsys, official, tmp_path):
    res, run_dir = run(capsys, VQA_TASKS, official, tmp_path / "out")
    for task in VQA_TASKS:  # the run's own files: the task's metric and options are recorded in them
        art = run_dir / res[task].files["artifacts"]
        out = score(capsys, "--predictions", str(art / "predictions.json"), "--references", str(art / "annotations.json"))
        first = res[task].metrics[0]
        assert out["metrics"][first["name"]] == pytest.approx(first["value"], abs=1e-12), task
    # predictions written as each benchmark's tooling writes them, scored against the official release files
    answers = {s["question"]: s["answer"] for s in samples(run_dir, res["docvqa-val"])}
    rows = json.loads((official / "docvqa/val/val_v1.0_withQT.json").read_text())["data"]
    (tmp_path / "rrc.json").write_text(json.dumps([{"questionId": r["questionId"], "answer": answers[r["question"]]}
                                                   for r in rows]))
    out = score(capsys, "--predictions", str(tmp_path / "rrc.json"),
                "--references", str(official / "docvqa/val/val_v1.0_withQT.json"))
    assert out["format"] == "docvqa" and out["metrics"]["anls"] == pytest.approx(bf.DOCVQA_EXPECTED, abs=1e-12)
    gqa = json.loads((official / "gqa/testdev_balanced_questions.json").read_text())
    by_q = {s["question"]: s["generation"] for s in samples(run_dir, res["gqa-testdev-balanced"])}
    (tmp_path / "gqa.json").write_text(json.dumps([{"questionId": k, "prediction": by_q[q["question"]]}
                                                   for k, q in gqa.items() if q["question"] in by_q]))
    out = score(capsys, "--predictions", str(tmp_path / "gqa.json"),
                "--references", str(official / "gqa/testdev_balanced_questions.json"))
    assert out["metrics"] == pytest.approx({k: v for k, v in bf.GQA_EXPECTED.items()}, abs=1e-12)
    chart = {s["question"]: s["answer"] for s in samples(run_dir, res["chartqa-test"])}
    (tmp_path / "chart.json").write_text(json.dumps(
        [{"imgname": e["imgname"], "query": e["query"], "answer": chart[e["query"]]} for split in ("human", "augmented")
         for e in json.loads((official / f"chartqa/test/test_{split}.json").read_text())]))
    out = score(capsys, "--predictions", str(tmp_path / "chart.json"),
                "--references", str(official / "chartqa/test/test_human.json"),
                "--references", str(official / "chartqa/test/test_augmented.json"))
    assert out["metrics"]["relaxed_accuracy[mean over split]"] == pytest.approx(
        bf.CHARTQA_EXPECTED["relaxed_accuracy[mean over split]"], abs=1e-12)
