"""Segmentation metrics from a confusion matrix, and the boundary F1 score.

Conventions (the FCN paper, torchvision's reference scripts, MMSegmentation):
the confusion matrix ``cm[t, p]`` counts pixels of true class ``t`` predicted
as ``p``; pixels whose truth is the ignore label are left out of every count.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def confusion_matrix(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """Confusion matrix (rows: truth, columns: prediction) over valid pixels.

    Pixels whose truth equals ``ignore_index`` or lies outside ``[0, num_classes)``
    are not counted; a prediction outside the range is an error.
    """
    pred = np.asarray(pred).reshape(-1).astype(np.int64)
    target = np.asarray(target).reshape(-1).astype(np.int64)
    if pred.shape != target.shape:
        raise ValueError(f"prediction and truth differ in size: {pred.size} vs {target.size}")
    valid = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        valid &= target != ignore_index
    if pred[valid].size and (pred[valid].min() < 0 or pred[valid].max() >= num_classes):
        raise ValueError("prediction has labels outside the label set")
    return np.bincount(
        num_classes * target[valid] + pred[valid], minlength=num_classes**2
    ).reshape(num_classes, num_classes)


def per_class_iou(cm: np.ndarray) -> np.ndarray:
    """IoU = TP / (TP + FP + FN) per class; NaN where the class is absent from both."""
    cm = cm.astype(np.float64)
    tp = np.diag(cm)
    denom = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tp / np.where(denom > 0, denom, 1), np.nan)


def pixel_accuracy(cm: np.ndarray) -> float:
    """Share of valid pixels whose predicted class is right."""
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def mean_iou(cm: np.ndarray) -> float:
    """Mean of the per-class IoUs over classes present in truth or prediction."""
    ious = per_class_iou(cm)
    return float(np.nanmean(ious)) if np.isfinite(ious).any() else float("nan")


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the inner boundary)."""
    eroded = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(2, 1),
                                    border_value=1)
    return mask & ~eroded


def default_boundary_tolerance(shape: tuple[int, int]) -> float:
    """0.75 % of the image diagonal, the tolerance of Csurka et al.'s BF score."""
    return 0.0075 * float(np.hypot(*shape))


def boundary_f1_per_class(
    pred: np.ndarray,
    target: np.ndarray,
    num_classes: int,
    ignore_index: int | None = None,
    tolerance: float | None = None,
) -> np.ndarray:
    """Boundary F1 (BF score, Csurka et al. 2013) of each class; NaN where absent.

    A predicted boundary pixel counts as correct when a true boundary pixel of
    the same class lies within ``tolerance`` pixels (Euclidean), and vice versa
    for recall. Ignored pixels take no part: the prediction there is replaced by
    the ignore label before boundaries are traced. A class that fills the image
    in both (no boundary pixel in either) scores 1; a boundary in only one scores 0.
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    if tolerance is None:
        tolerance = default_boundary_tolerance(target.shape)
    valid = np.ones(target.shape, dtype=bool)
    if ignore_index is not None:
        valid = target != ignore_index
    scores = np.full(num_classes, np.nan)
    for c in range(num_classes):
        gt_c = (target == c) & valid
        pr_c = (pred == c) & valid
        if not gt_c.any() and not pr_c.any():
            continue
        gt_b = _boundary(gt_c)
        pr_b = _boundary(pr_c)
        if not gt_b.any() and not pr_b.any():
            # The class fills every valid pixel in both: no boundary to miss and none
            # invented, so precision = recall = 1 (all of zero boundary pixels match).
            scores[c] = 1.0
            continue
        if not gt_b.any() or not pr_b.any():
            scores[c] = 0.0
            continue
        # Every boundary pixel of both lies in the bounding box of their union, so
        # distances computed inside it are exact; small objects then cost little.
        rows = np.flatnonzero((gt_b | pr_b).any(1))
        cols = np.flatnonzero((gt_b | pr_b).any(0))
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        gt_b, pr_b = gt_b[box], pr_b[box]
        dist_to_gt = ndimage.distance_transform_edt(~gt_b)
        dist_to_pr = ndimage.distance_transform_edt(~pr_b)
        precision = float((dist_to_gt[pr_b] <= tolerance).mean())
        recall = float((dist_to_pr[gt_b] <= tolerance).mean())
        scores[c] = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return scores


# ---------------------------------------------------------------- per-class counts and scores
#
# Every score below is read off the same confusion matrix. For class c:
#   TP = cm[c, c]               (truth c, predicted c)
#   FP = column sum - TP        (predicted c, truth something else)
#   FN = row sum - TP           (truth c, predicted something else)
# A score whose denominator is zero is undefined: it is returned as NaN, and the
# caller decides (see segdemo.evaluate) how such a class enters an average.


def per_class_counts(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(TP, FP, FN)`` pixel counts of every class, as int64 arrays."""
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm).copy()
    return tp, cm.sum(0) - tp, cm.sum(1) - tp


def _ratio(num: np.ndarray, denom: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    denom = np.asarray(denom, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, num / np.where(denom > 0, denom, 1), np.nan)


def per_class_dice(cm: np.ndarray) -> np.ndarray:
    """Dice = F1 = 2 TP / (2 TP + FP + FN) per class; NaN where absent from both."""
    tp, fp, fn = per_class_counts(cm)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def per_class_precision(cm: np.ndarray) -> np.ndarray:
    """Precision = TP / (TP + FP) per class; NaN where the class is never predicted."""
    tp, fp, _ = per_class_counts(cm)
    return _ratio(tp, tp + fp)


def per_class_recall(cm: np.ndarray) -> np.ndarray:
    """Recall = class accuracy = TP / (TP + FN); NaN where the class is not in the truth."""
    tp, _, fn = per_class_counts(cm)
    return _ratio(tp, tp + fn)


def mean_class_accuracy(cm: np.ndarray) -> float:
    """FCN paper's mean accuracy: the mean recall over classes present in the truth."""
    recall = per_class_recall(cm)
    return float(np.nanmean(recall)) if np.isfinite(recall).any() else float("nan")


def frequency_weighted_iou(cm: np.ndarray, classes: np.ndarray | None = None) -> float:
    """FCN paper's frequency-weighted IoU: per-class IoU weighted by the class's share of truth pixels.

    ``classes`` (a boolean mask over the first classes of ``cm``) limits the
    average to those classes; a mapping's extra "other" column is never a class.
    """
    cm = np.asarray(cm, dtype=np.float64)
    n = cm.shape[0] if classes is None else len(classes)
    support = cm[:n].sum(1)
    use = support > 0
    if classes is not None:
        use &= np.asarray(classes, bool)
    total = support[use].sum()
    if total == 0:
        return float("nan")
    ious = per_class_iou(cm)[:n]
    return float((support[use] * ious[use]).sum() / total)
