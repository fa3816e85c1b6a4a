"""Knowledge distillation: a small student learns from the shipped teacher's soft labels."""

from __future__ import annotations

import uuid

import streamlit as st

from segdemo.data import datasets
from segdemo.labs import distillation as kd
from segdemo.labs import transfer
from segdemo.training import live
from segdemo.ui import errors, sidebar
from segdemo.ui.legend import class_label
from segdemo.ui import labs as lab
from segdemo.ui.state import KD, tr

KD_TEMPERATURES = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0)

settings = sidebar.setup_page("page.distillation", show_model=False, show_overlay=False)
st.caption(tr("page.distillation_sub"))
st.session_state.setdefault(KD.RUN_IDS, [])
st.session_state.setdefault(KD.OWNER, uuid.uuid4().hex)
for key, value in {KD.T: 4.0, KD.MIX: 0.5, KD.EPOCHS: 3, KD.SIZE: 50, KD.CONTROL: True,
                   KD.FRAME: 0}.items():
    st.session_state.setdefault(key, value)
worker = live.worker()
live.preload_camvid()

teacher_params, student_params = kd.parameter_counts()


def role_label(role: str) -> str:
    """The table's name for a shipped model's role."""
    return tr(f"kd.role.{role}")


tab_ship, tab_train, tab_soft = st.tabs([tr("kd.tab.shipped"), tr("kd.tab.train"), tr("kd.tab.soft")])

# ---------------------------------------------------------------- shipped student vs control vs teacher
with tab_ship:
    st.markdown(tr("kd.intro", teacher=teacher_params / 1e6, student=student_params / 1e6))
    rows = kd.shipped_table()
    if not rows:
        st.warning(tr("kd.no_cards"))
    else:
        lab.plain_table([{tr("kd.col.role"): role_label(r["role"]), tr("kd.col.model"): r["name"],
                       tr("kd.col.params"): f"{r['params'] / 1e6:.2f} M", tr("kd.col.ms"): f"{r['cpu_ms']:.0f}",
                       tr("kd.col.miou"): f"{r['miou']:.1%}", tr("kd.col.kd"): (
                           f"T={r['temperature']:g}, α={r['mix']:g}" if r["teacher"] else "—"),
                       tr("kd.col.budget"): tr("kd.budget", epochs=r["epochs"], seconds=r["seconds"])}
                      for r in rows])  # st.table: headers and long names wrap at 1280 px
        gain = kd.distillation_gain(rows)
        if gain is not None:
            st.markdown(tr("kd.gain.helps" if gain > 0 else "kd.gain.no_help", points=gain * 100))
        st.caption(tr("kd.table_note"))
        speed = next((r["vs_teacher"] for r in rows if r.get("vs_teacher")), None)
        if speed:
            st.caption(tr("kd.speed", student_ms=speed["student_cpu_ms"], teacher_ms=speed["teacher_cpu_ms"],
                          speedup=speed["speedup"], ratio=speed["params_ratio"], input=speed["input"]))
        st.plotly_chart(transfer.curves_figure({role_label(r["role"]): r["history"] for r in rows
                                                if r["role"] != "teacher"}, "val_miou_quick",
                                               tr("kd.curve.shipped"), "mIoU"),
                        width="stretch", key=KD.SHIPPED_CURVE)

