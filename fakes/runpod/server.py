"""A fake RunPod REST v2 API on loopback, with real agent processes as pods.

It answers the subset Persephone uses (`/v2/catalog/gpus`, `/v2/pods`,
`/v2/pods/{id}`) with RunPod's field names, bearer-key auth and
`application/problem+json` errors, and it stands in for RunPod's HTTP proxy:
`/proxy/{pod_id}-{port}/...` reaches the pod's agent the way
`https://{pod_id}-{port}.proxy.runpod.net/...` would. `/_fake/...` lets a test
or a demo switch misbehaviours on and read what happened.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx
import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from fakes.runpod.catalog import BY_ID, catalog_payload, price_for
from fakes.runpod.state import FakePod, Switches, World, runpod_time

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_API_KEY = "rpa_FAKE0000000000000000000000000000"
PROBLEM_JSON = "application/problem+json"
NO_CAPACITY_DETAIL = (
    "There are no longer any instances available with the requested "
    "specifications. Please refresh and try again."
)
# RunPod's proxy gives up after 100 s and answers 524.
PROXY_TIMEOUT = httpx.Timeout(100.0, connect=2.0)
_PASSED_RESPONSE_HEADERS = (
    "content-type",
    "content-disposition",
    "cache-control",
    "x-next-offset",
)


# Request and response bodies, with RunPod's v2 field names.


class CreateGpu(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str
    count: int = Field(default=1, ge=1, le=8)


class CreatePodBody(BaseModel):
    """`CreatePodRequest`: unknown fields are refused so typos show up in tests."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=191)
    image: str = Field(min_length=1)
    gpu: CreateGpu
    cloud: Literal["SECURE", "COMMUNITY"] = "SECURE"
    ports: list[str] = Field(default_factory=list, max_length=10)
    env: dict[str, str] = Field(default_factory=dict)
    disk: int = Field(default=50, ge=1)
    args: str | None = None
    dataCenterIds: list[str] | None = None  # noqa: N815 - RunPod's field name


class PortPayload(BaseModel):
    private: int
    public: int
    type: str
    ip: str


class RuntimePayload(BaseModel):
    uptime: int
    ports: list[PortPayload]


class PodGpuPayload(BaseModel):
    id: str
    count: int


