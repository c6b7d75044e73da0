"""compare(): costs by hand, rankings, Pareto front, spread, flags, exports."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import statistics
import zipfile
from pathlib import Path

import numpy as np
import pytest

from app.db import session_scope
from app.models import Run, RunState
from app.services import runs
from app.services.compare import (
    aligned_timeseries,
    compare,
    comparison_csv,
    comparison_json,
    measured_cost_by_gpu,
    pareto_front,
    run_bundle,
)
from app.services.runs import InvalidRequest, RunNotFound
from tests.compare.factory import Spec, make_run


def steady_per_1k(price_per_hour: float, measure_s: float, samples: int) -> float:
    return price_per_hour / 3600 * measure_s / samples * 1000


@pytest.fixture
def four_gpus(persephone_env: Path) -> dict[str, Run]:
    """Four GPU types with hand-picked numbers (prices from the mock catalog)."""
    return {
        "l4": make_run(Spec("l4-24gb", measure_s=6.0, p95_ms=75.0, billed_s=20.0)),
        "4090": make_run(Spec("rtx-4090-24gb", measure_s=3.0, p95_ms=40.0)),
        "h100": make_run(Spec("h100-sxm-80gb", measure_s=1.0, p95_ms=12.0)),
        "a100": make_run(Spec("a100-sxm-80gb", measure_s=2.0, p95_ms=20.0)),
    }


def test_costs_and_energy_per_run_match_hand_arithmetic(
    four_gpus: dict[str, Run],
) -> None:
    comparison = compare([four_gpus["l4"].id])

    row = comparison.rows[0]
    assert row.gpu_type == "l4-24gb"
    assert row.tier == "secure"
    assert row.price_per_hour_usd == 0.43
    assert row.steady_usd_per_1k_samples == pytest.approx(0.43 / 3600 * 6 / 100 * 1000)
    assert row.all_in_usd_per_1k_samples == pytest.approx(0.43 / 3600 * 20 / 100 * 1000)
    assert row.steady_usd_per_1m_tokens is None
    assert row.latency_n == 100
    assert (row.latency_p50_ms, row.latency_p95_ms, row.latency_p99_ms) == (
        60.0,
        75.0,
        80.0,
    )
    assert row.throughput_per_s == pytest.approx(100 / 6)
    assert row.energy_j_per_sample == 12.0
    assert row.energy_method == "power_integration"
    assert row.energy_estimated is True


def test_best_picks_and_pareto_front(four_gpus: dict[str, Run]) -> None:
    ids = {name: run.id for name, run in four_gpus.items()}

    comparison = compare(list(ids.values()))

    # Steady $/1k: l4 0.00717, 4090 0.00575, h100 0.00747, a100 0.00967.
    costs = {r.gpu_type: r.steady_usd_per_1k_samples for r in comparison.rows}
    assert costs["rtx-4090-24gb"] == pytest.approx(steady_per_1k(0.69, 3.0, 100))
    assert costs["h100-sxm-80gb"] == pytest.approx(steady_per_1k(2.69, 1.0, 100))
    assert costs["a100-sxm-80gb"] == pytest.approx(steady_per_1k(1.74, 2.0, 100))
    assert comparison.best_for_cost is not None
    assert comparison.best_for_cost.run_id == ids["4090"]
    assert comparison.best_for_cost.value == costs["rtx-4090-24gb"]
    assert comparison.best_for_latency is not None
    assert comparison.best_for_latency.run_id == ids["h100"]
    assert comparison.best_for_latency.value == 12.0
    # l4 loses to the 4090 on both axes, the A100 to the H100.
    assert set(comparison.pareto_run_ids) == {ids["4090"], ids["h100"]}
    assert comparison.best_gpu_for_cost is not None
    assert comparison.best_gpu_for_cost.gpu_type == "rtx-4090-24gb"
    assert comparison.best_gpu_for_latency is not None
    assert comparison.best_gpu_for_latency.gpu_type == "h100-sxm-80gb"
    pareto_groups = {g.gpu_type for g in comparison.groups if g.on_pareto_front}
    assert pareto_groups == {"rtx-4090-24gb", "h100-sxm-80gb"}


def test_pareto_front_keeps_ties_and_drops_dominated_points() -> None:
    points = [(1.0, 5.0), (2.0, 2.0), (2.0, 2.0), (3.0, 1.0), (3.0, 3.0), (1.0, 6.0)]

    assert pareto_front(points) == [True, True, True, True, False, False]


def test_repeats_give_mean_range_and_stdev_per_gpu_type(
    persephone_env: Path,
) -> None:
    repeats = [
        make_run(Spec("l4-24gb", measure_s=m, p95_ms=p, repeat_index=i))
        for i, (m, p) in enumerate([(5.0, 70.0), (6.0, 75.0), (7.0, 80.0)])
    ]
    other = make_run(Spec("rtx-4090-24gb", measure_s=3.0, p95_ms=40.0))

    comparison = compare([run.id for run in [*repeats, other]])

    group = next(g for g in comparison.groups if g.gpu_type == "l4-24gb")
    assert group.run_ids == [run.id for run in repeats]
    assert group.runs_succeeded == 3
    assert group.latency_n == 300
    assert group.latency_p95_ms is not None
    assert group.latency_p95_ms.mean == 75.0
    assert (group.latency_p95_ms.min, group.latency_p95_ms.max) == (70.0, 80.0)
    assert group.latency_p95_ms.stdev == pytest.approx(5.0)
    costs = [steady_per_1k(0.43, m, 100) for m in (5.0, 6.0, 7.0)]
    cost = group.steady_usd_per_1k_samples
    assert cost is not None
    assert cost.mean == pytest.approx(statistics.fmean(costs))
    assert cost.stdev == pytest.approx(statistics.stdev(costs))
    single = next(g for g in comparison.groups if g.gpu_type == "rtx-4090-24gb")
    assert single.latency_p95_ms is not None
    assert single.latency_p95_ms.n == 1
    assert single.latency_p95_ms.stdev is None


def test_flags_simulated_throttled_and_different_workloads(
    persephone_env: Path,
) -> None:
    base = make_run(Spec("l4-24gb", simulated=False))
    # Defaults written out are the same workload as no parameters at all.
    same = make_run(Spec("rtx-4090-24gb", simulated=False, parameters={"seed": 0}))
    throttled = make_run(Spec("a40-48gb", simulated=False, throttled=True))
    simulated = make_run(Spec("h100-sxm-80gb", simulated=True))
    other = make_run(Spec("l40s-48gb", simulated=False, samples=50))

    comparison = compare([base.id, same.id, throttled.id, simulated.id, other.id])

    flags = {row.run_id: row.flags for row in comparison.rows}
    assert flags[base.id] == []
    assert flags[same.id] == []
    assert flags[throttled.id] == ["throttled"]
    assert flags[simulated.id] == ["simulated"]
    assert flags[other.id] == ["different_workload"]
    assert comparison.reference_workload is not None
    assert comparison.reference_workload.samples == 100
    assert len(comparison.workloads) == 2
    text = " ".join(comparison.warnings)
    assert "2 different workloads" in text
    assert "1 of 5 runs report simulated GPU metrics" in text
    assert f"Run {throttled.id} on a40-48gb was throttled" in text


def test_a_different_workload_is_never_ranked_even_when_cheapest(
    persephone_env: Path,
) -> None:
    reference = [
        make_run(Spec("l4-24gb", measure_s=6.0, p95_ms=75.0)),
        make_run(Spec("rtx-4090-24gb", measure_s=3.0, p95_ms=40.0)),
    ]
    # Far cheaper and faster per sample, but it measured other work.
    gemm = make_run(
        Spec("h100-sxm-80gb", model_ref="gemm:fp32:256", measure_s=0.01, p95_ms=0.2)
    )

    comparison = compare([run.id for run in reference] + [gemm.id])

    rows = {row.run_id: row for row in comparison.rows}
    assert rows[gemm.id].flags == ["simulated", "different_workload"]
    assert rows[gemm.id].ranked is False
    assert comparison.best_for_cost is not None
    assert comparison.best_for_cost.run_id == reference[1].id
    assert comparison.best_for_latency is not None
    assert comparison.best_for_latency.run_id == reference[1].id
    assert gemm.id not in comparison.pareto_run_ids
    assert "listed but left out of every ranking" in " ".join(comparison.warnings)


def test_non_succeeded_runs_are_listed_but_never_ranked(
    persephone_env: Path,
) -> None:
    good = make_run(Spec("l4-24gb", measure_s=6.0, p95_ms=75.0))
    # The cheapest and fastest numbers, on a run that did not succeed.
    lost = make_run(Spec("rtx-4090-24gb", measure_s=0.5, p95_ms=5.0))
    with session_scope() as session:
        row = session.get(Run, lost.id)
        assert row is not None
        row.state = RunState.TIMED_OUT
        session.add(row)
    failed = make_run(
        Spec(
            "b200-180gb",
            state=RunState.FAILED,
            error="No B200 is available.",
            had_pod=False,
        )
    )

    comparison = compare([good.id, lost.id, failed.id])

    assert comparison.best_for_cost is not None
    assert comparison.best_for_cost.run_id == good.id
    assert comparison.best_for_latency is not None
    assert comparison.best_for_latency.run_id == good.id
    assert comparison.pareto_run_ids == [good.id]
    rows = {row.run_id: row for row in comparison.rows}
    assert rows[failed.id].ranked is False
    assert rows[failed.id].flags[0] == "not_succeeded"
    assert rows[failed.id].error_message == "No B200 is available."
    assert rows[lost.id].ranked is False
    group = next(g for g in comparison.groups if g.gpu_type == "rtx-4090-24gb")
    assert group.runs_succeeded == 0
    assert group.latency_p95_ms is None
    assert any(
        "2 runs did not succeed and are left out" in w for w in comparison.warnings
    )


def test_language_model_cost_per_million_output_tokens(
    persephone_env: Path,
) -> None:
    run = make_run(
        Spec(
            "h100-sxm-80gb",
            model_ref="hf:org/tiny-model",
            measure_s=6.0,
            billed_s=120.0,
            output_tokens=6400,
        )
    )

    row = compare([run.id]).rows[0]

    assert row.steady_usd_per_1m_tokens == pytest.approx(2.69 / 3600 * 6 / 6400 * 1e6)
    assert row.all_in_usd_per_1m_tokens == pytest.approx(2.69 / 3600 * 120 / 6400 * 1e6)
    assert row.output_tokens_per_s == pytest.approx(6400 / 6)


def test_unknown_or_missing_runs_are_refused(persephone_env: Path) -> None:
    with pytest.raises(RunNotFound):
        compare(["nosuchrun"])
    with pytest.raises(InvalidRequest) as empty:
        compare([" ", ""])
    assert empty.value.field == "runs"


def test_csv_and_json_carry_the_comparisons_exact_numbers(
    four_gpus: dict[str, Run],
) -> None:
    comparison = compare([run.id for run in four_gpus.values()])

    table = list(csv.DictReader(io.StringIO(comparison_csv(comparison).decode())))
    document = json.loads(comparison_json(comparison))

    assert [line["run_id"] for line in table] == comparison.run_ids
    for line, row, entry in zip(table, comparison.rows, document["rows"], strict=True):
        for column in (
            "steady_usd_per_1k_samples",
            "all_in_usd_per_1k_samples",
            "latency_p95_ms",
            "throughput_per_s",
            "energy_j_per_sample",
        ):
            assert float(line[column]) == getattr(row, column) == entry[column]
        assert line["on_pareto_front"] == str(row.on_pareto_front).lower()
        assert line["flags"] == "|".join(row.flags)
    groups = list(
        csv.DictReader(
            io.StringIO(comparison_csv(comparison, level="gpu_type").decode())
        )
    )
    for line, group in zip(groups, comparison.groups, strict=True):
        assert group.steady_usd_per_1k_samples is not None
        assert float(line["steady_usd_per_1k_samples_mean"]) == (
            group.steady_usd_per_1k_samples.mean
        )
    assert document["best_for_cost"]["run_id"] == four_gpus["4090"].id


def test_bundle_holds_the_stored_files_byte_for_byte(persephone_env: Path) -> None:
    run = make_run(Spec("l4-24gb", measure_s=6.0, billed_s=20.0))

    data = run_bundle(run.id)

    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.namelist() == ["result.json", "gpu_timeseries.csv", "manifest.json"]
    result = runs.artifact_bytes(run.id, runs.RESULT_JSON)
    series = runs.artifact_bytes(run.id, runs.TIMESERIES_CSV)
    assert archive.read("result.json") == result
    assert archive.read("gpu_timeseries.csv") == series
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["run_id"] == run.id
    assert manifest["gpu"]["gpu_type"] == "l4-24gb"
    assert manifest["gpu"]["provider_gpu_id"] == "NVIDIA L4"
    assert manifest["tier"] == "secure"
    assert manifest["price"]["per_hour_usd"] == 0.43
    assert run.price_read_at is not None
    assert manifest["price"]["read_at"] == run.price_read_at.isoformat()
    assert manifest["model_ref"] == "mock-v0"
    assert manifest["samples"] == 100
    assert [s["state"] for s in manifest["states"]] == [
        "queued",
        "provisioning",
        "starting",
        "running",
        "collecting",
        "succeeded",
    ]
    assert manifest["cost_usd"]["billed_s"] == 20.0
    assert manifest["cost_usd"]["all_in_per_1k_samples"] == pytest.approx(
        0.43 / 3600 * 20 / 100 * 1000
    )
    assert manifest["simulated_metrics"] is True
    assert result is not None and series is not None
    assert manifest["files"]["result.json"] == {
        "bytes": len(result),
        "sha256": hashlib.sha256(result).hexdigest(),
    }
    assert manifest["files"]["gpu_timeseries.csv"]["sha256"] == (
        hashlib.sha256(series).hexdigest()
    )
    assert run_bundle(run.id) == data


def test_bundle_of_a_run_without_files_has_only_the_manifest(
    persephone_env: Path,
) -> None:
    from app.services.runs import LaunchRequest

    queued = runs.start_run(
        LaunchRequest(gpu_type="l4-24gb", model_ref="mock-v0", samples=8)
    )

    archive = zipfile.ZipFile(io.BytesIO(run_bundle(queued.id)))

    assert archive.namelist() == ["manifest.json"]
    assert json.loads(archive.read("manifest.json"))["files"] == {}


def test_time_series_are_aligned_at_the_start_of_measurement(
    persephone_env: Path,
) -> None:
    early = make_run(Spec("l4-24gb", lead_in_s=3))
    late = make_run(Spec("rtx-4090-24gb", lead_in_s=5))

    lines = aligned_timeseries([early.id, late.id], "power_w")

    by_run = {line.run_id: line for line in lines}
    assert by_run[early.id].measure_start_s == 3.0
    assert by_run[late.id].measure_start_s == 5.0
    assert by_run[early.id].x_s[0] == -3.0
    assert by_run[late.id].x_s[0] == -5.0
    # At t=0 each run's first measure row: power 200 W + its elapsed seconds.
    assert by_run[early.id].y[np.flatnonzero(by_run[early.id].x_s == 0)[0]] == 203.0
    assert by_run[late.id].y[np.flatnonzero(by_run[late.id].x_s == 0)[0]] == 205.0
    assert by_run[late.id].label == f"rtx-4090-24gb · {late.id}"
    with pytest.raises(InvalidRequest) as bad:
        aligned_timeseries([early.id], "watts")
    assert bad.value.field == "metric"


def test_measured_cost_by_gpu_is_the_median_of_succeeded_runs(
    persephone_env: Path,
) -> None:
    for measure_s in (4.0, 6.0, 9.0):
        make_run(Spec("l4-24gb", measure_s=measure_s))
    make_run(Spec("rtx-4090-24gb", measure_s=3.0))
    make_run(Spec("l4-24gb", model_ref="gemm:fp16:1024", measure_s=1.0))
    make_run(Spec("h100-sxm-80gb", state=RunState.FAILED, error="crashed"))

    measured = measured_cost_by_gpu("mock-v0")

    assert measured == {
        "l4-24gb": pytest.approx(steady_per_1k(0.43, 6.0, 100)),
        "rtx-4090-24gb": pytest.approx(steady_per_1k(0.69, 3.0, 100)),
    }
