"""Fully connected vs convolution: the same weights, any input size; the 1x1 convolution."""

import pandas as pd
import streamlit as st

from segdemo import config
from segdemo.models import registry
from segdemo.data import samples
from segdemo.data import images
from segdemo.data.images import InputImage
from segdemo.labs import drawing, fc_conv, figures
from segdemo.labs import fc_conv_views as views
from segdemo.labs.model_inputs import image_tensor
from segdemo.models.builders import count_params
from segdemo.inference.pipeline import network_input_size
from segdemo.ui import labs as lab
from segdemo.ui.state import FC, tr
from segdemo.ui import inputs, legend, sidebar, widgets

settings = sidebar.setup_page("page.fc_conv", show_model=False, show_overlay=False)
TOLERANCE = 1e-5


@st.cache_resource(show_spinner=False)
def vgg_model() -> fc_conv.TinyVGG:
    return fc_conv.tiny_vgg(seed=0)


@st.cache_resource(show_spinner=False)
def resnet_model():  # (ResNet-18, trained weights?, category names)
    return fc_conv.resnet18_classifier(seed=0)


@st.cache_resource(show_spinner=False)
def fcn_model():  # (FCN-32s, random weights?) or None
    return fc_conv.load_trained_fcn32s()


def pick_image() -> InputImage | None:
    """The user's image (upload or sample), else a CamVid street frame, else the first shipped sample."""
    chosen = inputs.image_inputs(FC.PAGE, allow_camera=False)
    if chosen:
        return inputs.choose_image(chosen, FC.CURRENT)
    street = fc_conv.street_images(1)
    gallery = [(f"CamVid {p.stem}", p) for p in street] + [(s.name, s.path) for s in samples.shipped_samples()]
    if not gallery:
        return None
    st.caption(tr("labs.fc.default_image", name=gallery[0][0]))
    return inputs.load_sample(gallery[0][1])


picked = pick_image()  # one picker for the whole page
rgb, digest = (picked.rgb, picked.digest) if picked is not None else (images.grey_image(224, 224), "grey")
fcn = fcn_model()
names = ["fcn", "vgg", "resnet", "1x1"]
if fcn is None or fcn[1]:  # trained weights first when they are there
    names = names[1:] + names[:1]
tabs = dict(zip(names, st.tabs([tr(f"labs.fc.tab.{n}") for n in names])))
tab_fcn, tab_vgg, tab_resnet, tab_1x1 = (tabs[n] for n in ("fcn", "vgg", "resnet", "1x1"))

