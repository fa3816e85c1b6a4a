"""Small widgets every page uses: a choice that survives a language switch, an image-source choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import streamlit as st

from segdemo.ui import state


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
    widget_key = state.per_language(key)
    seeded: dict[str, str] = st.session_state.setdefault(state.CHOICE_LANG, {})

    def valid(value: Any) -> bool:  # a multiselect's value is a list of options
        return all(v in options for v in value) if isinstance(value, list) else value in options

    if seeded.get(key) == state.current_lang() and valid(st.session_state.get(widget_key)):
        st.session_state[key] = st.session_state[widget_key]  # the user's latest pick
    else:
        value = st.session_state.get(key)
        st.session_state[widget_key] = value if valid(value) else options[0]
        seeded[key] = state.current_lang()
    chosen = widget(label, options, key=widget_key, format_func=format_func, **kwargs)
    st.session_state[key] = chosen
    return chosen


def set_choice(key: str, value: Any) -> None:
    """Set a :func:`stable_choice` from code (in a callback or before the widget exists)."""
    st.session_state[key] = value
    if st.session_state.get(state.CHOICE_LANG, {}).get(key) == state.current_lang():
        st.session_state[state.per_language(key)] = value


def camvid_source_choice(key: str, others: Sequence[str]) -> tuple[str, list[tuple[Path, Path]]]:
    """A radio "where the image comes from": CamVid val (when the data set is there) then ``others``.

    Keys and texts follow the page's ``key`` (session key :func:`state.source_key`, catalogue keys
    ``<key>.source``, ``<key>.source.<option>`` and ``<key>.no_camvid``).
    Returns the choice and CamVid val's (image, label) files (empty without the data set).
    """
    from segdemo.data import datasets

    try:
        val_files = datasets.camvid_files("val")
    except datasets.DatasetMissingError:
        val_files = []
    sources = (["camvid"] if val_files else []) + list(others)
    choice_key = state.source_key(key)
    if st.session_state.get(choice_key) not in sources:
        st.session_state[choice_key] = sources[0]
    source = stable_choice(st.radio, state.tr(f"{key}.source"), sources, choice_key, horizontal=True,
                           format_func=state.options_formatter(f"{key}.source."))
    if not val_files:
        st.caption(state.tr(f"{key}.no_camvid"))
    return source, val_files
