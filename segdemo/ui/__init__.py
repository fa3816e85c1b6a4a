"""Shared Streamlit widgets: page setup, the sidebar, model cache, image inputs.

This is the only part of segdemo that imports Streamlit. Pages call
:func:`setup_page` first; it seeds ``st.session_state`` with defaults *before*
creating the sidebar widgets, so language, device, model and overlay settings
survive page switches (a widget on another page is a different widget).
"""

from __future__ import annotations

import html
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import streamlit as st
import torch

from segdemo import config, devices, i18n, inference, registry, samples, weights
from segdemo.images import UPLOAD_TYPES, ImageError, InputImage, decode_image, load_image_file
from segdemo.inference import Prediction, predict_with_cpu_fallback
from segdemo.labels import LabelSet, get_label_set
from segdemo.registry import ModelEntry

# "native" = the size the model was trained/evaluated at; 0 = the original image size
INFERENCE_SIZES = ("native", 320, 520, 0)

# (page file relative to the repository root, catalogue key of its title)
PAGES = (
    ("app.py", "page.home"),
    ("pages/1_Segment.py", "page.segment"),
    ("pages/2_FCN_Skip_Comparison.py", "page.fcn"),
    ("pages/3_U-Net.py", "page.unet"),
    ("pages/4_Evaluate.py", "page.evaluate"),
    ("pages/5_Receptive_Field.py", "page.receptive_field"),
    ("pages/6_Bilinear_Upsampling.py", "page.bilinear"),
    ("pages/7_FC_vs_1x1_Conv.py", "page.fc_conv"),
    ("pages/8_Depthwise_Separable.py", "page.separable"),
    ("pages/9_Transfer_Learning.py", "page.transfer"),
    ("pages/10_Compare.py", "page.compare"),
    ("pages/11_Semantic_vs_Instance.py", "page.instances"),
)
OWN_MODELS_KEY = "own_models"  # names of the registry entries this session added (source "user")
MAX_CACHED_MODELS = 3
MAX_CACHED_PREDICTIONS = 12


@dataclass(frozen=True)
class Settings:
    """What the shared sidebar decided for this rerun."""

    lang: str
    device: str
    half: bool
    model_name: str
    inference_size: int | None
    opacity: float
    outline: bool

    @property
    def entry(self) -> ModelEntry:
        return registry.get(self.model_name)


def tr(key: str, **values: object) -> str:
    """``key`` translated into the session's language."""
    return i18n.t(key, st.session_state.get("lang", i18n.DEFAULT_LANGUAGE), **values)


def options_formatter(prefix: str) -> Callable[[object], str]:
    """A ``format_func`` showing option ``v`` as the text of key ``prefix + str(v)``.

    The language is fixed when the widget is built, so the labels stay right
    even when the function is called outside the script run (AppTest does that).
    """
    lang = st.session_state.get("lang", i18n.DEFAULT_LANGUAGE)
    return lambda value: i18n.t(f"{prefix}{value}", lang)


def _current_lang() -> str:
    return st.session_state.get("lang", i18n.DEFAULT_LANGUAGE)


def stable_choice(widget: Callable[..., Any], label: str, options: Sequence[Any], key: str,
                  format_func: Callable[[Any], str] = str, **kwargs: Any) -> Any:
    """A radio, selectbox or multiselect whose choice survives a change of language.

    Streamlit (1.67) sends back the *displayed* text of the chosen option; after
    a language switch that text is in no option any more and the choice is lost
    (the browser even shows nothing selected). So the widget's key carries the
    language (one widget per language) and the choice itself is kept under
    ``key``; a widget met for the first time in a language is seeded from it.
    Change a choice from code with :func:`set_choice`.
    """
    options = list(options)
    widget_key = f"{key}@{_current_lang()}"
    seeded: dict[str, str] = st.session_state.setdefault("_choice_lang", {})

    def valid(value: Any) -> bool:  # a multiselect's value is a list of options
        return all(v in options for v in value) if isinstance(value, list) else value in options

    if seeded.get(key) == _current_lang() and valid(st.session_state.get(widget_key)):
        st.session_state[key] = st.session_state[widget_key]  # the user's latest pick
    else:
        value = st.session_state.get(key)
        st.session_state[widget_key] = value if valid(value) else options[0]
        seeded[key] = _current_lang()
    chosen = widget(label, options, key=widget_key, format_func=format_func, **kwargs)
    st.session_state[key] = chosen
    return chosen


