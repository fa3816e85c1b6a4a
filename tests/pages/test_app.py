"""AppTest runs: every page without exception in both languages, and the Segment page's behaviour."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from segdemo.inference import pipeline
from segdemo.ui import models

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "app.py"] + sorted((REPO / "pages").glob("*.py"))
CAT = (REPO / "assets" / "samples" / "cat.jpg").read_bytes()


def _run(path: Path, lang: str) -> AppTest:
    at = AppTest.from_file(str(path), default_timeout=180)
    at.session_state["lang"] = lang
    return at.run()


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_page_runs_without_exception(page, lang):
    at = _run(page, lang)
    assert not at.exception, [e.value for e in at.exception]


def test_segment_upload_then_settings_never_rerun_the_model(clear_streamlit_caches):
    at = _run(REPO / "pages" / "1_Segment.py", "en")
    at.file_uploader(key="segment_uploader").set_value([("cat.jpg", CAT, "image/jpeg")]).run()
    assert not at.exception
    class_boxes = [c for c in at.checkbox if c.key and c.key.startswith("show_")]
    assert class_boxes, "the legend lists the classes present"
    passes = pipeline.forward_pass_count()
    at.sidebar.slider(key="opacity").set_value(0.9).run()
    at.sidebar.checkbox(key="outline").check().run()
    for view in ("mask", "side_by_side", "confidence", "entropy", "overlay"):
        at.radio(key="segment_view@en").set_value(view).run()
        assert not at.exception, view
    class_boxes[0].uncheck().run()
    assert pipeline.forward_pass_count() == passes, "display settings must not re-run the model"
    at.sidebar.selectbox(key="inference_size@en").set_value(320).run()
    assert pipeline.forward_pass_count() == passes + 1, "a new inference size does need a new run"


def test_bad_uploads_are_reported_and_good_images_stay(clear_streamlit_caches):
    at = _run(REPO / "pages" / "1_Segment.py", "en")
    bomb = __import__("tests.unit.data.test_images", fromlist=["bomb_png"]).bomb_png()
    files = [("cat.jpg", CAT, "image/jpeg"), ("empty.png", b"", "image/png"),
             ("notes.png", b"plain text", "image/png"), ("bomb.png", bomb, "image/png"),
             ("cut.jpg", CAT[: len(CAT) // 3], "image/jpeg")]
    at.sidebar.slider(key="opacity").set_value(0.7).run()
    at.file_uploader(key="segment_uploader").set_value(files).run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    for name in ("empty.png", "notes.png", "bomb.png"):
        assert name in errors
    assert any(c.key and c.key.startswith("show_") for c in at.checkbox), "cat.jpg is still segmented"
    assert at.sidebar.slider(key="opacity").value == 0.7


@pytest.mark.slow
def test_a_panorama_runs_at_a_capped_network_input_and_says_so(clear_streamlit_caches):
    import io

    import numpy as np
    from PIL import Image

    strip = np.tile(np.linspace(0, 255, 6000, dtype=np.uint8)[None, :, None], (20, 1, 3))
    buffer = io.BytesIO()
    Image.fromarray(strip).save(buffer, format="PNG")
    at = _run(REPO / "pages" / "1_Segment.py", "en")
    at.file_uploader(key="segment_uploader").set_value([("strip.png", buffer.getvalue(), "image/png")]).run()
    assert not at.exception
    # the model's own size (a 180-px shorter side) would be 180 x 54000 px: capped, and said
    assert any("megapixels" in info.value for info in at.info)
    assert any(c.key and c.key.startswith("show_") for c in at.checkbox), "the strip is still segmented"


def test_language_switch_changes_the_page():
    at = _run(REPO / "pages" / "1_Segment.py", "ko")
    assert "이미지" in at.info[0].value
    at.sidebar.radio(key="lang").set_value("en").run()
    assert "Upload an image" in at.info[0].value


@pytest.mark.slow
def test_segdemo_imports_without_streamlit():
    modules = [p.relative_to(REPO).with_suffix("").as_posix().replace("/", ".")
               for p in (REPO / "segdemo").rglob("*.py")
               if "ui" not in p.relative_to(REPO / "segdemo").parts and p.name != "__main__.py"]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "assert 'streamlit' not in sys.modules, 'streamlit imported'\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_model_cache_keys_on_real_identity_and_is_bounded(clear_streamlit_caches):
    a = models._cached_model("lraspp_mobilenet_v3_large", "cpu", False, "random")
    assert models._cached_model("lraspp_mobilenet_v3_large", "cpu", False, "random") is a
    b = models._cached_model("deeplabv3_mobilenet_v3_large", "cpu", False, "random")
    assert b is not a and (a.entry_name, b.entry_name) == ("lraspp_mobilenet_v3_large",
                                                           "deeplabv3_mobilenet_v3_large")
    # Same name, other weights file: a different cache entry, never the stale model.
    assert models._cached_model("lraspp_mobilenet_v3_large", "cpu", False, "/w/x.pth:1:2") is not a
    for identity in ("k1", "k2", "k3"):
        models._cached_model("lraspp_mobilenet_v3_large", "cpu", False, identity)
    assert models._cached_model("lraspp_mobilenet_v3_large", "cpu", False, "random") is not a, \
        f"the cache holds at most {models.MAX_CACHED_MODELS} models"


def test_several_images_choose_and_show_all(clear_streamlit_caches):
    coffee = (REPO / "assets" / "samples" / "coffee.jpg").read_bytes()
    at = _run(REPO / "pages" / "1_Segment.py", "en")
    at.file_uploader(key="segment_uploader").set_value(
        [("cat.jpg", CAT, "image/jpeg"), ("coffee.jpg", coffee, "image/jpeg")]).run()
    assert at.selectbox(key="segment_current").options == ["1. cat.jpg", "2. coffee.jpg"]
    passes = pipeline.forward_pass_count()
    at.toggle(key="segment_show_all").set_value(True).run()
    assert not at.exception
    assert pipeline.forward_pass_count() == passes + 1, "only the second image was new"
    at.selectbox(key="segment_current").set_value("2. coffee.jpg").run()
    assert pipeline.forward_pass_count() == passes + 1, "its prediction is reused"


def test_a_lab_trained_model_is_offered_on_segment_in_its_own_session_only(tmp_path: Path) -> None:
    """The transfer-learning lab's result is a user entry: listed where its session says so, nowhere else."""
    from safetensors.torch import save_file

    from segdemo.models import registry
    from segdemo.training import live
    from segdemo.training.recipes import RECIPES, build

    weights = tmp_path / "live_run_7.safetensors"
    save_file({k: v.contiguous() for k, v in build(RECIPES[live.LIVE_ARCHITECTURE]).state_dict().items()},
              str(weights))
    run = live.LiveRun(run_id=7, owner="session-a", config=live.LiveRunConfig(), status="done",
                       history=[{"epoch": 1, "loss": 1.0, "val_miou": 0.3, "seconds": 5.0}], weights_path=weights)
    entry = live.register_live_model(run, "my run 7 (frozen backbone, 50 images)")
    try:

        mine = AppTest.from_file(str(REPO / "pages" / "1_Segment.py"), default_timeout=120)
        mine.session_state["lang"] = "en"
        mine.session_state["own_models"] = [entry.name]
        mine.session_state["arch"], mine.session_state["backbone"] = entry.architecture, entry.backbone
        mine.run()
        assert not mine.exception, [e.value for e in mine.exception]
        assert entry.backbone in mine.selectbox(key="backbone").options
        assert mine.selectbox(key="backbone").value == entry.backbone

        other = AppTest.from_file(str(REPO / "pages" / "1_Segment.py"), default_timeout=120)
        other.session_state["lang"] = "en"
        other.session_state["arch"] = entry.architecture
        other.run()
        assert not other.exception, [e.value for e in other.exception]
        assert entry.backbone not in other.selectbox(key="backbone").options
    finally:  # the registry is process-wide: leave it as other tests expect
        registry.unregister(entry.name)
