"""Shared test setup.

Without network, torchvision's weights are absent: tests build those models
with random weights (SEGDEMO_ALLOW_RANDOM_WEIGHTS=1) unless the real file is in
the weights folder. Tests that need the datasets read ``$SEGDEMO_DATA_DIR``
(.ci/run points it at ../shared/data) and skip only when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("SEGDEMO_ALLOW_RANDOM_WEIGHTS", "1")

import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_dir() -> Path:
    """The dataset folder; skips the test when it is not there."""
    from segdemo import config

    root = config.data_dir()
    if not root.is_dir():
        pytest.skip(f"data directory {root} absent (set SEGDEMO_DATA_DIR)")
    return root


@pytest.fixture
def clear_streamlit_caches():
    """Isolate tests that depend on st.cache_resource state."""
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
