"""The shared sidebar: page links, language, device, model and overlay settings.

Pages call :func:`setup_page` first; it seeds ``st.session_state`` with defaults
*before* creating the sidebar widgets, so language, device, model and overlay
settings survive page switches (a widget on another page is a different widget).

The torch-backed modules (devices, batching, weights) are imported inside the
functions that use them, and :func:`setup_page` draws the title, the page links
and the language choice before it needs them: on a cold start the page shows
its header while torch and torchvision load (about 2 s on a laptop CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from segdemo import config, i18n
from segdemo.models import registry
from segdemo.models.registry import ModelEntry
from segdemo.ui import builtin_text, errors, state
from segdemo.ui.state import tr
from segdemo.ui.widgets import stable_choice

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
    ("pages/12_Augmentation.py", "page.augmentation"),
    ("pages/13_Distillation.py", "page.distillation"),
)


COMPACT_CSS = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 3.9rem; padding-bottom: 2rem; }
[data-testid="stMain"] h1 { font-size: 2.0rem; padding: 0 0 0.4rem 0; }
[data-testid="stTable"] td, [data-testid="stTable"] th { word-break: keep-all; overflow-wrap: anywhere; }
[data-testid="stMetricLabel"] p { white-space: normal; word-break: keep-all; overflow-wrap: anywhere; }
</style>"""


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


def _default_model() -> ModelEntry:
    """LR-ASPP (VOC's 21 everyday classes) when its weights are on disk, else the offline default."""
    from segdemo.models import weights

    lraspp = registry.get("lraspp_mobilenet_v3_large")
    return lraspp if weights.locate(lraspp) else registry.default_model()


def _defaults() -> dict[str, Any]:
    from segdemo.inference import devices

    default = _default_model()
    return {  # the language is seeded by setup_page itself, before the header
        state.DEVICE: devices.auto_device(),
        state.HALF: False,
        state.ARCH: default.architecture,
        state.BACKBONE: default.backbone,
        state.INFERENCE_SIZE: "native",
        state.OPACITY: 0.5,
        state.OUTLINE: False,
    }


def seed_session_state() -> None:
    """Give every shared setting but the language a value before any widget for it is created.

    Re-assigning a value that is already there is deliberate: it keeps a widget's value
    alive across pages that do not draw that widget.
    """
    from segdemo.inference import devices

    for key, value in _defaults().items():
        st.session_state[key] = st.session_state.get(key, value)
    valid_devices = devices.available_devices()
    if st.session_state[state.DEVICE] not in valid_devices:
        st.session_state[state.DEVICE] = valid_devices[0]
    if st.session_state[state.ARCH] not in registry.architectures():
        st.session_state[state.ARCH] = _default_model().architecture


def weights_on_disk(entry: ModelEntry) -> bool:
    """Whether ``entry``'s weights file is here (shipped, in the weights folder or the torch cache)."""
    from segdemo.models import weights

    return weights.locate(entry) is not None


def _size_text(entry: ModelEntry) -> str:
    size = entry.weights.size_bytes
    return "?" if size is None else f"{size / 1e6:.1f} MB"


def _model_sidebar(model_filter: Callable[[ModelEntry], bool] | None) -> str:
    from segdemo.models import weights

    st.sidebar.subheader(tr("sidebar.model_header"))
    own = set(st.session_state.get(state.OWN_MODELS, ()))
    # a user's models (own checkpoints, lab runs) are listed in that user's session only
    models = [e for e in registry.list_models() if (model_filter is None or model_filter(e))
              and (e.source != "user" or e.name in own)]
    archs = list(dict.fromkeys(e.architecture for e in models))
    if st.session_state[state.ARCH] not in archs:
        st.session_state[state.ARCH] = archs[0]
    st.sidebar.selectbox(tr("sidebar.architecture"), archs, key=state.ARCH)
    backbones = [e.backbone for e in models if e.architecture == st.session_state[state.ARCH]]
    if st.session_state[state.BACKBONE] not in backbones:
        st.session_state[state.BACKBONE] = backbones[0]
    st.sidebar.selectbox(tr("sidebar.backbone"), backbones, key=state.BACKBONE)
    entry = registry.find(st.session_state[state.ARCH], st.session_state[state.BACKBONE])

    info = tr("sidebar.model_info", params=f"{entry.num_params / 1e6:.1f} M" if entry.num_params else "?",
              size=_size_text(entry))
    st.sidebar.caption(f"{tr('labelset.' + entry.label_set_key)} · {info}")
    # What the model was trained on, plainly: a microscope model on a street photo (or the
    # reverse) still paints every pixel, and its class names then mean nothing.
    domain = tr(f"sidebar.domain.{entry.label_set_key}")
    (st.sidebar.warning if entry.label_set_key == "isbi" else st.sidebar.caption)(domain)
    if entry.metrics.get("miou") is not None and entry.metrics.get("pixel_acc") is not None:
        st.sidebar.caption(tr("sidebar.metrics", miou=entry.metrics["miou"], acc=entry.metrics["pixel_acc"],
                              source=metrics_split(entry)))
    path = weights.locate(entry)
    if entry.source == "segdemo":
        st.sidebar.caption("✓ " + tr("sidebar.offline_badge"))
    elif path is None:
        st.sidebar.caption(tr("sidebar.weights_missing", size=_size_text(entry)))
    _own_checkpoint_widget(entry)
    return entry.name


