"""Data formats: each loader turns a task's ``data:`` section into a DataSet of plain records.

Records are dicts with a stable ``id`` plus whatever the task kind reads (``image``, ``label``,
``captions``, ``question``...). Images stay undecoded (a path, bytes or a lazy reference) until the runner's
preparation thread decodes them, so a corrupt file fails its own item only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmbench.errors import DataError, MissingDataError, MMBenchError
from mmbench.specs import fingerprint

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


@dataclass
class DataContext:
    """What a loader needs besides the task's ``data:`` section."""

    task: str
    data_dir: Path | None = None
    help: str = ""  # how to obtain the data, from the task file: shown when it is missing


@dataclass
class DataSet:
    records: Sequence[dict]  # a list, or LazyRecords (mmbench.data.lazy) built on access
    fingerprint: str
    description: str
    class_names: list[str] | None = None
    meta: dict = field(default_factory=dict)  # format-specific extras (VQAv2 test-dev: the submission's ids)


class HFRef:
    """A lazy pointer to one image or audio cell of a Hugging Face dataset (decoded only when the item is
    processed, in a preparation thread)."""

    __slots__ = ("dataset", "column", "index")

    def __init__(self, dataset: Any, column: str, index: int) -> None:
        self.dataset, self.column, self.index = dataset, column, index

    def fetch(self) -> Any:
        return self.dataset[self.index][self.column]

    def __repr__(self) -> str:
        return f"<hf {self.column} #{self.index}>"


def resolve_path(value: str | Path, ctx: DataContext, what: str) -> Path:
    """A path from a task file: absolute, or relative to --data-dir (else the working directory)."""
    p = Path(str(value)).expanduser()
    if not p.is_absolute():
        p = (ctx.data_dir or Path.cwd()) / p
    if not p.exists():
        where = f"--data-dir {ctx.data_dir}" if ctx.data_dir else "no --data-dir given"
        hint = f" {ctx.help.strip()}" if ctx.help else ""
        raise MissingDataError(f"task {ctx.task!r}: {what} not found at {p} ({where}).{hint} "
                               f"Pass --data-dir DIR where DIR/{value} exists.")
    return p


def _require(cfg: Mapping[str, Any], key: str, ctx: DataContext, fmt: str) -> Any:
    if key not in cfg or cfg[key] in (None, ""):
        raise DataError(f"task {ctx.task!r}: data format {fmt!r} needs `{key}:` in the task's data section")
    return cfg[key]


def _file_ref(path: Path, root: Path) -> list:
    """What identifies an image file in a fingerprint: its relative path and size (content is not read)."""
    try:
        return [str(path.relative_to(root)), path.stat().st_size]
    except (OSError, ValueError):
        return [str(path), -1]


def _read_json(path: Path, ctx: DataContext) -> Any:
    from mmbench.files import read_json

    try:
        return read_json(path, "data file")
    except MMBenchError as exc:
        raise DataError(f"task {ctx.task!r}: {exc}; re-download or fix the file") from None


