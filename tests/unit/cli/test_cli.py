"""The command line: predict writes palette label maps and overlays; weights list runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from segdemo.models import registry
from segdemo.models import weights
from segdemo.cli import main
from segdemo.data.images import load_image_file
from segdemo.inference.pipeline import predict

REPO = Path(__file__).resolve().parents[3]


def test_predict_writes_label_maps_equal_to_the_library_call(tmp_path, capsys):
    image = REPO / "assets" / "samples" / "cat.jpg"
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    code = main(["predict", str(image), str(bad), "--model", "lraspp_mobilenet_v3_large", "--out",
                 str(tmp_path / "out"), "--size", "256"])
    assert code == 1  # one file was skipped
    assert "bad.png" in capsys.readouterr().err
    labels = Image.open(tmp_path / "out" / "cat_labels.png")
    assert labels.mode == "P"
    entry = registry.get("lraspp_mobilenet_v3_large")
    expected = predict(weights.load_model(entry), entry, load_image_file(str(image)).rgb, 256).labels
    np.testing.assert_array_equal(np.asarray(labels), expected)
    assert Image.open(tmp_path / "out" / "cat_overlay.png").size == labels.size


def test_weights_list_shows_every_model():
    result = subprocess.run([sys.executable, "-m", "segdemo", "weights", "list"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for entry in registry.list_models():
        assert entry.name in result.stdout
    assert "missing" in result.stdout or "cached" in result.stdout
