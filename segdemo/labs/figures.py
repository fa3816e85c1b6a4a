"""Plotly figures for the labs (no Streamlit): callers pass the already translated labels."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from segdemo.labs import interpolation as ip

INPUT_BLUE = "#1f77b4"
OUTPUT_ORANGE = "#ff7f0e"
# Legibility on a projector (issue 10): the main area is 820 px wide at 1280x800 (sidebar open);
# numbers in figures are 17 px, never under 14 px, or left out when a cell is too small for them.
MAIN_AREA_PX = 820
COLUMN_GAP_PX = 16
VALUE_FONT_PX = 17
MIN_FONT_PX = 14
CHAR_EM = 0.62  # width of a digit in plotly's default font, in font sizes (a little generous)
LINE_EM = 1.25  # height of a line of text, in font sizes


def column_px(weights: list[float], index: int = 0, total: int = MAIN_AREA_PX) -> float:
    """Width in px of column ``index`` of ``st.columns(weights)`` in an area ``total`` px wide."""
    free = total - COLUMN_GAP_PX * (len(weights) - 1)
    return free * weights[index] / sum(weights)


def text_box_px(text: str, font_px: float) -> tuple[float, float]:
    """(width, height) in px that ``text`` takes at ``font_px`` (an estimate that errs on the large side)."""
    return len(text) * CHAR_EM * font_px, LINE_EM * font_px


def cell_texts(values: np.ndarray) -> list[list[str]]:
    """The numbers as written in the cells: integers as integers, others with two decimals."""
    values = np.asarray(values, dtype=float)
    whole = np.allclose(values, np.round(values))
    return [[f"{v:.0f}" if whole else f"{v:.2f}" for v in row] for row in values]


def fitting_font(widest: int, max_w: float, max_h: float = float("inf")) -> int | None:
    """The largest font, 17 down to 14 px, at which ``widest`` digits fit ``max_w`` x ``max_h`` px; None if none does."""
    return next((size for size in range(VALUE_FONT_PX, MIN_FONT_PX - 1, -1)
                 if (box := text_box_px("0" * widest, size))[0] <= max_w and box[1] <= max_h), None)


def annotation_font(texts: list[list[str]], cell_px: float) -> int | None:
    """The font size for numbers in square cells ``cell_px`` wide: 17 px when they fit, else down
    to 14 px; None when even that does not fit (the cells show colour only)."""
    widest = max((len(t) for row in texts for t in row), default=0)
    return fitting_font(widest, 0.85 * cell_px, 0.9 * cell_px)


def linear_figure(signal: np.ndarray, out_len: int, align_corners: bool, step: ip.LinearStep,
                  reference: np.ndarray, labels: dict[str, str]) -> go.Figure:
    """1-D: input samples, output samples drawn where they read the input, and P.

    ``labels``: "input", "output", "axis".
    """
    fig = go.Figure()
    fig.add_scatter(x=np.arange(signal.size), y=signal, mode="markers+lines", name=labels["input"],
                    marker=dict(size=12))
    xs = [ip.source_index(i, signal.size, out_len, align_corners).src for i in range(out_len)]
    fig.add_scatter(x=xs, y=reference, mode="markers", name=labels["output"], marker=dict(size=9, symbol="x"))
    fig.add_scatter(x=[step.x.src], y=[step.value], mode="markers", name="P",
                    marker=dict(size=16, symbol="circle-open", line=dict(width=3)))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10), xaxis_title=labels["axis"])
    return fig


CORNER_FONT_PX = 16
CORNER_INSET = 0.47  # how far from the cell centre (in cells) a neighbour's name sits


def corner_labels(step: ip.BilinearStep) -> list[tuple[str, float, float, str, str]]:
    """Where :func:`bilinear_grid_figure` writes A, B, C, D: (name, x, y, xanchor, yanchor).

    Each name sits in *its own* corner of its cell (A top-left, B top-right, C bottom-right,
    D bottom-left): at the border, where neighbours coincide, the names share a cell but
    not a spot, and none covers the value written in the cell's centre.
    """
    d = CORNER_INSET
    return [("A", step.x.i0 - d, step.y.i0 - d, "left", "top"), ("B", step.x.i1 + d, step.y.i0 - d, "right", "top"),
            ("C", step.x.i1 + d, step.y.i1 + d, "right", "bottom"),
            ("D", step.x.i0 - d, step.y.i1 + d, "left", "bottom")]


BILINEAR_HEIGHT, BILINEAR_MARGIN, BILINEAR_AXES_PX = 330, dict(l=10, r=10, t=40, b=10), (40, 40)
CORNER_BOX_PX = 0.75 * CORNER_FONT_PX + 2  # a bold capital and its padding


def bilinear_cell_px(shape: tuple[int, int], shown_px: float) -> tuple[float, float]:
    """(width, height) in px of one cell of :func:`bilinear_grid_figure` shown ``shown_px`` wide."""
    m, (axis_w, axis_h) = BILINEAR_MARGIN, BILINEAR_AXES_PX
    return ((shown_px - m["l"] - m["r"] - axis_w) / shape[1], (BILINEAR_HEIGHT - m["t"] - m["b"] - axis_h) / shape[0])


def bilinear_value_font(texts: list[list[str]], cell_w: float) -> int:
    """The largest font (17 down to 14 px) at which the widest value fits between a cell's corner names."""
    widest = max(len(t) for row in texts for t in row)
    room = 2 * CORNER_INSET * cell_w - 2 * (CORNER_BOX_PX + 2)  # the names start just inside the cell's edges
    return fitting_font(widest, room) or MIN_FONT_PX


