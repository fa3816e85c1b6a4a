"""segdemo home page: what the app teaches, the compute device, links to every page."""

import pandas as pd
import streamlit as st

from segdemo.models import registry
from segdemo.ui.sidebar import device_label, metrics_split, page_links, setup_page, weights_on_disk
from segdemo.ui.state import tr

settings = setup_page("app.title", show_model=False, show_overlay=False)
st.write(tr("home.intro"))

st.subheader(tr("home.pages"))
page_links(st.container())

st.subheader(tr("home.device"))
st.write(device_label(settings.device))

st.subheader(tr("home.models"))
models = registry.list_models()


def _weights_state(entry: registry.ModelEntry) -> str:
    if entry.source == "segdemo":
        return tr("home.weights.shipped")
    return tr("home.weights.cached") if weights_on_disk(entry) else tr("home.weights.missing")


def _miou_text(entry: registry.ModelEntry) -> str:
    """Each published mIoU with the data split it was measured on."""
    miou = entry.metrics.get("miou")
    return "—" if miou is None else f"{miou:.1%} ({metrics_split(entry)})"


st.caption(tr("home.models_caption", n=len(models), offline=sum(e.source == "segdemo" for e in models)))
# A static table: every row and column shows, headers wrap, nothing is wider than the main area.
st.table(pd.DataFrame({
    tr("home.col.model"): [e.display_name for e in models],
    tr("home.col.labels"): [tr("labelset." + e.label_set_key) for e in models],
    tr("home.col.miou"): [_miou_text(e) for e in models],
    tr("home.col.params"): [f"{e.num_params / 1e6:.2f} M" if e.num_params else "?" for e in models],
    tr("home.col.weights"): [_weights_state(e) for e in models],
}).style.hide(axis="index"))
st.caption(tr("home.params_caption"))
