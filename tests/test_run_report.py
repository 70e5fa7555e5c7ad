"""``mmbench report``: the data side of the run report page, on real runs of the mini models and a scripted one.

Checked against the run's own files: the page's JSON holds exactly the samples' outputs and scores; with
``--compare`` the changed items are exactly those whose score differs; a failed item shows its error; the
media come from the task's data (and the page still builds, saying why, when the data are gone); a model
output that is markup is escaped; a bad run id exits 2 with one line; a 20,000-item run builds in seconds.

The runs are made once per session (``fixture_runs``) and shared with test_run_report_browser.py.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import probe_models
import tiny_models
from mmbench.cli.main import main
from mmbench.report.run_report import build_report, compare_pairs, to_html, write_report
from mmbench.results import RunResult
from mmbench.store import pack_stats, unpack_stats

EVIL_SCRIPT = "</script><script>window.pwned=1</script>"
EVIL_IMG = "<img src=x onerror=window.pwned=1>"
N_LARGE = 20_000
_RUNS: dict[str, Path] = {}  # built once per session, shared with the browser tests


class EvilVLM(probe_models.ImageOnly):
    """Answers with the colour it sees, except to questions about 'evil', which it answers with markup."""

    def answer(self, request) -> str:
        if "evil script" in request.prompt:
            return EVIL_SCRIPT
        if "evil image" in request.prompt:
            return EVIL_IMG + " and " + EVIL_SCRIPT
        return super().answer(request)


def _run(args: list[str], out: Path) -> Path:
    code = main(["run", *args, "--output-dir", str(out), "--no-progress", "--no-cache"])
    assert code == 0
    return next(p for p in sorted(out.iterdir()) if (p / "results.json").is_file())


def _scripted_data(root: Path) -> tuple[Path, Path]:
    """A JSONL VQA task: four colour questions, two 'evil' ones, one item whose image file is corrupt."""
    data, tasks = root / "data", root / "tasks"
    data.mkdir()
    tasks.mkdir()
    rows = []
    for i, colour in enumerate(tiny_models.COLOURS):
        tiny_models.draw(colour, tiny_models.SHAPES[i % 3]).save(data / f"{colour}.png")
        rows.append({"id": f"c{i}", "image": f"{colour}.png", "question": "what color is the shape?",
                     "answers": [colour] * 10})
    rows.append({"id": "evil-1", "image": "red.png", "question": "say the evil script", "answers": ["no"] * 10})
    rows.append({"id": "evil-2", "image": "blue.png", "question": "draw the evil image", "answers": ["no"] * 10})
    (data / "broken.png").write_bytes(b"this is not a PNG file")
    rows.append({"id": "broken", "image": "broken.png", "question": "what color is the shape?", "answers": ["red"]})
    (data / "vqa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tasks / "tv.yaml").write_text("task: tv\nkind: vqa\nmax_new_tokens: 16\ndata: {format: jsonl, path: vqa.jsonl}\n")
    return data, tasks


def fixture_runs(root: Path) -> dict[str, Path]:
    """The runs the report tests read (made once): ``a`` mini-llava on mini-vqa, mini-mc and probe:mini-vqa;
    ``b`` mini-llava-blind on mini-vqa (the --compare partner); ``speech`` pocketsphinx on mini-speech-wer;
    ``evil`` a scripted model whose outputs are markup, with a failed item; ``data`` that run's data folder."""
    if not _RUNS:
        from mmbench.registry import MODELS

        root.mkdir(parents=True, exist_ok=True)
        MODELS.register("evil-vlm", EvilVLM, overwrite=True)
        try:
            data, tasks = _scripted_data(root)
            _RUNS["evil"] = _run(["--model", "evil-vlm", "--tasks", "tv", "--include-path", str(tasks),
                                  "--data-dir", str(data)], root / "evil")
        finally:
            MODELS.unregister("evil-vlm")
        _RUNS["data"] = data
        _RUNS["a"] = _run(["--model", "mini-llava", "--tasks", "mini-vqa,mini-mc,probe:mini-vqa", "--limit", "10"],
                          root / "a")
        _RUNS["b"] = _run(["--model", "mini-llava-blind", "--tasks", "mini-vqa", "--limit", "10"], root / "b")
        _RUNS["speech"] = _run(["--model", "pocketsphinx", "--tasks", "mini-speech-wer", "--limit", "3"],
                               root / "speech")
    return _RUNS


