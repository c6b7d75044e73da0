"""RunPod as a Persephone provider, over RunPod's REST API v2.

v2 is used because v1 is retired on 2026-11-15 and has no catalog endpoint.
Payloads are read into the pydantic models below and nothing else crosses into
the rest of the app; the HTTP details and error translation live in
`app.providers.runpod_client`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from app.providers.base import (
    Availability,
    CloudTier,
    GpuOffer,
    PodInfo,
    PodSpec,
    ProviderError,
    ProviderNotFound,
    slugify,
)
from app.providers.runpod_client import RunPodClient
from app.settings import Settings

logger = logging.getLogger(__name__)

# The agent listens here inside the pod; RunPod's proxy exposes it by this number.
AGENT_PORT = 8000
# Container disk for the agent image plus a model or two; wiped with the pod.
CONTAINER_DISK_GB = 40
# After DELETE, how often and how long to look for RunPod's confirmation.
CONFIRM_POLLS = 4
CONFIRM_INTERVAL_S = 0.5
GONE_STATUSES = frozenset({"TERMINATED"})

_AVAILABILITY: dict[str, Availability] = {
    "NONE": "none",
    "LOW": "low",
    "MEDIUM": "medium",
    "HIGH": "high",
}
_CLOUD: dict[CloudTier, Literal["SECURE", "COMMUNITY"]] = {
    "secure": "SECURE",
    "community": "COMMUNITY",
}


class _Model(BaseModel):
    # RunPod adds fields over time; unknown ones are ignored, not rejected.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# Catalog payloads (GET /v2/catalog/gpus)


class GpuPrices(_Model):
    secure: float | None = None
    community: float | None = None
    serverless: float | None = None


class GpuType(_Model):
    id: str
    name: str | None = None
    pool: str | None = None
    memory: int | None = None
    secure: bool | None = None
    community: bool | None = None
    price: GpuPrices = Field(default_factory=GpuPrices)
    availability: str | None = None


class GpuCatalog(_Model):
    gpus: list[GpuType]


# Pod payloads (/v2/pods)


class PodGpu(_Model):
    id: str
    count: int = 1


class RuntimePort(_Model):
    private: int | None = None
    public: int | None = None
    type: str | None = None
    ip: str | None = None


class PodRuntime(_Model):
    uptime: float | None = None
    # May be null even on a RUNNING pod while its networking comes up.
    ports: list[RuntimePort] | None = None


class Pod(_Model):
    id: str
    name: str = ""
    status: str = "UNKNOWN"
    image: str | None = None
    gpu: PodGpu | None = None
    cloud: str | None = None
    cost: float | None = None
    cost_per_hr: float | None = Field(default=None, alias="costPerHr")
    runtime: PodRuntime | None = None
    created_at: str | None = Field(default=None, alias="createdAt")


class PodList(_Model):
    pods: list[Pod]


class CreatePodGpu(BaseModel):
    id: str
    count: int = 1


class CreatePodRequest(BaseModel):
    name: str
    image: str
    gpu: CreatePodGpu
    # Always explicit: an omitted cloud is SECURE per the spec but "any cloud"
    # per SkyPilot, and "any" would make the frozen price wrong.
    cloud: Literal["SECURE", "COMMUNITY"]
    ports: list[str]
    env: dict[str, str]
    disk: int


class RunPodProvider:
    name = "runpod"

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        retry_backoff_s: float = 1.0,
    ) -> None:
        key = settings.runpod_api_key
        self._client = RunPodClient(
            key.get_secret_value() if key is not None else "",
            settings.runpod_api_base_url,
            transport=transport,
            sleep=sleep,
            backoff_s=retry_backoff_s,
        )
        self._proxy_url = settings.runpod_proxy_url
        self._sleep = sleep
        # Restart detection: the last uptime seen and the restarts counted.
        self._uptimes: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    # Catalog

    def list_offers(self) -> list[GpuOffer]:
        catalog = self._client.get(
            "/v2/catalog/gpus",
            GpuCatalog,
            params={"include": "AVAILABILITY", "product": "POD"},
        )
        read_at = datetime.now(UTC)
        offers: dict[str, GpuOffer] = {}
        # On a slug clash the regular id wins over a double-spaced variant.
        for gpu in sorted(catalog.gpus, key=lambda g: ("  " in g.id, g.id)):
            offer = _offer(gpu, read_at)
            if offer is None:
                continue
            if offer.slug in offers:
                logger.warning(
                    "RunPod GPU ids %r and %r share the slug %s; keeping the first",
                    offers[offer.slug].provider_gpu_id,
                    offer.provider_gpu_id,
                    offer.slug,
                )
                continue
            offers[offer.slug] = offer
        return list(offers.values())

    # Pods

    def create_pod(self, spec: PodSpec) -> PodInfo:
        request = CreatePodRequest(
            name=spec.name,
            image=spec.image,
            # The id goes out byte for byte: some have double spaces.
            gpu=CreatePodGpu(id=spec.provider_gpu_id, count=1),
            cloud=_CLOUD[spec.tier],
            ports=[f"{spec.port}/http"],
            env=dict(spec.env),
            disk=CONTAINER_DISK_GB,
        )
        pod = self._client.post("/v2/pods", request, Pod)
        logger.info("RunPod pod %s created (%s)", pod.id, pod.name)
        return self._info(pod)

    def get_pod(self, pod_id: str) -> PodInfo | None:
        try:
            pod = self._client.get(_pod_path(pod_id), Pod)
        except ProviderNotFound:
            self._forget(pod_id)
            return None
        if pod.status in GONE_STATUSES:
            self._forget(pod_id)
            return None
        return self._info(pod)

    def find_pods(self, name_prefix: str) -> list[PodInfo]:
        listing = self._client.get("/v2/pods", PodList)
        return [
            self._info(pod)
            for pod in listing.pods
            if pod.name.startswith(name_prefix) and pod.status not in GONE_STATUSES
        ]

    def terminate_pod(self, pod_id: str) -> None:
        path = _pod_path(pod_id)
        # A 404 ("pod not found to terminate") means it is already gone.
        with contextlib.suppress(ProviderNotFound):
            self._client.delete(path)
        for poll in range(CONFIRM_POLLS):
            try:
                pod = self._client.get(path, Pod)
            except ProviderNotFound:
                self._forget(pod_id)
                return
            if pod.status in GONE_STATUSES:
                self._forget(pod_id)
                return
            if poll < CONFIRM_POLLS - 1:
                self._sleep(CONFIRM_INTERVAL_S)
        raise ProviderError(
            f"RunPod accepted the terminate of pod {pod_id} but still lists it as "
            f"{pod.status}; it may still be billing."
        )

    # Helpers

    def _info(self, pod: Pod) -> PodInfo:
        extra = {"cloud": pod.cloud or ""}
        if pod.gpu is not None:
            extra["gpu_id"] = pod.gpu.id
        return PodInfo(
            pod_id=pod.id,
            name=pod.name,
            status=pod.status,
            agent_url=self._agent_url(pod),
            created_at=parse_runpod_time(pod.created_at),
            cost_per_hour=pod.cost_per_hr if pod.cost_per_hr is not None else pod.cost,
            restarts=self._restarts(pod),
            extra=extra,
        )

    def _agent_url(self, pod: Pod) -> str | None:
        # RUNNING alone is not enough: runtime (and its ports) arrive later.
        if pod.status != "RUNNING" or pod.runtime is None or not pod.runtime.ports:
            return None
        if not any(port.private == AGENT_PORT for port in pod.runtime.ports):
            return None
        return self._proxy_url.format(pod_id=pod.id, port=AGENT_PORT)

    def _restarts(self, pod: Pod) -> int:
        """How often the container restarted, seen as its uptime going backwards.

        RunPod restarts a container whose main process exits, again and again,
        and reports no counter; only `runtime.uptime` shows it.
        """
        uptime = pod.runtime.uptime if pod.runtime is not None else None
        with self._lock:
            last_uptime, restarts = self._uptimes.get(pod.id, (None, 0))
            if uptime is None:
                return restarts
            if last_uptime is not None and uptime < last_uptime:
                restarts += 1
            self._uptimes[pod.id] = (uptime, restarts)
            return restarts

    def _forget(self, pod_id: str) -> None:
        with self._lock:
            self._uptimes.pop(pod_id, None)


def _offer(gpu: GpuType, read_at: datetime) -> GpuOffer | None:
    """The catalog entry for a GPU type pods can use, or None."""
    if gpu.id == "unknown" or not gpu.memory:
        return None
    secure = gpu.price.secure if gpu.secure is not False else None
    community = gpu.price.community if gpu.community is not False else None
    if not secure and not community:
        return None  # serverless-only pools and types offered nowhere
    availability = _AVAILABILITY.get((gpu.availability or "").upper())
    display_name = gpu.name or gpu.id
    return GpuOffer(
        slug=slugify(display_name, gpu.memory),
        provider_gpu_id=gpu.id,
        display_name=display_name,
        memory_gb=gpu.memory,
        price_secure_per_hour=secure or None,
        price_community_per_hour=community or None,
        availability=availability,
        read_at=read_at,
    )


def _pod_path(pod_id: str) -> str:
    return f"/v2/pods/{quote(pod_id, safe='')}"


def parse_runpod_time(value: str | None) -> datetime | None:
    """RunPod's Go-formatted times ("2026-08-20 06:16:19.436 +0000 UTC") or ISO."""
    if not value:
        return None
    text = value.strip().removesuffix(" UTC")
    for pattern in ("%Y-%m-%d %H:%M:%S.%f %z", "%Y-%m-%d %H:%M:%S %z"):
        try:
            return datetime.strptime(text, pattern).astimezone(UTC)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        logger.warning("RunPod sent an unreadable time %r; using now", value)
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
