"""AI2D (Kembhavi et al. 2016) in its official release layout and as lmms-lab/ai2d keeps it.

The release (``ai2d-all.zip`` from AllenAI, plus ``ai2d_test_ids.csv``): ``images/<id>.png`` and
``questions/<id>.png.json`` = ``{"imageName", "questions": {question text: {"answerTexts": [...],
"correctAnswer": index, "questionId": "<id>.png-<k>", "abcLabel": bool}}}``; the test split is the images
whose ids the CSV lists, one per line. ``abcLabel`` questions ask about the diagram's letter labels, so
their options are letters themselves ("A. D").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mmbench.data.mc_sources import _hf_fingerprint, _hf_images, is_missing
from mmbench.data.sources import (HFRef, DataContext, DataSet, _read_json, _require, check_columns,
                                  open_hf_dataset, resolve_path)
from mmbench.data.vqa_sources import _hash_files
from mmbench.errors import DataError
from mmbench.specs import fingerprint


def _test_ids(path: Path, ctx: DataContext) -> list[str]:
    from mmbench.files import read_text

    ids = [line.strip().split(",")[0] for line in read_text(path, "AI2D test ids").splitlines() if line.strip()]
    ids = [i.removesuffix(".png") for i in ids if i.removesuffix(".png").isdigit()]  # a header line is skipped
    if not ids:
        raise DataError(f"task {ctx.task!r}: {path} lists no image ids (one per line, as ai2d_test_ids.csv)")
    return ids


def load_ai2d(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """``root``: the unzipped ``ai2d`` folder (images/, questions/); ``test_ids``: ai2d_test_ids.csv. One
    record per question of the listed images, in the CSV's image order and each file's question order."""
    root = resolve_path(_require(cfg, "root", ctx, "ai2d"), ctx, "AI2D folder")
    ids_path = resolve_path(_require(cfg, "test_ids", ctx, "ai2d"), ctx, "AI2D test ids file")
    records = []
    for image_id in _test_ids(ids_path, ctx):
        q_path = root / "questions" / f"{image_id}.png.json"
        if not q_path.is_file():
            raise DataError(f"task {ctx.task!r}: {q_path} not found, though {ids_path.name} lists image {image_id}; "
                            f"unzip ai2d-all.zip completely")
        data = _read_json(q_path, ctx)
        questions = data.get("questions") if isinstance(data, dict) else None
        if not isinstance(questions, dict):
            raise DataError(f"task {ctx.task!r}: {q_path} has no 'questions' object")
        for text, q in questions.items():
            if not isinstance(q, dict) or not isinstance(q.get("answerTexts"), list) or "correctAnswer" not in q:
                raise DataError(f"task {ctx.task!r}: {q_path}: question {text!r} lacks answerTexts/correctAnswer")
            records.append({"id": str(q.get("questionId", f"{image_id}.png-{len(records)}")),
                            "question_id": q.get("questionId"), "question": text,
                            "options": [str(o) for o in q["answerTexts"]], "answer": int(q["correctAnswer"]),
                            "image": root / "images" / str(data.get("imageName", f"{image_id}.png")),
                            "abc_label": bool(q.get("abcLabel", False))})
    fp = fingerprint(["ai2d", _hash_files(ids_path), [[r["id"], r["answer"], r["options"]] for r in records]])
    return DataSet(records, fp, f"AI2D {root} test ({len(records)} questions)")


def load_ai2d_hf(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """AI2D as lmms-lab/ai2d keeps it (split test, 3,088 questions): ``question``, ``options`` (a list),
    ``answer`` (the 0-based index of the right option, as a string), ``image``."""
    ds, source, split = open_hf_dataset(cfg, ctx, "ai2d-hf")
    check_columns(ds, {c: c for c in ("question", "options", "answer", "image")}, ctx, source)
    ds = _hf_images(ds, ["image"])
    records = []
    for n, (question, options, answer) in enumerate(zip(ds["question"], ds["options"], ds["answer"])):
        try:
            index = None if is_missing(answer) else int(str(answer).strip())
        except ValueError:
            raise DataError(f"task {ctx.task!r}: {source} row {n}: answer {answer!r} is not an option index") from None
        records.append({"id": str(n), "question_id": n, "question": question, "options": [str(o) for o in options],
                        "answer": index, "image": HFRef(ds, "image", n)})
    return DataSet(records, _hf_fingerprint("ai2d-hf", ds, source, split, cfg),
                   f"AI2D {source} split={split} ({len(records)} questions)")


