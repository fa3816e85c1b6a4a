"""Ready-made evaluation inputs from the data directory (when it is configured)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segdemo import config


@dataclass(frozen=True)
class AnnotatorExample:
    """One image annotated twice: the official mask and an independent second one."""

    name: str
    label_set_key: str
    image: Path
    first: Path
    second: Path


@dataclass(frozen=True)
class BatchExample:
    """A set of image/mask files (relative names -> paths) in one label set."""

    name: str
    label_set_key: str
    files: dict[str, Path]


def annotator_examples() -> list[AnnotatorExample]:
    """VOC images that have a second, independent annotation."""
    voc = config.data_dir() / "voc"
    return [AnnotatorExample(f"VOC {p.stem}", "voc", voc / "JPEGImages" / f"{p.stem}.jpg",
                             voc / "SegmentationClass" / p.name, p)
            for p in sorted((voc / "SegmentationClass_second_annotator").glob("*.png"))
            if (voc / "SegmentationClass" / p.name).is_file() and (voc / "JPEGImages" / f"{p.stem}.jpg").is_file()]


def batch_examples(camvid_count: int = 12) -> list[BatchExample]:
    """The VOC samples, and the first CamVid val frames, as image/mask file sets."""
    root = config.data_dir()
    found = []
    voc = root / "voc"
    if (voc / "SegmentationClass").is_dir():
        files = {f"JPEGImages/{p.name}": p for p in sorted((voc / "JPEGImages").glob("*.jpg"))}
        files.update({f"SegmentationClass/{p.name}": p for p in sorted((voc / "SegmentationClass").glob("*.png"))})
        found.append(BatchExample(f"VOC ({len(files) // 2})", "voc", files))
    camvid = root / "camvid"
    if (camvid / "valannot").is_dir():
        frames = sorted((camvid / "val").glob("*.png"))[:camvid_count]
        files = {f"val/{p.name}": p for p in frames}
        files.update({f"valannot/{p.name}": camvid / "valannot" / p.name for p in frames
                      if (camvid / "valannot" / p.name).is_file()})
        found.append(BatchExample(f"CamVid val ({len(frames)})", "camvid", files))
    return found
