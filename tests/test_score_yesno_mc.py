"""`mmbench score pope | mme | mc` on the files the benchmarks' own tools read and write."""

from __future__ import annotations

import json

import pytest

from mmbench.metrics import yesno


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_score_pope_pairs_llava_answers_by_id_and_official_files_by_position(cli, tmp_path):
    cats = {"random": (["yes", "no", "yes", "no"], ["Yes", "No", "No", "Yes, no doubt"]),
            "adversarial": (["yes", "no", "yes", "no"], ["Yes", "Yes", "Yes", "No"])}
    refs, answers, qid = [], [], 0
    for cat, (labels, said) in cats.items():
        path = _jsonl(tmp_path / f"coco_pope_{cat}.json",
                      [{"question_id": k + 1, "image": f"COCO_val2014_{k:012d}.jpg", "text": "Is there a dog?",
                        "label": lab} for k, lab in enumerate(labels)])
        refs.append(path)
        answers.append(_jsonl(tmp_path / f"ans_{cat}.jsonl", [{"question": "q", "answer": a} for a in said]))
    code, out, err = cli("score", "pope", "--predictions", str(answers[0]), "--references", str(refs[0]),
                         "--predictions", str(answers[1]), "--references", str(refs[1]))
    assert code == 0, err
    v = json.loads(out)["metrics"]
    # random: TP1 FN1 TN2 FP0 ("Yes, no doubt" is a no) -> P 1, R 0.5; adversarial: TP2 FP1 TN1 -> P 2/3, R 1
    assert v["pope_f1[category=random]"] == pytest.approx(2 / 3)
    assert v["pope_f1[category=adversarial]"] == pytest.approx(0.8)
    assert v["pope_f1[mean over category]"] == pytest.approx((2 / 3 + 0.8) / 2)
    # LLaVA's answers file carries question_ids: matched by id in any order (one question file with categories)
    llava_q = _jsonl(tmp_path / "llava_pope_test.jsonl", [
        {"question_id": 10 + k, "image": "x.jpg", "text": "q", "label": lab, "category": "popular"}
        for k, lab in enumerate(["yes", "no", "no"])])
    llava_a = _jsonl(tmp_path / "answers.jsonl", [{"question_id": 12, "text": "No"}, {"question_id": 10, "text": "Yes"},
                                                  {"question_id": 11, "text": "There is no dog."}])
    code, out, _ = cli("score", "pope", "--predictions", str(llava_a), "--references", str(llava_q))
    assert code == 0 and json.loads(out)["metrics"]["pope_accuracy[category=popular]"] == 1.0
    code, _, err = cli("score", "pope", "--predictions", str(answers[0]), "--references", str(refs[0]),
                       "--references", str(refs[1]))
    assert code == 2 and "one --predictions file per --references file" in err


def test_score_mme_reads_the_eval_tool_folder(cli, tmp_path):
    lines = {"existence": [("a.jpg", "Is there a dog? Please answer yes or no.", "Yes", "Yes"),
                           ("a.jpg", "Is there a cat? Please answer yes or no.", "No", "Not sure."),
                           ("b.jpg", "Is there a car? Please answer yes or no.", "Yes", "  yes"),
                           ("b.jpg", "Is there a bus? Please answer yes or no.", "No", "  no")],
             "code_reasoning": [("c.png", "Is the output 3? Please answer yes or no.", "Yes", "eyes"),
                                ("c.png", "Is the output 4? Please answer yes or no.", "No", "n")]}
    for sub, rows in lines.items():
        (tmp_path / f"{sub}.txt").write_text("".join("\t".join(r) + "\n" for r in rows))
    code, out, err = cli("score", "mme", "--results", str(tmp_path))
    assert code == 0, err
    v = json.loads(out)["metrics"]
    # existence: "Not sure." is a no (right); the tool does not strip, so "  yes" is other (wrong) while "  no"
    # has "no" in its first 4 characters (right): acc 3/4, acc+ 1/2
    assert v["mme_score[subtask=existence]"] == pytest.approx(75 + 50)
    assert v["mme_score[subtask=code_reasoning]"] == pytest.approx(50 + 0)  # "eyes" is yes, "n" is other
    assert v["mme_perception"] == pytest.approx(125) and v["mme_cognition"] == pytest.approx(50)
    assert "totals leave them out" in json.loads(out)["notes"][0]
    (tmp_path / "count.txt").write_text("a.jpg\tq\tYes\n")
    code, _, err = cli("score", "mme", "--results", str(tmp_path))
    assert code == 2 and "count.txt" in err and len(err.strip().splitlines()) == 1


def test_score_mc_mmmu_answer_dict(cli, tmp_path):
    refs = {"validation_Art_1": {"question_type": "multiple-choice", "ground_truth": "B"},
            "validation_Art_2": {"question_type": "short-answer", "ground_truth": "2.5"},
            "validation_Math_3": {"question_type": "multiple-choice", "ground_truth": "C"},
            "validation_Math_4": {"question_type": "short-answer", "ground_truth": ["Tampa", "Florida"]}}
    preds = {"validation_Art_1": "B", "validation_Art_2": "The answer is 2.50", "validation_Math_3": "(A)"}
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    (tmp_path / "preds.json").write_text(json.dumps(preds))
    code, out, err = cli("score", "mc", "--benchmark", "mmmu", "--references", str(tmp_path / "refs.json"),
                         "--predictions", str(tmp_path / "preds.json"))
    assert code == 0, err
    result = json.loads(out)
    assert result["metrics"]["mmmu_accuracy"] == 0.5 and result["metrics"]["mmmu_accuracy[subject=Math]"] == 0.0
    assert "1 question(s) have no prediction" in result["notes"][-1]


def test_mme_subtasks_are_the_eval_tools() -> None:
    assert len(yesno.MME_PERCEPTION) == 10 and len(yesno.MME_COGNITION) == 4


def test_score_mc_mmbench_is_circular_on_the_tsv(cli, tmp_path):
    import mc_fixtures as mcf

    rows = mcf.mmbench_rows(mcf.MMBENCH_EN)
    mcf._tsv(tmp_path / "MMBench_DEV_EN.tsv", rows)
    # every pass answered with its own right letter, except question 1's second pass; question 3 unanswered
    preds = [{"index": r["index"], "prediction": "B. dog" if r["index"] == 1_000_001 else r["answer"]}
             for r in rows if r["index"] % 1_000_000 != 3]
    mcf._tsv(tmp_path / "preds.tsv", preds)
    code, out, err = cli("score", "mc", "--benchmark", "mmbench", "--references", str(tmp_path / "MMBench_DEV_EN.tsv"),
                         "--predictions", str(tmp_path / "preds.tsv"))
    assert code == 0, err
    result = json.loads(out)
    assert result["metrics"]["mc_accuracy"] == 0.5  # questions 0 and 2 right in every pass
    assert result["metrics"]["mc_accuracy_first_pass"] == 0.75
    assert result["metrics"]["mc_accuracy[l2_category=coarse_perception]"] == 1.0
    assert "2 pass(es) have no prediction row" in result["notes"][-1] and result["n"] == 4