# ---------------------------------------------------------------- trained FCN-32s: conv head vs FC head
with tab_fcn:
    st.markdown(tr("labs.fc.fcn_intro"))
    lab.latex(r"W_{fc6} \in \mathbb{R}^{F \times C \times k \times k} \;\xrightarrow{\text{reshape}}\; "
              r"\mathbb{R}^{F \times (C\cdot k\cdot k)},\qquad W_{fc7},\,W_{score}:\;"
              r"\mathbb{R}^{M \times N \times 1 \times 1} \to \mathbb{R}^{M \times N}")
    entry = registry.get(fc_conv.FCN_NAME)
    if fcn is None:
        st.warning(tr("labs.fc.fcn_missing", file=entry.weights.filename, folder=str(config.weights_dir())))
    else:
        net, fcn_random = fcn
        if fcn_random:
            st.warning(tr("labs.fc.fcn_random", file=entry.weights.filename))
        else:
            st.info(tr("labs.fc.fcn_trained", file=entry.weights.filename))
        head = fc_conv.FullyConnectedHead(net)
        conv_n = sum(count_params(m) for m in (net.fc6, net.fc7, net.score_fr))
        fc_n = count_params(head)
        (k, _), (pad, _) = head.kernel, head.padding
        st.markdown(tr("labs.fc.fcn_heads", c=head.in_channels, f=net.fc6.out_channels, k=k, p=pad,
                       n=head.fc6.in_features, K=net.num_classes, conv=f"{conv_n:,}", fc=f"{fc_n:,}",
                       ok=lab.check_mark(conv_n == fc_n)))
        mean, std = entry.preprocess.mean, entry.preprocess.std
        win = fc_conv.fcn_window_input(net)
        st.subheader(tr("labs.fc.fcn_window_title", h=win[0], w=win[1], k=k))
        square = fc_conv.centre_square(rgb)
        eq = lab.lab_cache("fc_fcn_win", (digest, win),
                               lambda: fc_conv.fcn_head_check(net, image_tensor(square, win, mean, std)))
        assert eq.fc_scores is not None and eq.centre is not None
        cy, cx = eq.centre
        left, right = st.columns([1, 2])
        left.image(images.resize_rgb(square, win),
                   caption=tr("labs.fc.fcn_window_caption", h=win[0], w=win[1]))
        right.dataframe(pd.DataFrame({
            tr("labs.fc.col.class"): [legend.class_label("camvid", i) for i in range(net.num_classes)],
            tr("labs.fc.fcn_col_fc"): eq.fc_scores[0].numpy(),
            tr("labs.fc.fcn_col_conv", y=cy, x=cx): eq.conv_scores[0, :, cy, cx].numpy(),
        }), hide_index=True, height=35 * (net.num_classes + 1) + 3)  # every class, no scrolling
        ok = eq.centre_diff <= TOLERANCE
        (st.success if ok else st.error)(f"{lab.check_mark(ok)} " + tr(
            "labs.fc.fcn_max_diff", K=net.num_classes, diff=eq.centre_diff, tol=TOLERANCE))
        st.caption(tr("labs.fc.fcn_padding_note", p=pad, h=eq.conv_scores.shape[2], w=eq.conv_scores.shape[3],
                      y=cy, x=cx, k=k, diff=eq.map_diff))

        st.subheader(tr("labs.fc.fcn_larger_title"))
        c1, c2 = st.columns(2)
        short = c1.select_slider(tr("labs.fc.fcn_short_side"), [180, 240, 360, 480], value=240, key=FC.FCN_SIZE)
        st.session_state.setdefault(FC.FCN_CLASS, fc_conv.CAMVID_DEFAULT_CLASS)
        class_names = [legend.class_label("camvid", i) for i in range(net.num_classes)]
        with c2:
            cls_f = widgets.stable_choice(st.selectbox, tr("labs.fc.fcn_class"), list(range(net.num_classes)),
                                     key=FC.FCN_CLASS, format_func=class_names.__getitem__)
        shape = network_input_size(rgb.shape[:2], short)
        big = lab.lab_cache("fc_fcn_map", (digest, shape),
                                lambda: fc_conv.fcn_head_check(net, image_tensor(rgb, shape, mean, std)))
        probs, heat = fc_conv.class_heat(big.conv_scores, cls_f, shape)
        h, w = big.conv_scores.shape[-2:]
        name = class_names[cls_f]
        base = images.resize_rgb(rgb, shape)
        left, right = st.columns(2)
        left.image(drawing.blend_heat(base, heat.numpy(), alpha=0.7, gamma=1.0),
                   caption=tr("labs.fc.fcn_heat_caption", h=h, w=w, cls=name), width="stretch")
        right.plotly_chart(figures.value_heatmap(probs.numpy(), tr("labs.fc.prob_map", cls=name), annotate=False,
                                                 colorbar=True), width="stretch")
        st.markdown(tr("labs.fc.fcn_map_explain", H=shape[0], W=shape[1], ph=big.pool5_shape[0],
                       pw=big.pool5_shape[1], h=h, w=w, k=k))
        ok = big.map_diff <= TOLERANCE
        st.markdown(f"{lab.check_mark(ok)} " + tr("labs.fc.fcn_window_check", h=h, w=w, diff=big.map_diff))
        st.caption(tr("labs.fc.fcn_note"))

