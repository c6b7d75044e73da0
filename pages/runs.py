"""Runs: every benchmark, newest first, refreshed live while any is active."""

from __future__ import annotations

import math

import streamlit as st

from app import ui
from app.models import Run
from app.services import runs
from app.services.costs import run_cost

PAGE_SIZE = 50
REFRESH_S = 2.0
IDLE_CHECK_S = 5.0
COLUMNS = {
    "Run": 1.5,
    "Status": 1.6,
    "GPU": 1.3,
    "Model": 1.5,
    "Samples": 1.0,
    "Created": 1.5,
    "Duration": 1.0,
    "p50 / p95": 1.3,
    "Cost": 1.1,
    "": 1.0,
}


def _cancel(run_id: str) -> None:
    try:
        runs.cancel_run(run_id)
    except runs.RunNotFound as error:
        st.toast(str(error))
        return
    st.toast(f"Cancelling run {run_id}; its pod is terminated when it stops.")


def _row(run: Run) -> None:
    cells = st.columns(list(COLUMNS.values()), vertical_alignment="center")
    with cells[0]:
        ui.run_link(run.id, icon=False)
    flag = ui.billing_flag(run)
    cells[1].markdown(ui.status_markdown(run) + (f"  \n{flag}" if flag else ""))
    cells[2].markdown(f"{run.gpu_name}  \n:gray[{run.cloud_tier}]")
    cells[3].markdown(f"`{run.model_ref}`")
    done = f"{run.samples_done}/" if run.is_active else ""
    cells[4].write(f"{done}{run.samples}")
    cells[5].caption(ui.when(run.created_at))
    cells[6].write(ui.duration(ui.wall_seconds(run)))
    p50 = ui.quantity(run.latency_p50_ms)
    cells[7].write(f"{p50} / {ui.quantity(run.latency_p95_ms, 'ms')}")
    cells[8].write(ui.usd(run_cost(run).total_usd))
    if run.is_active:
        cells[9].button(
            "Cancel",
            key=f"cancel_{run.id}",
            on_click=_cancel,
            args=(run.id,),
            disabled=run.cancel_requested,
        )


def _table(page: int, live: bool) -> None:
    total = runs.count_runs()
    listed = runs.list_runs(offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    first = (page - 1) * PAGE_SIZE + 1
    st.caption(f"Runs {first}–{first + len(listed) - 1} of {total}, newest first.")
    header = st.columns(list(COLUMNS.values()))
    for cell, name in zip(header, COLUMNS, strict=True):
        if name:
            cell.markdown(f"**{name}**")
    for run in listed:
        _row(run)
    if live and not runs.any_active():
        # Nothing left to watch: one full rerun redraws without the timer.
        st.rerun()


def _watch(total: int) -> None:
    """While nothing runs, notice a run launched elsewhere (two counts)."""
    if runs.any_active() or runs.count_runs() != total:
        st.rerun()


def render() -> None:
    ui.require_login()
    st.title("Runs")
    st.write("Every benchmark run, newest first; the list refreshes while any runs.")
    total = runs.count_runs()
    live = runs.any_active()
    if not live:
        st.fragment(run_every=IDLE_CHECK_S)(_watch)(total)
    if total == 0:
        st.info("No runs yet.")
        st.page_link(
            ui.LAUNCH_PAGE, label="Launch a benchmark", icon=":material/rocket_launch:"
        )
        return
    pages = math.ceil(total / PAGE_SIZE)
    page = 1
    if pages > 1:
        page = int(
            st.number_input(
                f"Page (of {pages})",
                min_value=1,
                max_value=pages,
                step=1,
                key="runs_page",
            )
        )
    st.fragment(run_every=REFRESH_S if live else None)(_table)(page, live)


render()
