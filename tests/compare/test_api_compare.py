"""The sweep and comparison API: status codes, field names, byte-equal exports."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from app import api, api_compare, context
from app.services.compare import compare, comparison_csv, comparison_json, run_bundle
from tests.compare.factory import Spec, make_run

SWEEP = {"gpu_types": ["l4-24gb", "rtx-4090-24gb"], "model_ref": "mock-v0"}


def app_routes() -> Starlette:
    return Starlette(routes=api.routes() + api_compare.routes())


@pytest.fixture
def client(persephone_env: Path) -> Iterator[TestClient]:
    with TestClient(app_routes()) as test_client:
        yield test_client


def test_expensive_sweep_needs_confirmation_then_starts(client: TestClient) -> None:
    body = {**SWEEP, "samples": 1000, "repeats": 2, "confirm_above_usd": 0.0}

    refused = client.post("/sweeps", json=body)
    started = client.post("/sweeps", json={**body, "confirmed": True})

    assert refused.status_code == 409
    answer = refused.json()
    assert answer["error"] == "confirmation_required"
    assert 'resend with "confirmed": true' in answer["message"]
    assert answer["confirm_above_usd"] == 0.0
    assert [g["gpu_type"] for g in answer["estimate"]["gpus"]] == SWEEP["gpu_types"]
    assert answer["estimate"]["total_usd"] > 0
    assert started.status_code == 201
    created = started.json()
    assert created["sweep"]["gpu_types"] == SWEEP["gpu_types"]
    assert created["sweep"]["repeats"] == 2
    assert created["sweep"]["estimated_cost_usd"] == pytest.approx(
        answer["estimate"]["total_usd"]
    )
    assert len(created["run_ids"]) == 4

    fetched = client.get(f"/sweeps/{created['sweep']['sweep_id']}").json()
    assert [run["run_id"] for run in fetched["runs"]] == created["run_ids"]
    assert [run["gpu_type"] for run in fetched["runs"]] == [
        "l4-24gb",
        "l4-24gb",
        "rtx-4090-24gb",
        "rtx-4090-24gb",
    ]
    assert {run["status"] for run in fetched["runs"]} == {"queued"}


def test_a_cheap_sweep_starts_at_the_default_threshold(client: TestClient) -> None:
    response = client.post("/sweeps", json={**SWEEP, "samples": 8})

    assert response.status_code == 201
    assert len(response.json()["run_ids"]) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**SWEEP, "gpu_types": ["l4-24gb", "l4-24gb"]}, "gpu_types"),
        ({**SWEEP, "gpu_types": ["l4-24gb", "l4"]}, "gpu_types.1"),
        ({**SWEEP, "samples": "many"}, "samples"),
        ({**SWEEP, "repeats": 0}, "repeats"),
        ({**SWEEP, "confirmed": "yes"}, "confirmed"),
        ({**SWEEP, "confirm_above_usd": -1}, "confirm_above_usd"),
        ({**SWEEP, "parameters": {"batch_size": 0}}, "parameters.batch_size"),
    ],
)
def test_bad_fields_are_422_naming_the_field(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    body.setdefault("samples", 8)

    response = client.post("/sweeps", json=body)

    assert response.status_code == 422
    assert response.json()["field"] == field
    assert client.get("/runs").json()["total"] == 0


def test_unknown_gpu_type_suggests_slugs(client: TestClient) -> None:
    response = client.post("/sweeps", json={**SWEEP, "gpu_types": ["l4"], "samples": 8})

    assert response.json()["suggestions"] == ["l4-24gb"]


def test_unknown_ids_are_404(client: TestClient) -> None:
    assert client.get("/sweeps/nope").status_code == 404
    assert client.get("/compare?sweep=nope").json()["error"] == "not_found"
    assert client.get("/compare?runs=nope").status_code == 404
    assert client.get("/runs/nope/bundle.zip").status_code == 404


def test_compare_needs_exactly_one_selection_and_a_known_format(
    client: TestClient,
) -> None:
    neither = client.get("/compare")
    both = client.get("/compare?runs=a&sweep=b")
    empty = client.get("/compare?runs=,")
    xml = client.get("/compare?runs=a&format=xml")

    assert (neither.status_code, neither.json()["field"]) == (422, "runs")
    assert (both.status_code, both.json()["field"]) == (422, "runs")
    assert (empty.status_code, empty.json()["field"]) == (422, "runs")
    assert (xml.status_code, xml.json()["field"]) == (422, "format")


def test_compare_answers_the_services_bytes(client: TestClient) -> None:
    first = make_run(Spec("l4-24gb", measure_s=6.0))
    second = make_run(Spec("rtx-4090-24gb", measure_s=3.0))
    ids = f"{first.id},{second.id}"

    as_json = client.get(f"/compare?runs={ids}")
    as_csv = client.get(f"/compare?runs={ids}&format=csv")
    by_gpu = client.get(f"/compare?runs={ids}&format=csv&level=gpu_type")

    comparison = compare([first.id, second.id])
    assert as_json.status_code == 200
    assert as_json.content == comparison_json(comparison)
    assert as_json.json()["best_for_cost"]["gpu_type"] == "rtx-4090-24gb"
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.content == comparison_csv(comparison)
    assert by_gpu.content == comparison_csv(comparison, level="gpu_type")


def test_compare_a_sweep_by_id(client: TestClient) -> None:
    sweep_id = client.post("/sweeps", json={**SWEEP, "samples": 8}).json()["sweep"][
        "sweep_id"
    ]

    response = client.get(f"/compare?sweep={sweep_id}")

    rows = response.json()["rows"]
    assert [row["gpu_type"] for row in rows] == SWEEP["gpu_types"]
    assert {row["state"] for row in rows} == {"queued"}
    assert response.json()["best_for_cost"] is None


def test_bundle_download_is_the_services_zip(client: TestClient) -> None:
    run = make_run(Spec("l4-24gb"))

    response = client.get(f"/runs/{run.id}/bundle.zip")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert f'filename="{run.id}-bundle.zip"' in response.headers["content-disposition"]
    assert response.content == run_bundle(run.id)
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert names == ["result.json", "gpu_timeseries.csv", "manifest.json"]


def test_the_api_key_guards_every_route(
    persephone_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSEPHONE_API_KEY", "dev-secret")
    context.reset()
    with TestClient(app_routes()) as keyed:
        paths = ["/compare?runs=a", "/sweeps/a", "/runs/a/bundle.zip"]
        assert {keyed.get(path).status_code for path in paths} == {401}
        assert keyed.post("/sweeps", json=SWEEP).status_code == 401
        allowed = keyed.get("/sweeps/a", headers={"X-API-Key": "dev-secret"})
        assert allowed.status_code == 404
