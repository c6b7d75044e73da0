"""RunPodProvider against the fake RunPod on loopback (and a few scripted edges)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.agent_client import AgentClient
from app.providers.base import (
    CloudTier,
    NoCapacityError,
    PodSpec,
    ProviderAuthError,
    ProviderError,
    ProviderServerError,
    slugify,
)
from app.providers.runpod import RunPodProvider, parse_runpod_time
from app.services import catalog, runs
from app.services.catalog import UnknownGpuType
from app.services.runs import InvalidRequest, LaunchRequest
from app.settings import Settings, get_settings
from fakes.runpod import FakeRunPod
from tests.runpod.conftest import FAKE_KEY, eventually

DOUBLE_SPACE_ID = "NVIDIA  RTX A4500"


def settings_for(fake: FakeRunPod) -> Settings:
    return Settings(
        PERSEPHONE_CATALOG_MODE="runpod",
        RUNPOD_API_KEY=FAKE_KEY,
        RUNPOD_API_BASE_URL=fake.url,
        PERSEPHONE_RUNPOD_PROXY_URL=fake.proxy_url,
    )


@pytest.fixture
def provider(fake: FakeRunPod) -> RunPodProvider:
    return RunPodProvider(settings_for(fake), retry_backoff_s=0.01)


def spec(name: str, gpu_id: str = "NVIDIA L4", tier: CloudTier = "secure") -> PodSpec:
    return PodSpec(
        name=name,
        provider_gpu_id=gpu_id,
        tier=tier,
        image="registry/persephone-agent:0.1",
        env={
            "MODEL_REF": "mock-v0",
            "SAMPLES": "50000",
            "PERSEPHONE_AGENT_TOKEN": "token-1",
            "PERSEPHONE_AGENT_PORT": "8000",
        },
    )


def test_catalog_maps_ids_prices_and_availability(
    provider: RunPodProvider, fake: FakeRunPod
) -> None:
    before = datetime.now(UTC)

    offers = {offer.slug: offer for offer in provider.list_offers()}

    assert "unknown" not in {o.provider_gpu_id for o in offers.values()}
    assert "AMPERE_16" not in {o.provider_gpu_id for o in offers.values()}
    a4500 = offers["rtx-a4500-20gb"]
    assert a4500.provider_gpu_id == DOUBLE_SPACE_ID
    assert (a4500.price_secure_per_hour, a4500.price_community_per_hour) == (
        0.34,
        0.19,
    )
    assert a4500.availability == "medium"
    l4 = offers["l4-24gb"]
    assert l4.tiers == ["secure"]
    assert l4.price_community_per_hour is None
    assert offers["b200-180gb"].availability == "none"
    assert offers["h100-sxm-80gb"].provider_gpu_id == "NVIDIA H100 80GB HBM3"
    assert all(o.read_at >= before for o in offers.values())
    assert all(o.slug == slugify(o.display_name, o.memory_gb) for o in offers.values())
    assert fake.calls["GET /v2/catalog/gpus"] == 1


def test_display_names_and_unknown_ids_are_rejected_before_any_create(
    runpod_env: Path, fake: FakeRunPod
) -> None:
    assert catalog.resolve_gpu_type("rtx-a4500-20gb").provider_gpu_id == (
        DOUBLE_SPACE_ID
    )
    with pytest.raises(UnknownGpuType) as display_name:
        catalog.resolve_gpu_type("RTX 4090")
    with pytest.raises(UnknownGpuType) as exact_id:
        catalog.resolve_gpu_type("NVIDIA GeForce RTX 4090")
    with pytest.raises(InvalidRequest) as launch:
        runs.start_run(LaunchRequest(gpu_type="tpu-v5", model_ref="mock-v0", samples=1))

    assert display_name.value.suggestions == ["rtx-4090-24gb"]
    assert exact_id.value.suggestions == ["rtx-4090-24gb"]
    assert launch.value.field == "gpu_type"
    assert fake.calls["POST /v2/pods"] == 0


def test_create_sends_the_exact_id_an_explicit_cloud_and_the_agent_port(
    provider: RunPodProvider, fake: FakeRunPod
) -> None:
    pod = provider.create_pod(spec("persephone-a1", DOUBLE_SPACE_ID, tier="community"))

    raw = fake.create_bodies[0]
    body = json.loads(raw)
    assert b'"NVIDIA  RTX A4500"' in raw
    assert body["gpu"] == {"id": DOUBLE_SPACE_ID, "count": 1}
    assert body["cloud"] == "COMMUNITY"
    assert body["ports"] == ["8000/http"]
    assert body["env"]["MODEL_REF"] == "mock-v0"
    assert body["name"] == "persephone-a1"
    assert body["image"] == "registry/persephone-agent:0.1"
    assert isinstance(body["disk"], int)
    assert pod.status == "PROVISIONING"
    assert pod.agent_url is None
    assert pod.cost_per_hour == 0.19
    assert pod.extra == {"cloud": "COMMUNITY", "gpu_id": DOUBLE_SPACE_ID}
    assert pod.created_at is not None
    assert abs(pod.created_at - datetime.now(UTC)) < timedelta(seconds=5)


def test_pod_reaches_its_agent_through_the_proxy_then_terminates_confirmed(
    provider: RunPodProvider, fake: FakeRunPod
) -> None:
    fake.set(runtime_delay_s=0.6)
    pod = provider.create_pod(spec("persephone-a2"))
    seen: list[tuple[str, str | None]] = []

    def agent_url() -> str | None:
        info = provider.get_pod(pod.pod_id)
        assert info is not None
        seen.append((info.status, info.agent_url))
        return info.agent_url

    eventually(agent_url, what="an agent URL")
    url = fake.proxy_url.format(pod_id=pod.pod_id, port=8000)
    assert seen[-1] == ("RUNNING", url)
    # RUNNING with runtime still null: no address yet.
    assert ("RUNNING", None) in seen
    with AgentClient(url, "token-1") as agent:
        eventually(agent.is_ready, what="the agent answering")
    process = fake.pod(pod.pod_id).process  # type: ignore[union-attr]
    assert process is not None

    provider.terminate_pod(pod.pod_id)

    assert fake.deletes[pod.pod_id] == 1
    assert process.poll() is not None
    assert provider.get_pod(pod.pod_id) is None
    assert provider.find_pods("persephone-") == []


def test_find_pods_filters_by_prefix(provider: RunPodProvider) -> None:
    ours = provider.create_pod(spec("persephone-b1"))
    provider.create_pod(spec("someone-else-1"))

    found = provider.find_pods("persephone-")

    assert [pod.pod_id for pod in found] == [ours.pod_id]
    assert found[0].name == "persephone-b1"


def test_terminating_a_vanished_pod_is_confirmed(
    provider: RunPodProvider, fake: FakeRunPod
) -> None:
    pod = provider.create_pod(spec("persephone-c1"))
    fake.vanish(pod.pod_id)

    provider.terminate_pod(pod.pod_id)

    assert fake.deletes[pod.pod_id] == 1


def test_a_failed_terminate_raises_and_the_pod_stays(
    provider: RunPodProvider, fake: FakeRunPod
) -> None:
    fake.set(fail_terminate_next=1)
    pod = provider.create_pod(spec("persephone-c2"))

    with pytest.raises(ProviderServerError):
        provider.terminate_pod(pod.pod_id)
    assert provider.get_pod(pod.pod_id) is not None
    provider.terminate_pod(pod.pod_id)

    assert fake.deletes[pod.pod_id] == 2
    assert provider.get_pod(pod.pod_id) is None


def test_no_capacity_and_rate_limits_from_the_fake(
    provider: RunPodProvider, fake: FakeRunPod
) -> None:
    fake.set(no_capacity_gpu_ids=["NVIDIA L4"])
    with pytest.raises(NoCapacityError) as one_type:
        provider.create_pod(spec("persephone-d1"))
    provider.create_pod(spec("persephone-d2", "NVIDIA RTX A5000"))
    fake.set(no_capacity_gpu_ids=[], no_capacity=True)
    with pytest.raises(NoCapacityError):
        provider.create_pod(spec("persephone-d3", "NVIDIA RTX A5000"))
    with pytest.raises(NoCapacityError):
        # Listed with a price, but only in the secure cloud.
        provider.create_pod(spec("persephone-d4", tier="community"))

    fake.set(no_capacity=False, rate_limit_next=2, retry_after_s=0)
    pod = provider.create_pod(spec("persephone-d5"))

    assert "no longer any instances available" in str(one_type.value)
    assert fake.calls["POST /v2/pods"] == 4 + 3  # then 429, 429, 201
    assert len(fake.created_ids) == 2
    assert fake.created_ids[-1] == pod.pod_id


def test_a_pod_can_vanish_behind_the_clients_back(
    provider: RunPodProvider, fake: FakeRunPod
) -> None:
    fake.set(vanish_after_s=0.2)
    pod = provider.create_pod(spec("persephone-d6"))

    eventually(lambda: provider.get_pod(pod.pod_id) is None, what="vanished")

    assert fake.world.vanished_ids == [pod.pod_id]
    assert fake.deletes == {}


def test_the_fake_refuses_a_wrong_key_and_scopes_pod_keys(fake: FakeRunPod) -> None:
    wrong = Settings(
        PERSEPHONE_CATALOG_MODE="runpod",
        RUNPOD_API_KEY="rpa_wrong_key_0000000000",
        RUNPOD_API_BASE_URL=fake.url,
    )
    with pytest.raises(ProviderAuthError):
        RunPodProvider(wrong).list_offers()

    provider = RunPodProvider(settings_for(fake))
    first = provider.create_pod(spec("persephone-e1"))
    second = provider.create_pod(spec("persephone-e2"))
    pod_key = fake.pod(first.pod_id).api_key  # type: ignore[union-attr]
    headers = {"Authorization": f"Bearer {pod_key}"}
    with httpx.Client(base_url=fake.url, headers=headers) as own_key:
        assert own_key.get("/v2/pods").status_code == 403
        assert own_key.delete(f"/v2/pods/{second.pod_id}").status_code == 403
        assert own_key.delete(f"/v2/pods/{first.pod_id}").status_code == 204
    assert provider.get_pod(first.pod_id) is None
    assert provider.get_pod(second.pod_id) is not None


# Edges the fake does not produce, scripted with httpx.MockTransport.


def scripted(
    *bodies: dict[str, object], status: int = 200
) -> tuple[RunPodProvider, list[float]]:
    answers = list(bodies)
    sleeps: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(
            status, json=answers.pop(0) if len(answers) > 1 else answers[0]
        )

    settings = Settings(
        PERSEPHONE_CATALOG_MODE="runpod",
        RUNPOD_API_KEY=FAKE_KEY,
        RUNPOD_API_BASE_URL="https://api.runpod.test",
    )
    provider = RunPodProvider(
        settings, transport=httpx.MockTransport(handle), sleep=sleeps.append
    )
    return provider, sleeps


def pod_body(status: str, uptime: int | None = None) -> dict[str, object]:
    runtime = None
    if uptime is not None:
        runtime = {
            "uptime": uptime,
            "ports": [{"private": 8000, "public": 41000, "type": "http", "ip": "x"}],
        }
    return {
        "id": "abcdefghijklmn",
        "name": "persephone-x",
        "status": status,
        "runtime": runtime,
        "createdAt": "2026-08-20 06:16:19.436 +0000 UTC",
    }


def test_terminated_status_reads_as_gone() -> None:
    provider, _ = scripted(pod_body("TERMINATED"))

    assert provider.get_pod("abcdefghijklmn") is None


def test_an_unconfirmed_terminate_raises_may_still_be_billing() -> None:
    provider, sleeps = scripted(pod_body("RUNNING", uptime=30))

    with pytest.raises(ProviderError) as caught:
        provider.terminate_pod("abcdefghijklmn")

    assert "may still be billing" in str(caught.value)
    assert len(sleeps) == 3


def test_restarts_are_counted_when_uptime_goes_backwards() -> None:
    uptimes = [5, 7, 1, 3, 0, 2]
    provider, _ = scripted(*(pod_body("RUNNING", uptime=u) for u in uptimes))
    pods = [provider.get_pod("abcdefghijklmn") for _ in uptimes]

    restarts = [pod.restarts for pod in pods if pod is not None]

    assert restarts == [0, 0, 1, 1, 2, 2]


def test_running_without_runtime_ports_has_no_address() -> None:
    body = pod_body("RUNNING", uptime=3)
    body["runtime"] = {"uptime": 3, "ports": None}
    provider, _ = scripted(body)

    pod = provider.get_pod("abcdefghijklmn")

    assert pod is not None
    assert pod.agent_url is None


def test_runpod_times_parse_in_go_and_iso_form() -> None:
    expected = datetime(2026, 8, 20, 6, 16, 19, 436000, tzinfo=UTC)
    assert parse_runpod_time("2026-08-20 06:16:19.436 +0000 UTC") == expected
    assert parse_runpod_time("2026-08-20T06:16:19.436Z") == expected
    assert parse_runpod_time("yesterday") is None
    assert parse_runpod_time(None) is None


def test_context_builds_the_runpod_provider(runpod_env: Path) -> None:
    from app.context import get_provider

    assert isinstance(get_provider(), RunPodProvider)
    assert get_settings().runpod_api_base_url.startswith("http://127.0.0.1:")


def test_an_agent_past_its_deadline_deletes_its_own_pod(
    provider: RunPodProvider, fake: FakeRunPod
) -> None:
    pod_spec = spec("persephone-f1")
    pod_spec.env["PERSEPHONE_DEADLINE_S"] = "1"
    pod = provider.create_pod(pod_spec)

    eventually(lambda: provider.get_pod(pod.pod_id) is None, what="self-terminate")

    assert fake.deletes == {pod.pod_id: 1}
    assert fake.world.terminated_ids == [pod.pod_id]


def test_catalog_keeps_pod_types_and_the_regular_id_on_a_slug_clash() -> None:
    def gpu(gpu_id: str, **extra: object) -> dict[str, object]:
        return {
            "id": gpu_id,
            "name": "RTX A4500",
            "memory": 20,
            "secure": True,
            "community": False,
            "price": {"secure": 0.34, "community": None},
            "availability": "HIGH",
            **extra,
        }

    provider, _ = scripted(
        {
            "gpus": [
                gpu("NVIDIA  RTX A4500"),
                gpu("NVIDIA RTX A4500"),
                gpu("unknown", name="unknown", memory=0),
                gpu("AMPERE_16", secure=False, price={"serverless": 0.0002}),
                gpu("NVIDIA L40", name="L40", memory=48, availability=None),
            ]
        }
    )

    offers = provider.list_offers()

    assert [(o.slug, o.provider_gpu_id) for o in offers] == [
        ("l40-48gb", "NVIDIA L40"),
        ("rtx-a4500-20gb", "NVIDIA RTX A4500"),
    ]
    assert offers[0].availability is None
    assert offers[1].price_community_per_hour is None