def large_run(root: Path, base: Path, n: int = N_LARGE) -> Path:
    """A copy of run ``base`` (one model, mini-vqa) whose samples and item statistics hold ``n`` synthetic items."""
    folder = root / "large"
    if (folder / "results.json").is_file():
        return folder
    shutil.copytree(base, folder)
    run = RunResult.read(folder)
    result = run.results[0]
    template = [json.loads(line) for line in (folder / result.files["samples"]).read_text().splitlines()]
    with open(folder / result.files["samples"], "w", encoding="utf-8") as fh:
        for i in range(n):
            row = dict(template[i % len(template)], id=f"syn-{i:05d}")
            row["generation"] = row["answer"] = f"answer {i % 7}"
            row["score"] = row["vqa_accuracy"] = float(i % 3 == 0)
            fh.write(json.dumps(row) + "\n")
    ids, stats = unpack_stats((folder / result.files["item_stats"]).read_bytes())
    tiled = {k: np.resize(v, (n, *np.shape(v)[1:])) if np.ndim(v) and len(v) == len(ids) else v
             for k, v in stats.items()}
    (folder / result.files["item_stats"]).write_bytes(pack_stats([f"syn-{i:05d}" for i in range(n)], tiled))
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return fixture_runs(tmp_path_factory.getbasetemp() / "run-report-runs")


def page_data(html: str) -> dict:
    """The JSON block of a report page, decoded."""
    start = html.index('<script type="application/json" id="report-data">')
    start = html.index(">", start) + 1
    return json.loads(html[start:html.index("</script>", start)])


def samples(run: Path, model: str, task: str) -> list[dict]:
    result = next(r for r in RunResult.read(run).results if r.model == model and r.task == task)
    return [json.loads(line) for line in (run / result.files["samples"]).read_text().splitlines()]


def group_items(data: dict, label: str) -> list[dict]:
    index = next(i for i, g in enumerate(data["groups"]) if g["label"] == label)
    return [it for it in data["items"] if it["g"] == index]


