"""AppTest runs of the "Semantic vs instance" page: no exception in either language, counts and
PQ numbers equal to segdemo.labs.instances' (recomputed here), bad uploads give a message.

Without the trained instance model on disk the page runs its random-weight stand-in, allowed
only because the test setup sets SEGDEMO_ALLOW_RANDOM_WEIGHTS; a test checks the page then
says the output is meaningless, and one checks the message when random weights are not allowed.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from segdemo import i18n
from segdemo.labs import instances as inst
from segdemo.labs import instance_views as views
from segdemo.models import instance_registry

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "pages" / "11_Semantic_vs_Instance.py"
TRAINED = inst.DEFAULT_INSTANCE_MODEL in instance_registry.list_instance_cards()



def run(lang: str, **state: object) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=300)
    at.session_state["lang"] = lang
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def metric(at: AppTest, label: str) -> list[str]:
    return [m.value for m in at.metric if m.label == label]


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_page_counts_on_a_touching_photo(lang: str, data_dir: Path) -> None:
    at = run(lang)
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    if not TRAINED:
        assert any(i18n.t("instances.model.random", lang, name=inst.DEFAULT_INSTANCE_MODEL) == w.value
                   for w in at.warning)
    # The first photo offered is one whose people touch; its ground truth counts are shown.
    first = inst.pennfudan_val_touching(data_dir)[0]
    gt_label = i18n.t("instances.components.gt_label", lang)
    assert metric(at, gt_label) == [i18n.t("instances.count.instance", lang, n=first.instances)]
    summary = i18n.t("instances.components.gt_summary", lang, people=first.instances, regions=first.regions)
    assert any(summary == md.value for md in at.markdown)
    # The instance count is the model's detections at the slider's threshold.
    from segdemo.data.pennfudan import load_pennfudan

    loaded = inst.load_instance_model()
    steps = inst.maskrcnn_steps(loaded.model, load_pennfudan(first.name).image)
    kept = inst.kept_instances(steps, 0.5, 0.5)
    label = i18n.t("instances.count.instance_label", lang)
    assert metric(at, label)[0] == i18n.t("instances.count.instance", lang, n=kept.count)
    assert metric(at, i18n.t("instances.count.semantic_label", lang)) == [
        i18n.t("instances.count.semantic", lang, n=1 if kept.count and kept.masks.any() else 0)]


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_model_missing_is_a_message_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """While the weights are not there (a training run still going), the page says so."""
    monkeypatch.setattr(instance_registry, "list_instance_cards", lambda *a, **k: {})
    monkeypatch.setenv("SEGDEMO_ALLOW_RANDOM_WEIGHTS", "0")
    at = run("en", inst_source="upload")
    no_exception(at)
    assert any("is not available yet" in w.value for w in at.warning)


def shifted_pair() -> tuple[np.ndarray, np.ndarray]:
    """Two people as ground truth; the prediction shifts one, drops nothing and adds a false positive."""
    gt = np.zeros((60, 80), np.uint8)
    gt[10:50, 10:25] = 1
    gt[10:50, 40:55] = 2
    pred = np.zeros_like(gt)
    pred[12:50, 10:25] = 1
    pred[10:50, 46:61] = 2
    pred[52:58, 70:78] = 3
    return gt, pred


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_pq_view_of_uploaded_instance_masks(lang: str) -> None:
    gt, pred = shifted_pair()
    at = AppTest.from_file(str(PAGE), default_timeout=300)
    at.session_state["lang"] = lang
    at.session_state["inst_source"] = "upload"
    at.session_state["inst_pq_mode"] = "instance_png"
    at.run()
    at.file_uploader(key="inst_pq_gt").set_value(("gt.png", png(gt), "image/png"))
    at.file_uploader(key="inst_pq_pred").set_value(("pred.png", png(pred), "image/png"))
    at.run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    expected = views.pq_for_instance_maps(gt, pred).result.per_class[1]
    assert metric(at, "PQ") == [f"{expected.pq:.3f}"]
    assert metric(at, "SQ") == [f"{expected.sq:.3f}"]
    assert metric(at, "TP · FP · FN") == [f"{expected.tp} · {expected.fp} · {expected.fn}"]
    # A colour PNG is not an instance-id mask: a message in the session's language.
    at.file_uploader(key="inst_pq_pred").set_value(("rgb.png", png(np.zeros((60, 80, 3), np.uint8)), "image/png"))
    at.run()
    no_exception(at)
    expected_error = i18n.t("instances.pq.error.not_single_channel", lang,
                            what=i18n.t("instances.what.pred", lang), mode="RGB")
    assert [e.value for e in at.error] == [expected_error]


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_coco_model_offline_says_where_to_put_the_file(lang: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's COCO Mask R-CNN without its file and no network: the weights message in the page
    (file name, folder), no traceback, and the PQ section still there."""
    from segdemo.models import weights

    def offline(entry, progress=None, connect_timeout=3.0):
        raise weights.WeightsMissingError(entry, "download.unreachable", host="download.pytorch.org")

    monkeypatch.setenv("SEGDEMO_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("SEGDEMO_ALLOW_RANDOM_WEIGHTS", "0")
    monkeypatch.setattr(weights, "download", offline)
    at = run(lang, inst_model=instance_registry.TORCHVISION_MASKRCNN, inst_source="upload")
    no_exception(at)
    assert any("maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth" in i.value for i in at.info), [i.value for i in at.info]
    assert any(i18n.t("instances.sec.pq", lang) == h.value for h in at.header)


def test_detections_table_without_a_none_kept_note(data_dir: Path) -> None:
    """With detections kept, the table is shown and the "none kept" note is not."""
    at = run("en")
    no_exception(at)
    if not TRAINED:
        pytest.skip("needs the trained instance model")
    none_kept = i18n.t("instances.none_kept", "en", t=0.5)
    assert at.dataframe and not any(none_kept == i.value for i in at.info)


def test_coco_class_names_are_korean_in_the_korean_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every COCO category torchvision's Mask R-CNN can report has a Korean name; a COCO class with
    no VOC counterpart (giraffe) is shown in Korean, one with a VOC class through that class."""
    from types import SimpleNamespace

    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    from segdemo.ui import instances as ui_inst
    from segdemo.ui import state

    categories = MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
    monkeypatch.setattr(state, "current_lang", lambda: "ko")
    shown = ui_inst.display_class_names(SimpleNamespace(categories=categories))
    for coco, name in zip(categories, shown):
        if coco not in ("__background__", "N/A"):
            assert any("\uac00" <= ch <= "\ud7a3" for ch in name), (coco, name)
    assert shown[categories.index("giraffe")] == "기린"
    assert shown[categories.index("tv")] == i18n.class_name("voc", "tvmonitor", "ko")
