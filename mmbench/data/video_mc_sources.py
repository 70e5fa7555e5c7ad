"""Multiple-choice video benchmarks in their release layouts: MVBench (OpenGVLab/MVBench, both its ``main``
branch -- ``json/`` + the unzipped ``video/`` -- and its ``video`` branch, which lmms-eval uses) and Video-MME
(the ``videomme/test-*.parquet`` annotations, ``data/`` videos and ``subtitle/`` .srt files of
lmms-lab/Video-MME). Records are what the ``multiple-choice`` kind reads (see mmbench.data.video_sources for
the shared conventions and path forms).

MVBench's questions about a part of a video (``start``/``end`` seconds: the STAR and STA tasks, and the TVQA
task whose release is a folder of frames at 3 fps) come pre-cut in the video branch. In the main branch the
record names the whole video (or frame folder) with ``video_start``/``video_end`` (and ``video_frame_rate`` for
a frame folder): the kinds sample the task's frames within the segment (mmbench/tasks/video_input.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mmbench.data.sources import DataContext, DataSet, _read_json
from mmbench.data.video_sources import VideoFolder, _int, hash_files, media_refs, place
from mmbench.errors import DataError, MissingDataError
from mmbench.metrics.choice import LETTERS
from mmbench.specs import fingerprint


# -- MVBench --------------------------------------------------------------------------------------------------

# task: (name, folder under the main branch's video/, folder in the video branch, what the main branch holds)
# -- the 20 tasks in the order of the official notebook (Ask-Anything video_chat2/mvbench.ipynb)
MVBENCH_TASKS: dict[str, tuple[str, str, str, str]] = {
    "action_sequence": ("Action Sequence", "star/Charades_v1_480", "star/Charades_segment", "segment"),
    "action_prediction": ("Action Prediction", "star/Charades_v1_480", "star/Charades_segment", "segment"),
    "action_antonym": ("Action Antonym", "ssv2_video", "ssv2_video_mp4", "video"),
    "fine_grained_action": ("Fine-grained Action", "Moments_in_Time_Raw/videos", "Moments_in_Time_Raw/videos", "video"),
    "unexpected_action": ("Unexpected Action", "FunQA_test/test", "FunQA_test/test", "video"),
    "object_existence": ("Object Existence", "clevrer/video_validation", "clevrer/video_validation", "video"),
    "object_interaction": ("Object Interaction", "star/Charades_v1_480", "star/Charades_segment", "segment"),
    "object_shuffle": ("Object Shuffle", "perception/videos", "perception/videos", "video"),
    "moving_direction": ("Moving Direction", "clevrer/video_validation", "clevrer/video_validation", "video"),
    "action_localization": ("Action Localization", "sta/sta_video", "sta/sta_video_segment", "segment"),
    "scene_transition": ("Scene Transition", "scene_qa/video", "scene_qa/video", "video"),
    "action_count": ("Action Count", "perception/videos", "perception/videos", "video"),
    "moving_count": ("Moving Count", "clevrer/video_validation", "clevrer/video_validation", "video"),
    "moving_attribute": ("Moving Attribute", "clevrer/video_validation", "clevrer/video_validation", "video"),
    "state_change": ("State Change", "perception/videos", "perception/videos", "video"),
    "fine_grained_pose": ("Fine-grained Pose", "nturgbd", "nturgbd_convert", "video"),
    "character_order": ("Character Order", "perception/videos", "perception/videos", "video"),
    "egocentric_navigation": ("Egocentric Navigation", "vlnqa", "vlnqa", "video"),
    "episodic_reasoning": ("Episodic Reasoning", "tvqa/frames_fps3_hq", "tvqa/video_fps3_hq_segment", "frames"),
    "counterfactual_inference": ("Counterfactual Inference", "clevrer/video_validation", "clevrer/video_validation",
                                 "video"),
}
TVQA_FRAME_RATE = 3.0  # tvqa/frames_fps3_hq: frames extracted at 3 fps
_SEGMENT_NAME = re.compile(r"^(.*)_(-?\d+(?:\.\d+)?(?:e-?\d+)?)_(-?\d+(?:\.\d+)?(?:e-?\d+)?)$")


def _mvbench_folder(task: str, media: Path, main: bool, ctx: DataContext) -> Path:
    folder = media / MVBENCH_TASKS[task][1 if main else 2]
    if folder.is_dir() or (main and (media / "data0613" / MVBENCH_TASKS[task][1]).is_dir()):
        return folder
    how = ("OpenGVLab/MVBench no longer ships the NTU RGB+D videos (video/MVBench_videos_ntu.txt lists them): "
           "put them in video/nturgbd/ from the NTU RGB+D release, use the video branch's nturgbd_convert/, or "
           "leave the task out with data `tasks:`" if task == "fine_grained_pose" else
           "unzip OpenGVLab/MVBench's video/*.zip (main branch) into video/, or use its video branch")
    raise MissingDataError(f"task {ctx.task!r}: MVBench {task} videos not found at {folder} ({how})")


def _segments(folder: Path) -> dict[str, list[tuple[float, float, Path]]]:
    """A pre-cut segment folder of the video branch: ``<video>_<start>_<end>.mp4`` by video name."""
    out: dict[str, list[tuple[float, float, Path]]] = {}
    for f in folder.iterdir() if folder.is_dir() else ():
        m = _SEGMENT_NAME.match(f.stem)
        if m:
            out.setdefault(m.group(1), []).append((float(m.group(2)), float(m.group(3)), f))
    return out


def _mvbench_video(entry: dict, task: str, folder: Path, main: bool, media: Path, segments: dict) -> tuple[Path, dict]:
    """The record's ``video`` and its segment fields (``start``/``end`` as the release gives them; in the main
    branch also ``video_start``/``video_end``, and ``video_frame_rate`` for TVQA's frame folders, which the
    kinds sample within)."""
    name, kind = str(entry["video"]), MVBENCH_TASKS[task][3]
    bounded = kind in ("segment", "frames") and entry.get("start") is not None and entry.get("end") is not None
    extra = {"start": float(entry["start"]), "end": float(entry["end"])} if bounded else {}
    if not main:  # the video branch: pre-cut segments, or the file the entry names
        if bounded:
            for start, end, path in segments.get(Path(name).stem, []):
                if abs(start - extra["start"]) < 1e-4 and abs(end - extra["end"]) < 1e-4:
                    return path, extra
        candidates = [folder / name, media / "data0613" / MVBENCH_TASKS[task][2] / name,  # lmms-eval's fallback
                      (folder / name).with_name(Path(name).stem + ".mp4")]  # converted to mp4 (ssv2, NTU, TVQA)
        return next((p for p in candidates if p.exists()), candidates[0]), extra
    path = folder / name
    if not path.exists() and (media / "data0613" / MVBENCH_TASKS[task][1] / name).exists():
        path = media / "data0613" / MVBENCH_TASKS[task][1] / name  # the replaced videos of data0613.zip
    if bounded:
        extra.update(video_start=extra["start"], video_end=extra["end"],
                     **({"video_frame_rate": TVQA_FRAME_RATE} if kind == "frames" else {}))
    return path, extra


def load_mvbench(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """MVBench: ``root`` holds ``json/<task>.json`` (a list of ``{video, question, candidates, answer, [start,
    end]}``; ``answer`` is the text of one candidate) and the videos: under ``video/`` in the main branch
    (the unzipped video/*.zip), at the top in the video branch. ``tasks`` (default all 20) selects tasks."""
    root = place(cfg, "root", ctx, "MVBench folder (json/ and the videos)", "mvbench")
    tasks = list(cfg.get("tasks") or MVBENCH_TASKS)
    unknown = [t for t in tasks if t not in MVBENCH_TASKS]
    if unknown:
        raise DataError(f"task {ctx.task!r}: MVBench has no task {unknown[0]!r} (tasks: {', '.join(MVBENCH_TASKS)})")
    main = (root / "video").is_dir()
    media = root / "video" if main else root
    records, files = [], []
    for task in tasks:
        path = root / "json" / f"{task}.json"
        if not path.is_file():
            raise MissingDataError(f"task {ctx.task!r}: MVBench annotations not found at {path} (OpenGVLab/MVBench "
                                   f"json/; or leave the task out with data `tasks:`)")
        files.append(path)
        entries = _read_json(path, ctx)
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise DataError(f"task {ctx.task!r}: {path} is not an MVBench task file (expected a JSON list of objects)")
        for n, e in enumerate(entries):  # the annotations first: a malformed file is reported as such
            where = f"{path} entry {n}"
            missing = [k for k in ("video", "question", "candidates", "answer") if k not in e]
            if missing:
                raise DataError(f"task {ctx.task!r}: {where} has no {missing[0]!r} field")
            if not isinstance(e["candidates"], list) or not e["candidates"]:
                raise DataError(f"task {ctx.task!r}: {where}: candidates {e['candidates']!r} is not a list of options")
            if str(e["answer"]) not in [str(o) for o in e["candidates"]]:
                raise DataError(f"task {ctx.task!r}: {where}: answer {e['answer']!r} is not one of its candidates")
        if not entries:
            continue
        folder = _mvbench_folder(task, media, main, ctx)
        segments = _segments(folder) if not main and MVBENCH_TASKS[task][3] != "video" else {}
        for n, e in enumerate(entries):
            options = [str(o) for o in e["candidates"]]
            video, extra = _mvbench_video(e, task, folder, main, media, segments)
            records.append({"id": f"{task}/{n}", "question": str(e["question"]), "options": options,
                            "answer": options.index(str(e["answer"])), "video": video, "task": task,
                            "task_name": MVBENCH_TASKS[task][0], "video_name": str(e["video"]), **extra})
    fp = fingerprint(["mvbench", "main" if main else "video", hash_files(*files),
                      media_refs(sorted({r["video"] for r in records}))])
    n_segments = sum("video_start" in r for r in records)
    return DataSet(records, fp, f"MVBench {root.name} ({'main branch: json/ + video/' if main else 'video branch'}; "
                   f"{len(records)} questions in {len({r['task'] for r in records})} tasks"
                   + (f"; {n_segments} questions about a segment)" if n_segments else ")"))


# -- Video-MME ------------------------------------------------------------------------------------------------

VIDEOMME_COLUMNS = ("videoID", "question_id", "duration", "domain", "sub_category", "task_type", "question",
                    "options", "answer")
_LETTERED = re.compile(r"^\s*([A-Z])[.)]\s*")
_FONT = re.compile(r'<font color="white" size=".72c">(.*?)</font>')
_TAG = re.compile(r"<[^>]+>")
_SRT_TIME = re.compile(r"^\s*(\d+):(\d\d):(\d\d)[,.](\d{1,3})\s*$")
NO_SUBTITLES = "No subtitles available"


def _videomme_rows(path: Path, ctx: DataContext) -> list[tuple[str, dict]]:
    """(where, row) for every question: the parquet (one row per question), or a JSON list of rows or of
    videos with their ``questions`` (Video-MME's results-template layout)."""
    if path.suffix == ".parquet":
        import pandas as pd

        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
            raise DataError(f"task {ctx.task!r}: {path} cannot be read as parquet ({type(exc).__name__}: "
                            f"{str(exc)[:120]})") from None
        missing = [c for c in VIDEOMME_COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(f"task {ctx.task!r}: {path} is not Video-MME's annotation file: no {missing[0]!r} column")
        return [(f"{path} row {n}", row) for n, row in enumerate(frame.to_dict("records"))]
    data = _read_json(path, ctx)
    if not isinstance(data, list) or not all(isinstance(v, dict) for v in data):
        raise DataError(f"task {ctx.task!r}: {path} is not Video-MME's annotation file (expected a JSON list)")
    rows = []
    for n, v in enumerate(data):
        if "questions" not in v:
            rows.append((f"{path} entry {n}", v))
            continue
        url = str(v.get("url") or "")
        video = v.get("videoID") or (url.split("v=")[-1].split("&")[0] if "v=" in url else v.get("video_id"))
        for k, q in enumerate(v["questions"] if isinstance(v["questions"], list) else []):
            rows.append((f"{path} video {n} question {k}", {**v, "videoID": video, **q}))
    return rows


def _videomme_options(raw: Any, where: str, ctx: DataContext) -> list[str]:
    """The options without their "A. " prefixes (the task's option_format writes them back)."""
    if isinstance(raw, np.ndarray):
        raw = raw.tolist()
    if not isinstance(raw, (list, tuple)) or not raw:
        raise DataError(f"task {ctx.task!r}: {where}: options {str(raw)[:60]!r} is not a list of options")
    out = []
    for i, option in enumerate(str(o) for o in raw):
        m = _LETTERED.match(option)
        out.append(option[m.end():] if m and m.group(1) == LETTERS[i] else option)
    return out


def parse_srt(path: Path, ctx: DataContext) -> list[tuple[float, float, str]]:
    """The (start s, end s, text) of each block of an .srt file: index line, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``,
    text lines (joined by spaces; the text of Video-MME's ``<font ...>`` tag when the block has one)."""
    text = path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    out, line_no = [], 1
    for block in text.split("\n\n"):
        lines = block.split("\n")
        first = line_no + next((i for i, ln in enumerate(lines) if ln.strip()), 0)
        line_no += len(lines) + 1
        lines = [ln for ln in lines if ln.strip()]
        if len(lines) < 3:
            continue
        times = lines[1].split("-->")
        spans = [_SRT_TIME.match(t) for t in times] if len(times) == 2 else [None]
        if not all(spans):
            raise DataError(f"task {ctx.task!r}: {path} line {first + 1}: {lines[1][:60]!r} is not "
                            f"'HH:MM:SS,mmm --> HH:MM:SS,mmm'")
        start, end = (int(h) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000
                      for h, m, s, ms in (span.groups() for span in spans))
        joined = " ".join(lines[2:])
        tagged = _FONT.findall(joined)
        out.append((start, end, tagged[0] if tagged else _TAG.sub("", joined).strip()))
    return out


def video_header(path: Path) -> tuple[int, float] | None:
    """The frame count and frame rate a video's header declares (what OpenCV's CAP_PROP_FRAME_COUNT / FPS read,
    as lmms-eval does), without decoding; None when the file cannot be opened."""
    from mmbench.data.video import require_av

    av = require_av()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 0)
            n = int(stream.frames or 0) or int(round(float(container.duration or 0) / 1e6 * rate))
            return (n, rate) if n > 0 and rate > 0 else None
    except (av.FFmpegError, OSError, IndexError, ValueError):
        return None


def sampled_subtitles(subs: list[tuple[float, float, str]], n_frames: int, fps: float, frame_num: int) -> list[str]:
    """lmms-eval's videomme_w_subtitle selection: the frames int(linspace(0, n - 1, frame_num)) and every
    subtitle whose frame span [int(start * fps), int(end * fps)) holds one of them, in time order."""
    picked = np.linspace(0, n_frames - 1, frame_num).astype(np.int64)
    keep = []
    for start, end, text in sorted(subs, key=lambda s: (s[0], s[1])):
        first, stop = int(start * fps), int(end * fps)
        if np.any((picked >= first) & (picked < stop)) and text:
            keep.append(text)
    return keep


def load_videomme(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """Video-MME: ``annotations`` (lmms-lab/Video-MME's ``videomme/test-00000-of-00001.parquet``: videoID,
    question_id, duration, domain, sub_category, task_type, question, options ("A. ..."), answer; or the same
    as JSON), ``videos`` (``data/<videoID>.mp4``), and with ``subtitles`` (``subtitle/<videoID>.srt``) a
    ``subtitles`` field: the lines shown at the ``subtitle_frames`` (default 32) frames lmms-eval samples to
    choose them, or "No subtitles available" for a video without a subtitle file. ``durations`` (e.g.
    [long]) keeps those videos only."""
    a_path = place(cfg, "annotations", ctx, "Video-MME annotations (videomme/test-00000-of-00001.parquet)", "videomme")
    folder = VideoFolder(place(cfg, "videos", ctx, "Video-MME video folder (data/)", "videomme"), ctx,
                         "Video-MME video folder")
    sub_dir = place(cfg, "subtitles", ctx, "Video-MME subtitle folder (subtitle/)", "videomme", required=False)
    frame_num = _int(cfg.get("subtitle_frames", 32), "data", ctx, "subtitle_frames")
    durations = set(cfg.get("durations") or ())
    records, subtitles, seen = [], {}, set()
    for where, row in _videomme_rows(a_path, ctx):
        missing = [c for c in VIDEOMME_COLUMNS if row.get(c) is None]
        if missing:
            raise DataError(f"task {ctx.task!r}: {where} has no {missing[0]!r} field")
        if durations and row["duration"] not in durations:
            continue
        options = _videomme_options(row["options"], where, ctx)
        answer = str(row["answer"]).strip().upper()
        if answer not in LETTERS[:len(options)]:
            raise DataError(f"task {ctx.task!r}: {where}: answer {row['answer']!r} is not one of the letters of its "
                            f"{len(options)} options")
        qid, vid = str(row["question_id"]), str(row["videoID"])
        if qid in seen:
            raise DataError(f"task {ctx.task!r}: {where}: duplicate question_id {qid!r}")
        seen.add(qid)
        rec = {"id": qid, "question_id": qid, "question": str(row["question"]), "options": options,
               "answer": answer, "video": folder.find(vid), "videoID": vid, "video_id": str(row.get("video_id", vid)),
               **{k: str(row[k]) for k in ("duration", "domain", "sub_category", "task_type")}}
        if sub_dir is not None:
            if vid not in subtitles:
                srt = sub_dir / f"{vid}.srt"
                header = video_header(rec["video"]) if srt.exists() else None
                subtitles[vid] = (NO_SUBTITLES if not srt.exists() else
                                  "\n".join(sampled_subtitles(parse_srt(srt, ctx), *header, frame_num)) if header
                                  else "")  # an unreadable video fails its items anyway
            rec["subtitles"] = subtitles[vid]
        records.append(rec)
    srts = sorted(sub_dir.glob("*.srt")) if sub_dir is not None else []
    fp = fingerprint(["videomme", hash_files(a_path), sorted(durations), [frame_num, hash_files(*srts)] if sub_dir
                      else None, media_refs(sorted({r["video"] for r in records}))])
    with_subs = f", subtitles at {frame_num} sampled frames" if sub_dir is not None else ""
    return DataSet(records, fp, f"Video-MME {a_path.name} ({len(records)} questions, "
                   f"{len({r['videoID'] for r in records})} videos{with_subs})")
