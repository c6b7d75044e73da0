"""Sweeps: validation naming fields, estimates by hand, confirmation, all-or-nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from app import context
from app.db import session_scope
from app.models import Run, Sweep
from app.services.runs import InvalidRequest
from app.services.sweeps import (
    ConfirmationRequired,
    SweepNotFound,
    SweepRequest,
    estimate_sweep,
    get_sweep,
    parse_sweep_request,
    start_sweep,
)
from tests.compare.factory import Spec, make_run

SWEEP = {"gpu_types": ["l4-24gb", "h100-sxm-80gb"], "model_ref": "mock-v0"}


def all_rows() -> tuple[list[Sweep], list[Run]]:
    with session_scope() as session:
        return list(session.exec(select(Sweep))), list(session.exec(select(Run)))


def mock_seconds(samples: int, speed: float, warmup: int = 2) -> float:
    """mock-v0's timing: 5 s start-up, 0.1 s load, a 2.5× cold call, warm-up."""
    return 5.0 + (0.1 + (samples + warmup + 2.5) * 0.060) / speed


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({**SWEEP, "gpu_types": ["l4-24gb", "l4-24gb"]}, "gpu_types", "twice"),
        ({**SWEEP, "gpu_types": []}, "gpu_types", "1 to 16"),
        ({**SWEEP, "gpu_types": [f"g{i}" for i in range(17)]}, "gpu_types", "1 to 16"),
        ({**SWEEP, "samples": 0}, "samples", "from 1 to 100000"),
        ({**SWEEP, "samples": 8, "repeats": 11}, "repeats", "from 1 to 10"),
        ({**SWEEP, "samples": 8, "tier": "spot"}, "tier", "spot"),
        ({**SWEEP, "samples": 8, "colour": "red"}, "colour", "not a known field"),
        ({"gpu_types": ["l4-24gb"], "samples": 8}, "model_ref", "required"),
    ],
)
def test_bad_fields_are_named(
    payload: dict[str, object], field: str, words: str
) -> None:
    payload.setdefault("samples", 8)

    with pytest.raises(InvalidRequest) as error:
        parse_sweep_request(payload)

    assert error.value.field == field
    assert words in str(error.value)


def test_estimate_uses_the_mock_timing_model_and_frozen_prices(
    persephone_env: Path,
) -> None:
    request = parse_sweep_request({**SWEEP, "samples": 100, "repeats": 2})

    estimate = estimate_sweep(request)

    l4, h100 = estimate.gpus
    assert (l4.gpu_type, l4.tier, l4.price_per_hour_usd) == ("l4-24gb", "secure", 0.43)
    assert l4.basis == "mock_model"
    assert l4.duration_s == pytest.approx(mock_seconds(100, 1.0))
    assert l4.cost_usd == pytest.approx(0.43 / 3600 * mock_seconds(100, 1.0) * 2)
    assert h100.price_per_hour_usd == 2.69
    assert h100.duration_s == pytest.approx(mock_seconds(100, 5.5))
    assert h100.runs == 2
    assert estimate.total_usd == pytest.approx(l4.cost_usd + h100.cost_usd)


def test_estimate_prefers_past_runs_of_the_same_workload(
    persephone_env: Path,
) -> None:
    for billed_s in (20.0, 30.0, 45.0):
        make_run(Spec("l4-24gb", samples=100, billed_s=billed_s, measure_s=6.0))
    # Another workload on the same GPU type must not count.
    make_run(Spec("l4-24gb", samples=100, billed_s=500.0, parameters={"warmup": 9}))

    same = estimate_sweep(parse_sweep_request({**SWEEP, "samples": 100}))
    scaled = estimate_sweep(parse_sweep_request({**SWEEP, "samples": 200}))

    assert same.gpus[0].basis == "history"
    assert same.gpus[0].duration_s == 30.0
    assert "3 past run(s)" in same.gpus[0].basis_note
    # Overhead billed − measured (median 24 s) + 0.06 s a sample × 200.
    assert scaled.gpus[0].basis == "history_scaled"
    assert scaled.gpus[0].duration_s == pytest.approx(24.0 + 0.06 * 200)
    assert same.gpus[1].basis == "mock_model"


def test_estimate_without_history_bounds_other_workloads_by_the_timeout(
    persephone_env: Path,
) -> None:
    request = parse_sweep_request(
        {"gpu_types": ["h100-sxm-80gb"], "model_ref": "gemm:fp16:1024", "samples": 50}
    )

    gpu = estimate_sweep(request).gpus[0]

    assert gpu.basis == "timeout"
    assert gpu.duration_s == 900.0
    assert gpu.cost_usd == pytest.approx(2.69 / 3600 * 900)
    assert gpu.exceeds_timeout is False


