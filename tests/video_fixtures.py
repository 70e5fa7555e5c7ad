"""Small copies of the video benchmarks (MSVD-QA, MSRVTT-QA, ActivityNet-QA, NExT-QA, MVBench, Video-MME,
MSR-VTT 1k-A) in their exact release layouts, with tiny clips written by PyAV (64x64, 8 frames at 4 fps unless
a test needs more), and scripted models whose answers are known in advance so every score can be worked out
by hand from the benchmark's own rule.

Each benchmark is a list of questions with the answer the scripted model gives; the expected scores below
are computed from those lists in the comments (and, in the tests, by the official rules written out again).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np

from mmbench.adapters.base import Adapter
from mmbench.capabilities import Capability, Generation

SIZE, FPS = 64, 4
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 60, 220), "yellow": (230, 220, 40),
           "grey": (128, 128, 128)}
CODECS = {".mp4": "libx264", ".mkv": "libx264", ".avi": "mpeg4", ".webm": "libvpx-vp9"}


def write(path: Path, data: str | bytes | object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def write_video(path: Path, colour: str = "grey", n: int = 8, fps: int = FPS) -> Path:
    """A clip of ``n`` frames at ``fps``: a ``colour`` field with a white bar that moves right one step a frame."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(CODECS[path.suffix], rate=fps)
        stream.width = stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        for i in range(n):
            arr = np.empty((SIZE, SIZE, 3), dtype=np.uint8)
            arr[:] = COLOURS[colour]
            arr[:4, (i * 4) % SIZE:(i * 4) % SIZE + 4] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_frames(folder: Path, n: int, colour: str = "grey") -> Path:
    """A folder of frames 00001.jpg ... as MVBench's TVQA frame folders hold them."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for k in range(1, n + 1):
        Image.new("RGB", (SIZE, SIZE), COLOURS[colour]).save(folder / f"{k:05d}.jpg")
    return folder


class ScriptedVideoModel(Adapter):
    """Answers each prompt with the answer scripted for the question it contains (the longest match), and
    records every prompt with the number of frames it came with (``seen``). Takes the frames as images."""

    capabilities: ClassVar[frozenset] = frozenset({Capability.GENERATE_TEXT})
    answers: ClassVar[dict[str, str]] = {}
    seen: ClassVar[list[tuple[str, int]]] = []

    def prepare(self, requests, config):
        return list(requests)

    def generate(self, prepared, config):
        out = []
        for r in prepared:
            type(self).seen.append((r.prompt, len(r.images)))
            hits = [q for q in self.answers if q in r.prompt]
            out.append(Generation(self.answers[max(hits, key=len)] if hits else "?", prompt_sent=r.prompt))
        return out


class ColourEncoder(Adapter):
    """A dual encoder for MSR-VTT 1k-A: a frame embeds as its mean RGB, a sentence as the RGB of the colour
    word it contains (cosine similarity then ranks videos by colour)."""

    capabilities: ClassVar[frozenset] = frozenset({Capability.EMBED})

    def preprocess_images(self, images):
        return [np.asarray(im.convert("RGB"), dtype=np.float64)[4:].reshape(-1, 3).mean(0) for im in images]

    def embed_images(self, batch):
        return np.stack(batch)

    def embed_texts(self, texts):
        return np.stack([np.asarray(next(COLOURS[w] for w in t.split() if w in COLOURS), dtype=np.float64)
                         for t in texts])

    def truncated(self, texts):
        return [False] * len(texts)


# ------------------------------------------------------------------------------------------ MSVD-QA / MSRVTT-QA
SHORT = "Answer the question using a single word or phrase."
# (id, video_id, question, answer, scripted answer)
MSVD_QA = [
    (0, 1, "what is running in the field?", "dog", "dog"),  # right
    (1, 1, "who is throwing a ball?", "man", "woman"),  # wrong
    (2, 2, "how does the woman cut the onion?", "quickly", "Quickly"),  # right: case does not count
    (3, 2, "where is the woman?", "kitchen", "kitchen"),  # right
]
MSVD_EXPECTED = {"exact_match": 0.75, "exact_match[question_type=what]": 1.0,
                 "exact_match[question_type=who]": 0.0, "exact_match[question_type=how]": 1.0}
MSVD_MAPPING = "-4wsuPCjDBc_5_15 vid1\nzv2RIbUsnSw_335_341 vid2\n"
# (id, video_id, category_id, question, answer, scripted answer)
MSRVTT_QA = [
    (0, 7010, 3, "what is a man doing?", "sing", "sing"),  # right
    (1, 7010, 3, "who is singing?", "man", "man"),  # right
    (2, 7011, 11, "what are people playing?", "football", "soccer"),  # wrong
]
MSRVTT_EXPECTED = {"exact_match": 2 / 3, "exact_match[question_type=what]": 0.5,
                   "exact_match[question_type=who]": 1.0}

# ------------------------------------------------------------------------------------------ ActivityNet-QA
# (question_id, video_name, question, answer, type, scripted answer)
ACTIVITYNET_QA = [
    ("v_abc123XYZ_1", "abc123XYZ", "is the man wearing a hat", "yes", 3, "yes"),  # right
    ("v_abc123XYZ_2", "abc123XYZ", "what color is the ball", "red", 4, "blue"),  # wrong
    ("v_def-456_0", "def-456", "what does the person do after opening the door", "walk in", 2, "walk in"),  # right
    ("v_def-456_3", "def-456", "how many people are there", "2", 7, "2"),  # right
]
ACTIVITYNET_EXPECTED = {"exact_match": 0.75, "exact_match[question_type=Free]": 2 / 3,
                        "exact_match[question_type=Temporal Relationship]": 1.0, "exact_match[type=Color]": 0.0,
                        "exact_match[type=Number]": 1.0}

# ------------------------------------------------------------------------------------------ NExT-QA
NEXTQA_HEADER = "video,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4"
# (video, question, answer index, qid, type, options, scripted answer)
NEXTQA = [
    ("4010069381", "how do the two man play the instrument", 2, 6, "CH",
     ["roll the handle", "tap their feet", "strum the string", "hit with sticks", "pat with hand"],
     "C. strum the string"),  # right: "C." then the option
    ("4882821564", "why did the boy pick up one present from the group of them", 2, 1, "CW",
     ["share with the girl", "approach lady sitting there", "unwrap it", "playing with toy train", "gesture"], "B"),
    ("2435100235", "what does the white dog do after going to the cushion", 1, 8, "TP",
     ["drink again", "shake its body", "smells the black dog", "wagging tail", "touch lady"], "(B)"),  # right
    ("2435100235", "where is this place", 3, 2, "DL", ["mall", "river", "swimming pool", "living room", "mountain"],
     "D"),  # right
]
NEXTQA_GROUPS = {"4010069381": "0101/4010069381", "4882821564": "0016/4882821564", "2435100235": "1124/2435100235",
                 "3161384320": "0094/3161384320"}
NEXTQA_EXPECTED = {"mc_accuracy": 0.75, "mc_accuracy[category=Causal]": 0.5, "mc_accuracy[category=Temporal]": 1.0,
                   "mc_accuracy[category=Descriptive]": 1.0, "mc_accuracy[type_name=Why]": 0.0,
                   "mc_accuracy[type_name=Bef&Aft]": 1.0}

# ------------------------------------------------------------------------------------------ MVBench
# task -> entries (with the scripted answer as "_say"); the other 16 tasks' files are empty lists
MVBENCH = {
    "action_sequence": [
        {"video": "ABC12.mp4", "question": "What happened after the person took the box?",
         "candidates": ["Put down the box.", "Opened the door.", "Sat on the bed."], "answer": "Opened the door.",
         "start": 1.0, "end": 2.0, "_say": "(B) Opened the door."},  # right
        {"video": "ABC12.mp4", "question": "Which object did the person throw?",
         "candidates": ["The pillow.", "The shoe."], "answer": "The pillow.", "start": 0.5, "end": 3.0,
         "_say": "B"},  # wrong
    ],
    "episodic_reasoning": [
        {"video": "s01e02_seg02_clip_03", "question": "Why is Sheldon upset?",
         "candidates": ["He lost a game.", "His spot is taken.", "The train is late.", "He is hungry."],
         "answer": "The train is late.", "start": 1.0, "end": 2.0, "_say": "(C)"},  # right
    ],
    "object_existence": [
        {"video": "video_10000.mp4", "question": "Are there any moving green objects when the video ends?",
         "candidates": ["not sure", "yes", "no"], "answer": "no", "_say": "C"},  # right
        {"video": "video_10001.mp4", "question": "Are there any moving cubes when the video begins?",
         "candidates": ["not sure", "yes", "no"], "answer": "yes", "_say": "A"},  # wrong (video in data0613/)
    ],
    "action_antonym": [
        {"video": "12345.webm", "question": "What is the action performed by the person in the video?",
         "candidates": ["Pushing something", "Pulling something", "Not sure"], "answer": "Pulling something",
         "_say": "(B) Pulling something"},  # right
    ],
}
MVBENCH_EXPECTED = {"mc_accuracy": 4 / 6, "mc_accuracy[task_name=Action Sequence]": 0.5,
                    "mc_accuracy[task_name=Episodic Reasoning]": 1.0,
                    "mc_accuracy[task_name=Object Existence]": 0.5, "mc_accuracy[task_name=Action Antonym]": 1.0}

# ------------------------------------------------------------------------------------------ Video-MME
VIDEOMME_VIDEOS = [  # (video_id, videoID, duration, domain, sub_category, file extension)
    ("001", "fFjv93ACGo8", "short", "Knowledge", "Humanity & History", ".mp4"),
    ("301", "Aw1sP3EJwZk", "medium", "Film & Television", "Animation", ".mp4"),
    ("601", "-DbxlqT0_ok", "long", "Sports Competition", "Football", ".mkv"),
]
# (question_id, video index, task_type, question, options, answer, scripted answer)
VIDEOMME = [
    ("001-1", 0, "Counting Problem", "How many apples are shown?", ["A. 1.", "B. 2.", "C. 3.", "D. 4."], "C", "C"),
    ("001-2", 0, "Information Synopsis", "What is the genre of this video?",
     ["A. A news report.", "B. A cooking show.", "C. A travel vlog.", "D. A tutorial."], "A",
     "The answer is B, not A."),  # wrong: the official reader takes B (VLMEvalKit's would find two letters)
    ("301-1", 1, "Object Recognition", "What is the color of the ball?",
     ["A. Black.", "B. Gray.", "C. Green.", "D. Brown."], "B", "B. Gray."),  # right
    ("301-2", 1, "Temporal Reasoning", "What happens first?",
     ["A. A jump.", "B. A fall.", "C. A run.", "D. A kick."], "D", "(D)"),  # right
    ("601-1", 2, "Action Recognition", "Which sport is played?",
     ["A. Football.", "B. Tennis.", "C. Golf.", "D. Rugby."], "A", "A. Football, not D."),  # right: the first
    ("601-2", 2, "OCR Problems", "What is written on the board?",
     ["A. Home.", "B. Away.", "C. Exit.", "D. Goal."], "D", "I cannot tell."),  # no letter: wrong
]
VIDEOMME_EXPECTED = {"mc_accuracy": 4 / 6, "mc_accuracy[duration=short]": 0.5, "mc_accuracy[duration=medium]": 1.0,
                     "mc_accuracy[duration=long]": 0.5, "mc_accuracy[task_type=Counting Problem]": 1.0,
                     "mc_unparseable_rate": 1 / 6,
                     # eval_your_results.py's denominator: the 5 answers with a letter (601-2 names none)
                     "mc_accuracy_answered": 4 / 5, "mc_accuracy_answered[duration=short]": 0.5,
                     "mc_accuracy_answered[duration=long]": 1.0}
FONT = '<font color="white" size=".72c">{}</font>'
# subtitles of the short video (8 frames at 4 fps; lmms-eval's 32 frames int(linspace(0, 7, 32)) are all 8):
# line 1 spans frames [0, 1): kept; line 2 [2, 2) holds none: dropped; line 3 [4, 6): kept; line 4 is after
# the end: dropped
VIDEOMME_SRT = {
    "fFjv93ACGo8": "\n\n".join([
        f"1\n00:00:00,000 --> 00:00:00,400\n{FONT.format('Hello there')}",
        f"2\n00:00:00,600 --> 00:00:00,700\n{FONT.format('too short to show')}",
        f"3\n00:00:01,000 --> 00:00:01,500\n{FONT.format('Second line')}",
        f"4\n00:00:05,000 --> 00:00:06,000\n{FONT.format('after the end')}"]) + "\n",
    "-DbxlqT0_ok": "1\r\n00:00:00,000 --> 00:00:01,000\r\nplain words here\r\n\r\n2\r\n00:00:01,000 --> "
                   f"00:00:02,000\r\n{FONT.format('last words')}\r\n",
}
VIDEOMME_SUBTITLES = {"fFjv93ACGo8": "Hello there\nSecond line", "Aw1sP3EJwZk": "No subtitles available",
                      "-DbxlqT0_ok": "plain words here\nlast words"}

# ------------------------------------------------------------------------------------------ MSR-VTT 1k-A
# (key, video_id, colour of the video, sentence): the last sentence names the wrong colour
MSRVTT_1KA = [("ret0", "video7020", "red", "a red car drives by"), ("ret1", "video7021", "green", "a green field"),
              ("ret2", "video7022", "blue", "the blue sky"), ("ret3", "video7023", "yellow", "a blue bird sings")]
MSRVTT_1KA_EXPECTED = {"t2i_R@1": 0.75, "t2i_R@5": 1.0, "i2t_R@1": 0.75, "i2t_R@5": 1.0}


def scripted_answers() -> dict[str, str]:
    out = {q: say for *_, q, _, say in MSVD_QA}
    out.update({q: say for *_, q, _, say in MSRVTT_QA})
    out.update({q.capitalize() + "?": say for _, _, q, _, _, say in ACTIVITYNET_QA})
    out.update({q: say for _, q, _, _, _, _, say in NEXTQA})
    out.update({e["question"]: e["_say"] for entries in MVBENCH.values() for e in entries})
    out.update({q: say for _, _, _, q, _, _, say in VIDEOMME})
    return out


# ------------------------------------------------------------------------------------------ the layouts

def write_msvd(root: Path) -> None:
    write(root / "msvd_qa" / "test_qa.json", [{"answer": a, "id": i, "question": q, "video_id": v}
                                               for i, v, q, a, _ in MSVD_QA])
    write(root / "msvd_qa" / "youtube_mapping.txt", MSVD_MAPPING)
    for vid, colour in ((1, "red"), (2, "blue")):
        write_video(root / "msvd_qa" / "video" / f"vid{vid}.avi", colour)


def write_msrvtt(root: Path) -> None:
    write(root / "msrvtt_qa" / "test_qa.json", [{"answer": a, "category_id": c, "id": i, "question": q,
                                                 "video_id": v} for i, v, c, q, a, _ in MSRVTT_QA])
    videos = root / "msrvtt" / "MSRVTT" / "videos" / "all"
    for vid in {v for _, v, *_ in MSRVTT_QA}:
        write_video(videos / f"video{vid}.mp4", "green")
    rows = [f"{key},msr{vid[5:]},{vid},{sentence}" for key, vid, _, sentence in MSRVTT_1KA]
    write(root / "msrvtt" / "msrvtt_data" / "MSRVTT_JSFUSION_test.csv", "key,vid_key,video_id,sentence\n"
          + "\n".join(rows) + "\n")
    for _, vid, colour, _ in MSRVTT_1KA:
        write_video(videos / f"{vid}.mp4", colour)


def write_activitynet(root: Path) -> None:
    folder = root / "activitynet_qa"
    write(folder / "test_q.json", [{"video_name": v, "question": q, "question_id": qid}
                                   for qid, v, q, *_ in ACTIVITYNET_QA])
    write(folder / "test_a.json", [{"answer": a, "type": t, "question_id": qid}
                                   for qid, _, _, a, t, _ in ACTIVITYNET_QA])
    write_video(folder / "videos" / "v_abc123XYZ.mp4", "yellow")
    write_video(folder / "videos" / "v_def-456.mkv", "grey")


def nextqa_csv(rows: list) -> str:
    lines = [NEXTQA_HEADER] + [f"{v},8,64,64,{q},{a},{qid},{t}," + ",".join(opts) for v, q, a, qid, t, opts, _ in rows]
    return "\n".join(lines) + "\n"


def write_nextqa(root: Path) -> None:
    folder = root / "nextqa"
    write(folder / "val.csv", nextqa_csv(NEXTQA))
    write(folder / "map_vid_vidorID.json", NEXTQA_GROUPS)
    for vid in {v for v, *_ in NEXTQA}:
        write_video(folder / "NExTVideo" / f"{NEXTQA_GROUPS[vid]}.mp4", "blue")


def mvbench_json(folder: Path, rename: dict[str, str] | None = None) -> None:
    from mmbench.data.video_mc_sources import MVBENCH_TASKS

    for task in MVBENCH_TASKS:
        entries = [{k: (rename or {}).get(v, v) if k == "video" else v for k, v in e.items() if k != "_say"}
                   for e in MVBENCH.get(task, [])]
        write(folder / "json" / f"{task}.json", entries)


def write_mvbench(root: Path) -> None:
    """The main branch: json/ and video/ (the zips unzipped), the replaced clips of data0613.zip under
    video/data0613/, TVQA as a folder of frames at 3 fps."""
    folder = root / "mvbench"
    mvbench_json(folder)
    video = folder / "video"
    write_video(video / "star" / "Charades_v1_480" / "ABC12.mp4", "red", n=16)  # 0 .. 3.75 s
    write_frames(video / "tvqa" / "frames_fps3_hq" / "s01e02_seg02_clip_03", 9, "green")  # 1/3 .. 3 s
    write_video(video / "clevrer" / "video_validation" / "video_10000.mp4", "grey")
    write_video(video / "data0613" / "clevrer" / "video_validation" / "video_10001.mp4", "grey")
    write_video(video / "ssv2_video" / "12345.webm", "yellow")


def write_mvbench_video_branch(folder: Path) -> None:
    """The video branch (what lmms-eval downloads): the folders at the top, segments pre-cut and named
    <video>_<start>_<end>.mp4, ssv2 converted to mp4, TVQA as a video."""
    mvbench_json(folder, rename={"12345.webm": "12345.mp4"})
    write_video(folder / "star" / "Charades_segment" / "ABC12_1.0_2.0.mp4", "red", n=4)
    write_video(folder / "star" / "Charades_segment" / "ABC12_0.5_3.0.mp4", "red", n=10)
    write_video(folder / "tvqa" / "video_fps3_hq_segment" / "s01e02_seg02_clip_03.mp4", "green", n=3)
    write_video(folder / "clevrer" / "video_validation" / "video_10000.mp4", "grey")
    write_video(folder / "clevrer" / "video_validation" / "video_10001.mp4", "grey")
    write_video(folder / "ssv2_video_mp4" / "12345.mp4", "yellow")


def videomme_rows() -> dict[str, list]:
    cols: dict[str, list] = {c: [] for c in ("video_id", "duration", "domain", "sub_category", "url", "videoID",
                                             "question_id", "task_type", "question", "options", "answer")}
    for qid, v, task_type, q, options, answer, _ in VIDEOMME:
        video_id, video, duration, domain, sub, _ = VIDEOMME_VIDEOS[v]
        for key, value in (("video_id", video_id), ("duration", duration), ("domain", domain), ("sub_category", sub),
                           ("url", f"https://www.youtube.com/watch?v={video}"), ("videoID", video),
                           ("question_id", qid), ("task_type", task_type), ("question", q), ("options", options),
                           ("answer", answer)):
            cols[key].append(value)
    return cols


def write_videomme_parquet(path: Path) -> None:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(videomme_rows()).to_parquet(path)


def write_videomme_media(data: Path, subtitle: Path) -> None:
    for _, video, _, _, _, ext in VIDEOMME_VIDEOS:
        write_video(data / f"{video}{ext}", "grey")
    for video, text in VIDEOMME_SRT.items():
        write(subtitle / f"{video}.srt", text.encode())


def write_videomme(root: Path) -> None:
    folder = root / "videomme"
    write_videomme_parquet(folder / "videomme" / "test-00000-of-00001.parquet")
    write_videomme_media(folder / "data", folder / "subtitle")


def write_official(root: Path) -> Path:
    """Every benchmark's official layout under ``root`` (what --data-dir points at)."""
    for writer in (write_msvd, write_msrvtt, write_activitynet, write_nextqa, write_mvbench, write_videomme):
        writer(root)
    return root


