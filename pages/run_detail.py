"""Run: one benchmark's results, cost and GPU time series, live while it runs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from agent.schema import Result
from app import ui
from app.charts import ChartSet, build_chart_set, load_frame, metric_figure
from app.models import Run, RunState
from app.run_cards import HOW_WE_MEASURE, card_rows
from app.services import runs
from app.services.timeseries import METRICS

LIVE_REFRESH_S = 1.5
# Past this many rows a refresh redraws a long series: refresh less often.
LONG_SERIES_ROWS = 100_000
LONG_SERIES_REFRESH_S = 5.0
FRAME_KEY = "run_frame:{}"


def _requested_run() -> Run:
    run_id = st.query_params.get("id", "").strip()
    if not run_id:
        st.error("No run is named in the address: open one from the Runs page.")
    else:
        try:
            return runs.get_run(run_id)
        except runs.RunNotFound:
            st.error(
                f"There is no run with id {run_id!r}: check the link, or pick the run "
                "from the Runs page."
            )
    st.page_link(ui.RUNS_PAGE, label="All runs", icon=":material/list:")
    st.stop()


def _facts(run: Run) -> None:
    parameters = ", ".join(f"{k}={v}" for k, v in run.parameters.items())
    price = f"{ui.usd(run.price_per_hour)}/GPU-hour" if run.price_per_hour else "—"
    cells = st.columns(4)
    cells[0].markdown(f"**GPU**  \n{run.gpu_name} (`{run.gpu_type}`)")
    cells[1].markdown(
        f"**Price frozen at launch**  \n{price}, {run.cloud_tier} ({run.provider})"
    )
    cells[1].caption(f"read {ui.when(run.price_read_at)}")
    cells[2].markdown(f"**Workload**  \n`{run.model_ref}`, {run.samples} samples")
    cells[3].markdown(f"**Parameters**  \n{parameters or 'workload defaults'}")


def _status(run: Run) -> None:
    progress = ""
    if run.is_active:
        progress = f" · {run.samples_done}/{run.samples} samples"
        if run.agent_state:
            progress += f" (agent {run.agent_state})"
    st.markdown(
        f"{ui.status_markdown(run)} · launched {ui.when(run.created_at)} · "
        f"wall {ui.duration(ui.wall_seconds(run))}{progress}"
    )


def _warnings(run: Run, result: Result | None, charts: ChartSet | None) -> None:
    if run.simulated_metrics or (charts is not None and charts.simulated):
        st.warning(
            "**Simulated GPU metrics**: this run's GPU readings were simulated by a "
            "mock pod on a machine without a GPU, not measured.",
            icon=":material/science:",
        )
    if run.error_message and run.run_state in (RunState.FAILED, RunState.TIMED_OUT):
        st.error(run.error_message)
    elif run.error_message:
        st.info(run.error_message)
    if ui.billing_flag(run):
        reason = f" Last error: {run.terminate_error}" if run.terminate_error else ""
        st.warning(
            f"Pod {run.pod_id} may still be billing: the provider has not confirmed "
            f"it terminated after {run.terminate_attempts} attempt(s). Persephone "
            f"keeps retrying; check the provider's console.{reason}"
        )
    for note in result.workload.notes if result and result.workload else []:
        st.info(note)
    if result is not None and result.telemetry.status != "ok":
        reason = result.telemetry.reason or "no reason given"
        st.info(f"GPU telemetry was {result.telemetry.status}: {reason}.")


def _metrics(run: Run, result: Result | None) -> None:
    rows = card_rows(run, result)
    if not rows:
        st.caption("This run produced no measurements.")
        return
    st.subheader("Measurements")
    for cards in rows:
        for column, card in zip(st.columns(len(cards)), cards, strict=True):
            column.metric(
                card.label,
                card.value,
                card.note,
                delta_color="off",
                delta_arrow="off",
                help=card.help,
                border=True,
            )


def _charts(charts: ChartSet | None) -> None:
    st.subheader("GPU time series")
    if charts is None or charts.rows == 0:
        st.caption("No GPU samples yet.")
        return
    figures = {metric: metric_figure(metric, charts) for metric in METRICS}
    drawn = [(metric, fig) for metric, fig in figures.items() if fig is not None]
    for first in range(0, len(drawn), 2):
        for column, (metric, figure) in zip(
            st.columns(2), drawn[first : first + 2], strict=False
        ):
            column.plotly_chart(figure, key=f"chart_{metric}")
    missing = [METRICS[metric][0] for metric, fig in figures.items() if fig is None]
    if missing:
        st.caption(f"Not reported by this GPU: {', '.join(missing)}.")


def _timeline(run: Run) -> None:
    events = runs.run_events(run.id)
    st.subheader("Timeline")
    table = pd.DataFrame(
        {
            "time": [ui.when(event.at) for event in events],
            "after launch": [
                ui.duration((event.at - run.created_at).total_seconds())
                for event in events
            ],
            "state": [event.state for event in events],
            "note": [event.message or "" for event in events],
        }
    )
    st.dataframe(table, hide_index=True)


def _downloads(run: Run) -> None:
    csv_name = ui.download_name(run.id, runs.TIMESERIES_CSV)
    result_raw = runs.artifact_bytes(run.id, runs.RESULT_JSON)
    left, right = st.columns(2)
    if run.timeseries_bytes:
        # Read on click: a day of samples is tens of megabytes.
        left.download_button(
            runs.TIMESERIES_CSV,
            data=lambda: runs.artifact_bytes(run.id, runs.TIMESERIES_CSV) or b"",
            file_name=csv_name,
            mime="text/csv",
            on_click="ignore",
            icon=":material/download:",
        )
    if result_raw is not None:
        right.download_button(
            runs.RESULT_JSON,
            data=result_raw,
            file_name=ui.download_name(run.id, runs.RESULT_JSON),
            mime="application/json",
            on_click="ignore",
            icon=":material/download:",
        )


@st.cache_data(max_entries=16, show_spinner="Loading the GPU time series…")
def _final_charts(run_id: str, rows: int) -> ChartSet:
    # `rows` is part of the cache key: more rows ingested, new charts.
    return build_chart_set(load_frame(run_id))


def _live_charts(run_id: str) -> ChartSet:
    """Add only the rows stored since the last refresh to this session's frame."""
    key = FRAME_KEY.format(run_id)
    frame: pd.DataFrame | None = st.session_state.get(key)
    if frame is None:
        frame = load_frame(run_id)
    else:
        last_row = int(frame["row"].iloc[-1]) if len(frame) else -1
        new = load_frame(run_id, after_row=last_row)
        if len(new):
            frame = pd.concat([frame, new], ignore_index=True)
    st.session_state[key] = frame
    return build_chart_set(frame)


