"""GPU time series for charts: loading, peak-keeping downsampling, gaps.

A day at 1 Hz on 8 GPUs is 691,200 rows; a chart needs a thousand points per
line. MinMaxLTTB (tsdownsample, in Rust) keeps the peaks a plain stride would
drop, and sampling gaps are re-inserted as breaks so a line never bridges a
stretch with no data. The full series stays available as the agent's CSV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import text
from tsdownsample import MinMaxLTTBDownsampler

from app.db import get_engine

METRICS: dict[str, tuple[str, str]] = {
    # column: (title, unit)
    "utilization_gpu_pct": ("GPU utilisation", "%"),
    "utilization_memory_pct": ("Memory controller utilisation", "%"),
    "memory_used_mib": ("Memory used", "MiB"),
    "power_w": ("Power", "W"),
    "temperature_c": ("Temperature", "°C"),
    "clock_sm_mhz": ("SM clock", "MHz"),
    "clock_mem_mhz": ("Memory clock", "MHz"),
}
SAMPLE_COLUMNS = (
    "row",
    "ts",
    "elapsed_s",
    "phase",
    "gpu_index",
    "gpu_uuid",
    *METRICS,
    "memory_total_mib",
    "throttle_reasons",
    "simulated",
)
# A pause longer than this many sampling intervals is drawn as a gap.
GAP_FACTOR = 3.0
DEFAULT_POINTS_PER_LINE = 1_000


def load_samples(run_id: str, *, after_row: int = -1) -> pd.DataFrame:
    """Rows of the run's series with `row` > after_row, in order."""
    columns = ", ".join(SAMPLE_COLUMNS)
    query = text(
        f"SELECT {columns} FROM gpusample "  # noqa: S608 - fixed column names
        "WHERE run_id = :run_id AND row > :after ORDER BY row"
    )
    with get_engine().connect() as connection:
        result = connection.execute(query, {"run_id": run_id, "after": after_row})
        # Plain tuples: building a frame from SQLAlchemy rows is several times slower.
        records = [tuple(row) for row in result]
    frame = pd.DataFrame.from_records(records, columns=list(SAMPLE_COLUMNS))
    for column in (*METRICS, "memory_total_mib", "elapsed_s", "ts"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


@dataclass(frozen=True)
class Line:
    """One GPU's line on one chart; NaN in `y` breaks the line."""

    gpu_index: int
    x: np.ndarray
    y: np.ndarray


def sampling_interval_s(frame: pd.DataFrame) -> float | None:
    first_gpu = frame[frame["gpu_index"] == frame["gpu_index"].min()]
    steps = np.diff(first_gpu["elapsed_s"].to_numpy())
    steps = steps[steps > 0]
    return float(np.median(steps)) if steps.size else None


def chart_lines(
    frame: pd.DataFrame, metric: str, *, max_points: int = DEFAULT_POINTS_PER_LINE
) -> list[Line]:
    """One downsampled line per GPU; a GPU that never reported it has none."""
    interval_s = sampling_interval_s(frame)
    lines = []
    for _, rows in frame.groupby("gpu_index", sort=True):
        x_all = rows["elapsed_s"].to_numpy(dtype=float)
        y_all = rows[metric].to_numpy(dtype=float)
        present = ~np.isnan(y_all)
        if not present.any():
            continue
        gap_starts = _gap_starts(x_all, interval_s)
        x, y = x_all[present], y_all[present]
        if x.size > max_points:
            keep = MinMaxLTTBDownsampler().downsample(x, y, n_out=max_points)
            x, y = x[keep], y[keep]
        x_line, y_line = _break_at(x, y, gap_starts)
        lines.append(Line(int(rows["gpu_index"].iloc[0]), x_line, y_line))
    return lines


def _gap_starts(x: np.ndarray, interval_s: float | None) -> np.ndarray:
    if interval_s is None or x.size < 2:
        return np.empty(0)
    steps = np.diff(x)
    return x[:-1][steps > GAP_FACTOR * interval_s]


def _break_at(
    x: np.ndarray, y: np.ndarray, gap_starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    if gap_starts.size == 0:
        return x, y
    # A NaN point just after each gap's last sample ends the line there.
    break_x = gap_starts + 1e-6
    positions = np.searchsorted(x, break_x)
    return np.insert(x, positions, break_x), np.insert(y, positions, np.nan)


@dataclass(frozen=True)
class PhaseSpan:
    phase: str
    start_s: float
    end_s: float


def phase_spans(frame: pd.DataFrame) -> list[PhaseSpan]:
    """Contiguous stretches of one phase, read off the first GPU's rows."""
    if frame.empty:
        return []
    rows = frame[frame["gpu_index"] == frame["gpu_index"].min()]
    phases = rows["phase"].to_numpy()
    times = rows["elapsed_s"].to_numpy(dtype=float)
    change = np.flatnonzero(phases[1:] != phases[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [phases.size]))
    spans = []
    for start, end in zip(starts, ends, strict=True):
        # Each span runs to where the next begins, so shaded bands touch.
        end_s = times[end] if end < times.size else times[-1]
        spans.append(PhaseSpan(str(phases[start]), float(times[start]), float(end_s)))
    return spans
