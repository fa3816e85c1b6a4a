"""Legends: colour swatch, translated class name and a value; with show/hide switches."""

from __future__ import annotations

import html

import streamlit as st

from segdemo import i18n
from segdemo.data.labels import LabelSet, get_label_set
from segdemo.ui import state
from segdemo.ui.state import tr


def class_label(label_set_key: str, class_index: int) -> str:
    """The translated name of class ``class_index`` of a label set."""
    ls = get_label_set(label_set_key)
    if class_index >= ls.num_classes:
        return str(class_index)
    return i18n.class_name(label_set_key, ls.classes[class_index], state.current_lang())


def swatch_legend(rows: list[tuple[tuple[int, int, int], str, str]], inline: bool = False) -> None:
    """A legend: colour swatch, class name and a value (e.g. pixel share) per row.

    ``inline``: all entries on one wrapping line (under a picture), never one word per line.
    """
    if inline:
        items = "".join(
            f'<span style="display:inline-block;white-space:nowrap;margin:0 1.4em 0.3em 0">'
            f'<span style="display:inline-block;width:1.4em;height:1.0em;border:1px solid #444;vertical-align:middle;'
            f'background:rgb{tuple(color)}"></span> {html.escape(name)}'
            + (f" <b>{html.escape(value)}</b>" if value else "") + "</span>"
            for color, name, value in rows)
        st.markdown(f'<div class="segdemo-legend" style="font-size:1.1rem">{items}</div>', unsafe_allow_html=True)
        return
    with_values = any(value for _, _, value in rows)
    cells = "".join(
        f'<tr><td><span style="display:inline-block;width:1.4em;height:1.0em;border:1px solid #444;'
        f'background:rgb{tuple(color)}"></span></td><td style="padding:0 0.6em">{html.escape(name)}</td>'
        + (f'<td style="text-align:right">{html.escape(value)}</td>' if with_values else "") + "</tr>"
        for color, name, value in rows
    )
    st.markdown(f'<table class="segdemo-legend" style="font-size:1.05rem">{cells}</table>',
                unsafe_allow_html=True)


def class_legend_toggles(label_set: LabelSet, areas: list[tuple[int, int, float]], key: str = state.LEGEND.TOGGLES) -> set[int]:
    """The legend and the show/hide switches in one list: colour, class, pixel share.

    ``areas`` is :func:`segdemo.render.class_areas`' output (largest first).
    Background starts hidden so the photo is not darkened. Returns the hidden classes.
    The choices are kept per label set (``state.CLASS_TOGGLES``), so they survive
    model switches, failed loads and page changes.
    """
    hidden: set[int] = set()
    # The choices live in a plain per-label-set dict, not in the checkboxes' state: after a
    # run that drew no legend (a model whose weights are missing) the browser brought the
    # checkboxes back all unticked. So a legend that reappears gets fresh checkboxes (a new
    # generation in their keys) started from the kept choices.
    kept: dict[int, bool] = st.session_state.setdefault(state.CLASS_TOGGLES, {}).setdefault(label_set.key, {})
    run = st.session_state.get(state.RUN_COUNT, 0)
    drawn = st.session_state.get(state.LEGEND.RUN)
    generation = st.session_state.get(state.LEGEND.GENERATION, 0)
    if drawn is not None and drawn < run - 1:
        generation += 1
    st.session_state[state.LEGEND.GENERATION], st.session_state[state.LEGEND.RUN] = generation, run
    for cls, pixels, share in areas:
        widget_key = state.LEGEND.toggle(key, label_set.key, cls, generation)
        swatch, toggle = st.columns([1, 11], vertical_alignment="center")
        swatch.markdown(
            f'<div style="width:1.6em;height:1.2em;border:1px solid #444;background:rgb{tuple(label_set.colors[cls])}">'
            "</div>", unsafe_allow_html=True)
        label = f"**{class_label(label_set.key, cls)}** — {tr('segment.share', share=share, pixels=pixels)}"
        shown = toggle.checkbox(label, value=kept.get(cls, cls != label_set.background_index), key=widget_key)
        kept[cls] = bool(shown)
        if not shown:
            hidden.add(cls)
    hidden |= {c for c, on in kept.items() if not on}  # a hidden class stays hidden while absent here
    return hidden
