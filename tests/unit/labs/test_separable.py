"""Depthwise-separable lab: the lecture's counts vs the real modules."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from segdemo.labs import separable as sep



@pytest.mark.parametrize("kh,kw,c,n,bias", [(3, 3, 16, 32, False), (3, 3, 16, 32, True),
                                            (5, 3, 7, 11, True), (1, 1, 4, 4, False)])
def test_counts_match_modules(kh: int, kw: int, c: int, n: int, bias: bool) -> None:
    r = sep.separable_report(kh, kw, c, n, 9, 10, bias=bias)
    std = sep.standard_conv(c, n, kh, kw, bias)
    dws = sep.separable_conv(c, n, kh, kw, bias)
    assert r.standard_params == sum(p.numel() for p in std.parameters()) == r.standard_formula
    assert r.separable_params == sum(p.numel() for p in dws.parameters()) == r.separable_formula
    assert r.depthwise_params + r.pointwise_params == r.separable_params
    assert r.standard_formula == kh * kw * c * n + (n if bias else 0)
    assert r.separable_formula == kh * kw * c + c * n + ((c + n) if bias else 0)
    assert r.standard_macs == r.standard_macs_formula == 9 * 10 * kh * kw * c * n
    assert r.separable_macs == r.separable_macs_formula == r.depthwise_macs + r.pointwise_macs
    assert r.depthwise_macs == 9 * 10 * kh * kw * c and r.pointwise_macs == 9 * 10 * c * n
    x = torch.zeros(1, c, 9, 10)
    with FlopCounterMode(display=False) as counter:
        dws(x)
    assert r.separable_macs == counter.get_total_flops() // 2


def test_ratio_formula_and_timing() -> None:
    r = sep.separable_report(3, 3, 32, 64, 16, 16, measure_time=True, min_run_time=0.02)
    assert r.mac_ratio == pytest.approx(1 / 64 + 1 / 9)
    assert r.standard_ms is not None and r.standard_ms > 0 and r.separable_ms > 0
