"""Compare: one workload on several GPU types, ranked by cost and by latency."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from pandas.io.formats.style import Styler
from plotly.colors import qualitative

from app import ui
from app.models import RunState
from app.services import runs, sweeps
from app.services.compare import (
    AlignedLine,
    Comparison,
    GpuGroup,
    RunRow,
    Spread,
    aligned_timeseries,
    compare,
    comparison_csv,
    comparison_json,
    run_bundle,
    workload_key,
)
from app.services.timeseries import METRICS

PER_RUN = "Per run"
PER_GPU = "Per GPU type"
RECENT_RUNS = 300
DEFAULT_PICKED = 12
CHART_HEIGHT_PX = 320
FRONT_COLOUR = "#d0021b"
PALETTE = qualitative.Plotly
MONEY_COLUMNS = ("$/GPU-hour", "Steady $/1k", "All-in $/1k", "Steady $/1M tokens")
QUANTITY_COLUMNS = ("p50 ms", "p95 ms", "p99 ms", "Samples/s", "J/sample")
# What an empty cell shows (a figure a run does not have, such as tokens).
MISSING = "—"
FLAG_TEXT = {
    "not_succeeded": "not succeeded",
    "simulated": "simulated",
    "throttled": "throttled",
    "different_workload": "different workload",
    "telemetry_degraded": "telemetry degraded",
    "telemetry_unavailable": "no telemetry",
}
# (title, unit, value of a run, value of a GPU type)
BARS: tuple[
    tuple[
        str, str, Callable[[RunRow], float | None], Callable[[GpuGroup], Spread | None]
    ],
    ...,
] = (
    ("p95 latency", "ms", lambda r: r.latency_p95_ms, lambda g: g.latency_p95_ms),
    (
        "Throughput",
        "samples/s",
        lambda r: r.throughput_per_s,
        lambda g: g.throughput_per_s,
    ),
    (
        "Steady cost per 1,000 samples",
        "USD",
        lambda r: r.steady_usd_per_1k_samples,
        lambda g: g.steady_usd_per_1k_samples,
    ),
    (
        "Energy per sample",
        "J",
        lambda r: r.energy_j_per_sample,
        lambda g: g.energy_j_per_sample,
    ),
)


# Choosing what to compare


def _requested_ids() -> list[str] | None:
    """Run ids named in the address (`?sweep=` or `?runs=`), else None."""
    named_sweep, named_runs = "sweep" in st.query_params, "runs" in st.query_params
    if (named_sweep or named_runs) and st.button("Choose other runs", key="cmp_clear"):
        st.query_params.clear()
        st.rerun()
    if named_sweep and named_runs:
        ui.fail(
            "The address names both `?runs=` and `?sweep=`: use one or the other "
            "(the API refuses both as well)."
        )
    if named_sweep:
        return _sweep_run_ids(st.query_params.get("sweep", "").strip())
    if not named_runs:
        return None
    named = st.query_params.get("runs", "")
    ids = [run_id.strip() for run_id in named.split(",") if run_id.strip()]
    if not ids:
        ui.fail(
            f"The address's run list is empty ({ui.code('?runs=' + named)}): name "
            "run ids separated by commas, or choose other runs."
        )
    return ids


def _sweep_run_ids(sweep_id: str) -> list[str]:
    if not sweep_id:
        ui.fail(
            "The address's sweep id is empty (`?sweep=`): name a sweep id, or "
            "choose other runs."
        )
    try:
        detail = sweeps.get_sweep(sweep_id)
    except sweeps.SweepNotFound:
        ui.fail(
            f"There is no sweep with id {ui.code(sweep_id)}: check the link, or "
            "choose other runs."
        )
    st.caption(
        f"Sweep {ui.code(sweep_id)}: {ui.code(detail.sweep.model_ref)}, "
        f"{ui.plural(detail.sweep.samples, 'sample')}, "
        f"{ui.plural(len(detail.runs), 'run')}."
    )
    return [run.id for run in detail.runs]


def _choose_ids() -> list[str]:
    mode = st.radio(
        "Compare", ["A sweep", "Runs of one workload"], horizontal=True, key="cmp_mode"
    )
    if mode == "A sweep":
        return _choose_sweep()
    return _choose_runs()


def _choose_sweep() -> list[str]:
    recent = sweeps.list_sweeps(limit=50)
    if not recent:
        st.info("No sweep yet: launch one on the Sweep page, or compare runs.")
        return []
    labels = {
        sweep.id: f"{sweep.id} · {sweep.model_ref} × {sweep.samples} · "
        f"{ui.when(sweep.created_at)}"
        for sweep in recent
    }
    sweep_id = st.selectbox(
        "Sweep", list(labels), format_func=labels.__getitem__, key="cmp_sweep"
    )
    return [run.id for run in sweeps.get_sweep(sweep_id).runs]


def _choose_runs() -> list[str]:
    recent = runs.list_runs(states=[RunState.SUCCEEDED.value], limit=RECENT_RUNS)
    if not recent:
        st.info("No succeeded run yet: launch a few on the Launch or Sweep page.")
        return []
    by_workload: dict[str, list[str]] = {}
    labels: dict[str, str] = {}
    for run in recent:
        by_workload.setdefault(workload_key(run).label, []).append(run.id)
        labels[run.id] = f"{run.gpu_type} · {run.id} · {ui.when(run.created_at)}"
    workload = st.selectbox("Workload", list(by_workload), key="cmp_workload")
    options = by_workload[workload]
    return st.multiselect(
        "Runs",
        options,
        default=options[:DEFAULT_PICKED],
        format_func=labels.__getitem__,
        key=f"cmp_runs_{workload}",
    )


# What the comparison says


def _callouts(comparison: Comparison) -> None:
    cost, latency = comparison.best_for_cost, comparison.best_for_latency
    if cost is None or latency is None:
        st.info("No run here has succeeded yet, so nothing is ranked.")
        return
    st.success(
        f"**Best for cost:** {ui.escape(cost.gpu_type)} ({ui.escape(cost.tier)}) — "
        f"{ui.usd(cost.value)} per 1,000 samples, steady state "
        f"(run {ui.code(cost.run_id)})."
    )
    st.success(
        f"**Best for latency:** {ui.escape(latency.gpu_type)} "
        f"({ui.escape(latency.tier)}) — p95 {ui.quantity(latency.value, 'ms')} "
        f"(run {ui.code(latency.run_id)})."
    )
    left, right, third = st.columns(3)
    left.metric(
        "Best for cost (steady $/1k samples)", ui.usd(cost.value), cost.gpu_type
    )
    right.metric(
        "Best for latency (p95)", ui.quantity(latency.value, "ms"), latency.gpu_type
    )
    third.metric(
        "On the Pareto front", ui.plural(len(comparison.pareto_run_ids), "run")
    )


def _flags(flags: list[str]) -> str:
    return ", ".join(FLAG_TEXT.get(flag, flag) for flag in flags)


def _run_table(comparison: Comparison) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Run": [r.run_id for r in comparison.rows],
            "GPU": [r.gpu_type for r in comparison.rows],
            "Tier": [r.tier for r in comparison.rows],
            "$/GPU-hour": [r.price_per_hour_usd for r in comparison.rows],
            "State": [r.state for r in comparison.rows],
            "n": [r.latency_n for r in comparison.rows],
            "p50 ms": [r.latency_p50_ms for r in comparison.rows],
            "p95 ms": [r.latency_p95_ms for r in comparison.rows],
            "p99 ms": [r.latency_p99_ms for r in comparison.rows],
            "Samples/s": [r.throughput_per_s for r in comparison.rows],
            "Steady $/1k": [r.steady_usd_per_1k_samples for r in comparison.rows],
            "All-in $/1k": [r.all_in_usd_per_1k_samples for r in comparison.rows],
            "Steady $/1M tokens": [r.steady_usd_per_1m_tokens for r in comparison.rows],
            "J/sample": [r.energy_j_per_sample for r in comparison.rows],
            "Energy method": [r.energy_method for r in comparison.rows],
            "Pareto": [r.on_pareto_front for r in comparison.rows],
            "Flags": [_flags(list(r.flags)) for r in comparison.rows],
        }
    )


def _spread_text(
    spread: Spread | None, show: Callable[[float | None], str] = ui.quantity
) -> str:
    if spread is None:
        return MISSING
    if spread.n < 2:
        return show(spread.mean)
    deviation = f" ± {show(spread.stdev)}" if spread.stdev is not None else ""
    return (
        f"{show(spread.mean)}{deviation} "
        f"({show(spread.min)}–{show(spread.max)}, n={spread.n})"
    )


def _group_table(comparison: Comparison) -> pd.DataFrame:
    groups = comparison.groups
    return pd.DataFrame(
        {
            "GPU": [g.gpu_type for g in groups],
            "Tier": [g.tier for g in groups],
            "$/GPU-hour": [g.price_per_hour_usd for g in groups],
            "Runs ok": [f"{g.runs_succeeded}/{len(g.run_ids)}" for g in groups],
            "n": [g.latency_n for g in groups],
            "p50 ms": [_spread_text(g.latency_p50_ms) for g in groups],
            "p95 ms": [_spread_text(g.latency_p95_ms) for g in groups],
            "p99 ms": [_spread_text(g.latency_p99_ms) for g in groups],
            "Samples/s": [_spread_text(g.throughput_per_s) for g in groups],
            "Steady $/1k": [
                _spread_text(g.steady_usd_per_1k_samples, ui.usd) for g in groups
            ],
            "All-in $/1k": [
                _spread_text(g.all_in_usd_per_1k_samples, ui.usd) for g in groups
            ],
            "J/sample": [_spread_text(g.energy_j_per_sample) for g in groups],
            "Pareto": [g.on_pareto_front for g in groups],
            "Flags": [_flags(list(g.flags)) for g in groups],
        }
    )


def _styled(table: pd.DataFrame) -> Styler:
    """Figures shown as everywhere on the dashboard; an empty cell is "—".

    The styling changes what is shown, not the numbers: columns of figures
    stay numeric, so they sort as numbers (the exports keep full precision).
    """
    shown: dict[str, Callable[[float], str]] = {}
    for column in (*MONEY_COLUMNS, *QUANTITY_COLUMNS, "n"):
        if column not in table or not _all_numbers(table[column]):
            continue
        table[column] = pd.to_numeric(table[column]).astype(float)
        if column in MONEY_COLUMNS:
            shown[column] = ui.usd
        elif column == "n":
            shown[column] = "{:,.0f}".format
        else:
            shown[column] = ui.quantity
    return table.style.format(shown, na_rep=MISSING)


def _all_numbers(column: pd.Series) -> bool:
    return all(
        value is None or isinstance(value, int | float) for value in column.tolist()
    )


def _error_bars(
    values: list[float | None], ranges: list[tuple[float, float] | None]
) -> dict[str, object]:
    """Min–max whiskers around each mean; none where there is no value."""
    above: list[float] = []
    below: list[float] = []
    for value, span in zip(values, ranges, strict=True):
        if value is None or span is None:
            above.append(0.0)
            below.append(0.0)
            continue
        low, high = span
        above.append(high - value)
        below.append(value - low)
    return {"type": "data", "symmetric": False, "array": above, "arrayminus": below}


def _gpu_colours(comparison: Comparison) -> dict[str, str]:
    """One colour per GPU type, the same in every chart of the page."""
    return {
        group.gpu_type: PALETTE[number % len(PALETTE)]
        for number, group in enumerate(comparison.groups)
    }


def _bar_figure(
    title: str,
    unit: str,
    labels: list[str],
    values: list[float | None],
    colours: list[str],
    ranges: list[tuple[float, float] | None] | None = None,
) -> go.Figure:
    error = _error_bars(values, ranges) if ranges is not None else None
    figure = go.Figure(go.Bar(x=labels, y=values, error_y=error, marker_color=colours))
    figure.update_layout(
        title=title,
        yaxis_title=unit,
        height=CHART_HEIGHT_PX,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    if unit == "USD":
        # Plotly would write $0.00001 as "10µ".
        figure.update_yaxes(tickprefix="$", exponentformat="none")
    return figure


def _simulated(comparison: Comparison) -> str:
    """A chart title's suffix when any run it draws has simulated metrics."""
    return " (simulated)" if any(r.simulated for r in comparison.rows) else ""


