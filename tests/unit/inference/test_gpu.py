"""On a CUDA device the shipped models give the CPU's labels (float32) and nearly so in float16."""

from __future__ import annotations

import numpy as np
import pytest

from segdemo import config
from segdemo.data.images import load_image_file
from segdemo.inference.pipeline import predict
from segdemo.models import registry, weights


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["fcn8s_camvid", "unet_isbi2012"])
def test_cuda_labels_match_the_cpu(name: str) -> None:
    entry = registry.get(name)
    rgb = load_image_file(str(config.SAMPLES_DIR / "cat.jpg")).rgb
    cpu = predict(weights.load_model(entry, device="cpu", allow_random=False), entry, rgb, 240, "cpu")
    gpu = predict(weights.load_model(entry, device="cuda", allow_random=False), entry, rgb, 240, "cuda")
    half = predict(weights.load_model(entry, device="cuda", half=True, allow_random=False), entry, rgb, 240,
                   "cuda", half=True)
    assert gpu.device.startswith("cuda") and gpu.labels.shape == cpu.labels.shape
    assert np.mean(gpu.labels == cpu.labels) > 0.999  # float32 on both: rounding-level differences only
    assert np.mean(half.labels == cpu.labels) > 0.98  # float16: a few boundary pixels may flip
