"""``mmbench score vqa`` (the answer metrics on each VQA benchmark's official files, read by
mmbench.cli.score_vqa_formats) and ``mmbench score captions`` (the COCO caption formats)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mmbench.cli.score import emit, load_json
from mmbench.errors import MMBenchError


def _entries(data: Any, path: Path, keys: tuple[str, ...], what: str) -> list[dict]:
    if not isinstance(data, list):
        raise MMBenchError(f"{path}: {what} must be a JSON list of objects with keys {', '.join(keys)}")
    for n, entry in enumerate(data):
        if not isinstance(entry, dict) or any(k not in entry for k in keys):
            raise MMBenchError(f"{path}: entry {n} ({str(entry)[:80]}) lacks {' / '.join(keys)}; "
                               f"expected {{{', '.join(repr(k) for k in keys)}}}")
    return data


def _unique(entries: list[dict], key: str, path: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for n, entry in enumerate(entries):
        k = str(entry[key])
        if k in out:
            raise MMBenchError(f"{path}: duplicate {key} {entry[key]!r} (entry {n}); give one prediction per id")
        out[k] = entry
    return out


def _match_ids(pred_ids: list[str], ref_ids: set[str], key: str, pred_path: Path, ref_path: Path,
               require_all: bool) -> None:
    for k in pred_ids:
        if k not in ref_ids:
            raise MMBenchError(f"{pred_path}: {key} {k!r} is not in the references {ref_path}")
    if require_all:
        missing = sorted(ref_ids - set(pred_ids))
        if missing:
            raise MMBenchError(f"{pred_path}: no prediction for {key} {missing[0]!r} of the references "
                               f"({len(missing)} missing); the VQA evaluation needs one answer per question")


# -- vqa ----------------------------------------------------------------------------------------------
def add_vqa(sub: argparse._SubParsersAction) -> None:
    from mmbench.cli.score_vqa_formats import FORMATS

    layouts = "; ".join(f"{f.name}: {f.references} with predictions {f.predictions}" for f in FORMATS.values())
    p = sub.add_parser("vqa", help="VQA-style answer metrics from a benchmark's official reference and prediction "
                                   "files (VQAv2, OK-VQA, TextVQA, DocVQA, InfographicVQA, VizWiz, GQA, ChartQA)",
                       description=f"Reference layouts (auto-detected): {layouts}.")
    p.add_argument("--predictions", type=Path, required=True,
                   help='keyed as the benchmark\'s tooling writes them, e.g. [{"question_id", "answer"}, ...]')
    p.add_argument("--references", type=Path, required=True, action="append",
                   help="the benchmark's reference file (ChartQA: give test_human.json and test_augmented.json)")
    p.add_argument("--format", help=f"force a reference layout: {', '.join(FORMATS)} (default: detected)")
    p.add_argument("--metric", help="an answer metric (default: the format's official one, e.g. anls for docvqa)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a metric option, value read as YAML (threshold=0.5, rules=evalai, by=answer_type,split)")
    p.set_defaults(func=score_vqa)


def _answer_metrics(targets: list[dict]) -> list[str]:
    """The answer metrics these references can feed (mc_accuracy needs options; unanswerable VizWiz flags)."""
    from mmbench.metrics.api import ANSWERS, metric_class
    from mmbench.registry import METRICS

    names = []
    for name in METRICS.names():
        try:
            ok = metric_class(name).inputs == ANSWERS
        except MMBenchError:  # a plugin that does not import
            continue
        if ok and name != "mc_accuracy" and (name != "unanswerable" or all("answerable" in t for t in targets)):
            names.append(name)
    return names


def _metric_entry(fmt: Any, targets: list[dict], metric: str | None, raw: list[str]) -> dict:
    """{"name", options...}: the format's default metric and options unless --metric names another; each
    --option KEY=VALUE on top, VALUE read as YAML (a comma list for list options such as by)."""
    import difflib
    import typing

    import yaml

    from mmbench.metrics.api import metric_class

    name = metric or fmt.metric
    allowed = _answer_metrics(targets)
    if name not in allowed:
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.5)
        why = ("needs `answerable` flags on the references (VizWiz)" if name == "unanswerable" else
               "needs multiple-choice options" if name == "mc_accuracy" else "is not an answer metric")
        raise MMBenchError(f"--metric {name!r} {why}; {f'did you mean {close[0]!r}? ' if close else ''}"
                           f"use one of {', '.join(allowed)}")
    options = dict(fmt.options) if name == fmt.metric else {}
    hints = typing.get_type_hints(metric_class(name).Options)
    for item in raw:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise MMBenchError(f"--option {item!r}: expected KEY=VALUE, e.g. threshold=0.5")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MMBenchError(f"--option {item!r}: the value is not a YAML value ({str(exc).splitlines()[0]})")
        if typing.get_origin(hints.get(key.strip())) is tuple and (value is None or isinstance(value, str)):
            value = [v.strip() for v in (value or "").split(",") if v.strip()]
        options[key.strip()] = value
    return {"name": name, **options}


def score_vqa(args: argparse.Namespace) -> int:
    from mmbench.cli import score_vqa_formats as formats
    from mmbench.metrics.api import ANSWERS, build_metrics, compute_all

    files = [(path, load_json(path, "references")) for path in args.references]
    fmt = formats.format_named(args.format or formats.detect_format(files))
    refs = fmt.read(files)
    answers = formats.read_predictions(load_json(args.predictions, "predictions"), args.predictions, refs, fmt)
    # a run's annotations.json records the task's first metric with its options: rescored as the run was
    recorded = next((d["mmbench_metrics"] for _, d in files if isinstance(d, dict) and d.get("mmbench_metrics")), None)
    entry = dict(recorded[0]) if recorded and args.metric is None and not args.option else \
        _metric_entry(fmt, refs.targets, args.metric, args.option)
    metric = build_metrics([entry], ANSWERS, "mmbench score vqa")[0]
    report = compute_all([metric], answers, refs.targets)[0]
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in metric.describe().items() if k != "name"}
    extra: dict = {"format": fmt.name, "metric": metric.name, "options": options, "n": len(refs.ids)}
    official = {v.name: v.extra["official_percent"] for v in report.values if "official_percent" in v.extra}
    if official:  # as the VQA scripts print it: percentages to 2 decimals
        extra["official_percent"] = _official_percent(metric.name, official, getattr(metric.options, "by", ()))
    if refs.notes or report.notes:
        extra["notes"] = [*refs.notes, *report.notes]
    return emit(report.values, extra)


def _official_percent(name: str, values: dict[str, float], by: tuple[str, ...]) -> dict:
    """{"overall", "perAnswerType", "perQuestionType", ...} from the values' official_percent."""
    out: dict = {"overall": values[name]}
    for fld in by:
        prefix = f"{name}[{fld}="
        out["per" + "".join(w.title() for w in fld.split("_"))] = {
            k[len(prefix):-1]: v for k, v in values.items() if k.startswith(prefix)}
    return out


