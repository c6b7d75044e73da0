"""The GPU sampler against the fake NVML, one scenario per test."""

from __future__ import annotations

import itertools
import logging
import sys
import time
from datetime import datetime
from pathlib import Path
from types import ModuleType

import pytest

from agent import nvml as nv
from agent.clock import RunClock
from agent.schema import TIMESERIES_COLUMNS
from agent.telemetry import GpuSampler, write_header
from tests.agent.support import read_csv_rows
from tests.fakes import fake_pynvml
from tests.fakes.fake_pynvml import FakeGpu, FakeNvml

PHASE_ORDER = {"load": 0, "warmup": 1, "measure": 2, "idle": 3}


def make_sampler(
    tmp_path: Path,
    fake: FakeNvml | None,
    *,
    hz: float = 10.0,
    simulate: bool = False,
    visible: str | None = None,
) -> GpuSampler:
    csv_path = tmp_path / "gpu_timeseries.csv"
    write_header(csv_path)
    module = None if fake is None else fake_pynvml.build_module(fake)

    def load() -> ModuleType:
        return nv.import_pynvml() if module is None else module

    return GpuSampler(
        csv_path,
        RunClock(),
        sample_hz=hz,
        simulate=simulate,
        cuda_visible_devices=visible,
        load_nvml=load,
    )


def run_phases(sampler: GpuSampler, measure_s: float = 0.25) -> tuple[float, float]:
    """load → warmup → measure (for measure_s) → idle; the measure window."""
    sampler.start()
    sampler.mark_phase("warmup")
    sampler.mark_phase("measure")
    start = time.monotonic()
    time.sleep(measure_s)
    end = time.monotonic()
    sampler.mark_phase("idle")
    sampler.close()
    return start, end


def rows_of(tmp_path: Path) -> list[dict[str, str]]:
    return read_csv_rows(tmp_path / "gpu_timeseries.csv")


