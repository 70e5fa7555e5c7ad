"""`mmbench score vqa` on each benchmark's official reference layout and prediction format: detection,
--format, --metric/--option, hand-computed values for the rules' tricky cases, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmbench.cli.main import main


def write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def score(capsys, preds: Path, *refs: Path, extra: tuple = ()) -> dict:
    args = ["score", "vqa", "--predictions", str(preds)]
    for r in refs:
        args += ["--references", str(r)]
    code = main([*args, *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def fails(capsys, preds: Path, *refs: Path, extra: tuple = ()) -> str:
    args = ["score", "vqa", "--predictions", str(preds)]
    for r in refs:
        args += ["--references", str(r)]
    code = main([*args, *extra])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    return err


# -- fixtures in the official layouts ---------------------------------------------------------------------

def vqav2_files(tmp_path: Path) -> tuple[Path, Path]:
    anns = [{"question_id": 1, "image_id": 9, "answers": [{"answer": "2", "answer_id": i + 1} for i in range(10)],
             "answer_type": "number", "question_type": "how many", "multiple_choice_answer": "2"},
            {"question_id": 2, "image_id": 9, "answers": [{"answer": a, "answer_id": i + 1}
                                                           for i, a in enumerate(["yes"] * 2 + ["no"] * 8)],
             "answer_type": "yes/no", "question_type": "is the", "multiple_choice_answer": "no"}]
    refs = write(tmp_path / "v2_OpenEnded_mscoco_val2014_annotations.json",
                 {"info": {}, "data_type": "mscoco", "data_subtype": "val2014", "annotations": anns})
    preds = write(tmp_path / "vqav2_results.json", [{"question_id": 1, "answer": "two"},
                                                    {"question_id": 2, "answer": "Yes"}])
    return preds, refs


def textvqa_files(tmp_path: Path) -> tuple[Path, Path]:
    rows = [{"question": "whose dog?", "image_id": "abc", "image_classes": ["Dog"], "answers": ["dog's"] * 10,
             "question_tokens": ["whose", "dog"], "question_id": 34602, "set_name": "val"},
            {"question": "what sign?", "image_id": "abd", "image_classes": [], "question_tokens": ["what", "sign"],
             "answers": ["Stop"] * 3 + ["stop sign"] * 7, "question_id": 34603, "set_name": "val"}]
    refs = write(tmp_path / "TextVQA_0.5.1_val.json", {"dataset_type": "val", "dataset_name": "textvqa",
                                                      "dataset_version": "0.5.1", "data": rows})
    preds = write(tmp_path / "textvqa_preds.json", [{"question_id": 34602, "answer": "dog's"},
                                                    {"question_id": "34603", "answer": "stop"}])
    return preds, refs


def docvqa_files(tmp_path: Path) -> tuple[Path, Path]:
    rows = [{"questionId": qid, "question": "q?", "question_types": ["form"], "image": f"documents/{qid}.png",
             "docId": 1, "ucsf_document_id": "x", "ucsf_document_page_no": "1", "answers": answers,
             "data_split": "val"}
            for qid, answers in ((10, ["abcd"]), (11, ["abcd"]), (12, ["Hello World", "x"]))]
    refs = write(tmp_path / "val_v1.0.json", {"dataset_name": "docvqa", "dataset_split": "val",
                                             "dataset_version": "1.0", "data": rows})
    # ids as strings, as the HF copies write them
    preds = write(tmp_path / "docvqa_submission.json", [{"questionId": "10", "answer": "abxx"},
                                                        {"questionId": 11, "answer": "axxx"},
                                                        {"questionId": 12, "answer": " hello   world "}])
    return preds, refs


def vizwiz_files(tmp_path: Path) -> tuple[Path, Path]:
    def answers(*pairs):
        return [{"answer": a, "answer_confidence": "yes"} for a, k in pairs for _ in range(k)]

    rows = [{"image": "VizWiz_val_00000000.jpg", "question": "What colour is this?",
             "answers": answers(("red.", 3), ("blue", 7)), "answer_type": "other", "answerable": 1},
            {"image": "VizWiz_val_00000001.jpg", "question": "What is this?",
             "answers": answers(("unanswerable", 10)), "answer_type": "unanswerable", "answerable": 0}]
    refs = write(tmp_path / "val.json", rows)
    preds = write(tmp_path / "vizwiz_results.json", [{"image": "VizWiz_val_00000000.jpg", "answer": "Red"},
                                                     {"image": "VizWiz_val_00000001.jpg", "answer": "unanswerable"}])
    return preds, refs


def gqa_files(tmp_path: Path) -> tuple[Path, Path]:
    def q(answer, structural, balanced=True):
        return {"semantic": [], "entailed": [], "equivalent": [], "question": "q?", "imageId": "n1", "isBalanced":
                balanced, "groups": {"global": None, "local": "x"}, "answer": answer, "semanticStr": "",
                "annotations": {}, "types": {"detailed": "d", "semantic": "attr", "structural": structural}}

    refs = write(tmp_path / "testdev_balanced_questions.json",
                 {"201307251": q("yes", "verify"), "201640614": q("Yes", "query"),
                  "202218649": q("red", "query", balanced=False), "20968379": q("red", "query")})
    preds = write(tmp_path / "testdev_balanced_predictions.json",
                  [{"questionId": "201307251", "prediction": "Yes."},  # -> "yes": right
                   {"questionId": "201640614", "prediction": "Yes"},  # -> "yes" vs "Yes": wrong (case-sensitive)
                   {"questionId": "202218649", "prediction": "red"},  # not balanced: not scored
                   {"questionId": "20968379", "prediction": "red ."}])  # -> "red ": wrong
    return preds, refs


def chartqa_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    human = write(tmp_path / "test_human.json", [
        {"imgname": "a.png", "query": "What share?", "label": "0.45"},
        {"imgname": "b.png", "query": "How many?", "label": "50%"},
        {"imgname": "c.png", "query": "Zero?", "label": "0"}])
    augmented = write(tmp_path / "test_augmented.json", [
        {"imgname": "d.png", "query": "Value?", "label": "100"},
        {"imgname": "e.png", "query": "Value?", "label": "100"},
        {"imgname": "f.png", "query": "Value?", "label": "0"},
        {"imgname": "a.png", "query": "What share?", "label": "Yes"}])  # also asked in human: needs "split"
    preds = write(tmp_path / "chartqa_preds.json", [
        {"imgname": "a.png", "query": "What share?", "answer": "45%", "split": "human"},  # 0.45: right
        {"imgname": "b.png", "query": "How many?", "answer": "50"},  # 50 vs 0.5: wrong
        {"imgname": "c.png", "query": "Zero?", "answer": "0.0"},  # zero target: string equality: wrong
        {"imgname": "d.png", "query": "Value?", "answer": "105"},  # exactly 5% off: right
        {"imgname": "e.png", "query": "Value?", "answer": "105.1"},  # over 5%: wrong
        {"imgname": "f.png", "query": "Value?", "answer": "0"},  # zero target, same string: right
        {"imgname": "a.png", "query": "What share?", "answer": "yes", "split": "augmented"}])  # case-insensitive
    return preds, human, augmented


# -- the formats -------------------------------------------------------------------------------------------

def test_vqav2_default_keeps_the_official_output(capsys, tmp_path):
    out = score(capsys, *vqav2_files(tmp_path))
    assert (out["format"], out["metric"], out["n"]) == ("vqav2", "vqa_accuracy", 2)
    assert out["options"] == {"rules": "vqav2", "by": ["answer_type", "question_type"]}
    # "two" -> "2": all 10 match -> 1; "Yes" -> "yes" matches 2 annotators: each left-out set of the other two
    # has 1 or 2 matches -> (2 * 1/3 + 8 * 2/3) / 10 = 0.6
    assert out["metrics"]["vqa_accuracy[answer_type=number]"] == 1.0
    assert out["metrics"]["vqa_accuracy[question_type=is the]"] == pytest.approx(0.6)
    assert out["metrics"]["vqa_accuracy"] == pytest.approx(0.8)
    assert out["official_percent"] == {"overall": 80.0, "perAnswerType": {"number": 100.0, "yes/no": 60.0},
                                       "perQuestionType": {"how many": 100.0, "is the": 60.0}}


def test_vqav2_other_metric_with_list_option(capsys, tmp_path):
    preds, refs = vqav2_files(tmp_path)
    out = score(capsys, preds, refs, extra=("--metric", "exact_match", "--option", "by=answer_type,question_type",
                                            "--option", "normalization=vqa"))
    assert out["options"] == {"normalization": "vqa", "by": ["answer_type", "question_type"]}
    # "two" -> "2" equals a reference; "yes" equals one of the references
    assert out["metrics"]["exact_match"] == 1.0 and out["metrics"]["exact_match[answer_type=yes/no]"] == 1.0
    out = score(capsys, preds, refs, extra=("--metric", "exact_match", "--option", "by=[answer_type]"))
    assert out["metrics"]["exact_match"] == 0.5  # "two" != "2" under the default punct normalisation
    assert set(out["metrics"]) == {"exact_match", "exact_match[answer_type=number]",
                                   "exact_match[answer_type=yes/no]"}


def test_textvqa_evalai_rules(capsys, tmp_path):
    out = score(capsys, *textvqa_files(tmp_path))
    assert (out["format"], out["metric"], out["options"]) == ("textvqa", "vqa_accuracy", {"rules": "evalai", "by": []})
    # "dog's" on both sides -> "dog 's": right; "stop" vs 3 x "stop" (lowercased) + 7 x "stop sign": 0.9
    assert out["metrics"] == {"vqa_accuracy": pytest.approx(0.95)}
    # VQAv2 rules leave the references' case alone: "Stop" never matches "stop"
    out = score(capsys, *textvqa_files(tmp_path), extra=("--option", "rules=vqav2"))
    assert out["metrics"]["vqa_accuracy"] == 0.5 and out["options"]["rules"] == "vqav2"


def test_docvqa_anls_threshold(capsys, tmp_path):
    preds, refs = docvqa_files(tmp_path)
    out = score(capsys, preds, refs)
    assert (out["format"], out["metric"], out["n"]) == ("docvqa", "anls", 3)
    # abxx/abcd: similarity exactly 0.5 kept; axxx/abcd: 0.25 zeroed; whitespace and case ignored: 1
    assert out["metrics"] == {"anls": 0.5}
    out = score(capsys, preds, refs, extra=("--option", "threshold=0.2"))
    assert out["metrics"]["anls"] == pytest.approx((0.5 + 0.25 + 1) / 3) and out["options"]["threshold"] == 0.2


def test_vizwiz_rules_differ_from_vqav2(capsys, tmp_path):
    preds, refs = vizwiz_files(tmp_path)
    out = score(capsys, preds, refs)
    assert (out["format"], out["options"]) == ("vizwiz", {"rules": "vizwiz", "by": ["answer_type", "answerable"]})
    # VizWiz compares the human answers as given: "red." never equals the normalised "red"
    assert out["metrics"] == {"vqa_accuracy": 0.5, "vqa_accuracy[answer_type=other]": 0.0,
                              "vqa_accuracy[answer_type=unanswerable]": 1.0, "vqa_accuracy[answerable=1]": 0.0,
                              "vqa_accuracy[answerable=0]": 1.0}
    # VQAv2 rules punctuation-process disagreeing human answers: "red." -> "red" matches 3 -> 0.9
    out = score(capsys, preds, refs, extra=("--metric", "vqa_accuracy", "--option", "rules=vqav2"))
    assert out["metrics"]["vqa_accuracy"] == pytest.approx(0.95)
    assert out["metrics"]["vqa_accuracy[answerable=1]"] == pytest.approx(0.9)
    out = score(capsys, preds, refs, extra=("--metric", "unanswerable"))
    assert out["metrics"]["unanswerable_f1"] == 1.0 and out["metrics"]["unanswerable_ap"] == 1.0


def test_gqa_balanced_only_and_case_sensitive(capsys, tmp_path):
    preds, refs = gqa_files(tmp_path)
    out = score(capsys, preds, refs)
    assert (out["format"], out["metric"], out["n"]) == ("gqa", "gqa_accuracy", 3)
    assert out["metrics"] == {"gqa_accuracy": pytest.approx(1 / 3), "gqa_accuracy[answer_kind=binary]": 1.0,
                              "gqa_accuracy[answer_kind=open]": 0.0}
    assert any("1 unbalanced" in n for n in out["notes"])
    # a prediction for the unbalanced question may be left out, as in GQA's eval.py
    kept = [p for p in json.loads(preds.read_text()) if p["questionId"] != "202218649"]
    assert score(capsys, write(tmp_path / "p2.json", kept), refs)["metrics"] == out["metrics"]


def test_chartqa_two_splits_relaxed_rules(capsys, tmp_path):
    preds, human, augmented = chartqa_files(tmp_path)
    out = score(capsys, preds, human, augmented)
    assert (out["format"], out["metric"], out["n"]) == ("chartqa", "relaxed_accuracy", 7)
    assert out["options"]["macro_by"] == "split"
    assert out["metrics"]["relaxed_accuracy[split=human]"] == pytest.approx(1 / 3)
    assert out["metrics"]["relaxed_accuracy[split=augmented]"] == pytest.approx(3 / 4)
    assert out["metrics"]["relaxed_accuracy"] == pytest.approx(4 / 7)
    assert out["metrics"]["relaxed_accuracy[mean over split]"] == pytest.approx((1 / 3 + 3 / 4) / 2)
    # a question asked in both splits needs the prediction's "split"
    rows = json.loads(preds.read_text())
    del rows[0]["split"]
    err = fails(capsys, write(tmp_path / "nosplit.json", rows), human, augmented)
    assert "add \"split\"" in err and "human and augmented" in err
    # one split: matched on (imgname, query) alone
    out = score(capsys, write(tmp_path / "h.json", [{k: v for k, v in r.items() if k != "split"}
                                                    for r in rows[:3]]), human)
    assert out["metrics"]["relaxed_accuracy"] == pytest.approx(1 / 3) and out["n"] == 3


def test_chartqa_question_asked_twice_is_matched_in_order(capsys, tmp_path):
    human = write(tmp_path / "test_human.json", [{"imgname": "a.png", "query": "Value?", "label": "1"},
                                                 {"imgname": "a.png", "query": "Value?", "label": "2"}])
    preds = [{"imgname": "a.png", "query": "Value?", "answer": "1"}, {"imgname": "a.png", "query": "Value?",
                                                                     "answer": "3"}]
    assert score(capsys, write(tmp_path / "p.json", preds), human)["metrics"]["relaxed_accuracy"] == 0.5
    err = fails(capsys, write(tmp_path / "p3.json", preds + preds[:1]), human)
    assert "duplicate prediction for imgname 'a.png'" in err and "the references ask it 2 time(s)" in err


# -- detection and --format --------------------------------------------------------------------------------

def test_format_detection_and_override(capsys, tmp_path):
    preds, refs = textvqa_files(tmp_path)
    assert score(capsys, preds, refs, extra=("--format", "textvqa"))["format"] == "textvqa"
    # forcing another layout on a TextVQA file: a one-line error naming the expected layout
    err = fails(capsys, preds, refs, extra=("--format", "vqav2"))
    assert "not in the expected layout" in err and '"annotations"' in err
    err = fails(capsys, preds, refs, extra=("--format", "docvqa"))
    assert "entry 0 has no 'questionId'" in err
    err = fails(capsys, preds, refs, extra=("--format", "textvq"))
    assert "unknown --format 'textvq'" in err and "did you mean 'textvqa'" in err
    err = fails(capsys, preds, write(tmp_path / "odd.json", {"foo": 1}))
    assert "not a reference layout" in err and "--format" in err
    # --format naming the detected layout changes nothing
    gpreds, grefs = gqa_files(tmp_path)
    assert score(capsys, gpreds, grefs, extra=("--format", "gqa"))["n"] == 3


def test_test_split_without_answers(capsys, tmp_path):
    refs = write(tmp_path / "test_v1.0.json", {"dataset_name": "docvqa", "data": [{"questionId": 1, "question": "?"}]})
    err = fails(capsys, write(tmp_path / "p.json", [{"questionId": 1, "answer": "x"}]), refs)
    assert "has no answers list" in err and "evaluation server" in err


# -- errors ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["missing", "duplicate", "unknown", "not-string", "wrong-keys", "not-list"])
def test_prediction_errors(capsys, tmp_path, case):
    preds, refs = docvqa_files(tmp_path)
    rows = json.loads(preds.read_text())
    broken, message = {
        "missing": (rows[:1], "no prediction for questionId 11 of the references (2 missing)"),
        "duplicate": (rows + [{"questionId": 10, "answer": "x"}], "duplicate questionId 10 (entries 0 and 3)"),
        "unknown": (rows + [{"questionId": 99, "answer": "x"}], "questionId 99 is not in the references"),
        "not-string": ([*rows[:2], {"questionId": 12, "answer": 5}], "write every answer as a JSON string"),
        "wrong-keys": ([{"question_id": r["questionId"], "answer": r["answer"]} for r in rows],
                       "rename it or give the matching --references"),
        "not-list": ({"questionId": 10, "answer": "x"}, "must be a JSON list"),
    }[case]
    err = fails(capsys, write(tmp_path / "bad.json", broken), refs)
    assert message in err and str(tmp_path / "bad.json") in err


def test_metric_and_option_errors(capsys, tmp_path):
    preds, refs = docvqa_files(tmp_path)
    err = fails(capsys, preds, refs, extra=("--metric", "anl"))
    assert "--metric 'anl' is not an answer metric" in err and "did you mean 'anls'" in err
    err = fails(capsys, preds, refs, extra=("--metric", "unanswerable"))
    assert "needs `answerable` flags" in err
    err = fails(capsys, preds, refs, extra=("--option", "treshold=0.4"))
    assert "unknown option 'treshold'" in err and "did you mean 'threshold'" in err
    err = fails(capsys, preds, refs, extra=("--option", "threshold"))
    assert "expected KEY=VALUE" in err
    err = fails(capsys, preds, refs, extra=("--option", "threshold=high"))
    assert "must be a number" in err
    err = fails(capsys, *vqav2_files(tmp_path), extra=("--option", "rules=textvqa"))
    assert "unknown VQA accuracy rules 'textvqa'" in err


def test_reference_errors(capsys, tmp_path):
    preds, refs = docvqa_files(tmp_path)
    data = json.loads(refs.read_text())
    data["data"].append(dict(data["data"][0]))
    err = fails(capsys, preds, write(tmp_path / "dup.json", data))
    assert "questionId 10 appears twice (entries 0 and 3)" in err
    err = fails(capsys, preds, refs, refs)
    assert "only chartqa takes several" in err
    _, human, _ = chartqa_files(tmp_path)
    err = fails(capsys, preds, refs, human)
    assert "mixes layouts" in err