def set_choice(key: str, value: Any) -> None:
    """Set a :func:`stable_choice` from code (in a callback or before the widget exists)."""
    st.session_state[key] = value
    if st.session_state.get("_choice_lang", {}).get(key) == _current_lang():
        st.session_state[f"{key}@{_current_lang()}"] = value


def class_label(label_set_key: str, class_index: int) -> str:
    """The translated name of class ``class_index`` of a label set."""
    ls = get_label_set(label_set_key)
    if class_index >= ls.num_classes:
        return str(class_index)
    return i18n.class_name(label_set_key, ls.classes[class_index], st.session_state.get("lang", "ko"))


def _default_model() -> ModelEntry:
    """LR-ASPP (VOC's 21 everyday classes) when its weights are on disk, else the offline default."""
    lraspp = registry.get("lraspp_mobilenet_v3_large")
    return lraspp if weights.locate(lraspp) else registry.default_model()


def _defaults() -> dict[str, Any]:
    default = _default_model()
    return {
        "lang": i18n.DEFAULT_LANGUAGE,
        "device": devices.auto_device(),
        "half": False,
        "arch": default.architecture,
        "backbone": default.backbone,
        "inference_size": "native",
        "opacity": 0.5,
        "outline": False,
    }


def seed_session_state() -> None:
    """Give every shared setting a value before any widget for it is created."""
    for key, value in _defaults().items():
        st.session_state[key] = st.session_state.get(key, value)
    valid_devices = devices.available_devices()
    if st.session_state["device"] not in valid_devices:
        st.session_state["device"] = valid_devices[0]
    if st.session_state["arch"] not in registry.architectures():
        st.session_state["arch"] = _default_model().architecture


def _size_text(entry: ModelEntry) -> str:
    size = entry.weights.size_bytes
    return "?" if size is None else f"{size / 1e6:.1f} MB"


def _model_sidebar(model_filter: Callable[[ModelEntry], bool] | None) -> str:
    st.sidebar.subheader(tr("sidebar.model_header"))
    own = set(st.session_state.get(OWN_MODELS_KEY, ()))
    # a user's models (own checkpoints, lab runs) are listed in that user's session only
    models = [e for e in registry.list_models() if (model_filter is None or model_filter(e))
              and (e.source != "user" or e.name in own)]
    archs = list(dict.fromkeys(e.architecture for e in models))
    if st.session_state["arch"] not in archs:
        st.session_state["arch"] = archs[0]
    st.sidebar.selectbox(tr("sidebar.architecture"), archs, key="arch")
    backbones = [e.backbone for e in models if e.architecture == st.session_state["arch"]]
    if st.session_state["backbone"] not in backbones:
        st.session_state["backbone"] = backbones[0]
    st.sidebar.selectbox(tr("sidebar.backbone"), backbones, key="backbone")
    entry = registry.find(st.session_state["arch"], st.session_state["backbone"])

    info = tr("sidebar.model_info", params=f"{entry.num_params / 1e6:.1f} M" if entry.num_params else "?",
              size=_size_text(entry))
    st.sidebar.caption(f"{tr('labelset.' + entry.label_set_key)} · {info}")
    if entry.metrics.get("miou") is not None and entry.metrics.get("pixel_acc") is not None:
        st.sidebar.caption(tr("sidebar.metrics", miou=entry.metrics["miou"], acc=entry.metrics["pixel_acc"],
                              source=entry.metrics_source))
    path = weights.locate(entry)
    if entry.source == "segdemo":
        st.sidebar.caption("✓ " + tr("sidebar.offline_badge"))
    elif path is None:
        st.sidebar.caption(tr("sidebar.weights_missing", size=_size_text(entry)))
    _own_checkpoint_widget(entry)
    return entry.name


