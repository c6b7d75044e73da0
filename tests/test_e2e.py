"""The seed's scenario against the real server, the real agent and real HTTP."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.providers.mock import MockProvider
from tests.serving import Server, running_server

pytestmark = pytest.mark.e2e

KEY = {"X-API-Key": "dev-secret"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("e2e")
    with running_server(data_dir, {"PERSEPHONE_API_KEY": "dev-secret"}) as running:
        yield running
    provider = MockProvider(data_dir)
    for pod in provider.find_pods(""):
        provider.terminate_pod(pod.pod_id)


def wait_for(
    server: Server, run_id: str, states: set[str], timeout_s: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = httpx.get(f"{server.url}/runs/{run_id}", headers=KEY).json()
        if run["status"] in states:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {run['status']}:\n{server.log()}")


def test_seed_scenario_succeeds_and_files_agree(server: Server) -> None:
    gpus = httpx.get(f"{server.url}/compute/gpus", headers=KEY)
    assert gpus.status_code == 200
    assert "l4-24gb" in {gpu["gpu_type"] for gpu in gpus.json()["gpus"]}

    started = httpx.post(
        f"{server.url}/runs/start",
        headers=KEY,
        json={"gpu_type": "l4-24gb", "model_ref": "mock-v0", "samples": 8},
    )
    assert started.status_code == 201
    run_id = started.json()["run_id"]
    run = wait_for(server, run_id, {"succeeded", "failed", "timed_out"})

    assert run["status"] == "succeeded", run["error_message"]
    states = [event["state"] for event in run["events"]]
    for state in ("queued", "provisioning", "starting", "running", "collecting"):
        assert state in states
    final = wait_for(server, run_id, {"succeeded"})
    deadline = time.monotonic() + 20
    while final["pod"]["terminated_at"] is None and time.monotonic() < deadline:
        time.sleep(0.2)
        final = wait_for(server, run_id, {"succeeded"})
    assert final["pod"]["may_be_billing"] is False

    result_raw = httpx.get(f"{server.url}/runs/{run_id}/result.json", headers=KEY)
    csv_raw = httpx.get(f"{server.url}/runs/{run_id}/timeseries.csv", headers=KEY)
    assert result_raw.status_code == csv_raw.status_code == 200
    result = json.loads(result_raw.content)
    rows = list(csv.DictReader(io.StringIO(csv_raw.text)))

    assert result["status"] == "succeeded"
    assert result["samples_completed"] == 8
    assert result["latency_ms"]["n"] == 8
    assert result["telemetry"]["rows"] == len(rows) > 0
    assert {row["phase"] for row in rows} >= {"measure"}
    assert {int(row["gpu_index"]) for row in rows} == {
        gpu["index"] for gpu in result["gpus"]
    }
    simulated = {row["simulated"] for row in rows}
    assert simulated == {"true" if result["simulated_metrics"] else "false"}
    assert run["metrics"]["latency_ms"]["p50"] == result["latency_ms"]["p50"]


def test_cancelling_a_running_benchmark_ends_its_agent(server: Server) -> None:
    started = httpx.post(
        f"{server.url}/runs/start",
        headers=KEY,
        json={"gpu_type": "rtx-4090-24gb", "model_ref": "mock-v0", "samples": 5000},
    )
    run_id = started.json()["run_id"]
    wait_for(server, run_id, {"running"})
    pod_id = httpx.get(f"{server.url}/runs/{run_id}", headers=KEY).json()["pod"]["id"]
    record = json.loads((server.data_dir / "pods" / pod_id / "pod.json").read_text())

    cancelled = httpx.post(f"{server.url}/runs/{run_id}/cancel", headers=KEY)
    assert cancelled.status_code == 202
    run = wait_for(server, run_id, {"cancelled"})
    deadline = time.monotonic() + 20
    while run["pod"]["terminated_at"] is None and time.monotonic() < deadline:
        time.sleep(0.2)
        run = wait_for(server, run_id, {"cancelled"})

    assert run["pod"]["terminated_at"] is not None
    assert not Path(f"/proc/{record['pid']}").exists()


def test_failed_path_reaches_error_message(server: Server) -> None:
    started = httpx.post(
        f"{server.url}/runs/start",
        headers=KEY,
        json={"gpu_type": "b200-180gb", "model_ref": "mock-v0", "samples": 8},
    )

    run = wait_for(server, started.json()["run_id"], {"failed"})

    assert "No B200 is available in the secure cloud" in run["error_message"]
    assert run["pod"]["id"] is None


def test_api_needs_the_key(server: Server) -> None:
    response = httpx.get(f"{server.url}/runs")

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
