"""The real agent process: NVML trouble, simulation, signals, bad settings, deadline."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.deadline import terminate_own_pod
from agent.schema import AgentStatus, Result
from tests.agent.conftest import StartAgent
from tests.agent.support import read_csv_rows


def result_of(agent_result: dict[str, object]) -> Result:
    return Result.model_validate(agent_result)


@pytest.mark.parametrize(
    ("scenario", "reason_part"),
    [("no_library", "libnvidia-ml.so.1"), ("no_driver", "driver is not loaded")],
)
def test_no_nvml_still_runs_the_workload(
    start_agent: StartAgent, scenario: str, reason_part: str
) -> None:
    agent = start_agent(nvml=scenario)

    result = result_of(agent.wait_result())

    assert result.status == "succeeded"
    assert result.latency_ms is not None and result.latency_ms.n == 8
    assert result.telemetry.status == "unavailable"
    assert reason_part in (result.telemetry.reason or "")
    assert result.telemetry.rows == 0 and result.simulated_metrics is False
    assert result.energy.joules is None and result.energy.method is None
    assert result.gpus == []
    assert read_csv_rows(agent.workspace / "gpu_timeseries.csv") == []
    assert agent.terminate() == 0
    assert "Traceback" not in agent.stderr()


def test_simulated_gpu_is_labelled_everywhere(start_agent: StartAgent) -> None:
    agent = start_agent(nvml="no_gpu", PERSEPHONE_SIMULATE_GPU="1")

    result = result_of(agent.wait_result())

    rows = read_csv_rows(agent.workspace / "gpu_timeseries.csv")
    assert rows and {r["simulated"] for r in rows} == {"true"}
    assert result.status == "succeeded"
    assert result.simulated_metrics is True
    assert result.telemetry.simulated is True
    assert result.environment["simulated_gpu"] is True
    assert result.gpus[0].name == "Simulated GPU"
    assert result.energy.method == "power_integration"
    assert result.energy.estimated is True and (result.energy.joules or 0) > 0
    assert agent.terminate() == 0


def test_sigterm_mid_run_exits_cleanly_with_a_failed_result(
    start_agent: StartAgent,
) -> None:
    agent = start_agent(nvml="ok", PERSEPHONE_MOCK_SPEED="0.5", SAMPLES="1000")
    agent.wait_for(
        lambda: (
            AgentStatus.model_validate_json(agent.get("/status").body).state
            == "measuring"
        ),
        10,
        "the measure phase",
    )

    assert agent.terminate() == 0

    result = result_of(agent.wait_result(timeout_s=1))
    assert result.status == "failed"
    assert "SIGTERM" in (result.error or "")
    assert result.samples_completed < 1000
    text = (agent.workspace / "gpu_timeseries.csv").read_text()
    assert text.endswith("\n")
    assert result.telemetry.rows == len(
        read_csv_rows(agent.workspace / "gpu_timeseries.csv")
    )
    assert "Traceback" not in agent.stderr()
    assert "agent stopped" in agent.log()


def test_sigint_after_the_run_keeps_the_result(start_agent: StartAgent) -> None:
    agent = start_agent(nvml="ok")
    agent.wait_result()
    written = (agent.workspace / "result.json").read_bytes()
    time.sleep(0.3)

    agent.process.send_signal(signal.SIGINT)

    assert agent.process.wait(10) == 0
    assert (agent.workspace / "result.json").read_bytes() == written


def test_bad_setting_fails_the_run_and_keeps_serving(start_agent: StartAgent) -> None:
    agent = start_agent(nvml="ok", SAMPLES="eight", PERSEPHONE_SAMPLE_HZ="50")

    result = result_of(agent.wait_result())

    assert result.status == "failed"
    assert "SAMPLES='eight' is not a whole number" in (result.error or "")
    assert "PERSEPHONE_SAMPLE_HZ='50' is out of range" in (result.error or "")
    assert result.telemetry.status == "unavailable"
    status = AgentStatus.model_validate_json(agent.get("/status").body)
    assert status.state == "failed" and status.result_ready is True
    assert "SAMPLES='eight'" in (status.error or "")
    time.sleep(0.3)
    assert agent.process.poll() is None
    assert agent.get("/health", token=None).status == 200
    assert agent.terminate() == 0
    assert "Traceback" not in agent.stderr()
    assert "SAMPLES='eight' is not a whole number" in agent.stderr()


def test_unwritable_workspace_falls_back_and_says_so(
    start_agent: StartAgent, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    agent = start_agent(nvml="ok", PERSEPHONE_WORKSPACE=str(blocker / "workspace"))

    agent.wait_for(
        lambda: agent.get("/files/result.json").status == 200, 10, "result.json"
    )

    result = Result.model_validate_json(agent.get("/files/result.json").body)
    assert result.status == "failed"
    assert "is not a writable folder" in (result.error or "")
    assert result.workload is not None and result.workload.kind == "mock"
    assert agent.terminate() == 0
    assert "Traceback" not in agent.stderr()


@dataclass
class FakeRunPod:
    """A loopback stand-in for RunPod's REST API that records DELETE requests."""

    # Status codes to answer in turn; 204 once they run out.
    answers: list[int] = field(default_factory=list)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    port: int = 0

    def next_status(self) -> int:
        return self.answers.pop(0) if self.answers else 204


