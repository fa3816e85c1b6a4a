"""Session state: the keys every page shares, the current language, one per-session cache.

Streamlit keeps ``st.session_state`` per browser session. The settings of the
shared sidebar live under the keys below and are seeded (by
:func:`segdemo.ui.sidebar.seed_session_state`) before their widgets are built,
so they survive page switches. Everything a page keeps between reruns that is
not a widget value (decoded uploads, predictions, slow lab results) goes
through :func:`session_cache`, bounded so a long lecture cannot fill memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, TypeVar

import streamlit as st

from segdemo import i18n

T = TypeVar("T")

# ---- keys of the shared sidebar (widget keys: seeded before the widgets exist)
LANG = "lang"
DEVICE = "device"
HALF = "half"
ARCH = "arch"
BACKBONE = "backbone"
INFERENCE_SIZE = "inference_size"
OPACITY = "opacity"
OUTLINE = "outline"
OWN_CHECKPOINT = "own_checkpoint"
OWN_CHECKPOINT_DONE = "own_checkpoint_done"  # file id of the checkpoint already registered
OWN_MODELS = "own_models"  # names of the registry entries this session added (source "user")
RUN_COUNT = "_run_count"  # script runs of this session (counted by the sidebar's setup_page)
CLASS_TOGGLES = "class_toggles"  # label-set key -> {class id: shown} of the legend's switches
CHOICE_LANG = "_choice_lang"  # per stable_choice key: the language its widget was seeded in
CACHE_PREFIX = "_cache_"  # + cache name: the stores of session_cache

# ---- bounds of the per-session caches (entries)
MAX_DECODED_IMAGES = 24  # a class uploads a dozen photos at once; more would re-decode on every rerun
MAX_PREDICTIONS = 12
MAX_BATCH_LABEL_MAPS = 500  # label maps only (small); a batch re-scores without re-running the model
MAX_LAB_RESULTS = 8

_lock = threading.Lock()


def current_lang() -> str:
    """The session's language code ("ko" or "en")."""
    return st.session_state.get(LANG, i18n.DEFAULT_LANGUAGE)


def tr(key: str, **values: object) -> str:
    """``key`` translated into the session's language."""
    return i18n.t(key, current_lang(), **values)


def options_formatter(prefix: str) -> Callable[[object], str]:
    """A ``format_func`` showing option ``v`` as the text of key ``prefix + str(v)``.

    The language is fixed when the widget is built, so the labels stay right
    even when the function is called outside the script run (AppTest does that).
    """
    lang = current_lang()
    return lambda value: i18n.t(f"{prefix}{value}", lang)


def session_cache(name: str, key: Hashable, compute: Callable[[], T], max_entries: int) -> T:
    """``compute()`` once per ``key`` in this browser session; the least recently used entry goes first.

    ``name`` separates the caches (decoded images, predictions, lab results);
    a cached value may be an exception object, so a bad upload says why on every rerun.
    """
    store: OrderedDict[Hashable, Any] = st.session_state.setdefault(CACHE_PREFIX + name, OrderedDict())
    if key in store:
        store.move_to_end(key)
        return store[key]
    value = compute()
    with _lock:  # reruns of one session may overlap (a rerun starts before the last one ends)
        store[key] = value
        while len(store) > max_entries:
            store.popitem(last=False)
    return value
