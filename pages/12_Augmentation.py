"""Data augmentation: each transform on an image and its label map together, CutMix and MixUp
with their mixed labels, and the measured few-label comparison."""

from __future__ import annotations

import streamlit as st

from segdemo.data import datasets
from segdemo.data.labels import CAMVID
from segdemo.labs import augmentation as aug
from segdemo.ui import inputs, sidebar, widgets
from segdemo.ui import labs as lab
from segdemo.ui.state import AUG, tr

OPS = list(aug.OPS)

settings = sidebar.setup_page("page.augmentation", show_model=False, show_overlay=False)
st.caption(tr("aug.intro"))
st.session_state.setdefault(AUG.DRAWS, 0)
st.session_state.setdefault(AUG.OP, "affine")
st.session_state.setdefault(AUG.PARAMS, {op: aug.defaults(op) for op in OPS})


def random_draw(op: str) -> None:
    """Button callback: new values for ``op``'s controls (before the widgets are drawn)."""
    st.session_state[AUG.DRAWS] += 1
    for name, value in aug.random_params(op, st.session_state[AUG.DRAWS]).items():
        st.session_state[AUG.PARAMS][op][name] = value
        st.session_state[AUG.control(op, name)] = value


# ---------------------------------------------------------------- inputs
try:
    n_frames = aug.camvid_count()
except datasets.DatasetMissingError:
    n_frames = 0
src_col, frame_col, frame_b_col, op_col = st.columns([1, 0.8, 0.8, 1.4])
source = widgets.stable_choice(src_col.radio, tr("aug.source"), ["camvid", "upload"], AUG.SOURCE,
                              format_func={s: tr(f"aug.source.{s}") for s in ("camvid", "upload")}.__getitem__)
pair = second = None
scaled = False
if source == "upload":
    with st.expander(tr("aug.source.upload"), expanded=True):
        images = inputs.image_inputs(AUG.PAGE, allow_camera=False, allow_samples=False)
        if images:
            image = inputs.choose_image(images, AUG.IMAGE)
            mask = inputs.mask_upload(AUG.MASK, tr("aug.mask_upload"), tr("aug.mask_help"), CAMVID, image)
            if mask is None:
                st.info(tr("aug.need_mask"))
            else:
                pair = aug.fit(image.rgb, mask)
                scaled = pair[1].shape != mask.shape
if n_frames:
    index = int(frame_col.number_input(tr("aug.frame"), 0, n_frames - 1, 0, key=AUG.FRAME))
    index_b = int(frame_b_col.number_input(tr("aug.frame_b"), 0, n_frames - 1, 42, key=AUG.FRAME_B))
    second = aug.camvid_frame(index_b)
    pair = pair or aug.camvid_frame(index)
elif pair is None:
    st.info(tr("aug.no_camvid"))
    st.stop()
if second is None:  # no CamVid: an upload mixes with its own mirror image
    second = (pair[0][:, ::-1], pair[1][:, ::-1])
rgb, labels = pair
if scaled:
    st.caption(tr("aug.scaled", w=labels.shape[1], h=labels.shape[0]))

# ---------------------------------------------------------------- the augmentation and its controls
op = widgets.stable_choice(op_col.selectbox, tr("aug.op"), OPS, AUG.OP,
                           format_func={o: tr(f"aug.op.{o}") for o in OPS}.__getitem__)
controls = st.columns(len(aug.OPS[op]) + 1)
params = {}
for col, p in zip(controls, aug.OPS[op]):
    key = AUG.control(op, p.name)
    if key not in st.session_state:  # first shown, or cleared while another augmentation was shown
        st.session_state[key] = st.session_state[AUG.PARAMS][op][p.name]
    params[p.name] = col.slider(tr(f"aug.param.{p.name}"), p.low, p.high, step=p.step, key=key)
    st.session_state[AUG.PARAMS][op][p.name] = params[p.name]
controls[-1].button(tr("aug.draw"), key=AUG.DRAW, on_click=random_draw, args=(op,), type="primary",
                    help=tr("aug.draw_help", n=st.session_state[AUG.DRAWS] + 1), width="stretch")

if op not in aug.MIXING_OPS:
    out_rgb, out_labels = aug.apply(op, rgb, labels, params)
    void = float((out_labels == aug.VOID).mean())
    c1, c2, c3, c4 = st.columns(4)
    c1.image(rgb, caption=tr("aug.before_image"), width="stretch")
    c2.image(aug.colour(labels), caption=tr("aug.before_mask"), width="stretch")
    c3.image(out_rgb, caption=tr("aug.after_image"), width="stretch")
    c4.image(aug.colour(out_labels), caption=tr("aug.after_mask", void=void), width="stretch")
