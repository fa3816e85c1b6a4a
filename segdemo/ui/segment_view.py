"""The Segment page's result: one picture that fits its column, the click probe, legend and downloads.

Why it is built this way (issue 10 "responsiveness", issue 15 "less work per rerun"):

* **Downscaled once.** The photo, the label map (nearest neighbour, never blended)
  and the confidence/entropy maps (computed from the network-resolution logits
  straight at display size) are made at most :data:`DISPLAY_SIDE` pixels wide once
  per image and prediction, and every view is composed from those, not from a
  12-megapixel original.
* **Encoded once.** The composed view is JPEG-encoded once per (image, prediction,
  view settings) and kept in the session cache; the browser gets it as a served
  media file (``/media/<hash>.jpg``, cached by the browser), never as an inline
  base64 payload in the component's arguments.
* **Only the result reruns.** :func:`result` is an ``st.fragment``: the view radio,
  the class toggles and a click rerun only it, not the upload, model and sidebar.
* **Scaled to its column.** The picture is drawn ``max-width: 100%`` of its column;
  a click reports its position in the served image's pixels (the displayed size
  divided out in the browser), mapped back to the original image here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from segdemo.data.images import InputImage, downscale_for_display
from segdemo.inference.pipeline import Prediction, uncertainty_maps
from segdemo.render import overlay
from segdemo.ui import legend, models, state, widgets
from segdemo.ui.sidebar import Settings
from segdemo.ui.state import tr

DISPLAY_SIDE = 960  # longest side of the served picture (the column is narrower; CSS scales it down)
JPEG_QUALITY = 90
MAX_ENCODED_VIEWS = 16  # per session: a few images x a few view settings
MAX_DISPLAY_ARRAYS = 8

_CLICK_JS = """
export default function(component) {
  const { data, setStateValue, parentElement } = component;
  let img = parentElement.querySelector("img");
  if (!img) {
    img = document.createElement("img");
    img.setAttribute("data-testid", "segdemo-result-image");
    img.style.cssText = "display:block;max-width:100%;height:auto;cursor:crosshair;margin:0";
    parentElement.appendChild(img);
  }
  img.width = data.width;  // the served size; max-width scales it to the column, aspect kept
  img.height = data.height;
  img.alt = data.alt;
  if (img.getAttribute("src") !== data.src) img.setAttribute("src", data.src);
  img.onclick = (e) => {
    const r = img.getBoundingClientRect();
    // position in the served image's pixels, whatever size the browser shows it at
    const x = Math.min(data.width - 1, Math.max(0, Math.floor((e.clientX - r.left) * data.width / r.width)));
    const y = Math.min(data.height - 1, Math.max(0, Math.floor((e.clientY - r.top) * data.height / r.height)));
    setStateValue("click", { x: x, y: y, shown_width: r.width, ident: data.ident, n: Date.now() });
  };
}
"""

_click_component = st.components.v2.component("segdemo.click_image", js=_CLICK_JS, isolate_styles=True)


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of an RGB array (OpenCV: ~30x faster than a PNG of the same picture)."""
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def media_url(data: bytes, mimetype: str, coordinates: str) -> str:
    """Serve ``data`` from Streamlit's media file manager (a URL the browser caches by content hash).

    Without a running server (bare mode) a data URL stands in.
    """
    from streamlit.runtime import Runtime

    if Runtime.exists():
        return Runtime.instance().media_file_mgr.add(data, mimetype, coordinates)
    import base64

    return f"data:{mimetype};base64," + base64.b64encode(data).decode()


def display_scale(image: InputImage, max_side: int = DISPLAY_SIDE) -> float:
    """Served pixels per original pixel (<= 1)."""
    h, w = image.rgb.shape[:2]
    return min(1.0, max_side / max(h, w))


def display_arrays(image: InputImage, pred: Prediction, pred_key: Any) -> dict[str, np.ndarray]:
    """Photo and labels at display size (once per image and prediction; maps on first use)."""
    def compute() -> dict[str, np.ndarray]:
        rgb = downscale_for_display(image.rgb, DISPLAY_SIDE)
        labels = overlay.resize_labels(pred.labels, (rgb.shape[1], rgb.shape[0]))
        return {"rgb": rgb, "labels": labels}

    return state.session_cache("display_arrays", pred_key, compute, MAX_DISPLAY_ARRAYS)


def _maps(arrays: dict[str, np.ndarray], pred: Prediction) -> dict[str, np.ndarray]:
    if "confidence" not in arrays:  # straight at display size: no 12-MP softmax for a 960-px picture
        arrays["confidence"], arrays["entropy"] = uncertainty_maps(pred.logits, arrays["labels"].shape)
    return {"confidence": arrays["confidence"], "entropy": arrays["entropy"]}


def encoded_view(arrays: dict[str, np.ndarray], pred: Prediction, pred_key: Any, view: str, settings: Settings,
                 label_set: Any, hidden: set[int]) -> tuple[bytes, tuple[int, int]]:
    """JPEG of one view at display size, once per (prediction, view settings); and its (height, width)."""
    key = (pred_key, view, round(settings.opacity, 3), bool(settings.outline), tuple(sorted(hidden)))

    def compute() -> tuple[bytes, tuple[int, int]]:
        maps = _maps(arrays, pred) if view in ("confidence", "entropy") else {}
        composed = overlay.compose_view(view, arrays["rgb"], arrays["labels"], label_set, settings.opacity,
                                        hidden, settings.outline, **maps)
        return encode_jpeg(composed), composed.shape[:2]

    return state.session_cache("encoded_views", key, compute, MAX_ENCODED_VIEWS)