def _cancel(run_id: str) -> None:
    runs.cancel_run(run_id)
    st.toast(f"Cancelling run {run_id}; its pod is terminated when it stops.")


def _live(run_id: str) -> None:
    run = runs.get_run(run_id)
    if not run.is_active:
        st.session_state.pop(FRAME_KEY.format(run_id), None)
        st.rerun()
    _status(run)
    st.button(
        "Cancel run",
        on_click=_cancel,
        args=(run.id,),
        disabled=run.cancel_requested,
        icon=":material/cancel:",
    )
    charts = _live_charts(run.id)
    _warnings(run, None, charts)
    _charts(charts)
    _timeline(run)


def _finished(run: Run) -> None:
    st.session_state.pop(FRAME_KEY.format(run.id), None)
    result = runs.result_document(run.id)
    charts = _final_charts(run.id, run.timeseries_rows) if run.timeseries_rows else None
    _status(run)
    _warnings(run, result, charts)
    _metrics(run, result)
    _charts(charts)
    _timeline(run)
    _downloads(run)


def render() -> None:
    ui.require_login()
    run = _requested_run()
    st.title(f"Run {run.id}")
    st.write("One benchmark: what it measured, what it cost, how the GPU behaved.")
    _facts(run)
    if run.is_active:
        long = run.timeseries_rows > LONG_SERIES_ROWS
        every = LONG_SERIES_REFRESH_S if long else LIVE_REFRESH_S
        st.fragment(run_every=every)(_live)(run.id)
    else:
        _finished(run)
    with st.expander("How we measure"):
        st.markdown(HOW_WE_MEASURE)


render()
