"""The HTML page's template layer: the packaged Jinja2 template with autoescaping, the CSP hash of the script
that is actually embedded, and generated images inlined by the HTML layer (not by the store selection)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from test_report_leaderboard import make_result

from mmbench.report import html
from mmbench.report.leaderboard import Definition, Leaderboard, SampleSet
from mmbench.report.select import ResultRecord


def _png(colour=(200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return buf.getvalue()


def _board(samples: list[SampleSet], **definition) -> Leaderboard:
    d = Definition(name="t", columns=(), **definition)
    settings = {"method": "percentile bootstrap over items", "resamples": 10, "seed": 0, "alpha": 0.05,
                "baseline": None, "significance": ""}
    rows = pd.DataFrame(columns=["model", "average", "items_per_s", "peak_memory_bytes"])
    return Leaderboard(d, [], pd.DataFrame(), rows, pd.DataFrame(), samples, settings, ["a note <b>x</b>"])


def test_the_template_ships_with_the_package():
    folder = Path(html.__file__).parent / "templates"
    assert {"leaderboard.html.jinja", "leaderboard.js", "leaderboard.css"} <= {p.name for p in folder.iterdir()}
    env = html.environment()
    assert env.autoescape is True
    assert env.get_template(html.TEMPLATE).render  # loads through the package loader


def test_csp_names_the_embedded_script_by_its_hash():
    page = html.to_html(_board([]))
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    assert f"script-src 'sha256-{digest}'" in page
    assert "table.sortable" in script and "&#34;" not in script  # included verbatim, not escaped
    assert page.startswith("<!DOCTYPE html>") and page.count("<script>") == 1


def test_everything_from_runs_is_escaped():
    evil = '<img src=x onerror="alert(1)">'
    page = html.to_html(_board([SampleSet(evil, "t<2>", [{"id": "1", evil: evil, "n": [1, "<i>"]}])],
                               title="T & <u>", description="<script>x</script>"))
    assert evil not in page and "<u>" not in page and "<script>x" not in page and "<b>x</b>" not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page and "T &amp; &lt;u&gt;" in page
    assert "[1, &#34;&lt;i&gt;&#34;]" in page  # non-string values as JSON, escaped too


def test_generated_images_are_inlined_by_the_html_layer(tmp_path):
    art = tmp_path / "artifacts"
    art.mkdir()
    (art / "0.png").write_bytes(_png())
    (art / "big.png").write_bytes(b"\x89PNG" + b"0" * (html.MAX_SAMPLE_IMAGE_BYTES + 1))
    (tmp_path / "outside.png").write_bytes(_png((0, 0, 255)))
    samples = [{"id": "a", "image": "0.png"}, {"id": "b", "image": "big.png"}, {"id": "c", "image": "nope.png"},
               {"id": "d", "image": "../outside.png"}, {"id": "e", "image": "0.jpg"},
               {"id": "f", "_image_png_base64": '"><script>alert(1)</script>'}]
    assert [html.sample_image(s, art) is not None for s in samples] == [True, False, False, False, False, False]
    assert html.sample_image(samples[0], None) is None  # no artifacts folder known
    page = html.to_html(_board([SampleSet("gen", "t2i", samples, art)]))
    assert page.count('<img class="sample"') == 1
    assert f'src="data:image/png;base64,{base64.b64encode(_png()).decode("ascii")}"' in page
    assert "<th>output</th>" in page and "<script>alert" not in page  # a forged key is only a column
    plain = html.to_html(_board([SampleSet("gen", "t2i", samples[1:], art)]))
    assert "<th>output</th>" not in plain and 'class="sample"' not in plain


def test_result_records_give_plain_samples_and_their_artifacts_folder(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "samples_t.jsonl").write_text(json.dumps({"id": "a", "image": "0.png"}) + "\n\n"
                                                    + json.dumps({"id": "b", "image": "1.png"}) + "\n")
    (tmp_path / "m" / "artifacts_t").mkdir()
    (tmp_path / "m" / "artifacts_t" / "0.png").write_bytes(_png())
    result = make_result("m", "t", "text-to-image", [], "clip_score")
    result.files = {"samples": "m/samples_t.jsonl", "artifacts": "m/artifacts_t"}
    record = ResultRecord("r", result, [], {}, run_dir=tmp_path)
    assert record.samples(5) == [{"id": "a", "image": "0.png"}, {"id": "b", "image": "1.png"}]  # data only
    assert record.samples(1) == [{"id": "a", "image": "0.png"}]
    assert record.artifacts_dir == tmp_path / "m" / "artifacts_t"
    assert ResultRecord("r", result, [], {}).artifacts_dir is None
