"""Bilinear interpolation (the lecture's formula vs F.interpolate) and upsampling class scores."""

import numpy as np
import pandas as pd
import streamlit as st

from segdemo.ui import inputs, legend, sidebar, state, widgets
from segdemo.data import images
from segdemo.render import overlay
from segdemo.labs import drawing, figures, model_inputs
from segdemo.labs import interpolation as ip
from segdemo.labs import upsampling as up
from segdemo.ui import labs as lab
from segdemo.ui.state import BI, tr

settings = sidebar.setup_page("page.bilinear", show_overlay=False)
MAX_LAB_SIDE = 640
tab_1d, tab_2d, tab_corners, tab_model, tab_checker = st.tabs([
    tr("labs.bi.tab.1d"), tr("labs.bi.tab.2d"), tr("labs.bi.tab.corners"), tr("labs.bi.tab.model"),
    tr("labs.bi.tab.checker")])


def mode_label(align_corners: bool) -> str:
    return f"align_corners={align_corners}"


def fmt(v: float) -> str:
    return f"{v:.4g}"


# ---------------------------------------------------------------- 1-D
with tab_1d:
    st.markdown(tr("labs.bi.1d_intro"))
    lab.latex(r"P = \beta\,A + \alpha\,B, \qquad \alpha = x - x_0,\; \beta = 1 - \alpha")
    text = st.text_input(tr("labs.bi.values"), "2, 8, 4, 10", key=BI.VALUES_1D,
                         help=tr("labs.bi.values_help"))
    signal = ip.parse_signal(text)
    if signal is None:
        st.error(tr("labs.bi.values_error"))
        signal = np.array(ip.DEFAULT_SIGNAL)
    c1, c2, c3 = st.columns(3)
    out_len = c1.slider(tr("labs.bi.out_len"), 2, 24, 7, key=BI.OUT_1D)
    align_1d = c2.radio("align_corners", [False, True], key=BI.ALIGN_1D, horizontal=True)
    dst = c3.slider(tr("labs.bi.out_index"), 0, out_len - 1, min(2, out_len - 1), key=BI.DST_1D)
    step = ip.linear_at(signal, out_len, dst, align_1d)
    reference = ip.torch_linear(signal, out_len, align_1d)
    if align_1d:
        lab.latex(rf"x = x_{{out}}\,\frac{{n_{{in}}-1}}{{n_{{out}}-1}} = {dst}\cdot\frac{{{signal.size - 1}}}"
                  rf"{{{out_len - 1}}} = {fmt(step.x.src)}")
    else:
        lab.latex(rf"x = \max\!\left(0,\;(x_{{out}}+0.5)\,\frac{{n_{{in}}}}{{n_{{out}}}} - 0.5\right) = "
                  rf"\max(0,\;{dst + 0.5}\cdot\frac{{{signal.size}}}{{{out_len}}} - 0.5) = {fmt(step.x.src)}")
    lab.latex(rf"x_0 = {step.x.i0},\; x_1 = {step.x.i1},\; A = {fmt(step.A)},\; B = {fmt(step.B)},\;"
              rf"\alpha = {fmt(step.alpha)},\; \beta = {fmt(step.beta)}")
    lab.latex(rf"P = {fmt(step.beta)}\cdot{fmt(step.A)} + {fmt(step.alpha)}\cdot{fmt(step.B)} = {fmt(step.value)}")
    ok = abs(step.value - reference[dst]) < 1e-9
    st.markdown(f"{lab.check_mark(ok)} " + tr("labs.bi.torch_equal", mode="linear",
                                             value=fmt(float(reference[dst])), setting=mode_label(align_1d)))
    st.plotly_chart(figures.linear_figure(signal, out_len, align_1d, step, reference, {
        "input": tr("labs.bi.input_samples"), "output": tr("labs.bi.output_samples"),
        "axis": tr("labs.bi.input_coordinate")}), width="stretch")

# ---------------------------------------------------------------- 2-D


def formula_block(step: ip.BilinearStep) -> None:
    """The lecture's formula with this point's numbers, in short lines that fit half a page."""
    lab.latex(r"\begin{aligned}"
              rf"\alpha &= x - x_0 = {fmt(step.alpha)} &"
              rf"\beta &= 1-\alpha = {fmt(step.beta)}\\"
              rf"p &= y - y_0 = {fmt(step.p)} &"
              rf"q &= 1-p = {fmt(step.q)}\\"
              rf"A &= {fmt(step.A)},\; B = {fmt(step.B)} & C &= {fmt(step.C)},\; D = {fmt(step.D)}"
              r"\end{aligned}")
    lab.latex(r"\begin{aligned}"
              rf"\beta A + \alpha B &= {fmt(step.beta)}\cdot{fmt(step.A)} + {fmt(step.alpha)}\cdot{fmt(step.B)}"
              rf" = {fmt(step.top)}\\"
              rf"\beta D + \alpha C &= {fmt(step.beta)}\cdot{fmt(step.D)} + {fmt(step.alpha)}\cdot{fmt(step.C)}"
              rf" = {fmt(step.bottom)}\\"
              r"P &= q(\beta A + \alpha B) + p(\beta D + \alpha C)\\"
              rf"&= {fmt(step.q)}\cdot{fmt(step.top)} + "
              rf"{fmt(step.p)}\cdot{fmt(step.bottom)} = \mathbf{{{fmt(step.value)}}}"
              r"\end{aligned}")


