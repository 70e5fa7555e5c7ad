"""The video benchmarks (MSVD-QA, MSRVTT-QA, ActivityNet-QA, NExT-QA, MVBench, Video-MME with and without
subtitles, MSR-VTT 1k-A) from fixtures written in each release's exact layout (and lmms-eval's cache layout):
the records each loader reads, end-to-end scores equal to each benchmark's own rule applied to the same
answers (the rules are written out again below from the official scripts), the prompts and subtitles sent,
missing data as one line naming where to put it, malformed files as one line naming file and row, and a
corrupt or missing video as a failed item."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

av = pytest.importorskip("av", reason="PyAV not installed (pip install 'mmbench[video]')")

import video_fixtures as vf  # noqa: E402
from mmbench.cli.main import main  # noqa: E402
from mmbench.errors import DataError, MissingDataError  # noqa: E402
from mmbench.results import RunResult  # noqa: E402

QA_TASKS = ["msvd-qa", "msrvtt-qa", "activitynet-qa"]
MC_TASKS = ["nextqa-mc", "mvbench", "videomme", "videomme-subtitles"]
ALL_TASKS = QA_TASKS + MC_TASKS


# -- the official rules, written out again from each benchmark's evaluation code -------------------------------

def exact_official(pred: str, answer: str) -> bool:
    """eval.py (ActivityNet-QA) / the GRA test loop (MSVD-QA, MSRVTT-QA): the answer string equals the
    reference. Their classifiers output lowercase answer-vocabulary words; a generated answer is compared
    lowercased (the one normalisation mmbench adds besides VQAv2's punctuation rules)."""
    return pred.strip().lower() == answer


def videomme_official(response: str) -> str:
    """Video-MME's eval_your_results.py extract_characters_regex, from its description: answer phrases removed
    (two commas are missing in its list), then the first of A-D anywhere ("" when none)."""
    s = response.strip()
    for prefix in ("The best answer is", "The correct answer is", "The answer is", "The answer",
                   "The best option isThe correct option is", "Best answer:Best option:"):
        s = s.replace(prefix, "")
    m = re.search(r"[ABCD]", s)
    return "" if m is None else m.group(0)


def mvbench_official(response: str, answer_letter: str, answer_text: str) -> bool:
    """The MVBench notebook's check_ans on "(" + the answer (its answer prompt ends with "Best option:(")."""
    pred_option = ("(" + response.strip().split("\n")[0]).lower().split(" ")[0]
    gt_option = f"({answer_letter}) {answer_text}".lower().split(" ")[0]
    return pred_option.replace(".", "") in gt_option or gt_option in pred_option


def nextqa_lmms_eval(response: str, options: list[str]) -> str | None:
    """lmms-eval's nextqa parse_multi_choice_response: "(X)", then "X ", then "X.", then (over 5 words) the
    option text; the last of several (a random letter when none: never reached by these answers)."""
    letters = "ABCDE"
    for char in ",.!?;:'":
        response = response.strip(char)
    response = f" {response} "
    for pattern in ("({})", "{} ", "{}."):
        found = [c for c in letters if pattern.format(c) in response]
        if found:
            return max(found, key=lambda c: response.rfind(pattern.format(c)))
    found = [c for c, o in zip(letters, options) if len(response.split()) > 5 and o.lower() in response.lower()]
    return found[-1] if found else None


# -- runs --------------------------------------------------------------------------------------------------------

def register() -> None:
    from mmbench.registry import MODELS

    vf.ScriptedVideoModel.answers = vf.scripted_answers()
    MODELS.register("scripted-video", vf.ScriptedVideoModel, overwrite=True)
    MODELS.register("colour-encoder", vf.ColourEncoder, overwrite=True)


def run_tasks(tasks: list[str], data_dir: Path, out: Path, model: str = "scripted-video") -> tuple[dict, Path]:
    register()
    vf.ScriptedVideoModel.seen = []
    code = main(["run", "--model", model, "--tasks", ",".join(tasks), "--data-dir", str(data_dir),
                 "--output-dir", str(out), "--no-progress", "--no-cache"])
    assert code == 0
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    return {r.task: r for r in RunResult.read(run_dir).results}, run_dir


def offline(mp: pytest.MonkeyPatch, hub: Path, hf_home: Path, cache: Path) -> None:
    import datasets.config
    import huggingface_hub.constants

    mp.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    mp.setattr(huggingface_hub.constants, "HF_HOME", str(hf_home))
    mp.setattr(datasets.config, "HF_DATASETS_CACHE", cache)


def values(result) -> dict:
    return {m["name"]: m["value"] for m in result.metrics}


def samples(run_dir: Path, result) -> dict[str, dict]:
    lines = (run_dir / result.files["samples"]).read_text().splitlines()
    return {s["id"]: s for s in map(json.loads, lines)}


def check_subset(got: dict, expected: dict) -> None:
    assert {k: got.get(k) for k in expected} == pytest.approx(expected, abs=1e-12)


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> Path:
    return vf.write_official(tmp_path_factory.mktemp("video-official"))


@pytest.fixture(scope="module")
def official_run(official, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("video-run")
    with pytest.MonkeyPatch.context() as mp:
        offline(mp, tmp / "empty-hub", tmp / "empty-home", tmp / "datasets-cache")
        res, run_dir = run_tasks(ALL_TASKS, official, tmp / "out")
    return res, run_dir, list(vf.ScriptedVideoModel.seen)


@pytest.fixture(scope="module")
def lmms_eval_run(tmp_path_factory):
    """The same tasks from lmms-eval's cache layout only (an empty --data-dir)."""
    tmp = tmp_path_factory.mktemp("video-lmms-eval")
    vf.write_lmms_eval_cache(tmp / "hub", tmp / "home")
    (tmp / "empty").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        offline(mp, tmp / "hub", tmp / "home", tmp / "datasets-cache")
        res, run_dir = run_tasks(["activitynet-qa", "mvbench", "videomme", "videomme-subtitles"], tmp / "empty",
                                 tmp / "out")
    return res, run_dir, list(vf.ScriptedVideoModel.seen)


def load(fmt: str, cfg: dict, data_dir: Path):
    from mmbench.data.sources import DataContext
    from mmbench.registry import DATA_FORMATS

    return DATA_FORMATS.get(fmt)(cfg, DataContext("t", data_dir=data_dir))


# -- the loaders ------------------------------------------------------------------------------------------------

def test_the_loaders_read_the_official_layouts(official, tmp_path):
    msvd = load("msvd-qa", {"annotations": "msvd_qa/test_qa.json", "videos": "msvd_qa/video"}, official)
    assert msvd.records[1] == {"id": "1", "question_id": 1, "question": "who is throwing a ball?", "answers": ["man"],
                               "video": official / "msvd_qa/video/vid1.avi", "video_id": 1, "question_type": "who"}
    msrvtt = load("msrvtt-qa", {"annotations": "msrvtt_qa/test_qa.json", "videos": "msrvtt/MSRVTT/videos/all"},
                  official)
    assert msrvtt.records[2] == {"id": "2", "question_id": 2, "question": "what are people playing?",
                                 "answers": ["football"], "video": official / "msrvtt/MSRVTT/videos/all/video7011.mp4",
                                 "video_id": 7011, "question_type": "what", "category_id": 11}
    anet = load("activitynet-qa", {"questions": "activitynet_qa/test_q.json", "answers": "activitynet_qa/test_a.json",
                                   "videos": "activitynet_qa/videos"}, official)
    assert anet.records[2] == {"id": "v_def-456_0", "question_id": "v_def-456_0",
                               "question": "What does the person do after opening the door?",
                               "question_original": "what does the person do after opening the door",
                               "answers": ["walk in"], "video_name": "def-456",
                               "video": official / "activitynet_qa/videos/v_def-456.mkv",
                               "type": "Temporal Relationship", "question_type": "Temporal Relationship"}
    assert [r["question_type"] for r in anet.records] == ["Free", "Free", "Temporal Relationship", "Free"]
    nextqa = load("nextqa", {"csv": "nextqa/val.csv", "map": "nextqa/map_vid_vidorID.json",
                             "videos": "nextqa/NExTVideo"}, official)
    assert nextqa.records[2] == {
        "id": "2435100235_8", "question_id": "2435100235_8", "question": "what does the white dog do after going to "
        "the cushion", "answer": 1,
        "options": ["drink again", "shake its body", "smells the black dog", "wagging tail", "touch lady"],
        "video": official / "nextqa/NExTVideo/1124/2435100235.mp4", "video_id": "2435100235",
        "type": "TN", "type_name": "Bef&Aft", "category": "Temporal"}  # TP counts as TN
    mme = load("videomme", {"annotations": "videomme/videomme/test-00000-of-00001.parquet", "videos": "videomme/data",
                            "subtitles": "videomme/subtitle"}, official)
    assert mme.records[2] == {"id": "301-1", "question_id": "301-1", "question": "What is the color of the ball?",
                              "options": ["Black.", "Gray.", "Green.", "Brown."], "answer": "B",
                              "video": official / "videomme/data/Aw1sP3EJwZk.mp4", "videoID": "Aw1sP3EJwZk",
                              "video_id": "301", "duration": "medium", "domain": "Film & Television",
                              "sub_category": "Animation", "task_type": "Object Recognition",
                              "subtitles": "No subtitles available"}
    assert {r["videoID"]: r["subtitles"] for r in mme.records} == vf.VIDEOMME_SUBTITLES
    assert mme.records[4]["video"].name == "-DbxlqT0_ok.mkv"
    long_only = load("videomme", {"annotations": "videomme/videomme/test-00000-of-00001.parquet",
                                  "videos": "videomme/data", "durations": ["long"]}, official)
    assert [r["id"] for r in long_only.records] == ["601-1", "601-2"] and "subtitles" not in long_only.records[0]
    # the same questions as JSON, grouped by video as Video-MME's results template writes them
    grouped = [{"video_id": vid, "duration": d, "domain": dom, "sub_category": sub,
                "url": f"https://www.youtube.com/watch?v={video}",
                "questions": [{"question_id": qid, "task_type": t, "question": q, "options": o, "answer": a}
                              for qid, v, t, q, o, a, _ in vf.VIDEOMME if v == k]}
               for k, (vid, video, d, dom, sub, _) in enumerate(vf.VIDEOMME_VIDEOS)]
    vf.write(tmp_path / "videomme.json", grouped)
    from_json = load("videomme", {"annotations": str(tmp_path / "videomme.json"), "videos": "videomme/data",
                                  "subtitles": "videomme/subtitle"}, official)
    assert from_json.records == mme.records


def test_mvbench_layouts(official, tmp_path):
    from mmbench.data.video import FrameSampling
    from mmbench.tasks.video_input import load_item_video

    main_branch = load("mvbench", {"root": "mvbench"}, official)
    by_id = {r["id"]: r for r in main_branch.records}
    assert list(by_id) == ["action_sequence/0", "action_sequence/1", "action_antonym/0", "object_existence/0",
                           "object_existence/1", "episodic_reasoning/0"]  # the official task order
    seq = by_id["action_sequence/0"]
    assert seq["options"] == ["Put down the box.", "Opened the door.", "Sat on the bed."] and seq["answer"] == 1
    assert (seq["start"], seq["end"], seq["task_name"]) == (1.0, 2.0, "Action Sequence")
    assert (seq["video_start"], seq["video_end"]) == (1.0, 2.0) and seq["video"].suffix == ".mp4"
    replaced = official / "mvbench/video/data0613/clevrer/video_validation/video_10001.mp4"
    assert by_id["object_existence/1"]["video"] == replaced  # data0613.zip's clips, where VLMEvalKit moves them from
    assert by_id["action_antonym/0"]["video"] == official / "mvbench/video/ssv2_video/12345.webm"
    assert "main branch" in main_branch.description and "3 questions about a segment" in main_branch.description
    # the kinds sample within the segment: the frames between start and end; TVQA's frame folder at 3 fps
    clip = load_item_video(seq, FrameSampling(frames=16))
    assert clip.indices == (4, 5, 6, 7, 8) and clip.timestamps == (1.0, 1.25, 1.5, 1.75, 2.0)
    assert clip.n_frames == 16
    assert load_item_video(seq, FrameSampling(frames=3)).indices == (4, 6, 8)  # the task's frame count decides
    tvqa_item = by_id["episodic_reasoning/0"]
    assert tvqa_item["video_frame_rate"] == 3.0 and tvqa_item["video"].is_dir()
    tvqa = load_item_video(tvqa_item, FrameSampling(frames=16))
    assert tvqa.indices == (2, 3, 4, 5) and tvqa.timestamps == pytest.approx((1.0, 4 / 3, 5 / 3, 2.0))
    assert tvqa.native_fps == 3.0
    # the video branch: pre-cut segments found by name and bounds, ssv2 as mp4, TVQA as a video
    vf.write_mvbench_video_branch(tmp_path / "mvbench_video")
    branch = {r["id"]: r for r in load("mvbench", {"root": "mvbench_video"}, tmp_path).records}
    assert branch["action_sequence/1"]["video"] == tmp_path / "mvbench_video/star/Charades_segment/ABC12_0.5_3.0.mp4"
    assert branch["episodic_reasoning/0"]["video"].name == "s01e02_seg02_clip_03.mp4"
    assert branch["action_antonym/0"]["video"].name == "12345.mp4"
    assert [r["id"] for r in load("mvbench", {"root": "mvbench", "tasks": ["object_existence"]}, official).records] \
        == ["object_existence/0", "object_existence/1"]
    # fine-grained pose's NTU RGB+D videos are not in the release: one line saying where they come from
    shutil.copytree(official / "mvbench", tmp_path / "mvb")
    vf.write(tmp_path / "mvb/json/fine_grained_pose.json",
             [{"video": "S001C001P001R001A001_rgb.avi", "question": "q", "candidates": ["a", "b"], "answer": "a"}])
    with pytest.raises(MissingDataError, match=r"fine_grained_pose videos not found at .*video/nturgbd \(.*NTU RGB\+D"):
        load("mvbench", {"root": "mvb"}, tmp_path)


def test_msvd_clips_under_their_youtube_names(official, tmp_path):
    shutil.copy(official / "msvd_qa/test_qa.json", tmp_path / "test_qa.json")
    vf.write(tmp_path / "youtube_mapping.txt", vf.MSVD_MAPPING)
    vf.write_video(tmp_path / "YouTubeClips" / "-4wsuPCjDBc_5_15.avi")
    data = load("msvd-qa", {"annotations": "test_qa.json", "mapping": "youtube_mapping.txt",
                            "videos": "YouTubeClips"}, tmp_path)
    assert data.records[0]["video"] == tmp_path / "YouTubeClips/-4wsuPCjDBc_5_15.avi"
    assert data.records[3]["video"] == tmp_path / "YouTubeClips/vid2.avi"  # not there: its item fails


# -- end to end ---------------------------------------------------------------------------------------------------

def test_official_layouts_score_as_the_official_rules(official_run):
    res, run_dir, _ = official_run
    check_subset(values(res["msvd-qa"]), vf.MSVD_EXPECTED)
    check_subset(values(res["msrvtt-qa"]), vf.MSRVTT_EXPECTED)
    check_subset(values(res["activitynet-qa"]), vf.ACTIVITYNET_EXPECTED)
    check_subset(values(res["nextqa-mc"]), vf.NEXTQA_EXPECTED)
    check_subset(values(res["mvbench"]), vf.MVBENCH_EXPECTED)
    check_subset(values(res["videomme"]), vf.VIDEOMME_EXPECTED)
    check_subset(values(res["videomme-subtitles"]), vf.VIDEOMME_EXPECTED)
    assert all(res[t].n_failed == 0 for t in ALL_TASKS)
    assert {t: res[t].n_items for t in ALL_TASKS} == {"msvd-qa": 4, "msrvtt-qa": 3, "activitynet-qa": 4,
                                                     "nextqa-mc": 4, "mvbench": 6, "videomme": 6,
                                                     "videomme-subtitles": 6}
    # the same numbers from the official rules applied to the answers the model gave
    for task, rows in (("msvd-qa", [(r[4], r[3]) for r in vf.MSVD_QA]),
                       ("msrvtt-qa", [(r[5], r[4]) for r in vf.MSRVTT_QA]),
                       ("activitynet-qa", [(r[5], r[3]) for r in vf.ACTIVITYNET_QA])):
        official_score = sum(exact_official(say, answer) for say, answer in rows) / len(rows)
        assert values(res[task])["exact_match"] == pytest.approx(official_score)
    for task in ("videomme", "videomme-subtitles"):
        assert values(res[task])["mc_accuracy"] == pytest.approx(
            sum(videomme_official(say) == answer for *_, answer, say in vf.VIDEOMME) / len(vf.VIDEOMME))
        answered = [(videomme_official(say), answer) for *_, answer, say in vf.VIDEOMME if videomme_official(say)]
        assert values(res[task])["mc_accuracy_answered"] == pytest.approx(  # the official scorer's "Overall"
            sum(read == answer for read, answer in answered) / len(answered))
    mvb = [(e["_say"], "ABCDE"[e["candidates"].index(e["answer"])], e["answer"])
           for entries in vf.MVBENCH.values() for e in entries]
    assert values(res["mvbench"])["mc_accuracy"] == pytest.approx(
        sum(mvbench_official(*row) for row in mvb) / len(mvb))
    assert values(res["nextqa-mc"])["mc_accuracy"] == pytest.approx(
        sum(nextqa_lmms_eval(say, opts) == "ABCDE"[a] for _, _, a, _, _, opts, say in vf.NEXTQA) / len(vf.NEXTQA))
    # the letters read are the official rules' letters, question by question
    read = {s["id"]: s["choice"][0] for s in samples(run_dir, res["videomme"]).values()}
    assert read == {qid: videomme_official(say) or None for qid, *_, say in vf.VIDEOMME}
    notes = " ".join(res["activitynet-qa"].notes + [m["variant"] for m in res["activitynet-qa"].metrics])
    assert "punctuation" in notes.lower()


def test_prompts_frames_and_subtitles(official_run):
    res, run_dir, seen = official_run
    frames = {prompt: n for prompt, n in seen}
    msvd = f"who is throwing a ball?\n{vf.SHORT}"
    assert frames[msvd] == 8  # 32 frames asked, the clip has 8: all of them, none repeated
    assert f"Is the man wearing a hat? {vf.SHORT}" in frames
    assert "how do the two man play the instrument\nA. roll the handle\nB. tap their feet\nC. strum the string\n" \
           "D. hit with sticks\nE. pat with hand" in frames
    sys_prompt = res["mvbench"].task_info["system_prompt"]
    assert sys_prompt.startswith("Carefully watch the video") and sys_prompt.endswith("addresses the question.")
    assert "Question: What happened after the person took the box?\nOptions:\n(A) Put down the box.\n" \
           "(B) Opened the door.\n(C) Sat on the bed.\nOnly give the best option." in frames
    mvb = samples(run_dir, res["mvbench"])
    assert mvb["action_sequence/0"]["video"]["segment"] == [1.0, 2.0]
    assert mvb["action_sequence/0"]["video"]["frame_indices"] == [4, 5, 6, 7, 8]
    assert mvb["episodic_reasoning/0"]["video"]["frame_indices"] == [2, 3, 4, 5]
    assert mvb["object_existence/0"]["video"]["frame_indices"] == list(range(8))  # 16 asked, 8 there
    question = "How many apples are shown?\nA. 1.\nB. 2.\nC. 3.\nD. 4.\nThe best answer is:"
    instruction = ("Select the best answer to the following multiple-choice question based on the video. Respond "
                   "with only the letter (A, B, C, or D) of the correct option.\n")
    assert instruction + question in frames
    assert ("This video's subtitles are listed below:\nHello there\nSecond line\n" + instruction + question) in frames
    assert any(p.startswith("This video's subtitles are listed below:\nNo subtitles available\nSelect")
               for p in frames)
    assert res["videomme-subtitles"].task_info["data"]["description"].endswith(
        "(6 questions, 3 videos, subtitles at 32 sampled frames)")
    assert res["videomme"].task_info["video"]["sampling"].startswith("32 frames uniform")


def test_lmms_eval_cache_layouts_give_the_same_scores(lmms_eval_run):
    res, run_dir, seen = lmms_eval_run
    check_subset(values(res["activitynet-qa"]), vf.ACTIVITYNET_EXPECTED)
    check_subset(values(res["videomme"]), vf.VIDEOMME_EXPECTED)
    check_subset(values(res["videomme-subtitles"]), vf.VIDEOMME_EXPECTED)
    check_subset(values(res["mvbench"]), vf.MVBENCH_EXPECTED)
    assert "lmms-lab/ActivityNetQA@" in res["activitynet-qa"].task_info["data"]["description"]
    assert "video branch" in res["mvbench"].task_info["data"]["description"]
    mvb = samples(run_dir, res["mvbench"])
    assert mvb["action_sequence/0"]["video"]["video_frames"] == 4  # the pre-cut segment, whole
    assert all(r.n_failed == 0 for r in res.values())
    assert any("Hello there\nSecond line" in p for p, _ in seen)


def test_msrvtt_1ka_retrieval(official, tmp_path):
    res, run_dir = run_tasks(["msrvtt-1ka"], official, tmp_path / "out", model="colour-encoder")
    r = res["msrvtt-1ka"]
    check_subset(values(r), vf.MSRVTT_1KA_EXPECTED)
    assert r.n_items == 4 and r.task_info["video"]["sampling"].startswith("1 fps from t=0")
    assert r.task_info["data"]["description"] == "MSR-VTT MSRVTT_JSFUSION_test.csv (4 videos, 4 sentences)"


# -- failures ---------------------------------------------------------------------------------------------------

def test_missing_data_is_one_line_naming_every_place(capsys, tmp_path, monkeypatch):
    offline(monkeypatch, tmp_path / "empty-hub", tmp_path / "empty-home", tmp_path / "datasets-cache")
    register()
    for task, places in (("msvd-qa", ["msvd_qa/test_qa.json", "test_qa.json (xudejing"]),
                         ("activitynet-qa", ["activitynet_qa/test_q.json", "activitynetqa/all_test",
                                             "lmms-eval's copy under $HF_HOME"]),
                         ("nextqa-mc", ["nextqa/val.csv", "NExTVideo"]),
                         ("mvbench", ["mvbench", "'OpenGVLab/MVBench' is not in the local hub cache",
                                      "mvbench_video"]),
                         ("videomme-subtitles", ["videomme/videomme/test-00000-of-00001.parquet",
                                                 "'lmms-lab/Video-MME' is not in the local hub cache"]),
                         ("msrvtt-1ka", ["msrvtt/msrvtt_data/MSRVTT_JSFUSION_test.csv", "Frozen-in-Time"])):
        code = main(["run", "--model", "scripted-video", "--tasks", task, "--data-dir", str(tmp_path),
                     "--output-dir", str(tmp_path / "out"), "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert f"task {task!r}: no copy of its data found" in err and all(p in err for p in places), err


def test_malformed_files_are_one_line_errors(official, tmp_path):
    import pandas as pd

    vf.write(tmp_path / "nextqa/val.csv", vf.nextqa_csv(vf.NEXTQA).replace(
        "where is this place,3,", "where is this place,7,"))
    (tmp_path / "nextqa/NExTVideo").mkdir(parents=True)
    with pytest.raises(DataError, match=r"val.csv row 5: answer 7 is not an option index 0-4"):
        load("nextqa", {"csv": "nextqa/val.csv", "videos": "nextqa/NExTVideo"}, tmp_path)
    vf.write(tmp_path / "nextqa/val.csv", vf.NEXTQA_HEADER + "\n4010069381,8,64,64,how,2,6,CH,a,b\n")
    with pytest.raises(DataError, match=r"val.csv row 2: expected 13 comma-separated values"):
        load("nextqa", {"csv": "nextqa/val.csv", "videos": "nextqa/NExTVideo"}, tmp_path)
    shutil.copytree(official / "mvbench/json", tmp_path / "mvbench/json")
    (tmp_path / "mvbench/video").mkdir()
    bad = json.loads((tmp_path / "mvbench/json/object_existence.json").read_text())
    bad[1]["answer"] = "maybe"
    vf.write(tmp_path / "mvbench/json/object_existence.json", bad)
    with pytest.raises(DataError, match=r"object_existence.json entry 1: answer 'maybe' is not one of its candidates"):
        load("mvbench", {"root": "mvbench", "tasks": ["object_existence"]}, tmp_path)
    rows = pd.DataFrame(vf.videomme_rows())
    rows.drop(columns=["task_type"]).to_parquet(tmp_path / "no_type.parquet")
    (tmp_path / "data").mkdir()
    with pytest.raises(DataError, match=r"no_type.parquet is not Video-MME's annotation file: no 'task_type' column"):
        load("videomme", {"annotations": "no_type.parquet", "videos": "data"}, tmp_path)
    rows.loc[3, "answer"] = "E"
    rows.to_parquet(tmp_path / "bad_answer.parquet")
    with pytest.raises(DataError, match=r"bad_answer.parquet row 3: answer 'E' is not one of the letters"):
        load("videomme", {"annotations": "bad_answer.parquet", "videos": "data"}, tmp_path)
    shutil.copytree(official / "videomme/subtitle", tmp_path / "subtitle")
    shutil.copytree(official / "videomme/data", tmp_path / "data", dirs_exist_ok=True)
    vf.write(tmp_path / "subtitle/fFjv93ACGo8.srt", "1\n00:00:00,000 --> 00:00:00,400\nhi\n\n2\n0:00 to 0:01\nthere\n")
    with pytest.raises(DataError, match=r"fFjv93ACGo8.srt line 6: '0:00 to 0:01' is not 'HH:MM:SS,mmm --> HH:MM"):
        load("videomme", {"annotations": str(official / "videomme/videomme/test-00000-of-00001.parquet"),
                          "videos": "data", "subtitles": "subtitle"}, tmp_path)
    vf.write(tmp_path / "test_q.json", [{"video_name": "x", "question": "q", "question_id": "v_x_1"}])
    vf.write(tmp_path / "test_a.json", [{"answer": "a", "type": 3, "question_id": "v_x_2"}])
    with pytest.raises(DataError, match=r"test_q.json entry 0: question 'v_x_1' has no answer in .*test_a.json"):
        load("activitynet-qa", {"questions": "test_q.json", "answers": "test_a.json", "videos": "data"}, tmp_path)
    vf.write(tmp_path / "map.txt", "-4wsuPCjDBc_5_15 vid1\nbroken line here\n")
    with pytest.raises(DataError, match=r"map.txt line 2 is not '<clip name> vid<N>'"):
        load("msvd-qa", {"annotations": str(official / "msvd_qa/test_qa.json"), "videos": "data",
                         "mapping": "map.txt"}, tmp_path)
    vf.write(tmp_path / "qa.json", [{"id": 0, "question": "q", "answer": "a"}])
    with pytest.raises(DataError, match=r"qa.json entry 0 has no 'video_id' field"):
        load("msrvtt-qa", {"annotations": "qa.json", "videos": "data"}, tmp_path)


def test_a_corrupt_or_missing_video_is_a_failed_item(official, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(official / "msvd_qa", data / "msvd_qa")
    (data / "msvd_qa/video/vid2.avi").write_bytes(b"RIFF\x00\x00\x00\x00AVI " + b"garbage" * 40)
    shutil.copytree(official / "videomme", data / "videomme")
    (data / "videomme/data/Aw1sP3EJwZk.mp4").unlink()
    shutil.copytree(official / "mvbench", data / "mvbench")
    shutil.rmtree(data / "mvbench/video/tvqa/frames_fps3_hq/s01e02_seg02_clip_03")
    res, run_dir = run_tasks(["msvd-qa", "videomme-subtitles", "mvbench"], data, tmp_path / "out")
    msvd = res["msvd-qa"]
    assert msvd.n_failed == 2 and msvd.n_items == 4
    assert values(msvd)["exact_match"] == 0.25  # the failed items count as wrong answers
    assert samples(run_dir, msvd)["2"]["error"].startswith(f"video {data / 'msvd_qa/video/vid2.avi'}: no video stream")
    mme = res["videomme-subtitles"]
    assert mme.n_failed == 2 and values(mme)["mc_accuracy"] == pytest.approx(2 / 6)
    assert "Aw1sP3EJwZk.mp4: file not found" in samples(run_dir, mme)["301-1"]["error"]
    mvb = res["mvbench"]
    assert mvb.n_failed == 1
    assert "s01e02_seg02_clip_03: not found" in samples(run_dir, mvb)["episodic_reasoning/0"]["error"]
