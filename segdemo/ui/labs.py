"""Widgets shared by the concept labs (receptive field, upsampling, FC vs conv, separable)."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Callable

import numpy as np
import streamlit as st
import torch

from segdemo import config
from segdemo.data.images import InputImage
from segdemo.models import registry, weights
from segdemo.models.registry import ModelEntry
from segdemo.ui import errors, state
from segdemo.ui.inputs import image_inputs
from segdemo.ui.models import get_model
from segdemo.ui.sidebar import Settings
from segdemo.ui.state import tr

# Gradients through a model shared by all sessions: one at a time.
GRADIENT_LOCK = threading.Lock()


def check_mark(ok: bool) -> str:
    """✓ when a displayed number equals PyTorch's, ✗ otherwise (plain glyphs: no emoji font needed)."""
    return "✓" if ok else "✗"


def lab_model_entry(settings: Settings) -> ModelEntry | None:
    """The model a lab uses: the sidebar's if its weights are on disk, else one that has them.

    Says which one is used. Without any trained weights the sidebar's model runs
    with random weights when that is allowed (tests, offline development);
    otherwise the lab explains and returns None (the rest of the page still works).
    """
    chosen = settings.entry
    if weights.locate(chosen) is not None:
        return chosen
    with_weights = [e for e in registry.list_models() if weights.locate(e) is not None]
    if with_weights:
        other = with_weights[0]
        st.info(tr("labs.model.substituted", chosen=chosen.display_name, used=other.display_name))
        return other
    if config.allow_random_weights():
        return chosen
    st.warning(tr("labs.model.none_available", chosen=chosen.display_name))
    return None


def lab_model(settings: Settings, entry: ModelEntry) -> torch.nn.Module:
    """The cached float32 model (gradients need full precision)."""
    return get_model(entry.name, dataclasses.replace(settings, half=False))


def clicked_pixel(display: np.ndarray, full_hw: tuple[int, int], key: str) -> tuple[int, int]:
    """Show ``display`` clickable; return the clicked (y, x) in full-size pixels.

    The last click is remembered per key; the centre is used before any click.
    """
    from streamlit_image_coordinates import streamlit_image_coordinates

    click = streamlit_image_coordinates(display, key=key)
    h, w = full_hw
    store = state.sub_key(key, state.LABS.CLICKED)
    if click:
        shown_w = click.get("width") or display.shape[1]
        shown_h = click.get("height") or display.shape[0]
        y = int(click["y"] * h / shown_h)
        x = int(click["x"] * w / shown_w)
        st.session_state[store] = (min(max(y, 0), h - 1), min(max(x, 0), w - 1))
    yx = st.session_state.get(store, (h // 2, w // 2))
    if yx[0] >= h or yx[1] >= w:  # a click on a previous, larger image
        yx = (h // 2, w // 2)
    return yx


def lab_cache(name: str, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """A slow lab result (gradients through a model), once per session and key."""
    return state.session_cache(f"lab_{name}", key, compute, state.MAX_LAB_RESULTS)


def latex(expr: str) -> None:
    """A formula, centred."""
    st.latex(expr)


def model_on_images(key: str, settings: Settings,
                    section: Callable[[list[InputImage], ModelEntry], None]) -> None:
    """Image inputs, then ``section(images, entry)`` with the lab's model.

    A model that rejects the input (e.g. a size it cannot take) becomes a
    message; the rest of the page keeps working.
    """
    images = image_inputs(key)
    entry = lab_model_entry(settings)
    if not images:
        st.info(tr("input.none"))
    elif entry is not None:
        try:
            section(images, entry)
        except (ValueError, RuntimeError) as exc:
            st.error(tr("labs.model.error", name=entry.display_name, reason=errors.reason(exc)))


def live_run_status(run: Any, ahead: int) -> None:
    """Progress of a live training run: queue place, progress bar with ETA, or how it ended."""
    if run.status == "queued":
        st.info(tr("tl.queued", ahead=ahead))
    elif run.status == "running":
        eta = run.eta_seconds
        text = tr(f"tl.phase.{run.phase or 'loading'}") + " · " + tr(
            "tl.running", epoch=min(run.epoch + 1, run.config.epochs), epochs=run.config.epochs,
            step=run.step, steps=run.steps_per_epoch, elapsed=run.elapsed,
            eta=tr("tl.eta", s=eta) if eta is not None else "")
        st.progress(run.fraction, text=text)
    elif run.status == "error":
        st.error(tr("tl.error", reason=errors.reason(run.exception) if run.exception else run.error[:200]))
    else:
        st.success(tr(f"tl.{run.status}", seconds=run.elapsed, epochs=len(run.history),
                      miou=run.history[-1]["val_miou"] if run.history else 0.0))
    if run.trainable_params:
        st.caption(tr("tl.run_params", trainable=run.trainable_params, total=run.total_params))


def curve_pair(container: Any, series: dict[str, Any], left: tuple[str, str, str, str],
               right: tuple[str, str, str, str]) -> None:
    """Two training-curve charts side by side in ``container`` (the live labs' progress view).

    ``left`` / ``right``: (history key, chart title, axis label, widget key) each.
    """
    from segdemo.labs.transfer import curves_figure

    for col, (metric, title, axis, key) in zip(container.columns(2), (left, right)):
        col.plotly_chart(curves_figure(series, metric, title, axis), width="stretch", key=key)


def plain_table(rows: list[dict[str, Any]]) -> None:
    """A static table (every row and column shows, headers wrap) without a 0, 1, 2 row index."""
    import pandas as pd

    st.table(pd.DataFrame(rows).style.hide(axis="index"))
