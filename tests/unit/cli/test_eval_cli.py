"""``python -m segdemo eval``: saved predictions, a model, bad pairs, exit codes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from segdemo import i18n
from segdemo.evaluate import metrics
from segdemo.cli import main
from segdemo.evaluate import encode_index_png, short_list
from segdemo.data.labels import CAMVID, VOC



def _root(data_dir):
    if not (data_dir / "voc" / "SegmentationClass").is_dir() or not (data_dir / "camvid" / "valannot").is_dir():
        pytest.skip("real data absent")
    return data_dir


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["eval", "--quiet", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _torchvision_cm(pairs, n):
    mat = torch.zeros((n, n), dtype=torch.int64)
    for pred, truth in pairs:
        a = torch.from_numpy(truth.astype(np.int64)).flatten()
        b = torch.from_numpy(pred.astype(np.int64)).flatten()
        k = (a >= 0) & (a < n)
        mat += torch.bincount(n * a[k] + b[k], minlength=n**2).reshape(n, n)
    return mat.numpy()


@pytest.fixture
def camvid_pred_dirs(data_dir, tmp_path):
    """Saved "predictions" (the next frame's annotation) and masks, plus two bad cases."""
    root = _root(data_dir) / "camvid" / "valannot"
    frames = sorted(root.glob("*.png"))[:4]
    pred_dir, mask_dir = tmp_path / "pred", tmp_path / "masks"
    pred_dir.mkdir()
    mask_dir.mkdir()
    pairs = []
    for a, b in zip(frames, frames[1:]):
        truth = np.array(Image.open(a))
        pred = np.where(np.array(Image.open(b)) == 11, 3, np.array(Image.open(b)))
        (pred_dir / f"{a.stem}_labels.png").write_bytes(encode_index_png(pred, CAMVID))
        shutil.copy(a, mask_dir / a.name)
        pairs.append((pred, truth))
    (pred_dir / f"{frames[0].stem}_overlay.png").write_bytes(b"an overlay, not a prediction")
    (pred_dir / "lonely_labels.png").write_bytes(encode_index_png(np.zeros((4, 4), np.uint8), CAMVID))
    (pred_dir / "broken_labels.png").write_bytes(encode_index_png(np.zeros((4, 4), np.uint8), CAMVID))
    (mask_dir / "broken.png").write_bytes(b"garbage")
    (pred_dir / "void_labels.png").write_bytes(encode_index_png(np.zeros((4, 4), np.uint8), CAMVID))
    (mask_dir / "void.png").write_bytes(encode_index_png(np.full((4, 4), 11, np.uint8), CAMVID))
    return pred_dir, mask_dir, pairs


def test_saved_predictions_json_matches_torchvision_reference(capsys, camvid_pred_dirs):
    pred_dir, mask_dir, pairs = camvid_pred_dirs
    code, out, _ = _run(capsys, "--pred", str(pred_dir), "--masks", str(mask_dir), "--labels", "camvid",
                        "--json", "--no-boundary")
    assert code == 1  # some pairs failed, the rest were scored
    data = json.loads(out)
    cm = np.array(data["confusion_matrix"])
    np.testing.assert_array_equal(cm, _torchvision_cm(pairs, 11))
    assert data["summary"]["mIoU"] == pytest.approx(metrics.mean_iou(cm))
    assert data["meta"]["ignore_index"] == 11
    errors = {im["name"]: im["error"] for im in data["images"] if im["error"]}
    assert set(errors) == {"lonely_labels.png", "broken_labels.png", "void_labels.png"}
    assert "no mask" in errors["lonely_labels.png"]
    assert "not an image" in errors["broken_labels.png"]
    assert "ignored" in errors["void_labels.png"]
    per_image = [metrics.mean_iou(metrics.confusion_matrix(p, t, 11, 11)) for p, t in pairs]
    assert data["mean_of_per_image_mIoU"] == pytest.approx(float(np.mean(per_image)))


def test_text_report_and_csv(capsys, camvid_pred_dirs, tmp_path):
    pred_dir, mask_dir, pairs = camvid_pred_dirs
    csv_path = tmp_path / "classes.csv"
    code, out, _ = _run(capsys, "--pred", str(pred_dir), "--masks", str(mask_dir), "--labels", "camvid",
                        "--csv", str(csv_path), "--lang", "ko")
    assert code == 1
    assert "Pedestrian" in out and "mIoU" in out and "누적 mIoU" in out
    rows = csv_path.read_text().strip().splitlines()
    assert len(rows) == 12 and rows[0].startswith("id,class,TP,FP,FN,IoU")


def test_ignore_index_option(capsys, camvid_pred_dirs):
    pred_dir, mask_dir, pairs = camvid_pred_dirs
    _, out_default, _ = _run(capsys, "--pred", str(pred_dir), "--masks", str(mask_dir), "--labels", "camvid",
                             "--json", "--no-boundary")
    _, out_sky, _ = _run(capsys, "--pred", str(pred_dir), "--masks", str(mask_dir), "--labels", "camvid",
                         "--json", "--no-boundary", "--ignore-index", "0")
    cm_default = np.array(json.loads(out_default)["confusion_matrix"])
    cm_sky = np.array(json.loads(out_sky)["confusion_matrix"])
    assert cm_sky[0].sum() == 0
    # With Sky ignored, CamVid's void (11) is an id outside the label set: still not counted.
    assert cm_sky.sum() == cm_default.sum() - cm_default[0].sum()


def test_two_annotators_from_the_command_line(capsys, data_dir):
    voc = _root(data_dir) / "voc"
    code, out, err = _run(capsys, "--pred", str(voc / "SegmentationClass_second_annotator"),
                        "--masks", str(voc / "SegmentationClass"), "--labels", "voc", "--annotator", "--json")
    data = json.loads(out)
    # Two official masks have no second annotation: said once, not failures of the three pairs.
    assert code == 0
    assert data["meta"]["masks_not_scored"] == ["2007_000032.png", "2007_000033.png"]
    assert err.count("\n") == 1 and "2 mask(s) have no saved prediction" in err and "2007_000033.png" in err
    ious = [r["IoU"] for r in data["per_class"] if r["IoU"] is not None]
    assert len(ious) == 7 and min(ious) >= 0.89
    assert len(data["images"]) == 3 and not any(im["error"] for im in data["images"])


def test_masks_of_images_not_given_are_summarised(capsys, data_dir, tmp_path):
    """A subset of images against a data set's whole masks folder: one line, exit 0."""
    voc = _root(data_dir) / "voc"
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(voc / "JPEGImages" / "2011_000003.jpg", images)
    code, out, err = _run(capsys, "--model", "fcn8s_camvid", "--gt-labels", "voc", "--images", str(images),
                          "--masks", str(voc / "SegmentationClass"), "--size", "96", "--device", "cpu",
                          "--no-boundary", "--lang", "ko")
    assert code == 0, err
    assert err.strip() == i18n.t("eval.cli.masks_without_image", "ko", n=4, names=short_list(
        ["2007_000032.png", "2007_000033.png", "2011_000006.png", "2011_000025.png"]))
    assert i18n.t("eval.cli.counted", "ko", scored=1, errors=0) in out
    # The VOC truth has classes the CamVid model cannot predict: the report says what pixel accuracy covers.
    truth = np.array(Image.open(voc / "SegmentationClass" / "2011_000003.png"))
    reachable = [i for i, c in enumerate(VOC.classes) if c in ("background", "car", "person", "bicycle")]
    used, valid = int(np.isin(truth, reachable).sum()), int((truth != 255).sum())
    assert used < valid  # 601 bottle pixels
    assert i18n.t("eval.accuracy_scope", "ko", pixels=used, left_out=valid - used) in out


def test_model_on_images(capsys, data_dir):
    voc = _root(data_dir) / "voc"
    code, out, err = _run(capsys, "--model", "lraspp_mobilenet_v3_large", "--images", str(voc / "JPEGImages"),
                          "--masks", str(voc / "SegmentationClass"), "--json", "--size", "96", "--device", "cpu",
                          "--no-boundary")
    assert code == 0, err
    data = json.loads(out)
    assert len(data["images"]) == 5 and not any(im["error"] for im in data["images"])
    valid = sum(int((np.array(Image.open(p)) != 255).sum()) for p in (voc / "SegmentationClass").glob("*.png"))
    assert data["summary"]["valid_pixels"] == valid


def test_usage_errors(capsys, data_dir, tmp_path):
    code, _, err = _run(capsys, "--masks", str(tmp_path))
    assert code == 2 and "--pred" in err
    code, _, err = _run(capsys, "--pred", str(tmp_path / "nope"), "--masks", str(tmp_path), "--labels", "voc")
    assert code == 2 and "not found" in err
    code, _, err = _run(capsys, "--pred", str(tmp_path), "--masks", str(tmp_path), "--labels", "isbi",
                        "--gt-labels", "voc")
    assert code == 2 and "do not match" in err
    code, _, err = _run(capsys, "--model", "no_such_model", "--images", str(tmp_path), "--masks", str(tmp_path))
    assert code == 2 and "no_such_model" in err


def test_voc_predictions_against_camvid_truth_use_the_preset(capsys, data_dir, tmp_path):
    root = _root(data_dir) / "camvid" / "valannot"
    frame = sorted(root.glob("*.png"))[0]
    truth = np.array(Image.open(frame))

    # A VOC "prediction" right on every car and pedestrian pixel, background elsewhere.
    pred = np.where(truth == 8, VOC.classes.index("car"), np.where(truth == 9, VOC.classes.index("person"), 0))
    (tmp_path / "pred").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "pred" / frame.name).write_bytes(encode_index_png(pred.astype(np.uint8), VOC))
    shutil.copy(frame, tmp_path / "masks" / frame.name)
    code, out, _ = _run(capsys, "--pred", str(tmp_path / "pred"), "--masks", str(tmp_path / "masks"),
                        "--labels", "voc", "--gt-labels", "camvid", "--json", "--no-boundary")
    assert code == 0
    data = json.loads(out)
    assert data["meta"]["mapping"] == "voc_to_camvid"
    rows = {r["class"]: r for r in data["per_class"]}
    assert rows["Car"]["IoU"] == 1.0 and rows["Pedestrian"]["IoU"] == 1.0
    assert rows["Sky"]["in_mean"] is False and rows["Sky"]["FN"] == int((truth == 0).sum())
    # The "other" column (VOC background on Sky, Road...) is counted but is no class of its own.
    assert np.array(data["confusion_matrix"]).shape == (12, 12) and len(data["per_class"]) == 11