def click_image(data: bytes, size: tuple[int, int], alt: str, key: str, ident: str) -> dict | None:
    """The picture, scaled to its column; a click as served-image pixels (None: no click on image ``ident``)."""
    src = media_url(data, "image/jpeg", f"segdemo:{key}")
    result = _click_component(data={"src": src, "width": int(size[1]), "height": int(size[0]), "alt": alt,
                                    "ident": ident},
                              key=key, default={"click": None}, on_click_change=lambda: None)
    click = result.get("click") if hasattr(result, "get") else getattr(result, "click", None)
    # a click on an earlier image says nothing about this one
    return click if isinstance(click, dict) and click.get("ident") == ident else None


def clicked_pixel(click: dict, view: str, served: tuple[int, int], original: tuple[int, int]) -> tuple[int, int] | None:
    """The original-image pixel under a click on the served view (None in the side-by-side gap).

    ``served`` and ``original`` are the (height, width) of the photo as served and as uploaded.
    """
    xy = overlay.view_to_image_xy(view, int(click["x"]), int(click["y"]), served[1])
    if xy is None:
        return None
    x, y = int(xy[0] * original[1] / served[1]), int(xy[1] * original[0] / served[0])
    return (x, y) if 0 <= x < original[1] and 0 <= y < original[0] else None


@st.fragment
def result(image: InputImage, pred: Prediction, pred_key: Any, settings: Settings,
           images: list[InputImage] | None = None) -> None:
    """Picture (left) and view choice, classes, top-5 and downloads (right), then the other
    ``images`` on request; reruns on its own."""
    label_set = settings.entry.label_set
    left, right = st.columns([3, 2])
    with right:
        view = widgets.stable_choice(st.radio, tr("segment.view"), overlay.VIEWS, state.SEGMENT.VIEW, horizontal=True,
                                     format_func=state.options_formatter("segment.view."))
        st.subheader(tr("segment.classes"))
        st.caption(tr("segment.classes_help"))
        areas = state.session_cache("class_areas", pred_key, lambda: overlay.class_areas(
            pred.labels, label_set.num_classes), MAX_DISPLAY_ARRAYS)  # per prediction, not per rerun
        hidden = legend.class_legend_toggles(label_set, areas)
    arrays = display_arrays(image, pred, pred_key)
    data, size = encoded_view(arrays, pred, pred_key, view, settings, label_set, hidden)
    scale = arrays["rgb"].shape[1] / image.rgb.shape[1]
    with left:
        click = click_image(data, size, image.name, state.SEGMENT.CLICK, f"{image.digest}")
        st.caption(tr("segment.heat_caption") if view in ("confidence", "entropy") else tr("segment.click_hint"))
        if scale < 1:
            st.caption(tr("serving.display_scaled", w=arrays["rgb"].shape[1], h=arrays["rgb"].shape[0],
                          W=image.rgb.shape[1], H=image.rgb.shape[0]))
        # under the picture: in view at 1280x800, where the class list would push it below the fold
        xy = clicked_pixel(click, view, arrays["rgb"].shape[:2], image.rgb.shape[:2]) if click else None
        if xy:
            st.subheader(tr("segment.topk_title", x=xy[0], y=xy[1]))
            top = pred.topk_at(*xy)
            st.dataframe(
                pd.DataFrame({tr("segment.col.class"): [legend.class_label(label_set.key, c) for c, _ in top],
                              tr("segment.col.probability"): [p for _, p in top]}),
                column_config={tr("segment.col.probability"): st.column_config.ProgressColumn(
                    format="%.3f", min_value=0.0, max_value=1.0)},
                hide_index=True,
            )
    with right:
        _downloads(image, pred, settings, hidden)
    if images and len(images) > 1 and st.toggle(tr("segment.show_all"), key=state.SEGMENT.SHOW_ALL):
        columns = st.columns(4)
        for i, other in enumerate(images):
            other_pred, other_key = models.predict_cached_keyed(other, settings)
            other_arrays = display_arrays(other, other_pred, other_key)
            other_data, _ = encoded_view(other_arrays, other_pred, other_key, "overlay", settings, label_set, hidden)
            with columns[i % 4]:
                st.image(other_data, caption=other.name, width="stretch")


def _downloads(image: InputImage, pred: Prediction, settings: Settings, hidden: set[int]) -> None:
    """Full-resolution files, encoded only when the user asks for them."""
    label_set, entry = settings.entry.label_set, settings.entry
    stem = image.name.rsplit(".", 1)[0]
    st.download_button(tr("segment.download_labels"), data=lambda: overlay.label_png_bytes(pred.labels, label_set),
                       file_name=f"{stem}_{entry.name}_labels.png", mime="image/png", on_click="ignore")
    st.download_button(tr("segment.download_overlay"),
                       data=lambda: overlay.png_bytes(overlay.overlay(image.rgb, pred.labels, label_set,
                                                                    settings.opacity, hidden, settings.outline)),
                       file_name=f"{stem}_{entry.name}_overlay.png", mime="image/png", on_click="ignore")
