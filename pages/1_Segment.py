"""Segment: upload images, pick a model, see every class coloured over the image."""

import pandas as pd
import streamlit as st
from streamlit_image_coordinates import streamlit_image_coordinates

from segdemo.ui import inputs, legend, models, sidebar, state, widgets
from segdemo.render import overlay
from segdemo.ui.state import tr

settings = sidebar.setup_page("page.segment")
images = inputs.image_inputs("segment")
if not images:
    st.info(tr("input.none"))
    st.stop()

image = inputs.choose_image(images, "segment_current")
inputs.show_image_notes(image)
entry = settings.entry
label_set = entry.label_set
pred = models.predict_cached(image, settings)
models.timing_caption(pred)
st.caption(tr("segment.labelset_note", labels=tr(f"labelset.{label_set.key}")))

view = widgets.stable_choice(st.radio, tr("segment.view"), overlay.VIEWS, "segment_view", horizontal=True,
                        format_func=state.options_formatter("segment.view."))

areas = overlay.class_areas(pred.labels, label_set.num_classes)
left, right = st.columns([3, 2])
with right:
    st.subheader(tr("segment.classes"))
    st.caption(tr("segment.classes_help"))
    hidden = legend.class_legend_toggles(label_set, areas)

maps = {"confidence": pred.confidence, "entropy": pred.entropy} if view in ("confidence", "entropy") else {}
composed = overlay.compose_view(view, image.rgb, pred.labels, label_set, settings.opacity, hidden,
                               settings.outline, **maps)
display = inputs.to_display(composed, max_side=960)
with left:
    click = streamlit_image_coordinates(display, key="segment_click")
    st.caption(tr("segment.heat_caption") if maps else tr("segment.click_hint"))

with right:
    if click:
        scale = composed.shape[1] / click.get("width", display.shape[1])
        xy = overlay.view_to_image_xy(view, int(click["x"] * scale), int(click["y"] * scale), image.rgb.shape[1])
        if xy and xy[0] < image.rgb.shape[1] and xy[1] < image.rgb.shape[0]:
            st.subheader(tr("segment.topk_title", x=xy[0], y=xy[1]))
            top = pred.topk_at(*xy)
            st.dataframe(
                pd.DataFrame({tr("segment.col.class"): [legend.class_label(label_set.key, c) for c, _ in top],
                              tr("segment.col.probability"): [p for _, p in top]}),
                column_config={tr("segment.col.probability"): st.column_config.ProgressColumn(
                    format="%.3f", min_value=0.0, max_value=1.0)},
                hide_index=True,
            )
    stem = image.name.rsplit(".", 1)[0]
    st.download_button(tr("segment.download_labels"), data=lambda: overlay.label_png_bytes(pred.labels, label_set),
                       file_name=f"{stem}_{entry.name}_labels.png", mime="image/png", on_click="ignore")
    st.download_button(tr("segment.download_overlay"),
                       data=lambda: overlay.png_bytes(overlay.overlay(image.rgb, pred.labels, label_set,
                                                                    settings.opacity, hidden, settings.outline)),
                       file_name=f"{stem}_{entry.name}_overlay.png", mime="image/png", on_click="ignore")

if len(images) > 1 and st.toggle(tr("segment.show_all"), key="segment_show_all"):
    columns = st.columns(4)
    for i, other in enumerate(images):
        other_pred = models.predict_cached(other, settings)
        with columns[i % 4]:
            st.image(inputs.to_display(overlay.overlay(other.rgb, other_pred.labels, label_set, settings.opacity,
                                                  hidden, settings.outline), 480), caption=other.name)
