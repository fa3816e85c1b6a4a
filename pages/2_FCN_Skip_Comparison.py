"""FCN-32s / 16s / 8s side by side: skips, boundaries, score grids, Table 2."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import streamlit as st

from segdemo.data import images
from segdemo.ui import inputs, legend, models, sidebar, widgets
from segdemo.data import datasets
from segdemo.models import registry
from segdemo.render import overlay
from segdemo.labs import fcn_skips as fc
from segdemo.data.images import InputImage
from segdemo.data.labels import CAMVID
from segdemo.ui import labs as lab
from segdemo.ui.state import FCN, tr

settings = sidebar.setup_page("page.fcn", show_model=False)
st.markdown(tr("fcn.intro"))

known = {e.name for e in registry.list_models()}
missing = [n for n in fc.VARIANTS if n not in known]
if missing:
    st.error(tr("fcn.models_missing", names=", ".join(missing)))
    st.stop()
entries = {n: registry.get(n) for n in fc.VARIANTS}
SIZE = entries["fcn8s_camvid"].preprocess.resize_size  # the resolution the models were trained at
run_settings = replace(settings, inference_size=SIZE)

# ---------------------------------------------------------------- the image and its truth
st.session_state[FCN.SEED] = st.session_state.get(FCN.SEED, 0)  # kept while another source is shown
source, val_files = widgets.camvid_source_choice(FCN.PAGE, ["synthetic", "upload"])

image: InputImage | None = None
truth: np.ndarray | None = None
if source == "camvid":
    names = [p.name for p, _ in val_files]
    choice = widgets.stable_choice(st.selectbox, tr("fcn.val_image"), names, FCN.VAL_IMAGE)
    img_path, lbl_path = val_files[names.index(choice)]
    image = images.load_image_file(str(img_path))
    truth = datasets.load_label(lbl_path)
elif source == "synthetic":
    seed = st.number_input(tr("fcn.synthetic_seed"), 0, 999, key=FCN.SEED)
    rgb, truth = lab.lab_cache("fcn_synthetic", (int(seed),), lambda: fc.synthetic_street(seed=int(seed)))
    st.caption(tr("fcn.synthetic_caption"))
    image = InputImage(name=f"synthetic-{seed}", digest=f"synthetic-street-{seed}", rgb=rgb)
else:
    chosen = inputs.image_inputs(FCN.PAGE, allow_camera=False, allow_samples=True)
    if not chosen:
        st.info(tr("fcn.upload_prompt"))
        st.stop()
    image = inputs.choose_image(chosen, FCN.CHOICE)
    truth = inputs.mask_upload(FCN.MASK, tr("fcn.mask_upload"), tr("fcn.mask_upload_help"), CAMVID, image)
    if truth is not None and truth.shape != image.rgb.shape[:2]:
        st.error(tr("fcn.mask_size", mask=f"{truth.shape[1]}x{truth.shape[0]}",
                    image=f"{image.rgb.shape[1]}x{image.rgb.shape[0]}"))
        truth = None

assert image is not None
rgb = image.rgb
h, w = rgb.shape[:2]

# ---------------------------------------------------------------- run the three variants
preds = {}
coarse = {}
for name in fc.VARIANTS:
    model = models.get_model(name, settings)
    preds[name] = models.predict_cached(image, run_settings, name)
    coarse[name] = lab.lab_cache(
        "fcn_coarse", (image.digest, name, settings.device, settings.half, SIZE),
        lambda m=model, e=entries[name]: fc.coarse_scores(m, e, rgb, SIZE, settings.device))
labels = {n: preds[n].labels for n in fc.VARIANTS}
st.caption(tr("fcn.run_caption", size=f"{coarse['fcn8s_camvid'][1][1]}x{coarse['fcn8s_camvid'][1][0]}"))


def arch(name: str) -> str:
    return entries[name].architecture


# ---------------------------------------------------------------- side by side, one zoom window
st.subheader(tr("fcn.side_by_side"))
c1, c2, c3 = st.columns(3)
zoom = c1.slider(tr("fcn.zoom"), 1.0, 8.0, 3.0, 0.5, key=FCN.ZOOM)
cx = c2.slider(tr("fcn.zoom_x"), 0, 100, 50, key=FCN.ZOOM_X) / 100
cy = c3.slider(tr("fcn.zoom_y"), 0, 100, 55, key=FCN.ZOOM_Y) / 100
window = fc.zoom_window((h, w), cx, cy, zoom)
st.caption(tr("fcn.zoom_caption", x=window.left, y=window.top, w=window.width, h=window.height))

views = {n: overlay.overlay(rgb, labels[n], CAMVID, settings.opacity) for n in fc.VARIANTS}
if truth is not None:
    views["truth"] = overlay.overlay(rgb, np.where(truth < CAMVID.num_classes, truth, CAMVID.ignore_index)
                                    .astype(np.uint8), CAMVID, settings.opacity)
cols = st.columns(len(views))
for col, (key, view) in zip(cols, views.items()):
    title = tr("fcn.truth") if key == "truth" else arch(key)
    col.markdown(f"**{title}**")
    col.image(inputs.to_display(fc.draw_rectangle(view, window)), width="stretch")
    col.image(fc.crop_zoom(view, window, out_width=480), width="stretch",
              caption=tr("fcn.zoom_window"))
legend.swatch_legend([(CAMVID.colors[c], legend.class_label("camvid", c), "")
                  for c in sorted(set(np.unique(labels["fcn8s_camvid"]).tolist()) & set(range(CAMVID.num_classes)))])

# ---------------------------------------------------------------- disagreement
st.subheader(tr("fcn.disagreement"))
counts = fc.disagreement_count([labels[n] for n in fc.VARIANTS])
reference = truth if truth is not None else labels["fcn8s_camvid"]
band = st.slider(tr("fcn.band"), 1, 16, 4, key=FCN.BAND)
conc = fc.boundary_concentration([labels[n] for n in fc.VARIANTS], reference, band,
                                 CAMVID.ignore_index if truth is not None else None)
d1, d2 = st.columns([3, 2])
d1.image(inputs.to_display(fc.disagreement_image(counts, rgb)), width="stretch",
         caption=tr("fcn.disagreement_caption"))
with d2:
    st.metric(tr("fcn.disagree_share"), f"{conc.disagree_share:.1%}")
    st.metric(tr("fcn.disagree_in_band", band=band), "—" if np.isnan(conc.disagree_in_band)
              else f"{conc.disagree_in_band:.1%}")
    st.metric(tr("fcn.band_share", band=band), f"{conc.band_share:.1%}")
    if not np.isnan(conc.enrichment):
        st.markdown(tr("fcn.enrichment", factor=conc.enrichment,
                       reference=tr("fcn.reference_truth" if truth is not None else "fcn.reference_fcn8s")))
    st.image(fc.crop_zoom(fc.disagreement_image(counts, rgb), window, out_width=360), caption=tr("fcn.zoom_window"))

# ---------------------------------------------------------------- score grids
st.subheader(tr("fcn.grids"))
st.markdown(tr("fcn.grids_intro"))
gcols = st.columns(3)
for col, name in zip(gcols, fc.VARIANTS):
    scores, net_size = coarse[name]
    grid = fc.score_grid_image(rgb, fc.coarse_label_map(scores), fc.STRIDES[name], net_size)
    col.image(inputs.to_display(grid), width="stretch",
              caption=tr("fcn.grid_caption", arch=arch(name), stride=fc.STRIDES[name],
                         rows=scores.shape[1], cols=scores.shape[2]))

# ---------------------------------------------------------------- numbers vs the paper
st.subheader(tr("fcn.scores"))
DILATED = "deeplab_slim_camvid"
has_dilated = DILATED in known
scored, scored_labels = [entries[n] for n in fc.VARIANTS], dict(labels)
if has_dilated:
    d_entry = registry.get(DILATED)
    models.get_model(DILATED, settings)
    d_pred = models.predict_cached(image, run_settings, DILATED)
    scored_labels[DILATED] = d_pred.labels
    scored.append(d_entry)
columns = {"paper": "fcn.col.paper", "val_miou": "fcn.col.val_miou", "val_boundary_f1": "fcn.col.val_bf"}
if truth is not None:
    columns.update(image_miou="fcn.col.image_miou", image_boundary_f1="fcn.col.image_bf")
# the paper's number first, next to the cards' CamVid val numbers, then this image's
table = pd.DataFrame([{tr("fcn.col.variant"): r.architecture if r.name in fc.VARIANTS
                       else f"{r.architecture} ({tr('fcn.for_comparison')})",
                       **{tr(label): getattr(r, field) for field, label in columns.items()}}
                      for r in fc.score_rows(scored, scored_labels, truth)])
# A static table: its headers wrap, so every column fits the main area at 1280 px.
st.table(table.style.format({c: "{:.1%}" for c in table.columns[1:]}, na_rep="—").hide(axis="index"))
if truth is None:
    st.info(tr("fcn.no_truth"))
st.caption(tr("fcn.scores_caption"))

if has_dilated:
    with st.expander(tr("fcn.dilated_header")):
        st.markdown(tr("fcn.dilated_intro"))
        e1, e2 = st.columns(2)
        e1.image(inputs.to_display(views["fcn8s_camvid"]), caption="FCN-8s", width="stretch")
        e2.image(inputs.to_display(overlay.overlay(rgb, d_pred.labels, CAMVID, settings.opacity)),
                 caption=d_entry.architecture, width="stretch")
