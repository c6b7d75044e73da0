"""Fixtures for the RunPod tests: one fake RunPod per module, reset per test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app import context
from fakes.runpod import FakeRunPod

FAKE_KEY = "rpa_FAKETESTKEY_0123456789abcdefghijklmnop"


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeRunPod]:
    with FakeRunPod(api_key=FAKE_KEY) as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeRunPod) -> Iterator[FakeRunPod]:
    """The fake with every switch off, no pods and zeroed counters."""
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture
def runpod_env(
    persephone_env: Path, fake: FakeRunPod, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A fresh installation in runpod mode, pointed at the fake."""
    monkeypatch.setenv("PERSEPHONE_CATALOG_MODE", "runpod")
    monkeypatch.setenv("RUNPOD_API_KEY", FAKE_KEY)
    monkeypatch.setenv("RUNPOD_API_BASE_URL", fake.url)
    monkeypatch.setenv("PERSEPHONE_RUNPOD_PROXY_URL", fake.proxy_url)
    context.reset()
    return persephone_env


def eventually(
    predicate: Callable[[], object], timeout_s: float = 15.0, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")
