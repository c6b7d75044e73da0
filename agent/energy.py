"""Energy over the measure window, from NVML's counter or from sampled power."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from agent.schema import Energy


@dataclass(frozen=True, slots=True)
class PowerPoint:
    """One GPU's power and energy counter at one sample."""

    mono_s: float
    power_w: float | None
    energy_mj: float | None


def compute_energy(
    tracks: Sequence[Sequence[PowerPoint]],
    window: tuple[float, float],
    *,
    samples: int,
    output_tokens: int | None = None,
    max_gap_s: float = 1.0,
) -> Energy:
    """Joules of all the workload's GPUs over `window` (monotonic seconds).

    Each track holds one GPU's samples in time order, the last one taken after
    the window closed. The counter difference is used when every GPU has one
    that advanced; otherwise power is integrated (trapezoids, held flat before
    the first sample) and flagged estimated. A track that starts more than
    `max_gap_s` late, or has no sample after the window (the GPU stopped
    answering), gives no figure: that energy is unknown.
    """
    start_s, end_s = window
    if not tracks or any(not track for track in tracks):
        return Energy(note="no GPU samples cover the measure window")
    for track in tracks:
        if track[-1].mono_s < end_s:
            return Energy(
                note="a GPU stopped answering before the measure window ended"
            )
        if track[0].mono_s > start_s + max_gap_s:
            return Energy(note="GPU sampling began too late in the measure window")

    peak_w = _peak_power(tracks)
    joules = _counter_joules(tracks)
    if joules is not None:
        counter_span_s = max(t[-1].mono_s - t[0].mono_s for t in tracks)
        return _finish(
            Energy(method="nvml_counter", estimated=False, joules=joules),
            counter_span_s,
            peak_w,
            samples,
            output_tokens,
        )
    if any(all(p.power_w is None for p in track) for track in tracks):
        return Energy(note="neither an energy counter nor power readings exist")
    joules = sum(_integrate(track, start_s, end_s) for track in tracks)
    return _finish(
        Energy(method="power_integration", estimated=True, joules=joules),
        end_s - start_s,
        peak_w,
        samples,
        output_tokens,
    )


def _counter_joules(tracks: Sequence[Sequence[PowerPoint]]) -> float | None:
    total_mj = 0.0
    for track in tracks:
        first, last = track[0].energy_mj, track[-1].energy_mj
        # A counter that did not advance (or reset) cannot tell this window's energy.
        if first is None or last is None or last <= first:
            return None
        total_mj += last - first
    return total_mj / 1000.0


def _integrate(track: Sequence[PowerPoint], start_s: float, end_s: float) -> float:
    points = [(p.mono_s, p.power_w) for p in track if p.power_w is not None]
    # Held flat before the first and after the last sample, linear in between.
    if points[0][0] > start_s:
        points.insert(0, (start_s, points[0][1]))
    if points[-1][0] < end_s:
        points.append((end_s, points[-1][1]))
    joules = 0.0
    for (t0, p0), (t1, p1) in itertools.pairwise(points):
        lo, hi = max(t0, start_s), min(t1, end_s)
        if hi <= lo:
            continue
        slope = (p1 - p0) / (t1 - t0) if t1 > t0 else 0.0
        p_lo = p0 + slope * (lo - t0)
        p_hi = p0 + slope * (hi - t0)
        joules += (p_lo + p_hi) / 2.0 * (hi - lo)
    return joules


def _peak_power(tracks: Sequence[Sequence[PowerPoint]]) -> float | None:
    """Highest total power of one sample across GPUs (samples aligned by tick)."""
    length = min(len(track) for track in tracks)
    totals = []
    for i in range(length):
        readings = [track[i].power_w for track in tracks]
        if all(r is not None for r in readings):
            totals.append(sum(r for r in readings if r is not None))
    return max(totals) if totals else None


def _finish(
    energy: Energy,
    duration_s: float,
    peak_w: float | None,
    samples: int,
    output_tokens: int | None,
) -> Energy:
    joules = energy.joules or 0.0
    energy.mean_power_w = joules / duration_s if duration_s > 0 else None
    energy.peak_power_w = peak_w
    energy.joules_per_sample = joules / samples if samples > 0 else None
    if output_tokens:
        energy.joules_per_output_token = joules / output_tokens
    return energy
