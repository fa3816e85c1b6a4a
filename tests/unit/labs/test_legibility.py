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


def test_a_speckled_field_still_reads_as_an_area(erf_case) -> None:  # noqa: ANN001
    """A measured gradient is speckled (neighbouring pixels differ tenfold): shown raw, half the
    field's pixels were near zero and the area looked like noise. Shown, it is one tinted area."""
    rgb, support, erf, box, yx = erf_case
    rng = np.random.default_rng(1)
    speckled = erf * rng.uniform(0, 1, erf.shape) ** 3  # most pixels far below their neighbourhood's level
    speckled /= speckled.max()
    shown = drawing.erf_picture(rgb, support, speckled, box, yx)
    change = np.abs(shown.astype(int) - drawing.shade_outside(rgb, support).astype(int)).max(axis=2)
    change[_cross(shown)] = 255
    field = erf >= 0.1  # where the underlying field carries a tenth of its peak
    assert (change[field] >= 40).mean() >= 0.95, f"only {(change[field] >= 40).mean():.0%} of the field is tinted"


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


# ---------------------------------------------------------------- numbers in heat maps (page 6)


def _heatmap_font(fig) -> float | None:  # noqa: ANN001
    trace = fig.data[0]
    return None if trace.text is None else trace.textfont.size


@pytest.mark.parametrize("weights", ["ones", "random"])
def test_checkerboard_numbers_are_legible_or_absent(weights: str) -> None:
    """Page 6's three checkerboards share a row: a number is written only at 14 px or more and
    only where it fits its cell (13 x 13 cells of 17 px numbers in a third of the page did not)."""
    from segdemo.labs import figures
    from segdemo.labs import upsampling as up

    shown = figures.column_px([1, 1, 1])
    for name, pattern in up.checker_patterns(weights).items():
        fig = figures.value_heatmap(pattern, name, shown_px=shown)
        size = _heatmap_font(fig)
        cell = figures.heatmap_cell_px(pattern.shape, shown)
        if size is None:
            assert weights == "random", f"{name}: the default (ones) shows its counts"
            continue
        assert size >= figures.MIN_FONT_PX, (name, size)
        widest = max(len(t) for row in fig.data[0].text for t in row)
        w, h = figures.text_box_px("0" * widest, size)
        assert w < cell and h < cell, f"{name}: {w:.0f}x{h:.0f} px numbers in {cell:.0f} px cells"
    # The lesson survives the smaller input: k=3 s=2 still shows the pattern, k=4 s=2 does not.
    ones = up.checker_patterns("ones")
    assert not up.is_uniform(up.interior(ones["k3s2"], 3)) and up.is_uniform(up.interior(ones["k4s2"], 3))


def test_a_crowded_heatmap_leaves_the_numbers_out() -> None:
    from segdemo.labs import figures

    values = np.arange(13 * 13, dtype=float).reshape(13, 13) / 7
    assert _heatmap_font(figures.value_heatmap(values, "t", shown_px=figures.column_px([1, 1, 1]))) is None
    assert _heatmap_font(figures.value_heatmap(values[:4, :4], "t", shown_px=figures.column_px([1, 1, 1]))) >= 14


# ---------------------------------------------------------------- A, B, C, D beside the values (page 6)


def _boxes(fig, shape: tuple[int, int], shown_px: float) -> tuple[list, list]:  # noqa: ANN001
    """Pixel boxes (x0, y0, x1, y1) of the corner names and of the values, from the figure's
    positions and font sizes and the plot area's cell size."""
    from segdemo.labs import figures

    cw, ch = figures.bilinear_cell_px(shape, shown_px)
    px = lambda x, y: ((x + 0.5) * cw, (y + 0.5) * ch)  # noqa: E731 - data -> px (cell i spans i-0.5..i+0.5)
    names = []
    for a in fig.layout.annotations:
        x, y = px(a.x, a.y)
        w = figures.CORNER_BOX_PX * len(a.text.replace("<b>", "").replace("</b>", ""))
        h = figures.LINE_EM * a.font.size + 2 * a.borderpad
        x0 = x if a.xanchor == "left" else x - w
        y0 = y if a.yanchor == "top" else y - h
        names.append((x0, y0, x0 + w, y0 + h))
    trace = fig.data[0]
    values = []
    for r, row in enumerate(trace.text):
        for c, t in enumerate(row):
            w, h = figures.text_box_px(t, trace.textfont.size)
            x, y = px(c, r)
            values.append((x - w / 2, y - h / 2, x + w / 2, y + h / 2))
    return names, values


def _intersect(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("point", [(1.5, 0.357), (0.0, 0.0), (3.0, 3.0), (0.0, 1.6), (2.2, 3.0)])
@pytest.mark.parametrize("grid", ["default", "long"])
def test_corner_names_never_cover_a_value(point: tuple[float, float], grid: str) -> None:
    """Inside, at an edge and at a corner (where A, B, C, D fall in one cell), at the width the
    page gives the figure, no name box meets a value box, and names do not meet each other."""
    from segdemo.labs import figures
    from segdemo.labs import interpolation as ip

    values = np.array(ip.DEFAULT_GRID, dtype=float)
    if grid == "long":
        values = values + 0.125  # "10.12": the longest a value gets in the formula's format
    step = ip.bilinear_at_point(values, *point)
    shown = figures.column_px([1, 1])
    fig = figures.bilinear_grid_figure(values, step, "t", shown_px=shown)
    assert fig.data[0].textfont.size >= figures.MIN_FONT_PX
    names, boxes = _boxes(fig, values.shape, shown)
    assert len(names) == 4
    for n in names:
        for v in boxes:
            assert not _intersect(n, v), (n, v)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not _intersect(a, b), (a, b)
