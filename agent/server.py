"""The agent's HTTP server: progress and files for the dashboard to pull.

Every answer comes from memory or a file read, never from waiting on the
workload, so the server stays quick while a model loads or runs. Every path but
/health needs `Authorization: Bearer <PERSEPHONE_AGENT_TOKEN>`.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qs, urlsplit

from agent import __version__
from agent.schema import AgentStatus

logger = logging.getLogger(__name__)

SERVICE = "persephone-agent"
CSV_NAME = "gpu_timeseries.csv"
RESULT_NAME = "result.json"
_CHUNK_BYTES = 64 * 1024
# A client that stalls mid-request gives its thread back after this long.
_SOCKET_TIMEOUT_S = 30


class AgentHttp:
    """What the handler needs: token, file paths, and a status snapshot."""

    def __init__(
        self,
        token: str | None,
        workspace: Path,
        status: Callable[[], AgentStatus],
    ) -> None:
        self._token = token.encode("utf-8") if token else None
        self.csv_path = workspace / CSV_NAME
        self.result_path = workspace / RESULT_NAME
        self.status = status

    def authorized(self, header: str | None) -> bool:
        if self._token is None or not header:
            return False
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credentials.strip().encode("utf-8"), self._token)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: AgentHttp) -> None:
        self.app = app
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        # socketserver would print a bare traceback to stderr; log one line instead.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            logger.debug("client %s went away: %s", client_address[0], error)
        else:
            logger.error("request from %s failed", client_address[0], exc_info=error)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "persephone-agent"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = _SOCKET_TIMEOUT_S

    def do_GET(self) -> None:
        app = self.server.app
        url = urlsplit(self.path)
        if url.path == "/health":
            self._json(HTTPStatus.OK, {"service": SERVICE, "version": __version__})
            return
        if not app.authorized(self.headers.get("Authorization")):
            self._json(
                HTTPStatus.UNAUTHORIZED,
                {"error": "missing or wrong bearer token"},
                {"WWW-Authenticate": "Bearer"},
            )
            return
        if url.path == "/status":
            self._send(HTTPStatus.OK, app.status().model_dump_json().encode("utf-8"))
        elif url.path == f"/files/{CSV_NAME}":
            self._csv(app.csv_path, url.query)
        elif url.path == f"/files/{RESULT_NAME}":
            self._result(app.result_path)
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such path: {url.path}"})

    def _refuse_method(self) -> None:
        # A body left unread would corrupt the next request on this connection.
        self.close_connection = True
        self._json(
            HTTPStatus.METHOD_NOT_ALLOWED,
            {"error": f"{self.command} is not allowed; use GET"},
            {"Allow": "GET", "Connection": "close"},
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse_method  # noqa: N815

    def _csv(self, path: Path, query: str) -> None:
        values = parse_qs(query).get("offset", ["0"])
        text = values[-1]
        if not (text.isascii() and text.isdigit()):
            self._json(
                HTTPStatus.BAD_REQUEST,
                {"error": f"offset={text!r} is not a byte offset: use a whole number"},
            )
            return
        offset = int(text)
        try:
            with path.open("rb") as stream:
                size = os.fstat(stream.fileno()).st_size
                if offset > size:
                    self._json(
                        HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                        {"error": f"offset {offset} is past the end ({size} bytes)"},
                    )
                    return
                end = _end_of_last_line(stream, offset, size)
                self._stream(stream, offset, end)
        except FileNotFoundError:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"{CSV_NAME} does not exist"})

    def _stream(self, stream: BinaryIO, offset: int, end: int) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/csv; charset=utf-8")
        self.send_header("Content-Length", str(end - offset))
        self.send_header("X-Next-Offset", str(end))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        stream.seek(offset)
        left = end - offset
        while left > 0:
            chunk = stream.read(min(_CHUNK_BYTES, left))
            if not chunk:
                break
            self.wfile.write(chunk)
            left -= len(chunk)

    def _result(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self._json(
                HTTPStatus.NOT_FOUND, {"error": f"{RESULT_NAME} is not written yet"}
            )
            return
        self._send(HTTPStatus.OK, data)

    def _json(
        self,
        status: HTTPStatus,
        payload: dict[str, str],
        headers: dict[str, str] | None = None,
    ) -> None:
        self._send(status, json.dumps(payload).encode("utf-8"), headers)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Request lines carry paths and offsets only; headers (the token) never.
        logger.debug("%s %s", self.address_string(), format % args)


def _end_of_last_line(stream: BinaryIO, offset: int, size: int) -> int:
    """The byte just after the last newline in [offset, size), or offset if none."""
    position = size
    while position > offset:
        start = max(offset, position - _CHUNK_BYTES)
        stream.seek(start)
        chunk = stream.read(position - start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return offset


class AgentServer:
    """The server in its own thread; `stop` returns once it no longer accepts."""

    def __init__(self, host: str, port: int, app: AgentHttp) -> None:
        self._server = _Server((host, port), app)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="http-server",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