def bilinear_grid_figure(grid: np.ndarray, step: ip.BilinearStep, title: str,
                         shown_px: float = column_px([1, 1])) -> go.Figure:
    """The input values as a heat map, the four neighbours named A, B, C, D and the point P.

    ``shown_px``: the width the figure gets on the page (the values' font is chosen to fit).
    """
    text = [[f"{v:.4g}" for v in row] for row in np.asarray(grid, dtype=float)]  # as in the formula
    size = bilinear_value_font(text, bilinear_cell_px(np.shape(grid), shown_px)[0])
    fig = go.Figure(go.Heatmap(z=grid, colorscale="Blues", showscale=False, text=text,
                               texttemplate="%{text}", textfont=dict(size=size), hoverinfo="skip"))
    for name, x, y, xanchor, yanchor in corner_labels(step):
        fig.add_annotation(x=x, y=y, text=f"<b>{name}</b>", showarrow=False, xanchor=xanchor, yanchor=yanchor,
                           font=dict(color="crimson", size=CORNER_FONT_PX), bgcolor="rgba(255,255,255,0.85)",
                           borderpad=1)
    fig.add_shape(type="rect", x0=step.x.i0, x1=step.x.i1, y0=step.y.i0, y1=step.y.i1,
                  line=dict(color="crimson", width=2, dash="dot"))
    fig.add_scatter(x=[step.x.src], y=[step.y.src], mode="markers+text", text=["P"], textposition="bottom right",
                    marker=dict(color="orange", size=14, line=dict(color="black", width=1)), showlegend=False)
    fig.update_yaxes(autorange="reversed", dtick=1, title="y")
    fig.update_xaxes(dtick=1, title="x", side="top")
    fig.update_layout(height=BILINEAR_HEIGHT, margin=BILINEAR_MARGIN, title=title)
    return fig


