"""The Streamlit side of the Compare page: which models are offered, cached costs and analyses.

Predictions go through :func:`segdemo.ui.predict_cached` (once per image,
model, weights, device, precision and size); the cost measurement and the
analysis of the label maps are kept per session with the same bounded cache,
so zoom, opacity or a table option never run a model again.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

import numpy as np
import streamlit as st
import torch

from segdemo import config
from segdemo.data.images import InputImage
from segdemo.inference import cost as cost_mod
from segdemo.labs import compare
from segdemo.models import registry
from segdemo.models import weights
from segdemo.models.registry import ModelEntry
from segdemo.ui import models, state
from segdemo.ui.sidebar import Settings
from segdemo.ui.state import tr

MAX_COMPARE_RESULTS = 24  # cost measurements and analyses: a few images x a handful of models


def offered(entry: ModelEntry) -> bool:
    """Whether this session may see ``entry``: a user's own models only in the session that added them."""
    return entry.source != "user" or entry.name in set(st.session_state.get(state.OWN_MODELS, ()))


def candidate_models(label_set_key: str) -> tuple[list[ModelEntry], list[ModelEntry]]:
    """(models that can run, models whose weights are missing) of one label set, in registry order."""
    usable, missing = [], []
    for entry in registry.list_models():
        if entry.label_set_key != label_set_key or not offered(entry):
            continue
        has = weights.locate(entry) is not None or config.allow_random_weights()
        (usable if has else missing).append(entry)
    return usable, missing


def left_out_models() -> list[ModelEntry]:
    """Models whose label set the page does not compare (the U-Net's ISBI membranes)."""
    return [e for e in registry.list_models() if e.label_set_key not in compare.COMPARABLE_LABEL_SETS and offered(e)]


def show_missing_weights(missing: list[ModelEntry]) -> None:
    """List the models left out for missing weights, each with where to put the file (as everywhere)."""
    if not missing:
        return
    with st.expander(tr("compare.missing_header", n=len(missing))):
        for entry in missing:
            models.show_weights_missing(weights.WeightsMissingError(entry, "weights.reason.not_found"))


def compare_cache(name: str, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """A Compare result, once per session and key (bounded)."""
    return state.session_cache(f"compare_{name}", key, compute, MAX_COMPARE_RESULTS)


def array_digest(values: np.ndarray | None) -> str:
    """A short content digest of an array (a ground-truth mask in a cache key)."""
    if values is None:
        return "-"
    data = np.ascontiguousarray(values).tobytes() + str(values.shape).encode()
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def cost_cached(image: InputImage, entry: ModelEntry, inference_size: int | None, settings: Settings,
                warmup: int, repeats: int) -> cost_mod.Cost:
    """The cost of ``entry`` on ``image`` (a fresh model: cold call, warm-up, repeats), once per session and settings."""
    key = (image.digest, entry.name, models.weights_identity(entry), settings.device, settings.half,
           inference_size, warmup, repeats, torch.get_num_threads())

    def compute() -> cost_mod.Cost:
        with st.spinner(tr("compare.measuring", name=entry.display_name, runs=1 + warmup + repeats + 1)):
            return cost_mod.measure_cost(
                lambda: weights.load_model(entry, device=settings.device, half=settings.half), entry, image.rgb,
                inference_size, settings.device, settings.half, warmup, repeats)

    return compare_cache("cost", key, compute)
