"""WebDataset shards (the ``wds`` data format), in CLIP_benchmark's layout: ``root/<split>/nshards.txt`` and
``0.tar .. n-1.tar``, ``root/classnames.txt``, ``root/zeroshot_classification_templates.txt`` and
``root/dataset_type.txt`` (``classification``, the default, or ``retrieval``). A sample is the tar members
sharing a key: an image (``webp``, ``png``, ``jpg``, ``jpeg``) with ``cls`` (the class index) or ``txt``
(captions, one per line).

The shards are indexed, not read: one pass over the tar headers records where each image's bytes are, and
``TarRef.fetch`` reads them when the item is prepared, in a preparation thread. Only the labels and captions
(a few bytes per sample) are read up front. Hand-written with the standard ``tarfile`` module rather than the
``webdataset`` package because that package streams samples in shard order, while the runner needs each item
by itself (resuming, sharding over processes, batching by length).
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any, Mapping

from mmbench.data.sources import DataContext, DataSet, resolve_path
from mmbench.errors import DataError
from mmbench.specs import fingerprint

IMAGE_KEYS = ("webp", "png", "jpg", "jpeg", "0.webp")  # the first present is the sample's image
DATASET_TYPES = ("classification", "retrieval")


class TarRef:
    """The bytes of one tar member, read when the item is prepared."""

    __slots__ = ("path", "offset", "size", "name")

    def __init__(self, path: Path, offset: int, size: int, name: str) -> None:
        self.path, self.offset, self.size, self.name = path, offset, size, name

    def fetch(self) -> bytes:
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            return fh.read(self.size)

    def __repr__(self) -> str:
        return f"<{self.path.name}:{self.name}>"


def split_key(name: str) -> tuple[str, str]:
    """``dir/abc.0.webp`` -> (``dir/abc``, ``0.webp``): the key ends at the first dot of the file name, as
    WebDataset groups members."""
    head, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{head}/{stem}" if head else stem), (ext.lower() if dot else "")


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as UTF-8 text ({exc})") from None


def _shards(cfg: Mapping[str, Any], ctx: DataContext) -> tuple[Path | None, list[Path]]:
    """(the dataset root, its shard files in order) from ``root`` + ``split`` or an explicit ``shards`` list."""
    if cfg.get("shards"):
        listed = cfg["shards"] if isinstance(cfg["shards"], list) else [cfg["shards"]]
        return None, [resolve_path(str(s), ctx, "WebDataset shard") for s in listed]
    if not cfg.get("root"):
        raise DataError(f"task {ctx.task!r}: data format 'wds' needs `root` (the dataset folder) or `shards`")
    root = resolve_path(cfg["root"], ctx, "WebDataset folder")
    split = str(cfg.get("split", "test"))
    count = _read_text(root / split / "nshards.txt")
    if count is not None:
        try:
            n = int(count.strip())
        except ValueError:
            raise DataError(f"task {ctx.task!r}: {root / split / 'nshards.txt'} holds {count.strip()[:30]!r}, not a "
                            f"shard count") from None
        shards = [root / split / f"{i}.tar" for i in range(n)]
        missing = [s for s in shards if not s.is_file()]
        if missing:
            raise DataError(f"task {ctx.task!r}: {len(missing)} of {n} shards named by nshards.txt are missing "
                            f"(first: {missing[0]}); download every shard of the split")
        return root, shards
    shards = sorted((root / split).glob("*.tar"), key=lambda p: (len(p.stem), p.stem))
    if not shards:
        raise DataError(f"task {ctx.task!r}: no shards in {root / split} (expected nshards.txt and 0.tar, 1.tar, ...)")
    return root, shards


def _index(shard: Path, ctx: DataContext) -> dict[str, dict[str, tuple[int, int, str]]]:
    """key -> {extension: (data offset, size, member name)}, in the shard's order, from the headers alone."""
    samples: dict[str, dict[str, tuple[int, int, str]]] = {}
    try:
        with tarfile.open(shard, "r:") as tar:  # uncompressed: data offsets are byte positions in the file
            for member in tar:
                if member.isfile():
                    key, ext = split_key(member.name)
                    samples.setdefault(key, {})[ext] = (member.offset_data, member.size, member.name)
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"task {ctx.task!r}: WebDataset shard {shard} cannot be read ({exc}); re-download it "
                        f"(compressed .tar.gz shards are not supported: unpack them)") from None
    return samples


def _member_text(shard: Path, where: tuple[int, int, str]) -> str:
    return TarRef(shard, *where).fetch().decode("utf-8", errors="replace")


def load_wds(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """Records ``{"id", "image": TarRef, "label"}`` (classification) or ``{"id", "image", "captions"}``
    (retrieval); class names and templates from the dataset's files (``meta["templates"]``)."""
    root, shards = _shards(cfg, ctx)
    declared = _read_text(root / "dataset_type.txt") if root else None
    kind = str(cfg.get("type") or (declared or "classification").strip().lower())
    if kind not in DATASET_TYPES:
        raise DataError(f"task {ctx.task!r}: WebDataset type {kind!r} is not supported (supported: "
                        f"{', '.join(DATASET_TYPES)})")
    records: list[dict] = []
    seen: set[str] = set()
    index_fp = []
    for shard in shards:
        for key, parts in _index(shard, ctx).items():
            image_ext = next((e for e in IMAGE_KEYS if e in parts), None)
            want = "cls" if kind == "classification" else "txt"
            if image_ext is None or want not in parts:
                continue  # a sample without an image or its label is skipped, as CLIP_benchmark's loader does
            rid = key if key not in seen else f"{shard.stem}/{key}"
            seen.add(rid)
            rec: dict[str, Any] = {"id": rid, "image": TarRef(shard, *parts[image_ext])}
            text = _member_text(shard, parts[want])
            if kind == "classification":
                try:
                    rec["label"] = int(text.strip())
                except ValueError:
                    raise DataError(f"task {ctx.task!r}: {shard}: {parts[want][2]} holds {text.strip()[:30]!r}, "
                                    f"not a class index") from None
            else:
                rec["captions"] = [c for c in text.splitlines() if c.strip()]
            records.append(rec)
            index_fp.append([rid, parts[image_ext][1], rec.get("label", rec.get("captions"))])
    if not records:
        raise DataError(f"task {ctx.task!r}: no {kind} samples (an image with "
                        f"{'cls' if kind == 'classification' else 'txt'}) in {len(shards)} shard(s)")
    class_names = templates = None
    if root is not None and kind == "classification":
        names = _read_text(root / "classnames.txt")
        class_names = [line.strip() for line in names.splitlines() if line.strip()] if names else None
        lines = _read_text(root / "zeroshot_classification_templates.txt")
        templates = [line.strip() for line in lines.splitlines() if line.strip()] if lines else None
    if class_names is not None:
        bad = [r["label"] for r in records if not 0 <= r["label"] < len(class_names)]
        if bad:
            raise DataError(f"task {ctx.task!r}: class index {bad[0]} but classnames.txt lists {len(class_names)}")
    fp = fingerprint(["wds", kind, [s.name for s in shards], index_fp, class_names, templates])
    where = root if root is not None else shards[0].parent
    return DataSet(records, fp, f"WebDataset {where} ({len(shards)} shards, {len(records)} {kind} samples)",
                   class_names=class_names, meta={"templates": templates} if templates else {})
