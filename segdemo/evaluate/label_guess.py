"""Which label set a ground-truth mask is drawn in, read from the mask itself.

A mask file does not name its classes. Reading a CamVid mask (ids 0..10,
11 = void) with the PASCAL VOC classes gives numbers that look plausible and
are wrong (bird, boat, bottle...), so the Evaluate page and ``segdemo eval``
never take the label set on trust: they look at

* a palette PNG's colours: do the used indices carry one label set's colours?
* a colour-coded mask's colours: does every colour belong to one set's palette?
* an index mask's values: do they fit a set's id range plus its ignore value?
  Is that set's ignore value (CamVid's 11, VOC's 255) actually present? A
  0/255 mask is a two-class set's (ISBI) binary mask.

and then prefer, among the sets the mask fits, the one with direct evidence,
then the model's own set, then the smallest. The guess says why and which
other sets would also fit, so the page states it before any score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from segdemo.data.images import ImageError, open_image
from segdemo.data.labels import LABEL_SETS, LabelSet


@dataclass(frozen=True)
class LabelGuess:
    """The label set a mask is read in, and the evidence for it.

    ``key`` is the chosen label set; ``fits`` every set the mask is consistent
    with (empty when none is); ``reason`` a catalogue key
    (``eval.guess.<reason>``) with ``values`` to fill it in; ``ambiguous`` is
    true when other sets fit equally well and no direct evidence decided.
    """

    key: str
    fits: tuple[str, ...]
    reason: str
    values: dict[str, object] = field(default_factory=dict)
    ambiguous: bool = False

    @property
    def fits_any(self) -> bool:
        return bool(self.fits)


def _value_range(values: list[int]) -> str:
    """"0–11" for a run of values, else the list ("0, 1, 15, 255")."""
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}–{values[-1]}"
    shown = ", ".join(str(v) for v in values[:12])
    return shown + (", …" if len(values) > 12 else "")


def _index_fits(values: set[int], ls: LabelSet) -> tuple[bool, bool]:
    """(the values fit ``ls``, direct evidence for ``ls``) for an index mask."""
    n = ls.num_classes
    if n == 2 and values == {0, 255}:
        return True, True  # a binary 0/255 mask of a two-class set (as ISBI ships them); all-255 is VOC void
    ignore = ls.ignore_index
    classes = {v for v in values if 0 <= v < n}
    rest = values - classes - ({ignore} if ignore is not None else set())
    if rest:
        return False, False
    # The set's own ignore value present, next to at least two real classes:
    # {0, 255} alone (background + void) is no evidence for VOC.
    direct = ignore is not None and ignore >= n and ignore in values and len(classes) >= 2
    return True, direct


def _palette_fits(pal: np.ndarray, used: list[int], ls: LabelSet) -> tuple[bool, bool]:
    """Palette mask: ids in range and (evidence) the used indices carry ``ls``'s colours."""
    fits, _ = _index_fits(set(used), ls)
    lut = ls.palette_array().astype(np.int64)
    colours_match = all(i < len(pal) and tuple(pal[i]) == tuple(lut[i]) for i in used)
    return fits, fits and colours_match


def _colour_fits(rgb: np.ndarray, ls: LabelSet) -> tuple[float, bool]:
    """Share of pixels whose colour is in ``ls``'s palette (class colours or its ignore colour)."""
    from segdemo.evaluate.masks import colour_table  # here: masks imports nothing of this module

    keys = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    uniq, counts = np.unique(keys.reshape(-1), return_counts=True)
    table = {(r << 16) | (g << 8) | b for (r, g, b) in colour_table(ls, ls.ignore_index)}
    known = sum(int(n) for k, n in zip(uniq, counts) if int(k) in table)
    return known / max(1, int(counts.sum())), known == int(counts.sum())


# Label sets that are a subset of another's meaning (person vs background: VOC's "person" and
# background) are only guessed for their own models; a VOC mask with ids 0/1 is not "person".
ONLY_FOR_OWN_MODELS = frozenset({"person"})