def pixel_grid_figure(n_in: int, n_out: int, align_corners: bool, title: str,
                      labels: dict[str, str]) -> go.Figure:
    """Input pixels as unit squares with their centres, and where each output pixel samples.

    With ``align_corners=False`` the output pixels' own squares (dotted) tile the
    same extent. ``labels``: "input", "output", optionally "axis" (the x axis title). Ticks
    sit on the input pixel centres, labelled 0, 1, 2, ...: the coordinates ``F.interpolate`` uses.
    """
    ins, outs = ip.pixel_centres(n_in, n_out, align_corners)
    fig = go.Figure()
    for i in range(n_in + 1):
        fig.add_shape(type="line", x0=i, x1=i, y0=0, y1=n_in, line=dict(color=INPUT_BLUE, width=2))
        fig.add_shape(type="line", x0=0, x1=n_in, y0=i, y1=i, line=dict(color=INPUT_BLUE, width=2))
    gx, gy = np.meshgrid(ins, ins)
    fig.add_scatter(x=gx.ravel(), y=gy.ravel(), mode="markers", name=labels["input"],
                    marker=dict(size=14, color=INPUT_BLUE))
    ox, oy = np.meshgrid(outs, outs)
    fig.add_scatter(x=ox.ravel(), y=oy.ravel(), mode="markers", name=labels["output"],
                    marker=dict(size=8, color=OUTPUT_ORANGE, symbol="x"))
    if not align_corners:
        dotted = dict(color=OUTPUT_ORANGE, width=1, dash="dot")
        for e in np.linspace(0, n_in, n_out + 1):
            fig.add_shape(type="line", x0=e, x1=e, y0=0, y1=n_in, line=dotted)
            fig.add_shape(type="line", x0=0, x1=n_in, y0=e, y1=e, line=dotted)
    pad = 0.6
    # Ticks in the coordinates of F.interpolate (and of the page's table): pixel i's centre is i,
    # so an output sample drawn left of the first centre has a negative source coordinate.
    ticks = dict(tickvals=list(ins), ticktext=[str(i) for i in range(n_in)], zeroline=False)
    fig.update_xaxes(range=[-pad, n_in + pad], constrain="domain", title=labels.get("axis"), **ticks)
    fig.update_yaxes(range=[n_in + pad, -pad], scaleanchor="x", **ticks)
    fig.update_layout(height=440, margin=dict(l=10, r=10, t=40, b=10), title=title,
                      legend=dict(orientation="h", yanchor="top", y=-0.16, x=0))  # below the axis title
    return fig


HEATMAP_HEIGHT, HEATMAP_MARGIN, AXIS_PX = 330, dict(l=5, r=5, t=35, b=5), 30


def heatmap_cell_px(shape: tuple[int, int], shown_px: float) -> float:
    """The side in px of one cell of :func:`value_heatmap` (square cells) shown ``shown_px`` wide."""
    width = shown_px - HEATMAP_MARGIN["l"] - HEATMAP_MARGIN["r"] - AXIS_PX
    height = HEATMAP_HEIGHT - HEATMAP_MARGIN["t"] - HEATMAP_MARGIN["b"] - AXIS_PX
    return min(width / shape[1], height / shape[0])


def value_heatmap(values: np.ndarray, title: str, annotate: bool = True, colorbar: bool = False,
                  shown_px: float | None = None) -> go.Figure:
    """A small 2-D array as a heat map, with the values written in the cells if asked.

    ``shown_px``: the width the figure gets on the page; the numbers are written only when
    they fit its cells at a legible size (:func:`annotation_font`).
    """
    text_kwargs = {}
    if annotate:
        texts = cell_texts(values)
        size = VALUE_FONT_PX if shown_px is None else annotation_font(texts, heatmap_cell_px(values.shape, shown_px))
        if size is not None:
            text_kwargs = {"text": texts, "texttemplate": "%{text}", "textfont": dict(size=size)}
    fig = go.Figure(go.Heatmap(z=values, colorscale="Viridis", showscale=colorbar,
                               colorbar=dict(thickness=12), **text_kwargs))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_xaxes(constrain="domain")
    fig.update_layout(height=HEATMAP_HEIGHT, margin=HEATMAP_MARGIN, title=title)
    return fig
