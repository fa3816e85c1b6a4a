"""Issue 10's conventions: boundary F1 without boundary pixels, its two averages, an ignore id that is a class."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from segdemo.data.labels import CAMVID, VOC
from segdemo.evaluate import BatchAccumulator, Policy, evaluate_pair, metrics, score_predictions


def test_boundary_f1_of_a_class_filling_the_image_follows_the_definition() -> None:
    truth = np.full((20, 30), 1)
    # Perfect: no boundary pixel in either, none missed, none invented -> 1 (was 0).
    bf = metrics.boundary_f1_per_class(truth, truth, 3)
    assert bf[1] == 1.0 and np.isnan(bf[0]) and np.isnan(bf[2])
    s = evaluate_pair(truth, truth, CAMVID, 11).scores
    assert s.summary["mean_boundary_F1"] == 1.0 and s.summary["mIoU"] == 1.0
    # A hole in the prediction: a predicted boundary where the truth has none -> 0 for class 1.
    pred = truth.copy()
    pred[8:12, 10:14] = 2
    bf = metrics.boundary_f1_per_class(pred, truth, 3)
    assert bf[1] == 0.0 and bf[2] == 0.0


def _camvid_like(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A truth of blocks and a prediction with shifted edges: non-trivial boundary F1."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((60, 80), dtype=np.int64)
    for c in rng.choice(np.arange(1, 11), size=int(rng.integers(1, 4)), replace=False):
        y, x = rng.integers(0, 40), rng.integers(0, 60)
        truth[y:y + 20, x:x + 20] = c
    pred = np.roll(truth, int(rng.integers(1, 4)), axis=1)
    return pred, truth


def test_both_boundary_f1_averages_match_their_definitions_on_both_paths() -> None:
    pairs = [_camvid_like(s) for s in range(6)]
    pairs[0] = (pairs[0][1], pairs[0][1])  # one perfect image: its few classes weigh more image-wise
    per_image = [metrics.boundary_f1_per_class(p, t, 11, 11) for p, t in pairs]
    # The reference, by definition, from the per-image per-class scores.
    image_wise = np.mean([np.nanmean(b) for b in per_image])
    stack = np.vstack(per_image)
    class_wise = np.nanmean([np.nanmean(col) for col in stack.T if np.isfinite(col).any()])
    assert abs(image_wise - class_wise) > 0.01, "the example must tell the two averages apart"

    cards = score_predictions([p for p, _ in pairs], [t for _, t in pairs], CAMVID)  # cards, FCN page
    assert cards.boundary_f1 == pytest.approx(image_wise)
    assert cards.boundary_f1_classwise == pytest.approx(class_wise)
    acc = BatchAccumulator(CAMVID, 11, Policy("nan"))  # Evaluate's batch, segdemo eval
    for i, (p, t) in enumerate(pairs):
        acc.add(str(i), p, t)
    batch = acc.result()
    assert batch.scores.summary["mean_boundary_F1"] == pytest.approx(class_wise)
    assert batch.mean_image_boundary_f1 == pytest.approx(image_wise)


def test_an_ignore_id_that_is_a_class_is_left_out_like_torchmetrics() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 6, size=(50, 70))
    pred = np.where(rng.random(truth.shape) < 0.7, truth, rng.integers(0, 6, size=truth.shape))
    s = evaluate_pair(pred, truth, VOC, 0, Policy("nan"), boundary=False).scores
    p, t = torch.from_numpy(pred), torch.from_numpy(truth)
    ref = MulticlassJaccardIndex(21, average="macro", ignore_index=0)(p, t).item()
    assert s.summary["mIoU"] == pytest.approx(ref, rel=1e-6)
    assert not s.in_mean[0]  # class 0 (background) is out of the mean, not in it at IoU 0
    acc = MulticlassAccuracy(21, average="micro", ignore_index=0)(p, t).item()
    assert s.summary["pixel_accuracy"] == pytest.approx(acc, rel=1e-6)
    # Before: background stayed in the mean at IoU 0 and pulled it down by about 1/6.
    kept = np.nanmean(np.where(s.absent, np.nan, np.r_[0.0, s.iou[1:]]))
    assert s.summary["mIoU"] > kept
