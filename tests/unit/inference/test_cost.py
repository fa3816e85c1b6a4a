"""Cost measurement: FLOPs against a hand count, parameters, peak memory, the timing protocol."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch
from torch import nn

from segdemo.inference import cost
from segdemo.inference import pipeline as pipeline
from segdemo.labs import fcn_skips as fcn_skips
from segdemo.models import registry
from segdemo.models import weights


class SmallNet(nn.Module):
    """conv 3->8 (3x3, padding 1), ReLU, 2x2 max-pool, conv 8->4 (1x1), linear 4*8*8 -> 10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 4, 1, bias=False)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        return self.fc(self.conv2(x).flatten(1))


def test_flops_match_a_hand_count_for_a_small_conv_net() -> None:
    # multiply-adds x 2: conv1 16*16 outputs x 8 channels x (3*3*3) taps; conv2 8*8 x 4 x 8; fc 256 x 10.
    # ReLU, pooling and bias additions are not counted by FlopCounterMode.
    hand = 2 * (16 * 16 * 8 * 27) + 2 * (8 * 8 * 4 * 8) + 2 * (256 * 10)
    assert cost.count_flops(SmallNet().eval(), torch.randn(1, 3, 16, 16)) == hand
    assert cost.count_flops(SmallNet().eval(), torch.randn(2, 3, 16, 16)) == 2 * hand  # a batch of two


def test_parameters_trainable_and_total_by_hand() -> None:
    net = SmallNet()
    net.conv2.weight.requires_grad_(False)
    total = (3 * 8 * 9 + 8) + (8 * 4) + (256 * 10 + 10)
    assert cost.count_parameters(net) == (total - 32, total)


@pytest.mark.skipif(not cost.rss_peak_supported(), reason="needs Linux /proc/self/clear_refs")
def test_cpu_peak_memory_sees_a_known_allocation() -> None:
    mib = 256

    def allocate() -> float:
        block = torch.ones(mib * 2**20 // 4)  # float32: 4 bytes each, every page written
        return float(block[::4096].sum())

    for _ in range(2):  # the second time too: freed memory must not hide the peak
        _, peak = cost.peak_memory(allocate, "cpu")
        # the kernel's resident-set counters are kept per CPU and summed lazily: a few pages either way
        assert 0.97 * mib * 2**20 <= peak <= (mib + 24) * 2**20


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_peak_memory_sees_a_known_allocation() -> None:
    _, peak = cost.peak_memory(lambda: torch.ones(64 * 2**20 // 4, device="cuda"), "cuda")
    assert peak == 64 * 2**20


def test_measure_cost_runs_the_protocol_with_the_pipelines_timing() -> None:
    entry = registry.get("fcn32s_camvid")
    rgb, _ = fcn_skips.synthetic_street(120, 90, seed=0)
    loads = []

    def load() -> torch.nn.Module:
        loads.append(1)
        return weights.load_model(entry)

    before = pipeline.forward_pass_count()
    c = cost.measure_cost(load, entry, rgb, 60, "cpu", warmup=2, repeats=3)
    assert pipeline.forward_pass_count() - before == 1 + 2 + 3 + 1  # cold, warm-up, timed, memory
    assert loads == [1]
    assert c.input_size == pipeline.network_input_size((90, 120), 60) == (60, 80)
    assert c.warm_total_ms == pytest.approx(statistics.median(c.samples_ms))
    assert len(c.samples_ms) == 3 and set(c.warm_ms) == set(cost.STAGES) == set(c.cold_ms)
    assert c.cold_total_ms == pytest.approx(sum(c.cold_ms.values()))
    net = weights.load_model(entry).net
    assert (c.params_trainable, c.params_total) == cost.count_parameters(net)
    assert c.params_total == sum(p.numel() for p in net.parameters())
    x, _ = pipeline.preprocess(rgb, entry, 60, "cpu")
    assert c.flops == cost.count_flops(weights.load_model(entry), x)
    assert c.published_miou == entry.metrics["miou"] and "val" in c.published_source
    if cost.rss_peak_supported():
        assert c.peak_forward_bytes is not None and c.peak_forward_bytes > 0
    np.testing.assert_array_equal(c.labels, pipeline.predict(weights.load_model(entry), entry, rgb, 60).labels)
    assert "labels" not in c.to_json() and c.to_json()["gflops"] == c.flops / 1e9