@pytest.fixture
def fake_runpod() -> Iterator[FakeRunPod]:
    record = FakeRunPod()

    class Handler(BaseHTTPRequestHandler):
        def do_DELETE(self) -> None:
            record.requests.append(
                ("DELETE", self.path, self.headers.get("Authorization"))
            )
            self.send_response(record.next_status())
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads `record` instead."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield record
    server.shutdown()
    server.server_close()


def test_deadline_terminates_the_runpod_pod(
    start_agent: StartAgent, fake_runpod: FakeRunPod
) -> None:
    agent = start_agent(
        nvml="ok",
        SAMPLES="1000",
        PERSEPHONE_DEADLINE_S="1.5",
        RUNPOD_POD_ID="pod-abc123",
        RUNPOD_API_KEY="rp-secret-key-9",
        RUNPOD_API_BASE_URL=f"http://127.0.0.1:{fake_runpod.port}",
    )

    assert agent.process.wait(10) == 0

    assert fake_runpod.requests == [
        ("DELETE", "/v2/pods/pod-abc123", "Bearer rp-secret-key-9")
    ]
    result = result_of(agent.wait_result(timeout_s=1))
    assert result.status == "failed"
    assert "PERSEPHONE_DEADLINE_S" in (result.error or "")
    logs = agent.log() + agent.stderr()
    assert "rp-secret-key-9" not in logs
    assert "pod pod-abc123 terminated" in logs


def test_deadline_of_a_mock_pod_just_exits(start_agent: StartAgent) -> None:
    agent = start_agent(nvml="ok", PERSEPHONE_DEADLINE_S="1.5")

    assert agent.process.wait(10) == 0

    assert result_of(agent.wait_result(timeout_s=1)).status == "succeeded"


@pytest.mark.parametrize(
    ("answers", "done", "calls"),
    [([204], True, 1), ([404], True, 1), ([500, 204], True, 2), ([401], False, 1)],
)
def test_terminate_own_pod_answers(
    fake_runpod: FakeRunPod, answers: list[int], done: bool, calls: int
) -> None:
    fake_runpod.answers = list(answers)

    confirmed = terminate_own_pod(
        "pod-1", "key-1", f"http://127.0.0.1:{fake_runpod.port}", retry_pause_s=0.01
    )

    assert confirmed is done
    assert len(fake_runpod.requests) == calls


def test_no_pod_to_terminate_without_runpod_variables() -> None:
    assert terminate_own_pod(None, None, "http://127.0.0.1:9") is True
