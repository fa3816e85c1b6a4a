"""Data sets on disk and their download: offline fails fast and clearly, only the data set
is extracted, a missing data set says how to get it."""

from __future__ import annotations

import io
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

from segdemo.cli import main
from segdemo.data import datasets, download


def test_download_fails_fast_and_clearly_offline(monkeypatch: pytest.MonkeyPatch, capsys,
                                                  tmp_path: Path) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    # The host answers the quick connect, then the transfer fails ...
    monkeypatch.setattr(download, "reachable", lambda url, timeout=3.0: True)
    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError, match="needs a network connection"):
        download.download_file("https://example.invalid/x.zip", tmp_path / "x.zip")
    assert list(tmp_path.iterdir()) == []  # no partial file left behind
    # ... or the host does not answer at all: nothing is created, the command says why.
    monkeypatch.setattr(download, "reachable", lambda url, timeout=3.0: False)
    with pytest.raises(ConnectionError, match="needs a network connection"):
        download.download_file("https://example.invalid/x.zip", tmp_path / "sub" / "x.zip")
    assert not (tmp_path / "sub").exists()
    assert main(["data", "download", "camvid", "--data-dir", "/nonexistent-segdemo"]) == 2
    assert "network" in capsys.readouterr().err


def test_download_of_a_non_archive_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys,
                                                    tmp_path: Path) -> None:
    """A captive portal answering with HTML: a message and exit status 2, no traceback, nothing written."""
    def captive_portal(url: str, target: Path, progress=None, **kwargs) -> Path:
        target.write_bytes(b"<html>please log in</html>")
        return target

    monkeypatch.setattr(datasets, "download_file", captive_portal)
    assert main(["data", "download", "isbi2012", "--data-dir", str(tmp_path)]) == 2
    assert "not a zip archive" in capsys.readouterr().err
    assert not (tmp_path / "isbi2012").exists()


def test_extract_keeps_only_the_data_set(tmp_path: Path) -> None:
    src = datasets.SOURCES["isbi2012"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(src.prefix + "train/image/0.png", b"img")
        zf.writestr(src.prefix + "train/label/0.png", b"lbl")
        zf.writestr(src.prefix + "test/0.png", b"test")
        zf.writestr(src.prefix + "train/aug/ignored.png", b"x")
        zf.writestr("unet-master/README.md", b"readme")
    n = datasets.extract(buf.getvalue(), src, tmp_path / "isbi2012")
    assert n == 3
    assert (tmp_path / "isbi2012" / "train" / "image" / "0.png").read_bytes() == b"img"
    assert not (tmp_path / "isbi2012" / "train" / "aug").exists()
    bad = io.BytesIO()
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr(src.prefix + "train/image/../../../../evil.png", b"x")
    with pytest.raises(ValueError, match="unsafe"):
        datasets.extract(bad.getvalue(), src, tmp_path / "isbi2012")


def test_missing_data_set_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(datasets.DatasetMissingError, match="data download camvid"):
        datasets.camvid_files("val", root=tmp_path)
    with pytest.raises(datasets.DatasetMissingError, match="data download isbi2012"):
        datasets.isbi_slice_ids(root=tmp_path)


def test_loaders_read_the_data_dir(data_dir: Path) -> None:
    files = datasets.camvid_files("val")
    assert len(files) == 101
    images, labels, names = datasets.load_camvid("val", size=(240, 180), indices=[0, 50])
    assert images.shape == (2, 180, 240, 3) and labels.shape == (2, 180, 240)
    assert labels.max() <= 11 and names[0] == files[0][0].name
    img, lbl = datasets.load_isbi_slice(0)
    assert img.shape == (512, 512) and set(np.unique(lbl)) == {0, 1}
    # cell interior (255 in the file) is class 1 and the majority
    assert lbl.mean() > 0.5
