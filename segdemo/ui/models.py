"""The model cache shared by all sessions, downloads with a progress bar, cached predictions.

``st.cache_resource`` holds at most :data:`MAX_CACHED_MODELS` models for the
whole server (several students share one); a prediction is kept per session
(:func:`segdemo.ui.state.session_cache`), so moving a slider never re-runs the model.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st
import torch

from segdemo import config
from segdemo.data.images import InputImage
from segdemo.inference import batching, pipeline
from segdemo.inference.pipeline import Prediction, predict_with_cpu_fallback
from segdemo.models import registry, weights
from segdemo.models.registry import ModelEntry
from segdemo.ui import errors, state
from segdemo.ui.sidebar import Settings, device_label
from segdemo.ui.state import tr

MAX_CACHED_MODELS = 3
QUEUE_FULL_RETRY_S = 60.0  # a request refused by a full inference queue is retried this long


def _release_model(model: Any) -> None:
    """Free GPU memory when a model leaves the cache."""
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@st.cache_resource(max_entries=MAX_CACHED_MODELS, show_spinner=False, on_release=_release_model)
def _cached_model(name: str, device: str, half: bool, weights_identity: str) -> weights.SegmentationModel:
    # weights_identity (path + mtime + size) is part of the key so a replaced
    # weights file is never served from a stale cache entry.
    return weights.load_model(name, device=device, half=half)


def weights_identity(entry: ModelEntry) -> str:
    """What makes the weights of ``entry`` distinct (file path, mtime, size; or "random"/"missing"),
    part of every cache key so a replaced file is never served from a stale entry."""
    path = weights.locate(entry)
    if path is None:
        return "random" if config.allow_random_weights() else "missing"
    stat = path.stat()
    return f"{path}:{stat.st_mtime_ns}:{stat.st_size}"


def download_with_progress(entry: ModelEntry) -> None:
    """Download ``entry``'s official weights with a progress bar (raises WeightsMissingError offline)."""
    bar = st.progress(0.0, text=tr("model.downloading", file=entry.weights.filename, done=0,
                                   total=(entry.weights.size_bytes or 0) / 1e6))

    def report(done: int, total: int) -> None:
        total = total or entry.weights.size_bytes or 1
        bar.progress(min(1.0, done / total), text=tr("model.downloading", file=entry.weights.filename,
                                                      done=done / 1e6, total=total / 1e6))

    try:
        weights.download(entry, report)
    finally:
        bar.empty()


def show_weights_missing(exc: weights.WeightsMissingError) -> None:
    """Tell the user which file to place where."""
    st.error(tr("model.weights_missing", name=exc.entry.display_name, reason=errors.reason(exc)))
    st.info(tr("model.weights_missing_howto", file=exc.filename, folder=str(exc.folder),
               url=exc.url or "—", name=exc.entry.name))


def get_model(name: str, settings: Settings, device: str | None = None) -> weights.SegmentationModel:
    """The cached model ``name`` on the chosen device; downloads with a progress bar.

    When the weights cannot be had, the page shows where to put them and stops.
    """
    entry = registry.get(name)
    device = device or settings.device
    half = settings.half if device == settings.device else False
    try:
        if weights.locate(entry) is None and entry.weights.url and not config.allow_random_weights():
            download_with_progress(entry)
        with st.spinner(tr("model.loading", name=entry.display_name, device=device)):
            model = _cached_model(name, device, half, weights_identity(entry))
    except weights.WeightsMissingError as exc:
        show_weights_missing(exc)
        st.stop()
    except (RuntimeError, ValueError, OSError) as exc:
        st.error(tr("model.load_error", name=entry.display_name, reason=errors.reason(exc)))
        st.stop()
    if model.random_weights:
        st.warning(tr("model.random_weights", name=entry.display_name))
    return model


def predict_cached(image: InputImage, settings: Settings, model_name: str | None = None) -> Prediction:
    """The prediction for ``image``; computed once per (image, model, device, precision, size).

    Kept per browser session (bounded), so overlay, view and class toggles
    never re-run the model. CUDA out-of-memory falls back to the CPU. The
    forward pass goes through the server's one batching worker
    (:mod:`segdemo.inference.batching`); while the request waits, the page says
    how many requests are ahead, and a full queue is said, not waited on.
    """
    return predict_cached_keyed(image, settings, model_name)[0]


def predict_cached_keyed(image: InputImage, settings: Settings,
                         model_name: str | None = None) -> tuple[Prediction, tuple]:
    """:func:`predict_cached` and its cache key (what later per-prediction caches key on)."""
    name = model_name or settings.model_name
    entry = registry.get(name)
    identity = weights_identity(entry)
    computed: list[bool] = []

    def compute() -> Prediction:
        computed.append(True)
        model = get_model(name, settings)  # says "random weights" itself
        waiting = st.empty()

        def on_wait(ahead: int) -> None:  # a session in the queue says so, never freezes silently
            waiting.info(tr("serving.queue_ahead", n=ahead) if ahead else tr("serving.queue_running"))

        forward = batching.WorkerForward(batching.shared_worker(), model, (name, identity, settings.device,
                                                                          settings.half), on_wait)
        deadline = time.monotonic() + QUEUE_FULL_RETRY_S
        while True:
            try:
                pred, fell_back = predict_with_cpu_fallback(
                    model, entry, image.rgb, settings.inference_size, settings.device, settings.half,
                    cpu_model=lambda: get_model(name, settings, device="cpu"), run_forward=forward)
                break
            except batching.QueueFull:
                # The queue is full: say so and try again shortly, for a bounded time.
                if time.monotonic() > deadline:
                    waiting.empty()
                    st.warning(tr("serving.queue_full"))
                    st.stop()
                waiting.warning(tr("serving.queue_full_waiting", n=batching.shared_worker().queued()))
                time.sleep(0.5)
        waiting.empty()
        if fell_back:
            st.warning(tr("model.oom"))
        return pred

    key = (image.digest, name, identity, settings.device, settings.half, settings.inference_size)
    pred = state.session_cache("predictions", key, compute, state.MAX_PREDICTIONS)
    if not computed and identity == "random":  # say it on every rerun, not only when the model loads
        st.warning(tr("model.random_weights", name=entry.display_name))
    return pred, key


def timing_caption(pred: Prediction) -> None:
    """One line with the time of each stage and the device."""
    t = pred.timings
    st.caption(tr("timing.line", pre=t["preprocess"] * 1000, fwd=t["forward"] * 1000,
                  post=t["postprocess"] * 1000, device=device_label(pred.device))
               + " · " + tr("timing.input", w=pred.input_size[1], h=pred.input_size[0])
               + (" · " + tr("serving.timing_batch", queue=t["queue"] * 1000, n=int(t.get("batch", 1)))
                  if t.get("queue", 0) > 0.05 or t.get("batch", 1) > 1 else ""))
    if pred.input_capped:
        st.info(tr("timing.input_capped", w=pred.input_size[1], h=pred.input_size[0],
                   mp=pipeline.MAX_NETWORK_PIXELS / 1e6))