def test_all_supported_rows_carry_every_reading(tmp_path: Path) -> None:
    fake = FakeNvml()
    sampler = make_sampler(tmp_path, fake)

    run_phases(sampler)

    rows = rows_of(tmp_path)
    header = (tmp_path / "gpu_timeseries.csv").read_text().splitlines()[0]
    assert header == ",".join(TIMESERIES_COLUMNS)
    assert len(rows) >= 4
    assert rows[0]["phase"] == "load" and rows[-1]["phase"] == "idle"
    assert {row["phase"] for row in rows} == {"load", "warmup", "measure", "idle"}
    orders = [PHASE_ORDER[row["phase"]] for row in rows]
    assert orders == sorted(orders)
    row = rows[1]
    assert row["gpu_index"] == "0"
    assert row["gpu_uuid"] == "GPU-11111111-2222-3333-4444-555555555555"
    assert row["utilization_gpu_pct"] == "97"
    assert row["utilization_memory_pct"] == "41"
    assert row["memory_used_mib"] == "12288"  # v2: reserved memory not counted
    assert row["memory_total_mib"] == "81920"
    assert row["power_w"] == "250"
    assert row["temperature_c"] == "61"
    assert row["clock_sm_mhz"] == "1980"
    assert row["clock_mem_mhz"] == "2619"
    assert row["throttle_reasons"] == "sw_power_cap"
    assert row["simulated"] == "false"
    stamps = [datetime.strptime(r["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ") for r in rows]
    assert stamps == sorted(stamps)
    assert all(r["timestamp"].endswith("Z") and len(r["timestamp"]) == 24 for r in rows)
    elapsed = [float(r["elapsed_s"]) for r in rows]
    assert elapsed == sorted(elapsed) and elapsed[0] < 1.0

    telemetry = sampler.telemetry()
    assert telemetry.status == "ok"
    assert telemetry.memory_info_version == "v2"
    assert telemetry.unsupported_metrics == []
    assert telemetry.rows == len(rows)
    assert telemetry.simulated is False
    assert fake.init_calls == 1 and fake.shutdown_calls == 1
    assert fake.violations == []


def test_summary_and_manifest_from_nvml(tmp_path: Path) -> None:
    fake = FakeNvml()
    sampler = make_sampler(tmp_path, fake)

    run_phases(sampler)

    (summary,) = sampler.gpu_summaries()
    assert summary.name == "NVIDIA H100 80GB HBM3"
    assert summary.power_mean_w == 250.0 and summary.power_max_w == 250.0
    assert summary.utilization_gpu_mean_pct == 97.0
    assert summary.memory_used_max_mib == 12288.0
    assert summary.throttle_reasons_seen == ["sw_power_cap"]
    assert summary.throttled is True
    manifest = sampler.manifest()
    assert manifest["driver_version"] == "535.129.03"
    assert manifest["cuda_driver_version"] == "12.2"
    assert manifest["nvml_version"] == "12.535.129.03"
    assert manifest["gpu_count"] == 1
    assert manifest["gpu_vbios"] == "96.00.89.00.01"
    assert manifest["gpu_power_limit_w"] == 700.0
    assert manifest["gpu_clock_sm_max_mhz"] == 1980
    assert manifest["gpu_ecc_mode"] == "enabled"
    assert manifest["gpu_mig_mode"] == "disabled"
    assert (manifest["gpu_pcie_gen"], manifest["gpu_pcie_width"]) == (5, 16)
    assert manifest["simulated_gpu"] is False
    assert fake.violations == []  # nothing asked of NVML after its shutdown


def test_rows_reach_disk_while_sampling(tmp_path: Path) -> None:
    sampler = make_sampler(tmp_path, FakeNvml(), hz=10.0)
    sampler.start()
    try:
        time.sleep(0.35)
        rows_while_running = rows_of(tmp_path)
    finally:
        sampler.close()
    assert len(rows_while_running) >= 2


def test_ticks_follow_the_monotonic_clock(tmp_path: Path) -> None:
    sampler = make_sampler(tmp_path, FakeNvml(), hz=10.0)
    sampler.start()
    time.sleep(0.75)
    sampler.close()

    elapsed = [float(r["elapsed_s"]) for r in rows_of(tmp_path)]
    gaps = sorted(b - a for a, b in itertools.pairwise(elapsed))
    assert 6 <= len(elapsed) <= 9
    assert 0.08 <= gaps[len(gaps) // 2] <= 0.13


def test_unsupported_metric_is_an_empty_cell_listed_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    gpu = FakeGpu(unsupported=frozenset({"nvmlDeviceGetPowerUsage"}))
    sampler = make_sampler(tmp_path, FakeNvml(gpus=[gpu]))

    start, end = run_phases(sampler, measure_s=0.3)

    rows = rows_of(tmp_path)
    assert len(rows) >= 5
    assert all(row["power_w"] == "" for row in rows)
    assert all(row["temperature_c"] == "61" for row in rows)
    assert sampler.telemetry().unsupported_metrics == ["power_w"]
    power_lines = [r for r in caplog.records if "power_w" in r.getMessage()]
    assert len(power_lines) == 1
    # The energy counter still works, so energy does not need power readings.
    energy = sampler.energy((start, end), samples=3)
    assert energy.method == "nvml_counter"
    assert energy.peak_power_w is None


def test_no_counter_and_no_power_gives_no_energy(tmp_path: Path) -> None:
    gpu = FakeGpu(
        unsupported=frozenset(
            {"nvmlDeviceGetPowerUsage", "nvmlDeviceGetTotalEnergyConsumption"}
        )
    )
    sampler = make_sampler(tmp_path, FakeNvml(gpus=[gpu]))

    start, end = run_phases(sampler)

    energy = sampler.energy((start, end), samples=3)
    assert energy.method is None and energy.joules is None
    assert energy.note is not None
    assert sampler.telemetry().unsupported_metrics == ["energy_counter", "power_w"]


def test_energy_from_the_nvml_counter(tmp_path: Path) -> None:
    sampler = make_sampler(tmp_path, FakeNvml())

    start, end = run_phases(sampler, measure_s=0.4)

    energy = sampler.energy((start, end), samples=4, output_tokens=100)
    assert energy.method == "nvml_counter" and energy.estimated is False
    assert energy.joules == pytest.approx(250.0 * (end - start), rel=0.1)
    assert energy.mean_power_w == pytest.approx(250.0, rel=0.02)
    assert energy.joules_per_sample == pytest.approx(energy.joules / 4)
    assert energy.joules_per_output_token == pytest.approx(energy.joules / 100)
    assert energy.peak_power_w == 250.0


def test_energy_from_power_when_the_counter_is_absent(tmp_path: Path) -> None:
    gpu = FakeGpu(unsupported=frozenset({"nvmlDeviceGetTotalEnergyConsumption"}))
    sampler = make_sampler(tmp_path, FakeNvml(gpus=[gpu]))

    start, end = run_phases(sampler, measure_s=0.4)

    energy = sampler.energy((start, end), samples=4)
    assert energy.method == "power_integration" and energy.estimated is True
    assert energy.joules == pytest.approx(250.0 * (end - start), rel=1e-9)
    assert energy.joules > 0
    assert sampler.telemetry().unsupported_metrics == ["energy_counter"]


@pytest.mark.parametrize(
    ("init_error", "reason_part"),
    [
        (fake_pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "libnvidia-ml.so.1"),
        (fake_pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "driver is not loaded"),
    ],
)
def test_nvml_that_cannot_start_leaves_telemetry_unavailable(
    tmp_path: Path, init_error: int, reason_part: str
) -> None:
    fake = FakeNvml(init_error=init_error)
    sampler = make_sampler(tmp_path, fake)

    began = time.monotonic()
    run_phases(sampler, measure_s=0.05)

    assert time.monotonic() - began < 0.5  # phase changes did not wait for ticks
    telemetry = sampler.telemetry()
    assert telemetry.status == "unavailable"
    assert reason_part in (telemetry.reason or "")
    assert telemetry.rows == 0 and telemetry.simulated is False
    assert rows_of(tmp_path) == []
    assert fake.shutdown_calls == 0  # init never succeeded
    assert fake.violations == []
    energy = sampler.energy((0.0, 1.0), samples=1)
    assert energy.joules is None and energy.method is None


def test_missing_pynvml_module_leaves_telemetry_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` now fails
    sampler = make_sampler(tmp_path, None)

    run_phases(sampler, measure_s=0.05)

    telemetry = sampler.telemetry()
    assert telemetry.status == "unavailable"
    assert "nvidia-ml-py" in (telemetry.reason or "")


def test_no_gpu_without_the_flag_is_never_simulated(tmp_path: Path) -> None:
    fake = FakeNvml(gpus=[])
    sampler = make_sampler(tmp_path, fake, simulate=False)

    run_phases(sampler, measure_s=0.05)

    telemetry = sampler.telemetry()
    assert telemetry.status == "unavailable"
    assert telemetry.reason == "NVML sees no GPU"
    assert telemetry.simulated is False
    assert fake.shutdown_calls == 1 and fake.violations == []


@pytest.mark.parametrize(
    "fake",
    [FakeNvml(gpus=[]), FakeNvml(init_error=fake_pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)],
    ids=["count-zero", "no-library"],
)
def test_simulated_readings_when_asked_and_no_gpu(
    tmp_path: Path, fake: FakeNvml
) -> None:
    sampler = make_sampler(tmp_path, fake, simulate=True)

    start, end = run_phases(sampler, measure_s=0.3)

    rows = rows_of(tmp_path)
    assert rows and all(row["simulated"] == "true" for row in rows)
    assert {row["gpu_uuid"] for row in rows} == {"GPU-SIMULATED-0"}
    measure = [float(r["utilization_gpu_pct"]) for r in rows if r["phase"] == "measure"]
    load = [float(r["utilization_gpu_pct"]) for r in rows if r["phase"] == "load"]
    assert min(measure) > 80 > max(load)
    assert all(float(row["power_w"]) > 0 for row in rows)
    telemetry = sampler.telemetry()
    assert telemetry.simulated is True and telemetry.status == "ok"
    assert "simulated" in (telemetry.reason or "")
    assert sampler.gpu_summaries()[0].name == "Simulated GPU"
    assert sampler.manifest()["simulated_gpu"] is True
    energy = sampler.energy((start, end), samples=2)
    assert energy.method == "power_integration" and (energy.joules or 0) > 0
    assert fake.violations == []


def test_a_real_gpu_is_not_simulated_even_with_the_flag(tmp_path: Path) -> None:
    sampler = make_sampler(tmp_path, FakeNvml(), simulate=True)

    run_phases(sampler, measure_s=0.05)

    assert all(row["simulated"] == "false" for row in rows_of(tmp_path))
    assert sampler.telemetry().simulated is False


def test_gpu_lost_mid_run_keeps_rows_and_adds_none(tmp_path: Path) -> None:
    second = FakeGpu(uuid="GPU-22222222-0000-0000-0000-000000000000")
    fake = FakeNvml(gpus=[FakeGpu(), second])
    sampler = make_sampler(tmp_path, fake, hz=10.0)
    sampler.start()
    sampler.mark_phase("measure")
    time.sleep(0.25)
    before = rows_of(tmp_path)

    fake.break_gpu(0)
    lost_at = time.time()
    time.sleep(0.35)
    sampler.mark_phase("idle")
    sampler.close()

    rows = rows_of(tmp_path)
    assert rows[: len(before)] == before
    late = [r for r in rows if _wall(r) > lost_at + 0.05]
    assert late and all(r["gpu_index"] == "1" for r in late)
    telemetry = sampler.telemetry()
    assert telemetry.status == "degraded"
    assert "GPU 0" in (telemetry.first_error or "")
    assert "GPU is lost" in (telemetry.first_error or "")
    first_error_at = _parse(telemetry.first_error_at or "")
    assert abs(first_error_at - lost_at) < 0.5
    assert telemetry.rows == len(rows)
    assert fake.shutdown_calls == 1 and fake.violations == []


def test_only_gpu_lost_stops_the_sampler(tmp_path: Path) -> None:
    fake = FakeNvml()
    sampler = make_sampler(tmp_path, fake, hz=10.0)
    sampler.start()
    time.sleep(0.2)
    fake.break_gpu(0)
    time.sleep(0.3)
    count = len(rows_of(tmp_path))

    began = time.monotonic()
    sampler.mark_phase("measure")  # nothing left to sample: must not wait
    time.sleep(0.2)
    sampler.close()

    assert time.monotonic() - began < 1.0
    assert len(rows_of(tmp_path)) == count
    assert sampler.telemetry().status == "degraded"
    assert fake.violations == []


def test_unknown_error_mid_run_adds_nothing_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeNvml()
    sampler = make_sampler(tmp_path, fake, hz=10.0)
    sampler.start()
    time.sleep(0.2)
    fake.break_gpu(0, fake_pynvml.NVML_ERROR_UNKNOWN)
    time.sleep(0.1)
    count = len(rows_of(tmp_path))
    time.sleep(0.4)
    count_later = len(rows_of(tmp_path))

    fake.gpus[0].failure_code = None  # the error was transient
    time.sleep(0.3)
    sampler.close()

    assert count_later == count
    assert len(rows_of(tmp_path)) > count
    telemetry = sampler.telemetry()
    assert telemetry.status == "degraded"
    assert "Unknown Error" in (telemetry.first_error or "")
    warnings = [r for r in caplog.records if "Unknown Error" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize(
    ("name", "decode", "expected"),
    [
        ("Tesla T4", True, "Tesla T4"),
        (b"Tesla T4", False, "Tesla T4"),
        (b"NVIDIA \xff\xfe GPU", True, "NVIDIA \ufffd\ufffd GPU"),
        (b"NVIDIA \xff\xfe GPU", False, "NVIDIA \ufffd\ufffd GPU"),
    ],
    ids=["str", "bytes", "invalid-utf8-decoded", "invalid-utf8-bytes"],
)
def test_device_names_of_any_encoding_serialise(
    tmp_path: Path, name: str | bytes, decode: bool, expected: str
) -> None:
    fake = FakeNvml(gpus=[FakeGpu(name=name)], decode_text=decode)
    sampler = make_sampler(tmp_path, fake)

    run_phases(sampler, measure_s=0.05)

    (summary,) = sampler.gpu_summaries()
    assert summary.name == expected
    assert sampler.manifest()["gpu_name"] == expected
    assert expected in summary.model_dump_json()  # serialisable as JSON
    assert rows_of(tmp_path)[0]["gpu_uuid"].startswith("GPU-")


@pytest.mark.parametrize(
    "fake",
    [FakeNvml(memory_v2_works=False), FakeNvml(has_memory_v2_constant=False)],
    ids=["driver-refuses-v2", "bindings-without-v2"],
)
def test_memory_info_falls_back_to_v1(tmp_path: Path, fake: FakeNvml) -> None:
    sampler = make_sampler(tmp_path, fake)

    run_phases(sampler, measure_s=0.05)

    assert sampler.telemetry().memory_info_version == "v1"
    # v1 counts the 512 MiB the driver reserves as used.
    assert {r["memory_used_mib"] for r in rows_of(tmp_path)} == {"12800"}


def test_mig_gpu_without_utilisation(tmp_path: Path) -> None:
    fake = FakeNvml(gpus=[FakeGpu(mig_enabled=True)])
    sampler = make_sampler(tmp_path, fake)

    run_phases(sampler, measure_s=0.05)

    rows = rows_of(tmp_path)
    assert all(r["utilization_gpu_pct"] == "" for r in rows)
    assert all(r["utilization_memory_pct"] == "" for r in rows)
    assert all(r["power_w"] == "250" for r in rows)
    assert sampler.telemetry().unsupported_metrics == [
        "utilization_gpu_pct",
        "utilization_memory_pct",
    ]
    assert sampler.manifest()["gpu_mig_mode"] == "enabled"
    assert sampler.gpu_summaries()[0].utilization_gpu_mean_pct is None


def test_old_bindings_use_the_old_throttle_call(tmp_path: Path) -> None:
    sampler = make_sampler(tmp_path, FakeNvml(has_event_reasons=False))

    run_phases(sampler, measure_s=0.05)

    assert {r["throttle_reasons"] for r in rows_of(tmp_path)} == {"sw_power_cap"}


@pytest.mark.parametrize(
    ("visible", "expected_indices"),
    [
        ("GPU-00000005-0000-0000-0000-000000000000", {"5"}),
        ("GPU-00000006", {"6"}),
        ("2,3", {"2", "3"}),
        ("1,bogus,2", {"1"}),
    ],
)
def test_cuda_visible_devices_picks_the_workload_gpus(
    tmp_path: Path, visible: str, expected_indices: set[str]
) -> None:
    fake = FakeNvml(gpus=fake_pynvml.eight_gpus())
    sampler = make_sampler(tmp_path, fake, visible=visible)

    run_phases(sampler, measure_s=0.05)

    rows = rows_of(tmp_path)
    assert {r["gpu_index"] for r in rows} == expected_indices
    for row in rows:
        assert (
            row["gpu_uuid"]
            == f"GPU-{int(row['gpu_index']):08d}-0000-0000-0000-000000000000"
        )


def test_cuda_visible_devices_matching_nothing(tmp_path: Path) -> None:
    fake = FakeNvml(gpus=fake_pynvml.eight_gpus())
    sampler = make_sampler(tmp_path, fake, visible="GPU-deadbeef")

    run_phases(sampler, measure_s=0.05)

    telemetry = sampler.telemetry()
    assert telemetry.status == "unavailable"
    assert "CUDA_VISIBLE_DEVICES='GPU-deadbeef'" in (telemetry.reason or "")


def test_throttle_reason_names() -> None:
    assert nv.format_throttle_reasons(0) == "none"
    assert nv.format_throttle_reasons(0x4 | 0x8) == "sw_power_cap|hw_slowdown"
    assert nv.format_throttle_reasons(0x1000) == "other_0x1000"


def _wall(row: dict[str, str]) -> float:
    return _parse(row["timestamp"])


def _parse(stamp: str) -> float:
    from datetime import UTC

    return (
        datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
        .replace(tzinfo=UTC)
        .timestamp()
    )


def test_unwritable_csv_leaves_telemetry_unavailable(tmp_path: Path) -> None:
    fake = FakeNvml()
    module = fake_pynvml.build_module(fake)
    csv_path = tmp_path / "gpu_timeseries.csv"
    csv_path.mkdir()  # a folder where the file should be
    sampler = GpuSampler(
        csv_path,
        RunClock(),
        sample_hz=10.0,
        simulate=False,
        cuda_visible_devices=None,
        load_nvml=lambda: module,
    )

    run_phases(sampler, measure_s=0.05)

    telemetry = sampler.telemetry()
    assert telemetry.status == "unavailable"
    assert "cannot write gpu_timeseries.csv" in (telemetry.reason or "")
    assert fake.init_calls == 0 and fake.violations == []
