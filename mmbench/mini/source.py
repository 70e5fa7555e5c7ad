"""The ``mini-shapes`` data format: the generated mini-shapes splits as task records (nothing on disk)."""

from __future__ import annotations

from typing import Any, Mapping

from mmbench.data.sources import DataContext, DataSet
from mmbench.errors import DataError
from mmbench.mini import questions, shapes
from mmbench.specs import fingerprint

UNITS = ("image", "question", "pope", "mc")


def load_mini_shapes(cfg: Mapping[str, Any], ctx: DataContext) -> DataSet:
    """``split`` (a mini-shapes split), ``seed`` (default: the fixed one), ``n`` (the first n scenes) and
    ``unit``: ``image`` (one record per image, with label / captions), ``question`` (one record per VQA
    question), ``pope`` (mini-pope's object-existence questions) or ``mc`` (mini-mc's lettered questions); see
    mmbench.mini.questions."""
    split = str(cfg.get("split", "zeroshot-test"))
    seed = int(cfg.get("seed", shapes.DEFAULT_SEED))
    unit = cfg.get("unit", "image")
    if unit not in UNITS:
        raise DataError(f"task {ctx.task!r}: mini-shapes unit {unit!r} is not one of {', '.join(UNITS)}")
    scenes = shapes.generate(split, seed, cfg.get("n"))
    class_names = list(shapes.CLASS_NAMES)
    records: list[dict] = []
    if unit in ("pope", "mc"):
        records = (questions.pope_questions if unit == "pope" else questions.mc_questions)(scenes, seed)
    for scene in scenes if unit in ("image", "question") else ():
        if unit == "image":
            rec = {"id": scene.id, "image": scene.image, "captions": list(scene.captions)}
            if scene.label is not None:
                rec["label"] = class_names.index(scene.label)
            records.append(rec)
        else:
            for q in scene.questions:
                records.append({"id": str(q["question_id"]), "image": scene.image, "image_id": scene.id,
                                "question": q["question"], "answers": list(q["answers"]),
                                "answer_type": q["answer_type"], "question_type": q["question_type"]})
    fp = fingerprint([shapes.fingerprint(split, seed), unit, len(scenes)]
                     + ([f"questions/v{questions.VERSION}"] if unit in ("pope", "mc") else []))
    return DataSet(records, fp, f"mini-shapes {split} (seed {seed}, {len(scenes)} images, {len(records)} {unit}s)",
                   class_names=class_names if unit == "image" and split == "zeroshot-test" else None)
