"""The CSS that draws Streamlit's uploader strings from the catalogue (segdemo.ui.builtin_text)."""

from __future__ import annotations

from segdemo import i18n
from segdemo.data.images import UPLOAD_TYPES
from segdemo.ui.builtin_text import uploader_css


def test_english_keeps_streamlits_own_text() -> None:
    assert uploader_css("en", [UPLOAD_TYPES], 200) == ""


def test_korean_rules_name_the_limit_and_each_type_list() -> None:
    css = uploader_css("ko", [UPLOAD_TYPES, ("png",), ("zip", *UPLOAD_TYPES)], 123)
    limit = i18n.t("input.upload_limit", "ko", mb=123)
    assert f'content: "{i18n.t("input.upload_button", "ko")}"' in css
    assert f'content: "{limit}"' in css
    # one rule per list, matched on the input's accept attribute; jpeg/tiff shown once, as Streamlit does
    assert 'input[accept$=".jpg,.jpeg,.png,.webp,.bmp,.tif,.tiff,.gif"]' in css
    assert f'"{limit} • JPG, PNG, WEBP, BMP, TIF, GIF"' in css
    assert f'"{limit} • PNG"' in css
    # the zip list comes after the image list it ends with, so it wins for the zip uploader
    assert css.index("ZIP, JPG") > css.index(f'"{limit} • JPG')