class PodPayload(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    name: str
    status: str
    actions: list[str]
    image: str
    disk: int
    ports: list[str]
    env: dict[str, str]
    gpu: PodGpuPayload
    cloud: str
    data_center_id: str = Field(alias="dataCenterId")
    cost: float
    cost_per_hr: float = Field(alias="costPerHr")
    locked: bool = False
    runtime: RuntimePayload | None
    created_at: str = Field(alias="createdAt")
    started_at: str | None = Field(alias="startedAt")


_ACTIONS = {
    "PROVISIONING": ["terminate"],
    "STARTING": ["stop", "terminate"],
    "RUNNING": ["stop", "restart", "terminate"],
}


def pod_payload(pod: FakePod, now: float) -> PodPayload:
    uptime = pod.uptime_s(now)
    runtime = None
    if uptime is not None:
        runtime = RuntimePayload(
            uptime=uptime,
            ports=[
                PortPayload(
                    private=port,
                    public=pod.public_port,
                    type="http",
                    ip=pod.internal_ip,
                )
                for port in pod.http_ports()
            ],
        )
    return PodPayload(
        id=pod.id,
        name=pod.name,
        status=pod.status,
        actions=_ACTIONS.get(pod.status, []),
        image=pod.image,
        disk=pod.disk_gb,
        ports=pod.ports,
        env=pod.env,
        gpu=PodGpuPayload(id=pod.gpu_id, count=pod.gpu_count),
        cloud=pod.cloud,
        data_center_id="US-TX-3",
        cost=pod.cost_per_hr,
        cost_per_hr=pod.cost_per_hr,
        runtime=runtime,
        created_at=runpod_time(pod.created_at),
        started_at=runpod_time(pod.started_at) if pod.started_at else None,
    )


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, object] = {"title": title, "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status, headers=headers, media_type=PROBLEM_JSON)


def _error_page(status: int) -> HTMLResponse:
    return HTMLResponse(
        f"<!DOCTYPE html><html><head><title>{status}</title></head>"
        f"<body><h1>Error {status}</h1><p>Bad gateway.</p></body></html>",
        status,
    )


class FakeApp:
    """The Starlette routes over one `World`."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.app = Starlette(
            routes=[
                Route("/v2/catalog/gpus", self.catalog, methods=["GET"]),
                Route("/v2/pods", self.list_pods, methods=["GET"]),
                Route("/v2/pods", self.create_pod, methods=["POST"]),
                Route("/v2/pods/{pod_id}", self.get_pod, methods=["GET"]),
                Route("/v2/pods/{pod_id}", self.delete_pod, methods=["DELETE"]),
                Route("/proxy/{target}", self.proxy, methods=_PROXY_METHODS),
                Route(
                    "/proxy/{target}/{path:path}", self.proxy, methods=_PROXY_METHODS
                ),
                Route("/_fake/switches", self.get_switches, methods=["GET"]),
                Route("/_fake/switches", self.set_switches, methods=["POST"]),
                Route("/_fake/state", self.state, methods=["GET"]),
                Route("/_fake/pods/{pod_id}/vanish", self.vanish, methods=["POST"]),
            ]
        )

    # What every API call goes through first

    def _gate(self, request: Request, route: str) -> Response | None:
        """Auth, counting and the switched-on failures; None to go ahead."""
        world = self.world
        key = self._bearer(request)
        if key is None:
            return problem(401, "Unauthorized", "missing bearer token")
        if key != world.api_key:
            pod = world.pod_for_key(key)
            pod_id = request.path_params.get("pod_id")
            # A pod's own key may read and delete that pod, nothing else.
            if pod is None:
                return problem(401, "Unauthorized", "invalid bearer token")
            if pod.id != pod_id or request.method not in ("GET", "DELETE"):
                return problem(403, "Forbidden", "access denied")
        with world.lock:
            world.calls[f"{request.method} {route}"] += 1
            if request.method == "DELETE":
                world.deletes[request.path_params["pod_id"]] += 1
        if world.take("server_errors_next"):
            return self._server_error()
        if world.take("rate_limit_next"):
            wait_s = world.switches.retry_after_s
            return problem(
                429,
                "Too Many Requests",
                "rate limit exceeded for the minute window",
                headers={
                    "Retry-After": str(wait_s),
                    "RateLimit": f'"minute";r=0;t={wait_s}',
                    "RateLimit-Policy": '"minute";q=60;w=60',
                },
            )
        return None

    @staticmethod
    def _bearer(request: Request) -> str | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return key.strip() or None if scheme.lower() == "bearer" else None

    def _server_error(self) -> Response:
        if self.world.switches.html_errors:
            return _error_page(502)
        return problem(500, "Internal Server Error", "Something went wrong.")

    # Catalog

    def catalog(self, request: Request) -> Response:
        refused = self._gate(request, "/v2/catalog/gpus")
        if refused is not None:
            return refused
        include = request.query_params.get("include")
        product = request.query_params.get("product")
        if include and not product:
            return problem(
                422,
                "Unprocessable Entity",
                "Request validation failed.",
                errors=["$.product: required when include is given"],
            )
        with_availability = include == "AVAILABILITY" and product == "POD"
        gpus = catalog_payload(with_availability=with_availability)
        return JSONResponse(
            {
                "gpus": [
                    gpu.model_dump(mode="json", by_alias=True, exclude_none=True)
                    for gpu in gpus
                ]
            }
        )

    # Pods

    def list_pods(self, request: Request) -> Response:
        refused = self._gate(request, "/v2/pods")
        if refused is not None:
            return refused
        pods = [self._payload(pod) for pod in self._snapshot()]
        return JSONResponse({"pods": [self._dump(p) for p in pods]})

    async def create_pod(self, request: Request) -> Response:
        refused = self._gate(request, "/v2/pods")
        if refused is not None:
            return refused
        raw = await request.body()
        with self.world.lock:
            self.world.create_bodies.append(raw)
        try:
            body = CreatePodBody.model_validate_json(raw)
        except ValidationError as error:
            return problem(
                422,
                "Unprocessable Entity",
                "Request validation failed.",
                errors=[
                    f"$.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                    for e in error.errors()
                ],
            )
        gpu = BY_ID.get(body.gpu.id)
        if gpu is None or gpu.id == "unknown":
            return problem(
                422,
                "Unprocessable Entity",
                "Request validation failed.",
                errors=[f"$.gpu.id: unknown GPU type {body.gpu.id!r}"],
            )
        price = price_for(gpu, body.cloud)
        switches = self.world.switches
        if (
            price is None
            or gpu.availability == "NONE"
            or switches.no_capacity
            or gpu.id in switches.no_capacity_gpu_ids
        ):
            return problem(400, "Bad Request", NO_CAPACITY_DETAIL)

        pod = self.world.create(
            name=body.name,
            image=body.image,
            gpu_id=gpu.id,
            gpu_count=body.gpu.count,
            cloud=body.cloud,
            ports=body.ports,
            env=body.env,
            disk_gb=body.disk,
            cost_per_hr=round(price * body.gpu.count, 4),
        )
        logger.info("fake pod %s created (%s, %s)", pod.id, gpu.id, body.cloud)
        outage = switches.outage_after_create
        if outage:
            self.world.update_switches(
                {"outage_after_create": 0, "server_errors_next": outage}
            )
        if self.world.take("fail_after_create_next"):
            return self._server_error()
        return JSONResponse(self._dump(self._payload(pod)), 201)

    def get_pod(self, request: Request) -> Response:
        refused = self._gate(request, "/v2/pods/{id}")
        if refused is not None:
            return refused
        pod = self.world.get(request.path_params["pod_id"])
        if pod is None:
            return problem(404, "Not Found", "pod not found")
        return JSONResponse(self._dump(self._payload(pod)))

    def delete_pod(self, request: Request) -> Response:
        refused = self._gate(request, "/v2/pods/{id}")
        if refused is not None:
            return refused
        pod_id = request.path_params["pod_id"]
        if self.world.get(pod_id) is None:
            return problem(404, "Not Found", "pod not found to terminate")
        if self.world.take("fail_terminate_next"):
            return self._server_error()
        # A pod deleting itself is waiting for this answer: end it afterwards.
        own_key = self._bearer(request) != self.world.api_key
        self.world.remove(pod_id, wait=not own_key)
        return Response(status_code=204)

    def _snapshot(self) -> list[FakePod]:
        with self.world.lock:
            ids = list(self.world.pods)
        pods = [self.world.get(pod_id) for pod_id in ids]
        return [pod for pod in pods if pod is not None]

    def _payload(self, pod: FakePod) -> PodPayload:
        with self.world.lock:
            return pod_payload(pod, time.monotonic())

    @staticmethod
    def _dump(payload: PodPayload) -> dict[str, object]:
        return payload.model_dump(mode="json", by_alias=True)

    # RunPod's HTTP proxy, for the ports a pod declared as http

    async def proxy(self, request: Request) -> Response:
        target = request.path_params["target"]
        pod_id, _, port = target.rpartition("-")
        pod = self.world.get(pod_id)
        if pod is None or not port.isdigit() or int(port) not in pod.http_ports():
            return Response("404 page not found\n", 404, media_type="text/plain")
        with self.world.lock:
            agent_port = pod.agent_port if pod.status == "RUNNING" else None
            process_alive = pod.process is not None and pod.process.poll() is None
        if agent_port is None or not process_alive:
            return self._not_up_yet()
        path = request.path_params.get("path", "")
        url = f"http://127.0.0.1:{agent_port}/{path}"
        headers = {
            name: value
            for name, value in request.headers.items()
            if name in ("authorization", "accept", "content-type", "range")
        }
        try:
            async with httpx.AsyncClient(timeout=PROXY_TIMEOUT) as client:
                upstream = await client.request(
                    request.method,
                    url,
                    params=request.query_params.multi_items(),
                    headers=headers,
                    content=await request.body(),
                )
        except httpx.TimeoutException:
            return _error_page(524)
        except httpx.HTTPError:
            return self._not_up_yet()
        passed = {
            name: value
            for name, value in upstream.headers.items()
            if name.lower() in _PASSED_RESPONSE_HEADERS
        }
        return Response(upstream.content, upstream.status_code, headers=passed)

    def _not_up_yet(self) -> Response:
        if self.world.switches.holding_page:
            # Some images put nginx in front: 200 with a page, not the app.
            return HTMLResponse(
                "<!DOCTYPE html><html><body><h1>Starting…</h1>"
                "<p>This service is not ready yet.</p></body></html>"
            )
        return _error_page(502)

    # Control endpoints for tests and demos (no auth: loopback only)

    def get_switches(self, request: Request) -> Response:
        return JSONResponse(self.world.switches.model_dump(mode="json"))

    async def set_switches(self, request: Request) -> Response:
        try:
            changes = await request.json()
        except ValueError:
            changes = None
        if not isinstance(changes, dict):
            return problem(400, "Bad Request", "send a JSON object of switches")
        try:
            switches = self.world.update_switches(changes)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            return problem(
                422,
                "Unprocessable Entity",
                "Request validation failed.",
                errors=[f"$.{where}: {first['msg']}"],
            )
        return JSONResponse(switches.model_dump(mode="json"))

    def state(self, request: Request) -> Response:
        world = self.world
        pods = self._snapshot()
        with world.lock:
            body = {
                "pods": [
                    {
                        "id": pod.id,
                        "name": pod.name,
                        "status": pod.status,
                        "gpu": pod.gpu_id,
                        "cloud": pod.cloud,
                        "restarts": pod.restarts,
                        "agent_pid": pod.process.pid if pod.process else None,
                        "agent_port": pod.agent_port,
                        "log": str(pod.directory / "agent.log"),
                    }
                    for pod in pods
                ],
                "calls": dict(world.calls),
                "deletes": dict(world.deletes),
                "created": list(world.created_ids),
                "terminated": list(world.terminated_ids),
                "vanished": list(world.vanished_ids),
            }
        return JSONResponse(body)

    def vanish(self, request: Request) -> Response:
        if not self.world.remove(request.path_params["pod_id"], vanished=True):
            return problem(404, "Not Found", "pod not found")
        return Response(status_code=204)


_PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


class FakeRunPod:
    """The fake on a free loopback port, served from a background thread.

    Use it as a context manager; `url` is RUNPOD_API_BASE_URL and `proxy_url`
    is PERSEPHONE_RUNPOD_PROXY_URL for a Persephone pointed at it.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        switches: Switches | None = None,
        agent_command: Sequence[str] | None = None,
        project_root: Path = PROJECT_ROOT,
    ) -> None:
        self.api_key = api_key
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host = host
        self.port = int(self._socket.getsockname()[1])
        wildcard = host in ("0.0.0.0", "")  # noqa: S104 - compared, not bound
        shown_host = "127.0.0.1" if wildcard else host
        self.url = f"http://{shown_host}:{self.port}"
        # What PERSEPHONE_RUNPOD_PROXY_URL should be set to.
        self.proxy_url = f"{self.url}/proxy/{{pod_id}}-{{port}}"
        self.world = World(
            api_key=api_key,
            api_base_url=self.url,
            agent_command=agent_command or [sys.executable, "-m", "agent"],
            project_root=project_root,
            switches=switches,
        )
        config = uvicorn.Config(
            FakeApp(self.world).app,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FakeRunPod:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.world.start()
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="fake-runpod",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake RunPod server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._socket.close()
        self.world.close()

    # Switches

    @property
    def switches(self) -> Switches:
        return self.world.switches

    def set(self, **changes: object) -> Switches:
        """Change switches, e.g. `fake.set(fail_terminate_next=2)`."""
        return self.world.update_switches(changes)

    def reset(self) -> None:
        """All switches off, counters cleared, every pod terminated."""
        for pod_id in list(self.world.pods):
            self.world.remove(pod_id)
        with self.world.lock:
            self.world.switches = Switches()
            self.world.calls.clear()
            self.world.deletes.clear()
            self.world.create_bodies.clear()
            self.world.created_ids.clear()
            self.world.terminated_ids.clear()
            self.world.vanished_ids.clear()

    # What happened

    def pods(self) -> list[FakePod]:
        with self.world.lock:
            return list(self.world.pods.values())

    def pod(self, pod_id: str) -> FakePod | None:
        return self.world.get(pod_id)

    @property
    def calls(self) -> Counter[str]:
        with self.world.lock:
            return Counter(self.world.calls)

    @property
    def deletes(self) -> Counter[str]:
        with self.world.lock:
            return Counter(self.world.deletes)

    @property
    def create_bodies(self) -> list[bytes]:
        with self.world.lock:
            return list(self.world.create_bodies)

    @property
    def created_ids(self) -> list[str]:
        with self.world.lock:
            return list(self.world.created_ids)

    def vanish(self, pod_id: str) -> bool:
        """Delete a pod behind the client's back."""
        return self.world.remove(pod_id, vanished=True)