# -- formats -------------------------------------------------------------------------------------------
def load_imagefolder(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """``root/<class>/<image>``: classes are the sorted folder names (as torchvision's ImageFolder)."""
    root = resolve_path(_require(cfg, "root", ctx, "imagefolder"), ctx, "image folder")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise DataError(f"task {ctx.task!r}: {root} has no class sub-folders (expected root/<class>/<image>)")
    exts = tuple(e.lower() for e in cfg.get("extensions", IMAGE_EXTENSIONS))
    records = []
    for label, cls in enumerate(classes):
        for f in sorted((root / cls).rglob("*")):
            if f.is_file() and f.suffix.lower() in exts:
                records.append({"id": str(f.relative_to(root)), "image": f, "label": label})
    if not records:
        raise DataError(f"task {ctx.task!r}: no images with extensions {exts} under {root}")
    fp = fingerprint(["imagefolder", classes, [[r["id"], r["label"], _file_ref(r["image"], root)[1]]
                                                for r in records]])
    return DataSet(records, fp, f"imagefolder {root} ({len(records)} images, {len(classes)} classes)",
                   class_names=classes)


def load_jsonl(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """A manifest, one JSON object per line: ``{"image": path, "label": name|int}``, ``"captions": [...]``,
    ``{"image", "question", "answers"}`` or ``{"audio": path, "text"}``: every field reaches the task.

    Image, audio and video paths are relative to the manifest's folder. ``id`` is optional (default: the line
    number). The file is checked in one streaming pass and its records are read back line by line when used
    (mmbench.data.lazy): a manifest larger than memory is never held whole.
    """
    from mmbench.data.lazy import LazyRecords
    from mmbench.files import JsonlLines, sha256_file

    path = resolve_path(_require(cfg, "path", ctx, "jsonl"), ctx, "JSONL manifest")
    if path.is_dir():
        raise DataError(f"task {ctx.task!r}: JSONL manifest {path} is a folder; name the .jsonl file")
    lines = JsonlLines(path, "JSONL manifest")
    class_names = list(cfg.get("classes") or [])
    class_index = {name: i for i, name in enumerate(class_names)}
    seen: set[str] = set()
    refs: list = []

    def record(lineno: int, row: dict) -> dict:
        rec = dict(row)
        rec["id"] = str(row.get("id", lineno))
        for media in ("image", "audio", "video"):  # media paths are relative to the manifest's folder
            if isinstance(row.get(media), str):
                rec[media] = path.parent / row[media] if not Path(row[media]).is_absolute() else Path(row[media])
        if isinstance(row.get("label"), str):
            rec["label"] = class_index[row["label"]]
        return rec

    try:
        for lineno, row in lines.scan():
            if isinstance(row.get("id"), (dict, list, bool)) or ("id" in row and row["id"] is None):
                raise DataError(f"task {ctx.task!r}: {path} line {lineno}: id must be a string or a number")
            rid = str(row.get("id", lineno))
            if rid in seen:
                raise DataError(f"task {ctx.task!r}: {path} line {lineno}: duplicate id {rid!r}")
            seen.add(rid)
            for media in ("image", "audio", "video"):
                if media in row and (not isinstance(row[media], str) or not row[media]):
                    raise DataError(f"task {ctx.task!r}: {path} line {lineno}: {media} must be a file path (a "
                                    f"non-empty string), got {row[media]!r}")
            if isinstance(row.get("label"), str) and row["label"] not in class_index:
                class_index[row["label"]] = len(class_names)
                class_names.append(row["label"])
            rec = record(lineno, row)
            refs += [_file_ref(rec[m], path.parent)[1] for m in ("image", "audio", "video")
                     if isinstance(rec.get(m), Path)]
    except DataError:
        raise
    except MMBenchError as exc:
        raise DataError(f"task {ctx.task!r}: {exc}") from None
    if not len(lines):
        raise DataError(f"task {ctx.task!r}: manifest {path} has no records")
    fp = fingerprint(["jsonl", sha256_file(path), class_names, refs])

    def build(i: int) -> dict:
        try:
            return record(*lines.read(i))
        except MMBenchError as exc:
            raise DataError(f"task {ctx.task!r}: {exc}") from None

    return DataSet(LazyRecords(len(lines), build), fp, f"jsonl {path} ({len(lines)} records)",
                   class_names=class_names or None)


def load_coco_captions(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """COCO captions: ``captions_*.json`` (``images`` + ``annotations``) and the image folder."""
    ann_path = resolve_path(_require(cfg, "annotations", ctx, "coco-captions"), ctx, "COCO captions file")
    image_dir = resolve_path(_require(cfg, "images", ctx, "coco-captions"), ctx, "COCO image folder")
    data = _read_json(ann_path, ctx)
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise DataError(f"task {ctx.task!r}: {ann_path} is not a COCO captions file "
                        f"(expected keys 'images' and 'annotations')")
    caps: dict[Any, list[str]] = {}
    for ann in data["annotations"]:
        caps.setdefault(ann["image_id"], []).append(ann["caption"])
    records = []
    for img in sorted(data["images"], key=lambda i: i["id"]):
        if img["id"] in caps:
            rec = {"id": str(img["id"]), "image_id": img["id"], "image": image_dir / img["file_name"],
                   "captions": caps[img["id"]]}
            if img.get("domain"):  # NoCaps: in-domain / near-domain / out-domain
                rec["domain"] = img["domain"]
            records.append(rec)
    fp = fingerprint(["coco-captions", hashlib.sha256(ann_path.read_bytes()).hexdigest()])
    return DataSet(records, fp, f"COCO captions {ann_path.name} ({len(records)} images)")


def load_karpathy(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """Karpathy splits (``dataset_coco.json``, ``dataset_flickr30k.json``): one split's images + sentences."""
    ann_path = resolve_path(_require(cfg, "annotations", ctx, "karpathy"), ctx, "Karpathy split file")
    image_dir = resolve_path(_require(cfg, "images", ctx, "karpathy"), ctx, "image folder")
    split = cfg.get("split", "test")
    data = _read_json(ann_path, ctx)
    if not isinstance(data, dict) or "images" not in data:
        raise DataError(f"task {ctx.task!r}: {ann_path} is not a Karpathy split file (no 'images' key)")
    records = []
    for img in data["images"]:
        if img.get("split") != split:
            continue
        rel = Path(img.get("filepath", "")) / img["filename"]
        image_id = img.get("cocoid", img.get("imgid", img["filename"]))
        records.append({"id": str(image_id), "image": image_dir / rel,
                        "captions": [s["raw"].strip() for s in img["sentences"]]})
    if not records:
        raise DataError(f"task {ctx.task!r}: no images with split {split!r} in {ann_path}")
    fp = fingerprint(["karpathy", split, hashlib.sha256(ann_path.read_bytes()).hexdigest()])
    return DataSet(records, fp, f"Karpathy {ann_path.name} split={split} ({len(records)} images)")


def hub_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The folder of a dataset repository in the local Hugging Face hub cache (what ``load_dataset`` and
    ``huggingface-cli download`` leave there), or None when it is not cached. Never touches the network."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        return None


def open_hf_dataset(cfg: Mapping[str, Any], ctx: DataContext, fmt: str = "hf") -> tuple[Any, str, str]:
    """The split named by ``path``: a hub name, a local folder of data files, or a ``save_to_disk`` folder;
    ``local:`` names a folder under --data-dir that is tried first, so the same task file works offline with
    a local copy and online with the hub name. A hub name is read from the local hub cache when it is there
    (offline, whatever the environment says); otherwise ``download: false`` makes it missing data (the
    benchmark tasks never download), and the default lets ``datasets`` fetch it. Returns (dataset, source,
    split)."""
    import datasets  # heavy: imported only when a task uses it

    source: str | Path = _require(cfg, "path", ctx, fmt)
    named = ""
    split = str(cfg.get("split", "test"))
    hint = f" {ctx.help.strip()}" if ctx.help else ""
    if cfg.get("local") and ctx.data_dir and (ctx.data_dir / cfg["local"]).exists():
        source = ctx.data_dir / cfg["local"]
    elif Path(str(source)).expanduser().is_absolute() or (ctx.data_dir and (ctx.data_dir / str(source)).exists()):
        source = resolve_path(source, ctx, "dataset folder")
    elif "/" in str(source) and not Path(str(source)).exists():
        cached = hub_snapshot(str(source), cfg.get("revision"))
        if cached is not None:
            named = f"{source}@{cached.name[:12]} (local hub cache)"
            source = cached
        elif cfg.get("download") is False:
            local = f", or a copy at --data-dir/{cfg['local']}" if cfg.get("local") else ""
            raise MissingDataError(f"task {ctx.task!r}: Hugging Face dataset {str(source)!r} is not in the local "
                                   f"hub cache (HF_HOME / HF_HUB_CACHE){local}; mmbench never downloads benchmark "
                                   f"data.{hint}")
    try:
        if isinstance(source, Path) and any((source / f).exists() for f in ("dataset_info.json", "dataset_dict.json")):
            ds = datasets.load_from_disk(str(source))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[split]
        else:
            ds = datasets.load_dataset(str(source), cfg.get("name"), split=split,
                                       revision=None if isinstance(source, Path) else cfg.get("revision"))
    except (FileNotFoundError, ConnectionError, ValueError, OSError, KeyError) as exc:
        local = f" or put a local copy at --data-dir/{cfg['local']}" if cfg.get("local") else ""
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        error = MissingDataError if isinstance(exc, (FileNotFoundError, ConnectionError)) else DataError
        raise error(f"task {ctx.task!r}: cannot load Hugging Face dataset {str(cfg['path'])!r} split {split!r} "
                    f"({exc.__class__.__name__}: {first}).{hint} Check the name/split{local}.") from exc
    return ds, named or str(source), split


def check_columns(ds: Any, wanted: Mapping[str, str | None], ctx: DataContext, source: str) -> None:
    """Every named column exists (``wanted``: what it is for -> column name)."""
    for what, col in wanted.items():
        if col is not None and col not in ds.column_names:
            raise DataError(f"task {ctx.task!r}: column {col!r} ({what}) not in dataset {source!r}; its columns "
                            f"are {ds.column_names}")


def row_ids(ds: Any, id_column: str | None, ctx: DataContext) -> list[str]:
    ids = [str(x) for x in ds[id_column]] if id_column else [str(i) for i in range(len(ds))]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"task {ctx.task!r}: id_column {id_column!r} has duplicate value {dup!r}; name a unique "
                        f"column or leave id_column out (ids are then row numbers)")
    return ids


def copy_columns(records: list[dict], ds: Any, mapping: Mapping[str, str], ctx: DataContext, source: str) -> None:
    """``columns: {record_field: dataset_column}``: more fields for the task kind (question, answers, ...)."""
    check_columns(ds, {f"for {field!r}": col for field, col in mapping.items()}, ctx, source)
    for field_name, column in mapping.items():
        for rec, value in zip(records, ds[column]):
            rec[field_name] = value


def load_hf(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """A Hugging Face image dataset (see open_hf_dataset): ``image_column`` (default ``image``), optional
    ``label_column``, ``captions_column``, ``answers_column`` (reference answers: a list, a list of
    ``{"answer"}`` dicts, or one string), ``id_column``, ``columns:`` (more record fields) and
    ``rename_values: {field: {value: new value}}`` (e.g. ChartQA's human_test -> human). Records are built from
    the memory-mapped Arrow table when used (mmbench.data.lazy), never held whole."""
    import datasets

    from mmbench.data.lazy import LazyRecords

    ds, source, split = open_hf_dataset(cfg, ctx, "hf")
    image_col = cfg.get("image_column", "image")
    check_columns(ds, {k: cfg.get(k, "image" if k == "image_column" else None)
                       for k in ("image_column", "label_column", "captions_column", "id_column")}, ctx, source)
    ds = ds.cast_column(image_col, datasets.Image(decode=False))
    ids = row_ids(ds, cfg.get("id_column"), ctx)
    class_names = None
    if cfg.get("label_column"):
        feature = ds.features[cfg["label_column"]]
        if hasattr(feature, "names"):
            class_names = list(feature.names)
    if cfg.get("answers_column"):
        check_columns(ds, {"answers_column": cfg["answers_column"]}, ctx, source)
    columns = dict(cfg.get("columns") or {})
    check_columns(ds, {f"for {field!r}": col for field, col in columns.items()}, ctx, source)
    renames = dict(cfg.get("rename_values") or {})
    wanted = [cfg.get(k) for k in ("label_column", "captions_column", "answers_column", "id_column")]
    # the small columns, read row by row from the memory-mapped Arrow table when a record is used
    small = list(dict.fromkeys(c for c in [*wanted, *columns.values()] if c))
    meta = ds.select_columns(small) if small else None  # an image-only dataset has no other column to read

    def build(n: int) -> dict:
        row = meta[n] if meta is not None else {}
        rec: dict = {"id": ids[n], "image": HFRef(ds, image_col, n)}
        if cfg.get("label_column"):
            rec["label"] = row[cfg["label_column"]]
        if cfg.get("captions_column"):
            caps = row[cfg["captions_column"]]
            rec["captions"] = [caps] if isinstance(caps, str) else list(caps)
        answers = row[cfg["answers_column"]] if cfg.get("answers_column") else None
        if answers is not None and answers != []:
            rec["answers"] = [answers] if isinstance(answers, str) else \
                [a["answer"] if isinstance(a, dict) else str(a) for a in answers]
        for field_name, column in columns.items():
            rec[field_name] = row[column]
        for field_name, mapping in renames.items():
            if isinstance(rec.get(field_name), str):
                rec[field_name] = mapping.get(rec[field_name], rec[field_name])
        if cfg.get("id_column"):  # the dataset's own id, as written into submission files
            rec.setdefault("question_id", row[cfg["id_column"]])
        return rec

    records = LazyRecords(len(ds), build)
    fp = fingerprint(["hf", getattr(ds, "_fingerprint", source), split, sorted(cfg.items())])
    return DataSet(records, fp, f"HF dataset {source} split={split} ({len(records)} rows)",
                   class_names=class_names)
