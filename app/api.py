"""The HTTP API, served by the same server as the dashboard.

Every answer is JSON (or the agent's own file), every error is JSON with a
status code that fits, and no traceback ever leaves the server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.models import Run, RunEvent, RunState
from app.providers.base import GpuOffer, ProviderError
from app.security import api_key_matches
from app.services import catalog, runs
from app.services.costs import run_cost

logger = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
MAX_PAGE = 500
# A launch is a few hundred bytes; a megabyte leaves room and stops abuse.
MAX_BODY_BYTES = 1_048_576
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.extra = extra

    def response(self) -> JSONResponse:
        body = {"error": self.code, "message": str(self), **self.extra}
        return JSONResponse(body, status_code=self.status)


def endpoint(handler: Handler) -> Handler:
    """Check the API key and turn every failure into a JSON answer."""

    async def wrapped(request: Request) -> Response:
        if not api_key_matches(request.headers.get("x-api-key")):
            return ApiError(
                401,
                "unauthorized",
                "A valid X-API-Key header is required (the value of "
                "PERSEPHONE_API_KEY).",
            ).response()
        try:
            return await handler(request)
        except ApiError as error:
            return error.response()
        except runs.InvalidRequest as error:
            extra = {"field": error.field}
            if error.suggestions:
                extra["suggestions"] = error.suggestions  # type: ignore[assignment]
            return ApiError(422, "invalid_request", str(error), **extra).response()
        except runs.RunNotFound as error:
            return ApiError(404, "not_found", str(error)).response()
        except ProviderError as error:
            return ApiError(503, "provider_unavailable", str(error)).response()
        except Exception:
            logger.exception("API %s %s failed", request.method, request.url.path)
            return ApiError(
                500, "internal_error", "The server failed; its log has the details."
            ).response()

    return wrapped


async def json_body(request: Request) -> object:
    """The request's JSON, refusing bodies over MAX_BODY_BYTES before reading on."""
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(
                413,
                "body_too_large",
                f"The request body is over {MAX_BODY_BYTES:,} bytes; send less.",
            )
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ApiError(
            422, "invalid_json", f"The request body is not valid JSON: {error}."
        ) from None
    except RecursionError:
        raise ApiError(
            422, "invalid_json", "The request body's JSON is nested too deeply."
        ) from None


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(
            422,
            "invalid_request",
            f"{name} must be a whole number from {low} to {high}, not {raw!r}.",
            field=name,
        )
    return value


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def offer_json(offer: GpuOffer) -> dict[str, Any]:
    return {
        "gpu_type": offer.slug,
        "provider_gpu_id": offer.provider_gpu_id,
        "name": offer.display_name,
        "memory_gb": offer.memory_gb,
        "price_per_hour_usd": {
            "secure": offer.price_secure_per_hour,
            "community": offer.price_community_per_hour,
        },
        "availability": offer.availability,
        "price_read_at": iso(offer.read_at),
        "simulated_speed": offer.simulated_speed,
    }


def run_json(run: Run, events: list[RunEvent] | None = None) -> dict[str, Any]:
    cost = run_cost(run)
    body: dict[str, Any] = {
        "run_id": run.id,
        "status": run.state,
        "error_message": run.error_message,
        "gpu_type": run.gpu_type,
        "gpu_name": run.gpu_name,
        "model_ref": run.model_ref,
        "samples": run.samples,
        "parameters": run.parameters,
        "sweep_id": run.sweep_id,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "cancel_requested": run.cancel_requested,
        "price": {
            "provider": run.provider,
            "tier": run.cloud_tier,
            "per_hour_usd": run.price_per_hour,
            "read_at": iso(run.price_read_at),
        },
        "pod": {
            "id": run.pod_id,
            "created_at": iso(run.pod_created_at),
            "terminated_at": iso(run.pod_terminated_at),
            "may_be_billing": run.may_be_billing,
            "terminate_attempts": run.terminate_attempts,
            "terminate_error": run.terminate_error,
        },
        "progress": {
            "samples_done": run.samples_done,
            "timeseries_rows": run.timeseries_rows,
        },
        "metrics": {
            "latency_ms": {
                "n": run.latency_n,
                "mean": run.latency_mean_ms,
                "p50": run.latency_p50_ms,
                "p90": run.latency_p90_ms,
                "p95": run.latency_p95_ms,
                "p99": run.latency_p99_ms,
            },
            "throughput_per_s": run.throughput_per_s,
            "measure_s": run.measure_s,
            "output_tokens": run.output_tokens,
            "tokens_per_s": run.tokens_per_s,
            "ttft_p50_ms": run.ttft_p50_ms,
            "tpot_p50_ms": run.tpot_p50_ms,
            "energy_j": run.energy_j,
            "energy_method": run.energy_method,
            "telemetry_status": run.telemetry_status,
            "simulated_metrics": run.simulated_metrics,
            "throttled": run.throttled,
        },
        "cost_usd": cost.as_json(),
    }
    if events is not None:
        body["events"] = [
            {"at": iso(e.at), "state": e.state, "message": e.message} for e in events
        ]
    return body


