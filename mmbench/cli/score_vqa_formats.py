"""The reference and prediction files ``mmbench score vqa`` reads: each benchmark's official layout.

A format names how its references are laid out (the file the benchmark releases), how its predictions are
keyed (the file the benchmark's own tooling or evaluation server takes) and the metric its official scorer
computes. ``detect_format`` picks the format from the references; ``FORMATS[name].read`` turns the reference
files into a :class:`ReferenceSet` (question ids and the targets the answer metrics take: ``{"answers":
[...], breakdown fields}``); ``read_predictions`` pairs a predictions file with it. Ids compare as strings
(DocVQA's questionIds are ints in the official files and strings in the HF copies). Every scored question
needs exactly one prediction, as every official scorer here requires; anything else is a one-line
MMBenchError naming the file, the entry and the fix.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from mmbench.errors import MMBenchError

NO_ANSWERS = "a test split? its answers are scored by the benchmark's evaluation server, not here"
BREAKDOWN_FIELDS = ("answer_type", "question_type", "answerable", "split", "domain", "answer_kind")


@dataclass
class ReferenceSet:
    """The questions of a read reference set, in reference order."""

    format: str
    paths: list[Path]
    ids: list[str]  # question keys as strings, unique
    targets: list[dict]  # {"answers": [str, ...], breakdown fields...}
    names: list[str]  # how messages name each question ("question_id 262148000")
    skipped: set[str] = field(default_factory=set)  # ids a prediction may name that are not scored (GQA)
    notes: list[str] = field(default_factory=list)
    lookup: dict = field(default_factory=dict)  # format-specific tables (ChartQA: (imgname, query) -> splits)

    def __post_init__(self) -> None:
        self.index = {k: i for i, k in enumerate(self.ids)}


@dataclass(frozen=True)
class VQAFormat:
    name: str
    references: str  # the reference layout, for help and messages
    predictions: str  # the prediction layout
    id_key: str  # the prediction key naming the question
    answer_key: str  # the prediction key holding the answer
    read: Callable[[list[tuple[Path, Any]]], ReferenceSet]
    metric: str  # what the official scorer computes, with these options
    options: Mapping[str, Any] = field(default_factory=dict)
    # (entry, n, path, refs, counts) -> question key, for formats not keyed by one id field (ChartQA)
    key: Callable[[dict, int, Path, ReferenceSet, Counter], str] | None = None


# -- helpers ----------------------------------------------------------------------------------------------

def _rows(data: Any, key: str | None, path: Path, layout: str) -> list[dict]:
    rows = (data.get(key) if isinstance(data, dict) else None) if key is not None else data
    if not isinstance(rows, list):
        raise MMBenchError(f"{path}: not in the expected layout {layout}; pass --format to say which it is")
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            raise MMBenchError(f"{path}: entry {n} is a {type(row).__name__}, not an object; expected {layout}")
    if not rows:
        raise MMBenchError(f"{path}: no questions in the references")
    return rows


def _field(row: dict, key: str, path: Path, where: str, layout: str) -> Any:
    if row.get(key) is None:
        raise MMBenchError(f"{path}: {where} has no {key!r}; expected {layout}")
    return row[key]


def _answers(raw: Any, path: Path, where: str) -> list[str]:
    """Reference answers as strings: strings or {"answer": ...} objects (numbers are written as text)."""
    if not isinstance(raw, list) or not raw:
        raise MMBenchError(f"{path}: {where} has no answers list ({NO_ANSWERS})")
    out = []
    for a in raw:
        a = a.get("answer") if isinstance(a, dict) else a
        if isinstance(a, (int, float)) and not isinstance(a, bool):
            a = str(a)
        if not isinstance(a, str):
            raise MMBenchError(f"{path}: {where} has a reference answer {a!r} that is not a string")
        out.append(a)
    return out


def _one_file(files: list[tuple[Path, Any]], fmt: str) -> tuple[Path, Any]:
    if len(files) != 1:
        raise MMBenchError(f"--references is given {len(files)} times, but {fmt} references are one file; only "
                           f"chartqa takes several (test_human.json and test_augmented.json)")
    return files[0]


def _keyed(fmt: str, path: Path, rows: list[dict], id_key: str, layout: str, answers_key: str = "answers",
           fields: tuple[str, ...] = ()) -> ReferenceSet:
    """A reference set of rows keyed by ``id_key`` with an answers list and optional breakdown fields."""
    ids, targets, names, first = [], [], [], {}
    for n, row in enumerate(rows):
        qid = _field(row, id_key, path, f"entry {n}", layout)
        key = str(qid)
        if key in first:
            raise MMBenchError(f"{path}: {id_key} {qid!r} appears twice (entries {first[key]} and {n}); a reference "
                               f"file lists each question once")
        first[key] = n
        target = {"answers": _answers(row.get(answers_key), path, f"entry {n} ({id_key} {qid!r})")}
        target.update({k: row[k] for k in fields if row.get(k) is not None})
        ids.append(key)
        targets.append(target)
        names.append(f"{id_key} {qid!r}")
    return ReferenceSet(fmt, [path], ids, targets, names)


# -- the readers ------------------------------------------------------------------------------------------

VQAV2_LAYOUT = ('{"annotations": [{"question_id", "answers": [{"answer"}], "answer_type", "question_type"}]} '
                '(VQAv2 / OK-VQA annotations)')
TEXTVQA_LAYOUT = '{"data": [{"question_id", "answers": [str], ...}]} (TextVQA_0.5.1_val.json)'
DOCVQA_LAYOUT = ('{"dataset_name", "data": [{"questionId", "answers": [str], ...}]} (DocVQA / InfographicVQA '
                 'val file)')
VIZWIZ_LAYOUT = ('[{"image", "question", "answers": [{"answer", "answer_confidence"}], "answer_type", '
                 '"answerable"}] (VizWiz val.json)')
GQA_LAYOUT = ('{question id: {"answer", "isBalanced", "types": {"structural"}, ...}} (GQA '
              'testdev_balanced_questions.json)')
CHARTQA_LAYOUT = '[{"imgname", "query", "label"}] (ChartQA test_human.json / test_augmented.json)'


def read_vqav2(files: list[tuple[Path, Any]]) -> ReferenceSet:
    path, data = _one_file(files, "vqav2")
    rows = _rows(data, "annotations", path, VQAV2_LAYOUT)
    return _keyed("vqav2", path, rows, "question_id", VQAV2_LAYOUT, fields=BREAKDOWN_FIELDS)


def read_textvqa(files: list[tuple[Path, Any]]) -> ReferenceSet:
    path, data = _one_file(files, "textvqa")
    return _keyed("textvqa", path, _rows(data, "data", path, TEXTVQA_LAYOUT), "question_id", TEXTVQA_LAYOUT)


def read_docvqa(files: list[tuple[Path, Any]]) -> ReferenceSet:
    path, data = _one_file(files, "docvqa")
    return _keyed("docvqa", path, _rows(data, "data", path, DOCVQA_LAYOUT), "questionId", DOCVQA_LAYOUT)


def read_vizwiz(files: list[tuple[Path, Any]]) -> ReferenceSet:
    """VizWiz has no question ids: the image file name is the id (one question per image)."""
    path, data = _one_file(files, "vizwiz")
    rows = _rows(data, None, path, VIZWIZ_LAYOUT)
    return _keyed("vizwiz", path, rows, "image", VIZWIZ_LAYOUT, fields=("answer_type", "answerable"))


def read_gqa(files: list[tuple[Path, Any]]) -> ReferenceSet:
    """Only balanced questions are scored, as GQA's eval.py does (a question without ``isBalanced`` counts);
    predictions for the others are allowed and ignored. ``answer_kind`` is eval.py's open (structural type
    "query") / binary split; ``structural`` and ``semantic`` are there for ``by:`` too."""
    path, data = _one_file(files, "gqa")
    if not isinstance(data, dict) or not data:
        raise MMBenchError(f"{path}: not in the expected layout {GQA_LAYOUT}; pass --format to say which it is")
    ids, targets, names, skipped = [], [], [], set()
    for qid, q in data.items():
        if not isinstance(q, dict):
            raise MMBenchError(f"{path}: question {qid!r} is a {type(q).__name__}, not an object; expected "
                               f"{GQA_LAYOUT}")
        if q.get("isBalanced") is False:
            skipped.add(str(qid))
            continue
        answer = _field(q, "answer", path, f"question {qid!r}", GQA_LAYOUT)
        target: dict = {"answers": _answers([answer], path, f"question {qid!r}")}
        types = q.get("types") if isinstance(q.get("types"), dict) else {}
        if types.get("structural") is not None:
            target.update(structural=types["structural"],
                          answer_kind="open" if types["structural"] == "query" else "binary")
        if types.get("semantic") is not None:
            target["semantic"] = types["semantic"]
        ids.append(str(qid))
        targets.append(target)
        names.append(f"questionId {qid!r}")
    if not ids:
        raise MMBenchError(f"{path}: no balanced questions (isBalanced: true) to score")
    notes = [f"{len(skipped)} unbalanced questions not scored (as GQA's eval.py)"] if skipped else []
    return ReferenceSet("gqa", [path], ids, targets, names, skipped, notes)


def chartqa_split(path: Path) -> str:
    """The ChartQA split a file holds, from its name: human, augmented, else the file's stem."""
    stem = path.stem.lower()
    return "human" if "human" in stem else "augmented" if "augmented" in stem else path.stem


