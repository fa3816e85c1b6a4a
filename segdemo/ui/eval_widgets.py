"""Widgets of the Evaluate page: policy switches, label mapping, the result views.

The numbers come from :mod:`segdemo.evaluate`; here they are only laid out.
The pure builders (:func:`scores_frame`, :func:`confusion_figure`,
:func:`formula_latex`) take the language explicitly so tests can call them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from segdemo import i18n
from segdemo.evaluate import (ABSENT_POLICIES, OTHER, BatchAccumulator, BatchResult, GroundTruth, LabelMapping,
                              MaskError, Notice, PairPlan, PairResult, Policy, Scores, colorize_labels, decode_mask,
                              describe_notice, error_counts, error_map, iou_formula_values, mapping_by_name,
                              mapping_from_names, normalise_confusion, per_class_csv, per_image_csv, preset_mapping,
                              run_batch, to_json)
from segdemo.data.images import ImageError, InputImage, decode_image, digest_bytes
from segdemo.evaluate.maps import FN_COLOR, FP_COLOR, HATCH_DARK, OTHER_COLOR, TP_COLOR, WRONG_COLOR
from segdemo.data.labels import LABEL_SETS, LabelSet
from segdemo.inference.pipeline import predict_with_cpu_fallback
from segdemo.ui import (Settings, get_model, options_formatter, set_choice, stable_choice, swatch_legend, to_display,
                        tr, weights_identity)


def _lang() -> str:
    return st.session_state.get("lang", i18n.DEFAULT_LANGUAGE)


def class_names(label_set: LabelSet, lang: str, other: bool = False) -> list[str]:
    """Translated class names, plus "other" for a mapping's extra column."""
    names = [i18n.class_name(label_set.key, c, lang) for c in label_set.classes]
    return names + [i18n.t("eval.other", lang)] if other else names


def describe(notice: Notice) -> str:
    """A notice or error as text in the session language (unknown keys shown raw)."""
    return describe_notice(notice, _lang())


def show_notices(notices: list[Notice]) -> None:
    """Each notice as an info, warning or error box."""
    for n in notices:
        {"info": st.info, "warning": st.warning, "error": st.error}.get(n.level, st.info)(describe(n))


# ---------------------------------------------------------------- inputs


def read_upload(upload: UploadedFile | None) -> tuple[str, bytes] | None:
    """(name, bytes) of an upload, or None."""
    return None if upload is None else (upload.name, upload.getvalue())


def decode_image_cached(named: tuple[str, bytes] | None) -> InputImage | None:
    """Decode an image once per content; a bad file shows its message and gives None."""
    if named is None:
        return None
    store: dict = st.session_state.setdefault("_eval_images", {})
    name, data = named
    key = (name, digest_bytes(data))
    if key not in store:
        try:
            store[key] = decode_image(data, name)
        except ImageError as exc:
            store[key] = exc
        while len(store) > 16:
            store.pop(next(iter(store)))
    if isinstance(store[key], ImageError):
        st.error(tr(store[key].key, **store[key].values))
        return None
    return store[key]


def decode_mask_shown(named: tuple[str, bytes] | None, gt_set: LabelSet, ignore: int | None,
                      size: tuple[int, int] | None) -> GroundTruth | None:
    """Decode a mask and show its notices; a mask that cannot be used shows why and gives None."""
    if named is None:
        return None
    try:
        gt = decode_mask(named[1], named[0], gt_set, ignore, size)
    except MaskError as exc:
        st.error(describe(exc))
        return None
    show_notices(gt.notices)
    return gt


def downloads(result: BatchResult, stem: str, meta: dict[str, object]) -> None:
    """Per-class CSV, per-image CSV and everything as JSON."""
    c1, c2, c3 = st.columns(3)
    c1.download_button(tr("eval.download.csv"), data=lambda: per_class_csv(result), file_name=f"{stem}_classes.csv",
                       mime="text/csv", on_click="ignore")
    c2.download_button(tr("eval.download.images_csv"), data=lambda: per_image_csv(result, describe),
                       file_name=f"{stem}_images.csv", mime="text/csv", on_click="ignore")
    c3.download_button(tr("eval.download.json"), data=lambda: to_json(result, meta, describe),
                       file_name=f"{stem}.json", mime="application/json", on_click="ignore")


