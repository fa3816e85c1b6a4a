"""Segment at 1280x800 in Chromium: the picture fits its column in every view, a click on a
scaled picture probes the right original pixel, the first result is above the fold, and an
upload survives a page change and a language switch (issue 10, defects 1, 4, 6)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segdemo import i18n
from test_browser import (OVERLAY_IMAGE, STEP_TIMEOUT_MS, UPLOAD_INPUT, assert_no_exception, browser,  # noqa: F401
                          choose_language, overlay_image, overlay_pixels, overlay_src, server, settle, shots,
                          sidebar_link, wait_until)

REPO = Path(__file__).resolve().parents[2]
MAIN = '[data-testid="stMain"]'


def _column_of(page, locator) -> dict:  # noqa: ANN001
    """The bounding box of the Streamlit column that holds ``locator``."""
    box = locator.evaluate_handle(
        "(el) => { let n = el; while (n) { if (n.getRootNode && n.getRootNode().host && !n.parentElement)"
        " { n = n.getRootNode().host; continue; } if (n.getAttribute && n.getAttribute('data-testid') === 'stColumn')"
        " return n; n = n.parentElement; } return null; }")
    return box.as_element().bounding_box()


def _main_overflow(page) -> int:  # noqa: ANN001
    return page.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
                         " return m.scrollWidth - m.clientWidth; }")


@pytest.fixture
def big_photo(tmp_path: Path) -> Path:
    """A 2400x1600 photo (coffee.jpg enlarged): wider than any column, served downscaled."""
    path = tmp_path / "big_coffee.jpg"
    Image.open(REPO / "assets" / "samples" / "coffee.jpg").convert("RGB").resize((2400, 1600)).save(path, quality=92)
    return path


def test_segment_fits_its_column_maps_clicks_and_keeps_uploads(server: str, browser, shots: Path,  # noqa: ANN001
                                                               big_photo: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="ko-KR")
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    try:
        page.goto(f"{server}/Segment")
        page.locator(UPLOAD_INPUT).wait_for(state="attached")
        settle(page)
        page.locator(UPLOAD_INPUT).set_input_files(str(big_photo))
        page.locator(OVERLAY_IMAGE).first.wait_for()
        wait_until(lambda: overlay_src(page), "the result picture is shown")
        settle(page)
        assert_no_exception(page, "upload a 2400x1600 photo")
        page.screenshot(path=shots / "30_segment_1280x800.png")

        # Defect 1 + 6: the picture fits its column and is entirely above the fold.
        img = overlay_image(page)
        box, column = img.bounding_box(), _column_of(page, img)
        assert box["x"] + box["width"] <= column["x"] + column["width"] + 1, "the picture fits its column"
        assert box["y"] + box["height"] <= 800, f"the first result is above the fold (bottom {box['y'] + box['height']})"
        assert _main_overflow(page) <= 1, "nothing in the main area is wider than it"
        served = overlay_pixels(page)
        assert max(served.shape[:2]) <= 960, "served downscaled once, not at 2400 px"

        # A click on the scaled picture probes the original pixel under it.
        fx, fy = 0.75, 0.25
        img.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
        title = page.get_by_text(re.compile(r"\(x=\d+, y=\d+\)"))
        title.first.wait_for()
        x, y = map(int, re.findall(r"x=(\d+), y=(\d+)", title.first.inner_text())[0])
        assert abs(x - 2400 * fx) <= 2400 / box["width"] + 1 and abs(y - 1600 * fy) <= 1600 / box["height"] + 1, \
            f"click at 75%/25% of the shown picture maps to ({x}, {y}) of 2400x1600"
        settle(page)
        assert_no_exception(page, "click the picture")

        # Side by side: both halves inside the column.
        page.locator(f"{MAIN} [data-testid='stRadio'] label").filter(
            has_text=i18n.t("segment.view.side_by_side", "ko")).click()
        wait_until(lambda: overlay_pixels(page).shape[1] > served.shape[1], "the side-by-side picture")
        settle(page)
        img = overlay_image(page)
        box, column = img.bounding_box(), _column_of(page, img)
        assert box["x"] + box["width"] <= column["x"] + column["width"] + 1, "side by side fits its column"
        assert _main_overflow(page) <= 1
        page.screenshot(path=shots / "31_segment_side_by_side.png")
        side_src = overlay_src(page)

        # Defect 4: another page and back, then a language switch: the upload and its result stay.
        page.locator('[data-testid="stSidebar"] a[data-testid="stPageLink-NavLink"]').first.click()  # home
        page.locator("h1").filter(has_text=i18n.t("app.title", "ko")).wait_for()
        settle(page)
        assert page.locator(OVERLAY_IMAGE).count() == 0, "on the home page now"
        sidebar_link(page, "Segment").click()
        page.locator(OVERLAY_IMAGE).first.wait_for()
        settle(page)
        assert_no_exception(page, "back on Segment")
        assert "big_coffee.jpg" in page.locator(MAIN).inner_text(), "the kept upload is named"
        assert overlay_src(page) == side_src, "same image, same view, same served picture (not recomputed)"
        choose_language(page, "en")
        page.locator("h1").filter(has_text=i18n.t("page.segment", "en")).wait_for()
        settle(page)
        page.screenshot(path=shots / "32_segment_kept_en.png")
        assert_no_exception(page, "English")
        wait_until(lambda: overlay_src(page) == side_src, "the same picture in English", 30)
    finally:
        context.close()
