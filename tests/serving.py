"""Start the real Persephone server for end-to-end and browser tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "controller.Dockerfile"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dockerfile_command() -> list[str]:
    """The image's CMD, so the tests start the server exactly as the image does."""
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("CMD ["):
            import json

            return list(json.loads(line.removeprefix("CMD ")))
    raise AssertionError("docker/controller.Dockerfile has no CMD")


@dataclass
class Server:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_server(
    data_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    port = free_port()
    command = dockerfile_command()
    command[0] = sys.executable
    command[command.index("--server.port") + 1] = str(port)
    command[command.index("--server.address") + 1] = "127.0.0.1"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PERSEPHONE_", "RUNPOD_"))
    }
    env.update(
        {
            "PERSEPHONE_DATA_DIR": str(data_dir),
            "PERSEPHONE_CATALOG_MODE": "mock",
            "HF_HUB_OFFLINE": "1",
            **(extra_env or {}),
        }
    )
    log_path = data_dir / "server.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", data_dir, process, log_path)
    try:
        _wait_healthy(server)
        yield server
    finally:
        _stop(process)


def _wait_healthy(server: Server, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(
                f"server exited ({server.process.args!r}):\n{server.log()}"
            )
        try:
            if httpx.get(f"{server.url}/_stcore/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"server not healthy in {timeout_s} s:\n{server.log()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
