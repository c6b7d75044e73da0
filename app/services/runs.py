"""Launching, listing, cancelling and reading benchmark runs."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from sqlalchemy import func
from sqlmodel import col, select

from agent.schema import Result
from app.db import session_scope
from app.models import (
    ACTIVE_STATES,
    ArtifactChunk,
    Run,
    RunEvent,
    RunState,
    utcnow,
)
from app.providers.base import CloudTier, GpuOffer
from app.services.catalog import UnknownGpuType, resolve_gpu_type
from app.settings import get_settings

logger = logging.getLogger(__name__)

RESULT_JSON = "result.json"
TIMESERIES_CSV = "gpu_timeseries.csv"
MAX_SAMPLES = 100_000

ParameterValue = int | float | str | bool


class InvalidRequest(ValueError):
    """A launch request field is wrong; `field` names it for forms and the API."""

    def __init__(
        self, field: str, message: str, suggestions: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.suggestions = suggestions or []


class RunNotFound(LookupError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"No run with id {run_id!r}.")
        self.run_id = run_id


class LaunchRequest(BaseModel):
    """What the launch form and `POST /runs/start` accept."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    gpu_type: Annotated[str, Field(min_length=1, max_length=64)]
    model_ref: Annotated[str, Field(min_length=1, max_length=512)]
    samples: Annotated[StrictInt, Field(ge=1, le=MAX_SAMPLES)]
    tier: CloudTier | None = None
    parameters: dict[str, ParameterValue] = Field(default_factory=dict)


def parse_launch_request(payload: object) -> LaunchRequest:
    """Validate untrusted input; the error names the first bad field."""
    try:
        return LaunchRequest.model_validate(payload)
    except ValidationError as error:
        raise invalid_from_validation(error) from None


def shown(value: object, limit: int = 80) -> str:
    """A value for an error message: its repr, cut short if long."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def invalid_from_validation(error: ValidationError) -> InvalidRequest:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    if first["type"] == "missing":
        return InvalidRequest(field, f"{field} is required.")
    if first["type"] == "extra_forbidden":
        return InvalidRequest(field, f"{field} is not a known field.")
    if field == "samples":
        return InvalidRequest(
            field,
            f"samples must be a whole number from 1 to {MAX_SAMPLES}, "
            f"not {shown(first.get('input'))}.",
        )
    return InvalidRequest(
        field, f"{field}: {first['msg']} (got {shown(first.get('input'))})."
    )


def choose_tier(
    offer: GpuOffer, requested: CloudTier | None
) -> tuple[CloudTier, float]:
    """The tier a launch will use and its price: secure when offered, else community."""
    tier: CloudTier = requested or (
        "secure" if offer.price_secure_per_hour else "community"
    )
    price = offer.price_for(tier)
    if not price:
        raise InvalidRequest(
            "tier",
            f"tier {tier!r} is not offered for {offer.display_name} ({offer.slug}); "
            f"choose one of: {', '.join(offer.tiers) or 'none'}, or leave the tier "
            f"empty to use the GPU type's default.",
        )
    return tier, price


def validate_workload(model_ref: str, parameters: dict[str, ParameterValue]) -> None:
    """Check model_ref and parameters with the agent's own rules."""
    from agent.spec import SpecError, parse_workload

    try:
        parse_workload(model_ref, parameters)
    except SpecError as error:
        parameter = getattr(error, "parameter", None)
        field = f"parameters.{parameter}" if parameter else "model_ref"
        raise InvalidRequest(field, str(error)) from None


_listeners: list[Callable[[], None]] = []


def on_change(callback: Callable[[], None]) -> None:
    """Call `callback` after each launch or cancel (wakes the supervisor)."""
    _listeners.append(callback)


def _notify() -> None:
    for callback in _listeners:
        callback()


