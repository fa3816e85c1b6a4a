"""segdemo.inference.bench: structure of one tiny run, the agreement measure, the table and the CLI.

No timing assertions: the machine is shared and timings are noise here.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import torch

from segdemo.cli import bench as bench_cli
from segdemo.cli import main
from segdemo import config
from segdemo.inference import bench
from segdemo.models import registry

TINY_MODEL = "lraspp_mobilenet_v3_large"  # the smallest torchvision model
TINY_SIZE = 64
SAMPLE = config.SAMPLES_DIR / "cat.jpg"  # 451x300


@pytest.fixture(scope="module")
def tiny_result() -> bench.BenchResult:
    results = bench.run_benchmark([TINY_MODEL], size=TINY_SIZE, repeats=2, warmup=1, device="cpu",
                                  allow_random=True, image_path=SAMPLE)
    assert len(results) == 1
    return results[0]


def test_label_agreement_identical_maps_is_one() -> None:
    labels = np.random.default_rng(0).integers(0, 21, size=(37, 53), dtype=np.uint8)
    assert bench.label_agreement(labels, labels.copy()) == 1.0


def test_label_agreement_hand_worked() -> None:
    a = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    b = np.array([[0, 1], [5, 5]], dtype=np.uint8)  # 2 of 4 pixels agree
    assert bench.label_agreement(a, b) == 0.5
    assert bench.label_agreement(a, np.full_like(a, 9)) == 0.0
    c = np.zeros((3, 4), np.uint8)
    d = c.copy()
    d[0, :3] = 1  # 3 of 12 differ
    assert bench.label_agreement(c, d) == pytest.approx(0.75)


def test_label_agreement_rejects_different_shapes() -> None:
    with pytest.raises(ValueError):
        bench.label_agreement(np.zeros((2, 3)), np.zeros((3, 2)))


def test_tiny_run_structure(tiny_result: bench.BenchResult) -> None:
    r = tiny_result
    assert r.model == TINY_MODEL
    assert r.device == "cpu" and r.repeats == 2 and not r.half
    assert r.image == "cat.jpg" and r.image_size == (451, 300)
    # shorter side (height 300) resized to 64, width scaled alike
    assert r.input_size == (TINY_SIZE, int(TINY_SIZE * 451 / 300))
    for value in (r.bare_ms, r.whole_ms, r.reference_ms, r.overhead_ms, r.reference_overhead_ms):
        assert math.isfinite(value) and value > 0
    assert set(r.whole_stages_ms) == {"decode", "preprocess", "forward", "postprocess", "overlay"}
    assert set(r.reference_stages_ms) == {"decode", "transforms", "forward", "upsample+argmax", "draw"}
    assert r.whole_over_bare == pytest.approx(r.whole_ms / r.bare_ms)
    assert r.whole_over_reference == pytest.approx(r.whole_ms / r.reference_ms)
    assert r.normalised_whole_over_bare == pytest.approx((r.bare_ms + r.overhead_ms) / r.bare_ms)
    assert r.normalised_whole_over_reference == pytest.approx(
        (r.bare_ms + r.overhead_ms) / (r.bare_ms + r.reference_overhead_ms))
    assert r.meets_goal == (r.bare_ms + r.overhead_ms <= 1.10 * r.bare_ms
                            and r.overhead_ms < r.reference_overhead_ms)
    # the stage times add up to the path's time (each run's laps sum to its total)
    assert sum(r.whole_stages_ms.values()) == pytest.approx(r.whole_ms, rel=0.5)


def test_tiny_run_random_flag_matches_weights_on_disk(tiny_result: bench.BenchResult) -> None:
    from segdemo.models import weights

    assert tiny_result.random_weights == (weights.locate(registry.get(TINY_MODEL)) is None)


def test_tiny_run_agreement_is_the_pixel_fraction(tiny_result: bench.BenchResult) -> None:
    a, b = tiny_result.labels_segdemo, tiny_result.labels_reference
    assert a is not None and b is not None
    assert a.shape == b.shape == (300, 451)  # both at the original image size
    assert tiny_result.agreement == pytest.approx(np.mean(a == b))
    # Same model, same image, equivalent preprocessing: the two pipelines mostly agree.
    assert tiny_result.agreement > 0.9


def test_reference_labels_follow_torchvision_recipe() -> None:
    """The reference path's labels equal an independent run of torchvision's documented recipe."""
    import io

    import torch.nn.functional as F
    from PIL import Image
    from torchvision.models import get_model_weights

    from segdemo.models import weights

    entry = registry.get(TINY_MODEL)
    model = weights.load_model(entry, allow_random=True)
    data = SAMPLE.read_bytes()
    clock = bench._Clock("cpu")
    with torch.inference_mode():
        labels, drawn = bench.run_reference(model, entry, data, bench.reference_transforms(entry, TINY_SIZE),
                                            "cpu", torch.float32, clock)
        pil = Image.open(io.BytesIO(data)).convert("RGB")
        tf = get_model_weights(TINY_MODEL).COCO_WITH_VOC_LABELS_V1.transforms(resize_size=TINY_SIZE)
        out = model.net(tf(pil)[None])["out"]
        expected = F.interpolate(out, size=(pil.height, pil.width), mode="bilinear").argmax(1)[0]
    np.testing.assert_array_equal(labels, expected.numpy())
    assert drawn.shape == (3, pil.height, pil.width) and drawn.dtype == torch.uint8
    # Drawn with the label set's fixed palette at the app's opacity, as draw_segmentation_masks blends.
    rgb = np.asarray(pil).astype(np.float64)
    palette = np.asarray(entry.label_set.colors, dtype=np.float64)
    blended = rgb * (1 - bench.OPACITY) + palette[labels] * bench.OPACITY
    np.testing.assert_allclose(drawn.permute(1, 2, 0).numpy(), np.floor(blended + 1e-6), atol=1)
    assert set(clock.laps) == {"decode", "transforms", "forward", "upsample+argmax", "draw"}


def test_segdemo_card_model_runs_with_its_own_preprocessing() -> None:
    """A model described by a card (here deeplab_slim for CamVid, random weights) is benchmarked too."""
    from segdemo.models import weights
    from segdemo.models.builders import BUILDERS

    kwargs = {"num_classes": 11, "width": "slim", "aspp_channels": 16}
    entry = registry.ModelEntry(
        name="bench-test-deeplab-slim", architecture="DeepLab (slim)", backbone="VGG-slim", label_set_key="camvid",
        build=lambda: BUILDERS["deeplab_slim"](**kwargs),
        weights=registry.WeightsSpec(filename="absent.safetensors", shipped_path=config.SHIPPED_MODELS_DIR / "absent"),
        preprocess=registry.Preprocess(resize_size=48), source="segdemo",
    )
    model = weights.load_model(entry, allow_random=True)
    r = bench.bench_model(entry, model, SAMPLE.read_bytes(), SAMPLE.name, size=48, repeats=1, warmup=0)
    assert r.random_weights and r.input_size == (48, int(48 * 451 / 300))
    assert r.labels_segdemo.shape == r.labels_reference.shape == (300, 451)
    assert r.labels_segdemo.max() < 11 and r.labels_reference.max() < 11
    assert r.agreement == pytest.approx(np.mean(r.labels_segdemo == r.labels_reference))


def test_reference_transforms_for_shipped_card_model() -> None:
    """segdemo's own models: the card's mean/std (and grayscale) drive the reference transforms."""
    from dataclasses import replace

    from PIL import Image

    entry = registry.get(TINY_MODEL)
    gray = replace(entry, name="gray-test", source="segdemo",
                   preprocess=registry.Preprocess(resize_size=None, mean=(0.5,), std=(0.25,), grayscale=True))
    img = Image.fromarray(np.full((4, 6, 3), 255, np.uint8))
    x = bench.reference_transforms(gray, None)(img)
    assert x.shape == (1, 4, 6)
    torch.testing.assert_close(x, torch.full((1, 4, 6), (1.0 - 0.5) / 0.25))


def test_reencode_short_side() -> None:
    from PIL import Image

    data = bench.reencode_short_side(SAMPLE.read_bytes(), 120)
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG" and img.size == (round(451 * 120 / 300), 120)


def test_format_table_and_json(tiny_result: bench.BenchResult) -> None:
    text = bench_cli.format_table([tiny_result])
    assert TINY_MODEL in text and "whole/bare" in text and "agree" in text
    assert f"{tiny_result.agreement:.4f}" in text
    assert ("RANDOM" in text) == tiny_result.random_weights
    payload = json.loads(json.dumps(tiny_result.to_json()))
    assert payload["model"] == TINY_MODEL and "labels_segdemo" not in payload
    assert payload["whole_over_bare"] == pytest.approx(tiny_result.whole_over_bare)


def test_cli_prints_table(tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    code = main(["bench", "--models", TINY_MODEL, "--size", "48", "--repeats", "1", "--warmup", "0",
                 "--device", "cpu", "--allow-random", "--threads", "1", "--image", str(SAMPLE),
                 "--short-side", "100", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "whole/bare" in printed and TINY_MODEL in printed and "cat.jpg" in printed
    assert "shorter side 100" in printed
    saved = json.loads(out.read_text())[0]
    assert saved["model"] == TINY_MODEL and saved["image_size"] == [150, 100]

