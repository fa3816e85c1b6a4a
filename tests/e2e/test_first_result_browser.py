"""Issue 10 in Chromium at 1280x800, every page, both languages: the first result is on the
screen without scrolling (defect 6), tables read "—" and never "None" (defect 9e) and no
st.table shows a bare 0, 1, 2 row index; Evaluate's error-map legend keeps each item on one line.

Reuses the server, browser and helpers of ``test_browser.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from segdemo import i18n
from test_browser import STEP_TIMEOUT_MS, assert_no_exception, browser, choose_language, server, shots  # noqa: F401
from test_surface_browser import MAIN, VIEWPORT, open_page, settle_long

# Each page's first result (a computed picture, figure or table, not its introduction), as the
# first *displayed* match of a selector in the main area. Home computes nothing: its first
# content is the list of pages.
FIRST_RESULT = {
    "": '[data-testid="stPageLink"]',
    "FCN_Skip_Comparison": '[data-testid="stImage"] img',
    "U-Net": '[data-testid="stImage"] img',
    # the computed table, not the layer editor above it
    "Receptive_Field": '[data-testid="stDataFrame"]:not([class*="st-key-rf_editor"] [data-testid="stDataFrame"])',
    "Bilinear_Upsampling": '.js-plotly-plot',
    "FC_vs_1x1_Conv": '[data-testid="stImage"] img',
    "Depthwise_Separable": '[data-testid="stTable"]',
    "Transfer_Learning": '[data-testid="stDataFrame"]',  # the ImageNet top-5
    "Compare": '[data-testid="stImage"] img',
    "Semantic_vs_Instance": '[data-testid="stImage"] img',
    "Augmentation": '[data-testid="stImage"] img',
    "Distillation": '[data-testid="stTable"]',
}

# The first displayed element's top edge for a selector (null: none displayed).
FIRST_TOP_JS = """(sel) => {
  const main = document.querySelector('[data-testid="stMain"]');
  for (const el of main.querySelectorAll(sel)) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.height > 0) return r.top;
  }
  return null; }"""

# Cells reading "None" (tables, data grids' hidden cells) and st.tables whose first column is 0, 1, 2...
TABLES_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]'); const found = [];
  const cells = main.querySelectorAll('[data-testid="stTable"] td, [data-testid="stTable"] th,'
                                      + ' [data-testid="stDataFrame"] td, [data-testid="stDataFrame"] th');
  for (const c of cells) if (c.textContent.trim() === 'None') found.push('a cell reads None: '
      + (c.closest('table') || c).textContent.slice(0, 60));
  for (const t of main.querySelectorAll('[data-testid="stTable"] table')) {
    const rows = Array.from(t.querySelectorAll('tbody tr'));
    const first = rows.map(r => (r.children[0] || {textContent: ''}).textContent.trim());
    if (rows.length >= 2 && first.every((v, i) => v === String(i)))
      found.push('an st.table shows a 0, 1, 2 index: ' + t.textContent.slice(0, 60));
  }
  return found; }"""


def _pages() -> list[str]:
    from test_surface_browser import _pages as pages

    return [p for p in pages() if p not in ("Segment", "Evaluate")]  # those two: test_surface_browser


def test_the_map_of_first_results_covers_every_page() -> None:
    assert set(_pages()) == set(FIRST_RESULT), "a page without a first result to check, or one too many"


@pytest.mark.slow
def test_first_result_in_view_and_tables_read_clean(server: str, browser, shots: Path) -> None:  # noqa: ANN001, F811
    context = browser.new_context(viewport=VIEWPORT, locale="ko-KR")
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS * 2)
    below: dict[str, str] = {}
    tables: dict[str, list[str]] = {}
    try:
        for lang in ("ko", "en"):
            for name in list(FIRST_RESULT) + ["Segment", "Evaluate"]:
                label = f"{name or 'Home'} ({lang})"
                open_page(page, server, name, lang, layout_ms=800)
                assert_no_exception(page, label)
                found = page.evaluate(TABLES_JS)
                if found:
                    tables[label] = found
                if name not in FIRST_RESULT:
                    continue
                top = page.evaluate(FIRST_TOP_JS, FIRST_RESULT[name])
                if top is None or top >= VIEWPORT["height"]:
                    page.screenshot(path=shots / f"first_result_{name or 'Home'}_{lang}.png")
                    below[label] = "no such result" if top is None else f"top at {top:.0f} px"
    finally:
        context.close()
    assert not below, f"first result not in view at 1280x800 without scrolling: {below}"
    assert not tables, tables


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_error_map_legend_items_are_one_line_each(server: str, browser, lang: str) -> None:  # noqa: ANN001, F811
    """Evaluate's error-map legend (above the picture): every item, swatch, words and count, on one line."""
    context = browser.new_context(viewport=VIEWPORT, locale="ko-KR")
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS * 2)
    try:
        page.goto(f"{server}/Evaluate")
        page.wait_for_selector('[data-testid="stApp"]')
        settle_long(page)
        if lang == "en":
            choose_language(page, "en")
            settle_long(page)
        page.locator(f'{MAIN} [role="tab"]').filter(has_text=i18n.t("eval.tab.errors", lang)).click()
        settle_long(page)
        panel = page.locator(f'{MAIN} [role="tabpanel"]:visible')
        items = panel.locator(".segdemo-legend > span")
        items.first.wait_for()
        heights = items.evaluate_all("els => els.filter(e => e.offsetParent).map(e => [e.innerText,"
                                     " e.getBoundingClientRect().height, parseFloat(getComputedStyle(e).fontSize)])")
        assert len(heights) >= 3, heights  # right/wrong (or TP/FP/FN) and ignored
        for text, height, font in heights:
            assert 0 < height < 1.9 * font, f"legend item {text!r} wraps: {height:.0f} px at {font:.0f} px text"
    finally:
        context.close()
