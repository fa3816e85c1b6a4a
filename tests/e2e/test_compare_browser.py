"""The Compare page in Chromium at 1280x800: four shipped models on a CamVid val frame with its
ground truth, in Korean and English; nothing wider than the main area, no exception.

Reuses the server, browser and helpers of ``test_e2e_browser.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from segdemo import config, i18n
from test_browser import (STEP_TIMEOUT_MS, assert_no_exception, browser, choose_language, server,  # noqa: F401
                          settle, shots, wait_until)

MAIN = '[data-testid="stMain"]'


def overflow_px(page) -> int:  # noqa: ANN001
    """How far the main area's content reaches past its width (0: nothing wider)."""
    return page.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
                         " return m.scrollWidth - m.clientWidth; }")


def widest_image_overflow(page) -> float:  # noqa: ANN001
    """Largest distance any image or chart sticks out to the right of the main block (px)."""
    return page.evaluate("""() => {
        const block = document.querySelector('[data-testid="stMainBlockContainer"]') ||
                      document.querySelector('[data-testid="stMain"]');
        const right = block.getBoundingClientRect().right;
        let worst = 0;
        for (const el of block.querySelectorAll('img, canvas, .js-plotly-plot, [data-testid="stDataFrame"]')) {
            const r = el.getBoundingClientRect();
            if (r.width > 0) worst = Math.max(worst, r.right - right);
        }
        return worst; }""")


def test_compare_page_four_models_on_a_camvid_frame_in_both_languages(server: str, browser, shots: Path) -> None:  # noqa: ANN001, F811
    if not (config.data_dir() / "camvid" / "val").is_dir():
        pytest.skip("CamVid is not in the data directory")
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="ko-KR")
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS * 3)  # the first visit measures four models on a busy CPU
    try:
        page.goto(f"{server}/Compare")
        page.locator("h1").filter(has_text=i18n.t("page.compare", "ko")).wait_for()
        page.get_by_text(i18n.t("compare.cost", "ko")).first.wait_for()
        page.locator(".js-plotly-plot").first.wait_for()
        settle(page, quiet_s=1.0)
        assert_no_exception(page, "open Compare (ko)")
        page.screenshot(path=shots / "compare_ko.png", full_page=True)
        chosen = page.locator('.st-key-compare_models_camvid [data-tag]')
        assert chosen.count() >= 4, "four shipped models are compared by default"
        assert page.get_by_text(i18n.t("compare.scores", "ko")).count() == 1
        assert page.get_by_text(i18n.t("compare.error_maps", "ko")).count() == 1, "ground truth: error maps"
        assert overflow_px(page) <= 1 and widest_image_overflow(page) <= 1, "nothing wider than the main area"

        # move the zoom window: only the grid redraws
        slider = page.locator('.st-key-compare_zoom_x input[type="range"]')
        slider.focus()
        before = slider.input_value()
        for _ in range(5):
            page.keyboard.press("ArrowLeft")
        wait_until(lambda: slider.input_value() != before, "the zoom window moves")
        settle(page)
        assert_no_exception(page, "move the zoom window")

        choose_language(page, "en")
        page.locator("h1").filter(has_text=i18n.t("page.compare", "en")).wait_for()
        page.get_by_text(i18n.t("compare.cost", "en")).first.wait_for()
        settle(page, quiet_s=1.0)
        assert_no_exception(page, "switch to English")
        page.screenshot(path=shots / "compare_en.png", full_page=True)
        assert overflow_px(page) <= 1 and widest_image_overflow(page) <= 1, "nothing wider than the main area (en)"
    finally:
        context.close()