# -- captions -----------------------------------------------------------------------------------------
def add_captions(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("captions", help="COCO caption metrics (PTB tokenisation, BLEU, METEOR, ROUGE-L, CIDEr-D)")
    p.add_argument("--predictions", type=Path, required=True, help='[{"image_id", "caption"}, ...]')
    p.add_argument("--references", type=Path, required=True,
                   help='COCO captions file {"images": [...], "annotations": [{"image_id", "caption"}]}')
    p.set_defaults(func=score_captions)


def score_captions(args: argparse.Namespace) -> int:
    from mmbench.metrics.captions import CaptionScorer

    preds = _unique(_entries(load_json(args.predictions, "predictions"), args.predictions,
                             ("image_id", "caption"), "COCO results"), "image_id", args.predictions)
    refs_data = load_json(args.references, "references")
    if not isinstance(refs_data, dict) or "annotations" not in refs_data:
        raise MMBenchError(f"{args.references}: expected a COCO captions file with an 'annotations' list")
    refs: dict[str, list[str]] = {}
    for ann in _entries(refs_data["annotations"], args.references, ("image_id", "caption"), "annotations"):
        refs.setdefault(str(ann["image_id"]), []).append(str(ann["caption"]))
    # As the COCO caption evaluation: the images that have a prediction are scored.
    _match_ids(list(preds), set(refs), "image_id", args.predictions, args.references, require_all=False)
    with CaptionScorer() as scorer:
        result = scorer.score({i: str(p["caption"]) for i, p in preds.items()}, {i: refs[i] for i in preds},
                              is_subset=len(preds) < len(refs))
    extra: dict = {"n": len(preds), "notes": result.notes}
    unavailable = {m.name: m.unavailable for m in result.values if m.unavailable}
    if unavailable:
        extra["unavailable"] = unavailable
    if len(preds) < len(refs):
        extra["notes"] = [*result.notes, f"{len(refs) - len(preds)} reference images have no prediction and were "
                                          f"not scored (as the COCO caption evaluation does)"]
    return emit(result.values, extra)
