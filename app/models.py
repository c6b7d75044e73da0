"""Storage tables: runs, their state transitions, artifacts and GPU samples.

Times are timezone-aware UTC datetimes in Python and naive UTC in SQLite.
"""

from __future__ import annotations

import enum
import json
import secrets
from datetime import UTC, datetime

from sqlalchemy import DateTime, Index, LargeBinary, TypeDecorator
from sqlmodel import Column, Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (all SQLite can hold) and gives back aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> object:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> object:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return secrets.token_hex(6)


class RunState(enum.StrEnum):
    QUEUED = "queued"
    PROVISIONING = "provisioning"
    STARTING = "starting"
    RUNNING = "running"
    COLLECTING = "collecting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.TIMED_OUT}
)
ACTIVE_STATES = frozenset(set(RunState) - FINAL_STATES)


class Run(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    created_at: datetime = Field(
        default_factory=utcnow, index=True, sa_type=UTCDateTime
    )
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    state: str = Field(default=RunState.QUEUED, index=True, max_length=16)
    error_message: str | None = None

    # What was asked for.
    gpu_type: str = Field(max_length=64)
    model_ref: str = Field(max_length=512)
    samples: int
    parameters_json: str = "{}"
    sweep_id: str | None = Field(default=None, index=True, max_length=32)
    repeat_index: int = 0

    # The offer in effect at launch, frozen so later price changes move nothing.
    provider: str = Field(max_length=16)
    provider_gpu_id: str = Field(max_length=128)
    gpu_name: str = Field(max_length=128)
    cloud_tier: str = Field(max_length=16)
    price_per_hour: float | None = None
    price_read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    simulated_speed: float | None = None

    # The pod. `pod_id` is stored the moment the provider returns it.
    pod_name: str = Field(max_length=64, index=True)
    pod_id: str | None = Field(default=None, max_length=128)
    pod_created_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    pod_terminated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    terminate_attempts: int = 0
    terminate_error: str | None = None

    # Lifecycle.
    cancel_requested: bool = False
    deadline_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)

    # Ingestion progress of the agent's files.
    timeseries_bytes: int = 0
    timeseries_rows: int = 0
    agent_state: str | None = Field(default=None, max_length=16)
    samples_done: int = 0

    # Summary of result.json, kept as columns for lists and comparisons.
    latency_n: int | None = None
    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_mean_ms: float | None = None
    throughput_per_s: float | None = None
    measure_s: float | None = None
    output_tokens: int | None = None
    tokens_per_s: float | None = None
    ttft_p50_ms: float | None = None
    tpot_p50_ms: float | None = None
    energy_j: float | None = None
    energy_method: str | None = Field(default=None, max_length=32)
    simulated_metrics: bool | None = None
    telemetry_status: str | None = Field(default=None, max_length=16)
    throttled: bool | None = None

    @property
    def run_state(self) -> RunState:
        return RunState(self.state)

    @property
    def parameters(self) -> dict[str, object]:
        return json.loads(self.parameters_json)

    @property
    def is_active(self) -> bool:
        return self.run_state in ACTIVE_STATES

    @property
    def may_be_billing(self) -> bool:
        """A pod was made and no provider has confirmed it is gone."""
        return self.pod_id is not None and self.pod_terminated_at is None


class RunEvent(SQLModel, table=True):
    """One state transition, or a notable moment such as a terminate attempt."""

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", index=True, max_length=32)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    state: str = Field(max_length=16)
    message: str | None = None


class ArtifactChunk(SQLModel, table=True):
    """Raw bytes of an agent file, stored in order so downloads are byte-exact."""

    __table_args__ = (Index("ix_artifact_run_name_offset", "run_id", "name", "offset"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", max_length=32)
    name: str = Field(max_length=64)
    offset: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class GpuSample(SQLModel, table=True):
    """One parsed row of `gpu_timeseries.csv`; missing readings stay NULL."""

    __table_args__ = (Index("ix_gpusample_run_row", "run_id", "row"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", max_length=32)
    row: int
    ts: float
    elapsed_s: float
    phase: str = Field(max_length=8)
    gpu_index: int
    gpu_uuid: str | None = Field(default=None, max_length=96)
    utilization_gpu_pct: float | None = None
    utilization_memory_pct: float | None = None
    memory_used_mib: float | None = None
    memory_total_mib: float | None = None
    power_w: float | None = None
    temperature_c: float | None = None
    clock_sm_mhz: float | None = None
    clock_mem_mhz: float | None = None
    throttle_reasons: str | None = Field(default=None, max_length=256)
    simulated: bool = False


class Sweep(SQLModel, table=True):
    """The same workload launched on several GPU types at once."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    created_at: datetime = Field(
        default_factory=utcnow, index=True, sa_type=UTCDateTime
    )
    model_ref: str = Field(max_length=512)
    samples: int
    parameters_json: str = "{}"
    gpu_types_json: str = "[]"
    repeats: int = 1
    estimated_cost_usd: float | None = None
