"""VQA data formats in the benchmarks' official release layouts: VQAv2 (OK-VQA shares it), TextVQA, VizWiz,
GQA, DocVQA / InfographicVQA and ChartQA. (Their Hugging Face copies go through the ``hf`` format.)

Each record: ``id`` (the question id as a string), ``question_id`` (as in the file, for submission files),
``image``, ``question``, ``answers`` (the reference answer strings as given; absent on test splits) and the
fields breakdowns and prompts use: ``answer_type`` / ``question_type`` (VQAv2, VizWiz), ``answerable``
(VizWiz), ``ocr_tokens`` (TextVQA with its OCR file), ``structural`` / ``answer_kind`` (GQA), ``split``
(ChartQA: human / augmented).
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


def _optional(cfg: Mapping[str, Any], key: str, ctx: DataContext, what: str) -> Path | None:
    return resolve_path(cfg[key], ctx, what) if cfg.get(key) else None


def _entries(data: Any, key: str | None, path: Path, what: str, ctx: DataContext) -> list:
    """``data[key]`` (or ``data`` itself when key is None) as a list of objects, else a one-line error."""
    rows = data.get(key) if key is not None and isinstance(data, dict) else (data if key is None else None)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        where = f"a {key!r} list of objects" if key else "a JSON list of objects"
        raise DataError(f"task {ctx.task!r}: {path} is not {what} (expected {where})")
    return rows


def _field(row: dict, key: str, path: Path, n: int, ctx: DataContext) -> Any:
    if key not in row:
        raise DataError(f"task {ctx.task!r}: {path} entry {n} has no {key!r} field")
    return row[key]


def load_vqav2(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """VQAv2 / OK-VQA: ``questions`` (``{"questions": [...]}``), ``annotations`` (``{"annotations": [...]}``;
    left out for test-dev / test, which have none), ``images`` folder and ``image_pattern`` (default COCO
    val2014: ``COCO_val2014_{image_id:012d}.jpg``). ``submission_questions``: the full test2015 questions
    file, whose every question the submission file must list (those not evaluated get an empty answer)."""
    q_path = resolve_path(_require(cfg, "questions", ctx, "vqav2"), ctx, "VQA questions file")
    a_path = _optional(cfg, "annotations", ctx, "VQA annotations file")
    image_dir = resolve_path(_require(cfg, "images", ctx, "vqav2"), ctx, "VQA image folder")
    pattern = cfg.get("image_pattern", "COCO_val2014_{image_id:012d}.jpg")
    questions = _entries(_read_json(q_path, ctx), "questions", q_path, "a VQA questions file", ctx)
    by_qid = {}
    if a_path is not None:
        anns = _entries(_read_json(a_path, ctx), "annotations", a_path, "a VQA annotations file", ctx)
        by_qid = {_field(a, "question_id", a_path, n, ctx): a for n, a in enumerate(anns)}
    records = []
    for n, q in enumerate(questions):
        qid = _field(q, "question_id", q_path, n, ctx)
        rec = {"id": str(qid), "question_id": qid, "question": _field(q, "question", q_path, n, ctx),
               "image": image_dir / pattern.format(image_id=_field(q, "image_id", q_path, n, ctx)),
               "image_id": q["image_id"]}
        if a_path is not None:
            ann = by_qid.get(qid)
            if ann is None:
                raise DataError(f"task {ctx.task!r}: question {qid} has no annotation in {a_path}")
            rec.update(answers=_answers(ann.get("answers"), f"question {qid}", ctx),
                       answer_type=ann.get("answer_type"), question_type=ann.get("question_type"))
        records.append(rec)
    meta = {}
    files = [q_path, *([a_path] if a_path else [])]
    sub_path = _optional(cfg, "submission_questions", ctx, "test2015 questions file (for the submission)")
    if sub_path is not None:
        everything = _entries(_read_json(sub_path, ctx), "questions", sub_path, "a VQA questions file", ctx)
        meta["submission_ids"] = [q["question_id"] for q in everything]
        files.append(sub_path)
    return DataSet(records, _hash_files(*files), f"VQA {q_path.name} ({len(records)} questions)", meta=meta)


def _rosetta_tokens(path: Path, ctx: DataContext) -> dict[str, list[str]]:
    rows = _entries(_read_json(path, ctx), "data", path, "a TextVQA OCR file", ctx)
    return {str(r.get("image_id")): [str(t) for t in r.get("ocr_tokens") or []] for r in rows}


def load_textvqa(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """TextVQA: ``annotations`` (``TextVQA_0.5.1_val.json``: ``{"data": [{question_id, question, image_id,
    answers}]}``), ``images`` (``train_images/``: val images live there) and optionally ``ocr`` (the Rosetta
    OCR file ``TextVQA_Rosetta_OCR_v0.2_val.json``, joined by image_id) for prompts with OCR tokens."""
    a_path = resolve_path(_require(cfg, "annotations", ctx, "textvqa"), ctx, "TextVQA file")
    image_dir = resolve_path(_require(cfg, "images", ctx, "textvqa"), ctx, "TextVQA image folder")
    ocr_path = _optional(cfg, "ocr", ctx, "TextVQA Rosetta OCR file")
    rows = _entries(_read_json(a_path, ctx), "data", a_path, "a TextVQA file", ctx)
    pattern = cfg.get("image_pattern", "{image_id}.jpg")
    ocr = _rosetta_tokens(ocr_path, ctx) if ocr_path else {}
    records = []
    for n, d in enumerate(rows):
        qid = _field(d, "question_id", a_path, n, ctx)
        image_id = _field(d, "image_id", a_path, n, ctx)
        rec = {"id": str(qid), "question_id": qid, "question": _field(d, "question", a_path, n, ctx),
               "image": image_dir / pattern.format(image_id=image_id), "image_id": image_id}
        if d.get("answers"):
            rec["answers"] = _answers(d["answers"], f"question {qid}", ctx)
        tokens = ocr.get(str(image_id), d.get("ocr_tokens"))
        if ocr_path is not None or isinstance(tokens, list):
            rec["ocr_tokens"] = list(tokens or [])
        records.append(rec)
    files = [a_path, *([ocr_path] if ocr_path else [])]
    return DataSet(records, _hash_files(*files), f"TextVQA {a_path.name} ({len(records)} questions"
                   f"{', OCR tokens from ' + ocr_path.name if ocr_path else ''})")


def load_vizwiz(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """VizWiz VQA: ``annotations`` (``val.json``: a list of ``{image, question, answers: [{answer}],
    answer_type, answerable}``; ``test.json`` has no answers) + ``images``. VizWiz has no question ids: the
    image file name is the id (one question per image)."""
    a_path = resolve_path(_require(cfg, "annotations", ctx, "vizwiz"), ctx, "VizWiz annotations file")
    image_dir = resolve_path(_require(cfg, "images", ctx, "vizwiz"), ctx, "VizWiz image folder")
    rows = _entries(_read_json(a_path, ctx), None, a_path, "a VizWiz annotations file", ctx)
    records = []
    for n, d in enumerate(rows):
        image = str(_field(d, "image", a_path, n, ctx))
        rec = {"id": image, "question_id": image, "question": _field(d, "question", a_path, n, ctx),
               "image": image_dir / image}
        if "answers" in d:
            rec["answers"] = _answers(d["answers"], f"image {image}", ctx)
        for key in ("answer_type", "answerable"):
            if d.get(key) is not None:
                rec[key] = d[key]
        records.append(rec)
    return DataSet(records, _hash_files(a_path), f"VizWiz {a_path.name} ({len(records)} questions)")


def load_gqa(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """GQA: ``questions`` (``testdev_balanced_questions.json``: ``{qid: {imageId, question, answer, types,
    isBalanced}}``) + ``images`` (``images/{imageId}.jpg``). Only balanced questions are kept, as GQA's
    eval.py scores them; ``answer_kind`` is open when the structural type is "query", else binary."""
    q_path = resolve_path(_require(cfg, "questions", ctx, "gqa"), ctx, "GQA questions file")
    image_dir = resolve_path(_require(cfg, "images", ctx, "gqa"), ctx, "GQA image folder")
    data = _read_json(q_path, ctx)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise DataError(f"task {ctx.task!r}: {q_path} is not a GQA questions file (expected {{question id: {{...}}}})")
    records = []
    for qid, q in data.items():
        if q.get("isBalanced") is False:
            continue
        structural = (q.get("types") or {}).get("structural")
        rec = {"id": str(qid), "question_id": str(qid), "question": _field(q, "question", q_path, qid, ctx),
               "image": image_dir / f"{_field(q, 'imageId', q_path, qid, ctx)}.jpg", "image_id": q["imageId"]}
        if q.get("answer") is not None:
            rec["answers"] = [str(q["answer"])]
        if structural is not None:
            rec.update(structural=structural, answer_kind="open" if structural == "query" else "binary")
        records.append(rec)
    return DataSet(records, _hash_files(q_path), f"GQA {q_path.name} ({len(records)} balanced questions)")


def load_docvqa(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """DocVQA / InfographicVQA: ``annotations`` (``val_v1.0.json`` / ``infographicsVQA_val_v1.0_withQT.json``:
    ``{"dataset_name", "data": [{questionId, question, image | image_local_name, answers}]}``; test files
    have no answers) + ``images``: DocVQA's ``image`` is relative to it ("documents/x.png"), InfographicVQA's
    ``image_local_name`` is a file in it."""
    a_path = resolve_path(_require(cfg, "annotations", ctx, "docvqa"), ctx, "DocVQA/InfographicVQA file")
    image_dir = resolve_path(_require(cfg, "images", ctx, "docvqa"), ctx, "document image folder")
    data = _read_json(a_path, ctx)
    rows = _entries(data, "data", a_path, "a DocVQA/InfographicVQA file", ctx)
    records = []
    for n, d in enumerate(rows):
        qid = _field(d, "questionId", a_path, n, ctx)
        image = d.get("image") or d.get("image_local_name")
        if not image:
            raise DataError(f"task {ctx.task!r}: {a_path} entry {n} has neither 'image' nor 'image_local_name'")
        rec = {"id": str(qid), "question_id": qid, "question": _field(d, "question", a_path, n, ctx),
               "image": image_dir / str(image)}
        if d.get("answers"):
            rec["answers"] = _answers(d["answers"], f"question {qid}", ctx)
        records.append(rec)
    name = data["dataset_name"] if isinstance(data.get("dataset_name"), str) else "DocVQA"
    return DataSet(records, _hash_files(a_path), f"{name} {a_path.name} ({len(records)} questions)")


def load_chartqa(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """ChartQA: ``root`` is the release's split folder (``ChartQA Dataset/test``) holding
    ``test_human.json`` and ``test_augmented.json`` (lists of ``{imgname, query, label}``) and ``png/``;
    ``splits`` (default both) names which; each item's ``split`` is human or augmented."""
    root = resolve_path(_require(cfg, "root", ctx, "chartqa"), ctx, "ChartQA split folder")
    stage = str(cfg.get("stage", root.name if root.name in ("train", "val", "test") else "test"))
    records, files = [], []
    for split in cfg.get("splits", ("human", "augmented")):
        path = resolve_path(root / f"{stage}_{split}.json", ctx, f"ChartQA {split} file")
        files.append(path)
        for n, d in enumerate(_entries(_read_json(path, ctx), None, path, "a ChartQA file", ctx)):
            label = _field(d, "label", path, n, ctx)
            records.append({"id": f"{split}/{n}", "question_id": f"{split}/{n}", "split": split,
                            "question": _field(d, "query", path, n, ctx),
                            "image": root / "png" / str(_field(d, "imgname", path, n, ctx)),
                            "imgname": d["imgname"], "answers": [str(label)]})
    return DataSet(records, _hash_files(*files), f"ChartQA {root.name} ({len(records)} questions: "
                   f"{', '.join(str(s) for s in cfg.get('splits', ('human', 'augmented')))})")


