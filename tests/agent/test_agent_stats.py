"""Latency statistics against numpy's own percentiles."""

from __future__ import annotations

import random
import statistics

import numpy as np
import pytest

from agent.stats import percentile, summarize


@pytest.mark.parametrize("n", [1, 2, 3, 10, 99, 100, 1000])
def test_percentiles_match_numpy(n: int) -> None:
    rng = random.Random(n)
    values = [rng.lognormvariate(4.0, 0.5) for _ in range(n)]

    stats = summarize(values)

    assert stats.n == n
    for pct, got in (
        (50, stats.p50),
        (90, stats.p90),
        (95, stats.p95),
        (99, stats.p99),
    ):
        assert got == pytest.approx(float(np.percentile(values, pct)), rel=1e-12)
    assert stats.mean == pytest.approx(float(np.mean(values)), rel=1e-12)
    assert stats.min == min(values) and stats.max == max(values)
    if n >= 2:
        assert stats.stdev == pytest.approx(statistics.stdev(values), rel=1e-12)
    else:
        assert stats.stdev is None
    assert stats.p99_indicative is (n < 100)


def test_empty_distribution_has_no_figures() -> None:
    stats = summarize([])
    assert stats.n == 0 and stats.mean is None and stats.p99 is None


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([10.0, 20.0], 50) == 15.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 90) == pytest.approx(3.7)
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
