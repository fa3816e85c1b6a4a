"""Inference: preprocessing, upsampling and per-pixel probabilities against torch references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from segdemo.inference import pipeline
from segdemo.models import registry
from segdemo.models import weights
from segdemo.inference.pipeline import network_input_size, pixel_probabilities, predict, upsampled_labels

REPO_SAMPLES = Path(__file__).resolve().parents[3] / "assets" / "samples"


def reference_upsample(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0]


@pytest.mark.parametrize("size", [(33, 47), (100, 80), (64, 64)])
def test_upsampled_labels_match_interpolate_argmax(size):
    torch.manual_seed(0)
    logits = torch.randn(21, 13, 17)
    expected = reference_upsample(logits, size).argmax(0).numpy()
    np.testing.assert_array_equal(upsampled_labels(logits, size), expected)


@pytest.mark.parametrize("in_size,out_size", [((65, 65), (512, 512)), ((520, 520), (512, 512)),
                                               ((23, 31), (360, 480)), ((40, 30), (41, 29))])
def test_upsampled_labels_of_smooth_scores_match_interpolate_argmax(in_size, out_size, monkeypatch):
    # Smooth scores form regions and boundaries, as a real model's do; also a shrink
    # (520 -> 512, the benchmark's case) and the banded path for large outputs.
    torch.manual_seed(3)
    smooth = F.interpolate(torch.randn(1, 11, 6, 7), size=in_size, mode="bicubic", align_corners=False)[0]
    expected = reference_upsample(smooth, out_size).argmax(0).numpy()
    np.testing.assert_array_equal(upsampled_labels(smooth, out_size), expected)
    monkeypatch.setattr(pipeline, "_MAX_FULL_RES_ELEMENTS", 11 * out_size[1] * 5)  # bands of 5 rows
    np.testing.assert_array_equal(upsampled_labels(smooth, out_size), expected)


def test_banded_path_matches_full_interpolation(monkeypatch):
    torch.manual_seed(1)
    logits = torch.randn(21, 20, 30)
    size = (157, 211)
    full = reference_upsample(logits, size)
    monkeypatch.setattr(pipeline, "_MAX_FULL_RES_ELEMENTS", 21 * 211 * 7)  # bands of 7 rows
    np.testing.assert_array_equal(upsampled_labels(logits, size), full.argmax(0).numpy())
    conf, entropy = pipeline.uncertainty_maps(logits, size)
    p = full.softmax(0)
    np.testing.assert_allclose(conf, p.max(0).values.numpy(), atol=1e-5)
    np.testing.assert_allclose(entropy, (-(p * p.log()).sum(0) / np.log(21)).numpy(), atol=1e-5)


def test_pixel_probabilities_equal_upsample_then_softmax():
    torch.manual_seed(2)
    logits = torch.randn(5, 9, 14)
    size = (61, 83)
    probs = reference_upsample(logits, size).softmax(0)
    rng = np.random.default_rng(0)
    for x, y in zip(rng.integers(0, size[1], 20), rng.integers(0, size[0], 20)):
        torch.testing.assert_close(pixel_probabilities(logits, size, int(x), int(y)), probs[:, y, x],
                                   atol=1e-5, rtol=1e-5)


def test_network_input_is_capped_keeping_the_aspect_ratio():
    cap = pipeline.MAX_NETWORK_PIXELS
    for size, resize in [((10, 4000), 520), ((3000, 4000), None), ((4000, 30), 180)]:
        h, w = network_input_size(size, resize)
        assert h * w <= cap
        assert h * w > 0.99 * cap  # scaled down to the cap, not further
        assert abs((w / h) / (size[1] / size[0]) - 1) < 0.02
    assert network_input_size((3000, 4000), None, max_pixels=float("inf")) == (3000, 4000)


def test_predict_reports_the_network_input_and_a_capped_one(monkeypatch):
    entry = registry.get("fcn8s_camvid")
    model = weights.load_model(entry)
    rgb = np.zeros((60, 400, 3), np.uint8)
    pred = predict(model, entry, rgb, inference_size=None)
    assert pred.input_size == (60, 400) and not pred.input_capped
    monkeypatch.setattr(pipeline, "MAX_NETWORK_PIXELS", 6000)
    pred = predict(model, entry, rgb, inference_size=None)
    assert pred.input_capped and pred.input_size == (30, 200) and pred.labels.shape == (60, 400)


def test_network_input_size_resizes_shorter_side():
    assert network_input_size((375, 500), 520) == (520, 693)
    assert network_input_size((500, 375), 520) == (693, 520)
    assert network_input_size((375, 500), None) == (375, 500)


def test_predict_matches_independent_torchvision_pipeline():
    """segdemo's path equals resize+normalise (torchvision.transforms.v2), model, upsample, argmax."""
    entry = registry.get("lraspp_mobilenet_v3_large")
    model = weights.load_model(entry, allow_random=True)
    rgb = np.random.default_rng(3).integers(0, 255, (300, 451, 3), dtype=np.uint8)
    pred = predict(model, entry, rgb, 520)

    x = torch.from_numpy(rgb).permute(2, 0, 1)
    x = TF.resize(x, [520], antialias=True)  # shorter side to 520 (upscaling here)
    x = TF.normalize(TF.to_dtype(x, torch.float32, scale=True), list(entry.preprocess.mean),
                     list(entry.preprocess.std))
    with torch.inference_mode():
        out = model.net(x[None])["out"][0]
    expected = reference_upsample(out, (300, 451)).argmax(0).numpy()
    agreement = (pred.labels == expected).mean()
    assert agreement > 0.999, agreement  # uint8 rounding in v2's resize may move a few pixels
    assert pred.logits.shape == (21, 520, 781)
    assert set(pred.timings) == {"preprocess", "forward", "postprocess"}
    probs = pred.probabilities_at(200, 100)
    assert abs(float(probs.sum()) - 1) < 1e-5
    assert pred.topk_at(200, 100)[0][0] == int(pred.labels[100, 200])


