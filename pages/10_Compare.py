"""Compare: several models on one image — where they disagree, how they score, what each costs."""

from dataclasses import replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from segdemo.data import datasets
from segdemo.data import samples
from segdemo.data.images import InputImage
from segdemo.data.labels import get_label_set
from segdemo.evaluate import MaskError, decode_mask
from segdemo.evaluate.maps import error_map
from segdemo.evaluate.scoring import EvaluationError
from segdemo.labs import compare as cmp
from segdemo.labs import fcn_skips as fc
from segdemo.render import overlay as overlay
from segdemo.ui import compare as ui_cmp
from segdemo.ui import inputs, legend, models, sidebar, state, widgets
from segdemo.ui.state import COMPARE, tr

settings = sidebar.setup_page("page.compare", show_model=False)
# The first result (the side-by-side panels) must be in view at 1280x800 (issue 10, defect 6):
# the introduction folds away and the choices share rows.
about = st.expander(tr("common.about_page"))
about.markdown(tr("compare.intro"))

# ---------------------------------------------------------------- label set and models
LABEL_SETS = list(cmp.COMPARABLE_LABEL_SETS)
top_left, top_right = st.columns(2)
with top_left:
    label_key = widgets.stable_choice(st.radio, tr("compare.label_set"), LABEL_SETS, COMPARE.LABEL_SET,
                                      horizontal=True, format_func=state.options_formatter("labelset."))
with top_right:
    source, val_files = widgets.camvid_source_choice(COMPARE.PAGE, ["sample", "upload"])
label_set = get_label_set(label_key)
usable, missing = ui_cmp.candidate_models(label_key)
ui_cmp.show_missing_weights(missing)
left_out = ui_cmp.left_out_models()
if left_out:
    about.caption(tr("compare.left_out", names=", ".join(e.display_name for e in left_out)))
if len(usable) < cmp.MIN_MODELS:
    st.warning(tr("compare.too_few_models", n=len(usable), labels=tr(f"labelset.{label_key}")))
    st.stop()

names = [e.name for e in usable]
by_name = {e.name: e for e in usable}
select_key = COMPARE.models(label_key)
if select_key not in st.session_state or not all(n in names for n in st.session_state[select_key]):
    st.session_state[select_key] = cmp.default_selection(label_key, names)
chosen = st.multiselect(tr("compare.models", min=cmp.MIN_MODELS, max=cmp.MAX_MODELS), names, key=select_key,
                        format_func=lambda n: cmp.short_label(by_name[n]), max_selections=cmp.MAX_MODELS,
                        placeholder=tr("input.choose_many"))
if len(chosen) < cmp.MIN_MODELS:
    st.info(tr("compare.pick_more", min=cmp.MIN_MODELS))
    st.stop()
entries = [by_name[n] for n in chosen]

c1, c2, c3, c4 = st.columns(4)
size_labels = {v: tr("compare.size.native") if v == "native" else tr("compare.size.original") if v == 0
               else f"{v} px" for v in cmp.SIZE_CHOICES}  # fixed now: AppTest formats outside the run
size_choice = widgets.stable_choice(c1.selectbox, tr("compare.size"), cmp.SIZE_CHOICES, COMPARE.SIZE,
                                    format_func=size_labels.__getitem__, help=tr("compare.size_help"))
warmup = c2.selectbox(tr("compare.warmup"), (0, 1, 2, 3), index=1, key=COMPARE.WARMUP)
repeats = c3.selectbox(tr("compare.repeats"), (3, 5, 10, 20), index=1, key=COMPARE.REPEATS)

# ---------------------------------------------------------------- the image and its truth
image: InputImage | None = None
truth: np.ndarray | None = None
truth_note = ""
if source == "camvid":
    frame_names = [p.name for p, _ in val_files]
    frame = widgets.stable_choice(c4.selectbox, tr("compare.val_image"), frame_names, COMPARE.VAL_IMAGE)
    img_path, lbl_path = val_files[frame_names.index(frame)]
    image = inputs.load_sample(img_path)
    if label_key == "camvid":
        truth = datasets.load_label(lbl_path)
    else:
        truth_note = tr("compare.truth_other_labels")
elif source == "sample":
    gallery = {s.name: s for s in samples.all_samples()}
    pick = widgets.stable_choice(c4.selectbox, tr("compare.sample"), list(gallery), COMPARE.SAMPLE)
    sample = gallery[pick]
    image = inputs.load_sample(sample.path)
    if sample.mask is not None and sample.source == label_key and sample.mask.is_file():
        try:
            gt = decode_mask(sample.mask.read_bytes(), sample.mask.name, label_set, image_size=image.rgb.shape[:2])
            truth = gt.labels
        except MaskError as exc:
            st.error(tr(exc.key, **exc.values))