def read_chartqa(files: list[tuple[Path, Any]]) -> ReferenceSet:
    """One or more ChartQA files, each a split named by its file (test_human.json -> human). A question is
    (split, imgname, query); one asked twice is matched to predictions in order."""
    ids, targets, names, splits, seen = [], [], [], {}, Counter()
    owner: dict[str, Path] = {}
    for path, data in files:
        split = chartqa_split(path)
        if split in owner:
            raise MMBenchError(f"--references {path} and {owner[split]} are both the ChartQA {split!r} split; give "
                               f"each split's file once")
        owner[split] = path
        for n, row in enumerate(_rows(data, None, path, CHARTQA_LAYOUT)):
            imgname, query = (_field(row, k, path, f"entry {n}", CHARTQA_LAYOUT) for k in ("imgname", "query"))
            label = _answers([_field(row, "label", path, f"entry {n}", CHARTQA_LAYOUT)], path, f"entry {n}")
            k = seen[(split, str(imgname), str(query))]
            seen[(split, str(imgname), str(query))] += 1
            ids.append(json.dumps([split, str(imgname), str(query), k]))
            targets.append({"answers": label, "split": split})
            names.append(f"imgname {imgname!r} query {query!r} (split {split}{f', occurrence {k + 1}' if k else ''})")
            if not k:
                splits.setdefault((str(imgname), str(query)), []).append(split)
    return ReferenceSet("chartqa", [p for p, _ in files], ids, targets, names,
                        lookup={"splits": splits, "split_names": list(owner)})


