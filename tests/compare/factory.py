"""Finished runs built through the real ingest path, with numbers chosen by hand.

A run is queued with runs.start_run (so its price is frozen from the mock
catalog exactly as a launch does), then given an agent's result.json and
gpu_timeseries.csv through app.services.ingest, and finally the pod times and
state transitions the supervisor would have stored.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from agent.schema import (
    TIMESERIES_COLUMNS,
    Energy,
    EnergyMethod,
    GpuSummary,
    MeasureWindow,
    Result,
    Stats,
    Telemetry,
    Throughput,
    Tokens,
    Workload,
)
from app.db import session_scope
from app.models import Run, RunEvent, RunState
from app.providers.base import CloudTier
from app.services import ingest, runs
from app.services.runs import LaunchRequest

LAUNCHED_AT = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class Spec:
    """What a finished run measured; every figure is per the whole run."""

    gpu_type: str = "l4-24gb"
    model_ref: str = "mock-v0"
    samples: int = 100
    parameters: dict[str, int | float | str | bool] = field(default_factory=dict)
    tier: CloudTier | None = None
    state: RunState = RunState.SUCCEEDED
    error: str | None = None
    p50_ms: float = 60.0
    p95_ms: float = 75.0
    p99_ms: float = 80.0
    measure_s: float = 6.0
    billed_s: float = 20.0
    energy_j: float | None = 1200.0
    energy_method: EnergyMethod = "power_integration"
    simulated: bool = True
    throttled: bool = False
    output_tokens: int | None = None
    # Seconds of load and warm-up rows before the first "measure" row.
    lead_in_s: int = 3
    sweep_id: str | None = None
    repeat_index: int = 0
    # False: the provider never made a pod (no capacity), so no agent files.
    had_pod: bool = True


def make_run(spec: Spec) -> Run:
    request = LaunchRequest(
        gpu_type=spec.gpu_type,
        model_ref=spec.model_ref,
        samples=spec.samples,
        parameters=spec.parameters,
        tier=spec.tier,
    )
    run = runs.start_run(
        request, sweep_id=spec.sweep_id, repeat_index=spec.repeat_index
    )
    if spec.had_pod:
        ingest.ingest_timeseries_chunk(run.id, 0, timeseries_csv(spec))
        ingest.store_result(run.id, result_json(run.id, spec))
    _finish(run.id, spec)
    return runs.get_run(run.id)


def result_json(run_id: str, spec: Spec) -> bytes:
    succeeded = spec.state == RunState.SUCCEEDED
    result = Result(
        run_id=run_id,
        agent_version="test",
        status="succeeded" if succeeded else "failed",
        error=spec.error,
        workload=Workload(
            model_ref=spec.model_ref,
            kind="mock" if spec.model_ref == "mock-v0" else "hf_causal_lm",
            parameters=dict(spec.parameters),
        ),
        samples=spec.samples,
        samples_completed=spec.samples if succeeded else 0,
        started_at="2025-03-01T12:00:05.000Z",
        measure_window=MeasureWindow(duration_s=spec.measure_s if succeeded else None),
        latency_ms=(
            Stats(n=spec.samples, p50=spec.p50_ms, p95=spec.p95_ms, p99=spec.p99_ms)
            if succeeded
            else None
        ),
        throughput=Throughput(
            samples_per_s=spec.samples / spec.measure_s if succeeded else None
        ),
        tokens=_tokens(spec) if spec.output_tokens else None,
        energy=Energy(
            method=spec.energy_method,
            estimated=spec.energy_method == "power_integration",
            joules=spec.energy_j,
        ),
        gpus=[GpuSummary(index=0, throttled=spec.throttled)],
        telemetry=Telemetry(status="ok", simulated=spec.simulated),
        simulated_metrics=spec.simulated,
    )
    return result.model_dump_json(indent=2).encode()


def _tokens(spec: Spec) -> Tokens:
    assert spec.output_tokens is not None
    return Tokens(
        prompt_tokens=128,
        new_tokens_per_sample=spec.output_tokens // spec.samples,
        total_output_tokens=spec.output_tokens,
        ttft_ms=Stats(n=spec.samples, p50=20.0),
        tpot_ms=Stats(n=spec.samples, p50=5.0),
        itl_ms=Stats(n=spec.samples, p50=5.0),
        output_tokens_per_s=spec.output_tokens / spec.measure_s,
    )


def timeseries_csv(spec: Spec) -> bytes:
    """One row a second: load, warm-up, measure, then idle; power tracks phase."""
    phases = (
        ["load"] * (spec.lead_in_s - 1)
        + ["warmup"]
        + ["measure"] * int(spec.measure_s)
        + ["idle"] * 2
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TIMESERIES_COLUMNS)
    for second, phase in enumerate(phases):
        busy = phase == "measure"
        moment = LAUNCHED_AT + timedelta(seconds=5 + second)
        writer.writerow(
            [
                moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                f"{second:.3f}",
                phase,
                0,
                "GPU-TEST-0",
                96 if busy else 5,
                40 if busy else 1,
                4400 if busy else 1800,
                24576,
                200.0 + second if busy else 60.0,
                60 if busy else 35,
                1980 if busy else 345,
                6251 if busy else 405,
                "sw_power_cap" if busy and spec.throttled else "none",
                "true" if spec.simulated else "false",
            ]
        )
    return buffer.getvalue().encode()


def _finish(run_id: str, spec: Spec) -> None:
    created = runs.get_run(run_id).created_at
    terminated = created + timedelta(seconds=spec.billed_s)
    steps = [
        (RunState.PROVISIONING, created),
        (RunState.STARTING, created + timedelta(seconds=1)),
        (RunState.RUNNING, created + timedelta(seconds=2)),
        (RunState.COLLECTING, terminated - timedelta(seconds=2)),
        (spec.state, terminated - timedelta(seconds=1)),
    ]
    with session_scope() as session:
        run = session.get(Run, run_id)
        assert run is not None
        run.state = spec.state
        run.error_message = spec.error if spec.state != RunState.SUCCEEDED else None
        if spec.had_pod:
            run.pod_id = f"pod{run_id}"
            run.pod_created_at = created
            run.pod_terminated_at = terminated
        run.started_at = created + timedelta(seconds=2)
        run.finished_at = terminated - timedelta(seconds=1)
        if spec.state != RunState.SUCCEEDED:
            run.samples_done = 0
        session.add(run)
        for state, at in steps:
            session.add(RunEvent(run_id=run_id, at=at, state=state))
