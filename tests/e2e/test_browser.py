"""Real-browser tests: Debian's Chromium, driven by Playwright, against ``streamlit run app.py``.

The server runs on 127.0.0.1 on a free port with random weights allowed (no
network). The tests upload an image, see the overlay, hide a class, switch the
language and upload a corrupt file on the Segment page, then open every page
in both languages. Any Streamlit exception box fails the step it appears in.

Screenshots go to a temporary folder (or ``$SEGDEMO_SCREENSHOT_DIR``).
Skipped only when ``/usr/bin/chromium`` is missing (never ``playwright install``).
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from segdemo import i18n
from segdemo.data.images import ImageError, decode_image

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
CAT = REPO / "assets" / "samples" / "cat.jpg"
EXCEPTION = '[data-testid="stException"]'
STATUS = '[data-testid="stStatusWidget"]'
UPLOAD_INPUT = '.st-key-segment_uploader input[type="file"]'
OVERLAY_IMAGE = '[data-testid="stMain"] img[data-testid="segdemo-result-image"]'
CLASS_CHECKBOX = '[class*="st-key-show_"]'
HANGUL = re.compile("[\uac00-\ud7a3]")
STEP_TIMEOUT_MS = 90_000  # a cold model build on a busy 2-core machine can take a while

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not installed")


# ---------------------------------------------------------------- fixtures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run app.py`` on a free local port; yields its base URL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("streamlit") / "server.log"
    env = dict(os.environ, SEGDEMO_ALLOW_RANDOM_WEIGHTS="1", PYTHONUNBUFFERED="1")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port),
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not become healthy in 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-dev-shm-usage",
                                    # a fake camera, granted without a prompt (the camera test)
                                    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])
        yield b
        b.close()


@pytest.fixture
def page(browser):  # noqa: ANN001 - playwright types
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="ko-KR")
    pg = context.new_page()
    pg.set_default_timeout(STEP_TIMEOUT_MS)
    yield pg
    context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go."""
    folder = os.environ.get("SEGDEMO_SCREENSHOT_DIR")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------- helpers


def settle(page, quiet_s: float = 0.5) -> None:  # noqa: ANN001
    """Wait until no script run is in progress (status widget absent for ``quiet_s``)."""
    deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
    quiet_since = None
    while time.monotonic() < deadline:
        busy = page.locator(STATUS).count() > 0 or page.locator('[data-stale="true"]').count() > 0
        now = time.monotonic()
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= quiet_s:
            return
        time.sleep(0.1)
    raise AssertionError("the app kept running for more than the step timeout")


def assert_no_exception(page, step: str) -> None:  # noqa: ANN001
    boxes = page.locator(EXCEPTION)
    if boxes.count():
        pytest.fail(f"Streamlit exception at step '{step}':\n" + "\n---\n".join(boxes.all_inner_texts())[:4000])


def sidebar_link(page, url_name: str):  # noqa: ANN001, ANN201
    """The sidebar link to a page (relative or absolute href, as Streamlit renders either)."""
    sb = '[data-testid="stSidebar"]'
    return page.locator(f'{sb} a[href="{url_name}"], {sb} a[href$="/{url_name}"]').first


def choose_language(page, lang: str) -> None:  # noqa: ANN001
    """Click the sidebar language radio option for ``lang``."""
    page.locator(".st-key-lang label").filter(has_text=i18n.LANGUAGES[lang]).click()


def overlay_image(page):  # noqa: ANN001, ANN201
    """The Segment result picture (segdemo's click component; a rerun may briefly show two)."""
    images = page.locator(OVERLAY_IMAGE)
    shown = [i for i in range(images.count()) if (images.nth(i).bounding_box() or {}).get("height", 0) > 0]
    assert len(shown) == 1, f"expected one displayed result picture, found {len(shown)}"
    return images.nth(shown[0])


def overlay_src(page) -> str:  # noqa: ANN001
    """The URL of the picture the result component displays (a served media file, not inline data)."""
    src = overlay_image(page).get_attribute("src", timeout=5000)
    assert src and src.startswith("/media/"), "the result is a served media file"
    return src