def chartqa_key(entry: dict, n: int, path: Path, refs: ReferenceSet, counts: Counter) -> str:
    """(split, imgname, query, occurrence) of a ChartQA prediction; its split is its ``split`` key, else the
    one split that asks the question."""
    imgname, query = str(entry["imgname"]), str(entry["query"])
    asked = refs.lookup["splits"].get((imgname, query), [])
    split = entry.get("split")
    if split is not None and split not in refs.lookup["split_names"]:
        raise MMBenchError(f"{path}: entry {n} has split {split!r}, but the references are the splits "
                           f"{', '.join(refs.lookup['split_names'])}; fix the split or leave it out")
    if split is None and len(asked) > 1:
        raise MMBenchError(f"{path}: entry {n} (imgname {imgname!r} query {query!r}) is asked in the splits "
                           f"{' and '.join(asked)}; add \"split\" to the prediction to say which")
    split = split if split is not None else (asked[0] if asked else None)
    if split not in asked:
        raise MMBenchError(f"{path}: imgname {imgname!r} query {query!r} (entry {n}) is not in the references "
                           f"{', '.join(str(p) for p in refs.paths)}; score predictions against the files they "
                           f"were made for")
    k = counts[(split, imgname, query)]
    counts[(split, imgname, query)] += 1
    key = json.dumps([split, imgname, query, k])
    if key not in refs.index:
        raise MMBenchError(f"{path}: duplicate prediction for imgname {imgname!r} query {query!r} (split {split}, "
                           f"entry {n}); the references ask it {k} time(s): give one prediction per question")
    return key


QUESTION_ID = '[{"question_id", "answer"}]'
FORMATS: dict[str, VQAFormat] = {f.name: f for f in (
    VQAFormat("vqav2", VQAV2_LAYOUT, QUESTION_ID, "question_id", "answer", read_vqav2, "vqa_accuracy"),
    VQAFormat("textvqa", TEXTVQA_LAYOUT, QUESTION_ID, "question_id", "answer", read_textvqa, "vqa_accuracy",
              {"rules": "evalai", "by": []}),
    VQAFormat("docvqa", DOCVQA_LAYOUT, '[{"questionId", "answer"}] (the RRC submission format)', "questionId",
              "answer", read_docvqa, "anls"),
    VQAFormat("vizwiz", VIZWIZ_LAYOUT, '[{"image", "answer"}] (the EvalAI VizWiz format)', "image", "answer",
              read_vizwiz, "vqa_accuracy", {"rules": "vizwiz", "by": ["answer_type", "answerable"]}),
    VQAFormat("gqa", GQA_LAYOUT, '[{"questionId", "prediction"}] (what LLaVA\'s convert_gqa_for_eval.py writes)',
              "questionId", "prediction", read_gqa, "gqa_accuracy", {"by": ["answer_kind"]}),
    VQAFormat("chartqa", CHARTQA_LAYOUT, '[{"imgname", "query", "answer"}] (optionally "split": human / augmented)',
              "imgname", "answer", read_chartqa, "relaxed_accuracy", {"macro_by": "split"}, chartqa_key),
)}


