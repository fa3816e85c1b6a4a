"""Inputs and settings of the Evaluate page: uploads or examples, the truth's label set,
the ignore label and policies, a label mapping, and the batch run with its progress bar.

The numbers come from :mod:`segdemo.evaluate`; here they are only asked for and laid out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from segdemo import i18n
from segdemo.data.images import ImageError, InputImage, decode_image, digest_bytes
from segdemo.data.labels import LABEL_SETS, LabelSet
from segdemo.evaluate import (ABSENT_POLICIES, OTHER, BatchAccumulator, BatchResult, GroundTruth, LabelMapping,
                              MaskError, Notice, PairPlan, Policy, decode_mask, describe_notice, mapping_by_name,
                              mapping_from_names, per_class_csv, per_image_csv, preset_mapping, run_batch, to_json)
from segdemo.evaluate.label_guess import LabelGuess, guess_label_set
from segdemo.inference.pipeline import predict_with_cpu_fallback
from segdemo.ui import state
from segdemo.ui.inputs import decode_cached
from segdemo.ui.models import get_model, weights_identity
from segdemo.ui.sidebar import Settings
from segdemo.ui.state import EVAL, options_formatter, tr
from segdemo.ui.widgets import set_choice, stable_choice


def class_names(label_set: LabelSet, lang: str, other: bool = False) -> list[str]:
    """Translated class names, plus "other" for a mapping's extra column."""
    names = [i18n.class_name(label_set.key, c, lang) for c in label_set.classes]
    return names + [i18n.t("eval.other", lang)] if other else names


def describe(notice: Notice) -> str:
    """A notice or error as text in the session language (unknown keys shown raw)."""
    return describe_notice(notice, state.current_lang())


def show_notices(notices: list[Notice]) -> None:
    """Each notice as an info, warning or error box."""
    for n in notices:
        {"info": st.info, "warning": st.warning, "error": st.error}.get(n.level, st.info)(describe(n))


# ---------------------------------------------------------------- inputs


def read_upload(upload: UploadedFile | None) -> tuple[str, bytes] | None:
    """(name, bytes) of an upload, or None."""
    return None if upload is None else (upload.name, upload.getvalue())


def decode_image_cached(named: tuple[str, bytes] | None) -> InputImage | None:
    """Decode an image once per content; a bad file shows its message and gives None."""
    if named is None:
        return None
    name, data = named
    result = decode_cached(f"{name}:{digest_bytes(data)}", lambda: data, name)
    if isinstance(result, ImageError):
        st.error(tr(result.key, **result.values))
        return None
    return result


def decode_mask_shown(named: tuple[str, bytes] | None, gt_set: LabelSet, ignore: int | None,
                      size: tuple[int, int] | None) -> GroundTruth | None:
    """Decode a mask and show its notices; a mask that cannot be used shows why and gives None."""
    if named is None:
        return None
    try:
        gt = decode_mask(named[1], named[0], gt_set, ignore, size)
    except MaskError as exc:
        st.error(describe(exc))
        return None
    show_notices(gt.notices)
    return gt


def downloads(result: BatchResult, stem: str, meta: dict[str, object]) -> None:
    """Per-class CSV, per-image CSV and everything as JSON."""
    c1, c2, c3 = st.columns(3)
    c1.download_button(tr("eval.download.csv"), data=lambda: per_class_csv(result), file_name=f"{stem}_classes.csv",
                       mime="text/csv", on_click="ignore")
    c2.download_button(tr("eval.download.images_csv"), data=lambda: per_image_csv(result, describe),
                       file_name=f"{stem}_images.csv", mime="text/csv", on_click="ignore")
    c3.download_button(tr("eval.download.json"), data=lambda: to_json(result, meta, describe),
                       file_name=f"{stem}.json", mime="application/json", on_click="ignore")


def run_model_batch(files: dict[str, bytes | Path], plan: PairPlan, settings: Settings, gt_set: LabelSet,
                    ignore: int | None, accumulator: BatchAccumulator) -> BatchResult:
    """Run the sidebar's model on every pair of ``plan`` and score it, with a progress bar.

    Label maps are kept per session (bounded), so changing a convention only
    re-scores; out of GPU memory, an image runs on the CPU and the page says so.
    """
    bar = st.progress(0.0, text=tr("eval.batch.starting"))
    model = get_model(settings.model_name, settings)  # once: its messages show once
    entry = settings.entry
    weights = weights_identity(entry)
    fell_back: list[bool] = []

    def read(name: str) -> bytes:
        value = files[name]
        return value.read_bytes() if isinstance(value, Path) else value

    def load(key: str, image_name: str, mask_name: str) -> tuple[np.ndarray, np.ndarray, list[Notice]]:
        image = decode_image(read(image_name), image_name)
        truth = decode_mask(read(mask_name), mask_name, gt_set, ignore, image.rgb.shape[:2])
        pred_key = (image.digest, settings.model_name, weights, settings.inference_size, settings.device,
                    settings.half)

        def compute() -> np.ndarray:
            pred, oom = predict_with_cpu_fallback(model, entry, image.rgb, settings.inference_size, settings.device,
                                                  settings.half,
                                                  cpu_model=lambda: get_model(settings.model_name, settings, "cpu"))
            fell_back.append(oom)
            return pred.labels

        labels = state.session_cache("batch_label_maps", pred_key, compute, state.MAX_BATCH_LABEL_MAPS)
        return labels, truth.labels, truth.notices

    def progress(i: int, n: int, name: str) -> None:
        bar.progress(i / n if n else 1.0, text=tr("eval.batch.progress", i=i, n=n, name=name))

    batch = run_batch(plan.pairs, load, accumulator, progress, plan.images_without_mask)
    bar.empty()
    if any(fell_back):
        st.warning(tr("model.oom"))
    return batch


