"""The legend's class switches are kept per label set: a model switch or a failed load does not reset them."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from segdemo.models import registry, weights

REPO = Path(__file__).resolve().parents[2]
CAT = (REPO / "assets" / "samples" / "cat.jpg").read_bytes()


def _pattern(at: AppTest, label_set: str) -> dict[int, bool]:
    """Class id -> ticked (a reappearing legend's keys carry a generation suffix)."""
    prefix = f"show_{label_set}_"
    return {int(c.key[len(prefix):].split("_")[0]): bool(c.value) for c in at.checkbox
            if c.key and c.key.startswith(prefix)}


def test_toggles_survive_a_model_whose_weights_are_missing(clear_streamlit_caches, monkeypatch) -> None:
    monkeypatch.setenv("SEGDEMO_ALLOW_RANDOM_WEIGHTS", "0")  # a missing file must fail, as in a classroom
    missing = next((e for e in registry.list_models() if e.source == "torchvision" and weights.locate(e) is None), None)
    home = registry.get("lraspp_mobilenet_v2_camvid")
    at = AppTest.from_file(str(REPO / "pages" / "1_Segment.py"), default_timeout=180)
    at.session_state["lang"] = "en"
    at.session_state["arch"], at.session_state["backbone"] = home.architecture, home.backbone
    at.run()
    at.file_uploader(key="segment_uploader").set_value([("cat.jpg", CAT, "image/jpeg")]).run()
    assert not at.exception
    before = _pattern(at, "camvid")
    assert len(before) >= 2, "the legend lists several classes"
    first = next(c for c in at.checkbox if c.key == f"show_camvid_{sorted(before)[0]}")
    (first.uncheck() if first.value else first.check()).run()
    wanted = _pattern(at, "camvid")
    assert wanted != before and any(wanted.values())

    if missing is not None:  # every torchvision file present: the switch still loads another label set
        at.sidebar.selectbox(key="arch").set_value(missing.architecture).run()
        at.sidebar.selectbox(key="backbone").set_value(missing.backbone).run()
        assert not at.exception
        assert not _pattern(at, "camvid"), "no CamVid legend while the other model is chosen"
    at.sidebar.selectbox(key="arch").set_value(home.architecture).run()
    at.sidebar.selectbox(key="backbone").set_value(home.backbone).run()
    assert not at.exception
    assert _pattern(at, "camvid") == wanted, "the switches come back as the user left them"