def overlay_pixels(page) -> np.ndarray:  # noqa: ANN001
    """The RGB pixels the result component displays (fetched from its media URL)."""
    base = page.url.split("/", 3)
    response = page.request.get(f"{base[0]}//{base[2]}{overlay_src(page)}")
    assert response.ok, f"media file answered {response.status}"
    return np.asarray(Image.open(io.BytesIO(response.body())).convert("RGB"))


def timing_numbers(page) -> list[str]:  # noqa: ANN001
    """The numbers of the timing caption (same numbers = the cached prediction, no model run), sorted:
    the device part names threads and cores in another order in Korean ("코어 2개 중 스레드 1개")."""
    caption = page.locator('[data-testid="stCaptionContainer"]').filter(has_text=re.compile(r"\d+ ms")).first
    return sorted(re.findall(r"\d+", caption.inner_text()))


def wait_until(predicate, what: str, timeout_s: float = STEP_TIMEOUT_MS / 1000) -> None:  # noqa: ANN001
    """Poll ``predicate``; errors while the page re-renders count as 'not yet'."""
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (PlaywrightError, AssertionError):
            pass
        time.sleep(0.15)
    raise AssertionError(f"timed out waiting for: {what}")


def url_name(page_file: Path) -> str:
    """The URL path Streamlit gives a file in pages/ (the same function Streamlit uses)."""
    from streamlit.source_util import page_icon_and_name

    return page_icon_and_name(page_file)[1]


# ---------------------------------------------------------------- tests


