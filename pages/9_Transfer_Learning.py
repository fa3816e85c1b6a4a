"""Transfer learning: what an ImageNet backbone knows, and training a head on CamVid live."""

from __future__ import annotations

import uuid

import streamlit as st

from segdemo.data import datasets, samples
from segdemo.labs import transfer
from segdemo.training import live
from segdemo.training.augment import AUGMENTATIONS, BASIC
from segdemo.training.recipes import STRATEGIES
from segdemo.ui import inputs, sidebar, state, widgets
from segdemo.ui import labs as lab
from segdemo.ui.state import TL, tr

SHIPPED_CURVES = ("deeplabv3_mobilenet_v2_camvid", "deeplabv3_mobilenet_v2_scratch_camvid",
                  "lraspp_mobilenet_v2_camvid", "fcn8s_camvid")

settings = sidebar.setup_page("page.transfer", show_model=False, show_overlay=False)
st.caption(tr("page.transfer_sub"))
st.session_state.setdefault(TL.RUN_IDS, [])
st.session_state.setdefault(TL.OWNER, uuid.uuid4().hex)
st.session_state.setdefault(state.OWN_MODELS, [])
for key, value in {TL.STRATEGY: "frozen", TL.SIZE: 50, TL.LR: 5e-3, TL.EPOCHS: 3,
                   TL.AUG: [a for a in AUGMENTATIONS if a in BASIC], TL.SEED: 0}.items():
    st.session_state.setdefault(key, value)
worker = live.worker()
live.preload_camvid()

tab_knows, tab_train = st.tabs([tr("tl.tab.knows"), tr("tl.tab.train")])

# ---------------------------------------------------------------- what the backbone knows
with tab_knows:
    st.caption(tr("tl.knows.intro"))
    left, right = st.columns([1, 1])
    with left:
        images = inputs.image_inputs(TL.PAGE, allow_camera=False)
        if not images:
            images = [inputs.load_sample(s.path) for s in samples.shipped_samples() if s.name == "cat"]
        image = inputs.choose_image(images, TL.IMAGE)
    left.image(inputs.to_display(image.rgb, 640), width="stretch")
    top5 = transfer.imagenet_topk(image.rgb, 5)
    right.markdown(tr("tl.knows.top5"))
    right.dataframe([{tr("tl.col.class"): name, tr("tl.col.prob"): f"{p:.1%}"} for name, p in top5],
                    hide_index=True, width="stretch")
    right.caption(tr("tl.knows.top5_note"))
    for col, stage in zip(st.columns(2), transfer.stage_feature_maps(image.rgb)):
        col.markdown(tr(f"tl.stage.{stage.stage}", stride=stage.stride, channels=stage.channels,
                        h=stage.size[0], w=stage.size[1]))
        col.image(transfer.feature_grid(stage), width="stretch",
                  caption=tr("tl.stage.caption", channels=", ".join(map(str, stage.indices))))

