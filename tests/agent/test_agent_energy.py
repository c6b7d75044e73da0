"""Energy over the measure window: counter, integrated power, or nothing."""

from __future__ import annotations

import pytest

from agent.energy import PowerPoint, compute_energy


def test_counter_difference_is_used_when_every_gpu_has_one() -> None:
    tracks = [
        [PowerPoint(10.0, 200.0, 1_000_000.0), PowerPoint(12.0, 300.0, 1_500_000.0)],
        [PowerPoint(10.0, 100.0, 7_000.0), PowerPoint(12.0, 100.0, 207_000.0)],
    ]

    energy = compute_energy(tracks, (10.0, 12.0), samples=10, output_tokens=700)

    assert energy.method == "nvml_counter" and energy.estimated is False
    assert energy.joules == pytest.approx(700.0)  # 500 J + 200 J
    assert energy.joules_per_sample == pytest.approx(70.0)
    assert energy.joules_per_output_token == pytest.approx(1.0)
    assert energy.mean_power_w == pytest.approx(350.0)
    assert energy.peak_power_w == pytest.approx(400.0)


def test_power_is_integrated_when_a_counter_is_missing() -> None:
    tracks = [
        [
            PowerPoint(0.0, 100.0, None),
            PowerPoint(1.0, 200.0, None),
            PowerPoint(3.0, 200.0, None),
        ]
    ]

    energy = compute_energy(tracks, (0.0, 3.0), samples=3)

    # Trapezoids: (100+200)/2 * 1 + 200 * 2 = 550 J.
    assert energy.method == "power_integration" and energy.estimated is True
    assert energy.joules == pytest.approx(550.0)
    assert energy.mean_power_w == pytest.approx(550.0 / 3)
    assert energy.peak_power_w == pytest.approx(200.0)
    assert energy.joules_per_output_token is None


def test_integration_is_clipped_to_the_window_and_held_flat_at_the_start() -> None:
    tracks = [[PowerPoint(1.2, 100.0, None), PowerPoint(2.4, 340.0, None)]]

    energy = compute_energy(tracks, (1.0, 2.0), samples=1, max_gap_s=0.5)

    # 0.2 s at 100 W, then 0.8 s ramping from 100 W to 260 W (mean 180 W) = 164 J.
    assert energy.joules == pytest.approx(164.0)


def test_a_counter_that_did_not_advance_falls_back_to_power() -> None:
    tracks = [[PowerPoint(0.0, 50.0, 9_000.0), PowerPoint(0.5, 50.0, 9_000.0)]]

    energy = compute_energy(tracks, (0.0, 0.5), samples=1)

    assert energy.method == "power_integration"
    assert energy.joules == pytest.approx(25.0)
    assert energy.joules > 0


def test_neither_counter_nor_power_gives_none() -> None:
    tracks = [[PowerPoint(0.0, None, None), PowerPoint(1.0, None, None)]]

    energy = compute_energy(tracks, (0.0, 1.0), samples=1)

    assert energy.method is None and energy.joules is None
    assert energy.joules_per_sample is None and energy.mean_power_w is None
    assert energy.note is not None


def test_a_gpu_that_stopped_answering_gives_none() -> None:
    tracks = [[PowerPoint(0.0, 100.0, 0.0), PowerPoint(4.9, 100.0, 490_000.0)]]

    energy = compute_energy(tracks, (0.0, 5.0), samples=1, max_gap_s=1.0)

    assert energy.joules is None
    assert "stopped answering" in (energy.note or "")


def test_sampling_that_began_late_gives_none() -> None:
    tracks = [[PowerPoint(2.0, 100.0, 0.0), PowerPoint(5.1, 100.0, 310_000.0)]]

    energy = compute_energy(tracks, (0.0, 5.0), samples=1, max_gap_s=1.0)

    assert energy.joules is None
    assert "too late" in (energy.note or "")


def test_no_tracks_gives_none() -> None:
    assert compute_energy([], (0.0, 1.0), samples=1).joules is None