def run_model_batch(files: dict[str, bytes | Path], plan: PairPlan, settings: Settings, gt_set: LabelSet,
                    ignore: int | None, accumulator: BatchAccumulator) -> BatchResult:
    """Run the sidebar's model on every pair of ``plan`` and score it, with a progress bar.

    Label maps are kept per session (bounded), so changing a convention only
    re-scores; out of GPU memory, an image runs on the CPU and the page says so.
    """
    bar = st.progress(0.0, text=tr("eval.batch.starting"))
    model = get_model(settings.model_name, settings)  # once: its messages show once
    entry = settings.entry
    weights = weights_identity(entry)
    preds: dict = st.session_state.setdefault("_eval_batch_preds", {})
    fell_back: list[bool] = []

    def read(name: str) -> bytes:
        value = files[name]
        return value.read_bytes() if isinstance(value, Path) else value

    def load(key: str, image_name: str, mask_name: str) -> tuple[np.ndarray, np.ndarray, list[Notice]]:
        image = decode_image(read(image_name), image_name)
        truth = decode_mask(read(mask_name), mask_name, gt_set, ignore, image.rgb.shape[:2])
        pred_key = (image.digest, settings.model_name, weights, settings.inference_size, settings.device,
                    settings.half)
        if pred_key not in preds:
            pred, oom = predict_with_cpu_fallback(model, entry, image.rgb, settings.inference_size, settings.device,
                                                  settings.half,
                                                  cpu_model=lambda: get_model(settings.model_name, settings, "cpu"))
            fell_back.append(oom)
            preds[pred_key] = pred.labels
            while len(preds) > 500:
                preds.pop(next(iter(preds)))
        return preds[pred_key], truth.labels, truth.notices

    def progress(i: int, n: int, name: str) -> None:
        bar.progress(i / n if n else 1.0, text=tr("eval.batch.progress", i=i, n=n, name=name))

    batch = run_batch(plan.pairs, load, accumulator, progress, plan.images_without_mask)
    bar.empty()
    if any(fell_back):
        st.warning(tr("model.oom"))
    return batch


# ---------------------------------------------------------------- settings


def _label_set_key(value: object, default: str = "voc") -> str:
    """The label-set key a selectbox value stands for.

    After a language switch the browser may send back the *displayed* text of
    the old language ("PASCAL VOC (21개 클래스)"); map it back to its key.
    """
    if value in LABEL_SETS:
        return str(value)
    for lang in i18n.LANGUAGES:
        for key in LABEL_SETS:
            if i18n.t(f"labelset.{key}", lang) == value:
                return key
    return default


def _reset_ignore() -> None:
    key = _label_set_key(st.session_state.get("eval_gt_labels"))
    if st.session_state.get("eval_gt_labels") != key:  # only from the on_change callback
        st.session_state["eval_gt_labels"] = key
    gt = LABEL_SETS[key]
    st.session_state["eval_ignore"] = -1 if gt.ignore_index is None else gt.ignore_index


def set_truth_labels(key: str) -> None:
    """Make ``key`` the truth's label set (with its own ignore label)."""
    set_choice("eval_gt_labels", key)
    _reset_ignore()


def source_and_example(key: str, names: list[str], label_set_keys: list[str]) -> int | None:
    """Upload, or one of ``names`` from the data folder (the default when there are any).

    Returns the chosen example's index, or None for uploads. Choosing an example
    also sets the truth's label set to the example's.
    """
    sources = ("upload", "example") if names else ("upload",)
    st.session_state.setdefault(f"{key}_source", sources[-1])
    source = stable_choice(st.radio, tr("eval.source"), sources, f"{key}_source", horizontal=True,
                           format_func=options_formatter("eval.source."))
    if source != "example":
        return None
    example_key = f"{key}_example"  # example names are not translated: a plain widget key is safe
    if st.session_state.get(example_key) not in names:
        st.session_state[example_key] = names[0]
        set_truth_labels(label_set_keys[0])
    choice = st.selectbox(tr("eval.example"), names, key=example_key,
                          on_change=lambda: set_truth_labels(label_set_keys[names.index(st.session_state[example_key])]))
    return names.index(choice)