# ---------------------------------------------------------------- the truth's label set, read from the mask

def guess_truth_labels(mode: str, named: tuple[str, bytes] | None, model_key: str | None) -> LabelGuess | None:
    """Read the truth's label set from the mask; a new mask makes it the truth's label set.

    The user may still pick another set under "Conventions" for the same mask
    (the page then says the mask reads otherwise); the next new mask is read again.
    """
    if named is None:
        return None
    digest = digest_bytes(named[1])
    guess = state.session_cache("label_guesses", (digest, model_key),
                                lambda: guess_label_set(named[1], named[0], model_key), state.MAX_DECODED_IMAGES)
    if st.session_state.get(EVAL.GUESSED_FOR) != (mode, digest):
        st.session_state[EVAL.GUESSED_FOR] = (mode, digest)
        set_truth_labels(guess.key)
    return guess


def show_label_sets(guess: LabelGuess | None, gt_set: LabelSet, model_name: str | None,
                    model_set: LabelSet | None) -> None:
    """State the truth's label set with its evidence, and the model's, before any score."""
    lines, level = [], st.info
    if guess is not None and guess.reason != "unreadable":
        values = dict(guess.values)
        if "labels" in values:
            values["labels"] = tr(f"labelset.{values['labels']}")
        lines.append(tr(f"eval.guess.{guess.reason}", **values))
        if not guess.fits_any:
            level = st.warning
        elif guess.key != gt_set.key:
            lines.append(tr("eval.guess.override", chosen=tr(f"labelset.{gt_set.key}"),
                            labels=tr(f"labelset.{guess.key}")))
            level = st.warning
        elif guess.ambiguous or (guess.reason in ("model_set", "smallest") and len(guess.fits) > 1):
            lines.append(tr("eval.guess.also", others=", ".join(tr(f"labelset.{k}") for k in guess.fits
                                                                   if k != guess.key)))
    if model_set is not None and model_name is not None:
        lines.append(tr("eval.guess.model", model=model_name, labels=tr(f"labelset.{model_set.key}")))
        if model_set.key != gt_set.key:  # the mapping's own message follows, in full
            level = st.warning
    if lines:
        level("  \n".join(lines))


# ---------------------------------------------------------------- settings


def _label_set_key(value: object, default: str = "voc") -> str:
    """The label-set key a selectbox value stands for.

    After a language switch the browser may send back the *displayed* text of
    the old language ("PASCAL VOC (21개 클래스)"); map it back to its key.
    """
    if value in LABEL_SETS:
        return str(value)
    for lang in i18n.LANGUAGES:
        for key in LABEL_SETS:
            if i18n.t(f"labelset.{key}", lang) == value:
                return key
    return default


def _reset_ignore() -> None:
    key = _label_set_key(st.session_state.get(EVAL.GT_LABELS))
    if st.session_state.get(EVAL.GT_LABELS) != key:  # only from the on_change callback
        st.session_state[EVAL.GT_LABELS] = key
    gt = LABEL_SETS[key]
    st.session_state[EVAL.IGNORE] = -1 if gt.ignore_index is None else gt.ignore_index


def set_truth_labels(key: str) -> None:
    """Make ``key`` the truth's label set (with its own ignore label)."""
    set_choice(EVAL.GT_LABELS, key)
    _reset_ignore()


def source_and_example(key: str, names: list[str], label_set_keys: list[str], prefer: str | None = None,
                       columns: tuple[Any, Any] | None = None) -> int | None:
    """Upload, or one of ``names`` from the data folder (the default when there are any).

    Returns the chosen example's index, or None for uploads. Choosing an example
    also sets the truth's label set to the example's. The first example in the
    label set ``prefer`` (the model's) is the default, so a fresh session starts
    on a pair the model can be scored on. ``columns``: where the radio and the
    example box go (default: one under the other).
    """
    left, right = columns or (st.container(), st.container())
    sources = ("upload", "example") if names else ("upload",)
    st.session_state.setdefault(state.source_key(key), sources[-1])
    with left:
        source = stable_choice(st.radio, tr("eval.source"), sources, state.source_key(key), horizontal=True,
                               format_func=options_formatter("eval.source."))
    if source != "example":
        return None
    example_key = state.sub_key(key, EVAL.EXAMPLE)  # example names are not translated: a plain widget key is safe
    if st.session_state.get(example_key) not in names:
        first = label_set_keys.index(prefer) if prefer in label_set_keys else 0
        st.session_state[example_key] = names[first]
        set_truth_labels(label_set_keys[first])
    choice = right.selectbox(tr("eval.example"), names, key=example_key,
                          on_change=lambda: set_truth_labels(label_set_keys[names.index(st.session_state[example_key])]))
    return names.index(choice)