def _own_checkpoint_widget(entry: ModelEntry) -> None:
    with st.sidebar.expander(tr("sidebar.own_checkpoint")):
        upload = st.file_uploader(tr("sidebar.own_checkpoint"), type=["safetensors", "pth", "pt"],
                                  help=tr("sidebar.own_checkpoint_help"), key="own_checkpoint",
                                  label_visibility="collapsed")
        if upload is None or st.session_state.get("own_checkpoint_done") == upload.file_id:
            return
        target = config.weights_dir() / "user" / Path(upload.name).name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(upload.getvalue())
            new_entry = weights.register_user_checkpoint(entry, target)
        except Exception as exc:  # any unreadable or mismatching file: say why, keep state
            st.error(tr("sidebar.own_checkpoint_error", name=upload.name, reason=str(exc)[:300]))
            return
        st.session_state["own_checkpoint_done"] = upload.file_id
        st.session_state.setdefault(OWN_MODELS_KEY, []).append(new_entry.name)
        st.session_state["backbone"] = new_entry.backbone
        st.success(tr("sidebar.own_checkpoint_loaded", name=upload.name))
        st.rerun()


def existing_pages() -> list[tuple[str, str]]:
    """The pages of :data:`PAGES` whose file exists."""
    return [(path, key) for path, key in PAGES if (config.REPO_DIR / path).exists()]


def page_links(container: Any) -> None:
    """Links to every page, titled in the session's language."""
    from streamlit.errors import StreamlitPageNotFoundError

    for path, key in existing_pages():
        try:
            container.page_link(path, label=tr(key.replace("page.", "nav.", 1)))
        except StreamlitPageNotFoundError:
            # A page run on its own (AppTest, a deep link in tests) has no page registry.
            return
    container.divider()


def _inference_size_formatter(native: int | None) -> Callable[[object], str]:
    original = tr("sidebar.inference_size_original")
    native_text = tr("sidebar.inference_size_native", size=f"{native} px" if native else original)
    return lambda size: native_text if size == "native" else original if size == 0 else f"{size} px"


def resolve_inference_size(choice: object, entry: ModelEntry) -> int | None:
    """The shorter side fed to the network for a size choice (None: the original size)."""
    if choice == "native":
        return entry.preprocess.resize_size
    return int(choice) or None


def setup_page(title_key: str, model_filter: Callable[[ModelEntry], bool] | None = None,
               show_model: bool = True, show_overlay: bool = True) -> Settings:
    """Configure the page, draw the shared sidebar and return the settings.

    ``model_filter`` limits the models offered (e.g. to one label set);
    ``show_model`` / ``show_overlay`` hide sidebar sections a page does not use.
    """
    st.set_page_config(page_title="segdemo", page_icon="🧩", layout="wide")
    seed_session_state()
    page_links(st.sidebar)
    st.sidebar.radio(tr("sidebar.language"), list(i18n.LANGUAGES), key="lang",
                     format_func=lambda code: i18n.LANGUAGES[code], horizontal=True)
    device_options = devices.available_devices()
    st.sidebar.selectbox(tr("sidebar.device"), device_options, key="device")
    st.sidebar.caption(tr("sidebar.device_name", name=devices.device_name(st.session_state["device"])))
    if devices.supports_half(st.session_state["device"]):
        st.sidebar.checkbox(tr("sidebar.half"), key="half", help=tr("sidebar.half_help"))
    half = bool(st.session_state["half"]) and devices.supports_half(st.session_state["device"])

    model_name = _default_model().name
    if show_model:
        model_name = _model_sidebar(model_filter)
        stable_choice(st.sidebar.selectbox, tr("sidebar.inference_size"), INFERENCE_SIZES, "inference_size",
                      format_func=_inference_size_formatter(registry.get(model_name).preprocess.resize_size),
                      help=tr("sidebar.inference_size_help"))
    if show_overlay:
        st.sidebar.subheader(tr("sidebar.overlay_header"))
        st.sidebar.slider(tr("sidebar.opacity"), 0.0, 1.0, step=0.05, key="opacity")
        st.sidebar.checkbox(tr("sidebar.outline"), key="outline")
    st.title(tr(title_key))
    return Settings(
        lang=st.session_state["lang"],
        device=st.session_state["device"],
        half=half,
        model_name=model_name,
        inference_size=resolve_inference_size(st.session_state["inference_size"], registry.get(model_name)),
        opacity=float(st.session_state["opacity"]),
        outline=bool(st.session_state["outline"]),
    )


