"""Views of the Evaluate page: the per-class table, confusion matrix, error maps, batches.

The pure builders (:func:`scores_frame`, :func:`confusion_figure`,
:func:`formula_latex`) take the language explicitly so tests can call them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from segdemo import i18n
from segdemo.data.labels import LabelSet
from segdemo.evaluate import (BatchResult, PairResult, Scores, colorize_labels, error_counts, error_map,
                              iou_formula_values, normalise_confusion)
from segdemo.evaluate.maps import FN_COLOR, FP_COLOR, HATCH_DARK, OTHER_COLOR, TP_COLOR, WRONG_COLOR
from segdemo.ui import state
from segdemo.ui.eval_inputs import class_names, describe
from segdemo.ui.inputs import to_display
from segdemo.ui.legend import swatch_legend
from segdemo.ui.state import EVAL_VIEWS, options_formatter, sub_key, tr
from segdemo.ui.widgets import set_choice, stable_choice


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
    lang = state.current_lang()
    show_all = st.toggle(tr("eval.show_all_classes"), key=sub_key(key, EVAL_VIEWS.ALL))
    frame = scores_frame(scores, label_set, lang, per_image, only_relevant=not show_all)
    # Plain fractions, not percent: the -1 of the torchmetrics policy must read as -1. Undefined
    # scores read "—", not "None" (the Styler formats the shown text; sorting keeps the numbers).
    pct = [c for c in frame.columns
           if c not in ("TP", "FP", "FN", "_id", i18n.t("eval.col.class", lang), i18n.t("eval.col.in_mean", lang))]
    shown = frame.style.format("{:.4f}", subset=pct, na_rep="—")
    table = st.dataframe(shown, hide_index=True, column_config={"_id": None}, key=sub_key(key, EVAL_VIEWS.TABLE),
                         on_select="rerun", selection_mode="single-row")
    st.caption(tr("eval.table_caption"))
    rows = getattr(getattr(table, "selection", None), "rows", None) or []
    return int(frame["_id"].iloc[rows[0]]) if rows else None


def class_choice(scores: Scores, label_set: LabelSet, key: str, selected: int | None) -> int:
    """The class whose formula and error map are shown (a table click selects it too)."""
    lang = state.current_lang()
    names = class_names(label_set, lang)
    present = [i for i in range(len(names)) if not scores.absent[i]] or list(range(len(names)))
    last = sub_key(key, EVAL_VIEWS.LAST_PICK)
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
    lang = state.current_lang()
    mode = stable_choice(st.radio, tr("eval.cm.mode"), ("count", "row", "col"), sub_key(key, EVAL_VIEWS.NORM), horizontal=True,
                         format_func=options_formatter("eval.cm.mode."))
    names = class_names(label_set, lang, other)
    cm = scores.cm
    used = [i for i in range(cm.shape[0]) if cm[i].sum() or cm[:, i].sum()]
    show = None if st.toggle(tr("eval.show_all_classes"), key=sub_key(key, EVAL_VIEWS.CM_ALL)) else used
    st.plotly_chart(confusion_figure(cm, names, mode, lang, show), key=sub_key(key, EVAL_VIEWS.CM))
    st.caption(tr(f"eval.cm.caption.{mode}"))


def error_view(result: PairResult, image: np.ndarray | None, label_set: LabelSet, class_id: int, key: str) -> None:
    """TP/FP/FN over the image for one class, or right/wrong for all; ignored pixels hatched."""
    lang = state.current_lang()
    names = class_names(label_set, lang)
    scope = stable_choice(st.radio, tr("eval.err_map.scope"), ("one", "all"), sub_key(key, EVAL_VIEWS.SCOPE), horizontal=True,
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
    swatch_legend(legend, inline=True)  # above the picture, on one line: legible on a projector
    st.image(to_display(emap, 960), caption=tr("eval.err_map.caption"))


def side_by_side_view(result: PairResult, label_set: LabelSet, other: bool, second_title: str) -> None:
    """Ground truth and prediction next to each other, same palette, ignored pixels hatched."""
    lang = state.current_lang()
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
        st.latex(formula_latex(scores, class_id, class_names(label_set, state.current_lang())[class_id]))
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
    c1, c2, c3 = st.columns(3)
    c1.metric(tr("eval.batch.accumulated"), f"{scores.summary['mIoU']:.1%}" if math.isfinite(scores.summary["mIoU"]) else "—")
    c2.metric(tr("eval.batch.per_image_mean"),
              f"{result.mean_image_miou:.1%}" if math.isfinite(result.mean_image_miou) else "—")
    bf = result.mean_image_boundary_f1
    c3.metric(tr("eval.batch.bf_imagewise"), f"{bf:.1%}" if math.isfinite(bf) else "—",
              help=tr("eval.batch.bf_imagewise.help"))
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

