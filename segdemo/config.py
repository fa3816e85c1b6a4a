"""Where segdemo looks for data, weights and shipped assets.

Every location is configurable through an environment variable so that a
classroom laptop, CI and a developer machine can each point at their own copy.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
ASSETS_DIR = REPO_DIR / "assets"
SHIPPED_MODELS_DIR = ASSETS_DIR / "models"
SAMPLES_DIR = ASSETS_DIR / "samples"


def _env_path(var: str, default: Path) -> Path:
    value = os.environ.get(var, "").strip()
    return Path(value).expanduser() if value else default


def data_dir() -> Path:
    """Root of the datasets (CamVid, ISBI 2012, VOC samples): ``$SEGDEMO_DATA_DIR``."""
    return _env_path("SEGDEMO_DATA_DIR", Path.home() / ".cache" / "segdemo" / "data")


def weights_dir() -> Path:
    """Folder searched first for model weights: ``$SEGDEMO_WEIGHTS_DIR``."""
    return _env_path("SEGDEMO_WEIGHTS_DIR", Path.home() / ".cache" / "segdemo" / "weights")


def torch_hub_checkpoints_dir() -> Path:
    """The usual torch cache (``$TORCH_HOME/hub/checkpoints``) where downloads land."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def allow_random_weights() -> bool:
    """Whether a model whose weights are missing may run with random weights.

    Only for tests and offline development (``SEGDEMO_ALLOW_RANDOM_WEIGHTS=1``):
    the page then says loudly that the output is meaningless.
    """
    return os.environ.get("SEGDEMO_ALLOW_RANDOM_WEIGHTS", "") in {"1", "true", "yes"}
