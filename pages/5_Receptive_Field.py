"""Receptive fields and dilated convolution: the recurrence, autograd, and a real model."""

import pandas as pd
import streamlit as st

from segdemo.ui import inputs, legend, sidebar, state, widgets
from segdemo.labs import drawing, model_inputs
from segdemo.labs import receptive_field as rf
from segdemo.labs import rf_measure as rfm
from segdemo.ui import labs as lab
from segdemo.ui.state import RF, tr

settings = sidebar.setup_page("page.receptive_field", show_overlay=False)
tab_stack, tab_dilated, tab_image = st.tabs(
    [tr("labs.rf.tab.stack"), tr("labs.rf.tab.dilated"), tr("labs.rf.tab.image")])


@st.cache_data(max_entries=32, show_spinner=False)
def exact_rf_cached(layers: tuple[rf.Layer, ...]) -> rf.ExactRF:
    return rf.exact_rf(list(layers))


# ---------------------------------------------------------------- 1. layer stack
with tab_stack:
    # The first result (the table and the two answers) in view at 1280x800 (issue 10, defect 6):
    # the introduction and the symbols fold away, the lecture's formula stays.
    with st.expander(tr("common.about_page")):
        st.markdown(tr("labs.rf.intro"))
        st.caption(tr("labs.rf.symbols"))
    lab.latex(r"k_{\mathrm{eff}} = d\,(k-1)+1 \qquad r_{\mathrm{out}} = r_{\mathrm{in}} + "
              r"(k_{\mathrm{eff}}-1)\,j_{\mathrm{in}} \qquad j_{\mathrm{out}} = j_{\mathrm{in}}\,s"
              r"\qquad (r_0 = 1,\; j_0 = 1)")
    st.session_state.setdefault(RF.PRESET, "context_module")
    preset = widgets.stable_choice(st.selectbox, tr("labs.rf.preset"), list(rf.PRESETS), RF.PRESET,
                              format_func=state.options_formatter("labs.rf.preset."))
    st.caption(tr(f"labs.rf.preset_note.{preset}"))
    edited = st.data_editor(
        pd.DataFrame(rf.layers_to_rows(rf.PRESETS[preset])),
        key=RF.editor(preset), num_rows="dynamic", hide_index=True, height=260,
        column_config={
            "layer": st.column_config.TextColumn(tr("labs.rf.col.layer")),
            "kernel": st.column_config.NumberColumn(tr("labs.rf.col.kernel"), min_value=1,
                                                    max_value=rf.MAX_KERNEL, step=1),
            "stride": st.column_config.NumberColumn(tr("labs.rf.col.stride"), min_value=1,
                                                    max_value=rf.MAX_STRIDE, step=1),
            "dilation": st.column_config.NumberColumn(tr("labs.rf.col.dilation"), min_value=1,
                                                      max_value=rf.MAX_DILATION, step=1),
            "rates": st.column_config.TextColumn(tr("labs.rf.col.rates"), help=tr("labs.rf.col.rates_help")),
        },
    )
    layers, errors = rf.layers_from_rows(edited.to_dict("records"))
    for row, key in errors:
        st.error(tr(key, row=row))
    if not layers:
        st.warning(tr("labs.rf.no_layers"))
    else:
        rows = rf.rf_table(layers)
        table = pd.DataFrame([{
            "#": r.index, tr("labs.rf.col.layer"): r.name, "k": r.kernel, "s": r.stride, "d": r.dilation,
            "k_eff": r.k_eff, "j_in": r.j_in, "r_in": r.r_in, "r_out": r.r_out, "j_out": r.j_out,
        } for r in rows])
        st.dataframe(table, hide_index=True, height=min(400, 38 + 35 * len(rows)))
        r_theory, j_total = rf.theoretical_rf(layers)
        try:
            exact = exact_rf_cached(tuple(layers))
        except ValueError:
            st.warning(tr("labs.rf.too_large", r=r_theory))
            exact = None
        if exact is not None:
            _, _, h, w = exact.bbox
            c1, c2, c3, c4 = st.columns(4)
            c1.metric(tr("labs.rf.metric.theory"), f"{r_theory} × {r_theory}")
            c2.metric(tr("labs.rf.metric.autograd"), f"{h} × {w}",
                      help=tr("labs.rf.metric.autograd_help"))
            c3.metric(tr("labs.rf.metric.holes"), f"{exact.holes:,}")
            c4.metric(tr("labs.rf.metric.coverage"), f"{exact.coverage:.1%}")
            agree = (h, w) == (r_theory, r_theory)
            (st.success if agree else st.error)(
                lab.check_mark(agree) + " " + tr("labs.rf.agree" if agree else "labs.rf.disagree",
                                                 r=r_theory, h=h, w=w))
            show_paths = st.toggle(tr("labs.rf.show_paths"), key=RF.SHOW_PATHS,
                                   help=tr("labs.rf.show_paths_help"))
            grid = drawing.rf_grid_image(exact.gradient, exact.margin, show_paths=show_paths)
            st.image(grid, caption=tr("labs.rf.grid_caption", size=exact.gradient.shape[0],
                                      margin=exact.margin, outputs=f"{exact.output_size[0]}×{exact.output_size[1]}"),
                     width=min(640, grid.shape[1]))
            if exact.holes:
                st.info(tr("labs.rf.gridding_note", holes=exact.holes))