def test_segment_page_in_a_real_browser(server: str, page, shots: Path, tmp_path: Path) -> None:  # noqa: ANN001
    ko, en = "ko", "en"

    # Home page, then the Segment page through the sidebar navigation.
    page.goto(server)
    sidebar_link(page, "Segment").wait_for()
    settle(page)
    assert_no_exception(page, "home")
    page.screenshot(path=shots / "01_home.png")
    sidebar_link(page, "Segment").click()
    page.locator(UPLOAD_INPUT).wait_for(state="attached")
    page.locator("h1").filter(has_text=i18n.t("page.segment", ko)).wait_for()
    settle(page)
    assert_no_exception(page, "open Segment")

    # Upload a photo: the model runs and the overlay component shows the result.
    page.locator(UPLOAD_INPUT).set_input_files(str(CAT))
    page.locator(CLASS_CHECKBOX).first.wait_for()
    wait_until(lambda: overlay_src(page), "the overlay image is displayed")
    settle(page)
    assert_no_exception(page, "upload cat.jpg")
    page.screenshot(path=shots / "02_segment_uploaded.png", full_page=True)
    photo = decode_image(CAT.read_bytes(), CAT.name).rgb
    before = overlay_pixels(page)
    assert before.shape == photo.shape, "the overlay is shown at the photo's size (no resize below 960 px)"
    timings = timing_numbers(page)

    # Hide the first visible class: the overlay changes towards the bare photo, the model does not re-run.
    boxes = page.locator(f"{CLASS_CHECKBOX} input[type=checkbox]")
    visible = [i for i in range(boxes.count()) if boxes.nth(i).is_checked()]
    assert visible, "at least one class is shown over the image"
    target = page.locator(CLASS_CHECKBOX).nth(visible[0])
    src_before = overlay_src(page)
    target.locator("label").click()
    wait_until(lambda: not target.locator("input[type=checkbox]").is_checked(), "the class checkbox unticks")
    wait_until(lambda: overlay_src(page) != src_before, "the overlay image changes")
    settle(page)
    assert_no_exception(page, "hide a class")
    page.screenshot(path=shots / "03_class_hidden.png", full_page=True)
    after = overlay_pixels(page)
    src_hidden = overlay_src(page)
    distance_before = np.abs(before.astype(int) - photo).mean()
    distance_after = np.abs(after.astype(int) - photo).mean()
    assert distance_after < distance_before, "hiding a class uncovers the photo there"
    if len(visible) == 1:  # nothing is shown any more: exactly the photo
        np.testing.assert_array_equal(after, photo)
    assert timing_numbers(page) == timings, "hiding a class must not re-run the model"

    # Switch the language: known strings change, the hidden class stays hidden, no model run.
    assert page.locator("h1").filter(has_text=i18n.t("page.segment", ko)).count() == 1
    choose_language(page, en)
    page.locator("h1").filter(has_text=i18n.t("page.segment", en)).wait_for()
    page.get_by_text(i18n.t("segment.classes", en)).first.wait_for()
    settle(page)
    assert_no_exception(page, "switch to English")
    assert page.locator("h1").filter(has_text=i18n.t("page.segment", ko)).count() == 0
    assert not page.locator(f"{CLASS_CHECKBOX} input[type=checkbox]").nth(visible[0]).is_checked()
    assert timing_numbers(page) == timings, "switching the language must not re-run the model"
    page.screenshot(path=shots / "04_english.png", full_page=True)

    # A corrupt file: a clear message in the page; the good image and its result stay.
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(CAT.read_bytes()[: CAT.stat().st_size // 3])
    with pytest.raises(ImageError) as err:
        decode_image(broken.read_bytes(), broken.name)
    expected = i18n.t(err.value.key, en, **err.value.values)
    page.locator(UPLOAD_INPUT).set_input_files(str(broken))  # added next to cat.jpg, as a user would
    alert = page.locator('[data-testid="stAlert"]').filter(has_text="broken.jpg")
    alert.first.wait_for()
    settle(page)
    assert_no_exception(page, "upload a corrupt file")
    page.screenshot(path=shots / "05_corrupt_upload.png", full_page=True)
    assert expected in alert.first.inner_text()
    assert overlay_src(page) == src_hidden, "the good image and its view are still shown"
    assert page.locator(".st-key-segment_uploader").get_by_text("cat.jpg").count() == 1
    assert timing_numbers(page) == timings, "the good image's prediction is reused"


UI_AREAS = ('[data-testid="stMain"]', '[data-testid="stSidebarUserContent"]')


def korean_text_in_english_ui(page) -> list[str]:  # noqa: ANN001
    """Hangul in the English UI (text and selectbox values), except the language switch's labels."""
    allowed = {i18n.t("sidebar.language", "en"), i18n.LANGUAGES["ko"]}
    text = "\n".join(page.locator(area).inner_text() for area in UI_AREAS)
    values = [box.input_value() for area in UI_AREAS
              for box in page.locator(f'{area} input[role="combobox"]').all()]
    for label in allowed:
        text = text.replace(label, "")
    return [line.strip() for line in text.splitlines() + values if HANGUL.search(line)]


def radio_choices(page) -> list[int | None]:  # noqa: ANN001
    """For each radio group in the main area, the position of the chosen option (None: nothing chosen)."""
    choices = []
    for group in page.locator('[data-testid="stMain"] [data-testid="stRadio"]').all():
        options = group.locator("input[type=radio]")
        checked = [i for i in range(options.count()) if options.nth(i).is_checked()]
        choices.append(checked[0] if checked else None)
    return choices


@dataclass
class PageVisit:
    """What one page showed when opened in Korean and switched to English."""

    stem: str
    exceptions: dict[str, str] = field(default_factory=dict)  # language -> exception text
    switch_problems: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def page_tour(server: str, browser, shots: Path) -> list[PageVisit]:  # noqa: ANN001
    """Open app.py and every file in pages/ (whatever exists now) in Korean, then switch to English.

    Each page is opened in a fresh session; results are recorded rather than asserted
    here so one broken page does not hide the state of the others.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    targets = [("home", "")] + [(p.stem, url_name(p)) for p in sorted((REPO / "pages").glob("*.py"))]
    english_index = list(i18n.LANGUAGES).index("en")
    visits = []
    try:
        for stem, path in targets:
            visit = PageVisit(stem)
            visits.append(visit)
            page.goto(f"{server}/{path}")
            page.locator('[data-testid="stSidebar"] .st-key-lang').wait_for()
            settle(page)
            if page.locator(EXCEPTION).count():
                visit.exceptions["ko"] = "\n---\n".join(page.locator(EXCEPTION).all_inner_texts())[:3000]
                page.screenshot(path=shots / f"page_{stem}_ko_exception.png", full_page=True)
                continue
            radios_ko = radio_choices(page)
            choose_language(page, "en")
            wait_until(lambda: page.locator(".st-key-lang input[type=radio]").nth(english_index).is_checked(),
                       "English selected")
            settle(page)
            page.screenshot(path=shots / f"page_{stem}_en.png", full_page=True)
            if page.locator(EXCEPTION).count():
                visit.exceptions["en"] = "\n---\n".join(page.locator(EXCEPTION).all_inner_texts())[:3000]
                continue
            visit.switch_problems += [f"Korean text in the English UI: {line!r}"
                                      for line in korean_text_in_english_ui(page)]
            radios_en = radio_choices(page)
            if len(radios_en) == len(radios_ko):
                visit.switch_problems += [f"radio group {i}: option {a} became {b} on switching to English"
                                          for i, (a, b) in enumerate(zip(radios_ko, radios_en)) if a != b]
    finally:
        context.close()
    return visits


def test_every_page_opens_without_exception_in_both_languages(page_tour: list[PageVisit]) -> None:
    assert len(page_tour) == 1 + len(list((REPO / "pages").glob("*.py")))
    failures = {v.stem: v.exceptions for v in page_tour if v.exceptions}
    assert not failures, f"Streamlit exceptions: {failures}"


def test_language_switch_keeps_choices_and_translates_everything(page_tour: list[PageVisit]) -> None:
    """Switching to English leaves no Korean text and keeps every radio choice."""
    problems = {v.stem: v.switch_problems for v in page_tour if v.switch_problems}
    assert not problems, f"language switch problems: {problems}"


def plotly_points(page, index: int) -> list[int]:  # noqa: ANN001
    """Points per trace of the ``index``-th plotly chart on the page."""
    return page.evaluate(
        "(i) => { const p = document.querySelectorAll('.js-plotly-plot')[i];"
        " return p && p.data ? p.data.map(t => (t.x || []).length) : []; }", index)


def test_transfer_learning_lab_trains_live_and_stops(server: str, browser, shots: Path) -> None:  # noqa: ANN001
    from segdemo import config

    if not (config.data_dir() / "camvid" / "train").is_dir():
        pytest.skip("CamVid is not in the data directory")
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="ko-KR")
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    try:
        page.goto(f"{server}/Transfer_Learning")
        page.locator("h1").filter(has_text=i18n.t("page.transfer", "ko")).wait_for()
        settle(page)
        assert_no_exception(page, "open the transfer-learning page")
        # the top-5 (a data grid: its cells are hidden DOM) comes with the backbone's first run,
        # slower on a busy machine: poll for it
        wait_until(lambda: page.get_by_text("Egyptian cat").count() >= 1,
                   "the backbone's ImageNet top-5 for the cat", timeout_s=2 * STEP_TIMEOUT_MS / 1000)
        choose_language(page, "en")
        page.get_by_role("tab", name=i18n.t("tl.tab.train", "en")).click()
        settle(page)
        # more epochs than the run will get through before Stop (the slider follows arrow keys)
        slider = page.locator('.st-key-tl_epochs input[type="range"]')
        slider.focus()
        for _ in range(7):
            page.keyboard.press("ArrowRight")
        settle(page)
        wait_until(lambda: slider.input_value() == "10", "ten epochs chosen")
        page.get_by_role("button", name=i18n.t("tl.start", "en")).click()
        # the lab's own Stop button (Streamlit's header has one too while a script runs)
        stop_button = page.locator(".st-key-tl_stop button")
        stop_button.wait_for()
        assert_no_exception(page, "start a frozen-backbone run")
        # the val-mIoU curve (first chart) grows epoch by epoch while the page stays live
        wait_until(lambda: max(plotly_points(page, 0) or [0]) >= 1, "the first epoch's point", 180)
        wait_until(lambda: max(plotly_points(page, 0) or [0]) >= 2, "the curve grows", 180)
        page.screenshot(path=shots / "20_transfer_running.png")
        stop_button.click()
        stopped = i18n.t("tl.stopped", "en", epochs=0, seconds=0, miou=0).split(" ")[0]
        page.locator('[data-testid="stAlert"]').filter(has_text=stopped).first.wait_for(timeout=120_000)
        settle(page)
        assert_no_exception(page, "stop the run")
        points = max(plotly_points(page, 0))
        assert 2 <= points < 10, "the run ended early, at the Stop button"
        page.get_by_role("button", name=i18n.t("tl.use_on_segment", "en")).wait_for()
        page.screenshot(path=shots / "21_transfer_stopped.png")
        width = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollWidth"
                              " - document.querySelector('[data-testid=\"stMain\"]').clientWidth")
        assert width <= 1, "nothing in the main area is wider than it at 1280x800"
    finally:
        context.close()