def test_a_run_longer_than_the_timeout_is_capped_and_said(
    persephone_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSEPHONE_REQUEST_TIMEOUT_S", "60")
    context.reset()

    gpu = estimate_sweep(parse_sweep_request({**SWEEP, "samples": 5000})).gpus[0]

    assert gpu.exceeds_timeout is True
    assert gpu.duration_s == 60.0


def test_a_tier_missing_on_one_gpu_type_is_named(persephone_env: Path) -> None:
    request = parse_sweep_request(
        {
            "gpu_types": ["rtx-4090-24gb", "l4-24gb"],
            "model_ref": "mock-v0",
            "samples": 8,
            "tier": "community",
        }
    )

    with pytest.raises(InvalidRequest) as error:
        estimate_sweep(request)

    assert error.value.field == "tier"
    assert "not offered for L4 (l4-24gb)" in str(error.value)


def test_above_the_threshold_nothing_starts_without_confirmation(
    persephone_env: Path,
) -> None:
    request = parse_sweep_request({**SWEEP, "samples": 100, "repeats": 3})

    with pytest.raises(ConfirmationRequired) as refused:
        start_sweep(request, confirmed=False, confirm_above_usd=0.001)

    assert refused.value.estimate.total_usd > 0.001
    assert refused.value.estimate == estimate_sweep(request)
    assert '"confirmed": true' in str(refused.value)
    assert all_rows() == ([], [])


def test_a_confirmed_sweep_queues_one_run_per_gpu_type_and_repeat(
    persephone_env: Path,
) -> None:
    request = parse_sweep_request(
        {**SWEEP, "samples": 100, "repeats": 2, "parameters": {"seed": 7}}
    )

    sweep = start_sweep(request, confirmed=True, confirm_above_usd=0.001)

    detail = get_sweep(sweep.id)
    assert detail.gpu_types == ["l4-24gb", "h100-sxm-80gb"]
    assert detail.parameters == {"seed": 7}
    assert sweep.estimated_cost_usd == pytest.approx(estimate_sweep(request).total_usd)
    assert [(r.gpu_type, r.repeat_index) for r in detail.runs] == [
        ("l4-24gb", 0),
        ("l4-24gb", 1),
        ("h100-sxm-80gb", 0),
        ("h100-sxm-80gb", 1),
    ]
    assert {r.state for r in detail.runs} == {"queued"}
    assert {r.sweep_id for r in detail.runs} == {sweep.id}
    assert {r.parameters_json for r in detail.runs} == {'{"seed": 7}'}
    assert [r.price_per_hour for r in detail.runs] == [0.43, 0.43, 2.69, 2.69]


def test_under_the_threshold_no_confirmation_is_needed(persephone_env: Path) -> None:
    request = SweepRequest(gpu_types=["l4-24gb"], model_ref="mock-v0", samples=8)

    sweep = start_sweep(request, confirmed=False, confirm_above_usd=5.0)

    assert len(get_sweep(sweep.id).runs) == 1


def test_one_unknown_gpu_type_creates_nothing(persephone_env: Path) -> None:
    request = parse_sweep_request(
        {"gpu_types": ["l4-24gb", "h100-sxm", "a40-48gb"], "model_ref": "mock-v0"}
        | {"samples": 8}
    )

    with pytest.raises(InvalidRequest) as error:
        start_sweep(request, confirmed=True, confirm_above_usd=100.0)

    assert error.value.field == "gpu_types.1"
    assert "Unknown gpu_type 'h100-sxm'" in str(error.value)
    assert "h100-sxm-80gb" in error.value.suggestions
    assert all_rows() == ([], [])


def test_a_bad_workload_parameter_creates_nothing(persephone_env: Path) -> None:
    request = parse_sweep_request(
        {**SWEEP, "samples": 8, "parameters": {"batch_size": 5000}}
    )

    with pytest.raises(InvalidRequest) as error:
        start_sweep(request, confirmed=True, confirm_above_usd=100.0)

    assert error.value.field == "parameters.batch_size"
    assert all_rows() == ([], [])


def test_a_negative_threshold_is_refused(persephone_env: Path) -> None:
    request = parse_sweep_request({**SWEEP, "samples": 8})

    with pytest.raises(InvalidRequest) as error:
        start_sweep(request, confirmed=False, confirm_above_usd=-1.0)

    assert error.value.field == "confirm_above_usd"


def test_unknown_sweep(persephone_env: Path) -> None:
    with pytest.raises(SweepNotFound, match="No sweep with id 'nope'"):
        get_sweep("nope")