# ---------------------------------------------------------------- 2. dilated vs standard
with tab_dilated:
    st.markdown(tr("labs.rf.dilated_intro"))
    c1, c2, c3, c4, c5 = st.columns(5)
    c_in = c1.number_input(tr("labs.rf.c_in"), 1, 1024, 64, key=RF.C_IN)
    c_out = c2.number_input(tr("labs.rf.c_out"), 1, 1024, 64, key=RF.C_OUT)
    kernel = c3.selectbox(tr("labs.rf.kernel"), [3, 5, 7], key=RF.KERNEL)
    dilation = c4.slider(tr("labs.rf.dilation"), 1, 16, 2, key=RF.DILATION)
    size = c5.select_slider(tr("labs.rf.map_size"), [16, 32, 64, 96, 128], value=64, key=RF.MAP)
    bias = st.checkbox(tr("labs.rf.bias"), value=True, key=RF.BIAS)
    costs = rfm.dilated_vs_standard(int(c_in), int(c_out), int(kernel), int(dilation), int(size), bias)
    st.dataframe(pd.DataFrame([{
        tr("labs.rf.col.conv"): tr(f"labs.rf.conv.{c.label}"),
        "k × k": f"{c.kernel} × {c.kernel}", "d": c.dilation,
        tr("labs.rf.col.field"): f"{c.k_eff} × {c.k_eff}",
        tr("labs.rf.col.params"): f"{c.params:,}",
        tr("labs.rf.col.params_formula"): f"{c.formula_params:,} {lab.check_mark(c.params == c.formula_params)}",
        tr("labs.rf.col.macs"): f"{c.macs:,}",
        tr("labs.rf.col.macs_formula"): f"{c.formula_macs:,} {lab.check_mark(c.macs == c.formula_macs)}",
    } for c in costs]), hide_index=True)
    std, dil, dense = costs
    st.success(tr("labs.rf.dilated_summary", params=f"{dil.params:,}", macs=f"{dil.macs:,}",
                  k=std.k_eff, k_eff=dil.k_eff, dense_params=f"{dense.params:,}",
                  ratio=dense.params / max(dil.params, 1)))
    st.caption(tr("labs.rf.dilated_formula_note"))
    g1, g2 = st.columns(2)
    cell = max(4, 300 // (rf.effective_kernel(int(kernel), int(dilation)) + 2))  # same scale for both
    for col, d, label in ((g1, 1, "standard"), (g2, int(dilation), "dilated")):
        single = rf.exact_rf([rf.Layer("conv", int(kernel), 1, d)])
        picture = drawing.rf_grid_image(single.gradient, single.margin, target=cell * single.gradient.shape[0])
        col.image(picture, caption=tr(f"labs.rf.conv.{label}") + f" — k={kernel}, d={d}",
                  width=picture.shape[1])

# ---------------------------------------------------------------- 3. real image, real model
def real_image_section(images: list, entry) -> None:
    """Click a pixel; theoretical and effective receptive fields; ASPP taps."""
    image = inputs.choose_image(images, RF.CURRENT)
    model = lab.lab_model(settings, entry)
    net = getattr(model, "net", model)
    device = settings.device
    lab_size = st.select_slider(tr("labs.rf.lab_size"), [128, 192, 256, 320, 384], value=256,
                                key=RF.LAB_SIZE, help=tr("labs.rf.lab_size_help"))
    x, small = model_inputs.network_view(image.rgb, entry, lab_size, device)
    h, w = small.shape[:2]

    def predict_labels():
        with lab.GRADIENT_LOCK:
            return model_inputs.predicted_labels(model, x)

    labels = lab.lab_cache("rf_labels", (entry.name, image.digest, lab_size, device), predict_labels)
    label_set = entry.label_set
    left, right = st.columns(2)
    display_scale = max(1, 512 // max(h, w))
    display = drawing.scale_nearest(small, display_scale) if display_scale > 1 else small
    with left:
        st.caption(tr("labs.rf.click_hint", model=entry.display_name))
        yx = lab.clicked_pixel(display, (h, w), RF.click(image.digest, lab_size))
    predicted = int(labels[rfm.output_position(yx, tuple(x.shape[-2:]), labels.shape)])
    options = list(range(label_set.num_classes))
    names = [legend.class_label(label_set.key, c) for c in options]
    names[predicted] += " ← " + tr("labs.rf.predicted")
    cls = st.selectbox(tr("labs.rf.class"), options, index=predicted, key=RF.class_choice(image.digest, yx),
                       format_func=names.__getitem__)

    def compute():
        with lab.GRADIENT_LOCK:
            return rfm.measured_fields(model, x, (h, w), yx, cls, device)

    with st.spinner(tr("labs.rf.computing")):
        erf, support, seconds = lab.lab_cache(
            "rf", (entry.name, image.digest, lab_size, yx, cls, device), compute)
    box = rfm.bbox_of(support)
    picture = drawing.erf_picture(small, support, erf, box, yx)
    with right:
        caption = tr("labs.rf.erf_caption", floor=f"1/{10 ** drawing.ERF_DECADES:.0f}", px=drawing.ERF_SMOOTH_PX)
        st.image(drawing.scale_nearest(picture, display_scale), caption=caption, width="stretch")
    whole = bool(support.all())
    touches = box is not None and (box[0] == 0 or box[1] == 0 or box[0] + box[2] == h or box[1] + box[3] == w)
    m1, m2, m3 = st.columns(3)
    m1.metric(tr("labs.rf.metric.model_theory"),
              tr("labs.rf.whole_image") if whole else (f"{box[2]} × {box[3]}" if box else "—"),
              help=tr("labs.rf.metric.model_theory_help"))
    radius = rfm.mass_radius(erf, yx, 0.9)
    m2.metric(tr("labs.rf.metric.erf90"), f"{2 * radius + 1:.0f} × {2 * radius + 1:.0f}",
              help=tr("labs.rf.metric.erf90_help"))
    m3.metric(tr("labs.rf.metric.time"), f"{seconds:.2f} s")
    if whole:
        st.info(tr("labs.rf.whole_image_note") if rfm.has_global_pooling(net)
                else tr("labs.rf.whole_image_note_stack", size=f"{h}×{w}"))
    elif touches:
        st.caption(tr("labs.rf.clipped_note"))
    st.caption(tr("labs.rf.erf_note", size=f"{h}×{w}"))

    st.subheader(tr("labs.rf.aspp_title"))
    output_stride = entry.output_stride or getattr(net, "output_stride", None) or 8
    rates = rfm.find_aspp_rates(net)
    if rates:
        st.caption(tr("labs.rf.aspp_found", rates=", ".join(map(str, rates)), os=output_stride))
    else:
        rates = rfm.DEEPLABV3_RATES.get(output_stride, (6, 12, 18))
        st.caption(tr("labs.rf.aspp_default", rates=", ".join(map(str, rates)), os=output_stride))
    taps = rfm.aspp_taps(yx, (h, w), output_stride, rates)
    scaled_taps = [rfm.Tap(t.rate, (t.y + 0.5) * display_scale - 0.5, (t.x + 0.5) * display_scale - 0.5, t.inside)
                   for t in taps]
    tapped, _ = drawing.draw_taps(drawing.scale_nearest(small, display_scale), scaled_taps,
                                  (yx[0] * display_scale, yx[1] * display_scale), output_stride * display_scale)
    a1, a2 = st.columns([3, 2])
    a1.image(tapped, width="stretch")
    with a2:
        rates_html = "".join(
            f'<div><span style="display:inline-block;width:1em;height:1em;border-radius:50%;'
            f'background:{drawing.rate_color_hex(i)}"></span> '
            + tr("labs.rf.aspp_rate", rate=r, spacing=r * output_stride, span=2 * r * output_stride)
            + "</div>"
            for i, r in enumerate(rates))
        st.markdown(rates_html, unsafe_allow_html=True)
        outside = sum(not t.inside for t in taps)
        st.caption(tr("labs.rf.aspp_note", outside=outside))


with tab_image:
    st.markdown(tr("labs.rf.image_intro"))
    lab.model_on_images(RF.PAGE, settings, real_image_section)
