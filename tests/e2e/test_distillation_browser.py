"""The distillation page in Chromium at 1280x800, Korean then English: it opens, the teacher's soft
labels follow a click, a short live run (student + control) starts, draws a curve point and stops at
the lab's Stop button; nothing is wider than the main area.

Reuses the server, browser and helpers of ``test_browser.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from segdemo import config, i18n
from test_browser import (STEP_TIMEOUT_MS, assert_no_exception, browser, choose_language, server,  # noqa: F401
                          settle, shots, wait_until)

CLICK_FRAME = 'iframe[title*="streamlit_image_coordinates"]'


def overflow_px(page) -> int:  # noqa: ANN001
    """How far the main area's content reaches past its width (0: nothing wider)."""
    return page.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
                         " return m.scrollWidth - m.clientWidth; }")


def plotly_points(page, index: int) -> list[int]:  # noqa: ANN001
    """Points per trace of the ``index``-th visible plotly chart."""
    return page.evaluate(
        "(i) => { const ps = [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.offsetParent);"
        " const p = ps[i]; return p && p.data ? p.data.map(t => (t.x || []).length) : []; }", index)


def test_distillation_page_opens_clicks_trains_and_stops(server: str, browser, shots: Path) -> None:  # noqa: ANN001, F811
    if not (config.data_dir() / "camvid" / "train").is_dir():
        pytest.skip("CamVid is not in the data directory")
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="ko-KR")
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS * 2)
    try:
        page.goto(f"{server}/Distillation")
        page.locator("h1").filter(has_text=i18n.t("page.distillation", "ko")).wait_for()
        page.locator('[data-testid="stTable"]').first.wait_for()  # the cards' table (st.table: it wraps)
        settle(page, quiet_s=1.0)
        assert_no_exception(page, "open the distillation page (ko)")
        assert overflow_px(page) <= 1, "nothing wider than the main area (ko, shipped tab)"
        page.screenshot(path=shots / "kd_ko.png")

        # soft labels follow a click on the val frame
        page.get_by_role("tab", name=i18n.t("kd.tab.soft", "ko")).click()
        title = page.get_by_text("(y=135, x=180)")
        title.first.wait_for()
        settle(page)
        frame = page.frame_locator(CLICK_FRAME).first.locator("img")
        box = frame.bounding_box()
        frame.click(position={"x": box["width"] * 0.25, "y": box["height"] * 0.25})
        wait_until(lambda: page.get_by_text("(y=135, x=180)").count() == 0, "the soft labels of the clicked pixel")
        settle(page)
        assert_no_exception(page, "click a pixel")
        assert overflow_px(page) <= 1, "nothing wider than the main area (ko, soft-label tab)"
        page.screenshot(path=shots / "kd_ko_soft.png")

        # English: a short live run starts and stops at the lab's Stop button
        choose_language(page, "en")
        page.locator("h1").filter(has_text=i18n.t("page.distillation", "en")).wait_for()
        settle(page)
        page.get_by_role("tab", name=i18n.t("kd.tab.train", "en")).click()
        page.locator(".st-key-kd_size").click()
        page.get_by_role("option", name="10", exact=True).click()
        settle(page)
        slider = page.locator('.st-key-kd_epochs input[type="range"]')
        slider.focus()
        for _ in range(7):
            page.keyboard.press("ArrowRight")
        wait_until(lambda: slider.input_value() == "10", "ten epochs chosen")
        settle(page)
        page.get_by_role("button", name=i18n.t("kd.start", "en")).click()
        stop_button = page.locator(".st-key-kd_stop button")
        stop_button.wait_for()
        assert_no_exception(page, "start the student and its control")
        wait_until(lambda: max(plotly_points(page, 0) or [0]) >= 1, "the student's first epoch", 480)
        page.screenshot(path=shots / "kd_en_running.png")
        stop_button.click()
        # both runs end: the student at its next step, the queued control at once
        stopped = i18n.t("tl.stopped", "en", epochs=0, seconds=0, miou=0).split(" ")[0]
        wait_until(lambda: page.locator('[data-testid="stAlert"]').filter(has_text=stopped).count() == 2,
                   "the student and its control stopped", 300)
        wait_until(lambda: stop_button.count() == 0, "no Stop button once nothing runs", 60)
        settle(page)
        assert_no_exception(page, "stop the runs")
        assert 1 <= max(plotly_points(page, 0)) < 10, "the run ended early, at the Stop button"
        assert overflow_px(page) <= 1, "nothing wider than the main area (en, live tab)"
        page.screenshot(path=shots / "kd_en_stopped.png")
    finally:
        context.close()