def _candidates(model_key: str | None) -> dict[str, LabelSet]:
    """The label sets a mask may be read as, for a model of ``model_key``."""
    return {k: ls for k, ls in LABEL_SETS.items() if k not in ONLY_FOR_OWN_MODELS or k == model_key}


def _rank(fits: dict[str, tuple[bool, bool]], model_key: str | None) -> list[str]:
    """Sets that fit, best first: direct evidence, then the model's set, then the smallest."""
    ok = [k for k, (f, _) in fits.items() if f]
    return sorted(ok, key=lambda k: (not fits[k][1], k != model_key, LABEL_SETS[k].num_classes))


def guess_label_set(data: bytes, name: str, model_key: str | None = None) -> LabelGuess:
    """The label set ``data`` (a mask file) is drawn in; see the module docstring.

    ``model_key`` is the model's label set, preferred when the mask alone does
    not decide. A file that cannot be opened gives the model's set (the mask
    decoder then says what is wrong with the file).
    """
    fallback = model_key if model_key in LABEL_SETS else "voc"
    try:
        img: Image.Image = open_image(data, name)
    except ImageError:
        return LabelGuess(fallback, (), "unreadable")
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
    mode = img.mode
    if mode in ("RGB", "RGBA"):
        rgb = np.asarray(img.convert("RGB"))
        grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
        shares = {k: _colour_fits(rgb, ls) for k, ls in _candidates(model_key).items()}
        if not grey or any(full for _, full in shares.values()):
            full = {k: (f, f) for k, (_, f) in shares.items()}
            ranked = _rank(full, model_key)
            if ranked:
                return LabelGuess(ranked[0], tuple(ranked), "colours", {"labels": ranked[0]},
                                  ambiguous=len(ranked) > 1)  # VOC and CamVid share several colours
            best = max(shares, key=lambda k: shares[k][0])
            return LabelGuess(fallback, (), "colours_none", {"labels": best, "share": f"{shares[best][0]:.0%}"})
        values_arr = rgb[..., 0]
    elif mode in ("P", "PA"):
        values_arr = np.asarray(img if mode == "P" else img.getchannel(0))
        used = [int(v) for v in np.unique(values_arr)]
        if img.palette is not None and img.palette.mode == "RGB":
            pal = np.asarray(img.getpalette() or [], dtype=np.int64).reshape(-1, 3)
            fits = {k: _palette_fits(pal, used, ls) for k, ls in _candidates(model_key).items()}
            ranked = _rank(fits, model_key)
            if ranked and fits[ranked[0]][1]:
                return LabelGuess(ranked[0], tuple(ranked), "palette",
                                  {"labels": ranked[0], "values": _value_range(used)})
    elif mode in ("L", "1", "I", "I;16", "I;16B", "I;16L", "LA"):
        values_arr = np.asarray(img.getchannel(0) if mode == "LA" else img)
    else:
        return LabelGuess(fallback, (), "unreadable")

    used = [int(v) for v in np.unique(np.asarray(values_arr, dtype=np.int64))]
    fits = {k: _index_fits(set(used), ls) for k, ls in _candidates(model_key).items()}
    ranked = _rank(fits, model_key)
    shown = _value_range(used)
    if not ranked:
        return LabelGuess(fallback, (), "values_none", {"values": shown, "labels": fallback})
    best = ranked[0]
    ls = LABEL_SETS[best]
    if fits[best][1]:
        if ls.num_classes == 2 and set(used) == {0, 255}:
            return LabelGuess(best, tuple(ranked), "binary", {"labels": best})
        return LabelGuess(best, tuple(ranked), "ignore_value",
                          {"labels": best, "values": shown, "ignore": ls.ignore_index})
    reason = "model_set" if best == model_key else "smallest"
    return LabelGuess(best, tuple(ranked), reason, {"labels": best, "values": shown},
                      ambiguous=len(ranked) > 1)
