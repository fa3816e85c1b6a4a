"""The FCN page's score table: the paper's number, the cards' val numbers, this image's scores."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from segdemo.data.labels import CAMVID
from segdemo.evaluate.scoring import score_predictions
from segdemo.labs import fcn_skips as fc
from segdemo.models import registry


def street() -> tuple[np.ndarray, np.ndarray]:
    """A 2-class truth (left half class 3, right half class 8) and a map one column off."""
    truth = np.full((8, 8), 3, dtype=np.uint8)
    truth[:, 4:] = 8
    pred = truth.copy()
    pred[:, 4] = 3  # 8 of 32 class-8 pixels read as class 3
    return truth, pred


def test_rows_follow_the_entries_and_the_one_scoring_path() -> None:
    truth, pred = street()
    entries = [registry.get(n) for n in fc.VARIANTS] + [registry.get("deeplab_slim_camvid")]
    labels = {e.name: (truth if e.name == "fcn8s_camvid" else pred) for e in entries}
    rows = fc.score_rows(entries, labels, truth)
    assert [r.name for r in rows] == [e.name for e in entries]
    by_name = {r.name: r for r in rows}
    # the paper's Table 2 (59.4 / 62.4 / 62.7 mean IU) as fractions; the dilated model is not in it
    assert by_name["fcn32s_camvid"].paper == pytest.approx(0.594)
    assert by_name["fcn8s_camvid"].paper == pytest.approx(0.627)
    assert by_name["deeplab_slim_camvid"].paper is None
    for entry in entries:
        row = by_name[entry.name]
        assert row.architecture == entry.architecture
        assert row.val_miou == entry.metrics.get("miou")
        assert row.val_boundary_f1 == entry.metrics.get("boundary_f1")
    # the image's numbers are score_predictions' (the one scoring path), and right by hand:
    # class 3: IoU 32/40, class 8: 24/32 -> mIoU (0.8 + 0.75) / 2 over the classes present
    expected = score_predictions([pred], [truth], CAMVID)
    assert by_name["fcn16s_camvid"].image_miou == pytest.approx(expected.miou)
    assert by_name["fcn16s_camvid"].image_miou == pytest.approx((32 / 40 + 24 / 32) / 2)
    assert by_name["fcn16s_camvid"].image_boundary_f1 == pytest.approx(expected.boundary_f1)
    assert by_name["fcn8s_camvid"].image_miou == pytest.approx(1.0)  # the truth itself
    assert by_name["fcn8s_camvid"].image_boundary_f1 == pytest.approx(1.0)


def test_without_truth_the_image_columns_are_empty_and_nan_reads_as_no_number() -> None:
    truth, pred = street()
    entry = registry.get("fcn8s_camvid")
    (row,) = fc.score_rows([entry], {entry.name: pred}, None)
    assert row.image_miou is None and row.image_boundary_f1 is None
    assert row.val_miou == entry.metrics["miou"]
    unscored = dataclasses.replace(entry, metrics={"miou": float("nan")})
    (row,) = fc.score_rows([unscored], {entry.name: pred}, truth)
    assert row.val_miou is None and row.val_boundary_f1 is None
    assert row.image_miou == pytest.approx((32 / 40 + 24 / 32) / 2)
