"""The "Semantic vs instance" page in Chromium (1280x800): both languages, counts, the PQ view.

Reuses the server, browser and screenshot fixtures and the helpers of ``test_browser``
(the server allows random weights, so without the trained instance model the page runs
its random-head stand-in and says so). The PQ value shown for an uploaded pair of
instance-id masks must equal :func:`segdemo.labs.instances.pq_for_instance_maps` on the same
arrays, and nothing in the main area may be wider than it.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segdemo import i18n
from segdemo.labs import instances as inst
from segdemo.labs import instance_views as views
from test_browser import (STEP_TIMEOUT_MS, assert_no_exception, browser, choose_language, server,  # noqa: F401
                          settle, shots, url_name, wait_until)

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "pages" / "11_Semantic_vs_Instance.py"
VIEWPORT = {"width": 1280, "height": 800}

# Elements whose right edge must stay inside the main block (a tolerance of 1 px for rounding).
OVERFLOW_JS = """() => {
  const main = document.querySelector('[data-testid="stMainBlockContainer"]')
            || document.querySelector('[data-testid="stMain"]');
  const limit = main.getBoundingClientRect().right + 1;
  const wide = [];
  for (const el of main.querySelectorAll('img, canvas, svg.main-svg, [data-testid="stDataFrame"], '
                                         + '[data-testid="stElementContainer"], .katex-display')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > limit) wide.push(`${el.tagName}.${el.className} right=${r.right} > ${limit}`);
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1)
    wide.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
  return wide;
}"""


def png_file(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def metric_value(page, label: str) -> str:  # noqa: ANN001
    """The value of the metric whose label is exactly ``label``."""
    box = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=re.compile(f"^{re.escape(label)}$")))
    return box.first.locator('[data-testid="stMetricValue"]').inner_text(timeout=5000).strip()


def test_instances_page_in_both_languages_with_the_pq_view(server: str, browser, shots: Path,  # noqa: ANN001, F811
                                                           tmp_path: Path) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    try:
        page.goto(f"{server}/{url_name(PAGE)}")
        page.locator("h1").filter(has_text=i18n.t("page.instances", "ko")).wait_for()
        gt_label = i18n.t("instances.components.gt_label", "ko")
        page.locator('[data-testid="stMetricLabel"]').filter(has_text=gt_label).first.wait_for()
        settle(page)
        assert_no_exception(page, "open the page in Korean")
        page.screenshot(path=shots / "instances_ko.png", full_page=True)

        # Counts: the photo offered first is one whose people touch; its ground-truth count is shown,
        # and the semantic and instance counts are there.
        from segdemo import config

        first = inst.pennfudan_val_touching(config.data_dir())[0]
        assert metric_value(page, gt_label) == i18n.t("instances.count.instance", "ko", n=first.instances)
        assert page.get_by_text(i18n.t("instances.components.gt_summary", "ko", people=first.instances,
                                       regions=first.regions).replace("**", "")).count() == 1
        for key in ("instances.count.semantic_label", "instances.count.instance_label"):
            assert metric_value(page, i18n.t(key, "ko"))
        assert page.evaluate(OVERFLOW_JS) == [], "something is wider than the main area (Korean)"

        choose_language(page, "en")
        page.locator("h1").filter(has_text=i18n.t("page.instances", "en")).wait_for()
        settle(page)
        assert_no_exception(page, "switch to English")
        assert metric_value(page, i18n.t("instances.components.gt_label", "en")) == \
            i18n.t("instances.count.instance", "en", n=first.instances)
        page.screenshot(path=shots / "instances_en.png", full_page=True)
        assert page.evaluate(OVERFLOW_JS) == [], "something is wider than the main area (English)"

        # The PQ view on an uploaded pair: the value shown is the module's.
        gt = np.zeros((120, 160), np.uint8)
        gt[20:100, 20:50] = 1
        gt[20:100, 80:110] = 2
        gt[30:90, 120:150] = 3
        pred = np.zeros_like(gt)
        pred[24:100, 20:50] = 1  # IoU 0.95
        pred[20:100, 92:122] = 2  # IoU 18/42 of a width: no match -> FP and FN
        pred[100:115, 130:155] = 4  # false positive
        expected = views.pq_for_instance_maps(gt, pred).result.per_class[1]
        page.locator("label").filter(has_text=i18n.t("instances.pq.mode.instance_png", "en")).click()
        page.locator('.st-key-inst_pq_gt input[type="file"]').wait_for(state="attached")
        page.locator('.st-key-inst_pq_gt input[type="file"]').set_input_files(str(png_file(tmp_path / "gt.png", gt)))
        page.locator('.st-key-inst_pq_pred input[type="file"]').set_input_files(
            str(png_file(tmp_path / "pred.png", pred)))
        wait_until(lambda: metric_value(page, "PQ") == f"{expected.pq:.3f}", "the PQ value of the uploaded pair")
        settle(page)
        assert_no_exception(page, "PQ of uploaded masks")
        assert metric_value(page, "TP · FP · FN") == f"{expected.tp} · {expected.fp} · {expected.fn}"
        page.locator('[data-testid="stMetric"]').filter(has_text="RQ").first.scroll_into_view_if_needed()
        page.screenshot(path=shots / "instances_pq_en.png", full_page=True)
        assert page.evaluate(OVERFLOW_JS) == [], "something is wider than the main area (PQ view)"

        # A colour PNG as prediction: a message in English, no traceback.
        page.locator('.st-key-inst_pq_pred input[type="file"]').set_input_files(
            str(png_file(tmp_path / "colour.png", np.zeros((120, 160, 3), np.uint8))))
        message = i18n.t("instances.pq.error.not_single_channel", "en", what=i18n.t("instances.what.pred", "en"),
                         mode="RGB")
        page.locator('[data-testid="stAlert"]').filter(has_text=message).first.wait_for()
        settle(page)
        assert_no_exception(page, "colour PNG as instance mask")
    finally:
        context.close()
