"""The HTTP API of sweeps and comparisons, with the same errors as app.api.

`server.py` serves these routes next to `app.api.routes()`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api import ApiError, api_route, endpoint, iso, json_body, run_json
from app.models import Sweep
from app.services import compare as comparing
from app.services import sweeps
from app.services.sweeps import (
    DEFAULT_CONFIRM_ABOVE_USD,
    ConfirmationRequired,
    SweepNotFound,
    SweepRequest,
)

# Fields of POST /sweeps that steer the launch rather than describe the sweep.
CONFIRM_FIELDS = ("confirm_above_usd", "confirmed")


def sweep_json(sweep: Sweep) -> dict[str, Any]:
    return {
        "sweep_id": sweep.id,
        "created_at": iso(sweep.created_at),
        "model_ref": sweep.model_ref,
        "samples": sweep.samples,
        "parameters": json.loads(sweep.parameters_json),
        "gpu_types": json.loads(sweep.gpu_types_json),
        "repeats": sweep.repeats,
        "estimated_cost_usd": sweep.estimated_cost_usd,
    }


def _confirmation(payload: dict[str, object]) -> tuple[bool, float]:
    confirmed = payload.pop("confirmed", False)
    if not isinstance(confirmed, bool):
        raise ApiError(
            422,
            "invalid_request",
            f"confirmed must be true or false, not {confirmed!r}.",
            field="confirmed",
        )
    threshold = payload.pop("confirm_above_usd", DEFAULT_CONFIRM_ABOVE_USD)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not math.isfinite(threshold)
        or threshold < 0
    ):
        raise ApiError(
            422,
            "invalid_request",
            f"confirm_above_usd must be a number of dollars of 0 or more, "
            f"not {threshold!r}.",
            field="confirm_above_usd",
        )
    return confirmed, float(threshold)


def _parse_sweep_body(payload: object) -> tuple[SweepRequest, bool, float]:
    if not isinstance(payload, dict):
        raise ApiError(
            422,
            "invalid_request",
            "The request body must be a JSON object.",
            field="body",
        )
    fields = dict(payload)
    confirmed, threshold = _confirmation(fields)
    return sweeps.parse_sweep_request(fields), confirmed, threshold


@endpoint
async def start_sweep(request: Request) -> Response:
    sweep_request, confirmed, threshold = _parse_sweep_body(await json_body(request))
    try:
        sweep = await run_in_threadpool(
            sweeps.start_sweep,
            sweep_request,
            confirmed=confirmed,
            confirm_above_usd=threshold,
        )
    except ConfirmationRequired as needed:
        raise ApiError(
            409,
            "confirmation_required",
            str(needed),
            confirm_above_usd=needed.confirm_above_usd,
            estimate=needed.estimate.model_dump(mode="json"),
        ) from None
    detail = await run_in_threadpool(sweeps.get_sweep, sweep.id)
    body = {
        "sweep": sweep_json(detail.sweep),
        "run_ids": [run.id for run in detail.runs],
    }
    return JSONResponse(body, status_code=201)


@endpoint
async def get_sweep(request: Request) -> Response:
    detail = await run_in_threadpool(_sweep_detail, request.path_params["sweep_id"])
    return JSONResponse(
        {
            "sweep": sweep_json(detail.sweep),
            "runs": [run_json(run) for run in detail.runs],
        }
    )


def _sweep_detail(sweep_id: str) -> sweeps.SweepDetail:
    try:
        return sweeps.get_sweep(sweep_id)
    except SweepNotFound as error:
        raise ApiError(404, "not_found", str(error)) from None


def _compared_run_ids(request: Request) -> list[str]:
    runs_param = request.query_params.get("runs")
    sweep_id = request.query_params.get("sweep")
    if (runs_param is None) == (sweep_id is None):
        which = "not both" if runs_param is not None else "one of them"
        raise ApiError(
            422,
            "invalid_request",
            f"Name the runs to compare with either ?runs=<id>,<id>,... or "
            f"?sweep=<sweep id> ({which}).",
            field="runs",
        )
    if runs_param is not None:
        return [run_id for run_id in runs_param.split(",") if run_id.strip()]
    return [run.id for run in _sweep_detail(str(sweep_id)).runs]


@endpoint
async def get_comparison(request: Request) -> Response:
    output = request.query_params.get("format", "json")
    level = request.query_params.get("level", "run")
    if output not in ("json", "csv"):
        raise ApiError(
            422,
            "invalid_request",
            f"format must be json or csv, not {output!r}.",
            field="format",
        )
    if level not in ("run", "gpu_type"):
        raise ApiError(
            422,
            "invalid_request",
            f"level must be run or gpu_type, not {level!r}.",
            field="level",
        )
    run_ids = await run_in_threadpool(_compared_run_ids, request)
    comparison = await run_in_threadpool(comparing.compare, run_ids)
    if output == "csv":
        return Response(
            comparing.comparison_csv(
                comparison, level="gpu_type" if level == "gpu_type" else "run"
            ),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="comparison.csv"'},
        )
    return Response(
        comparing.comparison_json(comparison), media_type="application/json"
    )


@endpoint
async def run_bundle(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    data = await run_in_threadpool(comparing.run_bundle, run_id)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{run_id}-bundle.zip"'},
    )


@endpoint
async def list_sweeps(request: Request) -> Response:
    recent = await run_in_threadpool(sweeps.list_sweeps, limit=200)
    return JSONResponse({"sweeps": [sweep_json(sweep) for sweep in recent]})


def routes() -> list[Route]:
    return [
        api_route("/sweeps", GET=list_sweeps, POST=start_sweep),
        api_route("/sweeps/{sweep_id}", GET=get_sweep),
        api_route("/compare", GET=get_comparison),
        api_route("/runs/{run_id}/bundle.zip", GET=run_bundle),
    ]
