"""Runs: every benchmark, newest first, refreshed live while any is unsettled."""

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
# Widths checked in Chromium at 1280 and 1400 px: no id, number or header is
# cut or broken mid-word.
COLUMNS = {
    "Run": 2.2,
    "Status": 1.5,
    "GPU · model": 2.0,
    "Samples": 1.6,
    "Created": 1.4,
    "Duration": 1.2,
    "p50 / p95 ms": 1.6,
    "Cost": 1.4,
    "": 0.6,
}
GAP = "xsmall"


def _cancel(run_id: str) -> None:
    try:
        runs.cancel_run(run_id)
    except runs.RunNotFound as error:
        st.toast(ui.escape(error))
        return
    st.toast(f"Cancelling run {ui.code(run_id)}; its pod is terminated when it stops.")


def _status(run: Run) -> str:
    lines = [ui.status_markdown(run)]
    flag = ui.billing_flag(run)
    if flag:
        lines.append(flag)
    if run.simulated_metrics:
        lines.append(":gray[simulated]")
    return "  \n".join(lines)


def _row(run: Run) -> None:
    cells = st.columns(list(COLUMNS.values()), gap=GAP, vertical_alignment="center")
    with cells[0]:
        ui.run_link(run.id, icon=False)
    cells[1].markdown(_status(run))
    cells[2].markdown(
        f"{ui.escape(run.gpu_name)} :gray[{ui.escape(run.cloud_tier)}]  \n"
        f"{ui.code(run.model_ref)}"
    )
    done = f"{run.samples_done:,}/" if run.is_active else ""
    cells[3].write(f"{done}{run.samples:,}")
    cells[4].caption(ui.when(run.created_at))
    cells[5].write(ui.duration(ui.wall_seconds(run)))
    p50, p95 = ui.quantity(run.latency_p50_ms), ui.quantity(run.latency_p95_ms)
    cells[6].write(f"{p50} / {p95}")
    cells[7].write(ui.usd(run_cost(run).total_usd))
    if run.is_active:
        cells[8].button(
            "",
            key=f"cancel_{run.id}",
            on_click=_cancel,
            args=(run.id,),
            disabled=run.cancel_requested,
            icon=":material/cancel:",
            help=f"Cancel run {run.id}; its pod is terminated when it stops.",
        )


def _unsettled(listed: list[Run]) -> bool:
    """Something that will still change: a run going, or a pod not yet gone."""
    return runs.any_active() or any(run.may_be_billing for run in listed)


def _table(page: int, live: bool) -> None:
    total = runs.count_runs()
    listed = runs.list_runs(offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    first = (page - 1) * PAGE_SIZE + 1
    st.caption(f"Runs {first}–{first + len(listed) - 1} of {total}, newest first.")
    header = st.columns(list(COLUMNS.values()), gap=GAP)
    for cell, name in zip(header, COLUMNS, strict=True):
        if name:
            cell.markdown(f"**{name}**")
    for run in listed:
        _row(run)
    if live and not _unsettled(listed):
        # Nothing left to watch: one full rerun redraws without the timer.
        st.rerun()


def _watch(total: int) -> None:
    """While nothing runs, notice a run launched elsewhere (two counts)."""
    if runs.any_active() or runs.count_runs() != total:
        st.rerun()


def _page(total: int) -> int:
    pages = math.ceil(total / PAGE_SIZE)
    if pages <= 1:
        return 1
    return int(
        st.number_input(
            f"Page (of {pages})", min_value=1, max_value=pages, step=1, key="runs_page"
        )
    )


def render() -> None:
    ui.require_login()
    st.title("Runs")
    st.write("Every benchmark run, newest first; the list refreshes while any runs.")
    total = runs.count_runs()
    page = _page(total)
    listed = runs.list_runs(offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    live = _unsettled(listed)
    if not live:
        st.fragment(run_every=IDLE_CHECK_S)(_watch)(total)
    if total == 0:
        st.info("No runs yet.")
        st.page_link(
            ui.LAUNCH_PAGE, label="Launch a benchmark", icon=":material/rocket_launch:"
        )
        return
    st.fragment(run_every=REFRESH_S if live else None)(_table)(page, live)


render()