else:
    uploads = inputs.image_inputs(COMPARE.PAGE, allow_camera=False, allow_samples=False)
    if not uploads:
        st.info(tr("compare.upload_prompt"))
        st.stop()
    image = inputs.choose_image(uploads, COMPARE.CHOICE)
    # resized to the image when its size differs (with a notice)
    truth = inputs.mask_upload(COMPARE.MASK, tr("compare.mask_upload"), tr("compare.mask_upload_help"),
                               label_set, image)
assert image is not None
inputs.show_image_notes(image)
if truth_note:
    st.caption(truth_note)
rgb = image.rgb
h, w = rgb.shape[:2]

# ---------------------------------------------------------------- run every model once (cached)
sizes = {e.name: cmp.resolve_size(size_choice, e) for e in entries}
preds = {e.name: models.predict_cached(image, replace(settings, inference_size=sizes[e.name]), e.name)
         for e in entries}
maps = {n: preds[n].labels for n in chosen}
identity = tuple((n, models.weights_identity(by_name[n]), sizes[n]) for n in chosen)
analysis_key = (image.digest, identity, settings.device, settings.half, ui_cmp.array_digest(truth))
scores = None
if truth is not None:
    try:
        scores = ui_cmp.compare_cache("scores", analysis_key, lambda: cmp.score_models(maps, truth, label_set))
    except EvaluationError as exc:
        st.error(tr(exc.key, **exc.values))


NUMBER = {n: i + 1 for i, n in enumerate(chosen)}


def short(name: str) -> str:
    """A model's label in the panels and the scores: its number and architecture · backbone."""
    return f"{NUMBER[name]}. {cmp.short_label(by_name[name])}"


def tiny(name: str) -> str:
    """A model's label in the wide cost table: its number and architecture (the panels carry the rest)."""
    return f"{NUMBER[name]}. {by_name[name].architecture}"


# ---------------------------------------------------------------- grid of overlays, one zoom window
st.subheader(tr("compare.grid"))


@st.fragment
def grid_section() -> None:
    """Overlays, truth and disagreement with one zoom window; reruns alone (no model runs)."""
    z1, z2, z3, z4 = st.columns([1, 1, 1, 1])
    zoom = z1.slider(tr("compare.zoom"), 1.0, 8.0, 3.0, 0.5, key=COMPARE.ZOOM)
    cx = z2.slider(tr("compare.zoom_x"), 0, 100, 50, key=COMPARE.ZOOM_X) / 100
    cy = z3.slider(tr("compare.zoom_y"), 0, 100, 55, key=COMPARE.ZOOM_Y) / 100
    show_truth = z4.toggle(tr("compare.show_truth"), True, key=COMPARE.SHOW_TRUTH, disabled=truth is None)
    window = fc.zoom_window((h, w), cx, cy, zoom)
    st.caption(tr("compare.zoom_caption", x=window.left, y=window.top, w=window.width, h=window.height))
    against = ui_cmp.compare_cache("majority", analysis_key, lambda: cmp.majority_vote(
        list(maps.values()), label_set.num_classes))[1]
    panels = [(short(n), overlay.overlay(rgb, maps[n], label_set, settings.opacity, outline=settings.outline))
              for n in chosen]
    if truth is not None and show_truth:
        shown = np.where(truth < label_set.num_classes, truth, 255).astype(np.uint8)
        panels.append((tr("compare.truth"), overlay.overlay(rgb, shown, label_set, settings.opacity,
                                                            outline=settings.outline)))
    panels.append((tr("compare.disagreement_panel"), cmp.disagreement_image(against, rgb)))
    per_row = 3
    for start in range(0, len(panels), per_row):
        cols = st.columns(per_row)
        for col, (title, view) in zip(cols, panels[start:start + per_row]):
            col.markdown(f"**{title}**")
            col.image(inputs.to_display(fc.draw_rectangle(view, window), 640), width="stretch")
            col.image(fc.crop_zoom(view, window, out_width=400), width="stretch", caption=tr("compare.zoom_window"))
    classes_col, votes_col = st.columns(2)
    with classes_col:
        legend.swatch_legend([(label_set.colors[c], legend.class_label(label_key, c), "")
                              for c in sorted(set(np.unique(np.stack(list(maps.values()))).tolist())
                                              & set(range(label_set.num_classes)))])
    with votes_col:
        legend.swatch_legend([(cmp.DISAGREEMENT_COLORS[k - 1], tr("compare.votes_against", k=k), "")
                              for k in range(1, len(chosen))])
    framed = [(t, fc.draw_rectangle(v, window)) for t, v in panels]
    st.download_button(tr("compare.download_grid"), data=lambda: overlay.png_bytes(cmp.grid_image(framed)),
                       file_name=f"{image.name.rsplit('.', 1)[0]}_compare.png", mime="image/png",
                       on_click="ignore", key=COMPARE.DOWNLOAD_GRID)