def truth_label_set_select(default_key: str) -> LabelSet:
    """The label set the ground truth is drawn in (default: the model's)."""
    st.session_state["eval_gt_labels"] = _label_set_key(st.session_state.get("eval_gt_labels", default_key), default_key)
    widget_key = f"eval_gt_labels@{_lang()}"

    def changed() -> None:
        st.session_state["eval_gt_labels"] = _label_set_key(st.session_state[widget_key])
        _reset_ignore()

    key = stable_choice(st.selectbox, tr("eval.gt_labels"), list(LABEL_SETS), "eval_gt_labels",
                        format_func=options_formatter("labelset."), on_change=changed, help=tr("eval.gt_labels_help"))
    return LABEL_SETS[_label_set_key(key)]


def policy_controls(gt_set: LabelSet) -> tuple[Policy, int | None]:
    """Ignore label, absent-class policy and background switch, each explained."""
    if "eval_ignore" not in st.session_state:
        _reset_ignore()
    cols = st.columns(3)
    with cols[0]:
        ignore = st.number_input(tr("eval.ignore"), min_value=-1, max_value=65535, step=1, key="eval_ignore",
                                 help=tr("eval.ignore_help"))
    with cols[1]:
        absent = stable_choice(st.radio, tr("eval.absent"), ABSENT_POLICIES, "eval_absent",
                               format_func=options_formatter("eval.absent."), help=tr("eval.absent_help"))
    with cols[2]:
        st.session_state.setdefault("eval_background", True)
        has_bg = gt_set.background_index is not None
        background = st.toggle(tr("eval.background"), key="eval_background", disabled=not has_bg,
                               help=tr("eval.background_help"))
        if not has_bg:
            st.caption(tr("eval.no_background", labels=tr(f"labelset.{gt_set.key}")))
    return Policy(absent, bool(background) or not has_bg), (None if int(ignore) < 0 else int(ignore))


def mapping_controls(gt_set: LabelSet, pred_set: LabelSet) -> LabelMapping | None:
    """Identity, a preset, or a user-edited mapping; ``None`` with a clear message if nothing maps."""
    if gt_set.key == pred_set.key:
        return None
    lang = _lang()
    preset = preset_mapping(gt_set, pred_set)
    st.subheader(tr("eval.map.title"))
    truth, model = tr(f"labelset.{gt_set.key}"), tr(f"labelset.{pred_set.key}")
    if preset is None:
        st.warning(tr("eval.map.no_match", truth=truth, model=model))
        start = mapping_by_name(gt_set, pred_set)
    else:
        st.info(tr("eval.map.preset", truth=truth, model=model, preset=tr(f"eval.map.preset.{preset.preset}")))
        start = preset
    gt_names = class_names(gt_set, lang)
    other = tr("eval.other")
    # The mapping itself is kept language-free (ids); the editor is per language.
    state_key = f"eval_mapping_{gt_set.key}_{pred_set.key}"
    current = st.session_state.get(state_key, start.pred_to_gt)
    frame = pd.DataFrame({
        tr("eval.map.model_class"): class_names(pred_set, lang),
        tr("eval.map.truth_class"): [other if g == OTHER else gt_names[g] for g in current],
    })
    with st.expander(tr("eval.map.edit"), expanded=preset is None):
        edited = st.data_editor(
            frame, hide_index=True, key=f"{state_key}@{lang}", disabled=[tr("eval.map.model_class")],
            column_config={tr("eval.map.truth_class"): st.column_config.SelectboxColumn(
                options=gt_names + [other], required=True)})
    targets = [gt_set.classes[gt_names.index(v)] if v in gt_names else "" for v in edited[tr("eval.map.truth_class")]]
    mapping = mapping_from_names(gt_set, pred_set, targets)
    st.session_state[state_key] = mapping.pred_to_gt
    if not mapping.reachable().any():
        st.error(tr("eval.map.nothing", truth=truth, model=model))
        return None
    if preset is not None and mapping.pred_to_gt == preset.pred_to_gt:
        mapping = preset
    unreachable = [gt_names[i] for i in np.flatnonzero(~mapping.reachable())]
    if unreachable:
        st.caption(tr("eval.map.unreachable", classes=", ".join(unreachable)))
    return mapping


