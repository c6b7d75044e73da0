"""Shared fixtures: every test gets its own data folder and SQLite file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import context

_VARIABLES = (
    "PERSEPHONE_API_KEY",
    "PERSEPHONE_CATALOG_MODE",
    "PERSEPHONE_DB_URL",
    "PERSEPHONE_DATA_DIR",
    "PERSEPHONE_REQUEST_TIMEOUT_S",
    "PERSEPHONE_IMAGE_AGENT",
    "PERSEPHONE_SECRET_KEY",
    "PERSEPHONE_SAMPLE_HZ",
    "PERSEPHONE_POD_PREFIX",
    "RUNPOD_API_KEY",
    "RUNPOD_API_BASE_URL",
    "PERSEPHONE_RUNPOD_PROXY_URL",
)


@pytest.fixture(autouse=True)
def _offline() -> None:
    # Tests never reach beyond loopback: no Hugging Face Hub, no telemetry.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture
def persephone_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh installation in mock mode; yields its data folder."""
    for variable in _VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PERSEPHONE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PERSEPHONE_DB_URL", f"sqlite:///{tmp_path}/persephone.db")
    monkeypatch.setenv("PERSEPHONE_CATALOG_MODE", "mock")
    context.reset()
    yield tmp_path
    _terminate_mock_pods(tmp_path)
    context.reset()


def _terminate_mock_pods(data_dir: Path) -> None:
    """No test leaves an agent process behind."""
    from app.providers.mock import MockProvider

    provider = MockProvider(data_dir)
    for pod in provider.find_pods(""):
        provider.terminate_pod(pod.pod_id)