# ---------------------------------------------------------------- models


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


def _download_with_progress(entry: ModelEntry) -> None:
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
    st.error(tr("model.weights_missing", name=exc.entry.display_name, reason=exc.reason))
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
            _download_with_progress(entry)
        with st.spinner(tr("model.loading", name=entry.display_name, device=device)):
            model = _cached_model(name, device, half, weights_identity(entry))
    except weights.WeightsMissingError as exc:
        show_weights_missing(exc)
        st.stop()
    except (RuntimeError, ValueError, OSError) as exc:
        st.error(tr("model.load_error", name=entry.display_name, reason=str(exc)[:400]))
        st.stop()
    if model.random_weights:
        st.warning(tr("model.random_weights", name=entry.display_name))
    return model


_prediction_lock = threading.Lock()


def predict_cached(image: InputImage, settings: Settings, model_name: str | None = None) -> Prediction:
    """The prediction for ``image``; computed once per (image, model, device, precision, size).

    Kept per browser session (bounded), so overlay, view and class toggles
    never re-run the model. CUDA out-of-memory falls back to the CPU.
    """
    name = model_name or settings.model_name
    entry = registry.get(name)
    key = (image.digest, name, weights_identity(entry), settings.device, settings.half, settings.inference_size)
    cache: OrderedDict = st.session_state.setdefault("_predictions", OrderedDict())
    if key in cache:
        cache.move_to_end(key)
        if key[2] == "random":  # say it on every rerun, not only when the model loads
            st.warning(tr("model.random_weights", name=entry.display_name))
        return cache[key]
    model = get_model(name, settings)
    pred, fell_back = predict_with_cpu_fallback(
        model, entry, image.rgb, settings.inference_size, settings.device, settings.half,
        cpu_model=lambda: get_model(name, settings, device="cpu"))
    if fell_back:
        st.warning(tr("model.oom"))
    with _prediction_lock:
        cache[key] = pred
        while len(cache) > MAX_CACHED_PREDICTIONS:
            cache.popitem(last=False)
    return pred


def timing_caption(pred: Prediction) -> None:
    """One line with the time of each stage and the device."""
    t = pred.timings
    st.caption(tr("timing.line", pre=t["preprocess"] * 1000, fwd=t["forward"] * 1000,
                  post=t["postprocess"] * 1000, device=devices.device_name(pred.device))
               + " · " + tr("timing.input", w=pred.input_size[1], h=pred.input_size[0]))
    if pred.input_capped:
        st.info(tr("timing.input_capped", w=pred.input_size[1], h=pred.input_size[0],
                   mp=inference.MAX_NETWORK_PIXELS / 1e6))


# ---------------------------------------------------------------- images


