"""VQA data formats: the official VQAv2 question/annotation files (OK-VQA shares them), TextVQA and VizWiz.

Each record: ``id`` (the question id as a string), ``question_id`` (as in the file), ``image``, ``question``,
``answers`` (the reference answer strings, as given), and ``answer_type`` / ``question_type`` when known.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping

from mmbench.data.sources import DataContext, DataSet, _read_json, _require, resolve_path
from mmbench.errors import DataError
from mmbench.specs import fingerprint


def _answers(raw: Any, where: str, ctx: DataContext) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise DataError(f"task {ctx.task!r}: {where} has no answers list")
    return [a["answer"] if isinstance(a, dict) else str(a) for a in raw]


def _hash_files(*paths: Path) -> str:
    return fingerprint([hashlib.sha256(p.read_bytes()).hexdigest() for p in paths])


def load_vqav2(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """VQAv2 / OK-VQA: ``questions`` (``{"questions": [...]}``), ``annotations`` (``{"annotations": [...]}``),
    ``images`` folder and ``image_pattern`` (default COCO val2014: ``COCO_val2014_{image_id:012d}.jpg``)."""
    q_path = resolve_path(_require(cfg, "questions", ctx, "vqav2"), ctx, "VQA questions file")
    a_path = resolve_path(_require(cfg, "annotations", ctx, "vqav2"), ctx, "VQA annotations file")
    image_dir = resolve_path(_require(cfg, "images", ctx, "vqav2"), ctx, "VQA image folder")
    pattern = cfg.get("image_pattern", "COCO_val2014_{image_id:012d}.jpg")
    questions, annotations = _read_json(q_path, ctx), _read_json(a_path, ctx)
    if not isinstance(questions, dict) or "questions" not in questions:
        raise DataError(f"task {ctx.task!r}: {q_path} is not a VQA questions file (no 'questions' key)")
    if not isinstance(annotations, dict) or "annotations" not in annotations:
        raise DataError(f"task {ctx.task!r}: {a_path} is not a VQA annotations file (no 'annotations' key)")
    by_qid = {a["question_id"]: a for a in annotations["annotations"]}
    records = []
    for q in questions["questions"]:
        ann = by_qid.get(q["question_id"])
        if ann is None:
            raise DataError(f"task {ctx.task!r}: question {q['question_id']} has no annotation in {a_path}")
        records.append({"id": str(q["question_id"]), "question_id": q["question_id"], "question": q["question"],
                        "image": image_dir / pattern.format(image_id=q["image_id"]), "image_id": q["image_id"],
                        "answers": _answers(ann.get("answers"), f"question {q['question_id']}", ctx),
                        "answer_type": ann.get("answer_type"), "question_type": ann.get("question_type")})
    return DataSet(records, _hash_files(q_path, a_path), f"VQA {q_path.name} ({len(records)} questions)")


def load_textvqa(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """TextVQA: ``annotations`` (``{"data": [{question_id, question, image_id, answers: [str]}]}``) + ``images``."""
    a_path = resolve_path(_require(cfg, "annotations", ctx, "textvqa"), ctx, "TextVQA file")
    image_dir = resolve_path(_require(cfg, "images", ctx, "textvqa"), ctx, "TextVQA image folder")
    data = _read_json(a_path, ctx)
    if not isinstance(data, dict) or "data" not in data:
        raise DataError(f"task {ctx.task!r}: {a_path} is not a TextVQA file (no 'data' key)")
    pattern = cfg.get("image_pattern", "{image_id}.jpg")
    records = [{"id": str(d["question_id"]), "question_id": d["question_id"], "question": d["question"],
                "image": image_dir / pattern.format(image_id=d["image_id"]), "image_id": d["image_id"],
                "answers": _answers(d.get("answers"), f"question {d['question_id']}", ctx)} for d in data["data"]]
    return DataSet(records, _hash_files(a_path), f"TextVQA {a_path.name} ({len(records)} questions)")


def load_vizwiz(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """VizWiz VQA: ``annotations`` (a list of ``{image, question, answers: [{answer}], answer_type}``) + ``images``.
    VizWiz has no question ids: the image file name is the id (one question per image)."""
    a_path = resolve_path(_require(cfg, "annotations", ctx, "vizwiz"), ctx, "VizWiz annotations file")
    image_dir = resolve_path(_require(cfg, "images", ctx, "vizwiz"), ctx, "VizWiz image folder")
    data = _read_json(a_path, ctx)
    if not isinstance(data, list):
        raise DataError(f"task {ctx.task!r}: {a_path} is not a VizWiz annotations file (expected a JSON list)")
    records = [{"id": d["image"], "question_id": d["image"], "question": d["question"], "image": image_dir / d["image"],
                "answers": _answers(d.get("answers"), f"image {d['image']}", ctx),
                "answer_type": d.get("answer_type")} for d in data]
    return DataSet(records, _hash_files(a_path), f"VizWiz {a_path.name} ({len(records)} questions)")
