"""Data for the dashboard's tests: runs made through the services, agent files."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

from agent.schema import (
    TIMESERIES_COLUMNS,
    ColdStart,
    Energy,
    MeasureWindow,
    Result,
    Stats,
    Telemetry,
    Throughput,
    Warmup,
    Workload,
)
from app.db import session_scope
from app.models import Run, RunEvent, RunState, utcnow
from app.services import ingest, runs

ROUTER = Path(__file__).resolve().parents[2] / "streamlit_app.py"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# Phase of each second of a 60-second series: load, warm-up, measure, idle.
PHASES = ((0, "load"), (10, "warmup"), (20, "measure"), (50, "idle"))


class Refreshes:
    """The `run_every` of each fragment the pages declared, by function name.

    AppTest reruns whole scripts and ignores fragment timers, so a test reads
    here whether a page would keep refreshing itself in a browser.
    """

    def __init__(self) -> None:
        self.seen: dict[str, float | None] = {}

    def every(self, name: str) -> float | None:
        """Seconds between refreshes; None when there is no such timer."""
        return self.seen.get(name)

    def clear(self) -> None:
        self.seen.clear()


def open_page(page: str | None = None, **query: str) -> AppTest:
    """The dashboard through its router, on `page` with these query parameters."""
    app = AppTest.from_file(str(ROUTER), default_timeout=30).run()
    if page is not None:
        app.query_params.update(query)
        app.switch_page(page).run()
    return app


def launch(
    gpu_type: str = "l4-24gb", model_ref: str = "mock-v0", samples: int = 8
) -> Run:
    request = runs.parse_launch_request(
        {"gpu_type": gpu_type, "model_ref": model_ref, "samples": samples}
    )
    return runs.start_run(request)


def _phase(second: int) -> str:
    return [name for start, name in PHASES if second >= start][-1]


def timeseries_csv(
    *,
    seconds: Iterable[int] = range(60),
    gpus: int = 2,
    simulated: bool = False,
    unsupported: frozenset[str] = frozenset({"utilization_memory_pct"}),
) -> bytes:
    """A `gpu_timeseries.csv` as the agent writes it, one row per GPU per second."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TIMESERIES_COLUMNS)
    for second in seconds:
        stamp = (START + timedelta(seconds=second)).isoformat(timespec="milliseconds")
        phase = _phase(second)
        busy = phase == "measure"
        for gpu in range(gpus):
            values = {
                "utilization_gpu_pct": 97 if busy else 3,
                "utilization_memory_pct": 41 if busy else 1,
                "memory_used_mib": 20480 + gpu,
                "memory_total_mib": 23034,
                "power_w": 70.5 + gpu if busy else 17.25,
                "temperature_c": 61 if busy else 44,
                "clock_sm_mhz": 2040,
                "clock_mem_mhz": 6251,
            }
            cells = [
                "" if name in unsupported else str(value)
                for name, value in values.items()
            ]
            writer.writerow(
                [
                    stamp.replace("+00:00", "Z"),
                    f"{second:.3f}",
                    phase,
                    gpu,
                    f"GPU-{gpu}",
                    *cells,
                    "none",
                    "true" if simulated else "false",
                ]
            )
    return out.getvalue().encode("utf-8")


def result_json(
    run: Run,
    *,
    p50_ms: float = 12.5,
    n: int = 8,
    simulated: bool = False,
    status: str = "succeeded",
) -> bytes:
    result = Result(
        run_id=run.id,
        agent_version="0.1.0",
        status=status,  # type: ignore[arg-type]
        workload=Workload(model_ref=run.model_ref, kind="mock", device="mock"),
        samples=run.samples,
        samples_completed=n,
        started_at=START.isoformat(),
        cold_start=ColdStart(load_s=1.25, first_call_s=0.031),
        warmup=Warmup(count=2, duration_s=0.05),
        measure_window=MeasureWindow(duration_s=30.0),
        latency_ms=Stats(
            n=n,
            mean=13.0,
            p50=p50_ms,
            p90=18.0,
            p95=19.5,
            p99=21.0,
            p99_indicative=n < 100,
        ),
        throughput=Throughput(samples_per_s=n / 30.0, items_per_s=n / 30.0),
        energy=Energy(
            method="power_integration",
            estimated=True,
            joules=2100.0,
            joules_per_sample=262.5,
        ),
        telemetry=Telemetry(status="ok", rows=120, simulated=simulated),
        simulated_metrics=simulated,
    )
    return result.model_dump_json(indent=2).encode("utf-8")


def finish(
    run: Run,
    state: RunState = RunState.SUCCEEDED,
    *,
    csv_data: bytes | None = None,
    result: bytes | None = None,
    error: str | None = None,
    pod_terminated: bool = True,
) -> Run:
    """Put a queued run where the supervisor would leave it, with its files."""
    if csv_data is not None:
        ingest.ingest_timeseries_chunk(run.id, 0, csv_data)
    if result is not None:
        ingest.store_result(run.id, result)
    now = utcnow()
    with session_scope() as session:
        row = session.get(Run, run.id)
        assert row is not None
        row.state = state
        row.error_message = error
        row.pod_id = f"pod-{run.id}"
        row.pod_created_at = run.created_at + timedelta(seconds=2)
        row.started_at = run.created_at + timedelta(seconds=5)
        row.finished_at = run.created_at + timedelta(seconds=62)
        if pod_terminated:
            row.pod_terminated_at = run.created_at + timedelta(seconds=64)
        else:
            row.terminate_attempts = 3
            row.terminate_error = "RunPod answered 502 Bad Gateway"
        session.add(row)
        session.add(RunEvent(run_id=run.id, at=now, state=state, message=error))
    return runs.get_run(run.id)


def set_created(run: Run, created_at: datetime) -> None:
    with session_scope() as session:
        row = session.get(Run, run.id)
        assert row is not None
        row.created_at = created_at
        session.add(row)


def texts(app: AppTest) -> Iterator[str]:
    """Every rendered element's content, for checks on what reached the page."""
    stack = [app.main, app.sidebar]
    while stack:
        node = stack.pop()
        proto = getattr(node, "proto", None)
        if proto is not None:
            yield str(proto)
        stack.extend(getattr(node, "children", {}).values())
