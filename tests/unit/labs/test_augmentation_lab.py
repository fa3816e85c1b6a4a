"""The augmentation lab's logic: random draws stay in range, CutMix counts and the MixUp loss floor."""

from __future__ import annotations

import numpy as np
import pytest

from segdemo.labs import augmentation as aug


def scene() -> tuple[np.ndarray, np.ndarray]:
    """A 60x80 frame: top rows class 0 (Sky), bottom class 3 (Road), a void strip at the bottom."""
    labels = np.zeros((60, 80), np.uint8)
    labels[30:] = 3
    labels[56:] = aug.VOID
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[:30] = (128, 128, 128)
    rgb[30:] = (128, 64, 128)
    return rgb, labels


@pytest.mark.parametrize("op", sorted(aug.OPS))
def test_random_draws_stay_in_range_and_differ(op: str) -> None:
    draws = [aug.random_params(op, seed) for seed in range(6)]
    for params in draws:
        for p in aug.OPS[op]:
            assert p.low <= params[p.name] <= p.high
    assert len({tuple(sorted(d.items())) for d in draws}) > 1


@pytest.mark.parametrize("op", [o for o in aug.OPS if o not in aug.MIXING_OPS])
def test_single_image_transforms_invent_no_class(op: str) -> None:
    rgb, labels = scene()
    for seed in range(3):
        out, lbl = aug.apply(op, rgb, labels, aug.random_params(op, seed))
        assert out.shape == rgb.shape and lbl.shape == labels.shape
        assert set(np.unique(lbl)) <= {0, 3, aug.VOID}
    if op == "photometric":
        assert np.array_equal(aug.apply(op, rgb, labels, {"brightness": 1.5})[1], labels)


def test_cutmix_counts_are_the_box_pixels() -> None:
    a = scene()
    b = (np.full_like(a[0], 7), np.full_like(a[1], 8))
    view = aug.cutmix(a, b, {"share": 0.25, "cy": 0.9, "cx": 0.1})
    box = view.box
    assert view.classes_b[8] == box.area and view.classes_b.sum() == box.area
    assert view.classes_a.sum() == 60 * 80 - box.area
    # outside the box the counts are a's own labels
    outside = np.ones((60, 80), bool)
    outside[box.top : box.top + box.height, box.left : box.left + box.width] = False
    assert np.array_equal(view.classes_a, np.bincount(a[1][outside], minlength=12)[:12])


def test_mixup_soft_labels_sum_to_the_valid_mass() -> None:
    a = scene()
    b = (a[0][::-1].copy(), a[1][::-1].copy())
    view = aug.mixup(a, b, 0.7)
    mass = view.soft.sum(0)
    expected = 0.7 * (a[1] != aug.VOID) + 0.3 * (b[1] != aug.VOID)
    assert np.allclose(mass, expected)
    assert np.allclose(aug.probability_image(view.soft, 0)[..., 0], np.round(view.soft[0] * 128))
