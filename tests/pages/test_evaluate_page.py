"""The Evaluate page (AppTest): its numbers against references computed here from the files."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from segdemo import i18n
from segdemo.models import registry
from segdemo.data import samples
from segdemo.models import weights
from segdemo.inference.pipeline import predict
from segdemo.data.labels import VOC

PAGE = Path(__file__).resolve().parents[2] / "pages" / "4_Evaluate.py"
MODEL = "lraspp_mobilenet_v3_large"


def _voc(data_dir):
    voc = data_dir / "voc"
    if not (voc / "SegmentationClass_second_annotator").is_dir():
        pytest.skip("VOC samples absent")
    return voc


def _page(lang: str = "en", **state) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=180)
    at.session_state["lang"] = lang
    # Pin the model: the offline default may become one of segdemo's own CamVid models.
    entry = registry.get(MODEL)
    at.session_state["arch"], at.session_state["backbone"] = entry.architecture, entry.backbone
    for k, v in state.items():
        at.session_state[k] = v
    return at


def _ref_cm(pred: np.ndarray, truth: np.ndarray, n: int = 21) -> np.ndarray:
    """torchvision reference-script counting: truth outside [0, n) is not counted."""
    a = torch.from_numpy(truth.astype(np.int64)).flatten()
    b = torch.from_numpy(pred.astype(np.int64)).flatten()
    k = (a >= 0) & (a < n)
    return torch.bincount(n * a[k] + b[k], minlength=n * n).reshape(n, n).numpy()


def _iou(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm).astype(float)
    denom = cm.sum(0) + cm.sum(1) - tp
    return np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _heatmap(at: AppTest) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]


def _z(heat: dict) -> np.ndarray:
    """The heatmap's values; Plotly sends numpy arrays as base64 typed arrays."""
    z = heat["z"]
    if isinstance(z, dict) and "bdata" in z:
        shape = tuple(int(v) for v in str(z["shape"]).split(","))
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)
    return np.array(z, dtype=float)


def test_two_annotators_numbers_match_reference(data_dir):
    voc = _voc(data_dir)
    at = _page(eval_mode="annotators").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="eval_ann_example").value == "VOC 2011_000003"
    first = np.array(Image.open(voc / "SegmentationClass" / "2011_000003.png"))
    second = np.array(Image.open(voc / "SegmentationClass_second_annotator" / "2011_000003.png"))
    both = (first != 255) & (second != 255)
    cm = _ref_cm(np.where(both, second, 0), np.where(both, first, 255))
    iou = _iou(cm)
    assert _metric(at, "mIoU") == f"{np.nanmean(iou):.1%}"
    assert _metric(at, "Pixel accuracy") == f"{np.trace(cm) / cm.sum():.1%}"
    # The formula is filled with the selected class's own counts (person, the largest object).
    person = VOC.classes.index("person")
    assert at.selectbox(key="eval_one_class@en").value == person
    latex = at.get("latex")[0].value.replace("{,}", "")
    tp, fp, fn = (int(x) for x in re.search(r"\\frac\{(\d+)\}\{(\d+) \+ (\d+) \+ (\d+)\}", latex).groups()[1:])
    assert (tp, fp, fn) == (cm[person, person], cm[:, person].sum() - tp, cm[person].sum() - tp)
    assert f"{iou[person]:.4f}" in latex
    # The heatmap shows exactly the counted pixels, only for classes that occur.
    heat = _heatmap(at)
    used = [i for i in range(21) if cm[i].sum() or cm[:, i].sum()]
    np.testing.assert_array_equal(_z(heat), cm[np.ix_(used, used)])
    at.radio(key="eval_one_norm@en").set_value("row").run()
    rows = _z(_heatmap(at))
    np.testing.assert_allclose(rows.sum(1), 1.0)
    # Absent classes scored 0 and averaged over all 21 classes.
    at.radio(key="eval_absent@en").set_value("zero").run()
    assert _metric(at, "mIoU") == f"{np.nan_to_num(iou).mean():.1%}"
    assert not at.exception


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_uploads_bad_masks_and_size_mismatch(data_dir, clear_streamlit_caches):
    voc = _voc(data_dir)
    image = (voc / "JPEGImages" / "2007_000033.jpg").read_bytes()
    truth = np.array(Image.open(voc / "SegmentationClass" / "2007_000033.png"))
    at = _page(eval_source="upload", inference_size=320).run()
    at.file_uploader(key="eval_image").set_value(("a.jpg", image, "image/jpeg"))
    at.file_uploader(key="eval_mask").set_value(("a.png", b"not a png", "image/png")).run()
    assert not at.exception
    assert i18n.t("eval.err.mask_not_image", "en", name="a.png") in [e.value for e in at.error]

    # Every pixel void: nothing to score, said so.
    at.file_uploader(key="eval_mask").set_value(("void.png", _png(np.full(truth.shape, 255, np.uint8)), "image/png")).run()
    assert not at.exception
    assert i18n.t("eval.err.all_ignored", "en", name="void.png") in [e.value for e in at.error]
    assert not at.metric

    # A colour-coded mask at half size with a colour that is in no palette.
    rgb = VOC.palette_array()[truth[::2, ::2]]
    rgb[:3, :4] = (5, 6, 7)
    at.file_uploader(key="eval_mask").set_value(("half.png", _png(rgb), "image/png")).run()
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "resized with nearest neighbour" in warnings and "RGB(5, 6, 7) × 12" in warnings
    assert len(at.metric) == 6

    # The page's numbers equal a reference computed from an independent model run.
    entry = registry.get(MODEL)
    model = weights.load_model(entry, allow_random=True)
    rgb_image = np.array(Image.open(io.BytesIO(image)).convert("RGB"))
    labels = predict(model, entry, rgb_image, 320).labels
    at.file_uploader(key="eval_mask").set_value(("full.png", (voc / "SegmentationClass" / "2007_000033.png").read_bytes(),
                                                 "image/png")).run()
    cm = _ref_cm(labels, truth)
    assert _metric(at, "Pixel accuracy") == f"{np.trace(cm) / cm.sum():.1%}"
    assert _metric(at, "mIoU") == f"{np.nanmean(_iou(cm)):.1%}"


