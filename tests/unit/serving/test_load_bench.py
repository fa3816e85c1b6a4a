"""The load benchmark, run for real at N = 3 sessions against ``streamlit run app.py``."""

from __future__ import annotations

import numpy as np
import pytest

from segdemo.serving import load_bench

pytestmark = pytest.mark.slow


def test_percentile_matches_numpy() -> None:
    values = [0.3, 1.2, 0.25, 7.0, 2.2, 0.9, 4.4]
    for q in (0, 50, 95, 100):
        assert load_bench.percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_three_sessions_upload_and_change_the_view_without_errors() -> None:
    (result,) = load_bench.run_load([3], log=lambda _: None)
    assert result.errors == []
    assert len(result.upload_s) == 3 and len(result.display_s) == 3
    assert all(0 < t < 120 for t in result.upload_s + result.display_s)
    # No inline multi-hundred-KB picture: the upload run's messages stay small (the picture is a media URL).
    assert max(result.payload_kb) < 100, result.payload_kb
    assert result.rss_peak_mb > 100 and result.server_cpu_s > 0
    text = load_bench.format_results([result])
    assert "upload p50" in text and "errors" in text