with tab_2d:
    st.markdown(tr("labs.bi.2d_intro"))
    lab.latex(r"P = q\,(\beta A + \alpha B) + p\,(\beta D + \alpha C)")
    st.caption(tr("labs.bi.layout"))
    edited = st.data_editor(pd.DataFrame(ip.DEFAULT_GRID, columns=[f"x={i}" for i in range(4)]),
                            key=BI.GRID, hide_index=False)
    grid, all_numbers = ip.finite_grid(edited.to_numpy(dtype=float, na_value=float("nan")))
    if not all_numbers:
        st.error(tr("labs.bi.grid_error"))
    how = widgets.stable_choice(st.radio, tr("labs.bi.pick"), ["resize", "point"], BI.PICK, horizontal=True,
                         format_func=state.options_formatter("labs.bi.pick."))
    if how == "point":
        c1, c2 = st.columns(2)
        py = c1.slider("y", 0.0, float(grid.shape[0] - 1), 1.3, 0.05, key=BI.PY)
        px = c2.slider("x", 0.0, float(grid.shape[1] - 1), 0.4, 0.05, key=BI.PX)
        step = ip.bilinear_at_point(grid, py, px)
        reference = ip.torch_grid_sample_point(grid, py, px)
        left, right = st.columns(2)  # half the page: A, B, C, D and the values fit side by side in a cell
        left.plotly_chart(figures.bilinear_grid_figure(grid, step, tr("labs.bi.point_title")), width="stretch")
        with right:
            formula_block(step)
            ok = abs(step.value - reference) < 1e-9
            st.markdown(f"{lab.check_mark(ok)} " + tr("labs.bi.grid_sample_equal", value=fmt(reference)))
    else:
        c1, c2, c3, c4 = st.columns(4)
        out_h = c1.slider(tr("labs.bi.out_h"), 2, 12, 7, key=BI.OUT_H)
        out_w = c2.slider(tr("labs.bi.out_w"), 2, 12, 7, key=BI.OUT_W)
        oy = c3.slider(tr("labs.bi.out_row"), 0, out_h - 1, min(3, out_h - 1), key=BI.OY)
        ox = c4.slider(tr("labs.bi.out_col"), 0, out_w - 1, min(1, out_w - 1), key=BI.OX)
        cols = st.columns(2)
        for col, align in zip(cols, (False, True)):
            with col:
                step = ip.bilinear_at(grid, (out_h, out_w), (oy, ox), align)
                reference = ip.torch_bilinear(grid, (out_h, out_w), align)
                st.plotly_chart(figures.bilinear_grid_figure(grid, step, mode_label(align)), width="stretch",
                                key=BI.figure(align))
                st.caption(tr("labs.bi.source_coords", y=fmt(step.y.src), x=fmt(step.x.src),
                              y0=step.y.i0, x0=step.x.i0))
                formula_block(step)
                ok = abs(step.value - reference[oy, ox]) < 1e-9
                st.markdown(f"{lab.check_mark(ok)} " + tr("labs.bi.torch_equal", mode="bilinear",
                                                         value=fmt(float(reference[oy, ox])),
                                                         setting=mode_label(align)))
        st.caption(tr("labs.bi.resize_note"))
        st.caption(tr("labs.bi.size_convention"))

# ---------------------------------------------------------------- align_corners as pixel grids
with tab_corners:
    st.markdown(tr("labs.bi.corners_intro"))
    lab.latex(r"\texttt{align\_corners=True}:\; x = x_{out}\,\frac{n_{in}-1}{n_{out}-1}\qquad"
              r"\texttt{align\_corners=False}:\; x = (x_{out}+0.5)\,\frac{n_{in}}{n_{out}} - 0.5")
    c1, c2 = st.columns(2)
    n_in = c1.slider(tr("labs.bi.n_in"), 2, 8, 3, key=BI.N_IN)
    n_out = c2.slider(tr("labs.bi.n_out"), 2, 16, 6, key=BI.N_OUT)
    cols = st.columns(2)
    for col, align in zip(cols, (False, True)):
        fig = figures.pixel_grid_figure(n_in, n_out, align, mode_label(align), {
            "input": tr("labs.bi.input_centres"), "output": tr("labs.bi.output_centres"),
            "axis": tr("labs.bi.input_coordinate")})
        col.plotly_chart(fig, width="stretch", key=BI.corners(align))
        col.caption(tr("labs.bi.corners_true" if align else "labs.bi.corners_false"))
    table = pd.DataFrame({
        "x_out": range(n_out),
        mode_label(False): [fmt(ip.source_index(o, n_in, n_out, False).src) for o in range(n_out)],
        mode_label(False) + " " + tr("labs.bi.unclamped"):
            [fmt(ip.unclamped_source(o, n_in, n_out, False)) for o in range(n_out)],
        mode_label(True): [fmt(ip.source_index(o, n_in, n_out, True).src) for o in range(n_out)],
    })
    st.dataframe(table, hide_index=True)
    st.caption(tr("labs.bi.corners_advice"))

