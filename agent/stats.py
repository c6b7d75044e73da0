"""Summaries of measured distributions (latency, TTFT, TPOT, ITL)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from agent.schema import Stats

# Under this many observations the 99th percentile is little more than the maximum.
P99_MIN_N = 100


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    if not sorted_values:
        raise ValueError("percentile of an empty sequence")
    rank = (len(sorted_values) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def summarize(values: Sequence[float]) -> Stats:
    """Mean, percentiles, extremes and sample stdev; every field None when empty."""
    n = len(values)
    if n == 0:
        return Stats(n=0, p99_indicative=True)
    ordered = sorted(values)
    return Stats(
        n=n,
        mean=statistics.fmean(ordered),
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        min=ordered[0],
        max=ordered[-1],
        stdev=statistics.stdev(ordered) if n >= 2 else None,
        p99_indicative=n < P99_MIN_N,
    )
