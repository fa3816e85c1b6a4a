"""segdemo.evaluate.metrics against independent references on real masks and hand-worked cases.

References: torchmetrics (a test dependency), the confusion-matrix logic of
torchvision's segmentation reference scripts (re-typed below, it is not an
installed module), and small examples worked out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchmetrics.classification import (MulticlassF1Score, MulticlassJaccardIndex, MulticlassPrecision,
                                         MulticlassRecall)

from segdemo.evaluate import metrics
from segdemo.config import data_dir



# ---------------------------------------------------------------- the references


class TorchvisionConfusionMatrix:
    """torchvision/references/segmentation/utils.py ConfusionMatrix, as published."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.mat: torch.Tensor | None = None

    def update(self, a: torch.Tensor, b: torch.Tensor) -> None:  # a: target, b: prediction
        n = self.num_classes
        if self.mat is None:
            self.mat = torch.zeros((n, n), dtype=torch.int64, device=a.device)
        with torch.inference_mode():
            k = (a >= 0) & (a < n)
            inds = n * a[k].to(torch.int64) + b[k]
            self.mat += torch.bincount(inds, minlength=n**2).reshape(n, n)

    def compute(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.mat.float()
        acc_global = torch.diag(h).sum() / h.sum()
        acc = torch.diag(h) / h.sum(1)
        iu = torch.diag(h) / (h.sum(1) + h.sum(0) - torch.diag(h))
        return acc_global, acc, iu


def fcn_paper_metrics(cm: np.ndarray) -> dict[str, float]:
    """The four metrics of Long et al. (FCN, 2015, section 5), written from the paper's formulas.

    n_ij: pixels of class i predicted as j; t_i = sum_j n_ij.
    """
    n = cm.astype(np.float64)
    t = n.sum(1)
    present = t > 0
    iu = np.array([n[i, i] / (t[i] + n[:, i].sum() - n[i, i]) if (t[i] + n[:, i].sum()) > 0 else np.nan
                   for i in range(len(t))])
    return {
        "pixel_accuracy": np.trace(n) / t.sum(),
        "mean_accuracy": np.mean([n[i, i] / t[i] for i in range(len(t)) if present[i]]),
        "mean_iu": np.nanmean(iu),
        "fw_iu": sum(t[i] * iu[i] for i in range(len(t)) if present[i]) / t.sum(),
    }


# ---------------------------------------------------------------- real masks


def _data():
    root = data_dir()
    if not (root / "voc" / "SegmentationClass").is_dir() or not (root / "camvid" / "valannot").is_dir():
        pytest.skip(f"real data not found under {root} (set SEGDEMO_DATA_DIR)")
    return root


def _load(path) -> np.ndarray:
    return np.array(Image.open(path))


def real_pairs() -> list[tuple[str, np.ndarray, np.ndarray, int, int]]:
    """(name, prediction, truth, num_classes, ignore) from real annotations.

    VOC: the second annotator's mask scored against the official one. CamVid:
    the annotation of the next val frame scored against this frame's (real
    masks that disagree along every moving edge). Void in the mask playing the
    prediction is replaced by a class, since a prediction has no void.
    """
    root = _data()
    pairs = []
    for stem in ("2011_000003", "2011_000006", "2011_000025"):
        truth = _load(root / "voc" / "SegmentationClass" / f"{stem}.png")
        second = _load(root / "voc" / "SegmentationClass_second_annotator" / f"{stem}.png")
        pairs.append((stem, np.where(second == 255, 0, second), truth, 21, 255))
    frames = sorted((root / "camvid" / "valannot").glob("*.png"))[:4]
    for a, b in zip(frames, frames[1:]):
        truth, other = _load(a), _load(b)
        pairs.append((a.stem, np.where(other == 11, 3, other), truth, 11, 11))
    return pairs


@pytest.fixture(scope="module")
def pairs():
    return real_pairs()


def test_confusion_matrix_matches_torchvision_reference(pairs):
    for name, pred, truth, n, ignore in pairs:
        ref = TorchvisionConfusionMatrix(n)
        ref.update(torch.from_numpy(truth.astype(np.int64)), torch.from_numpy(pred.astype(np.int64)))
        cm = metrics.confusion_matrix(pred, truth, n, ignore)
        np.testing.assert_array_equal(cm, ref.mat.numpy(), err_msg=name)
        assert cm.sum() == int(((truth != ignore) & (truth < n)).sum())
        acc_global, acc, iu = ref.compute()
        np.testing.assert_allclose(metrics.per_class_iou(cm), iu.numpy(), rtol=1e-6, equal_nan=True)
        np.testing.assert_allclose(metrics.per_class_recall(cm), acc.numpy(), rtol=1e-6, equal_nan=True)
        assert metrics.pixel_accuracy(cm) == pytest.approx(acc_global.item(), rel=1e-6)


def test_accumulated_matrix_matches_torchvision_over_a_set(pairs):
    camvid = [p for p in pairs if p[3] == 11]
    ref = TorchvisionConfusionMatrix(11)
    total = np.zeros((11, 11), np.int64)
    for _, pred, truth, n, ignore in camvid:
        ref.update(torch.from_numpy(truth.astype(np.int64)), torch.from_numpy(pred.astype(np.int64)))
        total += metrics.confusion_matrix(pred, truth, n, ignore)
    np.testing.assert_array_equal(total, ref.mat.numpy())
    _, _, iu = ref.compute()
    assert metrics.mean_iou(total) == pytest.approx(float(np.nanmean(iu.numpy())), rel=1e-6)


def test_iou_matches_torchmetrics_jaccard(pairs):
    for name, pred, truth, n, ignore in pairs:
        p, t = torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(truth.astype(np.int64))
        cm = metrics.confusion_matrix(pred, truth, n, ignore)
        ours = metrics.per_class_iou(cm)
        per_class = MulticlassJaccardIndex(n, average=None, ignore_index=ignore)(p, t).numpy()
        present = np.isfinite(ours)
        np.testing.assert_allclose(ours[present], per_class[present], rtol=1e-5, err_msg=name)
        # torchmetrics reports an absent class as zero_division (0 by default) ...
        assert (per_class[~present] == 0).all()
        # ... but its macro average leaves absent classes out, as mean_iou does.
        macro = MulticlassJaccardIndex(n, average="macro", ignore_index=ignore)(p, t).item()
        assert metrics.mean_iou(cm) == pytest.approx(macro, rel=1e-5)


def test_dice_precision_recall_match_torchmetrics(pairs):
    for name, pred, truth, n, ignore in pairs:
        p, t = torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(truth.astype(np.int64))
        cm = metrics.confusion_matrix(pred, truth, n, ignore)
        for ours, ref in ((metrics.per_class_dice(cm), MulticlassF1Score),
                          (metrics.per_class_precision(cm), MulticlassPrecision),
                          (metrics.per_class_recall(cm), MulticlassRecall)):
            theirs = ref(n, average=None, ignore_index=ignore)(p, t).numpy()
            defined = np.isfinite(ours)
            np.testing.assert_allclose(ours[defined], theirs[defined], rtol=1e-5, err_msg=f"{name} {ref.__name__}")
            assert (theirs[~defined] == 0).all()


def test_fcn_paper_metrics(pairs):
    for name, pred, truth, n, ignore in pairs:
        cm = metrics.confusion_matrix(pred, truth, n, ignore)
        ref = fcn_paper_metrics(cm)
        assert metrics.pixel_accuracy(cm) == pytest.approx(ref["pixel_accuracy"], rel=1e-9), name
        assert metrics.mean_class_accuracy(cm) == pytest.approx(ref["mean_accuracy"], rel=1e-9), name
        assert metrics.mean_iou(cm) == pytest.approx(ref["mean_iu"], rel=1e-9), name
        assert metrics.frequency_weighted_iou(cm) == pytest.approx(ref["fw_iu"], rel=1e-9), name


def test_two_annotators_agree_as_readme_says(pairs):
    """The data README: the second annotation agrees at per-class IoU 0.89..1.00."""
    root = _data()
    for stem in ("2011_000003", "2011_000006", "2011_000025"):
        truth = _load(root / "voc" / "SegmentationClass" / f"{stem}.png")
        second = _load(root / "voc" / "SegmentationClass_second_annotator" / f"{stem}.png")
        # Pixels either annotator marked void are not compared.
        both = np.where(second == 255, 255, truth)
        cm = metrics.confusion_matrix(np.where(second == 255, 0, second), both, 21, 255)
        ious = metrics.per_class_iou(cm)
        present = ious[np.isfinite(ious)]
        assert len(present) >= 3
        assert present.min() >= 0.89 and present.max() <= 1.0, (stem, present)


# ---------------------------------------------------------------- hand-worked cases


def test_hand_worked_three_class_example():
    # truth  pred
    # 0 0 1  0 1 1
    # 1 1 2  1 1 1
    # 2 2 9  2 0 0     (9 = ignore)
    truth = np.array([[0, 0, 1], [1, 1, 2], [2, 2, 9]])
    pred = np.array([[0, 1, 1], [1, 1, 1], [2, 0, 0]])
    cm = metrics.confusion_matrix(pred, truth, 3, ignore_index=9)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 3, 0], [1, 1, 1]])
    tp, fp, fn = metrics.per_class_counts(cm)
    np.testing.assert_array_equal(tp, [1, 3, 1])
    np.testing.assert_array_equal(fp, [1, 2, 0])
    np.testing.assert_array_equal(fn, [1, 0, 2])
    np.testing.assert_allclose(metrics.per_class_iou(cm), [1 / 3, 3 / 5, 1 / 3])
    np.testing.assert_allclose(metrics.per_class_dice(cm), [2 / 4, 6 / 8, 2 / 4])
    np.testing.assert_allclose(metrics.per_class_precision(cm), [1 / 2, 3 / 5, 1 / 1])
    np.testing.assert_allclose(metrics.per_class_recall(cm), [1 / 2, 3 / 3, 1 / 3])
    assert metrics.pixel_accuracy(cm) == pytest.approx(5 / 8)
    assert metrics.mean_iou(cm) == pytest.approx((1 / 3 + 3 / 5 + 1 / 3) / 3)
    assert metrics.mean_class_accuracy(cm) == pytest.approx((1 / 2 + 1 + 1 / 3) / 3)
    assert metrics.frequency_weighted_iou(cm) == pytest.approx((2 * 1 / 3 + 3 * 3 / 5 + 3 * 1 / 3) / 8)