# ---------------------------------------------------------------- train a head live
with tab_train:
    st.caption(tr("tl.train.intro"))
    counts = {s: live.trainable_parameter_counts(s) for s in STRATEGIES}
    c1, c2, c3 = st.columns([1.3, 1, 1])
    strategy = widgets.stable_choice(c1.radio, tr("tl.strategy"), STRATEGIES, TL.STRATEGY,
                                format_func=lambda s: tr(f"tl.strategy.{s}"),
                                captions=[tr("tl.trainable", trainable=counts[s][0] / 1e6, total=counts[s][1] / 1e6)
                                          for s in STRATEGIES])
    size = c2.selectbox(tr("tl.train_size"), live.TRAIN_SIZES, key=TL.SIZE, help=tr("tl.train_size_help"))
    lr = c2.select_slider(tr("tl.lr"), [1e-4, 3e-4, 1e-3, 3e-3, 5e-3, 1e-2], key=TL.LR,
                          format_func=lambda v: f"{v:g}")
    epochs = c3.slider(tr("tl.epochs"), 1, 20, key=TL.EPOCHS)
    augment = widgets.stable_choice(c3.multiselect, tr("tl.augment"), AUGMENTATIONS, TL.AUG,
                               format_func=lambda a: tr(f"tl.aug.{a}"), placeholder=tr("input.choose_many"))
    c1.caption(tr("tl.params_note"))

    with c3.popover(tr("tl.aug.preview"), width="stretch"):
        p1, p2, p3 = st.columns([1, 1, 0.6])
        seed = int(p3.number_input(tr("tl.aug.seed"), 0, 9999, key=TL.SEED))
        if p3.button(tr("tl.aug.draw"), key=TL.DRAW):
            st.session_state[TL.SEED] = (seed + 1) % 10000
            st.rerun()
        try:
            preview = transfer.augmentation_preview(0, frozenset(augment), seed)
        except datasets.DatasetMissingError:
            st.info(tr("tl.no_camvid"))
        else:
            p1.image(preview.image, caption=tr("tl.aug.image"), width="stretch")
            p2.image(preview.mask, caption=tr("tl.aug.mask", void=preview.void_share), width="stretch")
            if set(augment) & {"cutmix", "mixup"}:
                st.caption(tr("tl.aug.mixing_note"))

    if c2.button(tr("tl.start"), type="primary", key=TL.START, width="stretch"):
        config = live.LiveRunConfig(strategy=strategy, train_size=int(size), lr=float(lr), epochs=int(epochs),
                                    augment=frozenset(augment))
        try:
            st.session_state[TL.RUN_IDS].append(worker.submit(config, st.session_state[TL.OWNER]))
        except live.QueueFullError:
            c2.warning(tr("tl.queue_full"))

    runs = [r for r in (worker.status(i) for i in st.session_state[TL.RUN_IDS]) if r is not None]
    active = any(r.status in ("queued", "running") for r in runs)

    @st.fragment(run_every=1.0 if active else None)
    def progress_and_curves() -> None:
        """Polls the worker while a run of this session is queued or running."""
        runs_now = [r for r in (worker.status(i) for i in st.session_state[TL.RUN_IDS]) if r is not None]
        current = runs_now[-1] if runs_now else None
        if current is not None:
            lab.live_run_status(current, worker.position(current.run_id))
            if current.status in ("queued", "running") and st.button(tr("tl.stop"), key=TL.STOP):
                worker.stop(current.run_id)
        series = {tr("tl.run_label", id=r.run_id, strategy=tr(f"tl.strategy.{r.config.strategy}"),
                     n=r.config.train_size): r.history for r in runs_now}
        chart_slot = st.container()
        shipped = st.multiselect(tr("tl.shipped_curves"), SHIPPED_CURVES, key=TL.SHIPPED,
                                 help=tr("tl.shipped_curves_help"), placeholder=tr("input.choose_many"))
        series.update(live.recorded_curves(list(shipped)))
        lab.curve_pair(chart_slot, series, ("val_miou", tr("tl.curve.miou"), "mIoU", TL.CURVE_MIOU),
                       ("loss", tr("tl.curve.loss"), "loss", TL.CURVE_LOSS))
        st.caption(tr("tl.curve.note"))
        if active and not any(r.status in ("queued", "running") for r in runs_now):
            st.rerun()  # the run ended: one full rerun stops the polling and offers the result

    progress_and_curves()

    finished = [r for r in runs if r.status in ("done", "stopped") and r.weights_path is not None]
    if finished:
        last = finished[-1]
        u1, u2 = st.columns(2)
        label = tr("tl.model_label", id=last.run_id, strategy=tr(f"tl.strategy.{last.config.strategy}"),
                   n=last.config.train_size)
        if u1.button(tr("tl.use_on_segment"), key=TL.USE):
            entry = live.register_live_model(last, label)
            st.session_state[state.OWN_MODELS].append(entry.name)
            st.session_state[state.ARCH], st.session_state[state.BACKBONE] = entry.architecture, entry.backbone
            u1.success(tr("tl.used", name=label))
        u2.download_button(tr("tl.download"), data=last.weights_path.read_bytes(),
                           file_name=f"segdemo_live_run_{last.run_id}.safetensors", key=TL.DOWNLOAD)