else:
    b_rgb, b_labels = aug.match(*second, labels.shape)
    c1, c2, c3, c4 = st.columns([1, 1, 1, 0.9])
    c1.image(rgb, caption=tr("aug.image_a"), width="stretch")
    c1.image(aug.colour(labels), caption=tr("aug.labels_a"), width="stretch")
    c2.image(b_rgb, caption=tr("aug.image_b"), width="stretch")
    c2.image(aug.colour(b_labels), caption=tr("aug.labels_b"), width="stretch")
    names = aug.class_names()
    if op == "cutmix":
        view = aug.cutmix((rgb, labels), (b_rgb, b_labels), params)
        c3.image(view.image, caption=tr("aug.mixed_image"), width="stretch")
        c3.image(aug.colour(view.labels), caption=tr("aug.mixed_labels"), width="stretch")
        c4.metric(tr("aug.cutmix.share_a"), f"{1 - view.share_b:.1%}")
        c4.metric(tr("aug.cutmix.share_b", h=view.box.height, w=view.box.width), f"{view.share_b:.1%}")
        st.caption(tr("aug.cutmix.explain"))
        shares = aug.class_shares(view.labels)
        rows = [{tr("aug.col.class"): name, tr("aug.col.from_a"): int(view.classes_a[i]),
                 tr("aug.col.from_b"): int(view.classes_b[i]), tr("aug.col.share"): f"{shares[i]:.1%}"}
                for i, name in enumerate(names)]
        rows.append({tr("aug.col.class"): tr("aug.void"), tr("aug.col.from_a"): int(view.classes_a[aug.VOID]),
                     tr("aug.col.from_b"): int(view.classes_b[aug.VOID]), tr("aug.col.share"): "-"})
        st.dataframe(rows, hide_index=True, width="stretch")
    else:
        view = aug.mixup((rgb, labels), (b_rgb, b_labels), params["alpha"])
        c3.image(view.image, caption=tr("aug.mixed_image"), width="stretch")
        shares = aug.class_shares(view.soft)
        cls = c4.selectbox(tr("aug.mixup.class"), range(len(names)), key=AUG.MIX_CLASS,
                           format_func=[f"{n} ({shares[i]:.1%})" for i, n in enumerate(names)].__getitem__)
        c3.image(aug.probability_image(view.soft, int(cls)), caption=tr("aug.mixup.prob", cls=names[int(cls)]),
                 width="stretch")
        loss = lab.lab_cache("aug_loss", (aug.fingerprint(view.image, view.soft, labels),),
                             lambda: aug.implied_loss(view, labels))
        if loss is None:
            c4.info(tr("aug.mixup.no_model"))
        else:
            c4.metric(tr("aug.mixup.loss_soft"), f"{loss.soft:.3f}")
            c4.metric(tr("aug.mixup.loss_hard"), f"{loss.hard_a:.3f}")
            c4.metric(tr("aug.mixup.loss_floor"), f"{loss.floor:.3f}")
        st.caption(tr("aug.mixup.explain"))
        st.markdown(tr("aug.mixup.loss_title"))
        lab.latex(r"t_{ic} = \alpha\,[y^a_i = c] + (1-\alpha)\,[y^b_i = c],\qquad "
                  r"L = \frac{\sum_i \sum_c w_c\, t_{ic}\,(-\log p_{ic})}{\sum_i \sum_c w_c\, t_{ic}}")
        if loss is not None:
            st.caption(tr("aug.mixup.loss_note", model=aug.LOSS_MODEL))
st.caption(tr("aug.transfer_note"))

# ---------------------------------------------------------------- the measured comparison
st.subheader(tr("aug.results.title"))
results = aug.results_table()
if results is None:
    st.info(tr("aug.results.missing"))
else:
    st.caption(tr("aug.results.intro", n=results["train_size"], epochs=results["epochs"]))
    st.dataframe([{tr("aug.results.col.setting"): r["augment"], tr("aug.results.col.miou"): f"{r['val_miou']:.3f}",
                   tr("aug.results.col.seconds"): f"{r['train_seconds']:.0f}",
                   tr("aug.results.col.command"): r["command"]} for r in results["runs"]],
                 hide_index=True, width="stretch")
    st.caption(tr("aug.results.note"))