def truth_label_set_select(default_key: str) -> LabelSet:
    """The label set the ground truth is drawn in (default: the model's)."""
    st.session_state[EVAL.GT_LABELS] = _label_set_key(st.session_state.get(EVAL.GT_LABELS, default_key), default_key)
    widget_key = state.per_language(EVAL.GT_LABELS)

    def changed() -> None:
        st.session_state[EVAL.GT_LABELS] = _label_set_key(st.session_state[widget_key])
        _reset_ignore()

    key = stable_choice(st.selectbox, tr("eval.gt_labels"), list(LABEL_SETS), EVAL.GT_LABELS,
                        format_func=options_formatter("labelset."), on_change=changed, help=tr("eval.gt_labels_help"))
    return LABEL_SETS[_label_set_key(key)]


def policy_controls(gt_set: LabelSet) -> tuple[Policy, int | None]:
    """Ignore label, absent-class policy and background switch, each explained."""
    if EVAL.IGNORE not in st.session_state:
        _reset_ignore()
    cols = st.columns(3)
    with cols[0]:
        ignore = st.number_input(tr("eval.ignore"), min_value=-1, max_value=65535, step=1, key=EVAL.IGNORE,
                                 help=tr("eval.ignore_help"))
    with cols[1]:
        absent = stable_choice(st.radio, tr("eval.absent"), ABSENT_POLICIES, EVAL.ABSENT,
                               format_func=options_formatter("eval.absent."), help=tr("eval.absent_help"))
    with cols[2]:
        st.session_state.setdefault(EVAL.BACKGROUND, True)
        has_bg = gt_set.background_index is not None
        background = st.toggle(tr("eval.background"), key=EVAL.BACKGROUND, disabled=not has_bg,
                               help=tr("eval.background_help"))
        if not has_bg:
            st.caption(tr("eval.no_background", labels=tr(f"labelset.{gt_set.key}")))
    return Policy(absent, bool(background) or not has_bg), (None if int(ignore) < 0 else int(ignore))


def mapping_controls(gt_set: LabelSet, pred_set: LabelSet) -> LabelMapping | None:
    """Identity, a preset, or a user-edited mapping; ``None`` with a clear message if nothing maps."""
    if gt_set.key == pred_set.key:
        return None
    lang = state.current_lang()
    preset = preset_mapping(gt_set, pred_set)
    st.markdown(f"**{tr('eval.map.title')}**")
    truth, model = tr(f"labelset.{gt_set.key}"), tr(f"labelset.{pred_set.key}")
    if preset is None:
        st.warning(tr("eval.map.no_match", truth=truth, model=model))
        start = mapping_by_name(gt_set, pred_set)
    else:
        st.info(tr("eval.map.preset", truth=truth, model=model, preset=tr(f"eval.map.preset.{preset.preset}")))
        start = preset
    gt_names = class_names(gt_set, lang)
    other = tr("eval.other")
    # The mapping itself is kept language-free (ids); the editor is per language.
    state_key = EVAL.mapping(gt_set.key, pred_set.key)
    current = st.session_state.get(state_key, start.pred_to_gt)
    frame = pd.DataFrame({
        tr("eval.map.model_class"): class_names(pred_set, lang),
        tr("eval.map.truth_class"): [other if g == OTHER else gt_names[g] for g in current],
    })
    with st.expander(tr("eval.map.edit"), expanded=preset is None):
        edited = st.data_editor(
            frame, hide_index=True, key=state.per_language(state_key, lang), disabled=[tr("eval.map.model_class")],
            column_config={tr("eval.map.truth_class"): st.column_config.SelectboxColumn(
                options=gt_names + [other], required=True)})
    targets = [gt_set.classes[gt_names.index(v)] if v in gt_names else "" for v in edited[tr("eval.map.truth_class")]]
    mapping = mapping_from_names(gt_set, pred_set, targets)
    st.session_state[state_key] = mapping.pred_to_gt
    if not mapping.reachable().any():
        st.error(tr("eval.map.nothing", truth=truth, model=model))
        return None
    if preset is not None and mapping.pred_to_gt == preset.pred_to_gt:
        mapping = preset
    unreachable = [gt_names[i] for i in np.flatnonzero(~mapping.reachable())]
    if unreachable:
        st.caption(tr("eval.map.unreachable", classes=", ".join(unreachable)))
    return mapping
