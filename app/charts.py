"""Plotly figures of a run's GPU time series, one chart per metric.

`load_frame` reads through the services; the rest is pure: a frame with the
columns of `app.services.timeseries` goes in, figures come out. Lines are
downsampled by `chart_lines` (peaks kept, gaps as NaN breaks); arrays go out
as float32, which halves the payload Plotly base64-encodes and is far finer
than a chart can show.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from agent.schema import READING_COLUMNS, TIMESERIES_COLUMNS
from app.services.runs import TIMESERIES_CSV, artifact_bytes
from app.services.timeseries import (
    DEFAULT_POINTS_PER_LINE,
    METRICS,
    Line,
    PhaseSpan,
    chart_lines,
    load_samples,
    phase_spans,
)

logger = logging.getLogger(__name__)

FLOAT_COLUMNS = READING_COLUMNS
CHART_COLUMNS = ("row", "elapsed_s", "phase", "gpu_index", *FLOAT_COLUMNS, "simulated")
PERCENT_METRICS = frozenset({"utilization_gpu_pct", "utilization_memory_pct"})
PHASE_COLOURS = {
    "load": "#9e9e9e",
    "warmup": "#f5a623",
    "measure": "#4a90e2",
    "idle": "#c7c7c7",
}
GPU_COLOURS = qualitative.Plotly
# A band narrower than this share of the x range gets no label: it would
# overlap its neighbours' labels.
MIN_LABELLED_SHARE = 0.04
CHART_HEIGHT_PX = 300


@dataclass(frozen=True)
class ChartSet:
    """Everything the run page draws, small enough to cache."""

    lines: dict[str, list[Line]]
    spans: list[PhaseSpan]
    memory_totals_mib: list[float]
    duration_s: float
    simulated: bool
    rows: int


def chart_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns charts need, in the same dtypes whatever the source."""
    chart = frame.loc[:, list(CHART_COLUMNS)].copy()
    for column in (*FLOAT_COLUMNS, "elapsed_s"):
        chart[column] = chart[column].astype(float)
    chart["gpu_index"] = chart["gpu_index"].astype(int)
    chart["simulated"] = chart["simulated"].astype(bool)
    return chart


def frame_from_csv(data: bytes) -> pd.DataFrame:
    """Parse the agent's `gpu_timeseries.csv` into chart columns.

    Reading the stored file with pandas' C parser is about thirty times faster
    than reading the same rows back from the samples table. Raises ValueError
    when the file does not follow the contract.
    """
    header = data.split(b"\n", 1)[0].decode("utf-8").strip()
    if tuple(header.split(",")) != TIMESERIES_COLUMNS:
        raise ValueError(f"gpu_timeseries.csv has an unexpected header: {header!r}")
    frame = pd.read_csv(
        io.BytesIO(data),
        usecols=[c for c in CHART_COLUMNS if c != "row"],
        dtype={"phase": str, **dict.fromkeys(FLOAT_COLUMNS, float)},
        keep_default_na=False,
        na_values={column: [""] for column in FLOAT_COLUMNS},
        true_values=["true"],
        false_values=["false"],
    )
    if len(frame) and (
        frame["simulated"].dtype != bool or frame["gpu_index"].dtype.kind != "i"
    ):
        raise ValueError(
            "gpu_timeseries.csv has a malformed simulated or gpu_index cell"
        )
    frame.insert(0, "row", np.arange(len(frame)))
    return frame


def load_frame(run_id: str, *, after_row: int = -1) -> pd.DataFrame:
    """The run's samples with `row` > after_row, in chart columns.

    A whole series comes from the stored CSV (the fast path); new rows of a
    live run, or a CSV that cannot be parsed, come from the samples table.
    """
    if after_row < 0:
        data = artifact_bytes(run_id, TIMESERIES_CSV)
        if data:
            try:
                return frame_from_csv(data)
            except (ValueError, UnicodeDecodeError) as error:
                logger.warning("run %s: reading rows instead of CSV: %s", run_id, error)
    return chart_frame(load_samples(run_id, after_row=after_row))


