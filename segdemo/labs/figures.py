"""Plotly figures for the labs (no Streamlit): callers pass the already translated labels."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from segdemo.labs import interpolation as ip

INPUT_BLUE = "#1f77b4"
OUTPUT_ORANGE = "#ff7f0e"


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


def bilinear_grid_figure(grid: np.ndarray, step: ip.BilinearStep, title: str) -> go.Figure:
    """The input values as a heat map, the four neighbours named A, B, C, D and the point P."""
    text = [[f"{v:.4g}" for v in row] for row in np.asarray(grid, dtype=float)]  # as in the formula
    fig = go.Figure(go.Heatmap(z=grid, colorscale="Blues", showscale=False, text=text,
                               texttemplate="%{text}", textfont=dict(size=17), hoverinfo="skip"))
    corners = {"A": (step.y.i0, step.x.i0), "B": (step.y.i0, step.x.i1),
               "C": (step.y.i1, step.x.i1), "D": (step.y.i1, step.x.i0)}
    names_at: dict[tuple[int, int], str] = {}
    for name, yx in corners.items():  # at the border neighbours coincide: "AB", "ABCD"...
        names_at[yx] = names_at.get(yx, "") + name
    for (y, x), names in names_at.items():
        # In the cell's top-left corner, on white: the value stays readable in the centre.
        fig.add_annotation(x=x - 0.47, y=y - 0.47, text=f"<b>{names}</b>", showarrow=False, xanchor="left",
                           yanchor="top", font=dict(color="crimson", size=16), bgcolor="rgba(255,255,255,0.85)")
    fig.add_shape(type="rect", x0=step.x.i0, x1=step.x.i1, y0=step.y.i0, y1=step.y.i1,
                  line=dict(color="crimson", width=2, dash="dot"))
    fig.add_scatter(x=[step.x.src], y=[step.y.src], mode="markers+text", text=["P"], textposition="bottom right",
                    marker=dict(color="orange", size=14, line=dict(color="black", width=1)), showlegend=False)
    fig.update_yaxes(autorange="reversed", dtick=1, title="y")
    fig.update_xaxes(dtick=1, title="x", side="top")
    fig.update_layout(height=330, margin=dict(l=10, r=10, t=40, b=10), title=title)
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


def value_heatmap(values: np.ndarray, title: str, annotate: bool = True, colorbar: bool = False) -> go.Figure:
    """A small 2-D array as a heat map, with the values written in the cells if asked."""
    # Numbers large enough to read from the back of a lecture room.
    text_kwargs = ({"text": np.round(values, 2), "texttemplate": "%{text}", "textfont": dict(size=17)}
                   if annotate else {})
    fig = go.Figure(go.Heatmap(z=values, colorscale="Viridis", showscale=colorbar,
                               colorbar=dict(thickness=12), **text_kwargs))
    fig.update_yaxes(autorange="reversed", scaleanchor="x")
    fig.update_layout(height=330, margin=dict(l=5, r=5, t=35, b=5), title=title)
    return fig
