"""Both catalogues have the same keys and placeholders, and every key the code uses exists."""

from __future__ import annotations

import re
import string
from pathlib import Path

from segdemo import i18n

REPO = Path(__file__).resolve().parents[3]


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_same_keys_in_both_languages():
    en, ko = i18n.catalogue("en"), i18n.catalogue("ko")
    assert set(en) == set(ko), sorted(set(en) ^ set(ko))


def test_same_placeholders_in_both_languages():
    en, ko = i18n.catalogue("en"), i18n.catalogue("ko")
    for key in en:
        assert _fields(en[key]) == _fields(ko[key]), key


def test_every_literal_key_used_in_code_exists():
    pattern = re.compile(r"""\b(?:tr|t|i18n\.t)\(\s*["']([a-z0-9_]+(?:\.[A-Za-z0-9_\-]+)+)["']""")
    sources = list((REPO / "segdemo").rglob("*.py")) + list((REPO / "pages").glob("*.py")) + [REPO / "app.py"]
    catalogue = i18n.catalogue("en")
    missing = []
    for path in sources:
        for key in pattern.findall(path.read_text(encoding="utf-8")):
            if key not in catalogue:
                missing.append(f"{path.name}: {key}")
    assert not missing, missing


def test_korean_catalogue_is_korean():
    ko = i18n.catalogue("ko")
    hangul = sum(bool(re.search("[\uac00-\ud7a3]", v)) for v in ko.values())
    assert hangul / len(ko) > 0.8


def test_class_names_translated():
    assert i18n.class_name("voc", "person", "ko") == "사람"
    assert i18n.class_name("camvid", "Road", "en") == "Road"
