"""The real agent over HTTP: a mock-v0 run from launch to result.json."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from agent.schema import TIMESERIES_COLUMNS, AgentStatus, Result
from tests.agent.conftest import StartAgent
from tests.agent.support import TOKEN, read_csv_rows

PHASE_ORDER = {"load": 0, "warmup": 1, "measure": 2, "idle": 3}


def test_mock_run_end_to_end(start_agent: StartAgent) -> None:
    launched = time.monotonic()
    agent = start_agent(
        nvml="ok", PERSEPHONE_RUN_ID="run-e2e", PERSEPHONE_SAMPLE_HZ="10"
    )

    health = agent.get("/health", token=None)
    assert health.status == 200
    assert health.json() == {"service": "persephone-agent", "version": "0.1.0"}

    chunks: list[bytes] = []
    offset = 0
    while True:
        status = AgentStatus.model_validate_json(agent.get("/status").body)
        chunk = agent.get(f"/files/gpu_timeseries.csv?offset={offset}")
        assert chunk.status == 200
        assert chunk.headers["Content-Type"].startswith("text/csv")
        next_offset = int(chunk.headers["X-Next-Offset"])
        assert next_offset == offset + len(chunk.body)
        assert chunk.body == b"" or chunk.body.endswith(b"\n")
        chunks.append(chunk.body)
        offset = next_offset
        if status.result_ready:
            break
        assert time.monotonic() - launched < 10, "no result after 10 s"
        time.sleep(0.05)
    seconds_to_result = time.monotonic() - launched
    # The rows are final once result.json exists; one more pull gets the rest.
    tail = agent.get(f"/files/gpu_timeseries.csv?offset={offset}")
    chunks.append(tail.body)
    assert (
        agent.get(f"/files/gpu_timeseries.csv?offset={offset + len(tail.body)}").body
        == b""
    )

    csv_path = agent.workspace / "gpu_timeseries.csv"
    assert b"".join(chunks) == csv_path.read_bytes()
    served = agent.get("/files/result.json")
    assert served.status == 200
    assert served.body == (agent.workspace / "result.json").read_bytes()

    result = Result.model_validate_json(served.body)
    assert result.status == "succeeded" and result.error is None
    assert result.run_id == "run-e2e"
    assert result.workload is not None and result.workload.kind == "mock"
    assert result.samples == 8 and result.samples_completed == 8
    assert result.latency_ms is not None and result.latency_ms.n == 8
    assert result.latency_ms.p99_indicative is True
    assert result.warmup.count == 2
    assert result.cold_start.load_s is not None and result.cold_start.load_s > 0.05
    assert result.cold_start.first_call_s is not None
    assert result.cold_start.first_call_s * 1000 > result.latency_ms.p50  # cold
    assert result.simulated_metrics is False
    assert result.telemetry.status == "ok"
    assert result.energy.method == "nvml_counter"
    assert result.energy.mean_power_w is not None
    assert 240 < result.energy.mean_power_w < 260  # the fake GPU draws 250 W
    assert result.environment["agent_version"] == "0.1.0"
    assert result.environment["gpu_name"] == "NVIDIA H100 80GB HBM3"
    assert result.environment["seed"] == 0

    rows = read_csv_rows(csv_path)
    header = csv_path.read_text().splitlines()[0].split(",")
    assert tuple(header) == TIMESERIES_COLUMNS
    assert len(rows) == result.telemetry.rows
    orders = [PHASE_ORDER[r["phase"]] for r in rows]
    assert orders == sorted(orders)
    assert {r["phase"] for r in rows} == {"load", "warmup", "measure", "idle"}
    assert rows[-1]["phase"] == "idle"
    window = result.measure_window
    assert window.duration_s is not None
    measure_rows = sum(r["phase"] == "measure" for r in rows)
    # 10 Hz over the window, plus the tick that opens it.
    assert abs(measure_rows - (window.duration_s * 10 + 1)) <= 2

    final = AgentStatus.model_validate_json(agent.get("/status").body)
    assert final.state == "finished" and final.phase == "idle"
    assert final.samples_done == 8 and final.samples_total == 8
    assert final.timeseries_bytes == csv_path.stat().st_size

    assert seconds_to_result < 2.0, f"launch to result took {seconds_to_result:.2f} s"
    assert agent.process.poll() is None  # keeps serving after the run
    assert agent.terminate() == 0
    logs = agent.log() + agent.stderr()
    assert TOKEN not in logs
    assert "Traceback" not in logs


def test_every_path_but_health_needs_the_token(start_agent: StartAgent) -> None:
    agent = start_agent(nvml="ok")

    for path in ("/status", "/files/gpu_timeseries.csv", "/files/result.json", "/x"):
        for token in (None, "wrong-token", TOKEN + "x", ""):
            answer = agent.get(path, token=token)
            assert answer.status == 401, (path, token)
            assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert agent.get("/health", token=None).status == 200
    assert agent.get("/nowhere").status == 404
    post = urllib.request.Request(
        f"http://127.0.0.1:{agent.port}/status", data=b"{}", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post, timeout=5)  # noqa: S310
    assert refused.value.code == 405
    refused.value.close()


def test_answers_while_the_model_loads(start_agent: StartAgent) -> None:
    # Speed 0.05: a 2 s load, then samples of about 1.2 s.
    agent = start_agent(nvml="ok", PERSEPHONE_MOCK_SPEED="0.05", SAMPLES="50")

    began = time.monotonic()
    status = AgentStatus.model_validate_json(agent.get("/status").body)
    missing = agent.get("/files/result.json")
    bad_offset = agent.get("/files/gpu_timeseries.csv?offset=abc")
    past_end = agent.get("/files/gpu_timeseries.csv?offset=999999999")
    header = agent.get("/files/gpu_timeseries.csv?offset=0")

    assert time.monotonic() - began < 1.0
    assert status.state == "loading" and status.phase == "load"
    assert status.samples_done == 0 and status.samples_total == 50
    assert status.result_ready is False
    assert missing.status == 404
    assert json.loads(missing.body)["error"] == "result.json is not written yet"
    assert bad_offset.status == 400
    assert past_end.status == 416
    assert header.body.startswith(b"timestamp,elapsed_s,phase,")