def load_gqa_hf(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """GQA as lmms-lab/GQA keeps it: the ``questions`` config (default ``testdev_balanced_instructions``:
    ``id, imageId, question, answer``) and the ``images`` config (``testdev_balanced_images``: ``id, image``)
    of ``path``, both of split ``split`` (default ``testdev``), joined on the image id."""
    import datasets

    from mmbench.data.sources import HFRef, check_columns, open_hf_dataset

    base = {k: v for k, v in cfg.items() if k not in ("questions", "images")}
    base.setdefault("split", "testdev")
    qs, source, split = open_hf_dataset({**base, "name": cfg.get("questions", "testdev_balanced_instructions")},
                                        ctx, "gqa-hf")
    ims, _, _ = open_hf_dataset({**base, "name": cfg.get("images", "testdev_balanced_images")}, ctx, "gqa-hf")
    check_columns(qs, {"question id": "id", "image id": "imageId", "question": "question", "answer": "answer"},
                  ctx, source)
    check_columns(ims, {"image id": "id", "image": "image"}, ctx, source)
    ims = ims.cast_column("image", datasets.Image(decode=False))
    row_of = {str(i): n for n, i in enumerate(ims["id"])}
    balanced = qs["isBalanced"] if "isBalanced" in qs.column_names else [True] * len(qs)
    records = []
    for qid, image_id, question, answer, ok in zip(qs["id"], qs["imageId"], qs["question"], qs["answer"], balanced):
        if ok is False:
            continue
        if str(image_id) not in row_of:
            raise DataError(f"task {ctx.task!r}: GQA question {qid} refers to image {image_id!r}, which the images "
                            f"config of {source} does not hold")
        records.append({"id": str(qid), "question_id": str(qid), "question": question, "image_id": image_id,
                        "image": HFRef(ims, "image", row_of[str(image_id)]), "answers": [str(answer)]})
    fp = fingerprint(["gqa-hf", getattr(qs, "_fingerprint", source), getattr(ims, "_fingerprint", source), split])
    return DataSet(records, fp, f"GQA {source} split={split} ({len(records)} balanced questions)")