grid_section()

# ---------------------------------------------------------------- disagreement
st.subheader(tr("compare.disagreement"))
band = st.slider(tr("compare.band"), 1, 16, cmp.DEFAULT_BAND_PX, key=COMPARE.BAND)
dis = ui_cmp.compare_cache("disagreement", analysis_key + (band,),
                           lambda: cmp.disagreement(list(maps.values()), label_set, band, truth))
m1, m2, m3 = st.columns(3)
m1.metric(tr("compare.disagree_share"), f"{dis.share:.1%}")
m2.metric(tr("compare.disagree_in_band", band=band),
          "—" if np.isnan(dis.in_band) else f"{dis.in_band:.1%}")
m3.metric(tr("compare.band_share", band=band), f"{dis.band_share:.1%}")
reference = tr("compare.reference_truth" if dis.reference == "truth" else "compare.reference_majority")
st.caption(tr("compare.disagreement_caption", n=len(chosen), reference=reference, band=band))
if not np.isnan(dis.enrichment):
    st.markdown(tr("compare.enrichment", factor=dis.enrichment))
hist = dis.histogram()
st.dataframe(pd.DataFrame({tr("compare.col.votes_against"): list(range(len(hist))),
                           tr("compare.col.pixels"): hist,
                           tr("compare.col.share"): [v / max(sum(hist), 1) for v in hist]}),
             column_config={tr("compare.col.share"): st.column_config.NumberColumn(format="percent")},
             hide_index=True)

# ---------------------------------------------------------------- agreement between models
st.subheader(tr("compare.agreement"))
st.caption(tr("compare.agreement_caption"))
agreement = ui_cmp.compare_cache("agreement", analysis_key,
                                 lambda: cmp.class_agreement(list(maps.values()), label_set.num_classes))
st.dataframe(pd.DataFrame([{
    tr("compare.col.class"): legend.class_label(label_key, a.class_id),
    tr("compare.col.models_predicting"): f"{a.models_predicting}/{len(chosen)}",
    tr("compare.col.mean_iou"): a.mean_iou,
    tr("compare.col.min_iou"): a.min_iou,
    tr("compare.col.worst_pair"): "—" if a.worst_pair is None else
    f"{a.worst_pair[0] + 1} ↔ {a.worst_pair[1] + 1}",
} for a in agreement]), column_config={
    tr("compare.col.mean_iou"): st.column_config.NumberColumn(format="percent"),
    tr("compare.col.min_iou"): st.column_config.NumberColumn(format="percent")}, hide_index=True)
matrix = ui_cmp.compare_cache("pairwise", analysis_key,
                              lambda: cmp.pairwise_miou(list(maps.values()), label_set.num_classes))
with st.expander(tr("compare.pairwise_header")):
    numbers = [str(NUMBER[n]) for n in chosen]
    st.dataframe(pd.DataFrame(matrix, index=[short(n) for n in chosen], columns=numbers)
                 .style.format("{:.1%}", na_rep="—"))

# the split each published mIoU was measured on, once per model (a column of it is too wide at 1280 px)
published_on = tr("compare.published_on", items=" · ".join(f"{NUMBER[n]}: {by_name[n].metrics_source or '—'}"
                                                           for n in chosen))

# ---------------------------------------------------------------- scores against the truth
st.subheader(tr("compare.scores"))
if scores is None:
    st.info(tr("compare.no_truth"))
else:
    st.dataframe(pd.DataFrame([{
        tr("compare.col.model"): tiny(n),  # the short label: the panels above name the backbone
        tr("compare.col.image_miou"): cmp.score_summary(scores[n])["mIoU"],
        tr("compare.col.image_acc"): cmp.score_summary(scores[n])["pixel_accuracy"],
        tr("compare.col.image_bf"): cmp.score_summary(scores[n])["mean_boundary_F1"],
        tr("compare.col.published"): by_name[n].metrics.get("miou"),
    } for n in chosen]), column_config={k: st.column_config.NumberColumn(format="percent") for k in (
        tr("compare.col.image_miou"), tr("compare.col.image_acc"), tr("compare.col.image_bf"),
        tr("compare.col.published"))}, hide_index=True)
    st.caption(tr("compare.scores_caption"))
    st.caption(published_on)
    st.markdown(f"**{tr('compare.error_maps')}**")
    st.caption(tr("compare.error_maps_caption"))
    errors = ui_cmp.compare_cache("errors", analysis_key + (w,), lambda: {
        n: inputs.to_display(error_map(rgb, scores[n].pred, scores[n].truth, scores[n].valid), 640) for n in chosen})
    for start in range(0, len(chosen), 3):
        cols = st.columns(3)
        for col, n in zip(cols, chosen[start:start + 3]):
            col.image(errors[n], width="stretch", caption=short(n))

