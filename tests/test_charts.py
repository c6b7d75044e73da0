"""Chart building: gaps stay gaps, peaks survive downsampling, phases are bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest

from app import charts
from app.services import ingest, runs
from app.services.timeseries import load_samples
from tests.pages.support import launch, timeseries_csv


def _frame(
    seconds: np.ndarray, *, gpus: int = 1, phases: list[str] | None = None
) -> pd.DataFrame:
    """A series as load_samples gives it: one row per GPU per tick."""
    count = seconds.size
    phase = np.array(phases if phases is not None else ["measure"] * count)
    parts = []
    for gpu in range(gpus):
        parts.append(
            pd.DataFrame(
                {
                    "row": np.arange(count) * gpus + gpu,
                    "elapsed_s": seconds.astype(float),
                    "phase": phase,
                    "gpu_index": gpu,
                    **{metric: np.full(count, 50.0) for metric in charts.FLOAT_COLUMNS},
                    "simulated": False,
                }
            )
        )
    return pd.concat(parts).sort_values("row", ignore_index=True)


def test_a_gap_in_sampling_breaks_the_line() -> None:
    seconds = np.concatenate([np.arange(0, 30), np.arange(90, 120)])

    figure = charts.metric_figure("power_w", charts.build_chart_set(_frame(seconds)))

    assert figure is not None
    [trace] = figure.data
    y = np.asarray(trace.y, dtype=float)
    assert np.isnan(y).sum() == 1
    assert trace.x[int(np.flatnonzero(np.isnan(y))[0]) - 1] == 29
    assert trace.connectgaps is False


def test_a_metric_no_gpu_reported_has_no_chart() -> None:
    frame = _frame(np.arange(60), gpus=2)
    frame["utilization_memory_pct"] = np.nan
    frame.loc[frame["gpu_index"] == 1, "clock_mem_mhz"] = np.nan

    chart_set = charts.build_chart_set(frame)

    assert charts.metric_figure("utilization_memory_pct", chart_set) is None
    clock = charts.metric_figure("clock_mem_mhz", chart_set)
    assert clock is not None
    assert [trace.name for trace in clock.data] == ["GPU 0"]


def test_phases_become_labelled_bands_behind_the_lines() -> None:
    phases = ["load"] * 100 + ["warmup"] * 2 + ["measure"] * 800 + ["idle"] * 98
    frame = _frame(np.arange(1000), phases=phases)

    figure = charts.metric_figure("power_w", charts.build_chart_set(frame))

    assert figure is not None
    shapes = figure.layout.shapes
    assert [(s.name, s.x0, s.x1) for s in shapes] == [
        ("load", 0, 100),
        ("warmup", 100, 102),
        ("measure", 102, 902),
        ("idle", 902, 999),
    ]
    assert {s.layer for s in shapes} == {"below"}
    # Two seconds of warm-up in a thousand are too narrow for a label.
    assert [s.label.text for s in shapes] == ["load", None, "measure", "idle"]


def test_downsampling_keeps_the_global_peak_of_a_spiky_series() -> None:
    rng = np.random.default_rng(7)
    frame = _frame(np.arange(100_000))
    frame["power_w"] = rng.uniform(100, 110, size=len(frame))
    frame.loc[73_421, "power_w"] = 697.0

    figure = charts.metric_figure("power_w", charts.build_chart_set(frame))

    assert figure is not None
    y = np.asarray(figure.data[0].y, dtype=float)
    assert y.size <= charts.DEFAULT_POINTS_PER_LINE
    assert np.nanmax(y) == 697.0


def test_memory_chart_shows_the_total_and_percent_charts_stay_in_range() -> None:
    chart_set = charts.build_chart_set(_frame(np.arange(60)))

    memory = charts.metric_figure("memory_used_mib", chart_set)
    utilisation = charts.metric_figure("utilization_gpu_pct", chart_set)

    assert memory is not None and utilisation is not None
    assert [a.text for a in memory.layout.annotations] == ["total 50 MiB"]
    assert utilisation.layout.yaxis.range == (0, 105)


@pytest.mark.parametrize(
    ("duration_s", "unit"), [(600, "s"), (3600, "min"), (86_400, "h")]
)
def test_long_runs_are_charted_in_larger_units(duration_s: float, unit: str) -> None:
    assert charts.time_unit(duration_s)[0] == unit


def test_a_day_on_eight_gpus_fits_in_a_small_payload() -> None:
    frame = _frame(np.arange(86_400), gpus=8)
    frame["power_w"] = np.random.default_rng(1).uniform(50, 700, size=len(frame))

    chart_set = charts.build_chart_set(frame)
    payload = sum(
        len(pio.to_json(charts.metric_figure(metric, chart_set), validate=False))
        for metric in chart_set.lines
    )

    assert chart_set.rows == 691_200
    assert payload < 3_000_000


def test_the_stored_csv_parses_to_the_same_frame_as_the_rows(
    persephone_env: Path,
) -> None:
    run = launch()
    ingest.ingest_timeseries_chunk(run.id, 0, timeseries_csv(gpus=3))

    from_csv = charts.load_frame(run.id)
    from_rows = charts.chart_frame(load_samples(run.id))

    assert len(from_csv) == 180
    pd.testing.assert_frame_equal(from_csv, from_rows, check_like=True)
    assert from_csv["utilization_memory_pct"].isna().all()


def test_a_csv_off_contract_falls_back_to_the_rows(persephone_env: Path) -> None:
    run = launch()
    ingest.ingest_timeseries_chunk(run.id, 0, timeseries_csv())

    with pytest.raises(ValueError, match="unexpected header"):
        charts.frame_from_csv(b"time,power\n1,2\n")
    assert runs.artifact_bytes(run.id, runs.TIMESERIES_CSV) is not None
    assert len(charts.load_frame(run.id, after_row=99)) == 20
