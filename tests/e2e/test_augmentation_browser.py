"""The Data augmentation page in Chromium at 1280x800, in Korean and English: it opens, a random
draw changes the augmented picture, CutMix and MixUp show their shares / loss, and nothing is
wider than the main area.

Reuses the server, browser and helpers of ``test_browser.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from segdemo import config, i18n
from test_browser import (STEP_TIMEOUT_MS, assert_no_exception, browser, choose_language, server,  # noqa: F401
                          settle, shots, wait_until)
from test_compare_browser import overflow_px, widest_image_overflow

MAIN = '[data-testid="stMain"]'


def image_sources(page) -> list[str]:  # noqa: ANN001
    return page.eval_on_selector_all(f'{MAIN} [data-testid="stImage"] img', "els => els.map(e => e.src)")


def fits(page, what: str) -> None:  # noqa: ANN001
    assert overflow_px(page) <= 1 and widest_image_overflow(page) <= 1, f"nothing wider than the main area ({what})"


def choose_op(page, lang: str, op: str) -> None:  # noqa: ANN001
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.locator('[class*="st-key-aug_op"] [data-testid="stSelectbox"]')
    option = page.get_by_role("option", name=i18n.t(f"aug.op.{op}", lang), exact=True)
    for _ in range(4):  # the list may close again when a rerun redraws the box just after the click
        box.get_by_role("combobox").click()
        try:
            option.wait_for(timeout=5000)
            option.click()
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            settle(page)
    else:
        pytest.fail(f"could not choose {op} in the augmentation list")
    settle(page)


@pytest.mark.browser
@pytest.mark.data
def test_augmentation_page_random_draw_and_mixing_in_both_languages(server: str, browser, shots: Path) -> None:  # noqa: ANN001, F811
    if not (config.data_dir() / "camvid" / "train").is_dir():
        pytest.skip("CamVid is not in the data directory")
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="ko-KR")
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS * 2)
    try:
        for lang in ("ko", "en"):
            if lang == "ko":
                page.goto(f"{server}/Augmentation")
            else:
                choose_language(page, "en")
            page.locator("h1").filter(has_text=i18n.t("page.augmentation", lang)).wait_for()
            page.locator(f'{MAIN} [data-testid="stImage"] img').nth(3).wait_for()
            settle(page, quiet_s=1.0)
            assert_no_exception(page, f"open ({lang})")
            fits(page, f"open {lang}")
            page.screenshot(path=shots / f"augmentation_{lang}.png", full_page=False)

            before = image_sources(page)
            page.get_by_role("button", name=i18n.t("aug.draw", lang)).click()
            wait_until(lambda: image_sources(page)[2:4] != before[2:4], "a random draw changes the picture")
            settle(page)
            assert_no_exception(page, f"random draw ({lang})")
            after = image_sources(page)
            assert after[:2] == before[:2], "the original image and labels stay"
            fits(page, f"random draw {lang}")

            choose_op(page, lang, "cutmix")
            page.get_by_text(i18n.t("aug.cutmix.share_a", lang)).first.wait_for()
            assert_no_exception(page, f"CutMix ({lang})")
            fits(page, f"CutMix {lang}")
            page.screenshot(path=shots / f"augmentation_cutmix_{lang}.png", full_page=True)

            choose_op(page, lang, "mixup")
            page.get_by_text(i18n.t("aug.mixup.loss_soft", lang)).first.wait_for()
            assert_no_exception(page, f"MixUp ({lang})")
            fits(page, f"MixUp {lang}")
            page.screenshot(path=shots / f"augmentation_mixup_{lang}.png", full_page=True)
            choose_op(page, lang, "affine")
    finally:
        context.close()