# ---------------------------------------------------------------- what each model costs
st.subheader(tr("compare.cost"))
costs = {e.name: ui_cmp.cost_cached(image, e, sizes[e.name], settings, int(warmup), int(repeats)) for e in entries}
rows = cmp.comparison_rows(chosen, costs, scores)
# Two narrow tables instead of one of 13 columns: both fit the main area at 1280 px.
TIME_COLUMNS = {"model": "compare.col.model", "input": "compare.col.input", "preprocess_ms": "compare.col.pre",
                "forward_ms": "compare.col.fwd", "postprocess_ms": "compare.col.post",
                "total_ms": "compare.col.total", "cold_total_ms": "compare.col.cold"}
SIZE_COLUMNS = {"model": "compare.col.model", "peak_forward_MiB": "compare.col.peak",
                "params_trainable_M": "compare.col.params_trainable", "params_total_M": "compare.col.params_total",
                "GFLOPs": "compare.col.gflops", "published_mIoU": "compare.col.published"}
FORMATS = {"preprocess_ms": "{:.1f}", "forward_ms": "{:.1f}", "postprocess_ms": "{:.1f}", "total_ms": "{:.1f}",
           "cold_total_ms": "{:.1f}", "peak_forward_MiB": "{:.1f}", "params_trainable_M": "{:.2f}",
           "params_total_M": "{:.2f}", "GFLOPs": "{:.2f}", "published_mIoU": "{:.1%}"}


def cell(key: str, row: dict) -> str:
    """One cost-table cell as text ("—" for a value that is not there)."""
    value = row[key]
    if key == "model":
        return tiny(value)
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    return FORMATS[key].format(value) if key in FORMATS else str(value)


for columns in (TIME_COLUMNS, SIZE_COLUMNS):
    st.table(pd.DataFrame([{tr(label): cell(k, r) for k, label in columns.items()} for r in rows]).set_index(
        tr("compare.col.model")))
st.caption(published_on)
first = next(iter(costs.values()))
method = tr(f"compare.memory.{first.memory_method}")
st.caption(tr("compare.cost_caption", device=sidebar.device_label(settings.device), threads=first.threads,
              inputs=", ".join(f"{NUMBER[n]}: {costs[n].input_size[1]}×{costs[n].input_size[0]}" for n in chosen),
              warmup=int(warmup), repeats=int(repeats), image=f"{w}×{h}",
              half=tr("compare.half" if settings.half else "compare.full")))
st.caption(tr("compare.cost_caption_memory", method=method))
if any(c.random_weights for c in costs.values()):
    st.warning(tr("compare.random_in_table"))

fig = go.Figure()
xs = [costs[n].warm_total_ms for n in chosen]
published = [by_name[n].metrics.get("miou") for n in chosen]
fig.add_trace(go.Scatter(x=xs, y=published, mode="markers+text", text=[str(NUMBER[n]) for n in chosen],
                         textposition="top center", name=tr("compare.plot.published"),
                         hovertext=[f"{short(n)}<br>{by_name[n].metrics_source}" for n in chosen]))
if scores is not None:
    fig.add_trace(go.Scatter(x=xs, y=[cmp.score_summary(scores[n])["mIoU"] for n in chosen], mode="markers",
                             marker_symbol="diamond", name=tr("compare.plot.image"),
                             hovertext=[short(n) for n in chosen]))
fig.update_layout(xaxis_title=tr("compare.plot.x"), yaxis_title=tr("compare.plot.y"), yaxis_tickformat=".0%",
                  height=380, margin=dict(l=10, r=10, t=30, b=10),
                  legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
st.plotly_chart(fig, width="stretch", key=COMPARE.PLOT)
if any(p is None for p in published):
    st.caption(tr("compare.plot.no_published"))
st.download_button(tr("compare.download_csv"), data=cmp.rows_csv(rows),
                   file_name=f"{image.name.rsplit('.', 1)[0]}_compare.csv", mime="text/csv",
                   on_click="ignore", key=COMPARE.DOWNLOAD_CSV)
