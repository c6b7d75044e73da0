"""RunPodClient against httpx.MockTransport: every answer becomes a typed error."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from pydantic import BaseModel

from app.providers.base import (
    NoCapacityError,
    ProviderAuthError,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderServerError,
    ProviderValidationError,
)
from app.providers.runpod_client import RunPodClient

KEY = "rpa_TESTKEY_0123456789abcdefghijklmnopqrstuv"
PROBLEM = {"content-type": "application/problem+json"}
V2_NO_CAPACITY = (
    "There are no longer any instances available with the requested "
    "specifications. Please refresh and try again."
)

Handler = Callable[[httpx.Request], httpx.Response]


class Anything(BaseModel):
    ok: bool = True


class Harness:
    """A client over a scripted transport, recording requests and waits."""

    def __init__(self, *answers: httpx.Response | Handler | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []
        self.client = RunPodClient(
            KEY,
            "https://api.runpod.test",
            transport=httpx.MockTransport(self._handle),
            sleep=self.sleeps.append,
        )

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer


def problem(status: int, detail: str, **extra: object) -> httpx.Response:
    body = {"title": "Error", "status": status, "detail": detail, **extra}
    return httpx.Response(status, json=body, headers=PROBLEM)


def test_sends_the_key_only_as_a_bearer_header() -> None:
    harness = Harness(httpx.Response(200, json={"ok": True}))

    harness.client.get("/v2/pods", Anything, params={"include": "AVAILABILITY"})

    request = harness.requests[0]
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in str(request.url)
    assert KEY not in repr(harness.client)


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_are_typed_and_never_retried(status: int) -> None:
    harness = Harness(problem(status, "missing bearer token"))

    with pytest.raises(ProviderAuthError) as caught:
        harness.client.get("/v2/pods", Anything)

    assert len(harness.requests) == 1
    assert harness.sleeps == []
    assert "missing bearer token" in str(caught.value)


def test_not_found_in_each_body_shape() -> None:
    shapes = [
        problem(404, "pod not found"),
        httpx.Response(404, json={"error": "pod not found", "status": 404}),
        httpx.Response(404, json={"message": "Pod not found"}),
    ]
    for shape in shapes:
        harness = Harness(shape)
        with pytest.raises(ProviderNotFound) as caught:
            harness.client.get("/v2/pods/abc", Anything)
        assert "not found" in str(caught.value).lower()
        assert "/v2/pods/abc" in str(caught.value)


def test_rate_limit_honours_retry_after_then_succeeds() -> None:
    limited = problem(429, "rate limit exceeded for the minute window")
    limited.headers["Retry-After"] = "2"
    harness = Harness(limited, httpx.Response(200, json={"ok": True}))

    assert harness.client.post("/v2/pods", Anything(), Anything).ok

    assert harness.sleeps == [2.0]
    assert len(harness.requests) == 2


def test_rate_limit_retries_are_bounded() -> None:
    limited = problem(429, "rate limit exceeded for the minute window")
    limited.headers["Retry-After"] = "1"
    harness = Harness(limited)

    with pytest.raises(ProviderRateLimited) as caught:
        harness.client.get("/v2/pods", Anything)

    assert len(harness.requests) == 3
    assert harness.sleeps == [1.0, 1.0]
    assert caught.value.retry_after_s == 1.0
    assert caught.value.retryable


def test_rate_limit_with_a_long_wait_goes_back_to_the_caller() -> None:
    limited = problem(429, "rate limit exceeded for the minute window")
    limited.headers["Retry-After"] = "120"
    harness = Harness(limited)

    with pytest.raises(ProviderRateLimited) as caught:
        harness.client.get("/v2/pods", Anything)

    assert len(harness.requests) == 1
    assert caught.value.retry_after_s == 120.0


def test_rate_limit_retry_after_as_a_date_and_absent() -> None:
    later = datetime.now(UTC) + timedelta(seconds=5)
    dated = httpx.Response(429, headers={"Retry-After": format_datetime(later, True)})
    bare = httpx.Response(429)  # v1 sends no Retry-After at all
    harness = Harness(dated, bare, httpx.Response(200, json={"ok": True}))

    harness.client.get("/v2/pods", Anything)

    assert 3.0 < harness.sleeps[0] <= 5.0
    assert harness.sleeps[1] == 2.0  # exponential backoff, second attempt


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"title": "Bad Request", "status": 400, "detail": V2_NO_CAPACITY}),
        (
            500,
            {
                "error": "create pod: There are no instances currently available",
                "status": 500,
            },
        ),
        (
            500,
            {
                "error": "create pod: This machine does not have the resources to "
                "deploy your pod. Please try a different machine"
            },
        ),
        (
            400,
            {
                "message": "There are not enough free GPUs on the host machine "
                "to start this pod"
            },
        ),
    ],
)
def test_no_capacity_is_recognised_by_wording_whatever_the_status(
    status: int, body: dict[str, object]
) -> None:
    harness = Harness(httpx.Response(status, json=body))

    with pytest.raises(NoCapacityError):
        harness.client.post("/v2/pods", Anything(), Anything)

    assert len(harness.requests) == 1


def test_validation_names_the_field_from_problem_errors() -> None:
    harness = Harness(
        problem(
            422,
            "Request validation failed.",
            errors=["$.gpu.id: value must be one of the GPU type ids"],
        ),
        problem(
            400,
            "Request validation failed.",
            errors=[{"location": "body.cloud", "message": "expected SECURE"}],
        ),
        problem(400, "bad input"),
    )

    with pytest.raises(ProviderValidationError) as first:
        harness.client.post("/v2/pods", Anything(), Anything)
    with pytest.raises(ProviderValidationError) as second:
        harness.client.post("/v2/pods", Anything(), Anything)
    with pytest.raises(ProviderValidationError) as third:
        harness.client.post("/v2/pods", Anything(), Anything)

    assert first.value.field_name == "gpu.id"
    assert "field gpu.id: value must be one of" in str(first.value)
    assert second.value.field_name == "cloud"
    assert third.value.field_name is None
    assert "bad input" in str(third.value)


def test_server_errors_retry_reads_but_never_creates() -> None:
    failing = problem(500, "Something went wrong.")
    reads = Harness(failing)
    creates = Harness(failing)

    with pytest.raises(ProviderServerError):
        reads.client.get("/v2/pods", Anything)
    with pytest.raises(ProviderServerError) as caught:
        creates.client.post("/v2/pods", Anything(), Anything)

    assert len(reads.requests) == 3
    assert len(creates.requests) == 1
    assert str(caught.value) == (
        "RunPod answered POST /v2/pods with 500: Something went wrong."
    )


def test_html_pages_are_server_errors_without_their_body() -> None:
    page = "<!DOCTYPE html><html><body>Cloudflare secret-ray-id</body></html>"
    error_page = httpx.Response(502, text=page, headers={"content-type": "text/html"})
    ok_page = httpx.Response(200, text=page, headers={"content-type": "text/html"})
    harness = Harness(error_page, ok_page)

    with pytest.raises(ProviderServerError) as on_error:
        harness.client.delete("/v2/pods/abc")
    with pytest.raises(ProviderServerError) as on_success:
        harness.client.post("/v2/pods", Anything(), Anything)

    for caught in (on_error, on_success):
        assert "HTML page" in str(caught.value)
        assert "secret-ray-id" not in str(caught.value)


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")],
)
def test_transport_failures_are_server_errors(failure: Exception) -> None:
    harness = Harness(failure)

    with pytest.raises(ProviderServerError) as caught:
        harness.client.post("/v2/pods", Anything(), Anything)

    assert type(failure).__name__ in str(caught.value)
    assert len(harness.requests) == 1


def test_other_client_errors_are_plain_provider_errors() -> None:
    harness = Harness(problem(405, "method not allowed"))

    with pytest.raises(ProviderError) as caught:
        harness.client.get("/v2/pods", Anything)

    assert type(caught.value) is ProviderError


def test_long_details_are_cut_short() -> None:
    harness = Harness(problem(500, "x" * 5000))

    with pytest.raises(ProviderServerError) as caught:
        harness.client.post("/v2/pods", Anything(), Anything)

    assert len(str(caught.value)) < 300


def test_the_key_never_reaches_a_message_or_a_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def echo_header(request: httpx.Request) -> httpx.Response:
        # A hostile or buggy server echoing the credentials back.
        leaked = request.headers["authorization"]
        return problem(401, f"bad credentials {leaked}", errors=[f"$.key: {leaked}"])

    harness = Harness(echo_header, echo_header, echo_header)
    caplog.set_level(logging.DEBUG)

    errors: list[ProviderError] = []
    for call in (
        lambda: harness.client.get("/v2/pods", Anything),
        lambda: harness.client.post("/v2/pods", Anything(), Anything),
        lambda: harness.client.delete("/v2/pods/abc"),
    ):
        with pytest.raises(ProviderError) as caught:
            call()
        errors.append(caught.value)

    for error in errors:
        assert KEY not in str(error)
        assert KEY not in repr(error)
        assert "[redacted]" in str(error)
    for record in caplog.records:
        assert KEY not in record.getMessage()
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("runpod_client")]
    assert len(lines) == 3
    assert lines[0].startswith("RunPod GET /v2/pods -> 401 in ")
    assert lines[2].startswith("RunPod DELETE /v2/pods/abc -> 401 in ")


def test_one_info_line_per_attempt_with_method_path_status() -> None:
    harness = Harness(
        httpx.Response(429, headers={"Retry-After": "0"}),
        httpx.Response(200, json={"ok": True}),
    )
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("app.providers.runpod_client")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        harness.client.get("/v2/catalog/gpus", Anything, params={"product": "POD"})
    finally:
        logger.removeHandler(handler)

    messages = [record.getMessage() for record in records]
    assert [m.split(" in ")[0] for m in messages] == [
        "RunPod GET /v2/catalog/gpus -> 429",
        "RunPod GET /v2/catalog/gpus -> 200",
    ]
    assert all(record.levelno == logging.INFO for record in records)
    assert all("product" not in message for message in messages)


def test_error_bodies_of_odd_shapes_still_give_their_text() -> None:
    odd = httpx.Response(
        500, json={"error": {"code": 7}, "errors": "x", "message": "try later"}
    )
    harness = Harness(odd, httpx.Response(500, json=["not", "an", "object"]))

    with pytest.raises(ProviderServerError) as first:
        harness.client.post("/v2/pods", Anything(), Anything)
    with pytest.raises(ProviderServerError) as second:
        harness.client.post("/v2/pods", Anything(), Anything)

    assert str(first.value).endswith("with 500: try later.")
    assert str(second.value) == "RunPod answered POST /v2/pods with 500."
