"""HTTP client for a run's agent, reached directly or through RunPod's proxy.

While a pod starts, the proxy answers 502 or an HTML holding page, and a
RUNNING pod may have no network yet; all of that reads as "not ready yet".
"""

from __future__ import annotations

import logging

import httpx
from pydantic import ValidationError

from agent.schema import AgentStatus

logger = logging.getLogger(__name__)

AGENT_SERVICE = "persephone-agent"
# RunPod's proxy cuts responses at 100 s; the agent answers in milliseconds.
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class AgentError(Exception):
    """The agent could not be reached or answered something unexpected."""


class AgentAuthError(AgentError):
    """The agent refused the run's token: waiting will not fix that."""


class AgentClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def is_ready(self) -> bool:
        """True once the agent itself answers its health check."""
        try:
            response = self._client.get("/health")
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        try:
            payload = response.json()
        except ValueError:
            return False  # an HTML holding page in front of the port
        return isinstance(payload, dict) and payload.get("service") == AGENT_SERVICE

    def status(self) -> AgentStatus:
        response = self._get("/status")
        try:
            return AgentStatus.model_validate_json(response.content)
        except ValidationError as error:
            raise AgentError(f"The agent sent an unreadable status: {error}") from None

    def timeseries_chunk(self, offset: int) -> tuple[bytes, int]:
        """Bytes of gpu_timeseries.csv from `offset` up to the last full line."""
        response = self._get(
            "/files/gpu_timeseries.csv", params={"offset": str(offset)}
        )
        next_offset = int(response.headers.get("X-Next-Offset", offset))
        data = response.content
        if next_offset != offset + len(data):
            raise AgentError(
                f"The agent's CSV chunk at offset {offset} has {len(data)} bytes "
                f"but says the next offset is {next_offset}."
            )
        return data, next_offset

    def result_json(self) -> bytes | None:
        response = self._get("/files/result.json", allow_missing=True)
        if response.status_code == 404:
            return None
        return response.content

    def _get(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        allow_missing: bool = False,
    ) -> httpx.Response:
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as error:
            raise AgentError(
                f"The agent did not answer {path} ({type(error).__name__})."
            ) from None
        if response.status_code == 404 and allow_missing:
            return response
        if response.status_code == 401:
            raise AgentAuthError(
                f"The agent refused this run's token on {path}: the pod runs an "
                f"agent for another run or installation (PERSEPHONE_SECRET_KEY)."
            )
        if response.status_code != 200:
            raise AgentError(f"The agent answered {path} with {response.status_code}.")
        return response
