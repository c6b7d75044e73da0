"""The HTTP layer under the RunPod provider: auth, timeouts, retries, errors.

Every call goes through `RunPodClient._request`, the one place where RunPod's
answers become the typed errors of `app.providers.base`. The API key lives only
in the `Authorization` header of the underlying `httpx.Client`: it is never put
in a URL, a log line or an error message, and messages quote at most the
server's own short `detail`.
"""

from __future__ import annotations

import email.utils
import logging
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from app.providers.base import (
    NoCapacityError,
    ProviderAuthError,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderServerError,
    ProviderValidationError,
)

logger = logging.getLogger(__name__)

# runpod-python uses 30 s; creating a pod can take a while to answer.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DETAIL_MAX_CHARS = 200

# RunPod reports missing capacity with these words, under 400 (v2), 500 (v1)
# or 200 (GraphQL); the wording, not the status, is what identifies it.
NO_CAPACITY_PHRASES = (
    "no longer any instances available",
    "no instances currently available",
    "not enough free gpus",
    "does not have the resources",
)

ModelT = TypeVar("ModelT", bound=BaseModel)


class _ErrorItem(BaseModel):
    """One entry of a problem+json `errors` list when it is an object."""

    model_config = ConfigDict(extra="ignore")

    location: str | None = None
    field: str | None = None
    path: str | None = None
    message: str | None = None


class ErrorBody(BaseModel):
    """Every error shape RunPod was seen to send, read leniently.

    v2 sends RFC 9457 problem+json (`title`, `status`, `detail`, `errors`);
    v1 live answers are `{"error": ..., "status": ...}`; v1 docs say
    `{"message": ...}`.
    """

    model_config = ConfigDict(extra="ignore")

    title: str | None = None
    status: int | None = None
    detail: str | None = None
    errors: list[str | _ErrorItem] | None = None
    error: str | None = None
    message: str | None = None

    # A field of an unexpected shape is dropped, so the rest can still be read.
    @field_validator("title", "detail", "error", "message", mode="before")
    @classmethod
    def _text_only(cls, value: object) -> object:
        return value if isinstance(value, str) else None

    @field_validator("status", mode="before")
    @classmethod
    def _int_only(cls, value: object) -> object:
        return value if isinstance(value, int) else None

    @field_validator("errors", mode="before")
    @classmethod
    def _list_only(cls, value: object) -> object:
        if not isinstance(value, list):
            return None
        return [item for item in value if isinstance(item, str | dict)]

    def text(self) -> str | None:
        """The server's own short explanation, if it gave one."""
        return self.detail or self.error or self.message or self.title

    def first_error(self) -> tuple[str | None, str | None]:
        """(field name, message) of the first entry of `errors`."""
        if not self.errors:
            return None, None
        item = self.errors[0]
        if isinstance(item, str):
            # v2 writes "$.gpu.id: value must be one of ...".
            match = re.match(r"^\s*\$?\.?([\w.\[\]-]+)\s*:\s*(.*)$", item, re.DOTALL)
            if match:
                return match.group(1), match.group(2)
            return None, item
        raw = item.location or item.field or item.path
        name = re.sub(r"^(body\.|\$\.)", "", raw) if raw else None
        return name, item.message