@endpoint
async def list_gpus(request: Request) -> Response:
    offers = await run_in_threadpool(catalog.list_offers)
    return JSONResponse({"gpus": [offer_json(offer) for offer in offers]})


@endpoint
async def start_run(request: Request) -> Response:
    payload = await json_body(request)
    launch = runs.parse_launch_request(payload)
    run = await run_in_threadpool(runs.start_run, launch)
    return JSONResponse(run_json(run), status_code=201)


@endpoint
async def list_runs(request: Request) -> Response:
    offset = _int_param(request, "offset", 0, 0, 10**9)
    limit = _int_param(request, "limit", 50, 1, MAX_PAGE)
    state = request.query_params.get("status")
    if state is not None and state not in {s.value for s in RunState}:
        raise ApiError(
            422,
            "invalid_request",
            f"status {state!r} is not a run state; use one of: "
            f"{', '.join(s.value for s in RunState)}.",
            field="status",
        )
    states = [state] if state else None
    page = await run_in_threadpool(
        runs.list_runs, offset=offset, limit=limit, states=states
    )
    total = await run_in_threadpool(runs.count_runs, states=states)
    return JSONResponse(
        {
            "runs": [run_json(run) for run in page],
            "total": total,
            "offset": offset,
            "limit": limit,
        }
    )


@endpoint
async def get_run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    run = await run_in_threadpool(runs.get_run, run_id)
    events = await run_in_threadpool(runs.run_events, run_id)
    return JSONResponse(run_json(run, events))


@endpoint
async def cancel_run(request: Request) -> Response:
    run = await run_in_threadpool(runs.cancel_run, request.path_params["run_id"])
    return JSONResponse(run_json(run), status_code=202)


async def _artifact(request: Request, name: str, media_type: str) -> Response:
    run_id = request.path_params["run_id"]
    run = await run_in_threadpool(runs.get_run, run_id)
    data = await run_in_threadpool(runs.artifact_bytes, run.id, name)
    if data is None:
        raise ApiError(
            404, "not_found", f"Run {run_id} has no {name} yet (status {run.state})."
        )
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{run_id}-{name}"'},
    )


@endpoint
async def run_timeseries(request: Request) -> Response:
    return await _artifact(request, runs.TIMESERIES_CSV, "text/csv")


@endpoint
async def run_result(request: Request) -> Response:
    return await _artifact(request, runs.RESULT_JSON, "application/json")


def api_route(path: str, **handlers: Handler) -> Route:
    """One path, its handlers by method; any other method is a JSON 405."""
    allowed = sorted(handlers)

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        handler = handlers.get(method)
        if handler is None:
            error = ApiError(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed on {path}; use "
                f"{' or '.join(allowed)}.",
            ).response()
            error.headers["Allow"] = ", ".join(allowed)
            return error
        return await handler(request)

    # Every method reaches `dispatch`, so a wrong one gets JSON, not Streamlit.
    return Route(path, dispatch, methods=ALL_METHODS)


def routes() -> list[Route]:
    return [
        api_route("/compute/gpus", GET=list_gpus),
        api_route("/runs/start", POST=start_run),
        api_route("/runs", GET=list_runs),
        api_route("/runs/{run_id}", GET=get_run),
        api_route("/runs/{run_id}/cancel", POST=cancel_run),
        api_route("/runs/{run_id}/timeseries.csv", GET=run_timeseries),
        api_route("/runs/{run_id}/result.json", GET=run_result),
    ]
