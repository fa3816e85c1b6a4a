"""Korean and English strings: one catalogue per language.

A language's catalogue is the folder ``segdemo/i18n/locales/<lang>/``; its JSON files
(one per area of the app, so pages can be edited independently) are merged into
one flat ``key -> text`` dictionary. A key may appear in only one file, and both
languages must have the same keys (tests check both).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

LANGUAGES: dict[str, str] = {"ko": "한국어", "en": "English"}
DEFAULT_LANGUAGE = "ko"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    """The merged catalogue of ``lang``; raises on a key defined twice."""
    if lang not in LANGUAGES:
        raise KeyError(f"unknown language {lang!r}")
    merged: dict[str, str] = {}
    for path in sorted((LOCALES_DIR / lang).glob("*.json")):
        part = json.loads(path.read_text(encoding="utf-8"))
        for key, text in part.items():
            if key in merged:
                raise ValueError(f"{lang}: key {key!r} defined twice (again in {path.name})")
            merged[key] = text
    return merged


def t(key: str, lang: str = DEFAULT_LANGUAGE, **values: object) -> str:
    """The text for ``key`` in ``lang``, formatted with ``values``.

    A missing key raises KeyError: an untranslated string is a bug the tests catch.
    """
    text = catalogue(lang)[key]
    return text.format(**values) if values else text


def class_name(label_set_key: str, class_name_en: str, lang: str) -> str:
    """A class name in ``lang`` (catalogue key ``class.<labelset>.<name>``)."""
    return catalogue(lang).get(f"class.{label_set_key}.{class_name_en}", class_name_en)
