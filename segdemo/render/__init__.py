"""Turning label maps and scores into pictures: colourised masks, overlays,
outlines, views, heat maps (matplotlib's colour maps) and figure drawing (OpenCV)."""