@pytest.fixture(scope="module")
def report_a(runs, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "a.html"
    write_report(path, runs["a"], compare=runs["b"])
    html = path.read_text(encoding="utf-8")
    return html, page_data(html), build_report(runs["a"], compare=runs["b"])


def test_the_page_holds_exactly_the_samples_outputs_and_scores(runs, report_a):
    _, data, _ = report_a
    vqa = samples(runs["a"], "mini-llava", "mini-vqa")
    items = group_items(data, "mini-llava / mini-vqa")
    assert [it["id"] for it in items] == [r["id"] for r in vqa]
    assert [it["o"] for it in items] == [r["generation"] for r in vqa]
    assert [it["p"] for it in items] == [r["prompt_sent"] for r in vqa]
    assert [it["s"] for it in items] == [r["score"] for r in vqa]
    assert [it["r"] for it in items] == [r["references"] for r in vqa]
    assert [bool(it.get("w")) for it in items] == [r["score"] < 1 for r in vqa]
    assert any(it.get("w") for it in items) and not all(it.get("w") for it in items)
    mc = samples(runs["a"], "mini-llava", "mini-mc")
    items = group_items(data, "mini-llava / mini-mc")
    assert [it["o"] for it in items] == [[p["text"] for p in r["passes"]] for r in mc]
    assert [it["p"] for it in items] == [[p["prompt_sent"] for p in r["passes"]] for r in mc]
    assert [it["s"] for it in items] == [r["mc_accuracy"] for r in mc] and [it["r"] for it in items] == [
        r["reference"] for r in mc]
    probe = samples(runs["a"], "mini-llava", "probe:mini-vqa")
    items = group_items(data, "mini-llava / probe:mini-vqa")
    assert [(it["c"], it["o"], it["s"]) for it in items] == [(r["condition"], r["generation"], r["score"])
                                                             for r in probe]
    assert {it["c"] for it in items} >= {"real", "blank", "none"} and data["conditions"]["blank"]
    assert len(data["items"]) == len(vqa) + len(mc) + len(probe) == 80


def test_scores_carry_intervals_variants_and_provenance(runs, report_a):
    from mmbench.metrics.api import aggregator_for
    from mmbench.report.stats import bootstrap

    html, _, ctx = report_a
    result = next(r for r in RunResult.read(runs["a"]).results if r.task == "mini-vqa")
    group = next(g for g in ctx["groups"] if g["task"] == "mini-vqa")
    head = group["headline"]
    assert head["name"] == "vqa_accuracy" and head["value"] == f"{result.value('vqa_accuracy'):.4f}"
    _, stats = unpack_stats((runs["a"] / result.files["item_stats"]).read_bytes())
    iv = bootstrap(stats, aggregator_for(result.aggregator), metrics=["vqa_accuracy"], resamples=1000, seed=0,
                   stream="mini-vqa").intervals["vqa_accuracy"]
    assert head["interval"] == f"[{iv.low:.4f}, {iv.high:.4f}]" and iv.low <= result.value("vqa_accuracy") <= iv.high
    assert sorted(m["name"] for m in group["metrics"]) == sorted(m["name"] for m in result.metrics)
    assert group["metrics"][0]["headline"] and not any(m["headline"] for m in group["metrics"][1:])
    variants = {v["text"] for v in ctx["variants"]}
    for m in result.metrics:
        assert m["variant"] in variants
    for fact in (result.model_fingerprint, result.data_fingerprint, result.task_fingerprint,
                 result.model_info["weights_fingerprint"], RunResult.read(runs["a"]).run_id, "mmbench 0.1.0"):
        assert fact in html


def test_changed_items_are_exactly_those_whose_score_differs(runs, report_a):
    _, data, ctx = report_a
    mine = {r["id"]: r for r in samples(runs["a"], "mini-llava", "mini-vqa")}
    theirs = {r["id"]: r for r in samples(runs["b"], "mini-llava-blind", "mini-vqa")}
    expected = {i for i in mine if mine[i]["score"] != theirs[i]["score"]}
    assert expected and len(expected) < len(mine)  # the blind model differs on some items, not all
    items = group_items(data, "mini-llava / mini-vqa")
    assert {it["id"] for it in items if it.get("ch")} == expected
    for it in items:
        assert it["k"]["o"] == theirs[it["id"]]["generation"] and it["k"]["s"] == theirs[it["id"]]["score"]
        assert it.get("d", 0) == pytest.approx(mine[it["id"]]["score"] - theirs[it["id"]]["score"])
    summary = next(g for g in ctx["groups"] if g["task"] == "mini-vqa")["compare"]
    better = sum(mine[i]["score"] > theirs[i]["score"] for i in expected)
    assert (summary["model"], summary["better"], summary["worse"], summary["same"]) == (
        "mini-llava-blind", better, len(expected) - better, len(mine) - len(expected))
    # the other tasks have no partner: said on the page, no item marked changed
    assert all("k" not in it for it in group_items(data, "mini-llava / mini-mc"))
    assert any("mini-mc: not compared" in n for n in ctx["compare_notes"])


class _Rec:
    def __init__(self, model: str, task: str) -> None:
        self.model, self.task = model, task


def test_compare_pairs_by_name_else_the_single_model_of_each_run():
    mine = [_Rec("base", "t1"), _Rec("base", "t2"), _Rec("x", "t3"), _Rec("y", "t3")]
    others = [_Rec("tuned", "t1"), _Rec("base", "t2"), _Rec("tuned", "t2"), _Rec("z", "t3"), _Rec("new", "t4")]
    partners, notes = compare_pairs(mine, others)  # type: ignore[arg-type]
    assert [None if p is None else (p.model, p.task) for p in partners] == [
        ("tuned", "t1"), ("base", "t2"), None, None]
    assert any(n.startswith("x / t3: not compared") for n in notes)
    assert any(n.startswith("new / t4: only in the other run") for n in notes)
    assert any(n.startswith("tuned / t2: only in the other run") for n in notes)


def test_same_run_compared_with_itself_has_nothing_changed(runs):
    data = page_data(to_html(build_report(runs["b"], compare=runs["b"], resamples=50)))
    assert data["items"] and all("k" in it and not it.get("ch") for it in data["items"])


def test_bad_run_exits_2_with_one_line(cli, tmp_path, runs):
    args = ["--output", str(tmp_path / "r.html"), "--output-dir", str(tmp_path), "--store", str(tmp_path / "s.sqlite")]
    code, out, err = cli("report", "no-such-run", *args)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "'no-such-run'" in err and "--output-dir" in err
    code, _, err = cli("report", str(runs["b"]), "--compare", "missing-too", *args)
    assert code == 2 and "'missing-too'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()
    # a run id under --output-dir is found
    code, _, err = cli("report", runs["b"].name, *args[:2], "--output-dir", str(runs["b"].parent), "--resamples", "20")
    assert code == 0 and (tmp_path / "r.html").is_file() and "wrote" in err


def test_markup_in_model_output_is_escaped(runs, tmp_path):
    path = write_report(tmp_path / "evil.html", runs["evil"])
    html = path.read_text(encoding="utf-8")
    assert EVIL_SCRIPT not in html and EVIL_IMG not in html and "window.pwned=1</script>" not in html
    assert "\\u003c/script\\u003e\\u003cscript\\u003ewindow.pwned=1\\u003c/script\\u003e" in html
    assert html.count("<script") == 2  # the data block and the page's own script, nothing else
    items = {it["id"]: it for it in page_data(html)["items"]}
    assert items["evil-1"]["o"] == EVIL_SCRIPT and items["evil-2"]["o"] == EVIL_IMG + " and " + EVIL_SCRIPT


def test_failed_items_show_their_error_and_media_come_from_the_data(runs):
    ctx = build_report(runs["evil"], resamples=50)
    data = page_data(to_html(ctx))
    rows = {r["id"]: r for r in samples(runs["evil"], "evil-vlm", "tv")}
    items = {it["id"]: it for it in data["items"]}
    assert [i for i, it in items.items() if it.get("f")] == ["broken"]
    assert items["broken"]["f"] == rows["broken"]["error"] and "broken.png" in items["broken"]["f"]
    assert ctx["groups"][0]["failed"] == ctx["groups"][0]["n_failed"] == 1
    assert {i for i, it in items.items() if it.get("w")} == {"evil-1", "evil-2", "broken"}
    assert items["c0"]["o"] == "red" and items["c0"]["s"] == 1.0
    # each image once: evil-1 shows the same red image as c0; thumbnails decode to the drawn pictures
    assert items["evil-1"]["m"] == items["c0"]["m"] and len(data["media"]) == 4
    assert "m" not in items["broken"] and "unreadable" in data["reasons"][items["broken"]["mx"]]
    from PIL import Image

    uri = data["media"][items["c0"]["m"][0]]
    assert uri.startswith("data:image/png;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")
    assert img.size == (48, 48) and img.getpixel((24, 24))[0] > 200  # the red shape in the middle


def test_audio_is_inline(runs):
    data = page_data(to_html(build_report(runs["speech"], resamples=50)))
    rows = samples(runs["speech"], "pocketsphinx", "mini-speech-wer")
    assert [it["o"] for it in data["items"]] == [r["hypothesis"] for r in rows]
    assert [it["s"] for it in data["items"]] == [r["wer"] for r in rows]
    import mmbench.mini

    recordings = Path(mmbench.mini.__file__).parent / "speech" / "data"  # the shipped FLAC files
    for it in data["items"]:
        uri = data["media"][it["m"][0]]
        flac = next(recordings.rglob(f"{it['id']}.flac"))
        assert uri == "data:audio/flac;base64," + base64.b64encode(flac.read_bytes()).decode("ascii")


def test_without_the_data_the_page_still_builds_and_says_why(runs, tmp_path):
    ctx = build_report(runs["evil"], data_dir=tmp_path / "moved-away", resamples=50)
    data = page_data(to_html(ctx))
    assert not data["media"] and all("m" not in it for it in data["items"])
    note = ctx["groups"][0]["media_note"]
    assert note.startswith("no images or audio: data not found") and "vqa.jsonl" in note and "\n" not in note
    assert data["groups"][0]["note"] == note and note in to_html(ctx)


def test_max_images_caps_the_embedded_media_and_says_so(runs):
    ctx = build_report(runs["a"], max_images=3, resamples=50)
    data = page_data(to_html(ctx))
    assert len(data["media"]) == 3
    capped = [it for it in data["items"] if "mx" in it and "--max-images" in data["reasons"][it["mx"]]]
    assert len(capped) == sum(1 for it in data["items"] if "m" not in it) > 0
    assert any("at most 3" in n for n in ctx["media_notes"])


def test_a_large_run_builds_in_seconds(runs, tmp_path_factory):
    folder = large_run(tmp_path_factory.getbasetemp() / "run-report-runs", runs["b"])
    start = time.perf_counter()
    path = write_report(tmp_path_factory.mktemp("large") / "large.html", folder, resamples=200)
    seconds = time.perf_counter() - start
    size = path.stat().st_size
    print(f"{N_LARGE} items: built in {seconds:.1f} s, {size / 2**20:.1f} MiB")
    data = page_data(path.read_text(encoding="utf-8"))
    assert len(data["items"]) == N_LARGE and data["items"][-1]["id"] == f"syn-{N_LARGE - 1:05d}"
    assert sum(1 for it in data["items"] if it.get("w")) == N_LARGE - len(range(0, N_LARGE, 3))
    assert seconds < 30 and size < 16 * 2**20
