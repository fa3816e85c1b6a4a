"""Image inputs: uploads, camera, the sample gallery; decoded once per session."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import streamlit as st

from segdemo.data import samples
from segdemo.data.images import UPLOAD_TYPES, ImageError, InputImage, decode_image, downscale_for_display
from segdemo.ui import state
from segdemo.ui.state import INPUTS, sub_key, tr

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


MAX_KEPT_UPLOADS = 8  # per session and page: a lecture's few photos; the oldest goes first
MAX_KEPT_PIXELS = 60_000_000  # per session and page (~180 MB of RGB): five 12-MP photos


def keep_uploads(key: str, widget_present: bool, current: list[tuple[str, InputImage]]) -> tuple[
        list[InputImage], list[str]]:
    """The images a user gave on page ``key`` this session: kept across page changes and language switches.

    ``current`` is what the uploader holds now ((file id, image)); ``widget_present`` tells
    whether the uploader existed in the previous run (then a file it held and holds no more was
    removed by the user; otherwise the widget is new after a page change, and the kept images stay).
    Bounded by :data:`MAX_KEPT_UPLOADS` and :data:`MAX_KEPT_PIXELS`; returns the kept images
    (oldest first) and the names of evicted files the uploader still shows (said while shown).
    """
    kept: dict[str, InputImage] = st.session_state.setdefault(INPUTS.KEPT_PREFIX + key, {})
    ids = {fid for fid, _ in current}
    # Files the uploader itself held in the previous run: one of those missing now was removed
    # by the user. Kept images the (new) uploader never held stay.
    held: set[str] = st.session_state.get(INPUTS.HELD_PREFIX + key, set()) if widget_present else set()
    for fid in [f for f in kept if f in held and f not in ids]:
        del kept[fid]
    st.session_state[INPUTS.HELD_PREFIX + key] = ids
    gone: set[str] = st.session_state.setdefault(INPUTS.EVICTED_PREFIX + key, set())
    for fid, image in current:
        if fid not in kept and fid not in gone:  # an evicted file still in the uploader stays out
            kept[fid] = image
    while len(kept) > MAX_KEPT_UPLOADS or (len(kept) > 1 and sum(i.rgb.shape[0] * i.rgb.shape[1]
                                                               for i in kept.values()) > MAX_KEPT_PIXELS):
        oldest = next(iter(kept))
        kept.pop(oldest)
        gone.add(oldest)
    gone.intersection_update(ids)  # forget ids the uploader no longer holds
    return list(kept.values()), [image.name for fid, image in current if fid in gone]


def forget_uploads(key: str) -> None:
    """Drop the kept uploads of page ``key`` (a button's callback)."""
    st.session_state.pop(INPUTS.KEPT_PREFIX + key, None)


def image_inputs(key: str, allow_camera: bool = True, allow_samples: bool = True,
                 label_set_key: str | None = None) -> list[InputImage]:
    """Uploads (kept for the session), an optional camera snapshot and gallery samples, as decoded images.

    ``label_set_key``: the model's label set; the gallery then offers only images of
    its domain (:func:`segdemo.data.samples.samples_for`).

    A file that cannot be used shows its own message; the other images stay.
    The uploader sits beside the camera and the gallery (one compact row), so the
    result below starts high on a 1280x800 screen.
    """
    uploader_key = sub_key(key, INPUTS.UPLOADER)
    widget_present = uploader_key in st.session_state  # absent: a new widget after a page change
    top = st.columns([3, 2]) if allow_camera or allow_samples else [st.container()]
    with top[0]:
        uploads = st.file_uploader(tr("input.upload"), type=list(UPLOAD_TYPES), accept_multiple_files=True,
                                   key=uploader_key, help=tr("input.upload_help"))
    current: list[tuple[str, InputImage]] = []
    for upload in uploads or []:
        result = decode_cached(upload.file_id, upload.getvalue, upload.name)
        if isinstance(result, ImageError):
            st.error(tr(result.key, **result.values))
        else:
            current.append((upload.file_id, result))
    images, evicted = keep_uploads(key, widget_present, current)
    shown = {id(i) for _, i in current}
    earlier = [i for i in images if id(i) not in shown]
    if evicted:
        st.info(tr("serving.upload_evicted", names=", ".join(evicted), n=MAX_KEPT_UPLOADS))
    if earlier:
        note, button = st.columns([4, 1])
        note.caption(tr("serving.kept_uploads", names=", ".join(i.name for i in earlier)))
        button.button(tr("serving.forget_uploads"), key=sub_key(key, INPUTS.FORGET), on_click=forget_uploads, args=(key,))
    side = top[-1]
    if allow_camera:
        with side:
            if st.toggle(tr("input.camera_toggle"), key=sub_key(key, INPUTS.CAMERA_ON)):
                snapshot = st.camera_input(tr("input.camera"), key=sub_key(key, INPUTS.CAMERA))
                if snapshot is not None:
                    result = decode_cached(snapshot.file_id, snapshot.getvalue, "camera.jpg")
                    if isinstance(result, ImageError):
                        st.error(tr(result.key, **result.values))
                    else:
                        images.append(result)
    if allow_samples:
        gallery = {s.name: s for s in samples.samples_for(label_set_key)}
        samples_key = sub_key(key, INPUTS.SAMPLES)
        picked = st.session_state.get(samples_key)
        if picked and any(name not in gallery for name in picked):  # a model of another domain was chosen
            st.session_state[samples_key] = [name for name in picked if name in gallery]
        with side:
            chosen = st.multiselect(tr("input.samples"), list(gallery), key=samples_key,
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
