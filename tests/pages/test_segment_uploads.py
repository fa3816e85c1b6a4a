"""Segment keeps the user's uploads for the session: bounded, the oldest evicted with a note,
a file removed in the uploader really gone (issue 10 defect 4; the page-change case is in
tests/e2e/test_segment_serving_browser.py)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from streamlit.testing.v1 import AppTest

from segdemo import i18n
from segdemo.ui import inputs

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "pages" / "1_Segment.py"
CAT = (REPO / "assets" / "samples" / "cat.jpg").read_bytes()
COFFEE = (REPO / "assets" / "samples" / "coffee.jpg").read_bytes()


def _crops(n: int) -> list[tuple[str, bytes, str]]:
    """``n`` distinct small photos (crops of the cat at shifted offsets), as uploads."""
    photo = Image.open(io.BytesIO(CAT)).convert("RGB")
    files = []
    for i in range(n):
        buf = io.BytesIO()
        photo.crop((i * 4, 0, i * 4 + 160, 120)).save(buf, format="PNG")
        files.append((f"crop{i}.png", buf.getvalue(), "image/png"))
    return files


def _app() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=180)
    at.session_state["lang"] = "en"
    return at.run()


def test_a_file_removed_in_the_uploader_is_gone_and_the_other_stays(clear_streamlit_caches) -> None:
    at = _app()
    at.file_uploader(key="segment_uploader").set_value([("cat.jpg", CAT, "image/jpeg"),
                                                        ("coffee.jpg", COFFEE, "image/jpeg")]).run()
    assert at.selectbox(key="segment_current").options == ["1. cat.jpg", "2. coffee.jpg"]
    at.file_uploader(key="segment_uploader").set_value([("cat.jpg", CAT, "image/jpeg")]).run()
    assert not at.exception
    assert not [s for s in at.selectbox if s.key == "segment_current"], "one image left: no chooser"
    assert "coffee.jpg" not in " ".join(c.value for c in at.caption)


def test_uploads_beyond_the_bound_evict_the_oldest_with_a_note(clear_streamlit_caches) -> None:
    at = _app()
    files = _crops(inputs.MAX_KEPT_UPLOADS + 2)
    at.file_uploader(key="segment_uploader").set_value(files).run()
    assert not at.exception
    options = at.selectbox(key="segment_current").options
    assert len(options) == inputs.MAX_KEPT_UPLOADS
    assert options[0].endswith("crop2.png"), "the two oldest went first"
    note = i18n.t("serving.upload_evicted", "en", names="crop0.png, crop1.png", n=inputs.MAX_KEPT_UPLOADS)
    assert note in [i.value for i in at.info]
