"""Segment: upload images, pick a model, see every class coloured over the image."""

import streamlit as st

from segdemo.ui import inputs, models, segment_view, sidebar
from segdemo.ui.state import SEGMENT, tr

settings = sidebar.setup_page("page.segment")
images = inputs.image_inputs(SEGMENT.INPUTS, label_set_key=settings.entry.label_set_key)
if not images:
    st.info(tr("input.none"))
    st.stop()

image = inputs.choose_image(images, SEGMENT.CURRENT)
inputs.show_image_notes(image)
pred, pred_key = models.predict_cached_keyed(image, settings)
# Display-only changes (view, class toggles, a click) rerun only this fragment.
segment_view.result(image, pred, pred_key, settings, images)
models.timing_caption(pred)
st.caption(tr("segment.labelset_note", labels=tr(f"labelset.{settings.entry.label_set.key}")))