def test_empty_class_is_nan_and_predicted_only_class_is_zero():
    truth = np.array([[0, 0], [1, 1]])
    pred = np.array([[0, 2], [1, 1]])   # class 2 predicted, never true; class 3 nowhere
    cm = metrics.confusion_matrix(pred, truth, 4)
    iou = metrics.per_class_iou(cm)
    assert iou[2] == 0.0 and math.isnan(iou[3])
    assert math.isnan(metrics.per_class_recall(cm)[2])      # no true pixel: recall undefined
    assert metrics.per_class_precision(cm)[2] == 0.0
    assert metrics.mean_iou(cm) == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert metrics.mean_class_accuracy(cm) == pytest.approx((1 / 2 + 1) / 2)


def test_all_ignored_image():
    truth = np.full((4, 5), 255)
    pred = np.zeros((4, 5), int)
    cm = metrics.confusion_matrix(pred, truth, 21, 255)
    assert cm.sum() == 0
    assert math.isnan(metrics.pixel_accuracy(cm))
    assert math.isnan(metrics.mean_iou(cm))
    assert math.isnan(metrics.mean_class_accuracy(cm))
    assert math.isnan(metrics.frequency_weighted_iou(cm))
    assert np.isnan(metrics.per_class_iou(cm)).all()


