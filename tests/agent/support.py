"""Helpers for the agent's tests: a real agent process and reading its files."""

from __future__ import annotations

import csv
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-5f1c9e"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        return json.loads(self.body)


def http_get(port: int, path: str, token: str | None = TOKEN) -> Response:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            return Response(answer.status, dict(answer.headers), answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return Response(error.code, dict(error.headers), error.read())


@dataclass
class AgentProcess:
    """A `python -m agent` subprocess on loopback with its own workspace."""

    process: subprocess.Popen[bytes]
    port: int
    workspace: Path
    stderr_path: Path

    def get(self, path: str, *, token: str | None = TOKEN) -> Response:
        return http_get(self.port, path, token)

    def wait_healthy(self, timeout_s: float = 10.0) -> None:
        self.wait_for(self._healthy, timeout_s, "the agent to answer /health")

    def _healthy(self) -> bool:
        try:
            return self.get("/health", token=None).status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def wait_for(
        self, condition: Callable[[], bool], timeout_s: float, what: str
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the agent exited ({self.process.returncode}) while waiting "
                    f"for {what}; stderr:\n{self.stderr()}"
                )
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}; stderr:\n{self.stderr()}")

    def wait_result(self, timeout_s: float = 15.0) -> dict[str, object]:
        path = self.workspace / "result.json"
        self.wait_for(path.exists, timeout_s, "result.json")
        return json.loads(path.read_bytes())

    def terminate(self, timeout_s: float = 10.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def log(self) -> str:
        return (self.workspace / "agent.log").read_text(errors="replace")
