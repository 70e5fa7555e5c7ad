"""Images generated elsewhere, served as a PromptToImage: a folder with ``prompts.jsonl`` and the images.

Each line of ``prompts.jsonl`` is ``{"id": ..., "prompt": ..., "image": path}`` (the path relative to the
folder). A request is answered with the image of the line whose ``id`` is the task item's id; when no line
has that id, with the image of the only line whose prompt is the request's prompt. A request with no such
line, or whose file is missing or unreadable, is a failed item: the run goes on and reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

from mmbench.adapters.base import Adapter, ModelArgs, hash_model_files
from mmbench.capabilities import Capability, ImageGenerationConfig, ImageRequest, PreparedImages
from mmbench.data.images import load_image
from mmbench.errors import ItemError, MMBenchError

MANIFEST = "prompts.jsonl"


@dataclass(frozen=True)
class ImageFolderArgs(ModelArgs):
    folder: str | None = None  # the folder holding prompts.jsonl (``pretrained`` is accepted as well)


def read_manifest(folder: Path) -> list[dict]:
    """The manifest's entries, validated (one line per image, ids unique)."""
    path = folder / MANIFEST
    if not path.is_file():
        raise MMBenchError(f"image folder {folder}: no {MANIFEST}; write one line per image: "
                           '{"id": ..., "prompt": ..., "image": "relative/path.png"}')
    entries, seen = [], set()
    from mmbench.files import iter_jsonl

    for n, entry in iter_jsonl(path, "image folder manifest"):
        if not all(k in entry for k in ("id", "prompt", "image")):
            raise MMBenchError(f"{path} line {n}: needs the keys id, prompt and image")
        key = str(entry["id"])
        if key in seen:
            raise MMBenchError(f"{path} line {n}: duplicate id {key!r}; give every image its own id")
        seen.add(key)
        entries.append({"id": key, "prompt": str(entry["prompt"]), "image": str(entry["image"])})
    if not entries:
        raise MMBenchError(f"{path} is empty; list the generated images in it")
    return entries


class ImageFolderGenerator(Adapter):
    """Looks images up instead of generating them (generation settings do not apply)."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.GENERATE_IMAGE})
    Args: ClassVar[type] = ImageFolderArgs
    default_batch_size = 32

    def __init__(self, args: ImageFolderArgs, name: str = "") -> None:
        super().__init__(args, name)
        given = args.folder or args.pretrained
        if not given:
            raise MMBenchError(f"image-folder needs folder=<folder with {MANIFEST}> in --model-args")
        self.folder = Path(given).expanduser()
        if not self.folder.is_dir():
            raise MMBenchError(f"image folder {self.folder} not found; pass folder=<folder with {MANIFEST}>")
        self.entries = read_manifest(self.folder)
        self.by_id = {e["id"]: e for e in self.entries}
        by_prompt: dict[str, list[dict]] = {}
        for e in self.entries:
            by_prompt.setdefault(e["prompt"], []).append(e)
        self.by_prompt = by_prompt

    def weights_fingerprint(self) -> str:
        return hash_model_files(self.folder)

    def extra_description(self) -> dict:
        return {"folder": str(self.folder), "n_images": len(self.entries),
                "generation_settings": "not applied: the images were generated elsewhere",
                "matching": "by item id, else by a prompt that occurs once in prompts.jsonl"}

    def lookup(self, request: ImageRequest) -> dict:
        """The manifest entry that answers ``request``; ItemError when there is none or it is ambiguous."""
        if request.id in self.by_id:
            return self.by_id[request.id]
        same = self.by_prompt.get(request.prompt, [])
        if len(same) == 1:
            return same[0]
        why = "no line has" if not same else f"{len(same)} lines have"
        raise ItemError(f"{MANIFEST}: no line with id {request.id!r} and {why} its prompt {request.prompt!r}")

    # -- PromptToImage ------------------------------------------------------------------------------------
    def prepare_images(self, requests: Sequence[ImageRequest], config: ImageGenerationConfig) -> PreparedImages:
        images, failed = [], {}
        for r in requests:
            try:
                entry = self.lookup(r)
                path = Path(entry["image"])
                images.append(load_image(path if path.is_absolute() else self.folder / path))
            except ItemError as exc:
                failed[r.id] = str(exc)
        return PreparedImages(images, failed)

    def generate_images(self, prepared: Any, config: ImageGenerationConfig) -> list[Any]:
        return list(prepared)
