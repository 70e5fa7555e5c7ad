"""Video benchmarks in their official release layouts: the open-ended QA sets (MSVD-QA, MSRVTT-QA,
ActivityNet-QA), NExT-QA's multiple-choice questions and MSR-VTT's 1k-A retrieval split. MVBench and Video-MME
are in mmbench.data.video_mc_sources.

Every record has ``id`` and ``video`` (a Path, decoded only when the item is processed: a missing or corrupt
file fails its own item) and what its kind reads: ``question`` + ``answers`` (``video-qa``), ``question`` +
``options`` + ``answer`` (``multiple-choice``) or ``captions`` (``video-retrieval``), plus the fields
breakdowns use (``question_type``, ``type``, ``category``, ...).

Paths in a ``data:`` section are relative to --data-dir, or a mapping naming another place:
``{hub: owner/name, path: file, revision: r}`` (a dataset repository in the local Hugging Face hub cache,
never downloaded) or ``{hf_home: path}`` (a folder under $HF_HOME, where lmms-eval unzips benchmark videos).
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from mmbench.data.sources import DataContext, DataSet, _read_json, _require, hub_snapshot, open_hf_dataset, resolve_path
from mmbench.data.vqa_sources import _entries, _field
from mmbench.errors import DataError, MissingDataError
from mmbench.specs import fingerprint

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".MP4", ".gif")


# -- shared helpers -----------------------------------------------------------------------------------------

def place(cfg: Mapping[str, Any], key: str, ctx: DataContext, what: str, fmt: str,
          required: bool = True) -> Path | None:
    """The file or folder ``cfg[key]`` names: a path under --data-dir (or absolute), ``{hub: repo, path: p}``
    (inside the repository's snapshot in the local hub cache) or ``{hf_home: p}`` ($HF_HOME/p). Missing:
    MissingDataError naming where it was looked for."""
    value = cfg.get(key)
    if value in (None, ""):
        if required:
            _require(cfg, key, ctx, fmt)
        return None
    if not isinstance(value, Mapping):
        return resolve_path(value, ctx, what)
    hint = f" {ctx.help.strip()}" if ctx.help else ""
    if "hub" in value:
        snapshot = hub_snapshot(str(value["hub"]), value.get("revision"))
        if snapshot is None:
            raise MissingDataError(f"task {ctx.task!r}: Hugging Face dataset {str(value['hub'])!r} is not in the local "
                                   f"hub cache (HF_HOME / HF_HUB_CACHE); mmbench never downloads benchmark data.{hint}")
        path, where = snapshot / str(value.get("path", "")), f"{value['hub']} in the local hub cache"
    elif "hf_home" in value:
        from huggingface_hub import constants

        path, where = Path(constants.HF_HOME) / str(value["hf_home"]), "lmms-eval's copy under $HF_HOME"
    else:
        raise DataError(f"task {ctx.task!r}: data key {key!r} is {dict(value)!r}; give a path, {{hub: owner/name, "
                        f"path: ...}} or {{hf_home: ...}}")
    if not path.exists():
        raise MissingDataError(f"task {ctx.task!r}: {what} not found at {path} ({where}).{hint}")
    return path


class VideoFolder:
    """The video files of a folder by name without extension (one listing instead of a lookup per item)."""

    def __init__(self, root: Path, ctx: DataContext, what: str) -> None:
        if not root.is_dir():
            raise DataError(f"task {ctx.task!r}: {what} {root} is a file; name the folder holding the videos")
        self.root = root
        self.by_stem: dict[str, Path] = {}
        for f in sorted(root.iterdir(), key=lambda p: (VIDEO_EXTENSIONS.index(p.suffix)
                                                      if p.suffix in VIDEO_EXTENSIONS else 99, p.name)):
            if f.is_file() or f.is_dir():  # a frame folder stands for a video too
                self.by_stem.setdefault(f.stem if f.is_file() else f.name, f)

    def find(self, *stems: str, default_ext: str = ".mp4") -> Path:
        """The first of ``stems`` present (any video extension); else the path the first would have, which
        fails its item as "file not found"."""
        for stem in stems:
            if stem in self.by_stem:
                return self.by_stem[stem]
        return self.root / f"{stems[0]}{default_ext}"


def media_refs(paths: Iterable[Path]) -> list:
    """What identifies the videos in a fingerprint: each one's name and size (-1: missing)."""
    out = []
    for p in paths:
        try:
            out.append([p.name, p.stat().st_size if p.is_file() else -2])
        except OSError:
            out.append([p.name, -1])
    return out


def hash_files(*paths: Path) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def _int(value: Any, where: str, ctx: DataContext, what: str) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(str(value).strip())
    except ValueError:
        raise DataError(f"task {ctx.task!r}: {where}: {what} {value!r} is not a whole number") from None


def _csv_rows(path: Path, columns: tuple[str, ...], ctx: DataContext, what: str) -> list[tuple[int, dict]]:
    """The rows of a CSV file with a header (row numbers as a spreadsheet shows them: the header is row 1)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"task {ctx.task!r}: {path} is not {what}: no {missing[0]!r} column (header: "
                                f"{','.join(reader.fieldnames or [])})")
            rows = []
            for row in reader:
                if None in row or any(row.get(c) is None for c in columns):
                    raise DataError(f"task {ctx.task!r}: {path} row {reader.line_num}: expected "
                                    f"{len(reader.fieldnames or [])} comma-separated values")
                rows.append((reader.line_num, row))
            return rows
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"task {ctx.task!r}: {path} cannot be read as CSV ({type(exc).__name__}: {exc})") from None


# -- MSVD-QA and MSRVTT-QA -------------------------------------------------------------------------------------

QUESTION_WORDS = ("what", "who", "how", "when", "where")


def question_word(question: str) -> str:
    """The question type MSVD-QA and MSRVTT-QA report accuracy by: its first word (what, who, how, when,
    where), else other."""
    first = question.strip().split(" ", 1)[0].lower() if question.strip() else ""
    return first if first in QUESTION_WORDS else "other"


def _qa_rows(path: Path, ctx: DataContext, what: str) -> list[dict]:
    rows = _entries(_read_json(path, ctx), None, path, what, ctx)
    for n, row in enumerate(rows):
        for key in ("id", "question", "answer", "video_id"):
            _field(row, key, path, n, ctx)
    return rows


def _qa_record(row: dict, n: int, path: Path, video: Path, ctx: DataContext) -> dict:
    question = str(row["question"])
    return {"id": str(row["id"]), "question_id": row["id"], "question": question, "answers": [str(row["answer"])],
            "video": video, "video_id": _int(row["video_id"], f"{path} entry {n}", ctx, "video_id"),
            "question_type": question_word(question)}


def _mapping(path: Path | None, ctx: DataContext) -> dict[str, str]:
    """MSVD's youtube_mapping.txt: ``<YouTube clip name> vid<N>`` per line -> {vidN: clip name}."""
    if path is None:
        return {}
    out = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not re.fullmatch(r"vid\d+", parts[1]):
            raise DataError(f"task {ctx.task!r}: {path} line {lineno} is not '<clip name> vid<N>'")
        out[parts[1]] = parts[0]
    return out


def load_msvd_qa(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """MSVD-QA (xudejing/video-question-answering): ``annotations`` (``test_qa.json``: a list of ``{id, video_id,
    question, answer}``), ``videos`` (the folder of MSVD clips, renamed ``vid<video_id>.avi`` as the release's
    preprocessing expects, or under their YouTube names) and ``mapping`` (optional ``youtube_mapping.txt``,
    which maps vid<N> to the YouTube clip name)."""
    a_path = place(cfg, "annotations", ctx, "MSVD-QA annotations (test_qa.json)", "msvd-qa")
    folder = VideoFolder(place(cfg, "videos", ctx, "MSVD video folder", "msvd-qa"), ctx, "MSVD video folder")
    map_path = place(cfg, "mapping", ctx, "MSVD youtube_mapping.txt", "msvd-qa", required=False)
    names = _mapping(map_path, ctx)
    records = []
    for n, row in enumerate(_qa_rows(a_path, ctx, "an MSVD-QA annotations file (a JSON list of objects)")):
        vid = f"vid{_int(row['video_id'], f'{a_path} entry {n}', ctx, 'video_id')}"
        video = folder.find(vid, *([names[vid]] if vid in names else []), default_ext=".avi")
        records.append(_qa_record(row, n, a_path, video, ctx))
    files = [a_path, *([map_path] if map_path else [])]
    fp = fingerprint(["msvd-qa", hash_files(*files), media_refs(sorted({r["video"] for r in records}))])
    return DataSet(records, fp, f"MSVD-QA {a_path.name} ({len(records)} questions, "
                   f"{len({r['video_id'] for r in records})} videos)")


def load_msrvtt_qa(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """MSRVTT-QA (xudejing/video-question-answering): ``annotations`` (``test_qa.json``: a list of ``{id,
    video_id, category_id, question, answer}``) and ``videos`` (MSR-VTT's ``video<video_id>.mp4`` files)."""
    a_path = place(cfg, "annotations", ctx, "MSRVTT-QA annotations (test_qa.json)", "msrvtt-qa")
    folder = VideoFolder(place(cfg, "videos", ctx, "MSR-VTT video folder", "msrvtt-qa"), ctx, "MSR-VTT video folder")
    records = []
    for n, row in enumerate(_qa_rows(a_path, ctx, "an MSRVTT-QA annotations file (a JSON list of objects)")):
        video_id = _int(row["video_id"], f"{a_path} entry {n}", ctx, "video_id")
        rec = _qa_record(row, n, a_path, folder.find(f"video{video_id}"), ctx)
        if row.get("category_id") is not None:
            rec["category_id"] = row["category_id"]
        records.append(rec)
    fp = fingerprint(["msrvtt-qa", hash_files(a_path), media_refs(sorted({r["video"] for r in records}))])
    return DataSet(records, fp, f"MSRVTT-QA {a_path.name} ({len(records)} questions, "
                   f"{len({r['video_id'] for r in records})} videos)")


# -- ActivityNet-QA ---------------------------------------------------------------------------------------------

ACTIVITYNET_TYPES = ("Motion", "Spatial Relationship", "Temporal Relationship", "Yes/No", "Color", "Object",
                     "Location", "Number", "Other")  # type 0-8 of the *_a.json files; 3-8 are the "Free" questions


def _activitynet_record(q: Mapping, a: Mapping, where: str, folder: VideoFolder, ctx: DataContext) -> dict:
    kind = _int(a.get("type"), where, ctx, "type")
    if not 0 <= kind < len(ACTIVITYNET_TYPES):
        raise DataError(f"task {ctx.task!r}: {where}: type {kind} is not one of ActivityNet-QA's types 0-8")
    name, raw = str(q["video_name"]), str(q["question"])
    # lmms-eval's prompt form: the first letter capitalised (str.capitalize) and a question mark
    return {"id": str(q["question_id"]), "question_id": q["question_id"], "question": raw.capitalize() + "?",
            "question_original": raw, "answers": [str(a["answer"])], "video_name": name,
            "video": folder.find(f"v_{name}", name), "type": ACTIVITYNET_TYPES[kind],
            "question_type": ACTIVITYNET_TYPES[kind] if kind < 3 else "Free"}


def load_activitynet_qa(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """ActivityNet-QA (MILVLG/activitynet-qa): ``questions`` (``test_q.json``: ``{video_name, question,
    question_id}``), ``answers`` (``test_a.json``: ``{question_id, answer, type}``) and ``videos`` (ActivityNet
    v1.3 videos, ``v_<video_name>.mp4`` / ``.mkv`` / ``.webm``). ``type`` is the name of the answer's type (0-8),
    ``question_type`` Motion / Spatial Relationship / Temporal Relationship / Free as eval.py reports them."""
    q_path = place(cfg, "questions", ctx, "ActivityNet-QA questions (test_q.json)", "activitynet-qa")
    a_path = place(cfg, "answers", ctx, "ActivityNet-QA answers (test_a.json)", "activitynet-qa")
    folder = VideoFolder(place(cfg, "videos", ctx, "ActivityNet video folder", "activitynet-qa"), ctx,
                         "ActivityNet video folder")
    questions = _entries(_read_json(q_path, ctx), None, q_path, "an ActivityNet-QA questions file", ctx)
    answers = {}
    for n, a in enumerate(_entries(_read_json(a_path, ctx), None, a_path, "an ActivityNet-QA answers file", ctx)):
        for key in ("question_id", "answer", "type"):
            _field(a, key, a_path, n, ctx)
        answers[str(a["question_id"])] = (n, a)
    records = []
    for n, q in enumerate(questions):
        for key in ("question_id", "question", "video_name"):
            _field(q, key, q_path, n, ctx)
        if str(q["question_id"]) not in answers:
            raise DataError(f"task {ctx.task!r}: {q_path} entry {n}: question {q['question_id']!r} has no answer in "
                            f"{a_path}")
        k, a = answers[str(q["question_id"])]
        records.append(_activitynet_record(q, a, f"{a_path} entry {k}", folder, ctx))
    fp = fingerprint(["activitynet-qa", hash_files(q_path, a_path),
                      media_refs(sorted({r["video"] for r in records}))])
    return DataSet(records, fp, f"ActivityNet-QA {q_path.name} ({len(records)} questions)")


def load_activitynet_qa_hf(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """lmms-lab/ActivityNetQA as lmms-eval keeps it: the questions from the hub cache (``path``, split
    ``test``: video_name, question, answer, question_id, type) and the videos lmms-eval unzipped (``videos``,
    e.g. ``{hf_home: activitynetqa/all_test}``)."""
    from mmbench.data.sources import check_columns

    folder = VideoFolder(place(cfg, "videos", ctx, "ActivityNet video folder", "activitynet-qa-hf"), ctx,
                         "ActivityNet video folder")
    ds, source, split = open_hf_dataset({k: v for k, v in cfg.items() if k != "videos"}, ctx, "activitynet-qa-hf")
    cols = ("video_name", "question", "answer", "question_id", "type")
    check_columns(ds, {c: c for c in cols}, ctx, source)
    records = [_activitynet_record(row, row, f"{source} row {n}", folder, ctx)
               for n, row in enumerate(dict(zip(cols, values)) for values in zip(*(ds[c] for c in cols)))]
    fp = fingerprint(["activitynet-qa-hf", getattr(ds, "_fingerprint", source), split,
                      media_refs(sorted({r["video"] for r in records}))])
    return DataSet(records, fp, f"ActivityNet-QA {source} split={split} ({len(records)} questions)")


# -- NExT-QA ----------------------------------------------------------------------------------------------------

NEXTQA_TYPES = {"CW": "Why", "CH": "How", "TN": "Bef&Aft", "TC": "When", "DC": "Cnt", "DL": "Loc", "DO": "Other"}
NEXTQA_CATEGORIES = {"C": "Causal", "T": "Temporal", "D": "Descriptive"}
NEXTQA_COLUMNS = ("video", "question", "answer", "qid", "type", "a0", "a1", "a2", "a3", "a4")


def load_nextqa(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """NExT-QA multiple choice (doc-doc/NExT-QA ``dataset/nextqa``): ``csv`` (``val.csv`` / ``test.csv``:
    video, frame_count, width, height, question, answer (0-4), qid, type, a0-a4), ``videos`` (NExTVideo:
    ``<group>/<video>.mp4`` as ``map`` -- ``map_vid_vidorID.json`` -- places each video, or flat
    ``<video>.mp4`` as lmms-eval keeps them). ``id`` is eval_mc.py's ``<video>_<qid>``; ``type`` its question
    type (TP counted as TN, as eval_mc.py does), ``category`` Causal / Temporal / Descriptive."""
    path = place(cfg, "csv", ctx, "NExT-QA question file (val.csv)", "nextqa")
    root = place(cfg, "videos", ctx, "NExTVideo folder", "nextqa")
    map_path = place(cfg, "map", ctx, "NExT-QA map_vid_vidorID.json", "nextqa", required=False)
    groups = _read_json(map_path, ctx) if map_path else {}
    if not isinstance(groups, dict):
        raise DataError(f"task {ctx.task!r}: {map_path} is not map_vid_vidorID.json (expected {{video: group/video}})")
    records, seen = [], set()
    for row_no, row in _csv_rows(path, NEXTQA_COLUMNS, ctx, "a NExT-QA question file"):
        where = f"{path} row {row_no}"
        answer = _int(row["answer"], where, ctx, "answer")
        if not 0 <= answer <= 4:
            raise DataError(f"task {ctx.task!r}: {where}: answer {answer} is not an option index 0-4")
        qtype = "TN" if row["type"] == "TP" else row["type"]
        if qtype not in NEXTQA_TYPES:
            raise DataError(f"task {ctx.task!r}: {where}: type {row['type']!r} is not one of NExT-QA's question types "
                            f"({', '.join(NEXTQA_TYPES)}, TP)")
        vid = row["video"].strip()
        rid = f"{vid}_{row['qid'].strip()}"
        if rid in seen:
            raise DataError(f"task {ctx.task!r}: {where}: duplicate question {rid!r}")
        seen.add(rid)
        grouped = root / f"{groups[vid]}.mp4" if vid in groups else None
        video = grouped if grouped is not None and grouped.exists() else root / f"{vid}.mp4"
        records.append({"id": rid, "question_id": rid, "question": row["question"].strip(),
                        "options": [row[f"a{i}"].strip() for i in range(5)], "answer": answer, "video": video,
                        "video_id": vid, "type": qtype, "type_name": NEXTQA_TYPES[qtype],
                        "category": NEXTQA_CATEGORIES[qtype[0]]})
    files = [path, *([map_path] if map_path else [])]
    fp = fingerprint(["nextqa", hash_files(*files), media_refs(sorted({r["video"] for r in records}))])
    return DataSet(records, fp, f"NExT-QA {path.name} ({len(records)} questions, "
                   f"{len({r['video_id'] for r in records})} videos)")


# -- MSR-VTT 1k-A retrieval ------------------------------------------------------------------------------------

def load_msrvtt_retrieval(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """MSR-VTT 1k-A (the JSFusion test split as CLIP4Clip's msrvtt_data ships it): ``csv``
    (``MSRVTT_JSFUSION_test.csv``: key, vid_key, video_id, sentence; one sentence per video) and ``videos``
    (MSR-VTT's ``video<N>.mp4``)."""
    path = place(cfg, "csv", ctx, "MSR-VTT 1k-A file (MSRVTT_JSFUSION_test.csv)", "msrvtt-retrieval")
    folder = VideoFolder(place(cfg, "videos", ctx, "MSR-VTT video folder", "msrvtt-retrieval"), ctx,
                         "MSR-VTT video folder")
    records, by_video = [], {}
    for row_no, row in _csv_rows(path, ("key", "video_id", "sentence"), ctx, "an MSR-VTT 1k-A file"):
        vid = row["video_id"].strip()
        if not vid:
            raise DataError(f"task {ctx.task!r}: {path} row {row_no}: empty video_id")
        if vid in by_video:  # a file listing several sentences per video: they all caption it
            by_video[vid]["captions"].append(row["sentence"])
            continue
        by_video[vid] = {"id": vid, "video_id": vid, "key": row["key"], "video": folder.find(vid),
                         "captions": [row["sentence"]]}
        records.append(by_video[vid])
    fp = fingerprint(["msrvtt-retrieval", hash_files(path), media_refs(r["video"] for r in records)])
    n_captions = sum(len(r["captions"]) for r in records)
    return DataSet(records, fp, f"MSR-VTT {path.name} ({len(records)} videos, {n_captions} sentences)")
