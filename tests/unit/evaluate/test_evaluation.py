"""segdemo.evaluate: ground-truth decoding, policies, mapping, maps and batches.

Real masks from the data directory where it matters; the policies are checked
against torchmetrics (MulticlassJaccardIndex and segmentation.mean_iou), the
accumulation against torchvision's reference confusion matrix.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from torchmetrics.classification import MulticlassJaccardIndex
from torchmetrics.functional.segmentation import mean_iou as tm_mean_iou

from segdemo.evaluate import metrics
from segdemo.config import data_dir
from segdemo.evaluate import (OTHER, BatchAccumulator, EvaluationError, MaskError, Policy, colorize_labels,
                              decode_mask, encode_index_png, error_counts, error_map, evaluate_annotators,
                              evaluate_pair, iou_formula_values, mapping_by_name, mapping_from_names,
                              normalise_confusion, pair_files, per_class_csv, per_image_csv, preset_mapping,
                              read_zip, run_batch, score_confusion, short_list, to_json)
from segdemo.evaluate.maps import FN_COLOR, FP_COLOR, HATCH_DARK, HATCH_LIGHT, TP_COLOR
from segdemo.evaluate.masks import Notice, describe_notice, resize_nearest
from segdemo.i18n import catalogue, t
from segdemo.data.labels import CAMVID, ISBI, VOC



def _root():
    root = data_dir()
    if not (root / "voc" / "SegmentationClass").is_dir() or not (root / "camvid" / "valannot").is_dir():
        pytest.skip(f"real data not found under {root} (set SEGDEMO_DATA_DIR)")
    return root


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def voc_truth():
    path = _root() / "voc" / "SegmentationClass" / "2011_000006.png"
    return path.read_bytes(), np.array(Image.open(path)).astype(np.int32)


@pytest.fixture(scope="module")
def camvid_frames():
    frames = sorted((_root() / "camvid" / "valannot").glob("*.png"))[:5]
    return [np.array(Image.open(f)).astype(np.int32) for f in frames], [f.name for f in frames]


# ---------------------------------------------------------------- decoding


def test_voc_palette_png_reads_indices(voc_truth):
    data, truth = voc_truth
    gt = decode_mask(data, "2011_000006.png", VOC)
    assert gt.source_format == "palette"
    np.testing.assert_array_equal(gt.labels, truth)
    assert not gt.out_of_set and not gt.unknown_colors
    assert not any(n.level != "info" for n in gt.notices)


def test_colour_coded_voc_mask_round_trips_and_reports_unknown_colours(voc_truth):
    _, truth = voc_truth
    rgb = VOC.palette_array()[truth]          # 255 gets VOC's void colour (224, 224, 192)
    rgb[:5, :7] = (1, 2, 3)                    # a colour in no palette: 35 pixels
    rgb[-2:, -3:] = (250, 0, 250)              # another: 6 pixels
    gt = decode_mask(_png(rgb), "rgb.png", VOC)
    assert gt.source_format == "color"
    assert gt.unknown_colors == [((1, 2, 3), 35), ((250, 0, 250), 6)]
    np.testing.assert_array_equal(gt.labels[5:, 7:-3], truth[5:, 7:-3])
    assert (gt.labels[:5, :7] == -1).all()
    warn = [n for n in gt.notices if n.key == "eval.note.unknown_colors"]
    assert warn and warn[0].values["pixels"] == 41 and warn[0].level == "warning"
    # Unknown pixels are not counted.
    res = evaluate_pair(np.zeros_like(truth), gt.labels, VOC, 255)
    assert res.scores.cm.sum() == int(((truth != 255)).sum()) - 35 - int((truth[-2:, -3:] != 255).sum())


def test_colour_coded_camvid_mask(camvid_frames):
    truth = camvid_frames[0][0]
    rgb = CAMVID.palette_array()[truth]       # void 11 -> (0, 0, 0)
    gt = decode_mask(_png(rgb), "cam.png", CAMVID)
    np.testing.assert_array_equal(gt.labels, truth)
    assert gt.source_format == "color" and not gt.unknown_colors


def test_grey_rgb_index_map_is_read_as_ids(camvid_frames):
    truth = camvid_frames[0][0].astype(np.uint8)
    gt = decode_mask(_png(np.dstack([truth] * 3)), "grey.png", CAMVID)
    np.testing.assert_array_equal(gt.labels, truth)
    assert any(n.key == "eval.note.grey_rgb" for n in gt.notices)


def test_isbi_binary_mask_reads_255_as_cell():
    path = _root() / "isbi2012" / "train" / "label" / "0.png"
    raw = np.array(Image.open(path))
    gt = decode_mask(path.read_bytes(), "0.png", ISBI)
    np.testing.assert_array_equal(gt.labels, (raw == 255).astype(np.int32))
    assert any(n.key == "eval.note.binary_255" for n in gt.notices)
    assert set(np.unique(gt.labels)) == {0, 1}


def test_sixteen_bit_index_png():
    labels = np.array([[0, 3], [10, 11]], dtype=np.uint16)
    gt = decode_mask(_png(labels), "16.png", CAMVID)
    np.testing.assert_array_equal(gt.labels, labels)


def test_out_of_set_ids_are_reported(voc_truth):
    _, truth = voc_truth
    bad = truth.astype(np.uint8).copy()
    bad[:4, :5] = 30
    bad[-1, :3] = 21
    gt = decode_mask(_png(bad, "L"), "bad.png", VOC)
    assert gt.out_of_set == {21: 3, 30: 20}
    note = next(n for n in gt.notices if n.key == "eval.note.out_of_set")
    assert note.values["pixels"] == 23 and note.values["ids"] == "21 × 3, 30 × 20"
    assert "(0..20)" in describe_notice(note, "en")  # VOC's classes are 0..20; 21 is outside
    res = evaluate_pair(np.zeros_like(truth), gt.labels, VOC, 255)
    assert res.scores.cm.sum() == int((truth != 255).sum()) - int((truth[:4, :5] != 255).sum()) - int(
        (truth[-1, :3] != 255).sum())
    assert not res.valid[:4, :5].any()


def test_size_mismatch_is_resized_nearest_after_a_warning(voc_truth):
    _, truth = voc_truth
    small = truth[::2, ::2].astype(np.uint8)
    gt = decode_mask(_png(small, "L"), "small.png", VOC, image_size=truth.shape)
    assert gt.labels.shape == truth.shape
    note = next(n for n in gt.notices if n.key == "eval.note.resized")
    assert note.level == "warning" and note.values["image_w"] == truth.shape[1]
    # Nearest neighbour never invents ids, and agrees with Pillow's NEAREST.
    assert set(np.unique(gt.labels)) <= set(np.unique(small))
    pil = np.array(Image.fromarray(small).resize((truth.shape[1], truth.shape[0]), Image.NEAREST))
    np.testing.assert_array_equal(gt.labels, pil)
    np.testing.assert_array_equal(resize_nearest(np.array([[1, 2], [3, 4]]), (4, 4)),
                                  np.kron([[1, 2], [3, 4]], np.ones((2, 2), int)))


@pytest.mark.parametrize("data,key", [
    (b"", "eval.err.mask_empty"),
    (b"this is not a png at all", "eval.err.mask_not_image"),
])
def test_unreadable_masks(data, key):
    with pytest.raises(MaskError) as err:
        decode_mask(data, "x.png", VOC)
    assert err.value.key == key
    assert t(key, "en", **err.value.values)


def test_truncated_and_wrong_type_masks(voc_truth):
    data, _ = voc_truth
    with pytest.raises(MaskError) as err:
        decode_mask(data[: len(data) // 2], "cut.png", VOC)
    assert err.value.key == "eval.err.mask_corrupt"
    buf = io.BytesIO()
    Image.fromarray(np.random.rand(4, 4).astype(np.float32), mode="F").save(buf, format="TIFF")
    with pytest.raises(MaskError) as err:
        decode_mask(buf.getvalue(), "float.tif", VOC)
    assert err.value.key == "eval.err.mask_mode" and err.value.values["mode"] == "F"


def test_jpeg_mask_warns(voc_truth):
    _, truth = voc_truth
    buf = io.BytesIO()
    Image.fromarray(VOC.palette_array()[truth]).save(buf, format="JPEG", quality=90)
    gt = decode_mask(buf.getvalue(), "m.jpg", VOC)
    assert any(n.key == "eval.note.jpeg_mask" for n in gt.notices)
    assert gt.unknown_colors  # JPEG blurred the edges into colours of no class


def test_palette_png_round_trip():
    labels = np.array([[0, 1], [2, 255]])
    gt = decode_mask(encode_index_png(labels, VOC), "p.png", VOC)
    np.testing.assert_array_equal(gt.labels, labels)


# ---------------------------------------------------------------- policies


def _camvid_pair(camvid_frames, i=0):
    frames = camvid_frames[0]
    pred = np.where(frames[i + 1] == 11, 3, frames[i + 1])
    return pred, frames[i]


def _valid_flat(pred, truth, n, ignore):
    keep = (truth != ignore) & (truth < n)
    return torch.from_numpy(pred[keep].astype(np.int64))[None], torch.from_numpy(truth[keep].astype(np.int64))[None]


@pytest.fixture(scope="module")
def voc_pair():
    root = _root()
    truth = np.array(Image.open(root / "voc" / "SegmentationClass" / "2011_000006.png")).astype(np.int32)
    second = np.array(Image.open(root / "voc" / "SegmentationClass_second_annotator" / "2011_000006.png"))
    return np.where(second == 255, 0, second).astype(np.int32), truth


def test_nan_policy_matches_torchmetrics_macro(voc_pair):
    pred, truth = voc_pair
    s = evaluate_pair(pred, truth, VOC, 255, Policy("nan"), boundary=False).scores
    macro = MulticlassJaccardIndex(21, average="macro", ignore_index=255)(torch.from_numpy(pred), torch.from_numpy(truth))
    assert s.summary["mIoU"] == pytest.approx(macro.item(), rel=1e-5)
    assert np.isnan(s.iou[s.absent]).all() and s.absent.sum() >= 15
    assert s.summary["classes_in_mean"] == int((~s.absent).sum())


def test_zero_policy_matches_torchmetrics_zero_division(voc_pair):
    pred, truth = voc_pair
    s = evaluate_pair(pred, truth, VOC, 255, Policy("zero"), boundary=False).scores
    per_class = MulticlassJaccardIndex(21, average=None, ignore_index=255, zero_division=0)(
        torch.from_numpy(pred), torch.from_numpy(truth)).numpy()
    np.testing.assert_allclose(s.iou, per_class, rtol=1e-5)
    # Absent classes count as 0 in the mean: the "plain average over all classes".
    assert s.summary["mIoU"] == pytest.approx(float(per_class.mean()), rel=1e-5)
    nan_miou = evaluate_pair(pred, truth, VOC, 255, Policy("nan"), boundary=False).scores.summary["mIoU"]
    assert s.summary["mIoU"] < nan_miou / 3


def test_minus_one_policy_matches_torchmetrics_mean_iou(voc_pair, camvid_frames):
    for pred, truth, ls, ignore in ((*voc_pair, VOC, 255), (*_camvid_pair(camvid_frames), CAMVID, 11)):
        n = ls.num_classes
        s = evaluate_pair(pred, truth, ls, ignore, Policy("minus_one"), boundary=False).scores
        p, tt = _valid_flat(pred, truth, n, ignore)
        per_class = tm_mean_iou(p, tt, num_classes=n, per_class=True, input_format="index")[0].numpy()
        np.testing.assert_allclose(s.iou, per_class, rtol=1e-5)
        mean = tm_mean_iou(p, tt, num_classes=n, per_class=False, input_format="index")[0].item()
        assert s.summary["mIoU"] == pytest.approx(mean, rel=1e-5)
        # The same per-class values as MulticlassJaccardIndex with zero_division=-1.
        mj = MulticlassJaccardIndex(n, average=None, ignore_index=ignore, zero_division=-1)(
            torch.from_numpy(pred), torch.from_numpy(truth)).numpy()
        np.testing.assert_allclose(s.iou, mj, rtol=1e-5)


def test_background_out_matches_torchmetrics_include_background(voc_pair):
    pred, truth = voc_pair
    s_in = evaluate_pair(pred, truth, VOC, 255, Policy("minus_one", True), boundary=False).scores
    s_out = evaluate_pair(pred, truth, VOC, 255, Policy("minus_one", False), boundary=False).scores
    p, tt = _valid_flat(pred, truth, 21, 255)
    ref = tm_mean_iou(p, tt, num_classes=21, include_background=False, per_class=False, input_format="index")
    assert s_out.summary["mIoU"] == pytest.approx(ref[0].item(), rel=1e-5)
    assert s_out.summary["mIoU"] != pytest.approx(s_in.summary["mIoU"])
    # Background pixels are still counted for the other classes.
    np.testing.assert_array_equal(s_in.iou[1:], s_out.iou[1:])
    assert s_out.summary["pixel_accuracy"] == s_in.summary["pixel_accuracy"]
    assert not s_out.in_mean[0]


def test_summary_matches_metrics_module(camvid_frames):
    pred, truth = _camvid_pair(camvid_frames)
    res = evaluate_pair(pred, truth, CAMVID, 11)
    s = res.scores
    cm = metrics.confusion_matrix(pred, truth, 11, 11)
    np.testing.assert_array_equal(s.cm, cm)
    assert s.summary["mIoU"] == pytest.approx(metrics.mean_iou(cm))
    assert s.summary["pixel_accuracy"] == pytest.approx(metrics.pixel_accuracy(cm))
    assert s.summary["mean_class_accuracy"] == pytest.approx(metrics.mean_class_accuracy(cm))
    assert s.summary["fw_IoU"] == pytest.approx(metrics.frequency_weighted_iou(cm))
    np.testing.assert_allclose(s.boundary_f1, metrics.boundary_f1_per_class(pred, truth, 11, 11), equal_nan=True)
    assert 0 < s.summary["mean_boundary_F1"] <= 1


def test_iou_formula_values_fill_the_formula():
    truth = np.array([[0, 0, 1], [1, 1, 2]])
    pred = np.array([[0, 1, 1], [1, 2, 2]])
    s = evaluate_pair(pred, truth, CAMVID, 11, boundary=False).scores
    f = iou_formula_values(s, 1)
    assert (f["tp"], f["fp"], f["fn"], f["denominator"]) == (2, 1, 1, 4) and f["iou"] == 0.5
    assert f["iou"] == pytest.approx(s.iou[1])
    assert iou_formula_values(s, 7)["iou"] is None


def test_all_ignored_pair_is_an_evaluation_error():
    with pytest.raises(EvaluationError) as err:
        evaluate_pair(np.zeros((3, 3), int), np.full((3, 3), 255), VOC, 255, name="void.png")
    assert err.value.key == "eval.err.all_ignored"


def test_configurable_ignore_label():
    truth = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 1, 1, 1]])
    with_bg = evaluate_pair(pred, truth, VOC, 255, boundary=False).scores
    ignore_bg = evaluate_pair(pred, truth, VOC, 0, boundary=False).scores
    assert with_bg.cm.sum() == 4 and ignore_bg.cm.sum() == 2
    assert ignore_bg.iou[1] == 1.0 and with_bg.iou[1] == pytest.approx(2 / 3)


def test_normalised_confusion():
    cm = np.array([[3, 1], [0, 0]])
    np.testing.assert_allclose(normalise_confusion(cm, "row")[0], [0.75, 0.25])
    assert np.isnan(normalise_confusion(cm, "row")[1]).all()
    np.testing.assert_allclose(normalise_confusion(cm, "col")[:, 0], [1.0, 0.0])
    np.testing.assert_allclose(np.diag(normalise_confusion(cm, "col"))[:1], metrics.per_class_precision(cm)[:1])


# ---------------------------------------------------------------- label mapping


def test_camvid_truth_voc_model_preset(camvid_frames):
    truth = camvid_frames[0][0]
    mapping = preset_mapping(CAMVID, VOC)
    assert mapping is not None and mapping.has_other
    # A VOC "prediction" that is right on every Car and Pedestrian pixel, background elsewhere.
    pred = np.where(truth == 8, VOC.classes.index("car"), np.where(truth == 9, VOC.classes.index("person"), 0))
    res = evaluate_pair(pred, truth, CAMVID, 11, Policy("nan"), mapping, boundary=False)
    s = res.scores
    assert s.cm.shape == (12, 12)
    reachable = {CAMVID.classes[i] for i in np.flatnonzero(s.evaluated)}
    assert reachable == {"Car", "Pedestrian", "Bicyclist"}
    assert s.iou[8] == 1.0 and s.iou[9] == 1.0
    # Sky pixels went to the "other" column: misses of Sky, not counted for any class.
    assert s.cm[0, 11] == int((truth == 0).sum()) and s.fn[0] == int((truth == 0).sum())
    assert not s.in_mean[0]
    if (truth == 10).any():  # bicyclists in truth, never predicted: IoU 0
        assert s.iou[10] == 0.0
    # Pixel accuracy only over truth pixels of classes the model can predict.
    rows = (truth == 8) | (truth == 9) | (truth == 10)
    assert s.summary["pixel_accuracy"] == pytest.approx(((truth == 8) | (truth == 9)).sum() / rows.sum())
    # ...and the page says over how many: the valid pixels minus those of unpredictable classes.
    assert s.summary["accuracy_pixels"] == int(rows.sum())
    assert s.summary["valid_pixels"] == int((truth != 11).sum()) > s.summary["accuracy_pixels"]


def test_voc_truth_camvid_model_preset_and_no_preset():
    m = preset_mapping(VOC, CAMVID)
    assert m.pred_to_gt[CAMVID.classes.index("Sky")] == 0
    assert m.pred_to_gt[CAMVID.classes.index("Car")] == VOC.classes.index("car")
    assert not m.has_other
    assert preset_mapping(ISBI, VOC) is None and preset_mapping(VOC, ISBI) is None
    assert preset_mapping(VOC, VOC).is_identity


def test_custom_mapping():
    m = mapping_by_name(CAMVID, VOC)
    # Same name ignoring case ("car" / "Car") maps; everything else is "other".
    assert m.pred_to_gt[VOC.classes.index("car")] == CAMVID.classes.index("Car")
    assert sum(g != OTHER for g in m.pred_to_gt) == 1
    names = ["" for _ in VOC.classes]
    names[VOC.classes.index("car")] = "Car"
    m2 = mapping_from_names(CAMVID, VOC, names)
    assert m2.pred_to_gt[VOC.classes.index("car")] == 8 and m2.reachable().sum() == 1
    with pytest.raises(ValueError):
        evaluate_pair(np.array([[30]]), np.array([[0]]), CAMVID, 11, mapping=m2)


# ---------------------------------------------------------------- two annotators


def test_two_annotators():
    root = _root()
    for stem in ("2011_000003", "2011_000006", "2011_000025"):
        first = np.array(Image.open(root / "voc" / "SegmentationClass" / f"{stem}.png")).astype(np.int32)
        second = np.array(Image.open(root / "voc" / "SegmentationClass_second_annotator" / f"{stem}.png")).astype(np.int32)
        res = evaluate_annotators(first, second, VOC, 255, boundary=False, name=stem)
        present = res.scores.iou[~res.scores.absent]
        assert 0.89 <= present.min() and present.max() <= 1.0
        assert res.scores.cm.sum() == int(((first != 255) & (second != 255)).sum())


# ---------------------------------------------------------------- maps


def test_error_map_colours_are_the_counted_pixels(camvid_frames):
    pred, truth = _camvid_pair(camvid_frames)
    res = evaluate_pair(pred, truth, CAMVID, 11, boundary=False)
    image = np.full(truth.shape + (3,), 128, np.uint8)
    c = 8
    emap = error_map(image, res.pred, res.truth, res.valid, c, alpha=1.0)
    counts = error_counts(res.pred, res.truth, res.valid, c)
    assert counts == {"TP": int(res.scores.tp[c]), "FP": int(res.scores.fp[c]), "FN": int(res.scores.fn[c])}
    for colour, k in ((TP_COLOR, "TP"), (FP_COLOR, "FP"), (FN_COLOR, "FN")):
        assert int((emap == colour).all(-1).sum()) == counts[k]
    hatched = (emap == HATCH_DARK).all(-1) | (emap == HATCH_LIGHT).all(-1)
    np.testing.assert_array_equal(hatched, ~res.valid)
    assert (~res.valid).sum() > 0


def test_colorize_hatches_ignored_and_greys_other():
    labels = np.array([[0, 1], [11, 12]])
    valid = labels < 11
    rgb = colorize_labels(labels, CAMVID, valid, other_id=12)
    assert tuple(rgb[0, 0]) == CAMVID.colors[0] and tuple(rgb[0, 1]) == CAMVID.colors[1]
    assert tuple(rgb[1, 0]) in (HATCH_DARK, HATCH_LIGHT)


# ---------------------------------------------------------------- batches


def _reference_cm(pairs, n):
    """torchvision reference accumulation (see test_metrics)."""
    mat = torch.zeros((n, n), dtype=torch.int64)
    for pred, truth in pairs:
        a, b = torch.from_numpy(truth.astype(np.int64)).flatten(), torch.from_numpy(pred.astype(np.int64)).flatten()
        k = (a >= 0) & (a < n)
        mat += torch.bincount(n * a[k] + b[k], minlength=n**2).reshape(n, n)
    return mat.numpy()


def test_batch_accumulates_and_keeps_going(camvid_frames):
    frames, names = camvid_frames
    good = [(f"{names[i]}", np.where(frames[i + 1] == 11, 3, frames[i + 1]), frames[i]) for i in range(3)]
    masks = {f"masks/{k}": encode_index_png(truth, CAMVID) for k, _, truth in good}
    masks["masks/void.png"] = _png(np.full((8, 8), 11, np.uint8))
    masks["masks/broken.png"] = b"not an image"
    preds = {k: p for k, p, _ in good}
    preds["void.png"] = np.zeros((8, 8), int)
    preds["broken.png"] = np.zeros((8, 8), int)
    names_all = [f"images/{k}" for k in preds] + list(masks) + ["images/lonely.png"]
    plan = pair_files(names_all)
    assert plan.images_without_mask == ["images/lonely.png"]

    def load(key, image_name, mask_name):
        pred = preds[image_name.split("/")[-1]]
        gt = decode_mask(masks[mask_name], mask_name, CAMVID, image_size=pred.shape)
        return pred, gt.labels, gt.notices

    seen = []
    acc = BatchAccumulator(CAMVID, 11, Policy("nan"), boundary=False)
    result = run_batch(plan.pairs, load, acc, progress=lambda i, n, name: seen.append((i, n)),
                       unmatched_images=plan.images_without_mask)
    assert seen[-1] == (5, 5) and len(seen) == 6
    errors = {r.name: r.error.key for r in result.errors}
    assert errors == {"images/lonely.png": "eval.err.no_mask", "images/void.png": "eval.err.all_ignored",
                      "images/broken.png": "eval.err.mask_not_image"}
    assert len(result.scored) == 3
    np.testing.assert_array_equal(result.scores.cm, _reference_cm([(p, t_) for _, p, t_ in good], 11))
    per_image = [evaluate_pair(p, t_, CAMVID, 11, boundary=False).scores.summary["mIoU"] for _, p, t_ in good]
    assert result.mean_image_miou == pytest.approx(float(np.mean(per_image)))
    assert result.scores.summary["mIoU"] == pytest.approx(metrics.mean_iou(result.scores.cm))
    assert result.mean_image_miou != pytest.approx(result.scores.summary["mIoU"], abs=1e-6)
    for c in range(11):
        vals = [evaluate_pair(p, t_, CAMVID, 11, boundary=False).scores.iou[c] for _, p, t_ in good]
        vals = [v for v in vals if np.isfinite(v)]
        if vals:
            assert result.mean_image_iou_per_class[c] == pytest.approx(np.mean(vals))

    data = json.loads(to_json(result, {"model": "none"}, describe=lambda n: t(n.key, "en", **n.values)))
    assert data["summary"]["mIoU"] == pytest.approx(result.scores.summary["mIoU"])
    assert len(data["per_class"]) == 11 and len(data["images"]) == 6
    assert np.array(data["confusion_matrix"]).sum() == result.scores.cm.sum()
    assert any("no mask" in (im["error"] or "") for im in data["images"])
    csv_rows = per_class_csv(result).strip().splitlines()
    assert len(csv_rows) == 12 and csv_rows[0].endswith("mean_per_image_IoU")
    assert len(per_image_csv(result).strip().splitlines()) == 7


def test_zip_of_voc_pairs():
    root = _root() / "voc"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                zf.write(p, f"voc/{p.relative_to(root).as_posix()}")
        zf.writestr("__MACOSX/voc/._x.png", b"junk")
    files = read_zip(buf.getvalue())
    plan = pair_files(files)
    assert len(plan.pairs) == 5
    assert all(i.endswith(".jpg") and "SegmentationClass/" in m for _, i, m in plan.pairs)
    with pytest.raises(EvaluationError):
        read_zip(b"no zip")


def test_score_confusion_rejects_wrong_shape():
    with pytest.raises(ValueError):
        score_confusion(np.zeros((3, 3)), VOC)


def test_every_notice_key_is_translated():
    for lang in ("en", "ko"):
        cat = catalogue(lang)
        for key in [k for k in catalogue("en") if k.startswith("eval.")]:
            assert key in cat
    assert set(k for k in catalogue("en") if k.startswith("eval.")) == set(
        k for k in catalogue("ko") if k.startswith("eval."))


def test_notice_names_the_label_set_in_each_language(voc_truth):
    data, labels = voc_truth
    rgb = np.array(VOC.colors, np.uint8)[np.clip(labels, 0, 20)]
    notice = next(n for n in decode_mask(_png(rgb), "m.png", VOC).notices if n.key == "eval.note.color_decoded")
    assert notice.values["labels"] == "voc"  # the notice stays language-free...
    for lang in ("en", "ko"):  # ...and is shown with the label set's name
        text = describe_notice(notice, lang)
        assert t("labelset.voc", lang) in text and "voc palette" not in text
    assert describe_notice(Notice("eval.no_such_key", {"x": 1}), "en") == "eval.no_such_key {'x': 1}"
    assert describe_notice(EvaluationError("eval.err.all_ignored", name="a.png"), "en") == t(
        "eval.err.all_ignored", "en", name="a.png")


def test_short_list():
    assert short_list([]) == ""
    assert short_list(["a", "b"]) == "a, b"
    names = [f"m{i}.png" for i in range(13)]
    assert short_list(names) == ", ".join(names[:10]) + ", … (+3)"
    assert short_list(names, limit=13) == ", ".join(names)
