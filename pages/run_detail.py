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
# A final run's pod is usually confirmed gone within seconds of the end.
TERMINATION_REFRESH_S = 2.0
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
                f"There is no run with id {ui.code(run_id)}: check the link, or pick "
                "the run from the Runs page."
            )
    st.page_link(ui.RUNS_PAGE, label="All runs", icon=":material/list:")
    st.stop()


def _facts(run: Run) -> None:
    parameters = ", ".join(f"{k}={v}" for k, v in run.parameters.items())
    price = f"{ui.usd(run.price_per_hour)}/GPU-hour" if run.price_per_hour else "—"
    tier = ui.escape(f"{run.cloud_tier} ({run.provider})")
    cells = st.columns(4)
    cells[0].markdown(f"**GPU**  \n{ui.escape(run.gpu_name)} ({ui.code(run.gpu_type)})")
    cells[1].markdown(f"**Price frozen at launch**  \n{price}, {tier}")
    cells[1].caption(f"read {ui.when(run.price_read_at)}")
    cells[2].markdown(
        f"**Workload**  \n{ui.code(run.model_ref)}, {ui.plural(run.samples, 'sample')}"
    )
    cells[3].markdown(
        f"**Parameters**  \n{ui.escape(parameters) or 'workload defaults'}"
    )


def _status(run: Run) -> None:
    progress = ""
    if run.is_active:
        progress = f" · {run.samples_done}/{run.samples} samples"
        if run.agent_state:
            progress += f" (agent {ui.escape(run.agent_state)})"
    st.markdown(
        f"{ui.status_markdown(run)} · launched {ui.when(run.created_at)} · "
        f"wall {ui.duration(ui.wall_seconds(run))}{progress}"
    )


def _simulated(run: Run, charts: ChartSet | None) -> bool:
    return bool(run.simulated_metrics) or (charts is not None and charts.simulated)


def _warnings(run: Run, result: Result | None, charts: ChartSet | None) -> None:
    if _simulated(run, charts):
        st.warning(
            "**Simulated GPU metrics**: this run's GPU readings were simulated by a "
            "mock pod on a machine without a GPU, not measured.",
            icon=":material/science:",
        )
    if run.error_message and run.run_state in (RunState.FAILED, RunState.TIMED_OUT):
        st.error(ui.escape(run.error_message))
    elif run.error_message:
        st.info(ui.escape(run.error_message))
    for note in result.workload.notes if result and result.workload else []:
        st.info(ui.escape(note))
    if result is not None and result.telemetry.status != "ok":
        reason = ui.escape(result.telemetry.reason or "no reason given")
        st.info(f"GPU telemetry was {ui.escape(result.telemetry.status)}: {reason}.")


def _termination(run_id: str) -> None:
    """The pod's termination, refreshed until confirmed; then the whole page."""
    run = runs.get_run(run_id)
    if not run.may_be_billing:
        # Confirmed: one full rerun fills in the billed time and all-in costs.
        st.rerun()
    pod = ui.code(run.pod_id)
    if ui.terminating(run):
        st.info(
            f"Terminating pod {pod}: waiting for {ui.escape(run.provider)} to "
            "confirm. The billed time and all-in costs appear once it does.",
            icon=":material/hourglass_top:",
        )
        return
    reason = (
        f" Last error: {ui.escape(run.terminate_error)}" if run.terminate_error else ""
    )
    st.warning(
        f"Pod {pod} may still be billing: the provider has not confirmed it "
        f"terminated after {ui.plural(run.terminate_attempts, 'attempt')}. "
        f"Persephone keeps retrying; check the provider's console.{reason}"
    )


def _metrics(run: Run, result: Result | None, simulated: bool) -> None:
    rows = card_rows(run, result)
    if not rows:
        st.caption("This run produced no measurements.")
        return
    if simulated:
        st.subheader("Measurements (simulated)")
        st.caption(
            "A mock pod on a machine without a GPU produced these figures, not the "
            "GPU named above: its latencies, costs and GPU readings illustrate the "
            "method only."
        )
    else:
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


def _charts(run: Run, charts: ChartSet | None) -> None:
    st.subheader("GPU time series")
    if charts is None or charts.rows == 0:
        st.caption(
            "No GPU samples yet."
            if run.is_active
            else "This run recorded no GPU samples."
        )
        return
    simulated = _simulated(run, charts)
    figures = {
        metric: metric_figure(metric, charts, simulated=simulated) for metric in METRICS
    }
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
    # A table, not a dataframe: notes (provider errors) wrap instead of being
    # cut off. Its cells are Markdown, so the notes are escaped.
    table = pd.DataFrame(
        {
            "time": [ui.when(event.at) for event in events],
            "after launch": [
                ui.duration((event.at - run.created_at).total_seconds())
                for event in events
            ],
            "state": [ui.escape(event.state) for event in events],
            "note": [ui.escape(event.message or "") for event in events],
        }
    )
    st.table(table, hide_index=True)


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
    st.toast(f"Cancelling run {ui.code(run_id)}; its pod is terminated when it stops.")


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
    _charts(run, charts)
    _timeline(run)


def _finished(run: Run) -> None:
    st.session_state.pop(FRAME_KEY.format(run.id), None)
    result = runs.result_document(run.id)
    charts = _final_charts(run.id, run.timeseries_rows) if run.timeseries_rows else None
    _status(run)
    if run.may_be_billing:
        st.fragment(run_every=TERMINATION_REFRESH_S)(_termination)(run.id)
    _warnings(run, result, charts)
    _metrics(run, result, _simulated(run, charts))
    _charts(run, charts)
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