class RunPodClient:
    """An authenticated client for RunPod's REST API (paths start with /v2)."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        attempts: int = 3,
        backoff_s: float = 1.0,
        max_wait_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise ProviderAuthError("No RunPod API key is configured.")
        self._secret = api_key
        self._attempts = max(1, attempts)
        self._backoff_s = backoff_s
        self._max_wait_s = max_wait_s
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
            },
            timeout=timeout,
            transport=transport,
            # A redirect could carry the Authorization header somewhere else.
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"RunPodClient(base_url={str(self._client.base_url)!r})"

    def close(self) -> None:
        self._client.close()

    # Typed calls

    def get(
        self,
        path: str,
        model: type[ModelT],
        *,
        params: dict[str, str] | None = None,
    ) -> ModelT:
        # Reading is idempotent, so server errors are retried too.
        response = self._request("GET", path, params=params, retry_server_errors=True)
        return self._parse(response, model)

    def post(self, path: str, body: BaseModel, model: type[ModelT]) -> ModelT:
        # Never retried on a server error: a create that answered 500 may still
        # have made a pod (a known RunPod bug); the caller looks it up by name.
        response = self._request(
            "POST",
            path,
            json=body.model_dump(mode="json", exclude_none=True),
            retry_server_errors=False,
        )
        return self._parse(response, model)

    def delete(self, path: str) -> None:
        # 204 with no body; a failure is retried by the caller, which also
        # confirms the result with a later GET.
        self._request("DELETE", path, retry_server_errors=False)

    # The one place that turns answers into errors

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: object = None,
        retry_server_errors: bool,
    ) -> httpx.Response:
        def retryable(error: BaseException) -> bool:
            if isinstance(error, ProviderRateLimited):
                # Waits longer than we are willing to block go to the caller.
                wait_s = error.retry_after_s
                return wait_s is None or wait_s <= self._max_wait_s
            return retry_server_errors and isinstance(error, ProviderServerError)

        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            retry=retry_if_exception(retryable),
            wait=self._wait_s,
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(self._send_once, method, path, params, json)

    def _wait_s(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ProviderRateLimited) and error.retry_after_s is not None:
            return min(error.retry_after_s, self._max_wait_s)
        return min(self._backoff_s * 2 ** (state.attempt_number - 1), self._max_wait_s)

    def _send_once(
        self, method: str, path: str, params: dict[str, str] | None, json: object
    ) -> httpx.Response:
        started = time.monotonic()
        try:
            response = self._client.request(method, path, params=params, json=json)
        except httpx.TimeoutException as error:
            self._log(method, path, type(error).__name__, started)
            raise ProviderServerError(
                f"RunPod did not answer {method} {path} in time "
                f"({type(error).__name__})."
            ) from None
        except httpx.HTTPError as error:
            self._log(method, path, type(error).__name__, started)
            raise ProviderServerError(
                f"RunPod could not be reached for {method} {path} "
                f"({type(error).__name__})."
            ) from None
        self._log(method, path, str(response.status_code), started)
        if response.is_success:
            return response
        raise self._error(method, path, response)

    def _log(self, method: str, path: str, outcome: str, started: float) -> None:
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.info("RunPod %s %s -> %s in %.0f ms", method, path, outcome, elapsed_ms)

    def _error(self, method: str, path: str, response: httpx.Response) -> ProviderError:
        status = response.status_code
        body = _error_body(response)
        detail = self._short(body.text()) if body else None
        field_name, field_message = body.first_error() if body else (None, None)
        field_name = self._short(field_name)
        said = f": {detail}" if detail else ""
        where = f"RunPod answered {method} {path} with {status}"

        if body is not None and _says_no_capacity(body):
            return NoCapacityError(detail or "RunPod has no capacity for this pod.")
        if status in (401, 403):
            hint = (
                " (a 403 can also come from RunPod's firewall)" if status == 403 else ""
            )
            return ProviderAuthError(f"{where}{said}{hint}.")
        if status == 404:
            return ProviderNotFound(f"{where}{said}.")
        if status == 429:
            return ProviderRateLimited(
                f"{where}{said}.", retry_after_s=_retry_after_s(response)
            )
        if status in (400, 422):
            if field_name or field_message:
                about = self._short(field_message) or "invalid value"
                named = (
                    f" (field {field_name}: {about})" if field_name else f" ({about})"
                )
                return ProviderValidationError(
                    f"{where}{said}{named}.", field_name=field_name
                )
            return ProviderValidationError(f"{where}{said}.")
        if status >= 500:
            if body is None and _is_html(response):
                return ProviderServerError(f"{where} and an HTML page instead of JSON.")
            return ProviderServerError(f"{where}{said}.")
        return ProviderError(f"{where}{said}.")

    def _parse(self, response: httpx.Response, model: type[ModelT]) -> ModelT:
        request = response.request
        try:
            return model.model_validate_json(response.content)
        except ValidationError:
            # A success status with an unreadable body (a proxy's HTML page, a
            # changed schema): say so without echoing the body.
            what = "an HTML page" if _is_html(response) else "a body it cannot read"
            raise ProviderServerError(
                f"RunPod answered {request.method} {request.url.path} with "
                f"{response.status_code} and {what}."
            ) from None

    def _short(self, text: str | None) -> str | None:
        """A server's explanation, cut short and never holding the key."""
        if not text:
            return None
        text = " ".join(text.split())
        if len(self._secret) >= 8:
            text = text.replace(self._secret, "[redacted]")
        text = text.rstrip(".")
        if len(text) > DETAIL_MAX_CHARS:
            text = text[: DETAIL_MAX_CHARS - 1].rstrip() + "…"
        return text


def _error_body(response: httpx.Response) -> ErrorBody | None:
    if _is_html(response):
        return None
    try:
        return ErrorBody.model_validate_json(response.content)
    except ValidationError:
        return None


def _says_no_capacity(body: ErrorBody) -> bool:
    texts = [body.detail, body.error, body.message, body.title]
    for item in body.errors or []:
        texts.append(item if isinstance(item, str) else item.message)
    wording = " ".join(" ".join(text.lower().split()) for text in texts if text)
    return any(phrase in wording for phrase in NO_CAPACITY_PHRASES)


def _is_html(response: httpx.Response) -> bool:
    content_type = response.headers.get("content-type", "").lower()
    if "html" in content_type:
        return True
    return response.content.lstrip()[:15].lower().startswith((b"<!doctype", b"<html"))


def _retry_after_s(response: httpx.Response) -> float | None:
    """Seconds to wait from `Retry-After`: a number or an HTTP date."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
