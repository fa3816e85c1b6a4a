"""Colour maps for value pictures (confidence, entropy, heat maps): matplotlib's own.

A 256-entry lookup table is built once per map, so mapping a 12-MP array is one
indexing pass (no per-pixel interpolation).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=8)
def lookup_table(name: str = "viridis") -> np.ndarray:
    """The 256 x 3 uint8 RGB table of matplotlib's colour map ``name``."""
    import matplotlib  # imported here: only value pictures need it

    cmap = matplotlib.colormaps[name]
    return (cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def apply_colormap(values: np.ndarray, vmin: float = 0.0, vmax: float = 1.0, name: str = "viridis") -> np.ndarray:
    """``values`` scaled from [vmin, vmax] and mapped through ``name`` (viridis: dark = low, yellow = high)."""
    t = (np.asarray(values, dtype=np.float32) - vmin) * (255.0 / max(vmax - vmin, 1e-12))
    index = np.clip(t + 0.5, 0, 255).astype(np.uint8)  # +0.5: round to the nearest table entry
    return lookup_table(name)[index]