def _bars(comparison: Comparison, level: str) -> None:
    colours = _gpu_colours(comparison)
    rows = [r for r in comparison.rows if r.ranked]
    groups = comparison.groups
    columns = st.columns(2)
    for number, (name, unit, of_run, of_group) in enumerate(BARS):
        title = name + _simulated(comparison)
        if level == PER_RUN:
            figure = _bar_figure(
                title,
                unit,
                [f"{r.gpu_type} · {r.run_id}" for r in rows],
                [of_run(r) for r in rows],
                [colours[r.gpu_type] for r in rows],
            )
        else:
            spreads = [of_group(g) for g in groups]
            figure = _bar_figure(
                title,
                unit,
                [g.gpu_type for g in groups],
                [s.mean if s else None for s in spreads],
                [colours[g.gpu_type] for g in groups],
                [(s.min, s.max) if s else None for s in spreads],
            )
        columns[number % 2].plotly_chart(figure, key=f"cmp_bar_{number}")


@dataclass(frozen=True)
class _Point:
    label: str
    gpu_type: str
    cost: float
    p95_ms: float
    on_front: bool


def _points(comparison: Comparison, level: str) -> list[_Point]:
    if level == PER_RUN:
        candidates = [
            (
                f"{r.gpu_type} · {r.run_id}",
                r.gpu_type,
                r.steady_usd_per_1k_samples,
                r.latency_p95_ms,
                r.on_pareto_front,
            )
            for r in comparison.rows
            if r.ranked
        ]
    else:
        candidates = [
            (
                g.gpu_type,
                g.gpu_type,
                g.steady_usd_per_1k_samples.mean
                if g.steady_usd_per_1k_samples
                else None,
                g.latency_p95_ms.mean if g.latency_p95_ms else None,
                g.on_pareto_front,
            )
            for g in comparison.groups
        ]
    return [
        _Point(label, gpu_type, cost, p95, front)
        for label, gpu_type, cost, p95, front in candidates
        if cost is not None and p95 is not None
    ]


