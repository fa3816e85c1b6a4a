"""Shared test setup.

Layout: ``unit/<subpackage>/`` mirrors ``segdemo/``, ``pages/`` runs the pages
in Streamlit's AppTest, ``e2e/`` drives the app in Chromium. Markers (see
pytest.ini) are set here from what a test uses, so ``-m "not slow"`` or
``-m "not browser"`` select by cost: ``data`` for tests with the ``data_dir``
fixture, ``browser`` for ``e2e/``, ``gpu`` tests are skipped without CUDA.

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

# Once for the whole run (threads started later inherit it): one thread keeps
# timings comparable and leaves the second core to Streamlit's script threads.
torch.set_num_threads(1)

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Markers from what a test needs: its fixtures, its folder, the machine."""
    no_cuda = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if "data_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)
        if Path(str(item.fspath)).parent.name == "e2e":
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)  # a server and a browser per module
        if item.get_closest_marker("gpu") and not torch.cuda.is_available():
            item.add_marker(no_cuda)
