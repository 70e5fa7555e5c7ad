"""VQA and captioning end to end through the CLI with tiny LLaVA, Idefics and BLIP-2 models: identical
predictions and scores at batch sizes 1, 3 and 16, `mmbench score` reproducing a run, the official VQAv2
file format, and bad prediction files exiting 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import tiny_models
import tiny_vlms
from mmbench.cli.main import main
from mmbench.results import RunResult

FAMILIES = {"hf-llava": tiny_vlms.make_tiny_llava, "hf-idefics": tiny_vlms.make_tiny_idefics,
            "hf-blip2": tiny_vlms.make_tiny_blip2}
COLOURS = list(tiny_models.COLOURS)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run ~10x faster on one thread when the cores are busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def vlms(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vlms")
    return {name: make(root / name) for name, make in FAMILIES.items()}


def answers(main_answer: str, other: str) -> list[str]:
    return [main_answer] * 8 + [other] * 2


@pytest.fixture(scope="module")
def gen_data(tmp_path_factory) -> tuple[Path, Path]:
    """A VQA manifest (questions of different lengths), a captions manifest, and VQAv2-format files."""
    root = tmp_path_factory.mktemp("gendata")
    vqa, caps, coco = [], [], []
    combos = [(c, s) for c in COLOURS for s in tiny_models.SHAPES]
    for i, (colour, shape) in enumerate(combos):
        tiny_models.draw(colour, shape, jitter=i % 5).save(root / f"img{i}.png")
        vqa.append({"id": f"q{i}a", "image": f"img{i}.png", "question": "what color is the shape?" if i % 2
                    else "what is the color of the shape in the middle of this small picture?",
                    "answers": answers(colour, "dark " + colour), "answer_type": "other",
                    "question_type": "what color"})
        vqa.append({"id": f"q{i}b", "image": f"img{i}.png", "question": "is it a circle?",
                    "answers": answers("yes" if shape == "circle" else "no", "maybe"), "answer_type": "yes/no",
                    "question_type": "is it"})
        caps.append({"id": f"img{i}", "image": f"img{i}.png",
                     "captions": [f"a {colour} {shape}", f"a photo of a {colour} {shape}", f"the {shape} is {colour}"]})
        (root / "coco").mkdir(exist_ok=True)
        shutil.copy(root / f"img{i}.png", root / "coco" / f"COCO_val2014_{i:012d}.jpg")
        coco.append((i, colour))
    (root / "vqa.jsonl").write_text("\n".join(json.dumps(r) for r in vqa) + "\n")
    (root / "caps.jsonl").write_text("\n".join(json.dumps(r) for r in caps) + "\n")
    (root / "questions.json").write_text(json.dumps({"questions": [
        {"image_id": i, "question": "what color is it?", "question_id": 1000 + i} for i, _ in coco]}))
    (root / "annotations.json").write_text(json.dumps({"annotations": [
        {"question_id": 1000 + i, "image_id": i, "answer_type": "other", "question_type": "what color",
         "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1}
                     for k, a in enumerate(answers(c, "red"))]} for i, c in coco]}))
    tasks = tmp_path_factory.mktemp("gentasks")
    (tasks / "v.yaml").write_text("task: tiny-vqa\nkind: vqa\nmax_new_tokens: 6\ndata: {format: jsonl, path: vqa.jsonl}\n")
    (tasks / "c.yaml").write_text("task: tiny-captions\nkind: captioning\nmax_new_tokens: 8\n"
                                  "data: {format: jsonl, path: caps.jsonl}\n")
    (tasks / "o.yaml").write_text("task: tiny-vqav2\nkind: vqa\nmax_new_tokens: 6\ndata: {format: vqav2, "
                                  "questions: questions.json, annotations: annotations.json, images: coco}\n")
    return root, tasks


def run(capsys, model, folder, data, tasks, out, task_names, *extra):
    code = main(["run", "--model", model, "--model-args", f"pretrained={folder}", "--tasks", task_names,
                 "--include-path", str(tasks), "--data-dir", str(data), "--output-dir", str(out),
                 "--no-progress", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    return RunResult.read(run_dir), run_dir


def predictions(run_dir: Path, result) -> list[tuple]:
    lines = [json.loads(x) for x in (run_dir / result.files["samples"]).read_text().splitlines()]
    return [(s["id"], s["prompt_sent"], s["generation"]) for s in lines]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_vqa_identical_at_batch_sizes_1_3_16(capsys, family, vlms, gen_data, tmp_path):
    data, tasks = gen_data
    runs = [run(capsys, family, vlms[family], data, tasks, tmp_path / f"bs{bs}", "tiny-vqa", "--batch-size", str(bs),
                "--no-cache") for bs in (1, 3, 16)]
    preds = [predictions(d, r.results[0]) for r, d in runs]
    assert preds[0] == preds[1] == preds[2]
    assert len({p[2] for p in preds[0]}) > 1  # the generations are not all the same: the test can fail
    assert runs[0][0].results[0].metrics == runs[1][0].results[0].metrics == runs[2][0].results[0].metrics
    result = runs[0][0].results[0]
    assert result.n_items == 24
    names = {m["name"] for m in result.metrics}
    assert {"vqa_accuracy", "vqa_accuracy[answer_type=yes/no]", "vqa_accuracy[question_type=what color]"} <= names
    assert result.task_info["generation"]["max_new_tokens"] == 6


def test_vqa_score_reproduces_run_and_rejects_bad_files(capsys, vlms, gen_data, tmp_path):
    data, tasks = gen_data
    result_run, run_dir = run(capsys, "hf-llava", vlms["hf-llava"], data, tasks, tmp_path / "out", "tiny-vqa,tiny-vqav2")
    for result in result_run.results:
        art = run_dir / result.files["artifacts"]
        code = main(["score", "vqa", "--predictions", str(art / "predictions.json"),
                     "--references", str(art / "annotations.json")])
        out = json.loads(capsys.readouterr().out)
        assert code == 0 and out["metrics"] == {m["name"]: m["value"] for m in result.metrics}
    art = run_dir / result_run.results[0].files["artifacts"]
    preds = json.loads((art / "predictions.json").read_text())
    for broken, message in [(preds + preds[:1], "duplicate question_id"), (preds[1:], "no prediction for question_id"),
                            (preds + [{"question_id": "nope", "answer": "x"}], "'nope' is not in the references"),
                            ({"question_id": 1}, "must be a JSON list")]:
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(broken))
        code = main(["score", "vqa", "--predictions", str(bad), "--references", str(art / "annotations.json")])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.java
def test_captioning_end_to_end_and_score_captions(capsys, vlms, gen_data, tmp_path):
    data, tasks = gen_data
    result_run, run_dir = run(capsys, "hf-idefics", vlms["hf-idefics"], data, tasks, tmp_path / "out",
                              "tiny-captions", "--batch-size", "5")
    result = result_run.results[0]
    values = {m["name"]: m for m in result.metrics}
    assert {"Bleu_4", "METEOR", "ROUGE_L", "CIDEr-D"} <= set(values)
    assert values["SPICE"]["value"] is None and "SPICE unavailable" in values["SPICE"]["unavailable"]
    art = run_dir / result.files["artifacts"]
    code = main(["score", "captions", "--predictions", str(art / "predictions.json"),
                 "--references", str(art / "references.json")])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["metrics"] == {m["name"]: m["value"] for m in result.metrics}
    # --limit: the CIDEr-D subset caveat travels with the result
    limited, _ = run(capsys, "hf-idefics", vlms["hf-idefics"], data, tasks, tmp_path / "lim", "tiny-captions",
                     "--limit", "4")
    assert any("not comparable" in n for n in limited.results[0].notes)


def test_per_run_generation_settings_override_the_task_file(capsys, vlms, gen_data, tmp_path):
    data, tasks = gen_data
    code = main(["run", "--model", "hf-llava", "--model-args", f"pretrained={vlms['hf-llava']}", "--tasks",
                 "tiny-vqa", "--include-path", str(tasks), "--data-dir", str(data), "--output-dir", str(tmp_path),
                 "--no-progress", "--limit", "3", "--gen-kwargs", "max_new_tokens=3,num_beams=2",
                 "--system-prompt", "Be brief.", "--prompt", "Q: {question} A:"])
    assert code == 0, capsys.readouterr().err
    run_dir = sorted(p for p in tmp_path.iterdir() if p.is_dir())[-1]
    result = RunResult.read(run_dir).results[0]
    assert result.task_info["generation"]["max_new_tokens"] == 3 and result.task_info["generation"]["num_beams"] == 2
    assert result.task_info["system_prompt"] == "Be brief." and result.task_info["prompt_template"] == "Q: {question} A:"
    assert all("Q: " in p[1] and "Be brief." in p[1] for p in predictions(run_dir, result))
    code = main(["run", "--model", "hf-llava", "--model-args", f"pretrained={vlms['hf-llava']}", "--tasks",
                 "tiny-vqa", "--include-path", str(tasks), "--data-dir", str(data), "--output-dir", str(tmp_path),
                 "--gen-kwargs", "max_tokens=3"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown setting 'max_tokens'" in err