def test_label_sets_that_do_not_match_are_explained(data_dir):
    _voc(data_dir)
    at = _page(inference_size=320).run()
    at.selectbox(key="eval_gt_labels@en").set_value("isbi").run()
    assert not at.exception
    assert at.number_input(key="eval_ignore").value == -1  # ISBI has no ignore label
    assert any("no mapping between them is known" in w.value for w in at.warning)
    assert any("Map at least one class" in e.value for e in at.error)
    assert not at.metric


def test_camvid_truth_with_voc_model_uses_the_preset(data_dir):
    _voc(data_dir)
    at = _page(inference_size=320).run()
    at.selectbox(key="eval_example").set_value(next(o for o in at.selectbox(key="eval_example").options
                                                     if o.startswith("CamVid"))).run()
    assert not at.exception
    assert at.selectbox(key="eval_gt_labels@en").value == "camvid"
    assert at.number_input(key="eval_ignore").value == 11
    assert any("Preset mapping" in i.value for i in at.info)
    assert any(w for w in at.caption if "cannot predict these truth classes" in w.value)
    assert len(at.metric) == 6
    # Pixel accuracy leaves out truth classes the VOC model cannot predict, and the page says over how many pixels.
    sample = next(s for s in samples.dataset_samples() if s.name == at.selectbox(key="eval_example").value)
    truth = np.array(Image.open(sample.mask))
    used = int(np.isin(truth, [8, 9, 10]).sum())  # Car, Pedestrian, Bicyclist
    scope = i18n.t("eval.accuracy_scope", "en", pixels=used, left_out=int((truth != 11).sum()) - used)
    assert any(c.value == scope for c in at.caption)


def test_batch_zip_with_bad_pairs(data_dir, clear_streamlit_caches):
    voc = _voc(data_dir)
    buf = io.BytesIO()
    stems = ["2007_000032", "2011_000025"]
    with zipfile.ZipFile(buf, "w") as zf:
        for s in stems + ["2011_000003"]:
            zf.write(voc / "JPEGImages" / f"{s}.jpg", f"set/images/{s}.jpg")
        for s in stems:
            zf.write(voc / "SegmentationClass" / f"{s}.png", f"set/masks/{s}.png")
        zf.writestr("set/images/broken.jpg", (voc / "JPEGImages" / "2007_000033.jpg").read_bytes())
        zf.writestr("set/masks/broken.png", b"garbage")
    at = _page(eval_mode="batch", eval_batch_source="upload", inference_size=320).run()
    at.file_uploader(key="eval_batch_files").set_value(("pairs.zip", buf.getvalue(), "application/zip")).run()
    assert not at.exception
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = " ".join(w.value for w in at.warning)
    assert "2011_000003.jpg: no mask" in warnings and "broken.png is not an image" in warnings
    assert any(m.value == i18n.t("eval.batch.plan", "en", pairs=3, lonely=1, masks=0) for m in at.markdown)
    # Accumulated counts against a reference over the two good pairs.
    entry = registry.get(MODEL)
    model = weights.load_model(entry, allow_random=True)
    cm = np.zeros((21, 21), np.int64)
    per_image = []
    for s in stems:
        rgb = np.array(Image.open(voc / "JPEGImages" / f"{s}.jpg").convert("RGB"))
        truth = np.array(Image.open(voc / "SegmentationClass" / f"{s}.png"))
        one = _ref_cm(predict(model, entry, rgb, 320).labels, truth)
        cm += one
        per_image.append(np.nanmean(_iou(one)))
    assert _metric(at, "mIoU of the accumulated confusion matrix") == f"{np.nanmean(_iou(cm)):.1%}"
    assert _metric(at, "Mean of per-image mIoUs") == f"{np.mean(per_image):.1%}"
    used = [i for i in range(21) if cm[i].sum() or cm[:, i].sum()]
    np.testing.assert_array_equal(_z(_heatmap(at)), cm[np.ix_(used, used)])
    assert any("Why two numbers" in i.value for i in at.info)
    assert len(at.get("download_button")) == 3


