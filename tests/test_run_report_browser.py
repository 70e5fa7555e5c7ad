"""The run report page in a real browser (headless Chromium driven by Selenium): the wrong, failed and changed
filters show exactly the right items, the search narrows them, pagination keeps only one page of rows in the
DOM (a 20,000-item run), images render, and model output that is markup shows as text and never runs. A
screenshot is kept in test-artifacts/run_report.png.

Needs chromium, chromium-driver and selenium like test_report_html_browser.py (whose ``browser`` fixture this
uses); skipped with a message when they are missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import test_report_html_browser
from test_run_report import EVIL_IMG, EVIL_SCRIPT, N_LARGE, fixture_runs, large_run, page_data, samples

from mmbench.report.run_report import PAGE_SIZE, write_report

browser = test_report_html_browser.browser  # the shared headless Chromium fixture (skips when it is missing)
ARTIFACTS = test_report_html_browser.ARTIFACTS


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    runs = fixture_runs(tmp_path_factory.getbasetemp() / "run-report-runs")
    root = tmp_path_factory.mktemp("run-report-pages")
    return {"runs": runs,
            "compare": write_report(root / "compare.html", runs["a"], compare=runs["b"], resamples=200),
            "evil": write_report(root / "evil.html", runs["evil"], resamples=200),
            "large": write_report(root / "large.html", large_run(runs["a"].parent.parent, runs["b"]), resamples=200)}


def _open(driver, path: Path):
    driver.get(path.as_uri())
    return driver


def _wait(driver, condition, timeout: float = 10):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition(d))


def _count(driver) -> int:
    return int(driver.find_element("id", "count").get_attribute("data-count"))


def _rows(driver) -> list:
    return driver.find_elements("css selector", "#rows > tr")


def _ids(driver) -> list[str]:
    return [r.find_element("css selector", "td.item .id").text for r in _rows(driver)]


def _group(driver, label: str) -> None:
    from selenium.webdriver.support.ui import Select

    select = Select(driver.find_element("id", "group"))
    select.select_by_visible_text(next(o.text for o in select.options if o.text.startswith(label + " (")))


def _filter(driver, name: str) -> None:
    driver.find_element("css selector", f"button[data-filter='{name}']").click()


def _search(driver, text: str) -> None:
    box = driver.find_element("id", "search")
    box.clear()
    box.send_keys(text)
    _wait(driver, lambda d: d.execute_script("return document.getElementById('search').value") == text)


def test_wrong_and_failed_filters_show_exactly_those_items(browser, pages):
    driver = _open(browser, pages["compare"])
    rows = samples(pages["runs"]["a"], "mini-llava", "mini-vqa")
    _group(driver, "mini-llava / mini-vqa")
    assert _count(driver) == len(rows) == len(_rows(driver))
    _filter(driver, "wrong")
    wrong = [r["id"] for r in rows if r["score"] < 1]
    assert 0 < len(wrong) < len(rows)
    assert _count(driver) == len(wrong) and _ids(driver) == wrong
    _filter(driver, "failed")
    assert _count(driver) == 0 and not _rows(driver)
    driver = _open(browser, pages["evil"])
    _filter(driver, "failed")
    assert _ids(driver) == ["broken"] and "cannot be decoded" in _rows(driver)[0].text


def test_search_narrows_the_rows(browser, pages):
    driver = _open(browser, pages["compare"])
    data = page_data(pages["compare"].read_text(encoding="utf-8"))
    total = _count(driver)
    assert total == len(data["items"])

    def listed(value) -> list:
        return [] if value is None else value if isinstance(value, list) else [value]

    def hit(it: dict) -> bool:
        k = it.get("k", {})
        fields = [it["id"], *listed(it.get("p")), *listed(it.get("o")), *listed(it.get("a")), *listed(it.get("r")),
                  *listed(k.get("o")), *listed(k.get("a"))]
        return "how many" in "\n".join(map(str, fields)).lower()

    expected = sum(map(hit, data["items"]))
    assert 0 < expected < total
    _search(driver, "HOW many")
    _wait(driver, lambda d: _count(d) == expected)
    assert all("how many" in r.text.lower() for r in _rows(driver))
    _search(driver, "no such text anywhere")
    _wait(driver, lambda d: _count(d) == 0)


def test_changed_filter_shows_the_items_whose_score_changed(browser, pages):
    driver = _open(browser, pages["compare"])
    mine = samples(pages["runs"]["a"], "mini-llava", "mini-vqa")
    theirs = {r["id"]: r for r in samples(pages["runs"]["b"], "mini-llava-blind", "mini-vqa")}
    changed = [r["id"] for r in mine if r["score"] != theirs[r["id"]]["score"]]
    _group(driver, "mini-llava / mini-vqa")
    _filter(driver, "changed")
    assert _ids(driver) == changed and _count(driver) == len(changed) > 0
    for row, item_id in zip(_rows(driver), changed):
        cells = row.find_elements("css selector", "td")
        assert cells[6].text.strip() == theirs[item_id]["generation"]  # the other run's output beside this one's
        delta = next(r["score"] for r in mine if r["id"] == item_id) - theirs[item_id]["score"]
        assert float(cells[8].text) == pytest.approx(delta, abs=1e-4)
    driver.execute_script("document.getElementById('items').scrollIntoView()")
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "run_report.png"))


def test_images_render(browser, pages):
    driver = _open(browser, pages["compare"])
    _group(driver, "mini-llava / mini-vqa")
    images = driver.find_elements("css selector", "#rows img.thumb")
    assert len(images) == len(_rows(driver)) > 0
    _wait(driver, lambda d: all(d.execute_script("return arguments[0].complete", i) for i in images))
    assert all(driver.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images)


def test_pagination_keeps_one_page_of_rows_in_the_dom(browser, pages):
    driver = _open(browser, pages["large"])
    _wait(driver, lambda d: len(_rows(d)) == PAGE_SIZE)
    pages_total = -(-N_LARGE // PAGE_SIZE)
    assert _count(driver) == N_LARGE and driver.find_element("id", "pageinfo").text == f"page 1 of {pages_total}"
    assert _ids(driver)[0] == "syn-00000"
    driver.find_element("id", "next").click()
    assert driver.find_element("id", "pageinfo").text == f"page 2 of {pages_total}"
    assert len(_rows(driver)) == PAGE_SIZE and _ids(driver)[0] == f"syn-{PAGE_SIZE:05d}"
    _filter(driver, "wrong")  # 2 of every 3 synthetic items score 0
    assert _count(driver) == N_LARGE - len(range(0, N_LARGE, 3)) and len(_rows(driver)) == PAGE_SIZE
    assert driver.find_element("id", "pageinfo").text.startswith("page 1 of ")


def test_markup_in_model_output_shows_as_text_and_never_runs(browser, pages):
    driver = _open(browser, pages["evil"])
    _search(driver, "pwned")
    _wait(driver, lambda d: _ids(d) == ["evil-1", "evil-2"])
    outputs = [r.find_elements("css selector", "td")[3].find_element("css selector", "pre").text for r in _rows(driver)]
    assert outputs == [EVIL_SCRIPT, EVIL_IMG + " and " + EVIL_SCRIPT]
    assert driver.execute_script("return typeof window.pwned") == "undefined"
    assert driver.execute_script("return document.querySelectorAll('img[src=\"x\"], #rows script').length") == 0
