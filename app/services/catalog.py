"""The GPU catalog: offers from the provider, cached, and slug resolution."""

from __future__ import annotations

import difflib
import logging
import threading
import time

from app.context import get_provider
from app.providers.base import GpuOffer
from app.settings import get_settings

logger = logging.getLogger(__name__)

# RunPod's prices and availability move; a minute keeps pages fast and fresh.
CATALOG_TTL_S = 60.0

_cache_lock = threading.Lock()
_cache: tuple[float, list[GpuOffer]] | None = None


class UnknownGpuType(ValueError):
    """A gpu_type that is not a catalog slug; carries the nearest slugs."""

    def __init__(self, value: str, suggestions: list[str]) -> None:
        self.value = value
        self.suggestions = suggestions
        hint = (
            f" Did you mean {', '.join(repr(s) for s in suggestions)}?"
            if suggestions
            else " GET /compute/gpus lists the known types."
        )
        super().__init__(f"Unknown gpu_type {value!r}.{hint}")


def clear_cache() -> None:
    global _cache
    with _cache_lock:
        _cache = None


def list_offers(*, refresh: bool = False) -> list[GpuOffer]:
    """All GPU types that can run pods, cheapest secure price first."""
    global _cache
    with _cache_lock:
        if not refresh and _cache is not None and _cache[0] > time.monotonic():
            return _cache[1]
    offers = get_provider().list_offers()
    offers.sort(key=lambda o: (o.price_secure_per_hour or 1e9, o.slug))
    ttl = CATALOG_TTL_S if get_settings().catalog_mode == "runpod" else 3600.0
    with _cache_lock:
        _cache = (time.monotonic() + ttl, offers)
    return offers


def resolve_gpu_type(value: str) -> GpuOffer:
    """The offer for a slug such as "l4-24gb"; anything else is rejected."""
    offers = list_offers()
    by_slug = {offer.slug: offer for offer in offers}
    if value in by_slug:
        return by_slug[value]
    raise UnknownGpuType(value, suggest_slugs(value, offers))


def suggest_slugs(value: str, offers: list[GpuOffer]) -> list[str]:
    wanted = " ".join(value.lower().split())
    exact = [
        offer.slug
        for offer in offers
        if wanted
        in {
            " ".join(offer.display_name.lower().split()),
            " ".join(offer.provider_gpu_id.lower().split()),
        }
    ]
    if exact:
        return exact
    slugs = [offer.slug for offer in offers]
    close = difflib.get_close_matches(value.lower(), slugs, n=3, cutoff=0.4)
    if close:
        return close
    token = wanted.replace(" ", "-")
    return [slug for slug in slugs if token and token in slug][:3]