def test_text_report_tells_what_was_done_to_masks(capsys, tmp_path):
    """Resized masks, unknown colours and ids outside the label set are said in the text report, too."""
    (tmp_path / "pred").mkdir()
    (tmp_path / "masks").mkdir()
    pred = np.zeros((4, 4), np.uint8)
    for stem in ("resized", "colours", "ids"):
        (tmp_path / "pred" / f"{stem}.png").write_bytes(encode_index_png(pred, CAMVID))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "masks" / "resized.png")
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:] = CAMVID.colors[3]
    rgb[0, :2] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "masks" / "colours.png")
    ids = np.zeros((4, 4), np.uint8)
    ids[0, 0] = 40
    Image.fromarray(ids).save(tmp_path / "masks" / "ids.png")
    code, out, _ = _run(capsys, "--pred", str(tmp_path / "pred"), "--masks", str(tmp_path / "masks"),
                        "--labels", "camvid", "--no-boundary")
    assert code == 0
    assert i18n.t("eval.batch.notices", "en", n=3) + ":" in out
    assert "resized.png: the mask is 8×8 but the image is 4×4" in out
    assert "colours.png: 1 colour(s) are in no palette entry (2 pixels): RGB(1, 2, 3) × 2" in out
    assert "ids.png: ids that are neither a class of CamVid (11 classes) (0..10) nor the ignore label" in out
    assert "40 × 1" in out