# ---------------------------------------------------------------- tables and figures


def _pct(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def scores_frame(scores: Scores, label_set: LabelSet, lang: str, per_image: np.ndarray | None = None,
                 only_relevant: bool = True) -> pd.DataFrame:
    """The per-class table: counts, scores, whether the class enters the means."""
    names = class_names(label_set, lang)
    rows = []
    for i, name in enumerate(names):
        if only_relevant and scores.absent[i] and not scores.in_mean[i]:
            continue
        row = {
            i18n.t("eval.col.class", lang): name,
            "TP": int(scores.tp[i]), "FP": int(scores.fp[i]), "FN": int(scores.fn[i]),
            "IoU": _pct(scores.iou[i]), "Dice / F1": _pct(scores.dice[i]),
            i18n.t("eval.col.precision", lang): _pct(scores.precision[i]),
            i18n.t("eval.col.recall", lang): _pct(scores.recall[i]),
            i18n.t("eval.col.boundary", lang): _pct(scores.boundary_f1[i]),
        }
        if per_image is not None:
            row[i18n.t("eval.col.per_image", lang)] = _pct(per_image[i])
        row[i18n.t("eval.col.in_mean", lang)] = bool(scores.in_mean[i])
        row["_id"] = i
        rows.append(row)
    return pd.DataFrame(rows)


def confusion_figure(cm: np.ndarray, names: list[str], mode: str, lang: str,
                     show: list[int] | None = None) -> go.Figure:
    """Interactive heatmap of the confusion matrix (rows truth, columns prediction)."""
    cm = np.asarray(cm)
    idx = list(range(len(names))) if show is None else list(show)
    values = normalise_confusion(cm, mode)[np.ix_(idx, idx)]
    counts = cm[np.ix_(idx, idx)]
    labels = [names[i] for i in idx]
    fmt = "%{z:d}" if mode == "count" else "%{z:.1%}"
    text = [[("" if not np.isfinite(v) else (f"{int(v)}" if mode == "count" else f"{v:.0%}")) for v in row]
            for row in values]
    fig = go.Figure(go.Heatmap(
        z=values, x=labels, y=labels, customdata=counts, colorscale="Blues", text=text, texttemplate="%{text}",
        hovertemplate=(i18n.t("eval.cm.truth", lang) + ": %{y}<br>" + i18n.t("eval.cm.pred", lang)
                       + ": %{x}<br>" + i18n.t("eval.cm.pixels", lang) + ": %{customdata}<br>" + fmt
                       + "<extra></extra>"),
        zmin=0, zmax=None if mode == "count" else 1,
    ))
    fig.update_layout(xaxis_title=i18n.t("eval.cm.pred", lang), yaxis_title=i18n.t("eval.cm.truth", lang),
                      yaxis_autorange="reversed", height=max(360, 28 * len(idx) + 160),
                      margin=dict(l=10, r=10, t=30, b=10), font=dict(size=15))
    return fig


def formula_latex(scores: Scores, class_id: int, name: str) -> str:
    """IoU = TP / (TP + FP + FN) with the class's own counts filled in."""
    f = iou_formula_values(scores, class_id)
    safe = name.replace("_", r"\_")
    head = rf"\mathrm{{IoU}}_{{\text{{{safe}}}}} = \frac{{TP}}{{TP + FP + FN}}"
    if f["iou"] is None:
        return head + r" = \frac{0}{0 + 0 + 0}"
    return head + rf" = \frac{{{f['tp']:,}}}{{{f['tp']:,} + {f['fp']:,} + {f['fn']:,}}} = {f['iou']:.4f}".replace(",", "{,}")


def summary_metrics(scores: Scores) -> None:
    """The headline numbers as metric tiles."""
    s = scores.summary
    keys = ("mIoU", "pixel_accuracy", "mean_class_accuracy", "fw_IoU", "mean_Dice", "mean_boundary_F1")
    for col, key in zip(st.columns(len(keys)), keys):
        value = s[key]
        col.metric(tr(f"eval.metric.{key}"), "—" if not math.isfinite(value) else f"{value:.1%}",
                   help=tr(f"eval.metric.{key}.help"))
    st.caption(tr("eval.summary_caption", pixels=s["valid_pixels"], classes=s["classes_in_mean"],
                  policy=tr(f"eval.absent.{scores.policy.absent}")))
    if s["accuracy_pixels"] != s["valid_pixels"]:
        st.caption(tr("eval.accuracy_scope", pixels=s["accuracy_pixels"], left_out=s["valid_pixels"] - s["accuracy_pixels"]))


def per_class_table(scores: Scores, label_set: LabelSet, key: str, per_image: np.ndarray | None = None) -> int | None:
    """Sortable per-class table; returns the class id of a selected row, if any."""
    lang = _lang()
    show_all = st.toggle(tr("eval.show_all_classes"), key=f"{key}_all")
    frame = scores_frame(scores, label_set, lang, per_image, only_relevant=not show_all)
    # Plain fractions, not percent: the -1 of the torchmetrics policy must read as -1.
    pct = {c: st.column_config.NumberColumn(format="%.4f") for c in frame.columns
           if c not in ("TP", "FP", "FN", "_id", i18n.t("eval.col.class", lang), i18n.t("eval.col.in_mean", lang))}
    state = st.dataframe(frame, hide_index=True, column_config={**pct, "_id": None}, key=f"{key}_table",
                         on_select="rerun", selection_mode="single-row")
    st.caption(tr("eval.table_caption"))
    rows = getattr(getattr(state, "selection", None), "rows", None) or []
    return int(frame["_id"].iloc[rows[0]]) if rows else None


def class_choice(scores: Scores, label_set: LabelSet, key: str, selected: int | None) -> int:
    """The class whose formula and error map are shown (a table click selects it too)."""
    lang = _lang()
    names = class_names(label_set, lang)
    present = [i for i in range(len(names)) if not scores.absent[i]] or list(range(len(names)))
    last = f"{key}_last_table_pick"
    if selected is not None and st.session_state.get(last) != selected:
        st.session_state[last] = selected
        set_choice(key, selected)
    if st.session_state.get(key) not in present:
        # Start on the largest evaluated foreground class of the truth.
        by_iou = sorted(present, key=lambda i: (not scores.evaluated[i], label_set.background_index == i,
                                                -(scores.tp[i] + scores.fn[i])))
        set_choice(key, by_iou[0])
    return stable_choice(st.selectbox, tr("eval.class"), present, key, format_func=lambda i: names[i])


def confusion_view(scores: Scores, label_set: LabelSet, key: str, other: bool) -> None:
    """Heatmap with counts / row- / column-normalised switch."""
    lang = _lang()
    mode = stable_choice(st.radio, tr("eval.cm.mode"), ("count", "row", "col"), f"{key}_norm", horizontal=True,
                         format_func=options_formatter("eval.cm.mode."))
    names = class_names(label_set, lang, other)
    cm = scores.cm
    used = [i for i in range(cm.shape[0]) if cm[i].sum() or cm[:, i].sum()]
    show = None if st.toggle(tr("eval.show_all_classes"), key=f"{key}_cm_all") else used
    st.plotly_chart(confusion_figure(cm, names, mode, lang, show), key=f"{key}_cm")
    st.caption(tr(f"eval.cm.caption.{mode}"))


def error_view(result: PairResult, image: np.ndarray | None, label_set: LabelSet, class_id: int, key: str) -> None:
    """TP/FP/FN over the image for one class, or right/wrong for all; ignored pixels hatched."""
    lang = _lang()
    names = class_names(label_set, lang)
    scope = stable_choice(st.radio, tr("eval.err_map.scope"), ("one", "all"), f"{key}_scope", horizontal=True,
                          format_func=lambda s: i18n.t(f"eval.err_map.scope.{s}", lang, name=names[class_id]))
    base = image if image is not None else colorize_labels(result.truth, label_set)
    if scope == "one":
        emap = error_map(base, result.pred, result.truth, result.valid, class_id)
        c = error_counts(result.pred, result.truth, result.valid, class_id)
        legend = [(TP_COLOR, "TP", f"{c['TP']:,}"), (FP_COLOR, "FP", f"{c['FP']:,}"), (FN_COLOR, "FN", f"{c['FN']:,}")]
    else:
        emap = error_map(base, result.pred, result.truth, result.valid, None)
        right = int((result.valid & (result.pred == result.truth)).sum())
        wrong = int((result.valid & (result.pred != result.truth)).sum())
        legend = [(TP_COLOR, tr("eval.err_map.right"), f"{right:,}"), (WRONG_COLOR, tr("eval.err_map.wrong"), f"{wrong:,}")]
    legend.append((HATCH_DARK, tr("eval.err_map.ignored"), f"{int((~result.valid).sum()):,}"))
    left, right_col = st.columns([3, 1])
    left.image(to_display(emap, 960), caption=tr("eval.err_map.caption"))
    with right_col:
        swatch_legend(legend)


def side_by_side_view(result: PairResult, label_set: LabelSet, other: bool, second_title: str) -> None:
    """Ground truth and prediction next to each other, same palette, ignored pixels hatched."""
    lang = _lang()
    n = label_set.num_classes
    left, right = st.columns(2)
    left.image(to_display(colorize_labels(result.truth, label_set, result.valid), 800), caption=tr("eval.truth"))
    right.image(to_display(colorize_labels(result.pred, label_set, result.valid, n if other else None), 800),
                caption=second_title)
    present = sorted(set(np.unique(result.truth[result.valid]).tolist()) | set(np.unique(result.pred[result.valid]).tolist()))
    names = class_names(label_set, lang, other)
    swatch_legend([((OTHER_COLOR if c == n else label_set.colors[c]), names[c], "") for c in present if c <= n]
                  + [(HATCH_DARK, tr("eval.err_map.ignored"), "")])


def result_views(result: PairResult, image: np.ndarray | None, label_set: LabelSet, key: str,
                 other: bool = False, second_title: str | None = None) -> None:
    """The full single-pair report: tiles, table + formula, heatmap, error map, side by side."""
    scores = result.scores
    summary_metrics(scores)
    tab_table, tab_cm, tab_err, tab_side = st.tabs([tr("eval.tab.table"), tr("eval.tab.cm"), tr("eval.tab.errors"),
                                                    tr("eval.tab.side")])
    with tab_table:
        picked = per_class_table(scores, label_set, key)
        class_id = class_choice(scores, label_set, f"{key}_class", picked)
        st.latex(formula_latex(scores, class_id, class_names(label_set, _lang())[class_id]))
        st.caption(tr("eval.formula_caption"))
    with tab_cm:
        confusion_view(scores, label_set, key, other)
    with tab_err:
        error_view(result, image, label_set, class_id, key)
    with tab_side:
        side_by_side_view(result, label_set, other, second_title or tr("eval.prediction"))


def batch_views(result: BatchResult, label_set: LabelSet, key: str, other: bool = False) -> None:
    """Accumulated scores beside the mean of per-image scores, the heatmap and the image list."""
    scores = result.scores
    if scores is None:
        st.error(tr("eval.batch.nothing"))
        return
    summary_metrics(scores)
    c1, c2 = st.columns(2)
    c1.metric(tr("eval.batch.accumulated"), f"{scores.summary['mIoU']:.1%}" if math.isfinite(scores.summary["mIoU"]) else "—")
    c2.metric(tr("eval.batch.per_image_mean"),
              f"{result.mean_image_miou:.1%}" if math.isfinite(result.mean_image_miou) else "—")
    st.info(tr("eval.batch.why_differ"))
    tab_table, tab_cm, tab_images = st.tabs([tr("eval.tab.table"), tr("eval.tab.cm"), tr("eval.tab.images")])
    with tab_table:
        per_class_table(scores, label_set, key, result.mean_image_iou_per_class)
    with tab_cm:
        confusion_view(scores, label_set, key, other)
    with tab_images:
        rows = [{tr("eval.col.image"): r.name, "mIoU": _pct(r.miou), tr("eval.metric.pixel_accuracy"): _pct(r.pixel_accuracy),
                 tr("eval.col.pixels"): r.valid_pixels, tr("eval.col.error"): "" if r.error is None else describe(r.error)}
                for r in result.images]
        st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
            "mIoU": st.column_config.NumberColumn(format="percent"),
            tr("eval.metric.pixel_accuracy"): st.column_config.NumberColumn(format="percent")})

