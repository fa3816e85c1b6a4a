"""segdemo's own segmentation networks, written to be read next to the papers.

``BUILDERS`` maps the ``builder`` name used in model cards to a function that
builds the network with random initialisation.
"""

from __future__ import annotations

from typing import Any, Callable

BUILDERS: dict[str, Callable[..., Any]] = {}