def test_single_class_image():
    truth = np.full((6, 7), 3)
    cm = metrics.confusion_matrix(truth.copy(), truth, 5)
    iou = metrics.per_class_iou(cm)
    assert iou[3] == 1.0 and np.isnan(np.delete(iou, 3)).all()
    assert metrics.mean_iou(cm) == 1.0 and metrics.frequency_weighted_iou(cm) == 1.0
    ref = MulticlassJaccardIndex(5, average="macro")(torch.from_numpy(truth), torch.from_numpy(truth)).item()
    assert ref == pytest.approx(1.0)
    # Everything predicted wrong: class 3 has IoU 0, the predicted class too.
    cm_wrong = metrics.confusion_matrix(np.full_like(truth, 1), truth, 5)
    np.testing.assert_array_equal(metrics.per_class_iou(cm_wrong)[[1, 3]], [0.0, 0.0])
    assert metrics.mean_iou(cm_wrong) == 0.0


def test_prediction_outside_label_set_is_rejected():
    with pytest.raises(ValueError):
        metrics.confusion_matrix(np.array([5]), np.array([0]), 3)


# ---------------------------------------------------------------- boundary F1


def brute_force_bf(pred: np.ndarray, truth: np.ndarray, c: int, tol: float) -> float:
    """BF score by explicit loops over boundary pixels (4-neighbour inner boundary)."""
    def boundary(mask):
        h, w = mask.shape
        pts = []
        for y in range(h):
            for x in range(w):
                if mask[y, x] and any(0 <= y + dy < h and 0 <= x + dx < w and not mask[y + dy, x + dx]
                                      for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1))):
                    pts.append((y, x))
        return pts

    bp, bt = boundary(pred == c), boundary(truth == c)
    def close(a, b):
        return np.mean([min(math.hypot(y - v, x - u) for v, u in b) <= tol for y, x in a])
    p, r = close(bp, bt), close(bt, bp)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def test_boundary_f1_hand_worked_shifted_square():
    truth = np.zeros((30, 30), int)
    truth[10:20, 10:20] = 1
    pred = np.zeros_like(truth)
    pred[10:20, 12:22] = 1  # shifted right by 2 pixels
    # Tolerance 2: every boundary pixel has a partner within 2 px.
    assert metrics.boundary_f1_per_class(pred, truth, 2, tolerance=2.0)[1] == pytest.approx(1.0)
    # Tolerance 1: of 36 boundary pixels, 9 + 9 on top/bottom rows and 2 corners
    # of the near side match, so precision = recall = 20/36.
    assert metrics.boundary_f1_per_class(pred, truth, 2, tolerance=1.0)[1] == pytest.approx(20 / 36)
    assert brute_force_bf(pred, truth, 1, 1.0) == pytest.approx(20 / 36)


def test_boundary_f1_matches_brute_force_on_real_crop(pairs):
    name, pred, truth, n, ignore = next(p for p in pairs if p[3] == 11)
    crop = (slice(150, 200), slice(200, 260))
    p, t = pred[crop], truth[crop]
    ours = metrics.boundary_f1_per_class(p, t, n, tolerance=2.0)
    checked = 0
    for c in range(n):
        if (t == c).any() and (p == c).any() and 0 < (t == c).sum() < t.size and 0 < (p == c).sum() < p.size:
            assert ours[c] == pytest.approx(brute_force_bf(p, t, c, 2.0)), (name, c)
            checked += 1
    assert checked >= 2
