"""Money safety: the real Supervisor driving RunPodProvider against the fake.

Each test runs the whole path (SQLite, supervisor threads, HTTP to the fake,
real agent processes behind the fake's proxy) and counts at the fake what
matters for the bill: pods created and DELETEs per pod.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import select

from app import context
from app.db import session_scope
from app.models import GpuSample, Run
from app.providers.base import PodSpec, Provider
from app.providers.runpod import RunPodProvider
from app.services import runs
from app.services.costs import run_cost
from app.services.runs import LaunchRequest
from app.settings import get_settings
from app.supervisor import Supervisor, Timing
from fakes.runpod import FakeRunPod
from tests.runpod.conftest import eventually

# The reaper never runs by itself here (tests call reap_once), so it cannot
# spend a switched-on failure meant for the run.
FAST = Timing(
    poll_s=0.05,
    scan_s=0.1,
    create_backoff_s=0.05,
    reaper_s=float("inf"),
    terminate_backoff_max_s=0.2,
    start_timeout_runpod_s=30,
    max_restarts=1,
)
FINAL = {"succeeded", "failed", "cancelled", "timed_out"}


def fast_provider() -> RunPodProvider:
    return RunPodProvider(get_settings(), retry_backoff_s=0.02)


@contextmanager
def supervising(
    provider_factory: Callable[[], Provider] | None = None, owner: str = "test"
) -> Iterator[Supervisor]:
    if provider_factory is None:
        provider = fast_provider()
        provider_factory = lambda: provider  # noqa: E731 - one shared instance
    supervisor = Supervisor(provider_factory, get_settings(), timing=FAST, owner=owner)
    runs.on_change(supervisor.wake)
    supervisor.start()
    try:
        yield supervisor
    finally:
        supervisor.stop()


@pytest.fixture
def supervisor(runpod_env: Path) -> Iterator[Supervisor]:
    with supervising() as running:
        yield running


def launch(gpu_type: str = "l4-24gb", samples: int = 8, **extra: object) -> str:
    request = LaunchRequest(
        gpu_type=gpu_type, model_ref="mock-v0", samples=samples, **extra
    )
    return runs.start_run(request).id


def wait_until(
    run_id: str, predicate: Callable[[Run], bool], timeout_s: float = 30.0
) -> Run:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = runs.get_run(run_id)
        if predicate(run):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} stuck: {runs.get_run(run_id)!r}")


def settled(run: Run) -> bool:
    """Final, and its pod (if it had one) confirmed terminated."""
    return run.state in FINAL and not run.may_be_billing


def messages(run_id: str) -> list[str]:
    return [event.message or event.state for event in runs.run_events(run_id)]


def create_body(fake: FakeRunPod, index: int = 0) -> dict[str, object]:
    return json.loads(fake.create_bodies[index])


# The happy paths


def test_mock_v0_runs_through_the_proxy_and_is_ingested(
    runpod_env: Path, fake: FakeRunPod
) -> None:
    # The provider exactly as the app builds it.
    with supervising(context.get_provider):
        run_id = launch(samples=8)
        run = wait_until(run_id, settled)

    assert run.state == "succeeded", run.error_message
    assert run.latency_n == 8
    assert run.simulated_metrics is True
    assert run.timeseries_rows > 0
    with session_scope() as session:
        stored = session.exec(
            select(func.count()).where(GpuSample.run_id == run_id)
        ).one()
    assert stored == run.timeseries_rows
    assert runs.artifact_bytes(run_id, runs.RESULT_JSON) is not None
    assert fake.created_ids == [run.pod_id]
    assert fake.deletes == Counter({run.pod_id: 1})
    assert fake.world.terminated_ids == [run.pod_id]
    assert messages(run_id)[-1] == (
        f"pod {run.pod_id} terminated (confirmed by the provider)"
    )
    body = create_body(fake)
    assert body["cloud"] == "SECURE"
    assert body["name"] == run.pod_name
    assert run.price_per_hour == 0.43


def test_slow_start_then_success(supervisor: Supervisor, fake: FakeRunPod) -> None:
    fake.set(slow_start_s=2.0, runtime_delay_s=0.5, holding_page=True)

    run_id = launch(samples=8)
    run = wait_until(run_id, settled)

    assert run.state == "succeeded", run.error_message
    assert run.started_at is not None and run.pod_created_at is not None
    assert run.started_at - run.pod_created_at >= timedelta(seconds=2.5)
    assert fake.deletes == Counter({run.pod_id: 1})


def test_cost_uses_the_tier_created_and_create_to_confirmed_seconds(
    supervisor: Supervisor, fake: FakeRunPod
) -> None:
    run_id = launch(gpu_type="rtx-4090-24gb", samples=50_000, tier="community")
    running = wait_until(run_id, lambda r: r.state == "running")
    pod = fake.pod(str(running.pod_id))
    assert pod is not None
    created_at = pod.created_at

    cancelled_at = runs.cancel_run(run_id).updated_at
    run = wait_until(run_id, settled)

    assert run.state == "cancelled"
    assert create_body(fake)["cloud"] == "COMMUNITY"
    assert run.cloud_tier == "community"
    assert run.price_per_hour == pod.cost_per_hr == 0.34
    # Billing is counted on this machine's clock from just before the create
    # call, so it never undercounts the provider's own creation time.
    assert run.pod_created_at is not None
    assert run.pod_created_at <= created_at
    assert (created_at - run.pod_created_at).total_seconds() < 5
    assert run.pod_terminated_at is not None
    assert run.pod_terminated_at >= cancelled_at
    cost = run_cost(run)
    billed_s = (run.pod_terminated_at - run.pod_created_at).total_seconds()
    assert cost.billed_s == pytest.approx(billed_s)
    assert cost.total_usd == pytest.approx(0.34 / 3600 * billed_s)
    assert fake.deletes == Counter({run.pod_id: 1})


# Money safety


def test_pod_id_is_stored_before_the_next_call_can_fail(
    runpod_env: Path, fake: FakeRunPod
) -> None:
    # Every API call after the create fails, as in an outage.
    fake.set(outage_after_create=1_000_000, html_errors=True)
    with supervising(owner="first"):
        run_id = launch(samples=8)
        eventually(lambda: fake.created_ids, what="a pod created")
        pod_id = fake.created_ids[0]
        run = wait_until(run_id, lambda r: r.pod_id is not None, timeout_s=5)
        still_failing = fake.switches.server_errors_next > 0
    # The dashboard "crashed" mid-outage; the outage ends; a new one resumes.
    assert run.pod_id == pod_id
    assert still_failing
    assert f"created pod {pod_id}" in messages(run_id)
    fake.set(server_errors_next=0, html_errors=False)
    runs.cancel_run(run_id)
    with supervising(owner="second"):
        run = wait_until(run_id, settled)

    assert run.state == "cancelled"
    assert fake.created_ids == [pod_id]
    assert fake.deletes == Counter({pod_id: 1})


def test_create_answered_500_that_made_a_pod_is_adopted(
    supervisor: Supervisor, fake: FakeRunPod
) -> None:
    fake.set(fail_after_create_next=1)

    run_id = launch(samples=8)
    run = wait_until(run_id, settled)

    assert run.state == "succeeded", run.error_message
    assert fake.calls["POST /v2/pods"] == 1
    assert fake.created_ids == [run.pod_id]
    assert fake.deletes == Counter({run.pod_id: 1})
    assert any("checking for pod" in message for message in messages(run_id))


def test_create_500_while_lookups_fail_never_makes_a_second_pod(
    supervisor: Supervisor, fake: FakeRunPod
) -> None:
    # The create makes a pod and answers 500; the next six calls (two lookups
    # of three attempts each) fail too.
    fake.set(fail_after_create_next=1, outage_after_create=6)

    run_id = launch(samples=8)
    run = wait_until(run_id, settled)

    assert fake.created_ids == [run.pod_id]


def test_no_capacity_fails_with_gpu_tier_and_advice_and_no_pod(
    supervisor: Supervisor, fake: FakeRunPod
) -> None:
    fake.set(no_capacity_gpu_ids=["NVIDIA L4"])

    run_id = launch(samples=8)
    run = wait_until(run_id, settled)

    assert run.state == "failed"
    assert run.error_message is not None
    assert run.error_message.startswith("No L4 is available in the secure cloud")
    assert "no longer any instances available" in run.error_message
    assert "Try another GPU type or tier" in run.error_message
    assert run.pod_id is None
    assert fake.created_ids == []
    assert fake.deletes == Counter()


def test_restart_loop_fails_with_a_reason_before_the_deadline(
    supervisor: Supervisor, fake: FakeRunPod
) -> None:
    fake.set(restart_loop=True, restart_period_s=1.5)

    run_id = launch(samples=8)
    run = wait_until(run_id, settled)

    assert run.state == "failed"
    assert f"Pod {run.pod_id} restarted 2 times" in str(run.error_message)
    assert run.finished_at is not None and run.deadline_at is not None
    assert run.finished_at < run.deadline_at
    assert fake.deletes == Counter({run.pod_id: 1})
    assert run.pod_terminated_at is not None


def test_vanished_pod_fails_with_a_reason(
    supervisor: Supervisor, fake: FakeRunPod
) -> None:
    run_id = launch(samples=50_000)
    running = wait_until(run_id, lambda r: r.state == "running")

    fake.vanish(str(running.pod_id))
    run = wait_until(run_id, settled)

    assert run.state == "failed"
    assert f"Pod {running.pod_id} vanished" in str(run.error_message)
    # The terminate still goes out once; its 404 counts as confirmation.
    assert fake.deletes == Counter({run.pod_id: 1})
    assert run.pod_terminated_at is not None


def test_timeout_terminates_once(
    runpod_env: Path, fake: FakeRunPod, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSEPHONE_REQUEST_TIMEOUT_S", "2")
    context.reset()
    fake.set(slow_start_s=30)

    with supervising():
        run_id = launch(samples=8)
        run = wait_until(run_id, settled)

    assert run.state == "timed_out"
    assert "PERSEPHONE_REQUEST_TIMEOUT_S=2" in str(run.error_message)
    assert fake.deletes == Counter({run.pod_id: 1})
    assert run.pod_terminated_at is not None


def test_failed_terminate_shows_billing_and_is_retried_until_confirmed(
    supervisor: Supervisor, fake: FakeRunPod
) -> None:
    fake.set(fail_terminate_next=2)

    run_id = launch(samples=8)
    billing = wait_until(
        run_id, lambda r: r.state == "succeeded" and r.terminate_attempts >= 1
    )
    assert billing.may_be_billing is True
    assert "500" in str(billing.terminate_error)
    run = wait_until(run_id, settled)

    assert run.terminate_attempts == 3
    assert run.terminate_error is None
    assert fake.deletes == Counter({run.pod_id: 3})
    assert fake.pods() == []


def test_reaper_terminates_only_our_orphans(
    supervisor: Supervisor, fake: FakeRunPod
) -> None:
    fake.set(slow_start_s=30)
    live_id = launch(samples=8)
    live = wait_until(live_id, lambda r: r.pod_id is not None)
    provider = fast_provider()
    prefix = get_settings().pod_name_prefix
    orphan = provider.create_pod(_spec(f"{prefix}-orphan1"))
    foreign = provider.create_pod(_spec("someone-else-1"))

    reaped = supervisor.reap_once()

    assert reaped == [orphan.pod_id]
    assert fake.deletes == Counter({orphan.pod_id: 1})
    alive = {pod.id for pod in fake.pods()}
    assert alive == {live.pod_id, foreign.pod_id}


def _spec(name: str) -> PodSpec:
    return PodSpec(
        name=name,
        provider_gpu_id="NVIDIA L4",
        tier="secure",
        image="registry/persephone-agent:0.1",
        env={"MODEL_REF": "mock-v0", "SAMPLES": "8", "PERSEPHONE_AGENT_TOKEN": "t"},
    )