def _scatter(comparison: Comparison, level: str) -> None:
    points = _points(comparison, level)
    if not points:
        return
    colours = _gpu_colours(comparison)
    front = sorted((p for p in points if p.on_front), key=lambda p: p.cost)
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=[p.cost for p in points],
            y=[p.p95_ms for p in points],
            text=[p.gpu_type for p in points] if level == PER_GPU else None,
            hovertext=[p.label for p in points],
            mode="markers+text" if level == PER_GPU else "markers",
            textposition="top center",
            marker={
                "size": 12,
                "color": [colours[p.gpu_type] for p in points],
                # The front's members wear a thick outline in the front's colour.
                "line": {
                    "width": [3 if p.on_front else 0 for p in points],
                    "color": FRONT_COLOUR,
                },
            },
            name="runs" if level == PER_RUN else "GPU types",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=[p.cost for p in front],
            y=[p.p95_ms for p in front],
            mode="lines",
            line={"color": FRONT_COLOUR, "dash": "dot"},
            name="Pareto front",
        )
    )
    figure.update_layout(
        title="Cost against latency (lower left is better; outlined: the Pareto "
        f"front){_simulated(comparison)}",
        xaxis_title="steady USD per 1,000 samples",
        yaxis_title="p95 latency (ms)",
        height=420,
    )
    figure.update_xaxes(tickprefix="$", exponentformat="none")
    st.plotly_chart(figure, key="cmp_scatter")