def format_named(name: str) -> VQAFormat:
    if name not in FORMATS:
        import difflib

        close = difflib.get_close_matches(name, list(FORMATS), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise MMBenchError(f"unknown --format {name!r}: {hint}use one of {', '.join(FORMATS)}")
    return FORMATS[name]


def _detect_one(data: Any) -> str | None:
    if isinstance(data, dict):
        if "annotations" in data:
            return "vqav2"
        if isinstance(data.get("data"), list):
            first = next((r for r in data["data"] if isinstance(r, dict)), {})
            return "docvqa" if "questionId" in first else "textvqa" if "question_id" in first else None
        first = next(iter(data.values()), None)
        if isinstance(first, dict) and ("answer" in first or "isBalanced" in first):
            return "gqa"
    elif isinstance(data, list) and data and isinstance(data[0], dict):
        if {"imgname", "query"} <= set(data[0]):
            return "chartqa"
        if "image" in data[0] and ("answers" in data[0] or "question" in data[0]):
            return "vizwiz"
    return None


def detect_format(files: list[tuple[Path, Any]]) -> str:
    """The format of the reference files, from their layout (one-line error when unknown or mixed)."""
    found = []
    for path, data in files:
        fmt = _detect_one(data)
        if fmt is None:
            raise MMBenchError(f"{path}: not a reference layout `score vqa` knows ({', '.join(FORMATS)}); pass "
                               f"--format NAME if it is one of them (see --help for each layout)")
        found.append(fmt)
    if len(set(found)) > 1:
        raise MMBenchError(f"--references mixes layouts ({', '.join(f'{p}: {f}' for (p, _), f in zip(files, found))}); "
                           f"score one benchmark at a time")
    return found[0]


# -- predictions ------------------------------------------------------------------------------------------

def _key_hint(entry: dict, fmt: VQAFormat) -> str:
    """What the entry's keys suggest when they are another format's."""
    others = [f.name for f in FORMATS.values() if f.id_key != fmt.id_key and f.id_key in entry]
    if others:
        return (f" (it has {FORMATS[others[0]].id_key!r}, the key of {'/'.join(others)} predictions: rename it or "
                f"give the matching --references)")
    if fmt.answer_key not in entry and {"answer", "prediction"} & set(entry):
        return f" (rename its {sorted({'answer', 'prediction'} & set(entry))[0]!r} to {fmt.answer_key!r})"
    return ""


def read_predictions(data: Any, path: Path, refs: ReferenceSet, fmt: VQAFormat) -> list[str]:
    """The answers of a predictions file in ``fmt``'s layout, aligned with ``refs.ids``."""
    keys = (fmt.id_key, "query", fmt.answer_key) if fmt.key is chartqa_key else (fmt.id_key, fmt.answer_key)
    expected = f"the {fmt.name} predictions layout {fmt.predictions}"
    if not isinstance(data, list):
        raise MMBenchError(f"{path}: predictions must be a JSON list of objects with keys {', '.join(keys)} "
                           f"({expected})")
    got: dict[str, tuple[int, str]] = {}
    counts: Counter = Counter()
    for n, entry in enumerate(data):
        if not isinstance(entry, dict) or any(entry.get(k) is None for k in keys):
            hint = _key_hint(entry, fmt) if isinstance(entry, dict) else ""
            raise MMBenchError(f"{path}: entry {n} ({str(entry)[:80]}) lacks {' / '.join(keys)}; expected "
                               f"{expected}{hint}")
        answer = entry[fmt.answer_key]
        if not isinstance(answer, str):
            raise MMBenchError(f"{path}: entry {n} has {fmt.answer_key} {answer!r} ({type(answer).__name__}); "
                               f"write every answer as a JSON string")
        qid = entry[fmt.id_key]
        key = fmt.key(entry, n, path, refs, counts) if fmt.key else str(qid)
        if key in got:
            raise MMBenchError(f"{path}: duplicate {fmt.id_key} {qid!r} (entries {got[key][0]} and {n}); give one "
                               f"prediction per question")
        if key not in refs.index and key not in refs.skipped:
            raise MMBenchError(f"{path}: {fmt.id_key} {qid!r} is not in the references "
                               f"{', '.join(str(p) for p in refs.paths)} (entry {n}); score predictions against "
                               f"the references they were made for")
        got[key] = (n, answer)
    missing = [i for i, k in enumerate(refs.ids) if k not in got]
    if missing:
        raise MMBenchError(f"{path}: no prediction for {refs.names[missing[0]]} of the references ({len(missing)} "
                           f"missing); the {fmt.name} evaluation needs one answer per question")
    return [got[k][1] for k in refs.ids]
