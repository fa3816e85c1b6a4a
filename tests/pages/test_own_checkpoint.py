"""A refused own checkpoint is explained in the session's language, never with PyTorch's raw text or advice."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from segdemo import i18n

REPO = Path(__file__).resolve().parents[2]


class _NotAWeight:
    pass


def _bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_refused_checkpoints_are_explained_without_raw_pytorch_text(lang: str) -> None:
    at = AppTest.from_file(str(REPO / "pages" / "1_Segment.py"), default_timeout=120)  # no image: no model run
    at.session_state["lang"] = lang
    at.run()
    cases = {"evil.pth": (_bytes({"w": torch.zeros(2), "obj": _NotAWeight()}), "sidebar.ckpt.unsafe"),
             "wrong.pth": (_bytes({"conv.weight": torch.zeros(3, 3, 3, 3)}), "sidebar.ckpt.mismatch"),
             "cut.pth": (b"PK\x03\x04 not really", "sidebar.ckpt.unreadable")}
    for name, (data, key) in cases.items():
        at.sidebar.file_uploader(key="own_checkpoint").set_value((name, data, "application/octet-stream")).run()
        assert not at.exception
        shown = " ".join(e.value for e in at.sidebar.error)
        assert name in shown
        assert "weights_only=False" not in shown and "Traceback" not in shown and "Unpickl" not in shown
        expected = i18n.t(key, lang, arch="", labels="").split("(")[0].split("{")[0][:20]
        assert expected in shown, (key, shown)