def start_run(
    request: LaunchRequest, *, sweep_id: str | None = None, repeat_index: int = 0
) -> Run:
    """Create a queued run with the price in effect now frozen into it."""
    try:
        offer = resolve_gpu_type(request.gpu_type)
    except UnknownGpuType as error:
        raise InvalidRequest("gpu_type", str(error), error.suggestions) from None
    tier, price = choose_tier(offer, request.tier)
    validate_workload(request.model_ref, request.parameters)

    settings = get_settings()
    now = utcnow()
    run = Run(
        gpu_type=offer.slug,
        model_ref=request.model_ref,
        samples=request.samples,
        parameters_json=json.dumps(request.parameters, sort_keys=True),
        sweep_id=sweep_id,
        repeat_index=repeat_index,
        provider=settings.catalog_mode,
        provider_gpu_id=offer.provider_gpu_id,
        gpu_name=offer.display_name,
        cloud_tier=tier,
        price_per_hour=price,
        price_read_at=offer.read_at,
        simulated_speed=offer.simulated_speed,
        pod_name="",
        deadline_at=now + timedelta(seconds=settings.request_timeout_s),
        created_at=now,
        updated_at=now,
    )
    run.pod_name = f"{settings.pod_name_prefix}-{run.id}"
    with session_scope() as session:
        session.add(run)
        session.flush()
        session.add(RunEvent(run_id=run.id, at=now, state=RunState.QUEUED))
    logger.info(
        "run %s queued: %s on %s (%s)", run.id, run.model_ref, run.gpu_type, tier
    )
    _notify()
    return run


def get_run(run_id: str) -> Run:
    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run


def list_runs(
    *,
    offset: int = 0,
    limit: int = 50,
    states: Sequence[str] | None = None,
    sweep_id: str | None = None,
    model_ref: str | None = None,
) -> list[Run]:
    """Newest first."""
    query = select(Run).order_by(col(Run.created_at).desc(), col(Run.id))
    if states:
        query = query.where(col(Run.state).in_(list(states)))
    if sweep_id:
        query = query.where(Run.sweep_id == sweep_id)
    if model_ref:
        query = query.where(Run.model_ref == model_ref)
    with session_scope() as session:
        return list(session.exec(query.offset(offset).limit(limit)))


def count_runs(*, states: Sequence[str] | None = None) -> int:
    query = select(func.count()).select_from(Run)
    if states:
        query = query.where(col(Run.state).in_(list(states)))
    with session_scope() as session:
        return int(session.exec(query).one())


def any_active() -> bool:
    return count_runs(states=[s.value for s in ACTIVE_STATES]) > 0


def cancel_run(run_id: str) -> Run:
    """Ask the supervisor to stop the run; its pod is terminated when it does."""
    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise RunNotFound(run_id)
        if run.is_active and not run.cancel_requested:
            run.cancel_requested = True
            run.updated_at = utcnow()
            session.add(run)
            session.add(
                RunEvent(run_id=run_id, state=run.state, message="cancel requested")
            )
    _notify()
    return get_run(run_id)


def run_events(run_id: str) -> list[RunEvent]:
    with session_scope() as session:
        query = select(RunEvent).where(RunEvent.run_id == run_id)
        return list(session.exec(query.order_by(col(RunEvent.at), col(RunEvent.id))))


def artifact_bytes(run_id: str, name: str) -> bytes | None:
    """The agent's file exactly as it produced it, or None if none arrived."""
    with session_scope() as session:
        query = (
            select(ArtifactChunk.data)
            .where(ArtifactChunk.run_id == run_id, ArtifactChunk.name == name)
            .order_by(col(ArtifactChunk.offset))
        )
        chunks = list(session.exec(query))
    if not chunks:
        return None
    return b"".join(chunks)


def result_document(run_id: str) -> Result | None:
    raw = artifact_bytes(run_id, RESULT_JSON)
    if raw is None:
        return None
    try:
        return Result.model_validate_json(raw)
    except ValidationError:
        logger.warning("run %s has a result.json this version cannot read", run_id)
        return None
