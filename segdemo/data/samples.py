"""Sample images for the gallery: shipped ones, plus dataset images when present."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segdemo import config


@dataclass(frozen=True)
class Sample:
    """One gallery image; ``mask`` is its ground truth when the dataset has one."""

    name: str
    path: Path
    source: str
    mask: Path | None = None


def shipped_samples() -> list[Sample]:
    """The photos in ``assets/samples`` (licenses in its LICENSES.md)."""
    return [Sample(p.stem, p, "segdemo") for p in sorted(config.SAMPLES_DIR.glob("*.jpg"))]


def dataset_samples(per_dataset: int = 4) -> list[Sample]:
    """A few images with ground truth from the data directory, if it is there."""
    root = config.data_dir()
    found: list[Sample] = []
    voc = root / "voc"
    for img in sorted((voc / "JPEGImages").glob("*.jpg"))[:per_dataset]:
        found.append(Sample(f"VOC {img.stem}", img, "voc", voc / "SegmentationClass" / f"{img.stem}.png"))
    camvid = root / "camvid"
    for img in sorted((camvid / "val").glob("*.png"))[:per_dataset]:
        found.append(Sample(f"CamVid {img.stem}", img, "camvid", camvid / "valannot" / img.name))
    isbi = root / "isbi2012" / "train"
    for img in sorted((isbi / "image").glob("*.png"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)[:per_dataset]:
        found.append(Sample(f"ISBI {img.stem}", img, "isbi", isbi / "label" / img.name))
    return found


def all_samples() -> list[Sample]:
    """Shipped samples first, then dataset samples."""
    return shipped_samples() + dataset_samples()


MICROSCOPY_SOURCES = frozenset({"isbi"})  # grey electron-microscope slices, not photos


def samples_for(label_set_key: str | None) -> list[Sample]:
    """The gallery for a model of ``label_set_key``: microscope slices only for the ISBI (cell
    membrane) model, photos only for every other model, everything when no model is given —
    so "select all" never feeds microscope slices to a street model or photos to the U-Net."""
    gallery = all_samples()
    if label_set_key is None:
        return gallery
    microscope = label_set_key == "isbi"
    return [s for s in gallery if (s.source in MICROSCOPY_SOURCES) == microscope]