def _own_checkpoint_widget(entry: ModelEntry) -> None:
    from segdemo.models import weights
    from segdemo.models.weights import CHECKPOINT_TYPES

    with st.sidebar.expander(tr("sidebar.own_checkpoint")):
        upload = st.file_uploader(tr("sidebar.own_checkpoint"), type=list(CHECKPOINT_TYPES),
                                  help=tr("sidebar.own_checkpoint_help"), key=state.OWN_CHECKPOINT,
                                  label_visibility="collapsed")
        if upload is None or st.session_state.get(state.OWN_CHECKPOINT_DONE) == upload.file_id:
            return
        target = config.weights_dir() / "user" / Path(upload.name).name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(upload.getvalue())
            new_entry = weights.register_user_checkpoint(entry, target)
        except Exception as exc:  # any unreadable or mismatching file: say why, keep state
            st.error(tr("sidebar.own_checkpoint_error", name=upload.name, reason=errors.checkpoint_reason(exc, entry)))
            return
        st.session_state[state.OWN_CHECKPOINT_DONE] = upload.file_id
        st.session_state.setdefault(state.OWN_MODELS, []).append(new_entry.name)
        st.session_state[state.BACKBONE] = new_entry.backbone
        st.success(tr("sidebar.own_checkpoint_loaded", name=upload.name))
        st.rerun()


# The model cards' metrics_source (English, from the registry) -> a short split name in the UI's language.
SPLITS = (("CamVid val", "home.split.camvid_val"), ("ISBI", "home.split.isbi_heldout"), ("COCO", "home.split.coco_val"))


def metrics_split(entry: ModelEntry) -> str:
    """The data split of ``entry``'s published scores, translated (the card's text when unknown)."""
    return next((tr(key) for prefix, key in SPLITS if entry.metrics_source.startswith(prefix)), entry.metrics_source)


def device_label(device: str) -> str:
    """The device's name in the session's language (a GPU's product name as the driver gives it)."""
    from segdemo.inference import batching, devices

    if device.startswith("cuda"):
        return devices.device_name(device)
    if device == "mps":
        return tr("sidebar.device.mps")
    import os
    import platform

    # the configured count (what the inference worker and every script run use), not the
    # calling thread's OpenMP state, which differs between Streamlit's rerun threads
    return tr("sidebar.device.cpu", cpu=platform.processor() or platform.machine(),
              threads=batching.default_threads(), cores=os.cpu_count())


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
    # A compact header: at 1280x800 the default top padding and title size push a page's
    # first result below the fold.
    st.html(COMPACT_CSS)
    st.session_state[state.RUN_COUNT] = st.session_state.get(state.RUN_COUNT, 0) + 1
    st.session_state[state.LANG] = st.session_state.get(state.LANG, i18n.DEFAULT_LANGUAGE)  # seeded: see above
    # The header first: everything above needs no torch, so a cold start paints it at once.
    st.title(tr(title_key))
    page_links(st.sidebar)
    st.sidebar.radio(tr("sidebar.language"), list(i18n.LANGUAGES), key=state.LANG,
                     format_func=lambda code: i18n.LANGUAGES[code], horizontal=True)
    from segdemo.inference import batching, devices  # torch: from here on

    builtin_text.translate_uploaders(st.session_state[state.LANG])
    seed_session_state()
    device_options = devices.available_devices()
    batching.apply_server_threads()  # before the device line says how many threads run
    st.sidebar.selectbox(tr("sidebar.device"), device_options, key=state.DEVICE)
    st.sidebar.caption(tr("sidebar.device_name", name=device_label(st.session_state[state.DEVICE])))
    if devices.supports_half(st.session_state[state.DEVICE]):
        st.sidebar.checkbox(tr("sidebar.half"), key=state.HALF, help=tr("sidebar.half_help"))
    half = bool(st.session_state[state.HALF]) and devices.supports_half(st.session_state[state.DEVICE])

    model_name = _default_model().name
    if show_model:
        model_name = _model_sidebar(model_filter)
        native = registry.get(model_name).preprocess.resize_size
        if st.session_state.get(state.NATIVE_SHOWN, native) != native:
            # The browser keeps showing the old option text ("the model's own (180 px)") unless
            # the widget's value is set again from the session: re-seed it for the new model.
            st.session_state.get(state.CHOICE_LANG, {}).pop(state.INFERENCE_SIZE, None)
        st.session_state[state.NATIVE_SHOWN] = native
        stable_choice(st.sidebar.selectbox, tr("sidebar.inference_size"), INFERENCE_SIZES, state.INFERENCE_SIZE,
                      format_func=_inference_size_formatter(registry.get(model_name).preprocess.resize_size),
                      help=tr("sidebar.inference_size_help"))
    if show_overlay:
        st.sidebar.subheader(tr("sidebar.overlay_header"))
        st.sidebar.slider(tr("sidebar.opacity"), 0.0, 1.0, step=0.05, key=state.OPACITY)
        st.sidebar.checkbox(tr("sidebar.outline"), key=state.OUTLINE)
    return Settings(
        lang=st.session_state[state.LANG],
        device=st.session_state[state.DEVICE],
        half=half,
        model_name=model_name,
        inference_size=resolve_inference_size(st.session_state[state.INFERENCE_SIZE], registry.get(model_name)),
        opacity=float(st.session_state[state.OPACITY]),
        outline=bool(st.session_state[state.OUTLINE]),
    )