def write_lmms_eval_cache(hub: Path, hf_home: Path) -> None:
    """Video-MME and ActivityNet-QA as lmms-eval leaves them: the annotations in the hub cache (lmms-lab/...),
    the unzipped videos under $HF_HOME/<cache_dir>; MVBench's video branch linked at $HF_HOME/mvbench_video."""
    import datasets

    import mc_fixtures

    folder = hub / "datasets--lmms-lab--Video-MME"
    commit = mc_fixtures.commit_of("lmms-lab/Video-MME")
    write_videomme_parquet(folder / "snapshots" / commit / "videomme" / "test-00000-of-00001.parquet")
    write(folder / "refs" / "main", commit)
    write_videomme_media(hf_home / "videomme" / "data", hf_home / "videomme" / "subtitle")
    cols = {"video_name": [r[1] for r in ACTIVITYNET_QA], "question": [r[2] for r in ACTIVITYNET_QA],
            "answer": [r[3] for r in ACTIVITYNET_QA], "question_id": [r[0] for r in ACTIVITYNET_QA],
            "type": [r[4] for r in ACTIVITYNET_QA]}
    features = {k: datasets.Value("int64" if k == "type" else "string") for k in cols}
    mc_fixtures._repo(hub, "lmms-lab/ActivityNetQA", {"default": {"test": (cols, features)}})
    write_video(hf_home / "activitynetqa" / "all_test" / "v_abc123XYZ.mp4", "yellow")
    write_video(hf_home / "activitynetqa" / "all_test" / "v_def-456.mp4", "grey")
    write_mvbench_video_branch(hf_home / "mvbench_video")
