"""Failures are explained in the session's language (issue 10 defect 8): an offline download,
missing weights, a library's exception — never its English text or PyTorch's advice."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from segdemo import i18n
from segdemo.data import download
from segdemo.models import registry, weights
from segdemo.ui import errors, state

REPO = Path(__file__).resolve().parents[2]
CAT = (REPO / "assets" / "samples" / "cat.jpg").read_bytes()
HANGUL = range(0xAC00, 0xD7A4)


def _has_hangul(text: str) -> bool:
    return any(ord(c) in HANGUL for c in text)


@pytest.fixture
def korean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "current_lang", lambda: "ko")


def test_offline_download_is_said_in_korean(korean: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real download path with no network: the reason is the Korean catalogue text, naming the host."""
    monkeypatch.setattr(download, "reachable", lambda url, timeout=3.0: False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = registry.get("deeplabv3_resnet50")
    with pytest.raises(weights.WeightsMissingError) as info:
        weights.download(entry)
    said = errors.reason(info.value)
    assert said == i18n.t("download.unreachable", "ko", host="download.pytorch.org")
    assert _has_hangul(said) and "cannot reach" not in said
    assert "cannot reach download.pytorch.org" in str(info.value), "commands keep the English text"


@pytest.mark.parametrize("exc, key, values", [
    (RuntimeError("Weights only load failed ... re-running `torch.load` with `weights_only` set to `False`"),
     "error.unknown", {"kind": "RuntimeError"}),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "error.out_of_memory", {}),
    (FileNotFoundError(2, "No such file or directory", "/x/y/student.safetensors"), "error.file_missing",
     {"name": "student.safetensors"}),
    (download.DownloadError("download.corrupt", url="https://example.org/w.pth"), "download.corrupt",
     {"url": "https://example.org/w.pth"}),
])
def test_reasons_never_show_library_text(korean: None, exc: BaseException, key: str, values: dict) -> None:
    said = errors.reason(exc)
    assert said == i18n.t(key, "ko", **values)
    assert _has_hangul(said)
    assert "weights_only" not in said and "allocate" not in said and "No such file" not in said


def test_segment_page_says_missing_weights_in_korean(clear_streamlit_caches, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A torchvision model whose weights are not here, offline, on the Korean Segment page:
    the error names the file and says why in Korean; no traceback."""
    monkeypatch.setattr(download, "reachable", lambda url, timeout=3.0: False)
    monkeypatch.setenv("SEGDEMO_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("SEGDEMO_ALLOW_RANDOM_WEIGHTS", "0")
    at = AppTest.from_file(str(REPO / "pages" / "1_Segment.py"), default_timeout=180)
    at.session_state["lang"] = "ko"
    at.session_state["arch"] = "DeepLabV3"
    at.session_state["backbone"] = "ResNet-50"
    at.run()
    at.file_uploader(key="segment_uploader").set_value([("cat.jpg", CAT, "image/jpeg")]).run()
    assert not at.exception
    shown = " ".join(e.value for e in at.error)
    entry = registry.get("deeplabv3_resnet50")
    assert i18n.t("download.unreachable", "ko", host="download.pytorch.org") in shown
    assert "cannot reach" not in shown and "Traceback" not in shown
    assert entry.weights.filename in " ".join(i.value for i in at.info)
