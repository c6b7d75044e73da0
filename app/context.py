"""Process-wide singletons: the provider and the supervisor, built on demand.

Tests call `reset()` after changing the environment so every singleton is
rebuilt from the new settings.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING

from app.db import reset_engine
from app.providers.base import Provider
from app.settings import get_settings

if TYPE_CHECKING:
    from app.supervisor import Supervisor

_lock = threading.Lock()


@functools.cache
def get_provider() -> Provider:
    settings = get_settings()
    if settings.catalog_mode == "runpod":
        from app.providers.runpod import RunPodProvider

        return RunPodProvider(settings)
    from app.providers.mock import MockProvider

    return MockProvider(settings.data_dir)


@functools.cache
def get_supervisor() -> Supervisor:
    from app.services import runs
    from app.supervisor import Supervisor

    supervisor = Supervisor(get_provider, get_settings())
    runs.on_change(supervisor.wake)
    return supervisor


def reset() -> None:
    """Forget every singleton (tests only): settings, engine, provider, caches."""
    from app import security
    from app.services import catalog, runs

    with _lock:
        if get_supervisor.cache_info().currsize:
            get_supervisor().stop()
        get_supervisor.cache_clear()
        runs._listeners.clear()
        if get_provider.cache_info().currsize:
            get_provider().close()
        get_provider.cache_clear()
        reset_engine()
        get_settings.cache_clear()
        security.installation_secret.cache_clear()
        catalog.clear_cache()
