"""The supervisor against mock pods: real agent processes over loopback HTTP.

Every end state must terminate the pod exactly once, and only a confirmed
terminate counts.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import context
from app.models import Run
from app.providers.base import PodInfo, PodSpec, ProviderError
from app.providers.mock import MockProvider
from app.services import runs
from app.services.runs import LaunchRequest
from app.settings import get_settings
from app.supervisor import Supervisor, Timing

FAST = Timing(poll_s=0.05, scan_s=0.1, create_backoff_s=0.05, reaper_s=3600)
FINAL = {"succeeded", "failed", "cancelled", "timed_out"}


class CountingProvider(MockProvider):
    """The mock provider, counting calls and failing terminates on request."""

    def __init__(self, data_dir: Path, *, failing_terminates: int = 0) -> None:
        super().__init__(data_dir, simulate_gpu=True)
        self.calls: Counter[str] = Counter()
        self.terminated: Counter[str] = Counter()
        self.failing_terminates = failing_terminates

    def create_pod(self, spec: PodSpec) -> PodInfo:
        self.calls["create"] += 1
        return super().create_pod(spec)

    def terminate_pod(self, pod_id: str) -> None:
        self.calls["terminate"] += 1
        if self.failing_terminates > 0:
            self.failing_terminates -= 1
            raise ProviderError("The provider answered 500 to the terminate.")
        super().terminate_pod(pod_id)
        self.terminated[pod_id] += 1


@pytest.fixture
def provider(persephone_env: Path) -> CountingProvider:
    return CountingProvider(persephone_env)


@pytest.fixture
def supervisor(provider: CountingProvider) -> Iterator[Supervisor]:
    running = Supervisor(lambda: provider, get_settings(), timing=FAST)
    runs.on_change(running.wake)
    running.start()
    yield running
    running.stop()


def launch(gpu_type: str = "l4-24gb", samples: int = 8, **extra: object) -> str:
    request = LaunchRequest(
        gpu_type=gpu_type, model_ref="mock-v0", samples=samples, **extra
    )
    return runs.start_run(request).id


def wait_until(
    run_id: str, predicate: object, timeout_s: float = 30.0, what: str = ""
) -> Run:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = runs.get_run(run_id)
        if predicate(run):  # type: ignore[operator]
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never {what}: {runs.get_run(run_id)!r}")


def settled(run: Run) -> bool:
    """Final, and its pod (if any) confirmed terminated."""
    return run.state in FINAL and not run.may_be_billing


def pid_of(data_dir: Path, pod_id: str) -> int:
    record = json.loads((data_dir / "pods" / pod_id / "pod.json").read_text())
    return int(record["pid"])


def test_success_ingests_and_terminates_once(
    supervisor: Supervisor, provider: CountingProvider, persephone_env: Path
) -> None:
    run_id = launch()

    run = wait_until(run_id, settled, what="settled")

    assert run.state == "succeeded"
    assert run.error_message is None
    assert provider.calls["create"] == 1
    assert provider.terminated == Counter({run.pod_id: 1})
    assert run.pod_terminated_at is not None
    assert run.latency_n == 8
    assert run.timeseries_rows > 0
    assert run.simulated_metrics is True
    events = runs.run_events(run_id)
    assert [event.state for event in events if event.message is None] == [
        "queued",
        "provisioning",
        "starting",
        "running",
        "collecting",
        "succeeded",
    ]
    assert events[-1].message == (
        f"pod {run.pod_id} terminated (confirmed by the provider)"
    )
    assert not (persephone_env / "pods" / str(run.pod_id)).exists()


def test_cancel_ends_the_agent_and_terminates_once(
    supervisor: Supervisor, provider: CountingProvider, persephone_env: Path
) -> None:
    run_id = launch(samples=50_000)
    running = wait_until(run_id, lambda r: r.state == "running", what="running")
    pid = pid_of(persephone_env, str(running.pod_id))

    runs.cancel_run(run_id)
    run = wait_until(run_id, settled, what="settled")

    assert run.state == "cancelled"
    assert provider.terminated == Counter({run.pod_id: 1})
    assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


def test_timeout_terminates_once(
    persephone_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSEPHONE_REQUEST_TIMEOUT_S", "2")
    context.reset()
    provider = CountingProvider(persephone_env)
    supervisor = Supervisor(lambda: provider, get_settings(), timing=FAST)
    supervisor.start()
    try:
        run_id = launch(samples=50_000)
        run = wait_until(run_id, settled, what="settled")
    finally:
        supervisor.stop()

    assert run.state == "timed_out"
    assert "PERSEPHONE_REQUEST_TIMEOUT_S=2" in str(run.error_message)
    assert provider.terminated == Counter({run.pod_id: 1})


def test_no_capacity_fails_without_a_pod(
    supervisor: Supervisor, provider: CountingProvider
) -> None:
    run_id = launch(gpu_type="b200-180gb")

    run = wait_until(run_id, settled, what="settled")

    assert run.state == "failed"
    assert run.error_message is not None
    assert run.error_message.startswith("No B200 is available in the secure cloud")
    assert "Try another GPU type or tier" in run.error_message
    assert run.pod_id is None
    assert provider.calls["terminate"] == 0


def test_workload_failure_fails_the_run_and_terminates_once(
    supervisor: Supervisor, provider: CountingProvider, tmp_path: Path
) -> None:
    missing_model = tmp_path / "no-such-model"
    run_id = runs.start_run(
        LaunchRequest(gpu_type="l4-24gb", model_ref=f"hf:{missing_model}", samples=2)
    ).id

    run = wait_until(run_id, settled, timeout_s=60, what="settled")

    assert run.state == "failed"
    assert run.error_message
    assert provider.terminated == Counter({run.pod_id: 1})


def test_failed_terminate_is_retried_and_shown_until_confirmed(
    persephone_env: Path,
) -> None:
    provider = CountingProvider(persephone_env, failing_terminates=2)
    supervisor = Supervisor(lambda: provider, get_settings(), timing=FAST)
    supervisor.start()
    try:
        run_id = launch()
        billing = wait_until(
            run_id,
            lambda r: r.state == "succeeded" and r.terminate_attempts >= 1,
            what="showing a failed terminate",
        )
        assert billing.may_be_billing is True
        assert billing.terminate_error == "The provider answered 500 to the terminate."
        run = wait_until(run_id, settled, what="settled")
    finally:
        supervisor.stop()

    assert run.terminate_attempts == 3
    assert run.terminate_error is None
    assert provider.terminated == Counter({run.pod_id: 1})


def test_restart_resumes_the_run_from_the_database(persephone_env: Path) -> None:
    provider = CountingProvider(persephone_env)
    first = Supervisor(lambda: provider, get_settings(), timing=FAST, owner="first")
    first.start()
    run_id = launch(samples=40)
    wait_until(run_id, lambda r: r.timeseries_rows > 0, what="ingesting")
    first.stop()
    stopped_at = runs.get_run(run_id)
    assert stopped_at.state == "running"

    second = Supervisor(lambda: provider, get_settings(), timing=FAST, owner="second")
    second.start()
    try:
        run = wait_until(run_id, settled, timeout_s=60, what="settled")
    finally:
        second.stop()

    assert run.state == "succeeded"
    assert provider.calls["create"] == 1
    assert provider.terminated == Counter({run.pod_id: 1})
    rows = runs.artifact_bytes(run_id, runs.TIMESERIES_CSV)
    assert rows is not None
    assert rows.count(b"\n") == run.timeseries_rows + 1


def test_pod_vanished_while_down_fails_with_reason(persephone_env: Path) -> None:
    provider = CountingProvider(persephone_env)
    first = Supervisor(lambda: provider, get_settings(), timing=FAST, owner="first")
    first.start()
    run_id = launch(samples=50_000)
    running = wait_until(run_id, lambda r: r.state == "running", what="running")
    first.stop()
    MockProvider(persephone_env).terminate_pod(str(running.pod_id))

    second = Supervisor(lambda: provider, get_settings(), timing=FAST, owner="second")
    second.start()
    try:
        run = wait_until(run_id, lambda r: r.state in FINAL, what="final")
    finally:
        second.stop()

    assert run.state == "failed"
    assert f"Pod {running.pod_id} vanished" in str(run.error_message)


def test_reaper_terminates_only_orphans_with_our_prefix(
    supervisor: Supervisor, provider: CountingProvider
) -> None:
    live_id = launch(samples=50_000)
    live = wait_until(live_id, lambda r: r.state == "running", what="running")
    orphan = provider.create_pod(_spec("persephone-orphan1"))
    foreign = provider.create_pod(_spec("someone-else-1"))

    reaped = supervisor.reap_once()

    assert reaped == [orphan.pod_id]
    assert provider.get_pod(str(live.pod_id)) is not None
    assert provider.get_pod(foreign.pod_id) is not None
    provider.terminate_pod(foreign.pod_id)


def test_two_supervisors_never_drive_one_run(persephone_env: Path) -> None:
    provider = CountingProvider(persephone_env)
    supervisors = [
        Supervisor(lambda: provider, get_settings(), timing=FAST, owner=name)
        for name in ("one", "two")
    ]
    for supervisor in supervisors:
        supervisor.start()
    try:
        run_ids = [launch() for _ in range(3)]
        finished = [wait_until(run_id, settled, what="settled") for run_id in run_ids]
    finally:
        for supervisor in supervisors:
            supervisor.stop()

    assert [run.state for run in finished] == ["succeeded"] * 3
    assert provider.calls["create"] == 3
    assert sum(provider.terminated.values()) == 3


def _spec(name: str) -> PodSpec:
    return PodSpec(
        name=name,
        provider_gpu_id="NVIDIA L4",
        tier="secure",
        image="unused-locally",
        env={
            "MODEL_REF": "mock-v0",
            "SAMPLES": "50000",
            "PERSEPHONE_AGENT_TOKEN": "t",
        },
    )


def _is_zombie(pid: int) -> bool:
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def test_an_agent_refusing_the_token_fails_the_run_at_once(
    persephone_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import security

    provider = CountingProvider(persephone_env)
    first = Supervisor(lambda: provider, get_settings(), timing=FAST, owner="first")
    first.start()
    run_id = launch(samples=50_000)
    wait_until(run_id, lambda r: r.state == "running", what="running")
    first.stop()
    # Another installation's secret: its tokens are not this pod's.
    monkeypatch.setenv("PERSEPHONE_SECRET_KEY", "another-installation-" + "x" * 32)
    get_settings.cache_clear()
    security.installation_secret.cache_clear()

    second = Supervisor(lambda: provider, get_settings(), timing=FAST, owner="second")
    second.start()
    try:
        run = wait_until(run_id, settled, timeout_s=10, what="settled")
    finally:
        second.stop()

    assert run.state == "failed"
    assert "refused this run's token" in str(run.error_message)
    assert provider.terminated == Counter({run.pod_id: 1})


def test_a_failed_orphan_terminate_is_retried_within_seconds(
    persephone_env: Path,
) -> None:
    provider = CountingProvider(persephone_env, failing_terminates=1)
    orphan = provider.create_pod(_spec("persephone-orphan2"))
    timing = Timing(poll_s=0.05, scan_s=0.05, reaper_s=3600, reaper_retry_s=0.2)
    supervisor = Supervisor(lambda: provider, get_settings(), timing=timing)

    supervisor.start()
    try:
        deadline = time.monotonic() + 10
        while provider.get_pod(orphan.pod_id) is not None:
            assert time.monotonic() < deadline, "the orphan was not retried"
            time.sleep(0.05)
    finally:
        supervisor.stop()

    assert provider.calls["terminate"] == 2
    assert provider.terminated == Counter({orphan.pod_id: 1})
