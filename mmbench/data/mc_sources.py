"""Multiple-choice benchmarks in their official release layouts (and the Hugging Face copies whose rows need
reshaping): MMBench (VLMEvalKit / legacy TSV, lmms-lab/MMBench), MMMU (the per-subject configs of
MMMU/MMMU, or lmms-lab/MMMU's single config), ScienceQA (problems.json + pid_splits.json + images),
SEED-Bench (SEED-Bench.json + the image folder, or lmms-lab/SEED-Bench) and MMStar (VLMEvalKit's MMStar.tsv
or Lin-Chen/MMStar); AI2D is in mmbench.data.ai2d_sources.

Each record is what the ``multiple-choice`` kind reads: ``id``, ``question_id`` (as the benchmark writes
it), ``question``, ``options`` (a list; [] for an open question), ``answer`` (a letter or a 0-based index;
None on test splits), ``image`` or ``images`` (lazy: a path, an :class:`~mmbench.data.sources.HFRef`, or
base64 text decoded only in a preparation thread), optional ``hint``, ``passes`` / ``pass_indices``
(MMBench's circular rows) and the fields breakdowns use (``category``, ``l2_category``, ``subject``,
``discipline``, ``dimension``, ...). lmms-lab/ScienceQA needs no reshaping: it goes through ``hf``.
"""

from __future__ import annotations

import ast
import base64
import binascii
import math
import re
import string
from pathlib import Path
from typing import Any, Mapping

from mmbench.data.sources import (HFRef, DataContext, DataSet, _read_json, _require, check_columns,
                                  open_hf_dataset, resolve_path)
from mmbench.data.vqa_sources import _hash_files
from mmbench.errors import DataError, ItemError, MissingDataError
from mmbench.specs import fingerprint

LETTERS = string.ascii_uppercase
CIRCULAR_OFFSET = 1_000_000  # MMBench numbers pass p of question i as i + p * 1e6
REFERENCE_MAX = 64  # an MMBench TSV image cell this short names the row whose image it shares


