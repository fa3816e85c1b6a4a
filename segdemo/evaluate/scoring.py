"""From a prediction and its truth to the tables the Evaluate page shows.

The counting is :mod:`segdemo.evaluate.metrics`; this module adds the conventions that
libraries disagree on, each as an explicit :class:`Policy`:

* a class absent from both truth and prediction (its IoU is 0/0):
  ``"nan"`` leaves it out of the mean (torchvision's reference scripts,
  MMSegmentation, ``np.nanmean``); ``"zero"`` scores it 0 and keeps it in the
  mean (a plain average over all classes, which punishes every image for the
  classes it does not show); ``"minus_one"`` marks it -1 and leaves it out of
  the mean (torchmetrics' ``MeanIoU(per_class=True)``);
* background in or out of the class averages (torchmetrics'
  ``include_background``). Background pixels are still counted: a person
  predicted on background is still a false positive for person.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from segdemo.evaluate import metrics
from segdemo.evaluate.mapping import LabelMapping
from segdemo.evaluate.masks import Notice, valid_mask
from segdemo.i18n.errors import UserError
from segdemo.data.labels import LabelSet

ABSENT_POLICIES = ("nan", "zero", "minus_one")
ABSENT_VALUE = {"nan": float("nan"), "zero": 0.0, "minus_one": -1.0}


@dataclass(frozen=True)
class Policy:
    """How undefined per-class scores and the background class enter the averages."""

    absent: str = "nan"
    include_background: bool = True

    def __post_init__(self) -> None:
        if self.absent not in ABSENT_POLICIES:
            raise ValueError(f"absent policy must be one of {ABSENT_POLICIES}")


class EvaluationError(UserError):
    """A pair that cannot be scored (e.g. every pixel ignored); ``key`` is a catalogue key."""


@dataclass
class Scores:
    """Per-class counts and scores and the summary metrics of one confusion matrix.

    Arrays have one entry per truth class (the "other" column of a label mapping
    is not a class and has none). ``in_mean`` says which classes enter the class
    averages under the policy; ``absent`` which had TP + FP + FN = 0.
    """

    classes: tuple[str, ...]
    cm: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    iou: np.ndarray
    dice: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    boundary_f1: np.ndarray
    absent: np.ndarray
    evaluated: np.ndarray
    in_mean: np.ndarray
    policy: Policy
    summary: dict[str, float] = field(default_factory=dict)

    def rows(self) -> list[dict[str, object]]:
        """One dict per class: the per-class table (for DataFrames, CSV, JSON)."""
        out = []
        for i, name in enumerate(self.classes):
            out.append({
                "id": i, "class": name,
                "TP": int(self.tp[i]), "FP": int(self.fp[i]), "FN": int(self.fn[i]),
                "IoU": _num(self.iou[i]), "Dice": _num(self.dice[i]),
                "precision": _num(self.precision[i]), "recall": _num(self.recall[i]),
                "boundary_F1": _num(self.boundary_f1[i]),
                "absent": bool(self.absent[i]), "evaluated": bool(self.evaluated[i]),
                "in_mean": bool(self.in_mean[i]),
            })
        return out


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def _mean(values: np.ndarray, use: np.ndarray) -> float:
    picked = values[use]
    picked = picked[np.isfinite(picked)]
    return float(picked.mean()) if picked.size else float("nan")


def score_confusion(
    cm: np.ndarray,
    label_set: LabelSet,
    policy: Policy = Policy(),
    evaluated: np.ndarray | None = None,
    boundary_f1: np.ndarray | None = None,
    ignore_index: int | None = None,
) -> Scores:
    """All per-class scores and summary metrics of ``cm`` under ``policy``.

    An ``ignore_index`` that is also a class id (``--ignore-index 0``) leaves that
    class out of every mean, as torchmetrics does: its truth pixels are not
    counted, so its IoU would be 0 by construction.

    ``cm`` may have one extra last row/column ("other" predictions of a label
    mapping); it counts as wrong for every class but is not itself scored.
    ``evaluated`` (per class) leaves classes the model cannot predict out of the
    averages and out of pixel accuracy.
    """
    cm = np.asarray(cm, dtype=np.int64)
    n = label_set.num_classes
    if cm.shape[0] not in (n, n + 1) or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix {cm.shape} does not fit {n} classes")
    tp, fp, fn = (a[:n] for a in metrics.per_class_counts(cm))
    absent = (tp + fp + fn) == 0
    iou_raw = metrics.per_class_iou(cm)[:n]
    dice_raw = metrics.per_class_dice(cm)[:n]
    fill = ABSENT_VALUE[policy.absent]
    iou = np.where(absent, fill, iou_raw)
    dice = np.where(absent, fill, dice_raw)
    precision = metrics.per_class_precision(cm)[:n]
    recall = metrics.per_class_recall(cm)[:n]
    evaluated = np.ones(n, bool) if evaluated is None else np.asarray(evaluated, bool).copy()
    if ignore_index is not None and 0 <= ignore_index < n:
        evaluated[ignore_index] = False
    in_class_mean = evaluated.copy()
    if not policy.include_background and label_set.background_index is not None:
        in_class_mean[label_set.background_index] = False
    # Which classes the IoU / Dice means use: "zero" keeps absent classes (as 0).
    in_mean = in_class_mean & (~absent if policy.absent != "zero" else True)
    bf = np.full(n, np.nan) if boundary_f1 is None else np.asarray(boundary_f1, float)[:n]

    rows_used = cm[:n][evaluated]
    valid_total = rows_used.sum()
    summary = {
        "mIoU": _mean(iou, in_mean),
        "pixel_accuracy": float(np.diag(cm)[:n][evaluated].sum() / valid_total) if valid_total else float("nan"),
        "mean_class_accuracy": _mean(recall, in_class_mean),
        "fw_IoU": metrics.frequency_weighted_iou(cm, in_class_mean),
        "mean_Dice": _mean(dice, in_mean),
        "mean_precision": _mean(precision, in_class_mean),
        "mean_recall": _mean(recall, in_class_mean),
        "mean_boundary_F1": _mean(bf, in_class_mean),
        "valid_pixels": int(cm.sum()),
        "accuracy_pixels": int(valid_total),  # fewer than valid_pixels when a mapping leaves classes out
        "classes_in_mean": int(in_mean.sum()),
    }
    return Scores(classes=label_set.classes, cm=cm, tp=tp, fp=fp, fn=fn, iou=iou, dice=dice,
                  precision=precision, recall=recall, boundary_f1=bf, absent=absent,
                  evaluated=evaluated, in_mean=in_mean, policy=policy, summary=summary)


@dataclass
class PairResult:
    """One scored (prediction, truth) pair: the mapped arrays, validity, scores."""

    name: str
    pred: np.ndarray          # in the truth's numbering ("other" = num_classes)
    truth: np.ndarray
    valid: np.ndarray
    scores: Scores
    notices: list[Notice] = field(default_factory=list)


def evaluate_pair(
    pred: np.ndarray,
    truth: np.ndarray,
    label_set: LabelSet,
    ignore_index: int | None,
    policy: Policy = Policy(),
    mapping: LabelMapping | None = None,
    boundary: bool = True,
    name: str = "",
) -> PairResult:
    """Score one prediction (model ids) against one truth mask (truth ids).

    Raises :class:`EvaluationError` when the sizes differ or no pixel is left
    once ignored ones are removed.
    """
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    if pred.shape != truth.shape:
        raise EvaluationError("eval.err.size_mismatch", name=name, pred=f"{pred.shape[1]}×{pred.shape[0]}",
                              truth=f"{truth.shape[1]}×{truth.shape[0]}")
    n = label_set.num_classes
    if mapping is not None:
        mapped = mapping.apply(pred)
        n_eval, evaluated = mapping.num_eval_classes, mapping.reachable()
    else:
        if pred.size and (pred.min() < 0 or pred.max() >= n):
            raise EvaluationError("eval.err.pred_out_of_set", name=name, n=n)
        mapped, n_eval, evaluated = pred.astype(np.int32), n, None
    valid = valid_mask(truth, n, ignore_index)
    if not valid.any():
        raise EvaluationError("eval.err.all_ignored", name=name)
    # Invalid truth becomes -1 so it is outside every confusion-matrix row,
    # whatever the number of columns a mapping adds.
    truth_eval = np.where(valid, truth, -1)
    cm = metrics.confusion_matrix(mapped, truth_eval, n_eval)
    bf = None
    if boundary:
        bf = metrics.boundary_f1_per_class(np.where(valid, mapped, -1), truth_eval, n, ignore_index=-1)
    scores = score_confusion(cm, label_set, policy, evaluated, bf, ignore_index)
    return PairResult(name=name, pred=mapped, truth=truth, valid=valid, scores=scores)


def evaluate_annotators(
    first: np.ndarray,
    second: np.ndarray,
    label_set: LabelSet,
    ignore_index: int | None,
    policy: Policy = Policy(),
    boundary: bool = True,
    name: str = "",
) -> PairResult:
    """Agreement of two human annotations of one image: ``second`` scored against ``first``.

    Only pixels both annotators labelled (neither ignore nor outside the label
    set) are compared: an annotator's "don't know" is no disagreement.
    """
    first, second = np.asarray(first), np.asarray(second)
    if first.shape != second.shape:
        raise EvaluationError("eval.err.size_mismatch", name=name, pred=f"{second.shape[1]}×{second.shape[0]}",
                              truth=f"{first.shape[1]}×{first.shape[0]}")
    n = label_set.num_classes
    second_valid = valid_mask(second, n, ignore_index)
    truth = np.where(second_valid, first, -1)
    pred = np.where(second_valid, second, 0)
    return evaluate_pair(pred, truth, label_set, ignore_index, policy, None, boundary, name)


def iou_formula_values(scores: Scores, class_id: int) -> dict[str, object]:
    """The numbers that fill IoU = TP / (TP + FP + FN) for one class."""
    tp, fp, fn = int(scores.tp[class_id]), int(scores.fp[class_id]), int(scores.fn[class_id])
    denom = tp + fp + fn
    return {"tp": tp, "fp": fp, "fn": fn, "denominator": denom,
            "iou": float(tp / denom) if denom else None}


def normalise_confusion(cm: np.ndarray, mode: str) -> np.ndarray:
    """``"count"``, ``"row"`` (share of each true class: recall on the diagonal) or
    ``"col"`` (share of each predicted class: precision on the diagonal)."""
    cm = np.asarray(cm, dtype=np.float64)
    if mode == "count":
        return cm
    axis = 1 if mode == "row" else 0
    sums = cm.sum(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sums > 0, cm / np.where(sums > 0, sums, 1), np.nan)


# ------------------------------------------------------------------ predictions of a data set


@dataclass
class DatasetScores:
    """Scores of predictions over a set of images (one image is a set of one).

    mIoU and pixel accuracy come from one confusion matrix over every pixel of
    every image (:func:`score_confusion`, the Evaluate page's function). Boundary F1
    has two averages, both kept and always named: ``boundary_f1`` is *image-wise*
    (per image over the classes present, then over the images: the model cards and
    the FCN page), ``boundary_f1_classwise`` is *class-wise* (each class over the
    images it appears in, then over the classes: the Evaluate page's batch and
    ``segdemo eval``). For one image they are equal.
    """

    miou: float
    pixel_acc: float
    per_class_iou: np.ndarray
    boundary_f1: float
    per_class_boundary_f1: np.ndarray
    images: int
    confusion: np.ndarray
    boundary_f1_classwise: float = float("nan")

    def as_card(self, label_set: LabelSet) -> dict[str, object]:
        """The scores as a model card stores them (rounded; undefined values as null)."""
        def clean(v: float) -> float | None:
            return None if not np.isfinite(v) else round(float(v), 4)

        return {
            "miou": clean(self.miou),
            "pixel_acc": clean(self.pixel_acc),
            "boundary_f1": clean(self.boundary_f1),
            "boundary_f1_classwise": clean(self.boundary_f1_classwise),
            "per_class_iou": {c: clean(v) for c, v in zip(label_set.classes, self.per_class_iou)},
            "per_class_boundary_f1": {c: clean(v) for c, v in zip(label_set.classes, self.per_class_boundary_f1)},
            "images": self.images,
        }


def score_predictions(preds: list[np.ndarray], targets: list[np.ndarray], label_set: LabelSet,
                      with_boundary: bool = True) -> DatasetScores:
    """Score label maps against their truths (same label set; ``label_set.ignore_index`` ignored).

    The one scoring path of training, the model cards, the FCN and U-Net pages.
    """
    k = label_set.num_classes
    cm = np.zeros((k, k), dtype=np.int64)
    bf_images, bf_classes = [], []
    for p, t in zip(preds, targets):
        cm += metrics.confusion_matrix(p, t, k, label_set.ignore_index)
        if with_boundary:
            bf = metrics.boundary_f1_per_class(p, t, k, label_set.ignore_index)
            bf_classes.append(bf)
            if np.isfinite(bf).any():
                bf_images.append(float(np.nanmean(bf)))
    scores = score_confusion(cm, label_set)
    with warnings.catch_warnings():  # a class absent from every image has no boundary F1: NaN, said once here
        warnings.simplefilter("ignore", RuntimeWarning)
        per_class_bf = np.nanmean(np.stack(bf_classes), axis=0) if bf_classes else np.full(k, np.nan)
        classwise = float(np.nanmean(per_class_bf)) if np.isfinite(per_class_bf).any() else float("nan")
    return DatasetScores(
        miou=scores.summary["mIoU"],
        pixel_acc=scores.summary["pixel_accuracy"],
        per_class_iou=scores.iou,
        boundary_f1=float(np.mean(bf_images)) if bf_images else float("nan"),
        per_class_boundary_f1=per_class_bf,
        images=len(preds),
        confusion=cm,
        boundary_f1_classwise=classwise,
    )
