"""The leaderboard page in a real browser (headless Chromium driven by Selenium): sorting works, the plots
render, model output containing ``<script>`` shows as text and never runs; a screenshot is kept in
test-artifacts/leaderboard.png.

Needs the Debian packages ``chromium`` and ``chromium-driver`` and the PyPI package ``selenium``; skipped
with a message when they are missing (CI installs them).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_report_leaderboard import DEFINITION, EVIL_MODEL, XSS, build_fixture_store

from mmbench.report.html import to_html
from mmbench.report.leaderboard import build_leaderboard, parse_definition
from mmbench.report.select import open_store

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)
DRIVER = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p and Path(p).exists()), None)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install selenium)")
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("headless Chromium not installed (apt-get install -y chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # A closed network: no background fetches, updates, sync or first-run work; a fresh profile.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1400,2400",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    store_path, _ = build_fixture_store(root)
    store = open_store(store_path)
    try:
        import yaml
        lb = build_leaderboard(parse_definition(yaml.safe_load(DEFINITION), "fixture"), store, resamples=200)
    finally:
        store.close()
    path = root / "fixture.html"
    path.write_text(to_html(lb), encoding="utf-8")
    browser.get(path.as_uri())
    return browser


def _models(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [row.find_elements(By.TAG_NAME, "td")[0].text
            for row in driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")]


def _header(driver, label: str):
    from selenium.webdriver.common.by import By

    return next(th for th in driver.find_elements(By.CSS_SELECTOR, "#leaderboard thead th") if th.text.strip() == label)


def test_clicking_headers_sorts_the_table(page):
    initial = _models(page)
    assert initial[:3] == ["clip-a", "clip-b", "vlm-a"]
    _header(page, "Model").click()
    assert _models(page) == sorted(initial, key=str)  # text: A-Z
    _header(page, "VQA").click()  # numbers: best first, empty cells last
    assert _models(page)[:3] == ["vlm-a", EVIL_MODEL, "vlm-blind"]
    _header(page, "VQA").click()  # again: reversed, empty cells still last
    order = _models(page)
    assert order[:3] == ["vlm-blind", EVIL_MODEL, "vlm-a"] and set(order[3:]) == {"clip-a", "clip-b", "asr-a", "asr-b"}
    assert _header(page, "VQA").get_attribute("aria-sort") == "ascending"
    _header(page, "WER (20 dB)").click()  # lower is better: the best (lowest WER) comes first
    assert _models(page)[:2] == ["asr-a", "asr-b"]


def test_plots_render(page):
    from selenium.webdriver.common.by import By

    images = page.find_elements(By.CSS_SELECTOR, "img.plot")
    assert len(images) == 3
    for img in images:
        width, height, complete = page.execute_script(
            "return [arguments[0].naturalWidth, arguments[0].naturalHeight, arguments[0].complete];", img)
        assert complete and width > 300 and height > 200


def test_script_in_model_output_shows_as_text_and_does_not_run(page):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    for summary in page.find_elements(By.CSS_SELECTOR, "details summary"):
        summary.click()
    cells = [td.text for td in page.find_elements(By.CSS_SELECTOR, "table.samples td")]
    assert XSS in cells  # the model's caption, verbatim, as text
    assert page.execute_script("return typeof window.__pwned;") == "undefined"
    with pytest.raises(NoAlertPresentException):
        page.switch_to.alert.text  # noqa: B018 - raises when no alert was opened
    first_cells = [row.find_elements(By.TAG_NAME, "td")[0] for row in
                   page.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")]
    assert EVIL_MODEL in [c.text for c in first_cells]  # a model name with markup, shown as typed
    assert not page.find_elements(By.CSS_SELECTOR, "#leaderboard b")  # ... and not turned into markup


def test_screenshot_artifact(page):
    ARTIFACTS.mkdir(exist_ok=True)
    height = page.execute_script("return document.body.scrollHeight;")
    page.set_window_size(1400, min(max(int(height) + 100, 800), 8000))
    page.execute_script("window.scrollTo(0, 0);")
    path = ARTIFACTS / "leaderboard.png"
    assert page.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
