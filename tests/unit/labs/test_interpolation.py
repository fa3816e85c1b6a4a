"""Bilinear lab: the lecture's formula vs F.interpolate / F.grid_sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segdemo.labs import interpolation as ip


@pytest.mark.parametrize("align_corners", [True, False])
def test_formula_equals_f_interpolate_at_random_pixels(align_corners: bool) -> None:
    rng = np.random.default_rng(0)
    for _ in range(60):
        h, w = rng.integers(2, 7, size=2)
        oh, ow = rng.integers(2, 15, size=2)  # up- and downsampling
        grid = rng.normal(size=(h, w)) * 10
        ref = ip.torch_bilinear(grid, (oh, ow), align_corners)
        y, x = int(rng.integers(oh)), int(rng.integers(ow))
        step = ip.bilinear_at(grid, (oh, ow), (y, x), align_corners)
        assert step.value == pytest.approx(ref[y, x], abs=1e-9)
        assert step.alpha + step.beta == pytest.approx(1.0) and step.p + step.q == pytest.approx(1.0)
        assert 0.0 <= step.alpha <= 1.0 and 0.0 <= step.p <= 1.0
        # the corners named in the figure: A top-left, B top-right, C bottom-right, D bottom-left
        assert step.A == grid[step.y.i0, step.x.i0] and step.C == grid[step.y.i1, step.x.i1]
        assert step.B == grid[step.y.i0, step.x.i1] and step.D == grid[step.y.i1, step.x.i0]


@pytest.mark.parametrize("align_corners", [True, False])
def test_one_dimensional_case_equals_linear_mode(align_corners: bool) -> None:
    rng = np.random.default_rng(1)
    for _ in range(40):
        n, out = int(rng.integers(2, 8)), int(rng.integers(2, 20))
        signal = rng.normal(size=n)
        ref = ip.torch_linear(signal, out, align_corners)
        for i in range(out):
            assert ip.linear_at(signal, out, i, align_corners).value == pytest.approx(ref[i], abs=1e-12)


def test_align_corners_source_coordinates_by_hand() -> None:
    # 4 -> 8: align_corners=True maps 7 -> 3 (corner centres meet); False maps 0 -> -0.25 -> 0
    assert ip.source_index(7, 4, 8, True).src == pytest.approx(3.0)
    assert ip.source_index(1, 4, 8, True).src == pytest.approx(3 / 7)
    assert ip.source_index(0, 4, 8, False).src == 0.0
    assert ip.unclamped_source(0, 4, 8, False) == pytest.approx(-0.25)
    assert ip.source_index(3, 4, 8, False).src == pytest.approx(1.25)
    ins, outs = ip.pixel_centres(4, 8, False)
    assert outs[0] == pytest.approx(0.25) and outs[-1] == pytest.approx(3.75)  # edges aligned
    ins, outs = ip.pixel_centres(4, 8, True)
    assert outs[0] == ins[0] and outs[-1] == ins[-1]  # corner centres aligned


def test_free_point_equals_grid_sample() -> None:
    rng = np.random.default_rng(2)
    grid = rng.normal(size=(4, 5))
    for _ in range(30):
        y, x = rng.uniform(0, 3), rng.uniform(0, 4)
        step = ip.bilinear_at_point(grid, y, x)
        assert step.value == pytest.approx(ip.torch_grid_sample_point(grid, y, x), abs=1e-9)


def test_lecture_example_by_hand() -> None:
    # A=10, B=20 (top), D=30, C=40 (bottom); alpha=0.25, p=0.5:
    # P = 0.5 * (0.75*10 + 0.25*20) + 0.5 * (0.75*30 + 0.25*40) = 0.5*12.5 + 0.5*32.5 = 22.5
    grid = np.array([[10.0, 20.0], [30.0, 40.0]])
    step = ip.bilinear_at_point(grid, 0.5, 0.25)
    assert (step.A, step.B, step.C, step.D) == (10, 20, 40, 30)
    assert step.value == pytest.approx(22.5)
    assert float(torch.tensor(step.value)) == pytest.approx(ip.torch_grid_sample_point(grid, 0.5, 0.25))


def test_figures_draw_the_computed_positions() -> None:
    from segdemo.labs import figures

    grid = np.arange(16, dtype=float).reshape(4, 4)
    step = ip.bilinear_at(grid, (7, 7), (3, 1), False)
    fig = figures.bilinear_grid_figure(grid, step, "t")
    assert {a.text for a in fig.layout.annotations} == {"<b>A</b>", "<b>B</b>", "<b>C</b>", "<b>D</b>"}
    point = fig.data[-1]
    assert (point.x[0], point.y[0]) == (step.x.src, step.y.src)
    corner_step = ip.bilinear_at(grid, (7, 7), (6, 6), False)  # clamped: all four corners coincide
    corner = figures.bilinear_grid_figure(grid, corner_step, "t")
    # All four name the same cell, each in its own corner of it (A top-left ... D bottom-left).
    texts = [a.text for a in corner.layout.annotations]
    assert texts == ["<b>A</b>", "<b>B</b>", "<b>C</b>", "<b>D</b>"]
    spots = {(round(a.x), round(a.y)) for a in corner.layout.annotations}
    assert spots == {(3, 3)} and len({(a.x, a.y) for a in corner.layout.annotations}) == 4
    pix = figures.pixel_grid_figure(3, 6, True, "t", {"input": "i", "output": "o"})
    _, outs = ip.pixel_centres(3, 6, True)
    assert sorted(set(pix.data[1].x)) == pytest.approx(sorted(outs))


@pytest.mark.parametrize("align_corners", [True, False])
def test_pixel_grid_ticks_use_the_tables_coordinates(align_corners: bool) -> None:
    """Tick "i" sits on input pixel i's centre, so each orange x reads as its source coordinate."""
    from segdemo.labs import figures

    fig = figures.pixel_grid_figure(3, 6, align_corners, "t", {"input": "i", "output": "o", "axis": "x"})
    ins, _ = ip.pixel_centres(3, 6, align_corners)
    assert list(fig.layout.xaxis.tickvals) == list(ins) and list(fig.layout.xaxis.ticktext) == ["0", "1", "2"]
    assert fig.layout.xaxis.title.text == "x"
    tick_of = dict(zip(fig.layout.xaxis.tickvals, map(float, fig.layout.xaxis.ticktext)))
    offset = next(iter(tick_of)) - tick_of[next(iter(tick_of))]  # drawing position - coordinate
    drawn = sorted(set(fig.data[1].x))
    table = [ip.unclamped_source(o, 3, 6, align_corners) for o in range(6)]
    assert [x - offset for x in drawn] == pytest.approx(table)


def test_the_lab_follows_size_not_scale_factor() -> None:
    """The page states the size= convention: check it, and that scale_factor= differs where it says."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from segdemo.labs import interpolation as ip

    grid = np.arange(9, dtype=float).reshape(3, 3) ** 1.5
    x = torch.from_numpy(grid)[None, None]
    by_size = F.interpolate(x, size=(7, 7), mode="bilinear", align_corners=False)[0, 0].numpy()
    by_scale = F.interpolate(x, scale_factor=2.5, mode="bilinear", align_corners=False,
                             recompute_scale_factor=False)[0, 0].numpy()
    assert by_scale.shape == (7, 7)  # floor(3 x 2.5) = 7: the same output size...
    assert np.abs(by_size - by_scale).max() > 0.05  # ...other values (maps with 0.4, not 3/7)
    ours = np.array([[ip.bilinear_at(grid, (7, 7), (i, j), False).value for j in range(7)] for i in range(7)])
    np.testing.assert_allclose(ours, by_size, atol=1e-9)