# ---------------------------------------------------------------- train the student live
with tab_train:
    st.caption(tr("kd.train.intro"))
    st.latex(r"\mathcal{L} = (1-\alpha)\,\mathrm{CE}(y, s) + \alpha\,T^2\,\frac{1}{|P|}\sum_{p \in P}"
             r"\mathrm{KL}\big(\mathrm{softmax}(z_p/T)\,\|\,\mathrm{softmax}(s_p/T)\big)")
    st.caption(tr("kd.formula_note"))
    c1, c2, c3 = st.columns(3)
    temperature = c1.select_slider(tr("kd.temperature"), KD_TEMPERATURES, key=KD.T, format_func=lambda v: f"{v:g}",
                                   help=tr("kd.temperature_help"))
    mix = c1.slider(tr("kd.mix"), 0.0, 1.0, step=0.1, key=KD.MIX, help=tr("kd.mix_help"))
    epochs = c2.slider(tr("kd.epochs"), 1, 10, key=KD.EPOCHS)
    size = c2.selectbox(tr("kd.train_size"), live.TRAIN_SIZES, key=KD.SIZE)
    with_control = c3.checkbox(tr("kd.with_control"), key=KD.CONTROL, help=tr("kd.with_control_help"))
    if c3.button(tr("kd.start"), type="primary", key=KD.START, width="stretch"):
        pair = []
        try:
            for config in kd.live_configs(temperature, mix, int(epochs), int(size), bool(with_control)):
                pair.append(worker.submit(config, st.session_state[KD.OWNER]))
        except live.QueueFullError:
            c3.warning(tr("kd.queue_full"))
        if pair:
            st.session_state[KD.RUN_IDS].append(pair)

    def pair_runs() -> list:
        """The runs of this session's latest start (student first, then its control)."""
        ids = st.session_state[KD.RUN_IDS][-1] if st.session_state[KD.RUN_IDS] else []
        return [r for r in (worker.status(i) for i in ids) if r is not None]

    def run_label(run) -> str:  # noqa: ANN001 - a LiveRun snapshot
        cfg = run.config
        if cfg.teacher:
            return tr("kd.run.student", id=run.run_id, t=cfg.kd_temperature, mix=cfg.kd_mix)
        return tr("kd.run.control", id=run.run_id)

    active = any(r.status in ("queued", "running") for r in pair_runs())

    @st.fragment(run_every=1.0 if active else None)
    def progress_and_curves() -> None:
        """Polls the worker while a run of this session is queued or running."""
        runs_now = pair_runs()
        for run in runs_now:
            st.markdown(f"**{run_label(run)}**")
            lab.live_run_status(run, worker.position(run.run_id))
            if run.status == "stopped" and not run.history:
                st.caption(tr("kd.stopped_early"))
        if any(r.status in ("queued", "running") for r in runs_now):
            if st.button(tr("kd.stop"), key=KD.STOP):
                for run in runs_now:
                    worker.stop(run.run_id)
        if runs_now:
            series = {run_label(r): kd.run_series(r.history) for r in runs_now}
            lab.curve_pair(st, series, ("val_miou", tr("kd.curve.miou"), "mIoU", KD.CURVE_MIOU),
                           ("ce", tr("kd.curve.ce"), "CE", KD.CURVE_CE))
            st.caption(tr("kd.curve.note"))
        if active and not any(r.status in ("queued", "running") for r in runs_now):
            st.rerun()  # the runs ended: one full rerun stops the polling and offers the result

    progress_and_curves()

# ---------------------------------------------------------------- teacher vs student, soft labels
with tab_soft:
    st.caption(tr("kd.soft.intro"))
    students = {tr("kd.pick.shipped_student"): kd.STUDENT, tr("kd.pick.shipped_control"): kd.CONTROL}
    for pair in st.session_state[KD.RUN_IDS]:
        for run in (worker.status(i) for i in pair):
            if run is not None and run.weights_path is not None and run.weights_path.is_file():
                students[tr("kd.pick.live", label=run_label(run))] = str(run.weights_path)
    f1, f2 = st.columns(2)
    index = f1.slider(tr("kd.frame"), 0, kd.VAL_FRAMES - 1, key=KD.FRAME)
    student_label = f2.selectbox(tr("kd.student"), list(students), key=KD.STUDENT)
    try:
        frame = kd.val_frame(int(index))
        teacher_z = kd.teacher_logits(int(index))
    except datasets.DatasetMissingError:
        st.info(tr("kd.no_camvid"))
    else:
        left, right = st.columns([1, 1.3])
        with left:
            st.caption(tr("kd.click_hint", name=frame.name))
            y, x = lab.clicked_pixel(frame.rgb, frame.labels.shape, KD.CLICK)
        probs = kd.soft_labels_at(teacher_z, y, x)
        names = [class_label("camvid", i) for i in range(len(probs[0]))]
        true = int(frame.labels[y, x])
        right.plotly_chart(kd.soft_label_figure(probs, kd.TEMPERATURES, tr("kd.soft.title", y=y, x=x), names),
                           width="stretch", key=KD.SOFT_CHART)
        right.caption(tr("kd.soft.truth", cls=tr("kd.void") if true == kd.CAMVID.ignore_index else names[true],
                         top=names[int(probs[0].argmax())]))
        with st.expander(tr("kd.soft.table")):
            lab.plain_table([{"T": f"{t:g}", **{c: f"{p:.3f}" for c, p in zip(names, row)},
                       "Σ": f"{row.sum():.3f}"} for t, row in zip(kd.TEMPERATURES, probs)])
        try:
            masks = kd.frame_masks(frame, teacher_z, students[student_label], (y, x))
        except (FileNotFoundError, KeyError, RuntimeError) as exc:
            st.warning(tr("kd.student_missing", reason=errors.reason(exc)))
        else:
            m1, m2, m3 = st.columns(3)
            m1.image(masks.truth, caption=tr("kd.mask.truth"), width="stretch")
            m2.image(masks.teacher, caption=tr("kd.mask.teacher", miou=masks.teacher_miou), width="stretch")
            m3.image(masks.student, caption=tr("kd.mask.student", miou=masks.student_miou), width="stretch")
            st.caption(tr("kd.mask.note"))