class _PaddingProbe(torch.nn.Module):
    """Stands for a U-Net: needs sizes divisible by 16, returns 2 'classes' from the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-1] % 16 == 0 and x.shape[-2] % 16 == 0
        return torch.cat([x[:, :1], -x[:, :1]], 1)


def test_padding_is_cropped_back():
    entry = registry.ModelEntry(
        name="probe", architecture="probe", backbone="none", label_set_key="isbi",
        build=_PaddingProbe, weights=registry.WeightsSpec(filename="none"),
        preprocess=registry.Preprocess(resize_size=None, mean=(0.5,), std=(0.5,), grayscale=True, pad_multiple=16),
    )
    rgb = np.zeros((37, 50, 3), np.uint8)
    rgb[:, 25:] = 255  # right half bright: class 0 (x > 0), left half dark: class 1
    pred = predict(_PaddingProbe(), entry, rgb, None)
    assert pred.labels.shape == (37, 50) and pred.logits.shape == (2, 37, 50)
    assert (pred.labels[:, 30:] == 0).all() and (pred.labels[:, :20] == 1).all()


def test_forward_pass_counter_counts_model_runs():
    entry = registry.get("lraspp_mobilenet_v3_large")
    model = weights.load_model(entry, allow_random=True)
    before = pipeline.forward_pass_count()
    predict(model, entry, np.zeros((64, 64, 3), np.uint8), 64)
    assert pipeline.forward_pass_count() == before + 1


class _OutOfMemoryOnce(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")


def test_out_of_memory_falls_back_to_cpu():
    entry = registry.get("lraspp_mobilenet_v3_large")
    cpu = weights.load_model(entry, allow_random=True)
    rgb = np.zeros((40, 40, 3), np.uint8)
    pred, fell_back = pipeline.predict_with_cpu_fallback(_OutOfMemoryOnce(), entry, rgb, 40, "cpu", False,
                                                          cpu_model=lambda: cpu)
    assert fell_back and pred.device == "cpu" and pred.labels.shape == (40, 40)
    direct, fell_back = pipeline.predict_with_cpu_fallback(cpu, entry, rgb, 40, "cpu", False, cpu_model=None)
    assert not fell_back
    np.testing.assert_array_equal(direct.labels, pred.labels)


def test_concurrent_sessions_share_one_model_safely():
    """Reruns run in threads: concurrent predictions equal sequential ones."""
    from concurrent.futures import ThreadPoolExecutor

    entry = registry.get("lraspp_mobilenet_v3_large")
    model = weights.load_model(entry, allow_random=True)
    rng = np.random.default_rng(9)
    images = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(4)]
    sequential = [predict(model, entry, im, 96).labels for im in images]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda im: predict(model, entry, im, 96).labels, images))
    for a, b in zip(sequential, parallel):
        np.testing.assert_array_equal(a, b)


def test_shrinking_matches_pil_resize_of_the_reference_recipe():
    """Photos are shrunk with the uint8 antialiased kernel; it agrees with PIL's bilinear resize."""
    from PIL import Image

    entry = registry.get("lraspp_mobilenet_v3_large")
    rgb = np.asarray(Image.open(REPO_SAMPLES / "coffee.jpg").convert("RGB"))  # 400x600
    x, (h, w) = pipeline.preprocess(rgb, entry, 200, "cpu")
    assert (h, w) == (200, 300)
    mean = torch.tensor(entry.preprocess.mean)[:, None, None]
    std = torch.tensor(entry.preprocess.std)[:, None, None]
    ours = (x[0] * std + mean) * 255
    pil = torch.from_numpy(np.array(Image.fromarray(rgb).resize((w, h), Image.Resampling.BILINEAR)))
    diff = (ours - pil.permute(2, 0, 1).float()).abs()
    assert diff.mean() < 0.75 and diff.max() <= 3.0, (diff.mean(), diff.max())


