"""Streamlit's own file-uploader strings in the session's language, as far as CSS can reach them.

Streamlit 1.67 has no parameter for the upload button's text or the dropzone's
"200MB per file • JPG, PNG" line (streamlit/streamlit#13500, open). CSS can hide a
text and draw another in its place, so in Korean the button and the limit line
are drawn from the catalogue; the accepted types are matched by the file input's
``accept`` attribute. Where Streamlit changes its markup these rules stop matching
and its English text shows again — nothing breaks. The camera's button is drawn
the same way ("Take Photo" while the video shows, "Clear photo" once a picture is
taken); the camera-permission prompt, the multiselect's "Select all" and the
browser's own file dialog stay in English / the browser's language.
"""

from __future__ import annotations

from typing import Sequence

import streamlit as st

from segdemo import i18n

_ZONE = '[data-testid="stFileUploaderDropzone"]'
_BUTTON_TEXT = f'{_ZONE} [data-testid="stBaseButton-secondary"] [data-testid="stMarkdownContainer"] p'
_LIMIT_TEXT = f'{_ZONE} [data-testid="stFileUploaderDropzoneInstructions"] span'
_CAMERA = '[data-testid="stCameraInput"]'
_CAMERA_BUTTON = '[data-testid="stCameraInputButton"]'

# Streamlit shows one name for these pairs
_SHOWN_AS = {"jpeg": "jpg", "tiff": "tif"}


def _types_text(types: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(_SHOWN_AS.get(t, t).upper() for t in types))


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def uploader_css(lang: str, type_lists: Sequence[Sequence[str]], max_mb: int) -> str:
    """The CSS that draws the uploaders' built-in texts in ``lang`` ("" for English: Streamlit's own).

    ``type_lists`` are the ``type=`` lists the app's uploaders use; a dropzone whose
    input accepts exactly one of them gets that list after the size limit.
    """
    if lang == "en":
        return ""
    limit = i18n.t("input.upload_limit", lang, mb=max_mb)
    rules = [
        f"{_BUTTON_TEXT} {{ font-size: 0; }}",
        f"{_BUTTON_TEXT}::after {{ content: {_css_string(i18n.t('input.upload_button', lang))}; font-size: 0.875rem; }}",
        f"{_LIMIT_TEXT} {{ font-size: 0; }}",
        f"{_LIMIT_TEXT}::after {{ content: {_css_string(limit)}; font-size: 0.875rem; }}",
        f"{_CAMERA} {_CAMERA_BUTTON} {{ font-size: 0; }}",
        f"{_CAMERA} {_CAMERA_BUTTON}::after {{ content: {_css_string(i18n.t('input.camera_take', lang))}; "
        "font-size: 1rem; }",
        f"{_CAMERA}:has(img) {_CAMERA_BUTTON}::after {{ content: {_css_string(i18n.t('input.camera_clear', lang))}; }}",
    ]
    for types in type_lists:
        accept = ",".join(f".{t}" for t in types)
        rules.append(f'{_ZONE}:has(input[accept$="{accept}"]) [data-testid="stFileUploaderDropzoneInstructions"] '
                     f"span::after {{ content: {_css_string(limit + ' • ' + _types_text(types))}; }}")
    return "<style>\n" + "\n".join(rules) + "\n</style>"


def translate_uploaders(lang: str) -> None:
    """Draw the uploaders' built-in texts in ``lang`` on this page (no-op in English)."""
    from segdemo.data.images import UPLOAD_TYPES
    from segdemo.models.weights import CHECKPOINT_TYPES

    css = uploader_css(lang, [UPLOAD_TYPES, CHECKPOINT_TYPES, ("png",), ("json",), ("zip", *UPLOAD_TYPES)],
                       int(st.get_option("server.maxUploadSize")))
    if css:
        st.html(css)
