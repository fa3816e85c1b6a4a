"""COCO-style average precision for instance masks and boxes at one IoU threshold (AP50).

Follows pycocotools' ``COCOeval`` for one category, area range "all" and
``maxDets`` 100, without crowd regions:

* per image, detections are taken in descending score order (at most
  ``max_detections``); each is matched to the not-yet-matched ground truth with
  the highest IoU, provided that IoU is >= the threshold; otherwise it is a
  false positive;
* over the data set, all detections are sorted by score (stable), the cumulative
  TP/FP counts give precision and recall; precision is made monotone
  (non-increasing in recall) and read at the 101 recall points 0, 0.01, ..., 1
  (the first detection reaching each recall; 0 beyond the highest recall);
  AP is the mean of the 101 values;
* with no ground truth at all, AP is undefined (``nan``; pycocotools reports -1).

Reference: cocodataset/cocoapi ``PythonAPI/pycocotools/cocoeval.py``,
``evaluateImg`` (the matching loop, starting bar ``min(t, 1 - 1e-10)``, ties
going to the later ground truth) and ``accumulate`` (``np.searchsorted(rc,
recThrs, side='left')``, precision 0 past the last recall). torchmetrics'
``MeanAveragePrecision`` needs pycocotools or faster-coco-eval as a backend,
neither of which segdemo depends on, so the tests check hand-worked cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # pycocotools' recThrs


def mask_iou_matrix(pred_masks: np.ndarray, gt_masks: np.ndarray) -> np.ndarray:
    """(D, H, W) and (G, H, W) boolean masks -> (D, G) IoU."""
    if len(pred_masks) == 0 or len(gt_masks) == 0:
        return np.zeros((len(pred_masks), len(gt_masks)))
    p = pred_masks.reshape(len(pred_masks), -1).astype(np.float64)
    g = gt_masks.reshape(len(gt_masks), -1).astype(np.float64)
    inter = p @ g.T
    union = p.sum(1)[:, None] + g.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def box_iou_matrix(pred_boxes: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """(D, 4) and (G, 4) x1, y1, x2, y2 boxes -> (D, G) IoU (continuous coordinates, as COCO)."""
    if len(pred_boxes) == 0 or len(gt_boxes) == 0:
        return np.zeros((len(pred_boxes), len(gt_boxes)))
    p, g = np.asarray(pred_boxes, np.float64)[:, None], np.asarray(gt_boxes, np.float64)[None]
    w = np.clip(np.minimum(p[..., 2], g[..., 2]) - np.maximum(p[..., 0], g[..., 0]), 0, None)
    h = np.clip(np.minimum(p[..., 3], g[..., 3]) - np.maximum(p[..., 1], g[..., 1]), 0, None)
    inter = w * h
    area_p = (p[..., 2] - p[..., 0]) * (p[..., 3] - p[..., 1])
    area_g = (g[..., 2] - g[..., 0]) * (g[..., 3] - g[..., 1])
    union = area_p + area_g - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_image(scores: np.ndarray, ious: np.ndarray, iou_threshold: float = 0.5,
                max_detections: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of one image: (scores kept, TP flag per kept detection), in descending score order.

    ``ious``: (D, G) IoU of each detection (in the order of ``scores``) with each ground truth.
    """
    order = np.argsort(-np.asarray(scores, np.float64), kind="mergesort")[:max_detections]
    gt_taken = np.zeros(ious.shape[1], dtype=bool)
    is_tp = np.zeros(len(order), dtype=bool)
    for rank, d in enumerate(order):
        best_iou, best_g = min(iou_threshold, 1 - 1e-10), -1  # pycocotools' starting bar
        for g in range(ious.shape[1]):
            if gt_taken[g] or ious[d, g] < best_iou:
                continue
            best_iou, best_g = ious[d, g], g
        if best_g >= 0:
            gt_taken[best_g] = True
            is_tp[rank] = True
    return np.asarray(scores, np.float64)[order], is_tp


@dataclass
class APAccumulator:
    """Collects per-image matches and gives AP at one IoU threshold, as pycocotools does."""

    iou_threshold: float = 0.5
    max_detections: int = 100
    scores: list[np.ndarray] = field(default_factory=list)
    true_positive: list[np.ndarray] = field(default_factory=list)
    num_ground_truth: int = 0

    def add(self, scores: np.ndarray, ious: np.ndarray) -> None:
        """One image: detection scores and their (D, G) IoU with the image's ground truth."""
        kept_scores, is_tp = match_image(scores, ious, self.iou_threshold, self.max_detections)
        self.scores.append(kept_scores)
        self.true_positive.append(is_tp)
        self.num_ground_truth += ious.shape[1]

    def precision_recall(self) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative precision and recall over all detections sorted by score."""
        scores = np.concatenate(self.scores) if self.scores else np.zeros(0)
        tp = np.concatenate(self.true_positive) if self.true_positive else np.zeros(0, bool)
        order = np.argsort(-scores, kind="mergesort")
        tp_cum = np.cumsum(tp[order])
        fp_cum = np.cumsum(~tp[order])
        recall = tp_cum / max(self.num_ground_truth, 1)
        precision = tp_cum / (tp_cum + fp_cum + np.spacing(1))
        return precision, recall

    def average_precision(self) -> float:
        """101-point interpolated AP; ``nan`` when there is no ground truth."""
        if self.num_ground_truth == 0:
            return float("nan")
        precision, recall = self.precision_recall()
        if len(precision) == 0:
            return 0.0
        # Monotone envelope: precision at recall r is the best precision at any recall >= r.
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        idx = np.searchsorted(recall, RECALL_POINTS, side="left")
        sampled = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0)
        return float(sampled.mean())


def average_precision(per_image: list[tuple[np.ndarray, np.ndarray]], iou_threshold: float = 0.5,
                      max_detections: int = 100) -> float:
    """AP over images given as (scores, (D, G) IoU matrix) pairs."""
    acc = APAccumulator(iou_threshold, max_detections)
    for scores, ious in per_image:
        acc.add(scores, ious)
    return acc.average_precision()