# ---------------------------------------------------------------- FC over k x k -> k x k conv
with tab_vgg:
    st.markdown(tr("labs.fc.vgg_intro"))
    lab.latex(r"W_{fc} \in \mathbb{R}^{K \times (C\cdot k\cdot k)} \;\xrightarrow{\text{reshape}}\; "
              r"W_{conv} \in \mathbb{R}^{K \times C \times k \times k},\qquad b_{conv} = b_{fc}")
    model = vgg_model()
    conv_head = fc_conv.linear_to_conv(model.classifier, model.feature_channels, model.feature_size)
    c = model.feature_channels
    k = model.feature_size
    fc_params, conv_params = count_params(model.classifier), count_params(conv_head)
    st.markdown(tr("labs.fc.vgg_heads", c=c, k=k, K=model.classifier.out_features, fc=f"{fc_params:,}",
                   conv=f"{conv_params:,}", ok=lab.check_mark(fc_params == conv_params)))
    st.warning(tr("labs.fc.vgg_random"))
    st.subheader(tr("labs.fc.train_size_title", size=model.train_size))
    eq = fc_conv.compare_vgg(model, image_tensor(rgb, (model.train_size, model.train_size)))
    assert eq.fc_scores is not None
    st.dataframe(pd.DataFrame({
        tr("labs.fc.col.class"): list(range(model.classifier.out_features)),
        tr("labs.fc.col.fc"): eq.fc_scores[0].numpy(),
        tr("labs.fc.col.conv"): eq.conv_scores[0, :, 0, 0].numpy(),
    }).T, width="stretch")
    ok = eq.max_abs_diff <= TOLERANCE
    (st.success if ok else st.error)(f"{lab.check_mark(ok)} " + tr("labs.fc.max_diff", diff=eq.max_abs_diff,
                                                                   tol=TOLERANCE))
    st.subheader(tr("labs.fc.larger_title"))
    size = st.slider(tr("labs.fc.input_size"), 40, 256, 96, 8, key=FC.VGG_SIZE)
    big, (iy, ix), diff = views.vgg_window_check(model, rgb, size)
    st.warning("✗ " + tr("labs.fc.fc_fails", size=size, error=big.fc_error or "—"))
    h, w = big.conv_scores.shape[-2:]
    cls = st.slider(tr("labs.fc.class_map"), 0, model.classifier.out_features - 1, 0, key=FC.VGG_CLASS)
    left, right = st.columns(2)
    left.plotly_chart(figures.value_heatmap(big.conv_scores[0, cls].numpy(), tr("labs.fc.map_title", h=h, w=w, cls=cls),
                                            annotate=False, colorbar=True),
                      width="stretch")
    with right:
        st.markdown(tr("labs.fc.map_explain", size=size, feat=size // 8, k=k, h=h, w=w))
        # One position checked against the FC head applied to that window of the features.
        st.markdown(f"{lab.check_mark(diff <= TOLERANCE)} " + tr("labs.fc.window_check", y=iy, x=ix, diff=diff))

# ---------------------------------------------------------------- avgpool + FC -> 1x1 conv
with tab_resnet:
    st.markdown(tr("labs.fc.resnet_intro"))
    lab.latex(r"\mathrm{fc}\Big(\tfrac{1}{hw}\sum_{i,j} f_{ij}\Big) = \tfrac{1}{hw}\sum_{i,j} "
              r"\big(W f_{ij} + b\big) = \mathrm{mean}_{ij}\;\mathrm{conv}_{1\times1}(f)_{ij}")
    resnet, real_weights, categories = resnet_model()
    if not real_weights:  # random weights: an output is only a unit number, never "dog" for a bus
        categories = [tr("labs.fc.unit", i=i) for i in range(len(categories))]
    if real_weights:
        st.success(tr("labs.fc.resnet_real"))
    else:
        st.warning(tr("labs.fc.resnet_random"))
    top5 = views.resnet_top5(resnet, rgb)
    ok = top5.max_abs_diff <= TOLERANCE
    st.dataframe(pd.DataFrame({
        tr("labs.fc.col.category"): [categories[i] for i in top5.indices],
        tr("labs.fc.col.fc"): top5.fc_scores,
        tr("labs.fc.col.conv_mean"): top5.conv_mean,
    }), hide_index=True)
    (st.success if ok else st.error)(f"{lab.check_mark(ok)} " + tr("labs.fc.max_diff_1000", diff=top5.max_abs_diff,
                                                                   tol=TOLERANCE))
    size_r = st.select_slider(tr("labs.fc.input_size"), [224, 320, 448, 640], value=448, key=FC.RESNET_SIZE)
    shape = views.resnet_input_shape(rgb.shape[:2], size_r)
    smap = lab.lab_cache("fc_resnet", (real_weights, digest, shape), lambda: views.resnet_score_map(resnet, rgb, shape))
    best = int(smap.mean(dim=(1, 2)).argmax())
    names = categories
    if st.session_state.get(FC.RESNET_CLASS_IMAGE) != (digest, real_weights):  # a new image: its best class
        widgets.set_choice(FC.RESNET_CLASS, best)
        st.session_state[FC.RESNET_CLASS_IMAGE] = (digest, real_weights)
    # stable_choice: the option texts are language-dependent ("output 238 (untrained)")
    cls_r = widgets.stable_choice(st.selectbox, tr("labs.fc.category"), list(range(len(names))), FC.RESNET_CLASS,
                                  format_func=names.__getitem__)
    probs, heat = views.normalised_heat(smap, cls_r, shape)
    left, right = st.columns(2)
    left.image(drawing.blend_heat(images.resize_rgb(rgb, shape), heat, alpha=0.7, gamma=1.0),
               caption=tr("labs.fc.heat_caption", h=smap.shape[1], w=smap.shape[2], cls=names[cls_r]),
               width="stretch")
    right.plotly_chart(figures.value_heatmap(probs, tr("labs.fc.prob_map", cls=names[cls_r]),
                                                             annotate=False, colorbar=True), width="stretch")
    st.caption(tr("labs.fc.resnet_note"))

# ---------------------------------------------------------------- 1x1 conv
with tab_1x1:
    st.markdown(tr("labs.fc.pw_intro"))
    lab.latex(r"y_{ij} = W\,x_{ij} + b,\qquad W \in \mathbb{R}^{M\times N},\; x_{ij}\in\mathbb{R}^{N},\;"
              r"y_{ij}\in\mathbb{R}^{M}\qquad \#\text{params} = N\cdot M + M")
    c1, c2, c3, c4, c5 = st.columns(5)
    n_in = int(c1.number_input("N", 1, 2048, 64, key=FC.PW_N, help=tr("labs.fc.pw_n")))
    m_out = int(c2.number_input("M", 1, 2048, 21, key=FC.PW_M, help=tr("labs.fc.pw_m")))
    ph = int(c3.number_input("H", 1, 64, 8, key=FC.PW_H))
    pw = int(c4.number_input("W", 1, 64, 8, key=FC.PW_W))
    bias = c5.checkbox(tr("labs.rf.bias"), value=True, key=FC.PW_BIAS)
    check = fc_conv.pointwise_as_matmul(n_in, m_out, ph, pw, bias=bias)
    m1, m2, m3 = st.columns(3)
    m1.metric(tr("labs.fc.pw_params"), f"{check.params:,}")
    m2.metric(tr("labs.fc.pw_formula"), f"{check.formula_params:,}",
              help=f"{n_in}·{m_out}" + (f" + {m_out}" if bias else ""))
    m3.metric(tr("labs.fc.pw_diff"), f"{check.max_abs_diff:.1e}")
    ok = check.params == check.formula_params and check.max_abs_diff <= TOLERANCE
    (st.success if ok else st.error)(f"{lab.check_mark(ok)} " + tr("labs.fc.pw_summary", h=ph, w=pw, n=n_in,
                                                                   m=m_out))
    c1, c2 = st.columns(2)
    iy = c1.slider(tr("labs.fc.pw_row"), 0, ph - 1, 0, key=FC.PW_IY) if ph > 1 else 0
    ix = c2.slider(tr("labs.fc.pw_col"), 0, pw - 1, 0, key=FC.PW_IX) if pw > 1 else 0
    shown = min(m_out, 8)
    st.dataframe(pd.DataFrame({
        "m": list(range(shown)),
        tr("labs.fc.pw_conv_col"): check.conv_out[0, :shown, iy, ix].numpy(),
        tr("labs.fc.pw_mm_col"): check.matmul_out[0, :shown, iy, ix].numpy(),
    }), hide_index=True)
    st.caption(tr("labs.fc.pw_note"))