def build_chart_set(
    frame: pd.DataFrame, *, max_points: int = DEFAULT_POINTS_PER_LINE
) -> ChartSet:
    if frame.empty:
        return ChartSet({}, [], [], 0.0, False, 0)
    totals = frame["memory_total_mib"].dropna().unique()
    return ChartSet(
        lines={
            # Three columns, not all: the grouping copies whatever it is given.
            metric: chart_lines(
                frame[["gpu_index", "elapsed_s", metric]], metric, max_points=max_points
            )
            for metric in METRICS
        },
        spans=phase_spans(frame),
        memory_totals_mib=sorted(float(total) for total in totals),
        duration_s=float(frame["elapsed_s"].max()),
        simulated=bool(frame["simulated"].any()),
        rows=len(frame),
    )


def time_unit(duration_s: float) -> tuple[str, float]:
    """The unit a reader takes in at a glance: seconds, minutes or hours."""
    if duration_s <= 20 * 60:
        return "s", 1.0
    if duration_s <= 10 * 3600:
        return "min", 60.0
    return "h", 3600.0


def metric_figure(
    metric: str, charts: ChartSet, *, simulated: bool | None = None
) -> go.Figure | None:
    """The metric's chart, or None when no GPU ever reported it.

    The title says "simulated" when the readings were (`simulated`, by default
    whether any sample says so).
    """
    lines = charts.lines.get(metric, [])
    if not lines:
        return None
    title, unit = METRICS[metric]
    time_name, scale = time_unit(charts.duration_s)
    simulated = charts.simulated if simulated is None else simulated
    suffix = " (simulated)" if simulated else ""
    figure = go.Figure(
        data=[_trace(line, unit, scale) for line in lines],
        layout=_layout(f"{title} ({unit}){suffix}", time_name, metric),
    )
    figure.update_layout(shapes=phase_shapes(charts.spans, scale))
    if metric == "memory_used_mib":
        _add_memory_totals(figure, charts.memory_totals_mib)
    return figure


def phase_shapes(spans: list[PhaseSpan], scale: float = 1.0) -> list[dict[str, object]]:
    """One shaded, labelled band per run phase, behind the lines."""
    if not spans:
        return []
    width_s = max(spans[-1].end_s - spans[0].start_s, 1e-9)
    shapes: list[dict[str, object]] = []
    for span in spans:
        shape: dict[str, object] = {
            "type": "rect",
            "xref": "x",
            "yref": "paper",
            "x0": span.start_s / scale,
            "x1": span.end_s / scale,
            "y0": 0,
            "y1": 1,
            "fillcolor": PHASE_COLOURS.get(span.phase, "#dddddd"),
            "opacity": 0.15,
            "layer": "below",
            "line": {"width": 0},
            "name": span.phase,
        }
        if (span.end_s - span.start_s) / width_s >= MIN_LABELLED_SHARE:
            shape["label"] = {
                "text": span.phase,
                "textposition": "top center",
                "font": {"size": 11, "color": "#666666"},
            }
        shapes.append(shape)
    return shapes


def _trace(line: Line, unit: str, scale: float) -> go.Scatter:
    return go.Scatter(
        x=(line.x / scale).astype(np.float32),
        y=line.y.astype(np.float32),
        mode="lines",
        name=f"GPU {line.gpu_index}",
        legendgroup=f"gpu{line.gpu_index}",
        line={"width": 1.5, "color": GPU_COLOURS[line.gpu_index % len(GPU_COLOURS)]},
        connectgaps=False,
        hovertemplate=f"%{{y:.1f}} {unit}",
    )


def _layout(title: str, time_name: str, metric: str) -> go.Layout:
    yaxis: dict[str, object] = {"rangemode": "tozero", "hoverformat": ".1f"}
    if metric in PERCENT_METRICS:
        yaxis["range"] = [0, 105]
    return go.Layout(
        title={"text": title, "font": {"size": 14}},
        height=CHART_HEIGHT_PX,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        xaxis={"title": {"text": f"elapsed ({time_name})"}, "hoverformat": ".2f"},
        yaxis=yaxis,
        hovermode="x unified",
        legend={
            "orientation": "h",
            "y": 1.02,
            "yanchor": "bottom",
            "x": 1,
            "xanchor": "right",
        },
        # Keeps the reader's zoom while live refreshes redraw the chart.
        uirevision=metric,
    )


def _add_memory_totals(figure: go.Figure, totals_mib: list[float]) -> None:
    for total in totals_mib:
        figure.add_hline(
            y=total,
            line={"dash": "dash", "width": 1, "color": "#888888"},
            annotation_text=f"total {total:,.0f} MiB",
            annotation_position="bottom right",
        )
