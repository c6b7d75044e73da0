"""Sweeps: one workload launched on several GPU types at once, priced first.

A sweep is planned before anything is created: every GPU type is resolved, its
tier and price chosen exactly as a single launch would, and the workload
checked. Only then is the sweep stored and its runs queued, so a bad GPU type
creates nothing. The estimate that gates the launch uses, per GPU type:

1. the median billed seconds of past succeeded runs of the same workload
   (model_ref, parameters and samples) on that GPU type;
2. else, past runs of the same model_ref and parameters with another sample
   count, scaled: median overhead (billed − measured) plus median seconds per
   sample × samples;
3. else for mock-v0, the mock workload's own timing model (start-up, cold call,
   warm-up and samples at 60 ms ÷ the GPU's speed factor);
4. else PERSEPHONE_REQUEST_TIMEOUT_S, the most a run can bill before the
   supervisor stops it: an upper bound, never an optimistic guess.

Every estimate is capped at that timeout, since a longer run is stopped there.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
)
from sqlmodel import col, select

from agent.spec import SpecError, parse_workload
from agent.workloads.mock import COLD_FACTOR, LOAD_S, MEDIAN_LATENCY_S
from app.db import session_scope
from app.models import Run, RunState, Sweep
from app.providers.base import CloudTier, GpuOffer
from app.services import runs
from app.services.catalog import UnknownGpuType, resolve_gpu_type
from app.services.costs import billed_seconds
from app.services.runs import (
    MAX_SAMPLES,
    InvalidRequest,
    LaunchRequest,
    ParameterValue,
    invalid_from_validation,
)
from app.settings import get_settings

logger = logging.getLogger(__name__)

MAX_GPU_TYPES = 16
MAX_REPEATS = 10
DEFAULT_CONFIRM_ABOVE_USD = 5.0
# mock-v0's billed seconds outside its own calls (pod start, agent start,
# teardown), by catalog mode: a local process starts at once, a RunPod pod
# pulls its image first.
MOCK_WORKLOAD_OVERHEAD_S = {"mock": 5.0, "runpod": 300.0}
# Past runs used for an estimate: the newest of that workload.
HISTORY_LIMIT = 200

EstimateBasis = Literal["history", "history_scaled", "mock_model", "timeout"]


class SweepNotFound(LookupError):
    def __init__(self, sweep_id: str) -> None:
        super().__init__(f"No sweep with id {sweep_id!r}.")
        self.sweep_id = sweep_id


class SweepRequest(BaseModel):
    """What the sweep form and `POST /sweeps` accept."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    gpu_types: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]],
        Field(min_length=1, max_length=MAX_GPU_TYPES),
    ]
    model_ref: Annotated[str, Field(min_length=1, max_length=512)]
    samples: Annotated[StrictInt, Field(ge=1, le=MAX_SAMPLES)]
    parameters: dict[str, ParameterValue] = Field(default_factory=dict)
    repeats: Annotated[StrictInt, Field(ge=1, le=MAX_REPEATS)] = 1
    tier: CloudTier | None = None

    @field_validator("gpu_types")
    @classmethod
    def _unique(cls, gpu_types: list[str]) -> list[str]:
        seen: set[str] = set()
        for gpu_type in gpu_types:
            if gpu_type in seen:
                raise ValueError(f"gpu_types lists {gpu_type!r} twice")
            seen.add(gpu_type)
        return gpu_types


def parse_sweep_request(payload: object) -> SweepRequest:
    """Validate untrusted input; the error names the first bad field."""
    try:
        return SweepRequest.model_validate(payload)
    except ValidationError as error:
        raise _invalid_sweep(error) from None


def _invalid_sweep(error: ValidationError) -> InvalidRequest:
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "body"
    kind = first["type"]
    if field == "gpu_types" and kind == "value_error":
        return InvalidRequest(field, f"{first['ctx']['error']}: list each once.")
    if field == "gpu_types" and kind in ("too_short", "too_long", "list_type"):
        return InvalidRequest(
            field, f"gpu_types must list 1 to {MAX_GPU_TYPES} GPU type slugs."
        )
    if field == "repeats" and kind not in ("missing", "extra_forbidden"):
        return InvalidRequest(
            field,
            f"repeats must be a whole number from 1 to {MAX_REPEATS}, "
            f"not {first.get('input')!r}.",
        )
    return invalid_from_validation(error)


# Planning and estimating


class GpuEstimate(BaseModel):
    """What one GPU type of a sweep is expected to cost."""

    model_config = ConfigDict(frozen=True)

    gpu_type: str
    gpu_name: str
    tier: CloudTier
    price_per_hour_usd: float
    price_read_at: datetime
    runs: int
    duration_s: float
    basis: EstimateBasis
    basis_note: str
    # The run would need longer than PERSEPHONE_REQUEST_TIMEOUT_S and be stopped.
    exceeds_timeout: bool
    cost_usd: float


