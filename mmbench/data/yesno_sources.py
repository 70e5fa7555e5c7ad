"""The yes/no hallucination benchmarks in their official release layouts and their lmms-lab copies: POPE
(the ``coco_pope_{random,popular,adversarial}.json`` files + COCO val2014) and MME (the
``MME_Benchmark_release_version`` folder). Both are asked as VQA items (the ``vqa`` kind).

POPE records: ``id`` (``<category>/<question_id>``: question ids restart in every file), ``question``,
``label`` and ``answers`` ([label]), ``category`` (random / popular / adversarial), ``image``.
MME records: ``id`` (``<subtask>/<image>#<k>``), ``question`` (as in the file), ``question_base`` (without
its trailing "Please answer yes or no.", as LLaVA-1.5's prompt drops it), ``answers`` ([Yes|No]),
``category`` (the subtask), ``image_id`` (shared by the two questions of an image), ``image``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Mapping

from mmbench.data.mc_sources import _hf_fingerprint, _hf_images
from mmbench.data.sources import (IMAGE_EXTENSIONS, DataContext, DataSet, HFRef, _require, check_columns,
                                  open_hf_dataset, resolve_path)
from mmbench.data.vqa_sources import _hash_files
from mmbench.errors import DataError, MMBenchError
from mmbench.specs import fingerprint

POPE_CATEGORIES = ("random", "popular", "adversarial")
_POPE_FILE = re.compile(r"_pope_([a-z]+)\.json$")
_YES_NO_SUFFIX = re.compile(r"\s*Please answer yes or no\.?\s*$")


def question_base(question: str) -> str:
    """An MME question without its trailing "Please answer yes or no." and the whitespace before it."""
    return _YES_NO_SUFFIX.sub("", question.strip())


def _pope_files(cfg: Mapping[str, Any], ctx: DataContext) -> list[tuple[Path, str | None]]:
    """``files``: a list (each file's category from its lines' ``category`` or its name, coco_pope_<category>.json)
    or a mapping {category: file}; ``file`` + ``category``: one file."""
    files = cfg.get("files")
    if files is None:
        files = {cfg["category"]: _require(cfg, "file", ctx, "pope")} if cfg.get("category") else \
            [_require(cfg, "file", ctx, "pope")]
    pairs = list(files.items()) if isinstance(files, Mapping) else [(None, f) for f in files]
    out = []
    for category, f in pairs:
        path = resolve_path(f, ctx, "POPE question file")
        if category is None:
            m = _POPE_FILE.search(path.name)
            category = m.group(1) if m else None
        out.append((path, category))
    return out


def load_pope(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """POPE (RUCAIBox/POPE ``output/coco/``): JSON-lines files of ``{question_id, image, text, label}`` (named
    ``.json``) and ``images`` (COCO val2014). Ids are ``<category>/<question_id>``."""
    from mmbench.files import iter_jsonl

    files = _pope_files(cfg, ctx)
    image_dir = resolve_path(_require(cfg, "images", ctx, "pope"), ctx, "COCO val2014 image folder")
    records, seen = [], set()
    for path, file_category in files:
        try:
            rows = list(iter_jsonl(path, "POPE question file"))
        except MMBenchError as exc:
            raise DataError(f"task {ctx.task!r}: {exc}") from None
        for lineno, row in rows:
            missing = [k for k in ("question_id", "image", "text", "label") if k not in row]
            if missing:
                raise DataError(f"task {ctx.task!r}: {path} line {lineno} has no {missing[0]!r} field")
            category = row.get("category") or file_category
            if category is None:
                raise DataError(f"task {ctx.task!r}: {path}: no category (name the file coco_pope_<category>.json "
                                f"or list the files as {{category: file}})")
            rid = f"{category}/{row['question_id']}"
            if rid in seen:
                raise DataError(f"task {ctx.task!r}: {path} line {lineno}: question {row['question_id']} of "
                                f"{category!r} appears twice")
            seen.add(rid)
            label = str(row["label"]).strip().lower()
            records.append({"id": rid, "question_id": row["question_id"], "question": str(row["text"]).strip(),
                            "label": label, "answers": [label], "category": category,
                            "image": image_dir / str(row["image"]), "image_id": str(row["image"])})
    fp = fingerprint(["pope", _hash_files(*(p for p, _ in files)), [c for _, c in files]])
    cats = ", ".join(dict.fromkeys(str(r["category"]) for r in records))
    return DataSet(records, fp, f"POPE {', '.join(p.name for p, _ in files)} ({len(records)} questions: {cats})")


def load_pope_hf(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """lmms-lab/POPE: config default split test (all 9,000 questions, ``category`` per row) or config Full
    splits adversarial / popular / random; ``categories`` keeps only those. Columns question, answer,
    category, question_id, image."""
    ds, source, split = open_hf_dataset(cfg, ctx, "pope-hf")
    check_columns(ds, {c: c for c in ("question", "answer", "image")}, ctx, source)
    ds = _hf_images(ds, ["image"])
    keep = set(cfg.get("categories") or ())
    categories = ds["category"] if "category" in ds.column_names else [split] * len(ds)
    qids = ds["question_id"] if "question_id" in ds.column_names else list(range(len(ds)))
    records, seen = [], set()
    for n, (qid, question, answer, category) in enumerate(zip(qids, ds["question"], ds["answer"], categories)):
        if keep and category not in keep:
            continue
        rid = f"{category}/{qid}"
        if rid in seen:
            rid = f"{category}/{qid}#{n}"
        seen.add(rid)
        label = str(answer).strip().lower()
        records.append({"id": rid, "question_id": qid, "question": str(question).strip(), "label": label,
                        "answers": [label], "category": category, "image": HFRef(ds, "image", n)})
    return DataSet(records, _hf_fingerprint("pope-hf", ds, source, split, cfg),
                   f"POPE {source} split={split} ({len(records)} questions)")


# -- MME ---------------------------------------------------------------------------------------------------

def _mme_pairs(folder: Path, ctx: DataContext) -> list[tuple[Path, Path]]:
    """(question file, image) pairs of a subtask folder: flat (image and .txt side by side) or images/ +
    questions_answers_YN/."""
    qa_dir, img_dir = folder, folder
    if (folder / "questions_answers_YN").is_dir():
        qa_dir, img_dir = folder / "questions_answers_YN", folder / "images"
    images = {p.stem: p for p in sorted(img_dir.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS} \
        if img_dir.is_dir() else {}
    pairs = []
    for txt in sorted(qa_dir.glob("*.txt")):
        if txt.stem not in images:
            raise DataError(f"task {ctx.task!r}: MME {txt} has no image {txt.stem}.* in {img_dir}")
        pairs.append((txt, images[txt.stem]))
    if not pairs:
        raise DataError(f"task {ctx.task!r}: MME subtask folder {folder} has no question files (<image>.txt)")
    return pairs


def load_mme(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """MME: ``root`` is ``MME_Benchmark_release_version`` with one folder per subtask (``subtasks``: default
    all 14); each image's ``<name>.txt`` holds its two questions, ``question<TAB>Yes|No`` per line."""
    from mmbench.files import read_text
    from mmbench.metrics.yesno import MME_SUBTASKS

    root = resolve_path(_require(cfg, "root", ctx, "mme"), ctx, "MME_Benchmark_release_version folder")
    subtasks = list(cfg.get("subtasks") or MME_SUBTASKS)
    unknown = [s for s in subtasks if s not in MME_SUBTASKS]
    if unknown:
        raise DataError(f"task {ctx.task!r}: MME has no subtask {unknown[0]!r} (subtasks: {', '.join(MME_SUBTASKS)})")
    absent = [s for s in subtasks if not (root / s).is_dir()]
    if absent:
        raise DataError(f"task {ctx.task!r}: {root} lacks the MME subtask folder(s) {', '.join(absent)}; unzip the "
                        f"whole MME_Benchmark_release_version")
    records, digest = [], hashlib.sha256()
    for sub in subtasks:
        for txt, image in _mme_pairs(root / sub, ctx):
            try:
                text = read_text(txt, "MME question file")
            except MMBenchError as exc:
                raise DataError(f"task {ctx.task!r}: {exc}") from None
            digest.update(f"{txt.relative_to(root)}\n{image.name}\n{text}\n".encode())
            image_id = str(image.relative_to(root))
            for k, line in enumerate(ln for ln in text.splitlines() if ln.strip()):
                question, sep, gt = line.rstrip("\r").rpartition("\t")
                if not sep or gt.strip() not in ("Yes", "No"):
                    raise DataError(f"task {ctx.task!r}: {txt} line {k + 1} is not 'question<TAB>Yes|No'")
                records.append({"id": f"{image_id}#{k}", "question_id": image_id, "question": question,
                                "question_base": question_base(question), "answers": [gt.strip()],
                                "category": sub, "image_id": image_id, "image": image})
    fp = fingerprint(["mme", digest.hexdigest(), subtasks])
    return DataSet(records, fp, f"MME {root.name} ({len(records)} questions, {len(subtasks)} subtasks)")


def load_mme_hf(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """lmms-lab/MME (split test): ``question_id`` (the image's path, shared by its two questions),
    ``question``, ``answer``, ``category`` (the subtask), ``image``."""
    ds, source, split = open_hf_dataset(cfg, ctx, "mme-hf")
    check_columns(ds, {c: c for c in ("question_id", "question", "answer", "category", "image")}, ctx, source)
    ds = _hf_images(ds, ["image"])
    records, seen = [], {}
    for n, (qid, question, answer, category) in enumerate(zip(ds["question_id"], ds["question"], ds["answer"],
                                                             ds["category"])):
        k = seen[qid] = seen.get(qid, -1) + 1
        records.append({"id": f"{qid}#{k}", "question_id": qid, "question": question,
                        "question_base": question_base(question), "answers": [str(answer).strip()],
                        "category": category, "image_id": str(qid), "image": HFRef(ds, "image", n)})
    return DataSet(records, _hf_fingerprint("mme-hf", ds, source, split, cfg),
                   f"MME {source} split={split} ({len(records)} questions)")