# ---------------------------------------------------------------- a real model's scores
def model_section(chosen: list, entry) -> None:
    """A real model's coarse scores upsampled by every method; argmax of each."""
    image = inputs.choose_image(chosen, BI.CURRENT)
    model = lab.lab_model(settings, entry)
    # The sidebar's inference size (the scores the Segment page upsamples), capped: six
    # full-resolution C x H x W results of a large photo would not fit in memory.
    short_side = min(image.rgb.shape[:2])
    size = min(settings.inference_size or short_side, short_side, MAX_LAB_SIDE)
    if size < (settings.inference_size or short_side):
        # Blame memory only when the lab's own cap decided, not the image's size.
        st.caption(tr("labs.bi.size_capped" if size == MAX_LAB_SIDE < short_side else "labs.bi.size_image", size=size))
    x, _ = model_inputs.network_view(image.rgb, entry, size, settings.device)

    def compute():
        with lab.GRADIENT_LOCK:
            scores, how = up.coarse_class_scores(model, x)
        return scores[0].float().cpu(), how

    coarse, how = lab.lab_cache("bi", (entry.name, image.digest, size, settings.device), compute)
    c, ch, cw = coarse.shape
    factor = max(1, round(x.shape[-2] / ch))
    size = (ch * factor, cw * factor)
    st.caption(tr(f"labs.bi.coarse.{how}", model=entry.display_name, c=c, h=ch, w=cw, f=factor,
                  H=size[0], W=size[1]))
    rgb = images.resize_rgb(image.rgb, size)
    results = up.upsample_scores(coarse, factor, model_inputs.grey_guide(rgb))
    label_set = entry.label_set
    reference = results["bilinear"].labels
    opacity = st.slider(tr("sidebar.opacity"), 0.0, 1.0, 0.6, 0.05, key=BI.OPACITY)
    cols = st.columns(3)
    for i, (method, res) in enumerate(results.items()):
        labels_u8 = res.labels.astype(np.uint8)
        agree = up.agreement(res.labels, reference, res.filled if not res.filled.all() else None)
        caption = tr(f"labs.bi.method.{method}") + " — " + tr("labs.bi.agree_bilinear", share=agree)
        if res.filled.all():
            picture = overlay.overlay(rgb, labels_u8, label_set, opacity)
        else:
            # Sparse output: magnify the centre so single pixels stay visible.
            picture = drawing.grey_where(overlay.colorize(labels_u8, label_set), ~res.filled)
            side = min(size[0], size[1], 8 * factor)
            y0, x0 = (size[0] - side) // 2, (size[1] - side) // 2
            zoom = max(1, size[1] // side)
            picture = drawing.scale_nearest(picture[y0:y0 + side, x0:x0 + side], zoom)
            caption += " · " + tr("labs.bi.unpool_filled", share=float(res.filled.mean()), side=side)
        cols[i % 3].image(picture, caption=caption, width="stretch")
    present = sorted(set().union(*(np.unique(r.labels[r.filled]).tolist() for r in results.values())))
    st.caption(tr("labs.bi.legend_note"))
    legend.swatch_legend([(label_set.colors[c], legend.class_label(label_set.key, c), f"{float((reference == c).mean()):.1%}")
                      for c in present if c < label_set.num_classes])
    st.caption(tr("labs.bi.methods_note"))


with tab_model:
    st.markdown(tr("labs.bi.model_intro"))
    lab.model_on_images(BI.PAGE, settings, model_section)

# ---------------------------------------------------------------- checkerboard
with tab_checker:
    st.markdown(tr("labs.bi.checker_intro", n=up.CHECKER_INPUT_SIDE))
    # The key carries the language: a radio whose labels change keeps no visible selection.
    weights_kind = widgets.stable_choice(st.radio, tr("labs.bi.weights"), ["ones", "random"], BI.CHECKER_WEIGHTS,
                                    horizontal=True, format_func=state.options_formatter("labs.bi.weights."))
    patterns = up.checker_patterns(weights_kind)
    cols = st.columns(3)
    for col, (name, pattern) in zip(cols, patterns.items()):
        inner = up.interior(pattern, 3) if name != "resize_conv" else pattern
        uniform = up.is_uniform(inner)
        col.plotly_chart(figures.value_heatmap(pattern, tr(f"labs.bi.pattern.{name}"),
                                               shown_px=figures.column_px([1, 1, 1])),
                         width="stretch", key=BI.checker(name))
        col.markdown(f"{lab.check_mark(uniform)} " + tr("labs.bi.uniform" if uniform else "labs.bi.not_uniform",
                                                        lo=fmt(float(inner.min())), hi=fmt(float(inner.max()))))
    st.caption(tr("labs.bi.checker_note"))
