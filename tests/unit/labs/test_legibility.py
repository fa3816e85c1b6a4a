"""Issue 10 defect 9, "illegible on a projector": the lab figures keep contrast and readable text
at the size they are shown (1280x800, the main area about 820 px wide)."""

from __future__ import annotations

import numpy as np
import pytest

from segdemo.labs import drawing


def _photo(h: int = 256, w: int = 256) -> np.ndarray:
    """A mid-grey street-like photo with some texture (the ERF is drawn over a real image)."""
    rng = np.random.default_rng(0)
    return (110 + rng.integers(-25, 25, (h, w, 3))).astype(np.uint8)


def _gaussian_erf(h: int, w: int, yx: tuple[int, int], sigma: float) -> np.ndarray:
    """An effective receptive field as measured (Luo et al. 2016): Gaussian-like, max 1, a long faint tail."""
    yy, xx = np.mgrid[:h, :w]
    return np.exp(-((yy - yx[0]) ** 2 + (xx - yx[1]) ** 2) / (2 * sigma ** 2))


def _cross(rgb: np.ndarray) -> np.ndarray:
    """Pixels of the click cross (pure red on a pure white outline)."""
    return np.all(rgb == (255, 0, 0), axis=2) | np.all(rgb == (255, 255, 255), axis=2)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


@pytest.fixture
def erf_case() -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int, int, int], tuple[int, int]]:
    h, w, yx = 256, 256, (120, 140)
    support = np.zeros((h, w), bool)
    support[40:200, 60:220] = True  # the theoretical field: much larger than the effective one
    erf = _gaussian_erf(h, w, yx, sigma=6.0)
    return _photo(h, w), support, erf, (40, 60, 160, 160), yx


def test_the_effective_field_is_a_visible_area_not_a_faint_dot(erf_case) -> None:  # noqa: ANN001
    rgb, support, erf, box, yx = erf_case
    shown = drawing.erf_picture(rgb, support, erf, box, yx)
    base = drawing.shade_outside(rgb, support)
    change = np.abs(shown.astype(int) - base.astype(int)).max(axis=2)
    change[_cross(shown)] = 0  # the map itself is measured, not the cross drawn on it
    # Where the field still carries 2 % of its peak (about 2.8 sigma: the area a student should see),
    # the colour changes by a clearly visible amount on a washed-out projector.
    tail = (erf >= 0.02) & (erf < 0.1)
    assert np.median(change[tail]) >= 40, f"tail hardly tinted: median change {np.median(change[tail]):.0f}"
    # The visibly tinted area (change of 40 levels or more) is a real area, not a few pixels round the click.
    tinted = (change >= 40) & support
    assert tinted.sum() >= (erf >= 0.02).sum() * 0.9, (tinted.sum(), (erf >= 0.02).sum())


def test_the_heat_map_spans_a_real_range_of_brightness(erf_case) -> None:  # noqa: ANN001
    rgb, support, erf, box, yx = erf_case
    shown = drawing.erf_picture(rgb, support, erf, box, yx)
    luma = _luma(shown)
    luma[_cross(shown)] = np.nan  # the map itself is measured, not the cross drawn on it
    ring = lambda lo, hi: (erf >= lo) & (erf < hi)  # noqa: E731
    core = np.nanmean(luma[ring(0.5, 1.01)])
    edge = np.nanmean(luma[ring(0.02, 0.05)])
    assert core - edge >= 60, f"peak {core:.0f} vs tail {edge:.0f}: the map has no contrast"


def test_the_click_cross_stands_out_on_the_map(erf_case) -> None:  # noqa: ANN001
    rgb, support, erf, box, yx = erf_case
    shown = drawing.erf_picture(rgb, support, erf, box, yx)
    red = np.all(shown == (255, 0, 0), axis=2)
    white = np.all(shown == (255, 255, 255), axis=2)
    # A long cross: its red arms reach 3 % of the picture's side on each side of the click.
    arm = max(np.nonzero(red[yx[0]])[0].max() - yx[1], yx[1] - np.nonzero(red[yx[0]])[0].min())
    assert arm >= 0.03 * shown.shape[1], arm
    # Outlined in white, so it stays visible on the yellow peak and on dark surroundings alike.
    outlined = red[1:-1, 1:-1] & ~(red[:-2, 1:-1] & red[2:, 1:-1] & red[1:-1, :-2] & red[1:-1, 2:])
    edge_y, edge_x = np.nonzero(outlined)
    around = white[edge_y, edge_x + 1] | white[edge_y + 2, edge_x + 1] | white[edge_y + 1, edge_x] \
        | white[edge_y + 1, edge_x + 2]
    assert around.mean() >= 0.9, "the red cross's edge is outlined in white"
    no_cross = drawing.erf_picture(rgb, support, erf, box, (-100, -100))  # the same map, cross off the picture
    under = no_cross[red].astype(float)
    distance = np.linalg.norm(under - np.array([255, 0, 0]), axis=1)
    assert np.median(distance) >= 150, "the red cross sits on a colour like its own"
