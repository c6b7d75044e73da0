"""The HTTP API's contract: JSON answers, fitting status codes, no tracebacks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from app import api, context

SEED_RUN = {"gpu_type": "l4-24gb", "model_ref": "mock-v0", "samples": 8}


@pytest.fixture
def client(persephone_env: Path) -> Iterator[TestClient]:
    with TestClient(Starlette(routes=api.routes())) as test_client:
        yield test_client


@pytest.fixture
def keyed_client(
    persephone_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("PERSEPHONE_API_KEY", "dev-secret")
    context.reset()
    with TestClient(Starlette(routes=api.routes())) as test_client:
        yield test_client


def test_catalog_lists_slugs_with_prices(client: TestClient) -> None:
    response = client.get("/compute/gpus")

    assert response.status_code == 200
    gpus = {gpu["gpu_type"]: gpu for gpu in response.json()["gpus"]}
    assert gpus["l4-24gb"]["provider_gpu_id"] == "NVIDIA L4"
    assert gpus["l4-24gb"]["memory_gb"] == 24
    assert gpus["l4-24gb"]["price_per_hour_usd"] == {"secure": 0.43, "community": None}
    assert gpus["b200-180gb"]["availability"] == "none"


def test_start_then_get_returns_the_queued_run(client: TestClient) -> None:
    started = client.post("/runs/start", json=SEED_RUN)

    assert started.status_code == 201
    run = started.json()
    assert run["status"] == "queued"
    assert run["price"] == {
        "provider": "mock",
        "tier": "secure",
        "per_hour_usd": 0.43,
        "read_at": run["price"]["read_at"],
    }
    fetched = client.get(f"/runs/{run['run_id']}").json()
    assert fetched["run_id"] == run["run_id"]
    assert fetched["events"][0]["state"] == "queued"
    assert fetched["pod"]["may_be_billing"] is False


def test_wrong_or_missing_key_is_refused(keyed_client: TestClient) -> None:
    missing = keyed_client.get("/compute/gpus")
    wrong = keyed_client.get("/compute/gpus", headers={"X-API-Key": "guess"})
    right = keyed_client.get("/compute/gpus", headers={"X-API-Key": "dev-secret"})

    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "unauthorized"
    assert "dev-secret" not in wrong.text
    assert right.status_code == 200


def test_bad_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/runs/start",
        content=b"{gpu_type: l4",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert response.json()["error"] == "invalid_json"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**SEED_RUN, "samples": 0}, "samples"),
        ({**SEED_RUN, "samples": 2.5}, "samples"),
        ({**SEED_RUN, "samples": "8"}, "samples"),
        ({**SEED_RUN, "samples": 100_001}, "samples"),
        ({"gpu_type": "l4-24gb", "samples": 8}, "model_ref"),
        ({**SEED_RUN, "colour": "blue"}, "colour"),
        ({**SEED_RUN, "tier": "community"}, "tier"),
    ],
)
def test_bad_field_is_422_naming_it(
    client: TestClient, payload: dict[str, object], field: str
) -> None:
    response = client.post("/runs/start", json=payload)

    assert response.status_code == 422
    body = response.json()
    assert body["field"] == field
    assert field in body["message"]
    assert client.get("/runs").json()["total"] == 0


def test_unknown_gpu_type_suggests_nearest_slugs(client: TestClient) -> None:
    response = client.post("/runs/start", json={**SEED_RUN, "gpu_type": "RTX 4090"})

    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "gpu_type"
    assert body["suggestions"] == ["rtx-4090-24gb"]
    assert "rtx-4090-24gb" in body["message"]


def test_unknown_run_is_404(client: TestClient) -> None:
    for path in ("/runs/nope", "/runs/nope/result.json", "/runs/nope/timeseries.csv"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    assert client.post("/runs/nope/cancel").status_code == 404


def test_files_of_a_run_without_results_are_404_with_status(client: TestClient) -> None:
    run_id = client.post("/runs/start", json=SEED_RUN).json()["run_id"]

    response = client.get(f"/runs/{run_id}/timeseries.csv")

    assert response.status_code == 404
    assert "status queued" in response.json()["message"]


def test_cancel_marks_the_run(client: TestClient) -> None:
    run_id = client.post("/runs/start", json=SEED_RUN).json()["run_id"]

    response = client.post(f"/runs/{run_id}/cancel")

    assert response.status_code == 202
    assert response.json()["cancel_requested"] is True


def test_list_pages_newest_first(client: TestClient) -> None:
    ids = [client.post("/runs/start", json=SEED_RUN).json()["run_id"] for _ in range(5)]

    first = client.get("/runs", params={"limit": 2}).json()
    second = client.get("/runs", params={"limit": 2, "offset": 2}).json()

    assert first["total"] == 5
    assert [run["run_id"] for run in first["runs"]] == ids[::-1][:2]
    assert [run["run_id"] for run in second["runs"]] == ids[::-1][2:4]
    bad = client.get("/runs", params={"limit": "lots"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "limit"


def test_wrong_method_is_a_json_405_naming_the_right_one(client: TestClient) -> None:
    run_id = client.post("/runs/start", json=SEED_RUN).json()["run_id"]

    for method, path, allowed in (
        ("GET", "/runs/start", "POST"),
        ("GET", f"/runs/{run_id}/cancel", "POST"),
        ("DELETE", f"/runs/{run_id}", "GET"),
        ("POST", "/compute/gpus", "GET"),
    ):
        response = client.request(method, path)
        assert response.status_code == 405, path
        assert response.headers["allow"] == allowed
        assert response.json()["error"] == "method_not_allowed"
    assert runs_total(client) == 1


def test_oversized_and_deeply_nested_bodies_are_refused(client: TestClient) -> None:
    huge = b'{"gpu_type": "' + b"x" * 2_000_000 + b'"}'
    deep = b"[" * 100_000 + b"]" * 100_000

    too_large = client.post("/runs/start", content=huge)
    too_deep = client.post("/runs/start", content=deep)

    assert too_large.status_code == 413
    assert too_large.json()["error"] == "body_too_large"
    assert too_deep.status_code == 422
    assert too_deep.json()["message"] == "The request body's JSON is nested too deeply."
    assert runs_total(client) == 0


def test_unknown_status_filter_is_422(client: TestClient) -> None:
    response = client.get("/runs", params={"status": "bogus"})

    assert response.status_code == 422
    assert response.json()["field"] == "status"


def runs_total(client: TestClient) -> int:
    return int(client.get("/runs").json()["total"])
