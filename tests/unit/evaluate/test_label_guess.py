"""Reading the truth's label set from the mask: real dataset masks and hand-made ones."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segdemo.data.labels import CAMVID, VOC
from segdemo.evaluate.label_guess import guess_label_set
from segdemo.render.overlay import label_png_bytes


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.data
@pytest.mark.parametrize("model_key", ["voc", "camvid", "isbi", None])
def test_real_masks_are_read_in_their_own_label_set_whatever_the_model(data_dir: Path, model_key) -> None:
    camvid = sorted((data_dir / "camvid" / "valannot").glob("*.png"))[0]
    voc = sorted((data_dir / "voc" / "SegmentationClass").glob("*.png"))[0]
    isbi = data_dir / "isbi2012" / "train" / "label" / "0.png"
    g = guess_label_set(camvid.read_bytes(), camvid.name, model_key)
    assert (g.key, g.reason, g.values["ignore"]) == ("camvid", "ignore_value", 11)
    assert "voc" in g.fits  # ids 0..11 are VOC ids too: only the void value 11 decides
    g = guess_label_set(voc.read_bytes(), voc.name, model_key)
    assert (g.key, g.reason) == ("voc", "palette")
    g = guess_label_set(isbi.read_bytes(), isbi.name, model_key)
    assert (g.key, g.reason) == ("isbi", "binary")


def test_index_values_decide_or_the_model_does() -> None:
    voc_ids = np.array([[0, 15], [255, 8]], dtype=np.uint8)  # person, cat, void: only VOC fits
    assert guess_label_set(_png(voc_ids), "m.png", "camvid").key == "voc"
    small = np.array([[0, 3], [1, 2]], dtype=np.uint8)  # fits VOC and CamVid: nothing in the mask decides
    g = guess_label_set(_png(small), "m.png", "voc")
    assert (g.key, g.reason, g.ambiguous) == ("voc", "model_set", True)
    assert guess_label_set(_png(small), "m.png", "camvid").key == "camvid"
    void = np.full((4, 4), 255, dtype=np.uint8)  # all void: VOC's ignore value, not an ISBI binary mask
    assert guess_label_set(_png(void), "m.png", "isbi").key == "voc"
    g = guess_label_set(_png(np.array([[0, 40]], dtype=np.uint8)), "m.png", "camvid")
    assert (g.fits, g.reason, g.key) == ((), "values_none", "camvid")


def test_palette_and_colour_masks_are_read_by_their_colours() -> None:
    ids = np.array([[0, 3], [8, 11]], dtype=np.uint8)
    g = guess_label_set(label_png_bytes(ids, CAMVID), "m.png", "voc")  # segdemo's own CamVid palette PNG
    assert (g.key, g.reason) == ("camvid", "palette")
    rgb = np.asarray(CAMVID.colors, dtype=np.uint8)[[[0, 3], [8, 4]]]
    g = guess_label_set(_png(rgb), "m.png", "voc")
    assert (g.key, g.reason) == ("camvid", "colours")
    rgb = np.asarray(VOC.colors, dtype=np.uint8)[[[0, 15], [2, 1]]]  # bicycle green is no CamVid colour
    assert guess_label_set(_png(rgb), "m.png", "camvid").key == "voc"
    # VOC person / aeroplane / background are CamVid SignSymbol / Building / void: both fit, the model decides
    rgb = np.asarray(VOC.colors, dtype=np.uint8)[[[0, 15], [1, 1]]]
    g = guess_label_set(_png(rgb), "m.png", "camvid")
    assert (g.key, g.ambiguous, set(g.fits)) == ("camvid", True, {"camvid", "voc"})
    odd = np.full((2, 2, 3), 7, dtype=np.uint8)
    odd[0, 0] = (1, 2, 3)
    g = guess_label_set(_png(odd), "m.png", "voc")
    assert (g.reason, g.fits) == ("colours_none", ())


def test_person_set_only_for_its_own_models() -> None:
    """A VOC mask with background and aeroplane (0/1) is not read as person vs background,
    unless the model is the person model (then its own set wins the tie)."""
    ids = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    assert guess_label_set(_png(ids), "m.png", "voc").key == "voc"
    assert guess_label_set(_png(ids), "m.png", "person").key == "person"
    assert guess_label_set(_png(np.full((4, 4), 255, np.uint8)), "m.png", "isbi").key == "voc"
