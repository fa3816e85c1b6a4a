"""U-Net: an ISBI slice, shapes at every level, overlap-tile, elastic deformation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from segdemo.evaluate.scoring import score_predictions
from segdemo.ui import legend, models, sidebar, state, widgets
from segdemo.data import datasets
from segdemo.models import registry
from segdemo.render import overlay
from segdemo.labs import unet_tiles as ut
from segdemo.data.images import InputImage
from segdemo.inference.pipeline import predict
from segdemo.data.labels import ISBI
from segdemo.training.recipes import ISBI_VAL_SLICES
from segdemo.ui import labs as lab
from segdemo.ui.state import UNET, tr

MODEL = "unet_isbi2012"
settings = sidebar.setup_page("page.unet", show_model=False, show_overlay=False)
st.markdown(tr("unet.intro"))

# ---------------------------------------------------------------- the slice
try:
    slice_ids = datasets.isbi_slice_ids()
except datasets.DatasetMissingError:
    slice_ids = []
st.session_state[UNET.SEED] = st.session_state.get(UNET.SEED, 0)  # kept while the ISBI slice is shown
SOURCES = (["isbi"] if slice_ids else []) + ["synthetic"]
if st.session_state.get(UNET.SOURCE) not in SOURCES:
    st.session_state[UNET.SOURCE] = SOURCES[0]
source = widgets.stable_choice(st.radio, tr("unet.source"), SOURCES, UNET.SOURCE, horizontal=True,
                          format_func=state.options_formatter("unet.source."))
if not slice_ids:
    st.caption(tr("unet.no_isbi"))
if source == "isbi":
    default = ISBI_VAL_SLICES[0] if ISBI_VAL_SLICES[0] in slice_ids else slice_ids[0]
    held_out, trained_on = tr("unet.held_out"), tr("unet.trained_on")
    st.session_state.setdefault(UNET.SLICE, default)
    idx = widgets.stable_choice(st.selectbox, tr("unet.slice"), slice_ids, UNET.SLICE,
                           format_func=lambda i: f"{i} · {held_out if i in ISBI_VAL_SLICES else trained_on}")
    gray, truth = lab.lab_cache("unet_slice", (idx,), lambda: datasets.load_isbi_slice(idx))
else:
    seed = st.number_input(tr("unet.synthetic_seed"), 0, 999, key=UNET.SEED)
    gray, truth = lab.lab_cache("unet_synth", (int(seed),), lambda: ut.synthetic_membranes(seed=int(seed)))
    st.caption(tr("unet.synthetic_caption"))

entry = registry.get(MODEL) if MODEL in {e.name for e in registry.list_models()} else None
tab_pred, tab_shapes, tab_tiles, tab_elastic = st.tabs(
    [tr("unet.tab.prediction"), tr("unet.tab.shapes"), tr("unet.tab.tiles"), tr("unet.tab.elastic")])

# ---------------------------------------------------------------- prediction
with tab_pred:
    if entry is None:
        st.error(tr("unet.model_missing"))
    else:
        model = models.get_model(MODEL, settings)
        rgb = np.repeat(gray[..., None], 3, axis=2)
        image = InputImage(name="slice", digest=f"isbi-{source}-{hash(gray.tobytes())}", rgb=rgb)
        pred = lab.lab_cache("unet_pred", (image.digest, settings.device),
                                 lambda: predict(model, entry, rgb, None, settings.device))
        c1, c2, c3 = st.columns(3)
        c1.image(gray, caption=tr("unet.image"), width="stretch")
        c2.image(overlay.colorize(pred.labels, ISBI), caption=tr("unet.prediction"), width="stretch")
        c3.image(overlay.colorize(truth, ISBI), caption=tr("unet.truth"), width="stretch")
        legend.swatch_legend([(ISBI.colors[c], legend.class_label("isbi", c), "") for c in range(2)])
        score = score_predictions([pred.labels], [truth], ISBI)
        m1, m2, m3, m4 = st.columns(4)
        m1.metric(tr("unet.iou_membrane"), f"{score.per_class_iou[0]:.3f}")
        m2.metric(tr("unet.iou_cell"), f"{score.per_class_iou[1]:.3f}")
        m3.metric(tr("unet.miou"), f"{score.miou:.3f}")
        m4.metric(tr("unet.boundary_f1"), f"{score.boundary_f1:.3f}")
        card = entry.card
        st.caption(tr("unet.card_line", miou=card.get("metrics", {}).get("miou") or float("nan"),
                      split=card.get("validation_split", "?"), backbone=entry.backbone))
        models.timing_caption(pred)

# ---------------------------------------------------------------- shapes
with tab_shapes:
    st.markdown(tr("unet.shapes_intro"))
    s1, s2, s3, s4 = st.columns(4)
    padding = widgets.stable_choice(s1.radio, tr("unet.padding"), ["valid", "same"], UNET.PADDING,
                               format_func=state.options_formatter("unet.padding."))
    depth = s2.slider(tr("unet.depth"), 1, 5, 4, key=UNET.DEPTH)
    base = s3.selectbox(tr("unet.base"), [64, 32, 16], key=UNET.BASE)
    st.session_state.setdefault(UNET.SIZE, 572)
    size = int(s4.number_input(tr("unet.input_size"), 1, 4096, key=UNET.SIZE))
    net = ut.meta_unet(int(base), int(depth), padding)
    report = ut.shape_report(net, size, size)
    shown = size
    if report.error and report.suggestion:
        fix = report.suggestion[0]
        st.error(tr("unet.size_error", size=size, fix=fix))
        st.caption(tr(report.reason[0], **report.reason[1]) if report.reason else "")
        st.button(tr("unet.apply_fix", fix=fix), key=UNET.APPLY_FIX,
                  on_click=lambda f=fix: st.session_state.update({UNET.SIZE: f}))
        st.markdown(tr("unet.fixed_shapes", size=size, fix=fix))
        shown = fix
    rows = ut.shape_rows(report.shapes)
    table = pd.DataFrame([{tr("unet.col.stage"): tr(f"unet.stage.{r['stage']}"), tr("unet.col.level"): r["level"],
                           tr("unet.col.shape"): r["shape"]} for r in rows])
    st.dataframe(table, hide_index=True, height=min(38 * (len(rows) + 1), 900))
    out = report.shapes[-1]
    st.markdown(tr("unet.shapes_summary", inp=shown, out=out.height,
                   lost=(shown - out.height) // 2 if padding == "valid" else 0))

# ---------------------------------------------------------------- overlap-tile
with tab_tiles:
    st.markdown(tr("unet.tiles_intro"))
    tile_net = ut.meta_unet(16, 4, "valid") if entry is None else models.get_model(MODEL, settings).net
    choices = [s for s in ut.valid_out_tiles(tile_net, 60, 400)]
    default_tile = 196 if 196 in choices else choices[len(choices) // 2]
    t1, t2 = st.columns(2)
    out_tile = t1.select_slider(tr("unet.out_tile"), choices, value=default_tile, key=UNET.OUT_TILE)
    layout = ut.tile_layout(gray, tile_net, int(out_tile))
    highlight = t2.slider(tr("unet.highlight"), 1, len(layout.tiles), 1, key=UNET.HIGHLIGHT) - 1
    st.caption(tr("unet.tiles_caption", n=len(layout.tiles), inp=layout.in_tile, out=layout.out_tile,
                  margin=layout.margin))
    drawn = ut.draw_tiles(layout, highlight)
    v1, v2 = st.columns(2)
    v1.image(drawn, caption=tr("unet.tiles_image"), width="stretch")
    if entry is not None:
        tiled = lab.lab_cache(
            "unet_tiled", (hash(gray.tobytes()), int(out_tile), settings.device),
            lambda: ut.tiled_labels(models.get_model(MODEL, settings), entry.preprocess.mean, entry.preprocess.std,
                                    gray, int(out_tile), settings.device))
        stitched = ut.draw_tile_borders(overlay.colorize(tiled, ISBI), layout.tiles)
        v2.image(stitched, caption=tr("unet.stitched"), width="stretch")

# ---------------------------------------------------------------- elastic deformation
with tab_elastic:
    intro = st.empty()  # filled after the sliders: the text names their values
    e1, e2, e3 = st.columns(3)
    sigma = e1.slider(tr("unet.sigma"), 0.0, 30.0, 10.0, 1.0, key=UNET.SIGMA)
    grid = e2.slider(tr("unet.grid"), 2, 8, 3, key=UNET.GRID)
    intro.markdown(tr("unet.elastic_intro", grid=grid, sigma=sigma))
    seed = e3.number_input(tr("unet.elastic_seed"), 0, 9999, 0, key=UNET.ELASTIC_SEED)
    demo = ut.elastic_demo(gray, truth, sigma, grid, seed)
    g1, g2, g3 = st.columns(3)
    g1.image(gray, caption=tr("unet.image"), width="stretch")
    g2.image(overlay.colorize(truth, ISBI), caption=tr("unet.truth"), width="stretch")
    g3.image(demo.grid_before, caption=tr("unet.grid_before"), width="stretch")
    g4, g5, g6 = st.columns(3)
    g4.image(demo.image, caption=tr("unet.deformed_image"), width="stretch")
    g5.image(overlay.colorize(demo.labels, ISBI), caption=tr("unet.deformed_mask"), width="stretch")
    g6.image(demo.grid_after, caption=tr("unet.grid_after"), width="stretch")
    mag = demo.flow.norm(dim=0)
    st.caption(tr("unet.elastic_caption", mean=float(mag.mean()), max=float(mag.max())))
