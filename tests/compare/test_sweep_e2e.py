"""A real sweep: the supervisor, mock pods and the real agent, then its comparison.

mock-v0 divides its seeded latencies by each mock GPU's speed factor, so the
ranking is known in advance: latency follows speed, steady cost follows
price ÷ speed. The B200 never has capacity and must fail alone.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.providers.mock import MockProvider
from app.services import runs
from app.services.compare import aligned_timeseries, compare
from app.services.sweeps import get_sweep, parse_sweep_request, start_sweep
from app.settings import get_settings
from app.supervisor import Supervisor, Timing

FAST = Timing(poll_s=0.05, scan_s=0.1, create_backoff_s=0.05, reaper_s=3600)
# Expected values this far apart must be measured in the same order.
SEPARATION = 1.25
FINAL = {"succeeded", "failed", "cancelled", "timed_out"}
# slug: (secure price per hour, mock speed factor)
GPUS = {
    "rtx-a5000-24gb": (0.27, 1.1),
    "rtx-4090-24gb": (0.69, 2.2),
    "l4-24gb": (0.43, 1.0),
    "h200-sxm-141gb": (3.59, 6.2),
}


@pytest.fixture
def supervisor(persephone_env: Path) -> Iterator[Supervisor]:
    provider = MockProvider(persephone_env, simulate_gpu=True)
    running = Supervisor(lambda: provider, get_settings(), timing=FAST)
    runs.on_change(running.wake)
    running.start()
    yield running
    running.stop()


def wait_settled(sweep_id: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        detail = get_sweep(sweep_id)
        if all(r.state in FINAL and not r.may_be_billing for r in detail.runs):
            return
        time.sleep(0.1)
    states = {r.gpu_type: r.state for r in get_sweep(sweep_id).runs}
    raise AssertionError(f"sweep {sweep_id} never settled: {states}")


def assert_ranked_like(measured: dict[str, float], expected: dict[str, float]) -> None:
    """Every pair the speed factors set well apart is measured in that order.

    Sleep overshoot on a busy machine adds a few ms to any latency, so a pair
    closer than SEPARATION (the A5000 at speed 1.1 and the L4 at 1.0) may swap.
    """
    checked = 0
    for low, high in itertools.permutations(expected, 2):
        if expected[high] > SEPARATION * expected[low]:
            assert measured[low] < measured[high], (low, high, measured)
            checked += 1
    assert checked >= 5


def test_four_gpu_types_rank_by_their_speed_and_b200_fails_alone(
    supervisor: Supervisor,
) -> None:
    request = parse_sweep_request(
        {
            "gpu_types": [*GPUS, "b200-180gb"],
            "model_ref": "mock-v0",
            "samples": 30,
        }
    )
    sweep = start_sweep(request, confirmed=False, confirm_above_usd=5.0)

    wait_settled(sweep.id)
    detail = get_sweep(sweep.id)
    comparison = compare([run.id for run in detail.runs])

    states = {run.gpu_type: run.state for run in detail.runs}
    assert states == {**dict.fromkeys(GPUS, "succeeded"), "b200-180gb": "failed"}
    b200 = next(run for run in detail.runs if run.gpu_type == "b200-180gb")
    assert str(b200.error_message).startswith("No B200 is available")
    assert b200.pod_id is None

    ranked = [row for row in comparison.rows if row.ranked]
    latency = {r.gpu_type: r.latency_p95_ms or 0.0 for r in ranked}
    cost = {r.gpu_type: r.steady_usd_per_1k_samples or 0.0 for r in ranked}
    assert_ranked_like(latency, {slug: 1 / speed for slug, (_, speed) in GPUS.items()})
    assert_ranked_like(
        cost, {slug: price / speed for slug, (price, speed) in GPUS.items()}
    )
    assert comparison.best_for_cost is not None
    assert comparison.best_for_cost.gpu_type == "rtx-a5000-24gb"
    assert comparison.best_for_latency is not None
    assert comparison.best_for_latency.gpu_type == "h200-sxm-141gb"
    # The L4 is slower and dearer than the A5000, so it alone is dominated.
    front = {r.gpu_type for r in comparison.rows if r.on_pareto_front}
    assert front == {"rtx-a5000-24gb", "rtx-4090-24gb", "h200-sxm-141gb"}

    assert all(row.latency_n == 30 and row.simulated for row in ranked)
    assert all(row.flags == ["simulated"] for row in ranked)
    failed = next(row for row in comparison.rows if row.gpu_type == "b200-180gb")
    assert failed.flags == ["not_succeeded"]
    assert any("report simulated GPU metrics" in w for w in comparison.warnings)
    assert any("did not succeed" in w for w in comparison.warnings)

    lines = aligned_timeseries([run.id for run in detail.runs], "utilization_gpu_pct")
    assert {line.gpu_type for line in lines} == set(GPUS)
    assert all(line.measure_start_s is not None for line in lines)
    assert all(line.x_s.min() < 0 <= line.x_s.max() for line in lines)
