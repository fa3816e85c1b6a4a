"""Streamlit side of the "Semantic vs instance" page: the cached instance model, photos, results.

The computing is in :mod:`segdemo.labs.instances`; here are only the caches:
the instance model once for the server (``st.cache_resource``, keyed by its
weights file so a finished training run is picked up), the Penn-Fudan photo
list once for the server, and each photo's Mask R-CNN stages once per session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from segdemo import config, i18n
from segdemo.data import pennfudan
from segdemo.data.datasets import DatasetMissingError
from segdemo.labs import instances as inst
from segdemo.ui import models, state
from segdemo.ui.inputs import decode_cached
from segdemo.models import instance_registry, weights
from segdemo.data.images import ImageError, InputImage

INSTANCE_MODELS_DIR = instance_registry.INSTANCE_MODELS_DIR
MAX_STEPS = 3  # Mask R-CNN stages of a photo (with all masks at full size) kept per session


def model_identity(name: str = inst.DEFAULT_INSTANCE_MODEL) -> str:
    """What makes the instance weights distinct: weights file and mtime, "random" or "missing"."""
    entry = {e.name: e for e in instance_registry.list_instance_models()}.get(name)
    path = weights.locate(entry) if entry is not None else None  # type: ignore[arg-type]
    if path is not None:
        stat = path.stat()
        return f"{path}:{stat.st_mtime_ns}:{stat.st_size}"
    return "random" if config.allow_random_weights() else "missing"


@st.cache_resource(max_entries=2, show_spinner=False)
def _cached_model(name: str, identity: str) -> inst.LoadedInstanceModel:
    return inst.load_instance_model(name)


def instance_model(name: str = inst.DEFAULT_INSTANCE_MODEL) -> tuple[inst.LoadedInstanceModel | None, str]:
    """The instance model (None when its weights cannot be had) and its identity.

    torchvision's weights are downloaded with a progress bar first; offline, the
    page says which file to put where (:func:`segdemo.ui.models.show_weights_missing`).
    """
    identity = model_identity(name)
    if identity == "missing":
        entry = {e.name: e for e in instance_registry.list_instance_models()}.get(name)
        if entry is None or not entry.weights.url:
            return None, identity
        try:
            models.download_with_progress(entry)  # type: ignore[arg-type]
        except weights.WeightsMissingError as exc:
            models.show_weights_missing(exc)
            return None, "offline"
        identity = model_identity(name)
    return _cached_model(name, identity), identity


def instance_model_names() -> list[str]:
    """The instance models offered: segdemo's shipped ones (or its default while it is missing), then torchvision's."""
    names = [e.name for e in instance_registry.list_instance_models()]
    return names if inst.DEFAULT_INSTANCE_MODEL in names else [inst.DEFAULT_INSTANCE_MODEL] + names


@dataclass(frozen=True)
class PhotoChoice:
    """A Penn-Fudan validation photo offered on the page."""

    name: str
    people: int
    regions: int
    touching: bool


@st.cache_data(show_spinner=False)
def pennfudan_photos(data_dir: str) -> list[PhotoChoice] | None:
    """The validation photos, those whose people touch first (most merged first); None without the data set."""
    try:
        names = pennfudan.pennfudan_split("val")
        touching = {t.name: t for t in inst.pennfudan_val_touching()}
    except DatasetMissingError:
        return None
    photos = [PhotoChoice(t.name, t.instances, t.regions, True) for t in touching.values()]  # most merged first
    return photos + [PhotoChoice(name, 0, 0, False) for name in names if name not in touching]


@st.cache_data(show_spinner=False, max_entries=8)
def pennfudan_photo(data_dir: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(RGB, ground-truth instance-id map) of one Penn-Fudan photo."""
    sample = pennfudan.load_pennfudan(name)
    return sample.image, inst.sample_instance_ids(sample.masks)


def steps_for(image_key: str, rgb: np.ndarray, model: inst.LoadedInstanceModel,
              identity: str) -> inst.MaskRCNNSteps:
    """The Mask R-CNN stages of a photo, once per session, photo and weights."""
    return state.session_cache("instance_steps", (image_key, identity),
                               lambda: inst.maskrcnn_steps(model.model, rgb), MAX_STEPS)


def decode_upload(file_id: str, data_fn: Callable[[], bytes], name: str) -> InputImage | ImageError:
    """Decode an uploaded photo once per file (the result, or the error, is kept for later reruns)."""
    return decode_cached(f"instances:{file_id}", data_fn, name)


def data_dir_key() -> str:
    """The data folder as a cache key (a changed SEGDEMO_DATA_DIR is a different entry)."""
    return str(config.data_dir())


def display_class_names(loaded: inst.LoadedInstanceModel) -> list[str]:
    """The instance model's class names as the page shows them: person-only models through the
    person label set, COCO categories through their VOC class where there is one, else COCO's own name
    in the session's language."""
    lang = state.current_lang()
    if len(loaded.categories) <= 2:
        return [i18n.class_name("person", "background" if c == "__background__" else c, lang) for c in loaded.categories]
    names = []
    for c in loaded.categories:
        voc = inst.voc_class_of(c)
        names.append(i18n.class_name("voc", voc, lang) if voc is not None and lang != "en"
                     else i18n.class_name("coco", c, lang))
    return names