def _timeseries(comparison: Comparison) -> None:
    metric = st.selectbox(
        "GPU metric",
        list(METRICS),
        format_func=lambda m: f"{METRICS[m][0]} ({METRICS[m][1]})",
        key="cmp_metric",
    )
    lines = aligned_timeseries(comparison.run_ids, metric)
    if not lines:
        st.caption("No GPU samples were stored for these runs.")
        return
    figure = _timeseries_figure(
        lines, metric, _gpu_colours(comparison), _simulated(comparison)
    )
    st.plotly_chart(figure, key="cmp_series")
    unaligned = sorted({line.run_id for line in lines if line.measure_start_s is None})
    if unaligned:
        st.caption(
            "Never reached measurement, so drawn from the agent's start: "
            f"{', '.join(unaligned)}."
        )


def _timeseries_figure(
    lines: list[AlignedLine], metric: str, colours: dict[str, str], suffix: str = ""
) -> go.Figure:
    title, unit = METRICS[metric]
    figure = go.Figure(
        [
            go.Scatter(
                x=line.x_s,
                y=line.y,
                mode="lines",
                name=line.label,
                line={"color": colours.get(line.gpu_type), "width": 1.5},
            )
            for line in lines
        ]
    )
    figure.add_vline(x=0, line_dash="dot", annotation_text="measure starts")
    figure.update_layout(
        title=f"{title}, aligned at the start of measurement{suffix}",
        xaxis_title="seconds since measurement started",
        yaxis_title=unit,
        height=380,
    )
    return figure