class B64Image:
    """A base64-encoded image cell of a TSV, decoded to bytes only when the item is processed."""

    __slots__ = ("text", "where")

    def __init__(self, text: str, where: str) -> None:
        self.text, self.where = text, where

    def fetch(self) -> bytes:
        try:
            return base64.b64decode(self.text, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise ItemError(f"image of {self.where}: not valid base64 ({exc})") from exc

    def __repr__(self) -> str:
        return f"<base64 image of {self.where}>"


class HFSeqRef:
    """A lazy pointer to one image of a list-of-images cell (SEED-Bench's ``image`` column), read (and decoded)
    only when the item is processed."""

    __slots__ = ("dataset", "column", "index", "position")

    def __init__(self, dataset: Any, column: str, index: int, position: int = 0) -> None:
        self.dataset, self.column, self.index, self.position = dataset, column, index, position

    def fetch(self) -> Any:
        cell = self.dataset[self.index][self.column] or []
        if len(cell) <= self.position:
            raise ItemError(f"row {self.index} has {len(cell)} image(s) in column {self.column!r}; wanted image "
                            f"{self.position + 1}")
        return cell[self.position]

    def __repr__(self) -> str:
        return f"<hf {self.column}[{self.position}] #{self.index}>"


def is_missing(value: Any) -> bool:
    """An empty cell: None, NaN, or a blank / "nan" string (how pandas-written TSVs and their Hugging Face
    copies leave a question's unused options and absent hints)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in ("", "nan")


def _text(value: Any) -> str | None:
    return None if is_missing(value) else str(value)


def _lettered_options(row: Mapping, letters: list[str], where: str, ctx: DataContext) -> list[str]:
    """The options in columns A, B, C...: empty cells dropped; an empty cell before a filled one is an error
    (the letters would no longer match the answer)."""
    cells = [_text(row.get(c)) for c in letters]
    while cells and cells[-1] is None:
        cells.pop()
    if any(c is None for c in cells):
        gap = letters[cells.index(None)]
        raise DataError(f"task {ctx.task!r}: {where}: option {gap} is empty but a later option is not")
    return [str(c) for c in cells]


def _hf_images(ds: Any, columns: list[str]) -> Any:
    """The dataset with its image columns left undecoded (bytes/path dicts; decoded in a preparation thread)."""
    import datasets

    for col in columns:  # (a list-of-images column is left as it is: casting it would rewrite the dataset)
        if isinstance(ds.features[col], datasets.Image):
            ds = ds.cast_column(col, datasets.Image(decode=False))
    return ds


def _hf_fingerprint(name: str, ds: Any, source: str, split: str, cfg: Mapping) -> str:
    return fingerprint([name, getattr(ds, "_fingerprint", source), split,
                        sorted((k, str(v)) for k, v in cfg.items())])


# -- MMBench -----------------------------------------------------------------------------------------------

def _l2(row: Mapping) -> str | None:
    for key in ("l2-category", "L2-category", "l2_category"):
        if key in row:
            return _text(row[key])
    return None


def _mmbench_records(rows: list[dict], images: list[Any], where: str, ctx: DataContext) -> list[dict]:
    """MMBench rows -> questions: rows grouped by index % 1e6 (the question's base index), their passes in
    index order. A file without circular copies (every group one row) gives items without ``passes`` (the
    kind then rotates the options itself under ``circular: true``); in a file with copies, a one-row group is
    a question VLMEvalKit left unrotated and is asked once."""
    letters = [c for c in LETTERS if rows and c in rows[0]]
    groups: dict[int, list[tuple[int, dict, Any]]] = {}
    for n, (row, img) in enumerate(zip(rows, images)):
        try:
            index = int(float(row["index"]))
        except (TypeError, ValueError):
            raise DataError(f"task {ctx.task!r}: {where} row {n + 1}: index {row.get('index')!r} is not a number") \
                from None
        groups.setdefault(index % CIRCULAR_OFFSET, []).append((index, row, img))
    circular_file = any(len(g) > 1 for g in groups.values())
    records = []
    for base, members in groups.items():
        members.sort(key=lambda m: m[0])
        index, row, img = members[0]
        passes = []
        for idx, r, _ in members:
            passes.append({"options": _lettered_options(r, letters, f"{where} index {idx}", ctx),
                           "answer": _text(r.get("answer"))})
        if len({len(p["options"]) for p in passes}) != 1:
            raise DataError(f"task {ctx.task!r}: {where}: the rows of question {base} do not all have the same "
                            f"number of options")
        rec = {"id": str(base), "question_id": base, "question": str(row.get("question", "")),
               "options": passes[0]["options"], "answer": passes[0]["answer"], "image": img,
               "hint": _text(row.get("hint"))}
        if circular_file:
            rec.update(passes=passes, pass_indices=[m[0] for m in members])
        for field, value in (("category", _text(row.get("category"))), ("l2_category", _l2(row)),
                             ("split", _text(row.get("split"))), ("source", _text(row.get("source")))):
            if value is not None:
                rec[field] = value
        records.append(rec)
    return records


def _read_tsv(path: Path, ctx: DataContext, what: str) -> list[dict]:
    """A VLMEvalKit TSV read as VLMEvalKit reads it (pandas, so its empty / "nan" / "None" / "N/A" cells are
    missing values, as they are for VLMEvalKit and LLaVA), every cell as text (an option "3" stays "3")."""
    import pandas as pd

    try:
        df = pd.read_csv(path, sep="\t", dtype=str)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else exc.__class__.__name__
        raise DataError(f"task {ctx.task!r}: {path} is not a readable {what} ({first}); re-download it") from None
    for col in ("index", "question"):
        if col not in df.columns:
            raise DataError(f"task {ctx.task!r}: {path} has no {col!r} column, so it is not a {what} (columns: "
                            f"{', '.join(map(str, df.columns))})")
    return df.to_dict("records")


def _tsv_images(rows: list[dict], path: Path, ctx: DataContext) -> list[B64Image]:
    """Each row's image: its base64 cell, or, for a short cell naming another row's index (VLMEvalKit stores a
    circular copy's image once), that row's."""
    if not rows or "image" not in rows[0]:
        raise DataError(f"task {ctx.task!r}: {path} has no 'image' column (base64 images)")
    by_index = {}
    for row in rows:
        try:
            by_index[str(int(float(row["index"])))] = row
        except (TypeError, ValueError):
            pass
    out = []
    for row in rows:
        cell = row.get("image")
        where = f"{path.name} index {row.get('index')}"
        if is_missing(cell):
            raise DataError(f"task {ctx.task!r}: {where} has no image")
        cell = str(cell)
        if len(cell) <= REFERENCE_MAX:
            key = cell.strip().split(".")[0]
            target = by_index.get(key)
            if target is None or is_missing(target.get("image")) or len(str(target["image"])) <= REFERENCE_MAX:
                raise DataError(f"task {ctx.task!r}: {where}: its image cell {cell!r} refers to row {key}, which "
                                f"holds no image; re-download the file")
            cell = str(target["image"])
        out.append(B64Image(cell, where))
    return out


def load_mmbench_tsv(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """MMBench as VLMEvalKit distributes it (``MMBench_DEV_EN.tsv``, ``MMBench_TEST_CN.tsv``, ... or LLaVA's
    legacy ``mmbench_dev_20230712.tsv``): ``tsv`` names the file. Columns index, question, hint, A-D, answer
    (absent from test files), category, l2-category, split, image (base64, or another row's index)."""
    path = resolve_path(_require(cfg, "tsv", ctx, "mmbench-tsv"), ctx, "MMBench TSV file")
    rows = _read_tsv(path, ctx, "MMBench TSV")
    records = _mmbench_records(rows, _tsv_images(rows, path, ctx), path.name, ctx)
    n_passes = sum(len(r.get("passes") or [0]) for r in records)
    return DataSet(records, _hash_files(path), f"MMBench {path.name} ({len(records)} questions, {n_passes} rows)")


def load_mmbench_hf(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """lmms-lab/MMBench (configs en / cn / cc, splits dev / test): one row per circular pass, as in the TSV,
    grouped into questions the same way."""
    ds, source, split = open_hf_dataset(cfg, ctx, "mmbench-hf")
    check_columns(ds, {"index": "index", "question": "question", "image": "image"}, ctx, source)
    ds = _hf_images(ds, ["image"])
    names = [c for c in ds.column_names if c != "image"]
    columns = [ds[c] for c in names]
    rows = [dict(zip(names, values)) for values in zip(*columns)]
    images = [HFRef(ds, "image", n) for n in range(len(rows))]
    records = _mmbench_records(rows, images, source, ctx)
    return DataSet(records, _hf_fingerprint("mmbench-hf", ds, source, split, cfg),
                   f"MMBench {source} split={split} ({len(records)} questions, {len(rows)} rows)")


# -- MMMU --------------------------------------------------------------------------------------------------

_IMAGE_TAG = re.compile(r"<image (\d+)>")
MMMU_IMAGE_COLUMNS = tuple(f"image_{n}" for n in range(1, 8))


def mmmu_image_numbers(question: str, options: list[str]) -> list[int]:
    """The images a question uses, as lmms-eval sends them: every ``<image n>`` in the question and the
    options, once each, in ascending order (so ``<image 2> ... <image 1>`` sends image 1 first)."""
    return sorted({int(n) for text in (question, *options) for n in _IMAGE_TAG.findall(text)})


def _mmmu_options(raw: Any, qid: str, ctx: DataContext) -> list[str]:
    if isinstance(raw, list):
        return [str(o) for o in raw]
    try:
        value = ast.literal_eval(str(raw)) if not is_missing(raw) else []
    except (ValueError, SyntaxError):
        raise DataError(f"task {ctx.task!r}: MMMU question {qid}: options {str(raw)[:60]!r} is not a Python list "
                        f"literal") from None
    if not isinstance(value, list):
        raise DataError(f"task {ctx.task!r}: MMMU question {qid}: options {str(raw)[:60]!r} is not a list")
    return [str(o) for o in value]


def _mmmu_rows(ds: Any, source: str, ctx: DataContext) -> list[dict]:
    import pyarrow.compute as pc

    from mmbench.metrics.mmmu import DISCIPLINE_OF, subject_of

    check_columns(ds, {"id": "id", "question": "question", "options": "options", "answer": "answer"}, ctx, source)
    image_cols = [c for c in MMMU_IMAGE_COLUMNS if c in ds.column_names]
    ds = _hf_images(ds, image_cols)
    present = {c: pc.is_valid(ds.data.column(c)).to_pylist() for c in image_cols}  # no image bytes read
    extra = [c for c in ("question_type", "subfield", "topic_difficulty", "img_type") if c in ds.column_names]
    records = []
    for n, (qid, question, raw_options, answer, *more) in enumerate(
            zip(ds["id"], ds["question"], ds["options"], ds["answer"], *(ds[c] for c in extra))):
        fields = dict(zip(extra, more))
        options = _mmmu_options(raw_options, qid, ctx)
        if fields.get("question_type") == "open":
            options = []
        wanted = mmmu_image_numbers(question, options) or [1]
        numbers = [k for k in wanted if f"image_{k}" in present and present[f"image_{k}"][n]]
        subject = subject_of(qid)
        rec = {"id": str(qid), "question_id": str(qid), "question": question, "options": options,
               "answer": None if is_missing(answer) or str(answer).strip() == "?" else answer,
               "images": [HFRef(ds, f"image_{k}", n) for k in numbers], "image_numbers": numbers,
               "subject": subject}
        if subject in DISCIPLINE_OF:
            rec["discipline"] = DISCIPLINE_OF[subject]
        rec.update({k: v for k, v in fields.items() if v is not None})
        records.append(rec)
    return records


def _declared_configs(cfg: Mapping[str, Any], ctx: DataContext) -> list[str] | None:
    """The configs the dataset's README declares, when its files are here (a folder, or the hub cache)."""
    import datasets

    from mmbench.data.sources import hub_snapshot

    source = str(cfg["path"])
    if cfg.get("local") and ctx.data_dir and (ctx.data_dir / cfg["local"]).exists():
        folder: Path | None = ctx.data_dir / cfg["local"]
    elif Path(source).expanduser().is_absolute() or (ctx.data_dir and (ctx.data_dir / source).exists()):
        folder = resolve_path(source, ctx, "dataset folder")
    else:
        folder = hub_snapshot(source, cfg.get("revision")) if "/" in source else None
    if folder is None:
        return None
    try:
        return list(datasets.get_dataset_config_names(str(folder)))
    except (OSError, ValueError):
        return None


def load_mmmu(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """MMMU as released on the hub: ``path`` MMMU/MMMU holds one config per subject (every subject config it
    has is read: all 30 in the release; or those listed in ``subjects``, or the one ``name`` names), split
    ``validation`` / ``dev`` / ``test``; ``per_subject: false`` reads a single config holding every subject
    (lmms-lab/MMMU). ``options`` is a Python list literal; an open question has none; the images are those
    its ``<image n>`` tags name."""
    from mmbench.metrics.mmmu import SUBJECTS

    _require(cfg, "path", ctx, "mmmu")
    if cfg.get("name"):
        configs: list[Any] = [cfg["name"]]
    elif cfg.get("per_subject", True):
        configs = list(cfg.get("subjects") or SUBJECTS)
        unknown = [s for s in configs if s not in SUBJECTS]
        if unknown:
            raise DataError(f"task {ctx.task!r}: MMMU has no subject {unknown[0]!r} (subjects: {', '.join(SUBJECTS)})")
        declared = None if cfg.get("subjects") else _declared_configs(cfg, ctx)
        if declared is not None:
            configs = [s for s in configs if s in declared]
            if not configs:
                raise DataError(f"task {ctx.task!r}: {cfg['path']} has no MMMU subject configs (it declares "
                                f"{', '.join(declared) or 'none'}); for a single-config copy set per_subject: false")
    else:
        configs = [None]
    base = {k: v for k, v in cfg.items() if k not in ("subjects", "per_subject", "name")}
    base.setdefault("split", "validation")
    records, fps, source = [], [], ""
    for config in configs:
        try:
            ds, source, split = open_hf_dataset({**base, "name": config}, ctx, "mmmu")
        except DataError as exc:
            if len(configs) == 1 or isinstance(exc, MissingDataError):
                raise
            # the repository declares the subject but its files are not here (some subjects downloaded)
            raise MissingDataError(f"{str(exc).rstrip('.')} (subject config {config!r} of {cfg['path']}: have "
                                   f"every subject's files in the cache)") from exc
        records += _mmmu_rows(ds, source, ctx)
        fps.append(getattr(ds, "_fingerprint", source))
    split = str(base["split"])
    fp = fingerprint(["mmmu", split, fps, sorted((k, str(v)) for k, v in cfg.items())])
    what = f"{len(configs)} of {len(SUBJECTS)} subject configs" if configs != [None] and cfg.get("per_subject", True) \
        and not cfg.get("name") else "1 config"
    return DataSet(records, fp, f"MMMU {source} split={split} ({what}, {len(records)} questions)")


# -- ScienceQA ---------------------------------------------------------------------------------------------

SCIENCEQA_FIELDS = ("subject", "grade", "topic", "category", "skill", "task")


def load_scienceqa(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """ScienceQA (lupantech/ScienceQA): ``problems`` (``problems.json``: {pid: {question, choices, answer,
    hint, image, subject, grade, ...}}), ``pid_splits`` (``pid_splits.json``), ``images`` (the folder
    holding ``<split>/<pid>/image.png``), ``split`` (default test). ``with_image`` (default true) keeps the
    problems that have an image, the IMG set LLaVA-1.5 and lmms-eval report."""
    problems_path = resolve_path(_require(cfg, "problems", ctx, "scienceqa"), ctx, "ScienceQA problems.json")
    splits_path = resolve_path(_require(cfg, "pid_splits", ctx, "scienceqa"), ctx, "ScienceQA pid_splits.json")
    image_root = resolve_path(_require(cfg, "images", ctx, "scienceqa"), ctx, "ScienceQA image folder")
    split = str(cfg.get("split", "test"))
    with_image = bool(cfg.get("with_image", True))
    problems, splits = _read_json(problems_path, ctx), _read_json(splits_path, ctx)
    if not isinstance(problems, dict) or not isinstance(splits, dict):
        raise DataError(f"task {ctx.task!r}: {problems_path.name} / {splits_path.name} are not ScienceQA files "
                        f"(expected JSON objects keyed by problem id / split name)")
    if not isinstance(splits.get(split), list):
        raise DataError(f"task {ctx.task!r}: {splits_path} has no split {split!r} (splits: {', '.join(splits)})")
    records = []
    for pid in splits[split]:
        p = problems.get(str(pid))
        if not isinstance(p, dict):
            raise DataError(f"task {ctx.task!r}: problem {pid} of split {split!r} is not in {problems_path}")
        if with_image and not p.get("image"):
            continue
        for key in ("question", "choices", "answer"):
            if key not in p:
                raise DataError(f"task {ctx.task!r}: {problems_path} problem {pid} has no {key!r} field")
        rec = {"id": str(pid), "question_id": str(pid), "question": p["question"],
               "options": [str(c) for c in p["choices"]], "answer": p["answer"], "hint": p.get("hint") or None,
               "image": image_root / split / str(pid) / str(p["image"]) if p.get("image") else None}
        rec.update({k: p[k] for k in SCIENCEQA_FIELDS if p.get(k) is not None})
        records.append(rec)
    fp = fingerprint(["scienceqa", _hash_files(problems_path, splits_path), split, with_image])
    kind = "with an image" if with_image else "all"
    return DataSet(records, fp, f"ScienceQA {split} ({len(records)} problems, {kind})")


# -- SEED-Bench --------------------------------------------------------------------------------------------

SEED_DIMENSIONS = {1: "Scene Understanding", 2: "Instance Identity", 3: "Instance Attributes",
                   4: "Instance Location", 5: "Instances Counting", 6: "Spatial Relation",
                   7: "Instance Interaction", 8: "Visual Reasoning", 9: "Text Understanding",
                   10: "Action Recognition", 11: "Action Prediction", 12: "Procedure Understanding"}
SEED_IMAGE_DIMENSIONS = tuple(range(1, 10))


def _seed_dimensions(cfg: Mapping[str, Any], ctx: DataContext) -> tuple[int, ...]:
    dims = tuple(int(d) for d in cfg.get("dimensions") or SEED_IMAGE_DIMENSIONS)
    video = [d for d in dims if d not in SEED_IMAGE_DIMENSIONS]
    if video:
        raise DataError(f"task {ctx.task!r}: SEED-Bench dimension {video[0]} is a video dimension; only the image "
                        f"dimensions 1-9 can be loaded")
    return dims


def _seed_record(q: Mapping, names: Mapping[int, str], image: Any) -> dict:
    qtype = int(q["question_type_id"])
    return {"id": str(q["question_id"]), "question_id": q["question_id"], "question": q["question"],
            "options": [str(q[f"choice_{c}"]) for c in "abcd" if not is_missing(q.get(f"choice_{c}"))],
            "answer": q.get("answer"), "image": image, "question_type_id": qtype,
            "dimension": names.get(qtype, SEED_DIMENSIONS.get(qtype, str(qtype)))}


def load_seed_bench(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """SEED-Bench (v1): ``annotations`` (``SEED-Bench.json``: {questions: [...], question_type: {name: id}})
    and ``images`` (the unzipped ``SEED-Bench-image/``, files named by ``data_id``). Only image questions of
    ``dimensions`` (default 1-9, the image dimensions) are loaded; ``dimension`` is the dimension's name."""
    a_path = resolve_path(_require(cfg, "annotations", ctx, "seed-bench"), ctx, "SEED-Bench.json")
    image_dir = resolve_path(_require(cfg, "images", ctx, "seed-bench"), ctx, "SEED-Bench image folder")
    dims = _seed_dimensions(cfg, ctx)
    data = _read_json(a_path, ctx)
    questions = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(questions, list) or not all(isinstance(q, dict) for q in questions):
        raise DataError(f"task {ctx.task!r}: {a_path} is not SEED-Bench.json (expected a 'questions' list)")
    names = {int(v): str(k) for k, v in (data.get("question_type") or {}).items()}
    files = {p.name: p.name for p in image_dir.iterdir()}
    files.update({Path(name).stem: name for name in list(files) if Path(name).stem not in files})
    records = []
    for n, q in enumerate(questions):
        missing = [k for k in ("question_id", "question", "question_type_id", "data_id") if k not in q]
        if missing:
            raise DataError(f"task {ctx.task!r}: {a_path} question {n} has no {missing[0]!r} field")
        if q.get("data_type", "image") != "image" or int(q["question_type_id"]) not in dims:
            continue
        data_id = str(q["data_id"])
        records.append(_seed_record(q, names, image_dir / files.get(data_id, data_id)))
    fp = fingerprint(["seed-bench", _hash_files(a_path), dims])
    return DataSet(records, fp, f"SEED-Bench {a_path.name} ({len(records)} image questions, dimensions "
                   f"{','.join(map(str, dims))})")


def load_seed_bench_hf(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """lmms-lab/SEED-Bench (split test): choice_a-d, answer, question_id, question_type_id, data_type and
    ``image`` (a list of images: one for an image question); only image questions of ``dimensions``."""
    ds, source, split = open_hf_dataset(cfg, ctx, "seed-bench-hf")
    cols = ["question_id", "question", "question_type_id", "answer", "choice_a", "choice_b", "choice_c",
            "choice_d"]
    check_columns(ds, {c: c for c in cols + ["image"]}, ctx, source)
    dims = _seed_dimensions(cfg, ctx)
    ds = _hf_images(ds, ["image"])
    kinds = ds["data_type"] if "data_type" in ds.column_names else ["image"] * len(ds)
    records = []
    for n, (kind, *values) in enumerate(zip(kinds, *(ds[c] for c in cols))):
        q = dict(zip(cols, values))
        if kind != "image" or int(q["question_type_id"]) not in dims:
            continue
        records.append(_seed_record(q, {}, HFSeqRef(ds, "image", n, 0)))
    return DataSet(records, _hf_fingerprint("seed-bench-hf", ds, source, split, cfg),
                   f"SEED-Bench {source} split={split} ({len(records)} image questions)")


# -- MMStar ------------------------------------------------------------------------------------------------

def inline_options(question: str) -> list[str]:
    """MMStar's options, written into the question as ``Options: A: <a>, B: <b>, C: <c>, D: <d>``."""
    k = question.rfind("Options:")
    if k < 0:
        return []
    body, spans, pos = question[k + len("Options:"):], [], 0
    for letter in LETTERS:
        m = re.compile(rf"(?:^|[\s,]){letter}:\s?").search(body, pos)
        if m is None:
            break
        spans.append((m.start(), m.end()))
        pos = m.end()
    ends = [s for s, _ in spans[1:]] + [len(body)]
    return [body[e:end].strip().rstrip(",").strip() for (_, e), end in zip(spans, ends)]


def _mmstar_record(row: Mapping, image: Any, where: str, ctx: DataContext) -> dict:
    question = str(row["question"])
    options = inline_options(question)
    if len(options) < 2:
        options = _lettered_options(row, [c for c in "ABCD" if c in row], where, ctx)
    answer = _text(row.get("answer"))
    if answer is not None and answer.strip().upper() not in LETTERS[:len(options)]:
        raise DataError(f"task {ctx.task!r}: {where}: answer {answer!r} is not one of the {len(options)} options "
                        f"read from its question")
    index = row["index"]
    if isinstance(index, str) and index.strip().lstrip("-").isdigit():
        index = int(index)
    rec = {"id": str(index), "question_id": index, "question": question, "options": options,
           "answer": answer, "image": image}
    meta = row.get("meta_info") if isinstance(row.get("meta_info"), Mapping) else {}
    for field, value in (("category", row.get("category")), ("l2_category", _l2(row)),
                         ("source", row.get("bench", meta.get("source")))):
        if not is_missing(value):
            rec[field] = str(value)
    return rec


def load_mmstar(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """MMStar: ``tsv`` (VLMEvalKit's ``MMStar.tsv``: index, question, answer, category, l2-category, image as
    base64) or ``path`` (Lin-Chen/MMStar, split val: the same with ``image`` and ``meta_info``). The options
    are read from the question's inline "Options: A: ..., B: ..." text; the question is kept as given, since
    MMStar's prompt sends it with the options inline."""
    if cfg.get("tsv"):
        path = resolve_path(cfg["tsv"], ctx, "MMStar TSV file")
        rows = _read_tsv(path, ctx, "MMStar TSV")
        images = _tsv_images(rows, path, ctx)
        records = [_mmstar_record(r, img, f"{path.name} index {r['index']}", ctx) for r, img in zip(rows, images)]
        return DataSet(records, _hash_files(path), f"MMStar {path.name} ({len(records)} questions)")
    base = {"split": "val", **cfg}
    ds, source, split = open_hf_dataset(base, ctx, "mmstar")
    check_columns(ds, {c: c for c in ("index", "question", "answer", "image")}, ctx, source)
    ds = _hf_images(ds, ["image"])
    names = [c for c in ds.column_names if c != "image"]
    records = [_mmstar_record(dict(zip(names, values)), HFRef(ds, "image", n), f"{source} row {n}", ctx)
               for n, values in enumerate(zip(*(ds[c] for c in names)))]
    return DataSet(records, _hf_fingerprint("mmstar", ds, source, split, cfg),
                   f"MMStar {source} split={split} ({len(records)} questions)")