def test_channels_last_scores_give_the_same_labels():
    # CPU models run channels-last, so their scores arrive with the classes adjacent in memory.
    torch.manual_seed(4)
    scores = F.interpolate(torch.randn(1, 21, 5, 6), size=(40, 52), mode="bicubic", align_corners=False)
    channels_last = scores.contiguous(memory_format=torch.channels_last)[0]
    assert channels_last.stride(0) == 1
    for size in [(40, 52), (97, 130), (31, 45)]:
        expected = reference_upsample(scores[0], size).argmax(0).numpy()
        np.testing.assert_array_equal(upsampled_labels(channels_last, size), expected)
    cropped = channels_last[:, :30, :41]  # the padding crop keeps the layout
    np.testing.assert_array_equal(upsampled_labels(cropped, (30, 41)), scores[0, :, :30, :41].argmax(0).numpy())


def test_cpu_models_run_channels_last_with_the_same_output():
    entry = registry.get("fcn8s_camvid")
    model = weights.load_model(entry, device="cpu")
    assert model.channels_last
    kernels = [p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1]
    assert kernels and all(k.is_contiguous(memory_format=torch.channels_last) for k in kernels)
    plain = weights.SegmentationModel(entry.build(), entry, None).eval()
    plain.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 90, 120)
    with torch.inference_mode():
        out, ref = model(x), plain(x)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    assert (out.argmax(1) == ref.argmax(1)).float().mean() > 0.9999


def test_as_batch_keeps_the_layout_and_values():
    scores = torch.randn(1, 7, 9, 11).contiguous(memory_format=torch.channels_last)[0]
    batch = pipeline.as_batch(scores)
    assert batch.shape == (1, 7, 9, 11) and batch.is_contiguous(memory_format=torch.channels_last)
    assert batch.stride(0) == 7 * 9 * 11  # a real batch stride, so interpolation takes the channels-last path
    torch.testing.assert_close(batch[0], scores, rtol=0, atol=0)
    up = F.interpolate(batch, size=(20, 30), mode="bilinear", align_corners=False)
    assert up[0].stride(0) == 1
    torch.testing.assert_close(up[0], reference_upsample(scores.contiguous(), (20, 30)))
    plain = torch.randn(3, 4, 5)
    assert pipeline.as_batch(plain).is_contiguous()