def _downloads(comparison: Comparison) -> None:
    left, middle, right = st.columns(3)
    left.download_button(
        "Comparison per run (CSV)",
        comparison_csv(comparison),
        file_name="comparison-runs.csv",
        mime="text/csv",
        key="cmp_csv_runs",
    )
    middle.download_button(
        "Comparison per GPU type (CSV)",
        comparison_csv(comparison, level="gpu_type"),
        file_name="comparison-gpu-types.csv",
        mime="text/csv",
        key="cmp_csv_gpus",
    )
    right.download_button(
        "Comparison (JSON)",
        comparison_json(comparison),
        file_name="comparison.json",
        mime="application/json",
        key="cmp_json",
    )
    labels = {
        r.run_id: f"{r.gpu_type} · {r.run_id} ({r.state})" for r in comparison.rows
    }
    run_id = st.selectbox(
        "Run bundle (result.json, gpu_timeseries.csv, manifest.json)",
        list(labels),
        format_func=labels.__getitem__,
        key="cmp_bundle_run",
    )
    st.download_button(
        f"Bundle of run {run_id} (zip)",
        run_bundle(run_id),
        file_name=f"{run_id}-bundle.zip",
        mime="application/zip",
        key="cmp_bundle",
    )


def render() -> None:
    ui.require_login()
    st.title("Compare")
    st.write(
        "The same workload on several GPU types, side by side: latency, throughput, "
        "what each unit of work costs and which GPU wins."
    )
    run_ids = _requested_ids()
    if run_ids is None:
        run_ids = _choose_ids()
    if not run_ids:
        return
    try:
        comparison = compare(run_ids)
    except (runs.RunNotFound, runs.InvalidRequest) as error:
        ui.fail(f"{ui.escape(error)} Check the runs named in the address.")
    _callouts(comparison)
    for warning in comparison.warnings:
        st.warning(ui.escape(warning))
    level = st.radio("Table", [PER_RUN, PER_GPU], horizontal=True, key="cmp_level")
    table = _run_table(comparison) if level == PER_RUN else _group_table(comparison)
    st.dataframe(_styled(table), hide_index=True, placeholder=MISSING)
    _bars(comparison, level)
    _scatter(comparison, level)
    _timeseries(comparison)
    _downloads(comparison)


render()
