"""What every GPU provider offers Persephone: a priced catalog and pods.

Errors from providers are translated in one place per provider into the small
hierarchy below, so the supervisor can decide what to retry and what to tell
the user without knowing any vendor's wire format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

CloudTier = Literal["secure", "community"]
Availability = Literal["high", "medium", "low", "none"]


class ProviderError(Exception):
    """A provider call failed; `str(error)` is a sentence a person can act on."""

    retryable = False


class ProviderAuthError(ProviderError):
    """The provider refused the credentials (401/403); never retried."""


class ProviderNotFound(ProviderError):
    """The object does not exist (any more)."""


class ProviderRateLimited(ProviderError):
    retryable = True

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NoCapacityError(ProviderError):
    """The provider has no machine for this GPU type and tier right now."""


class ProviderValidationError(ProviderError):
    """The provider rejected a field of the request."""

    def __init__(self, message: str, field_name: str | None = None) -> None:
        super().__init__(message)
        self.field_name = field_name


class ProviderServerError(ProviderError):
    """A 5xx, an HTML error page or a dropped connection: may be retried."""

    retryable = True


@dataclass(frozen=True)
class GpuOffer:
    """One GPU type as the catalog shows it; prices are per GPU-hour in USD."""

    slug: str
    provider_gpu_id: str
    display_name: str
    memory_gb: int
    price_secure_per_hour: float | None
    price_community_per_hour: float | None
    availability: Availability | None
    read_at: datetime
    # Mock catalog only: how much faster than the reference the simulated GPU is.
    simulated_speed: float | None = None

    def price_for(self, tier: CloudTier) -> float | None:
        if tier == "secure":
            return self.price_secure_per_hour
        return self.price_community_per_hour

    @property
    def tiers(self) -> list[CloudTier]:
        tiers: list[CloudTier] = []
        if self.price_secure_per_hour:
            tiers.append("secure")
        if self.price_community_per_hour:
            tiers.append("community")
        return tiers


@dataclass(frozen=True)
class PodSpec:
    name: str
    provider_gpu_id: str
    tier: CloudTier
    image: str
    env: dict[str, str]
    port: int = 8000
    # Mock catalog only: passed to the agent as the simulated GPU's speed.
    simulated_speed: float | None = None


@dataclass(frozen=True)
class PodInfo:
    pod_id: str
    name: str
    # The provider's own status word, e.g. RUNNING or EXITED.
    status: str
    # Where the agent can be reached; None while the pod has no network yet.
    agent_url: str | None
    created_at: datetime | None = None
    cost_per_hour: float | None = None
    restarts: int = 0
    extra: dict[str, str] = field(default_factory=dict)


class Provider(Protocol):
    name: str

    def list_offers(self) -> list[GpuOffer]: ...

    def create_pod(self, spec: PodSpec) -> PodInfo: ...

    def get_pod(self, pod_id: str) -> PodInfo | None:
        """The pod, or None once the provider says it no longer exists."""
        ...

    def find_pods(self, name_prefix: str) -> list[PodInfo]: ...

    def terminate_pod(self, pod_id: str) -> None:
        """Return only once the provider confirms the pod is gone."""
        ...

    def close(self) -> None: ...


def slugify(display_name: str, memory_gb: int) -> str:
    """A stable, typeable name: "RTX 4090", 24 → "rtx-4090-24gb"."""
    words = re.sub(r"[^a-z0-9]+", "-", display_name.lower()).strip("-")
    words = re.sub(r"^nvidia-", "", words)
    suffix = f"{memory_gb}gb"
    if words.endswith(suffix):
        return words
    return f"{words}-{suffix}"
