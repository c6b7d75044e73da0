"""The agent's output formats: `result.json` and the time-series CSV columns.

The dashboard reads `result.json` with these same models, so a change here is a
change of the contract: bump `SCHEMA_VERSION` when a field changes meaning.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

# The columns that hold GPU readings: a number, or an empty cell when the GPU
# does not provide it.
READING_COLUMNS: tuple[str, ...] = (
    "utilization_gpu_pct",
    "utilization_memory_pct",
    "memory_used_mib",
    "memory_total_mib",
    "power_w",
    "temperature_c",
    "clock_sm_mhz",
    "clock_mem_mhz",
)
TIMESERIES_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "elapsed_s",
    "phase",
    "gpu_index",
    "gpu_uuid",
    *READING_COLUMNS,
    "throttle_reasons",
    "simulated",
)

Phase = Literal["load", "warmup", "measure", "idle"]
AgentState = Literal["loading", "warmup", "measuring", "finished", "failed"]
WorkloadKind = Literal["mock", "gemm", "hf_causal_lm", "embedding"]
TelemetryStatus = Literal["ok", "degraded", "unavailable"]
EnergyMethod = Literal["nvml_counter", "power_integration"]


class _Model(BaseModel):
    # Unknown keys from a newer agent are kept, not rejected.
    model_config = ConfigDict(extra="allow")


class Stats(_Model):
    """Summary of one distribution; all values share the unit in the field name."""

    n: int
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    min: float | None = None
    max: float | None = None
    stdev: float | None = None
    # Under 100 observations the 99th percentile is little more than the maximum.
    p99_indicative: bool = False


class Workload(_Model):
    model_ref: str
    kind: WorkloadKind
    parameters: dict[str, int | float | str | bool | None] = Field(default_factory=dict)
    # Where the workload actually ran: "cuda", "cpu", or "mock" for mock-v0.
    device: str | None = None
    model_revision: str | None = None
    # Sentences about how the run differed from the request (CPU fallback, dtype).
    notes: list[str] = Field(default_factory=list)
    # gemm: the matrix size really used (smaller than asked on a CPU).
    matrix_size: int | None = None


class ColdStart(_Model):
    load_s: float | None = None
    first_call_s: float | None = None


class Warmup(_Model):
    count: int = 0
    duration_s: float | None = None


class MeasureWindow(_Model):
    start: str | None = None
    end: str | None = None
    duration_s: float | None = None


class Throughput(_Model):
    samples_per_s: float | None = None
    # Inputs per second: samples_per_s times the batch size.
    items_per_s: float | None = None
    # gemm only: achieved tera floating-point operations per second.
    tflops: float | None = None


class Tokens(_Model):
    """Language-model token metrics; TPOT excludes the first token."""

    prompt_tokens: int
    new_tokens_per_sample: int
    total_output_tokens: int
    ttft_ms: Stats
    tpot_ms: Stats
    itl_ms: Stats
    output_tokens_per_s: float | None = None


class Energy(_Model):
    method: EnergyMethod | None = None
    # True when the joules come from integrating sampled power.
    estimated: bool = False
    joules: float | None = None
    joules_per_sample: float | None = None
    joules_per_output_token: float | None = None
    # Total over the workload's GPUs; peak is the highest single-sample total.
    mean_power_w: float | None = None
    peak_power_w: float | None = None
    # Why there is no figure, when there is none.
    note: str | None = None


class GpuSummary(_Model):
    index: int
    uuid: str | None = None
    name: str | None = None
    utilization_gpu_mean_pct: float | None = None
    utilization_gpu_max_pct: float | None = None
    memory_used_max_mib: float | None = None
    memory_total_mib: float | None = None
    power_mean_w: float | None = None
    power_max_w: float | None = None
    temperature_max_c: float | None = None
    clock_sm_mean_mhz: float | None = None
    throttle_reasons_seen: list[str] = Field(default_factory=list)
    throttled: bool = False


class Telemetry(_Model):
    status: TelemetryStatus
    reason: str | None = None
    first_error: str | None = None
    first_error_at: str | None = None
    unsupported_metrics: list[str] = Field(default_factory=list)
    memory_info_version: Literal["v2", "v1"] | None = None
    sample_hz: float | None = None
    rows: int = 0
    simulated: bool = False


class Result(_Model):
    schema_version: int = SCHEMA_VERSION
    run_id: str | None = None
    agent_version: str
    status: Literal["succeeded", "failed"]
    error: str | None = None
    workload: Workload | None = None
    samples: int
    samples_completed: int = 0
    started_at: str
    finished_at: str | None = None
    cold_start: ColdStart = Field(default_factory=ColdStart)
    warmup: Warmup = Field(default_factory=Warmup)
    measure_window: MeasureWindow = Field(default_factory=MeasureWindow)
    latency_ms: Stats | None = None
    throughput: Throughput = Field(default_factory=Throughput)
    tokens: Tokens | None = None
    energy: Energy = Field(default_factory=Energy)
    gpus: list[GpuSummary] = Field(default_factory=list)
    environment: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict
    )
    telemetry: Telemetry
    # True when any GPU reading in this run was simulated rather than measured.
    simulated_metrics: bool = False


class AgentStatus(_Model):
    """What `GET /status` answers."""

    service: Literal["persephone-agent"] = "persephone-agent"
    run_id: str | None = None
    state: AgentState
    phase: Phase
    samples_done: int = 0
    samples_total: int = 0
    timeseries_bytes: int = 0
    result_ready: bool = False
    error: str | None = None
