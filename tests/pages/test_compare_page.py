"""The Compare page in AppTest: four shipped models on a CamVid val frame with its ground truth.

Checks what the page shows against independent calls of the package, and that
zoom, opacity, boundary band and language never run a model again.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segdemo.data import datasets
from segdemo.data.labels import CAMVID
from segdemo.evaluate.scoring import evaluate_pair
from segdemo.inference import cost
from segdemo.inference import pipeline as pipeline
from segdemo.labs import compare
from segdemo.models import registry
from segdemo.models import weights

PAGE = Path(__file__).resolve().parents[2] / "pages" / "10_Compare.py"
DEFAULT = ["fcn32s_camvid", "fcn8s_camvid", "deeplab_slim_camvid", "deeplabv3_mobilenet_v2_camvid"]

pytestmark = pytest.mark.slow


def _no_exception(at) -> None:  # noqa: ANN001
    assert not at.exception, [e.message for e in at.exception]


@pytest.fixture
def at(data_dir: Path):  # noqa: ANN201
    from streamlit.testing.v1 import AppTest

    if not (data_dir / "camvid" / "val").is_dir():
        pytest.skip("CamVid is not in the data directory")
    missing = [n for n in DEFAULT if n not in {e.name for e in registry.list_models()}]
    assert not missing, f"shipped models missing: {missing}"
    return AppTest.from_file(str(PAGE), default_timeout=600)


def test_default_compare_runs_each_model_once_and_shows_true_figures(at) -> None:  # noqa: ANN001
    before = pipeline.forward_pass_count()
    at.run()
    _no_exception(at)
    assert not at.error
    runs_per_cost = 1 + cost.DEFAULT_WARMUP + cost.DEFAULT_REPEATS + 1  # cold, warm-up, timed, memory
    assert pipeline.forward_pass_count() - before == len(DEFAULT) * (1 + runs_per_cost)
    assert at.multiselect(key="compare_models_camvid").value == DEFAULT

    # the frame the page shows, and the models run here directly
    img_path, lbl_path = datasets.camvid_files("val")[0]
    from segdemo.data.images import load_image_file

    rgb = load_image_file(str(img_path)).rgb
    truth = datasets.load_label(lbl_path)
    maps = []
    for name in DEFAULT:
        entry = registry.get(name)
        maps.append(pipeline.predict(weights.load_model(entry), entry, rgb, entry.preprocess.resize_size).labels)
    dis = compare.disagreement(maps, CAMVID, compare.DEFAULT_BAND_PX, truth)
    metrics = [m.value for m in at.metric]
    assert metrics[0] == f"{dis.share:.1%}" and metrics[1] == f"{dis.in_band:.1%}"

    frames = [df.value for df in at.dataframe]
    scores = next(df for df in frames if len(df.columns) == 5 and len(df) == len(DEFAULT))
    for i, labels in enumerate(maps):
        expected = evaluate_pair(labels, truth, CAMVID, CAMVID.ignore_index).scores.summary
        assert scores.iloc[i, 1] == pytest.approx(expected["mIoU"])
        assert scores.iloc[i, 2] == pytest.approx(expected["pixel_accuracy"])
        assert scores.iloc[i, 3] == pytest.approx(expected["mean_boundary_F1"])
        assert scores.iloc[i, 4] == registry.get(DEFAULT[i]).metrics["miou"]
    # the cost tables (st.table, text cells): times with the input size first, then sizes with the published mIoU
    times, sizes = (t.value for t in at.table[-2:])
    assert len(times) == len(DEFAULT) and list(times.iloc[:, 0]) == ["240x180", "240x180", "240x180", "360x270"]
    assert list(sizes.iloc[:, -1]) == [f"{registry.get(n).metrics['miou']:.1%}" for n in DEFAULT]
    agreement = next(df for df in frames if len(df.columns) == 5)
    rows = compare.class_agreement(maps, CAMVID.num_classes)
    assert list(agreement.iloc[:, 2]) == pytest.approx([r.mean_iou for r in rows], nan_ok=True)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [len(t["x"]) for t in spec["data"]] == [len(DEFAULT), len(DEFAULT)]  # published and this-image mIoU


def test_display_changes_never_run_a_model(at) -> None:  # noqa: ANN001
    at.run()
    _no_exception(at)
    count = pipeline.forward_pass_count()
    at.slider(key="compare_zoom").set_value(6.0).run()
    at.slider(key="compare_zoom_x").set_value(20).run()
    at.toggle(key="compare_show_truth").set_value(False).run()
    at.slider(key="opacity").set_value(0.8).run()
    at.checkbox(key="outline").check().run()
    at.slider(key="compare_band").set_value(9).run()
    _no_exception(at)
    assert pipeline.forward_pass_count() == count, "a display option ran a model"
    at.radio(key="lang").set_value("en").run()
    _no_exception(at)
    assert pipeline.forward_pass_count() == count, "switching the language ran a model"
    assert at.title[0].value.startswith("Compare")
    assert at.slider(key="compare_zoom").value == 6.0
    # fewer than two models: a message, no exception
    at.multiselect(key="compare_models_camvid").set_value(["fcn8s_camvid"]).run()
    _no_exception(at)
    assert any("2" in i.value for i in at.info)


def test_voc_label_set_lists_missing_weights_or_offers_models(at, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("SEGDEMO_ALLOW_RANDOM_WEIGHTS", "0")
    at.run()
    at.radio(key="compare_label_set@ko").set_value("voc").run()
    _no_exception(at)
    voc = [e for e in registry.list_models() if e.label_set_key == "voc"]
    missing = [e for e in voc if weights.locate(e) is None]
    if missing:  # offline: every missing model named with where to put its file, none silently dropped
        text = " ".join(e.value for e in at.error)
        assert all(e.display_name in text for e in missing)
    assert any("U-Net" in c.value for c in at.caption), "the U-Net is said to be left out"