def _decode_cached(store_key: str, file_id: str, data_fn: Callable[[], bytes], name: str) -> InputImage | ImageError:
    """Decode once per uploaded file; later reruns reuse the result (or the error)."""
    store: dict = st.session_state.setdefault(store_key, {})
    if file_id not in store:
        try:
            store[file_id] = decode_image(data_fn(), name)
        except ImageError as exc:
            store[file_id] = exc
    return store[file_id]


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
    store_key = f"_{key}_decoded"
    images: list[InputImage] = []
    for upload in uploads or []:
        result = _decode_cached(store_key, upload.file_id, upload.getvalue, upload.name)
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
                    result = _decode_cached(store_key, snapshot.file_id, snapshot.getvalue, "camera.jpg")
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
            result = _decode_cached(store_key, f"sample:{sample.path}", sample.path.read_bytes, sample.name)
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


def swatch_legend(rows: list[tuple[tuple[int, int, int], str, str]]) -> None:
    """A legend: colour swatch, class name and a value (e.g. pixel share) per row."""
    with_values = any(value for _, _, value in rows)
    cells = "".join(
        f'<tr><td><span style="display:inline-block;width:1.4em;height:1.0em;border:1px solid #444;'
        f'background:rgb{tuple(color)}"></span></td><td style="padding:0 0.6em">{html.escape(name)}</td>'
        + (f'<td style="text-align:right">{html.escape(value)}</td>' if with_values else "") + "</tr>"
        for color, name, value in rows
    )
    st.markdown(f'<table class="segdemo-legend" style="font-size:1.05rem">{cells}</table>',
                unsafe_allow_html=True)


def class_legend_toggles(label_set: LabelSet, areas: list[tuple[int, int, float]], key: str = "show") -> set[int]:
    """The legend and the show/hide switches in one list: colour, class, pixel share.

    ``areas`` is :func:`segdemo.render.class_areas`' output (largest first).
    Background starts hidden so the photo is not darkened. Returns the hidden classes.
    """
    hidden: set[int] = set()
    for cls, pixels, share in areas:
        widget_key = f"{key}_{label_set.key}_{cls}"
        st.session_state.setdefault(widget_key, cls != label_set.background_index)
        swatch, toggle = st.columns([1, 11], vertical_alignment="center")
        swatch.markdown(
            f'<div style="width:1.6em;height:1.2em;border:1px solid #444;background:rgb{tuple(label_set.colors[cls])}">'
            "</div>", unsafe_allow_html=True)
        label = f"**{class_label(label_set.key, cls)}** — {tr('segment.share', share=share, pixels=pixels)}"
        if not toggle.checkbox(label, key=widget_key):
            hidden.add(cls)
    return hidden


def to_display(rgb: np.ndarray, max_side: int = 1280) -> np.ndarray:
    """Downscale for the browser: encoding full-size images on every rerun is slow."""
    from segdemo.images import downscale_for_display

    return downscale_for_display(rgb, max_side)


def load_sample(path: Path) -> InputImage:
    """Decode a file of the gallery (cached per session)."""
    result = _decode_cached("_samples_decoded", f"sample:{path}", path.read_bytes, path.name)
    if isinstance(result, ImageError):
        raise result
    return result


__all__ = [
    "Settings", "tr", "options_formatter", "stable_choice", "set_choice", "class_label", "setup_page", "get_model", "predict_cached", "image_inputs",
    "choose_image", "swatch_legend", "class_legend_toggles", "to_display", "timing_caption", "show_image_notes",
    "show_weights_missing", "load_sample", "load_image_file", "weights_identity",
]


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
        st.error(tr("tl.error", reason=run.error[:200]))
    else:
        st.success(tr(f"tl.{run.status}", seconds=run.elapsed, epochs=len(run.history),
                      miou=run.history[-1]["val_miou"] if run.history else 0.0))
    if run.trainable_params:
        st.caption(tr("tl.run_params", trainable=run.trainable_params, total=run.total_params))