class SweepEstimate(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_ref: str
    samples: int
    repeats: int
    timeout_s: float
    gpus: list[GpuEstimate]
    total_usd: float


class ConfirmationRequired(Exception):
    """The estimate is above the caller's threshold and was not confirmed."""

    def __init__(self, estimate: SweepEstimate, confirm_above_usd: float) -> None:
        super().__init__(
            f"This sweep is estimated to cost {_dollars(estimate.total_usd)}, above "
            f"the confirmation threshold of {_dollars(confirm_above_usd)}; confirm "
            f'to launch it (in the API, resend with "confirmed": true).'
        )
        self.estimate = estimate
        self.confirm_above_usd = confirm_above_usd


def _dollars(value: float) -> str:
    # Cents hide a sub-cent mock sweep; four significant digits show it.
    return f"${value:,.2f}" if value >= 1 else f"${value:.4g}"


@dataclass(frozen=True)
class _PlannedGpu:
    offer: GpuOffer
    tier: CloudTier
    price_per_hour_usd: float


def estimate_sweep(request: SweepRequest) -> SweepEstimate:
    """Price every GPU type of the sweep; raises InvalidRequest naming a field."""
    planned = _plan(request)
    return _estimate(request, planned)


def _plan(request: SweepRequest) -> list[_PlannedGpu]:
    """Resolve every GPU type and its tier, and check the workload, or raise."""
    planned = [
        _plan_gpu(position, gpu_type, request.tier)
        for position, gpu_type in enumerate(request.gpu_types)
    ]
    runs.validate_workload(request.model_ref, request.parameters)
    return planned


def _plan_gpu(position: int, gpu_type: str, tier: CloudTier | None) -> _PlannedGpu:
    try:
        offer = resolve_gpu_type(gpu_type)
    except UnknownGpuType as error:
        raise InvalidRequest(
            f"gpu_types.{position}", str(error), error.suggestions
        ) from None
    chosen, price = runs.choose_tier(offer, tier)
    return _PlannedGpu(offer, chosen, price)


def _estimate(request: SweepRequest, planned: list[_PlannedGpu]) -> SweepEstimate:
    timeout_s = get_settings().request_timeout_s
    workload = _normalized_parameters(request.model_ref, request.parameters)
    gpus = [_gpu_estimate(request, gpu, workload, timeout_s) for gpu in planned]
    return SweepEstimate(
        model_ref=request.model_ref,
        samples=request.samples,
        repeats=request.repeats,
        timeout_s=timeout_s,
        gpus=gpus,
        total_usd=math.fsum(gpu.cost_usd for gpu in gpus),
    )


def _gpu_estimate(
    request: SweepRequest,
    gpu: _PlannedGpu,
    parameters: dict[str, object],
    timeout_s: float,
) -> GpuEstimate:
    duration_s, basis, note = _duration(request, gpu.offer, parameters, timeout_s)
    capped_s = min(duration_s, timeout_s)
    return GpuEstimate(
        gpu_type=gpu.offer.slug,
        gpu_name=gpu.offer.display_name,
        tier=gpu.tier,
        price_per_hour_usd=gpu.price_per_hour_usd,
        price_read_at=gpu.offer.read_at,
        runs=request.repeats,
        duration_s=capped_s,
        basis=basis,
        basis_note=note,
        exceeds_timeout=duration_s > timeout_s,
        cost_usd=gpu.price_per_hour_usd / 3600.0 * capped_s * request.repeats,
    )


def _duration(
    request: SweepRequest,
    offer: GpuOffer,
    parameters: dict[str, object],
    timeout_s: float,
) -> tuple[float, EstimateBasis, str]:
    history = _past_runs(request.model_ref, offer.slug, parameters)
    same = [run for run in history if run.samples == request.samples]
    if same:
        billed = [billed_seconds(run) or 0.0 for run in same]
        return (
            statistics.median(billed),
            "history",
            f"median billed time of {len(same)} past run(s) of this workload",
        )
    if history:
        return (
            _scaled_seconds(history, request.samples),
            "history_scaled",
            f"scaled from {len(history)} past run(s) with other sample counts",
        )
    if request.model_ref == "mock-v0":
        return (
            _mock_seconds(request, offer),
            "mock_model",
            "mock-v0 timing model: start-up + samples × 60 ms ÷ speed factor",
        )
    return (
        timeout_s,
        "timeout",
        "no past run: PERSEPHONE_REQUEST_TIMEOUT_S, the most a run can bill",
    )


def _past_runs(
    model_ref: str, gpu_type: str, parameters: dict[str, object]
) -> list[Run]:
    """Succeeded runs of this model_ref and parameters with a known billed time."""
    query = (
        select(Run)
        .where(
            Run.model_ref == model_ref,
            Run.gpu_type == gpu_type,
            Run.state == RunState.SUCCEEDED,
            col(Run.pod_created_at).is_not(None),
            col(Run.pod_terminated_at).is_not(None),
            col(Run.measure_s).is_not(None),
            col(Run.samples_done) > 0,
        )
        .order_by(col(Run.created_at).desc())
        .limit(HISTORY_LIMIT)
    )
    with session_scope() as session:
        found = list(session.exec(query))
    return [
        run
        for run in found
        if _normalized_parameters(run.model_ref, run.parameters) == parameters
    ]


def _scaled_seconds(history: list[Run], samples: int) -> float:
    overheads_s = [
        (billed_seconds(run) or 0.0) - (run.measure_s or 0.0) for run in history
    ]
    per_sample_s = [(run.measure_s or 0.0) / run.samples_done for run in history]
    return (
        max(0.0, statistics.median(overheads_s))
        + statistics.median(per_sample_s) * samples
    )


def _mock_seconds(request: SweepRequest, offer: GpuOffer) -> float:
    """The mock workload's own timing: load, a cold call, warm-up, samples."""
    spec = parse_workload(request.model_ref, request.parameters)
    speed = offer.simulated_speed or 1.0
    per_call_s = MEDIAN_LATENCY_S * (1.0 + 0.1 * (spec.int_param("batch_size") - 1))
    calls = request.samples + spec.int_param("warmup") + COLD_FACTOR
    overhead_s = MOCK_WORKLOAD_OVERHEAD_S.get(get_settings().catalog_mode, 300.0)
    return overhead_s + (LOAD_S + calls * per_call_s) / speed


def _normalized_parameters(
    model_ref: str, parameters: Mapping[str, object]
) -> dict[str, object]:
    """Parameters with the workload's defaults filled in, so {} equals the defaults."""
    try:
        return dict(parse_workload(model_ref, parameters).parameters)
    except SpecError:
        # A run stored by an older version: compare its parameters as they are.
        return dict(parameters)


# Launching


@dataclass(frozen=True)
class SweepDetail:
    sweep: Sweep
    runs: list[Run]

    @property
    def gpu_types(self) -> list[str]:
        return list(json.loads(self.sweep.gpu_types_json))

    @property
    def parameters(self) -> dict[str, ParameterValue]:
        return dict(json.loads(self.sweep.parameters_json))


def start_sweep(
    request: SweepRequest, *, confirmed: bool, confirm_above_usd: float
) -> Sweep:
    """Queue one run per GPU type and repeat, or nothing at all.

    Raises InvalidRequest for a bad field and ConfirmationRequired when the
    estimate is above `confirm_above_usd` and `confirmed` is false.
    """
    if not math.isfinite(confirm_above_usd) or confirm_above_usd < 0:
        raise InvalidRequest(
            "confirm_above_usd",
            f"confirm_above_usd must be a number of dollars of 0 or more, "
            f"not {confirm_above_usd!r}.",
        )
    planned = _plan(request)
    estimate = _estimate(request, planned)
    if estimate.total_usd > confirm_above_usd and not confirmed:
        raise ConfirmationRequired(estimate, confirm_above_usd)

    sweep = _store_sweep(request, estimate)
    _queue_runs(sweep, request, planned)
    logger.info(
        "sweep %s queued: %s on %d GPU types × %d, estimated $%.4f",
        sweep.id,
        request.model_ref,
        len(planned),
        request.repeats,
        estimate.total_usd,
    )
    return sweep


def _store_sweep(request: SweepRequest, estimate: SweepEstimate) -> Sweep:
    sweep = Sweep(
        model_ref=request.model_ref,
        samples=request.samples,
        parameters_json=json.dumps(request.parameters, sort_keys=True),
        gpu_types_json=json.dumps(request.gpu_types),
        repeats=request.repeats,
        estimated_cost_usd=estimate.total_usd,
    )
    with session_scope() as session:
        session.add(sweep)
    return sweep


def _queue_runs(
    sweep: Sweep, request: SweepRequest, planned: list[_PlannedGpu]
) -> None:
    queued: list[Run] = []
    try:
        # Repeat 0 of every GPU type first, so a short sweep compares early.
        for repeat_index in range(request.repeats):
            for gpu in planned:
                launch = LaunchRequest(
                    gpu_type=gpu.offer.slug,
                    model_ref=request.model_ref,
                    samples=request.samples,
                    tier=gpu.tier,
                    parameters=request.parameters,
                )
                queued.append(
                    runs.start_run(launch, sweep_id=sweep.id, repeat_index=repeat_index)
                )
    except InvalidRequest:
        # The catalog changed between planning and queuing (a refresh dropped a
        # type): cancel what was queued, before any pod exists, and say why.
        for run in queued:
            runs.cancel_run(run.id)
        raise


def get_sweep(sweep_id: str) -> SweepDetail:
    """The sweep and its runs, in the order of its GPU types, then repeats."""
    with session_scope() as session:
        sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise SweepNotFound(sweep_id)
    order = {slug: i for i, slug in enumerate(json.loads(sweep.gpu_types_json))}
    limit = max(1, len(order) * sweep.repeats)
    found = runs.list_runs(sweep_id=sweep_id, limit=limit)
    found.sort(key=lambda run: (order.get(run.gpu_type, 99), run.repeat_index))
    return SweepDetail(sweep=sweep, runs=found)


def list_sweeps(*, limit: int = 50) -> list[Sweep]:
    """Newest first."""
    query = select(Sweep).order_by(col(Sweep.created_at).desc()).limit(limit)
    with session_scope() as session:
        return list(session.exec(query))
