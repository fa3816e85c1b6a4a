"""Image inputs: uploads, camera, the sample gallery; decoded once per session."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import streamlit as st

from segdemo.data import samples
from segdemo.data.images import UPLOAD_TYPES, ImageError, InputImage, decode_image, downscale_for_display
from segdemo.ui import state
from segdemo.ui.state import tr

if TYPE_CHECKING:
    from segdemo.data.labels import LabelSet


def _decode_or_error(data: bytes, name: str) -> InputImage | ImageError:
    try:
        return decode_image(data, name)
    except ImageError as exc:
        return exc


def decode_cached(file_id: str, data_fn: Callable[[], bytes], name: str) -> InputImage | ImageError:
    """Decode once per file (upload id, sample path, content digest); later reruns reuse the
    result, or the error, so a bad file says why on every rerun without being decoded again."""
    return state.session_cache("decoded_images", file_id, lambda: _decode_or_error(data_fn(), name),
                               state.MAX_DECODED_IMAGES)


def show_image_notes(image: InputImage) -> None:
    """What was done to make the upload usable (rotation, conversion, first frame)."""
    if image.notes:
        st.caption(f"{image.name}: " + " ".join(tr(n) for n in image.notes))


def image_inputs(key: str, allow_camera: bool = True, allow_samples: bool = True) -> list[InputImage]:
    """Uploads, an optional camera snapshot and gallery samples, as decoded images.

    A file that cannot be used shows its own message; the other images stay.
    """
    uploads = st.file_uploader(tr("input.upload"), type=list(UPLOAD_TYPES), accept_multiple_files=True,
                               key=f"{key}_uploader", help=tr("input.upload_help"))
    images: list[InputImage] = []
    for upload in uploads or []:
        result = decode_cached(upload.file_id, upload.getvalue, upload.name)
        if isinstance(result, ImageError):
            st.error(tr(result.key, **result.values))
        else:
            images.append(result)
    cols = st.columns(2)
    if allow_camera:
        with cols[0]:
            if st.toggle(tr("input.camera_toggle"), key=f"{key}_camera_on"):
                snapshot = st.camera_input(tr("input.camera"), key=f"{key}_camera")
                if snapshot is not None:
                    result = decode_cached(snapshot.file_id, snapshot.getvalue, "camera.jpg")
                    if isinstance(result, ImageError):
                        st.error(tr(result.key, **result.values))
                    else:
                        images.append(result)
    if allow_samples:
        gallery = {s.name: s for s in samples.all_samples()}
        with cols[1]:
            chosen = st.multiselect(tr("input.samples"), list(gallery), key=f"{key}_samples",
                                    help=tr("input.samples_help"), placeholder=tr("input.samples_placeholder"))
        for name in chosen:
            sample = gallery[name]
            result = decode_cached(f"sample:{sample.path}", sample.path.read_bytes, sample.name)
            if isinstance(result, ImageError):
                st.error(tr(result.key, **result.values))
            else:
                images.append(result)
    return images


def choose_image(images: list[InputImage], key: str) -> InputImage:
    """One image out of several (a selectbox that remembers the choice by name)."""
    if len(images) == 1:
        return images[0]
    names = [f"{i + 1}. {img.name}" for i, img in enumerate(images)]
    if st.session_state.get(key) not in names:
        st.session_state[key] = names[0]
    choice = st.selectbox(tr("input.choose"), names, key=key)
    return images[names.index(choice)]


def to_display(rgb: np.ndarray, max_side: int = 1280) -> np.ndarray:
    """Downscale for the browser: encoding full-size images on every rerun is slow."""
    return downscale_for_display(rgb, max_side)


def load_sample(path: Path) -> InputImage:
    """Decode a file of the gallery (cached per session)."""
    result = decode_cached(f"sample:{path}", path.read_bytes, path.name)
    if isinstance(result, ImageError):
        raise result
    return result


def mask_upload(key: str, label: str, help_text: str, label_set: "LabelSet", image: InputImage) -> np.ndarray | None:
    """An optional ground-truth upload for ``image``: its labels in ``label_set`` (resized to the
    image with a notice when the sizes differ), or None. A file that cannot be read shows its
    message in the page; the page goes on without ground truth."""
    from segdemo.evaluate import MaskError, decode_mask

    mask_file = st.file_uploader(label, type=list(UPLOAD_TYPES), key=key, help=help_text)
    if mask_file is None:
        return None
    try:
        gt = decode_mask(mask_file.getvalue(), mask_file.name, label_set, image_size=image.rgb.shape[:2])
    except MaskError as exc:
        st.error(tr(exc.key, **exc.values))
        return None
    for note in gt.notices:
        getattr(st, note.level if note.level in ("info", "warning", "error") else "info")(tr(note.key, **note.values))
    return gt.labels