def test_batch_out_of_gpu_memory_runs_on_the_cpu(data_dir, monkeypatch):
    """CUDA out of memory on one image: that image runs on the CPU, the page says so, the batch is complete."""
    voc = _voc(data_dir)
    from segdemo.inference import pipeline

    real, calls = pipeline.predict, []

    def flaky(model, entry, rgb, size, device, half=False, run_forward=None):
        calls.append(device)
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model, entry, rgb, size, device, half, run_forward)

    monkeypatch.setattr(pipeline, "predict", flaky)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(voc / "JPEGImages" / "2011_000003.jpg", "images/2011_000003.jpg")
        zf.write(voc / "SegmentationClass" / "2011_000003.png", "masks/2011_000003.png")
    at = _page(eval_mode="batch", eval_batch_source="upload", inference_size=96).run()
    at.file_uploader(key="eval_batch_files").set_value(("one.zip", buf.getvalue(), "application/zip")).run()
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert calls[-1] == "cpu" and len(calls) == 2
    assert any(w.value == i18n.t("model.oom", "en") for w in at.warning)
    assert _metric(at, "Mean of per-image mIoUs") != "—"


@pytest.mark.parametrize("mode", ["single", "annotators", "batch"])
def test_modes_run_in_korean(mode, data_dir):
    _voc(data_dir)
    at = _page("ko", eval_mode=mode, inference_size=320).run()
    assert not at.exception, [e.value for e in at.exception]


def test_label_set_value_from_the_other_language_is_mapped_back(data_dir):
    """A real browser sends the displayed text of the old language after a language switch."""
    _voc(data_dir)
    at = _page("en", eval_mode="annotators", eval_ann_example="VOC 2011_000003",
               eval_gt_labels=i18n.t("labelset.voc", "ko")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="eval_gt_labels@en").value == "voc"
    from segdemo.ui.eval_inputs import _label_set_key

    for lang in i18n.LANGUAGES:
        assert _label_set_key(i18n.t("labelset.camvid", lang)) == "camvid"
    assert _label_set_key("isbi") == "isbi"


def test_choices_survive_a_language_switch(data_dir):
    _voc(data_dir)
    at = _page("en", eval_mode="annotators").run()
    at.radio(key="eval_absent@en").set_value("minus_one").run()
    at.radio(key="eval_one_norm@en").set_value("col").run()
    at.session_state["lang"] = "ko"
    at.run()
    assert not at.exception
    assert at.radio(key="eval_mode@ko").value == "annotators"
    assert at.radio(key="eval_absent@ko").value == "minus_one"
    assert at.radio(key="eval_one_norm@ko").value == "col"
    assert at.metric[0].label == "mIoU" and "평균" in at.metric[2].label


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_formula_follows_the_selected_class(lang, data_dir):
    """Issue 10 defect 2: the class in the IoU formula is the class selected — its name (in the
    session's language) and its own counts, for every class the chooser offers."""
    voc = _voc(data_dir)
    at = _page(lang, eval_mode="annotators").run()
    first = np.array(Image.open(voc / "SegmentationClass" / "2011_000003.png"))
    second = np.array(Image.open(voc / "SegmentationClass_second_annotator" / "2011_000003.png"))
    both = (first != 255) & (second != 255)
    cm = _ref_cm(np.where(both, second, 0), np.where(both, first, 255))
    offered = list(at.selectbox(key=f"eval_one_class@{lang}").options)
    assert len(offered) >= 2, "the example has more than one class to choose"
    for i, shown_name in enumerate(offered):
        at.selectbox(key=f"eval_one_class@{lang}").set_value(_class_value(at, lang, i)).run()
        assert not at.exception
        cls = at.selectbox(key=f"eval_one_class@{lang}").value
        latex = at.get("latex")[0].value.replace("{,}", "")
        name = i18n.class_name("voc", VOC.classes[cls], lang).replace("_", r"\_")
        assert rf"\text{{{name}}}" in latex and shown_name == i18n.class_name("voc", VOC.classes[cls], lang)
        tp, fp, fn = (int(x) for x in re.search(r"\\frac\{(\d+)\}\{(\d+) \+ (\d+) \+ (\d+)\}", latex).groups()[1:])
        assert (tp, fp, fn) == (cm[cls, cls], cm[:, cls].sum() - cm[cls, cls], cm[cls].sum() - cm[cls, cls])


def _class_value(at: AppTest, lang: str, index: int) -> int:
    """The class id behind the chooser's ``index``-th option (options are shown names; values are ids)."""
    names = [i18n.class_name("voc", c, lang) for c in VOC.classes]
    return names.index(at.selectbox(key=f"eval_one_class@{lang}").options[index])
