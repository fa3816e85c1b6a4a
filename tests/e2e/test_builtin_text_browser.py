"""Streamlit's own uploader strings in Korean (issue 10 defect 8), in Chromium at 1280x800:
the button and the size-limit line are drawn from the catalogue, the English ones hidden;
in English Streamlit's own text shows. (What CSS cannot reach is listed in segdemo.ui.builtin_text.)"""

from __future__ import annotations

from segdemo import i18n
from test_browser import assert_no_exception, browser, choose_language, server, settle, wait_until  # noqa: F401

ZONES = '[data-testid="stMain"] [data-testid="stFileUploaderDropzone"]'
TEXTS_JS = """zone => {
  const button = zone.querySelector('[data-testid="stBaseButton-secondary"] [data-testid="stMarkdownContainer"] p');
  const limit = zone.querySelector('[data-testid="stFileUploaderDropzoneInstructions"] span');
  const after = e => getComputedStyle(e, '::after').content;
  return {button: after(button), buttonSize: getComputedStyle(button).fontSize,
          limit: after(limit), limitSize: getComputedStyle(limit).fontSize};
}"""


def test_uploader_texts_follow_the_language(server: str, browser) -> None:  # noqa: ANN001, F811
    """The rules are one style sheet for every page; the Segment page's uploader stands for all."""
    path, n_zones = "/Segment", 1
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="ko-KR")
    page = context.new_page()
    page.set_default_timeout(90_000)
    try:
        page.goto(server + path)
        wait_until(lambda: page.locator(ZONES).count() >= n_zones, "the uploaders")
        settle(page)
        assert_no_exception(page, path)
        zones = page.locator(ZONES)
        for i in range(zones.count()):
            texts = zones.nth(i).evaluate(TEXTS_JS)
            assert texts["button"] == '"' + i18n.t("input.upload_button", "ko") + '"', texts
            assert texts["buttonSize"] == "0px" and texts["limitSize"] == "0px", "the English text is hidden"
            assert i18n.t("input.upload_limit", "ko", mb=200) in texts["limit"], texts
        assert "JPG, PNG" in zones.first.evaluate(TEXTS_JS)["limit"], "the image uploader lists its types"
        choose_language(page, "en")
        settle(page)
        texts = page.locator(ZONES).first.evaluate(TEXTS_JS)
        assert texts["button"] == "none" and texts["buttonSize"] != "0px", "English: Streamlit's own text"
    finally:
        context.close()


def test_camera_button_is_korean_before_and_after_a_photo(server: str, browser) -> None:  # noqa: ANN001, F811
    """Chromium's fake camera: the button reads "take" while the video shows and "clear" once a
    picture is taken — both from the catalogue; the picture still reaches the page."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, permissions=["camera"])
    page = context.new_page()
    page.set_default_timeout(90_000)
    try:
        page.goto(server + "/Segment")
        toggle = page.locator(".st-key-segment_camera_on label").first
        toggle.wait_for()
        settle(page)
        toggle.click()
        button = page.locator('[data-testid="stCameraInputButton"]').first
        button.wait_for()
        after = "e => getComputedStyle(e, '::after').content"
        wait_until(lambda: button.evaluate(after) == f'"{i18n.t("input.camera_take", "ko")}"', "the take button")
        video = page.locator('[data-testid="stCameraInput"] video').first
        wait_until(lambda: video.evaluate("v => v.readyState >= 2 && v.videoWidth > 0"), "the camera stream")
        button.click()
        wait_until(lambda: page.locator('[data-testid="stCameraInput"] img').count() > 0, "the photo")
        assert page.locator('[data-testid="stCameraInputButton"]').first.evaluate(after) == \
            f'"{i18n.t("input.camera_clear", "ko")}"'
        assert_no_exception(page, "camera photo")
    finally:
        context.close()
