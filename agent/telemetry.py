"""The GPU sampler: a background thread that appends `gpu_timeseries.csv`.

It starts before the workload loads, ticks on the monotonic clock at the
configured rate, and ticks once more at each phase change so the measure window
is bracketed by readings. Each tick's rows are flushed at once, so a crash loses
at most the tick in progress. NVML trouble never stops the workload: it only
changes the telemetry status that `result.json` reports.
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Literal, Protocol

from agent import nvml as nv
from agent.clock import RunClock, utc_iso
from agent.energy import PowerPoint, compute_energy
from agent.nvml import GpuReading, NvmlUnavailable
from agent.schema import (
    TIMESERIES_COLUMNS,
    Energy,
    GpuSummary,
    Phase,
    Telemetry,
    TelemetryStatus,
)
from agent.simulated import SimulatedGpu

logger = logging.getLogger(__name__)

# How long a phase change waits for its bracketing tick before moving on.
PHASE_TICK_TIMEOUT_S = 2.0
# How long stopping waits for a tick stuck inside an NVML call.
STOP_TIMEOUT_S = 5.0


class GpuSource(Protocol):
    index: int
    uuid: str
    name: str | None
    simulated: bool
    memory_info_version: str | None

    def read(self, phase: Phase) -> GpuReading: ...

    def static_facts(self) -> dict[str, str | int | float | None]: ...


def write_header(path: Path) -> None:
    """Start the CSV with its header line (also when nothing will be sampled)."""
    with path.open("w", newline="", encoding="utf-8") as stream:
        csv.writer(stream, lineterminator="\n").writerow(TIMESERIES_COLUMNS)


@dataclass
class _Aggregate:
    """Running figures for one GPU's summary, so no row is kept in memory."""

    rows: int = 0
    utilization_sum: float = 0.0
    utilization_n: int = 0
    utilization_max: float | None = None
    memory_used_max_mib: float | None = None
    memory_total_mib: float | None = None
    power_sum_w: float = 0.0
    power_n: int = 0
    power_max_w: float | None = None
    temperature_max_c: float | None = None
    clock_sm_sum_mhz: float = 0.0
    clock_sm_n: int = 0
    reasons_seen: set[str] = field(default_factory=set)

    def add(self, r: GpuReading) -> None:
        self.rows += 1
        if r.utilization_gpu_pct is not None:
            self.utilization_sum += r.utilization_gpu_pct
            self.utilization_n += 1
            self.utilization_max = _max(self.utilization_max, r.utilization_gpu_pct)
        self.memory_used_max_mib = _max(self.memory_used_max_mib, r.memory_used_mib)
        if r.memory_total_mib is not None:
            self.memory_total_mib = r.memory_total_mib
        if r.power_w is not None:
            self.power_sum_w += r.power_w
            self.power_n += 1
            self.power_max_w = _max(self.power_max_w, r.power_w)
        self.temperature_max_c = _max(self.temperature_max_c, r.temperature_c)
        if r.clock_sm_mhz is not None:
            self.clock_sm_sum_mhz += r.clock_sm_mhz
            self.clock_sm_n += 1
        if r.throttle_reasons not in (None, "none"):
            self.reasons_seen.update(str(r.throttle_reasons).split("|"))

    def summary(self, source: GpuSource) -> GpuSummary:
        seen = sorted(self.reasons_seen)
        return GpuSummary(
            index=source.index,
            uuid=source.uuid,
            name=source.name,
            utilization_gpu_mean_pct=_mean(self.utilization_sum, self.utilization_n),
            utilization_gpu_max_pct=self.utilization_max,
            memory_used_max_mib=self.memory_used_max_mib,
            memory_total_mib=self.memory_total_mib,
            power_mean_w=_mean(self.power_sum_w, self.power_n),
            power_max_w=self.power_max_w,
            temperature_max_c=self.temperature_max_c,
            clock_sm_mean_mhz=_mean(self.clock_sm_sum_mhz, self.clock_sm_n),
            throttle_reasons_seen=seen,
            throttled=any(reason in nv.SLOWDOWN_REASONS for reason in seen),
        )


def _max(current: float | None, value: float | None) -> float | None:
    if value is None:
        return current
    return value if current is None else max(current, value)


def _mean(total: float, n: int) -> float | None:
    return total / n if n else None


class _GpuState:
    def __init__(self, source: GpuSource) -> None:
        self.source = source
        self.gone = False
        self.errors_logged: set[int | None] = set()
        self.all_rows = _Aggregate()
        self.measure_rows = _Aggregate()
        # Power and energy from the first measure tick to the one closing it.
        self.window_points: list[PowerPoint] = []


class GpuSampler:
    """Samples the workload's GPUs into the CSV; see the module docstring."""

    def __init__(
        self,
        csv_path: Path,
        clock: RunClock,
        *,
        sample_hz: float,
        simulate: bool,
        cuda_visible_devices: str | None,
        load_nvml: Callable[[], ModuleType] = nv.import_pynvml,
        seed: int = 0,
    ) -> None:
        self._csv_path = csv_path
        self._clock = clock
        self._period_s = 1.0 / sample_hz
        self._sample_hz = sample_hz
        self._simulate = simulate
        self._cuda_visible_devices = cuda_visible_devices
        self._load_nvml = load_nvml
        self._seed = seed

        self._nvml: ModuleType | None = None
        self._nvml_initialized = False
        self._gpus: list[_GpuState] = []
        self._system_facts: dict[str, str | int | float | None] = {}
        self._gpu_facts: dict[str, str | int | float | None] = {}
        self._status: TelemetryStatus = "ok"
        self._reason: str | None = None
        self._first_error: str | None = None
        self._first_error_at: str | None = None
        self._unsupported: set[str] = set()
        self._rows = 0
        self._stream: IO[str] | None = None
        self._writer: csv.DictWriter[str] | None = None

        self._cond = threading.Condition()
        # Held while NVML is being opened, so close() never shuts it down mid-way.
        self._lifecycle = threading.Lock()
        self._phase: Phase = "load"
        self._window_open = False
        self._window_closed = False
        self._running = False
        self._stop_requested = False
        self._forced_seq = 0
        self._done_seq = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    # Life cycle

    def start(self) -> None:
        """Open NVML (or fall back), then tick at once and keep ticking."""
        with self._lifecycle:
            if self._closed:
                return
            try:
                self._stream = self._csv_path.open("a", newline="", encoding="utf-8")
            except OSError as error:
                logger.error("cannot append to %s: %s", self._csv_path, error)
                self._status = "unavailable"
                self._reason = f"cannot write {self._csv_path.name}: {error}"
                return
            self._writer = csv.DictWriter(
                self._stream, fieldnames=TIMESERIES_COLUMNS, lineterminator="\n"
            )
            sources = self._open_sources()
            self._gpus = [_GpuState(source) for source in sources]
            # Read now: NVML is shut down by the time the manifest is written.
            self._gpu_facts = sources[0].static_facts() if sources else {}
            if not self._gpus:
                return
            with self._cond:
                if self._stop_requested:
                    return
                self._running = True
                self._thread = threading.Thread(
                    target=self._loop, name="gpu-sampler", daemon=True
                )
                self._thread.start()
        # The first row is written before the workload starts loading.
        self.mark_phase(self._phase)

    def mark_phase(self, phase: Phase) -> None:
        """Switch phase and wait (briefly) for a tick that records the change."""
        with self._cond:
            self._phase = phase
            if not self._running:
                return
            self._forced_seq += 1
            target = self._forced_seq
            self._cond.notify_all()
            self._cond.wait_for(
                lambda: self._done_seq >= target or not self._running,
                PHASE_TICK_TIMEOUT_S,
            )

    def close(self) -> None:
        """Stop the thread, then shut NVML down (only if it was initialised)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stop_requested = True
            self._running = False
            self._cond.notify_all()
        # Waits for a start() still opening NVML, but not forever.
        if not self._lifecycle.acquire(timeout=STOP_TIMEOUT_S):
            logger.warning("NVML is still opening; it is left open")
            return
        try:
            self._stop_and_shut_down()
        finally:
            self._lifecycle.release()

    def _stop_and_shut_down(self) -> None:
        thread_stopped = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
            thread_stopped = not self._thread.is_alive()
        if self._stream is not None and thread_stopped:
            self._stream.close()
        if self._nvml is None or not self._nvml_initialized:
            return
        if not thread_stopped:
            # Shutting NVML down under a thread still inside it could crash.
            logger.warning("the GPU sampler did not stop; NVML left open")
            return
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError as error:
            logger.warning("nvmlShutdown failed: %s", nv.describe_error(error))
        self._nvml_initialized = False

    # What result.json reports

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def simulated(self) -> bool:
        return any(g.source.simulated for g in self._gpus)

    def telemetry(self) -> Telemetry:
        versions = {g.source.memory_info_version for g in self._gpus}
        # One GPU on the older call makes the whole run's memory figures v1.
        memory_version: Literal["v2", "v1"] | None = (
            "v1" if "v1" in versions else "v2" if "v2" in versions else None
        )
        return Telemetry(
            status=self._status,
            reason=self._reason,
            first_error=self._first_error,
            first_error_at=self._first_error_at,
            unsupported_metrics=sorted(self._unsupported),
            memory_info_version=memory_version,
            sample_hz=self._sample_hz,
            rows=self._rows,
            simulated=self.simulated,
        )

    def gpu_summaries(self) -> list[GpuSummary]:
        summaries = []
        for gpu in self._gpus:
            rows = gpu.measure_rows if gpu.measure_rows.rows else gpu.all_rows
            summaries.append(rows.summary(gpu.source))
        return summaries

    def energy(
        self,
        window: tuple[float, float],
        *,
        samples: int,
        output_tokens: int | None = None,
    ) -> Energy:
        if not self._gpus:
            return Energy(note="no GPU was sampled")
        return compute_energy(
            [g.window_points for g in self._gpus],
            window,
            samples=samples,
            output_tokens=output_tokens,
            max_gap_s=self._period_s * 1.5,
        )

    def manifest(self) -> dict[str, str | int | float | bool | None]:
        """Flat manifest keys: the system's and the first GPU's static facts."""
        facts: dict[str, str | int | float | bool | None] = dict(self._system_facts)
        facts["gpu_count"] = len(self._gpus)
        first = self._gpu_facts
        for key in (
            "name",
            "uuid",
            "vbios",
            "power_limit_w",
            "clock_sm_max_mhz",
            "clock_mem_max_mhz",
            "ecc_mode",
            "mig_mode",
            "pcie_gen",
            "pcie_width",
            "pcie_gen_max",
            "pcie_width_max",
        ):
            facts[f"gpu_{key}"] = first.get(key)
        if len(self._gpus) > 1:
            facts["gpu_names"] = "|".join(str(g.source.name) for g in self._gpus)
        facts["simulated_gpu"] = self.simulated
        return facts

    # Opening NVML

    def _open_sources(self) -> list[GpuSource]:
        try:
            return self._open_nvml_sources()
        except NvmlUnavailable as unavailable:
            if self._simulate and unavailable.no_gpu:
                logger.warning(
                    "NVML sees no GPU (%s); simulating one because "
                    "PERSEPHONE_SIMULATE_GPU=1",
                    unavailable.reason,
                )
                self._reason = (
                    f"simulated readings: NVML sees no GPU ({unavailable.reason}) "
                    "and PERSEPHONE_SIMULATE_GPU=1"
                )
                return [SimulatedGpu(self._seed)]
            logger.warning("GPU telemetry unavailable: %s", unavailable.reason)
            self._status = "unavailable"
            self._reason = unavailable.reason
            return []

    def _open_nvml_sources(self) -> list[GpuSource]:
        nvml = self._load_nvml()
        self._nvml = nvml
        nv.init(nvml)
        self._nvml_initialized = True
        try:
            self._system_facts = nv.system_facts(nvml)
            devices = nv.select_devices(nvml, self._cuda_visible_devices)
            sources: list[GpuSource] = [
                nv.NvmlGpu(nvml, index, handle, self._on_unsupported)
                for index, handle in devices
            ]
        except nvml.NVMLError as error:
            raise NvmlUnavailable(
                f"NVML could not list the GPUs: {nv.describe_error(error)}",
                no_gpu=False,
            ) from None
        if not sources:
            if self._cuda_visible_devices is not None:
                raise NvmlUnavailable(
                    f"CUDA_VISIBLE_DEVICES={self._cuda_visible_devices!r} matches "
                    "none of the GPUs NVML sees"
                )
            raise NvmlUnavailable("NVML sees no GPU")
        logger.info(
            "sampling %d GPU(s) at %g Hz: %s",
            len(sources),
            self._sample_hz,
            ", ".join(f"{s.index}:{s.name}" for s in sources),
        )
        return sources

    def _on_unsupported(self, metric: str, gpu_index: int, why: str) -> None:
        for column in nv.METRIC_COLUMNS[metric]:
            if column not in self._unsupported:
                self._unsupported.add(column)
                logger.info(
                    "GPU %d does not report %s (%s); its cells stay empty",
                    gpu_index,
                    column,
                    why,
                )

    # The thread

    def _loop(self) -> None:
        next_due_s = time.monotonic()
        while True:
            with self._cond:
                while True:
                    if self._stop_requested:
                        return
                    now_s = time.monotonic()
                    forced = self._forced_seq > self._done_seq
                    if forced or now_s >= next_due_s:
                        break
                    self._cond.wait(next_due_s - now_s)
                seq = self._forced_seq
                phase = self._phase
            keep_going = self._tick(phase)
            with self._cond:
                self._done_seq = seq
                if not keep_going:
                    self._running = False
                self._cond.notify_all()
            if not keep_going:
                return
            if not forced or time.monotonic() >= next_due_s:
                # Stay on the grid; slots missed by a slow tick are skipped.
                while next_due_s <= time.monotonic():
                    next_due_s += self._period_s

    def _tick(self, phase: Phase) -> bool:
        """Read every live GPU once; False when nothing is left to sample."""
        readings: list[tuple[_GpuState, GpuReading]] = []
        for gpu in self._gpus:
            if gpu.gone:
                continue
            reading = self._read(gpu, phase)
            if reading is not None:
                readings.append((gpu, reading))
        if not self._write(readings, phase):
            return False
        in_window = phase == "measure"
        closing = self._window_open and not in_window and not self._window_closed
        for gpu, reading in readings:
            gpu.all_rows.add(reading)
            if in_window:
                gpu.measure_rows.add(reading)
            if in_window or closing:
                gpu.window_points.append(
                    PowerPoint(reading.mono_s, reading.power_w, reading.energy_mj)
                )
        if in_window:
            self._window_open = True
        if closing:
            self._window_closed = True
        return any(not gpu.gone for gpu in self._gpus)

    def _read(self, gpu: _GpuState, phase: Phase) -> GpuReading | None:
        nvml = self._nvml
        if nvml is None:
            return gpu.source.read(phase)
        try:
            return gpu.source.read(phase)
        except nvml.NVMLError as error:
            self._record_failure(gpu, error)
            return None

    def _record_failure(self, gpu: _GpuState, error: BaseException) -> None:
        assert self._nvml is not None
        message = (
            f"GPU {gpu.source.index} ({gpu.source.uuid}): {nv.describe_error(error)}"
        )
        if self._first_error is None:
            self._status = "degraded"
            self._first_error = message
            self._first_error_at = utc_iso()
        code = nv.error_code(error)
        if nv.is_gpu_gone(self._nvml, error):
            gpu.gone = True
            logger.error("%s; no more samples from this GPU", message)
        elif code not in gpu.errors_logged:
            gpu.errors_logged.add(code)
            logger.warning("%s; this tick's row is left out", message)

    def _write(
        self, readings: list[tuple[_GpuState, GpuReading]], phase: Phase
    ) -> bool:
        assert self._writer is not None and self._stream is not None
        try:
            for _, r in readings:
                self._writer.writerow(self._row(r, phase))
            self._stream.flush()
        except OSError as error:
            logger.error("cannot write %s: %s; sampling stops", self._csv_path, error)
            if self._first_error is None:
                self._status = "degraded"
                self._first_error = f"cannot write {self._csv_path.name}: {error}"
                self._first_error_at = utc_iso()
            return False
        self._rows += len(readings)
        return True

    def _row(self, r: GpuReading, phase: Phase) -> dict[str, str]:
        return {
            "timestamp": utc_iso(r.wall_s),
            "elapsed_s": f"{self._clock.elapsed_s(r.mono_s):.3f}",
            "phase": phase,
            "gpu_index": str(r.gpu_index),
            "gpu_uuid": r.gpu_uuid,
            "utilization_gpu_pct": _cell(r.utilization_gpu_pct),
            "utilization_memory_pct": _cell(r.utilization_memory_pct),
            "memory_used_mib": _cell(r.memory_used_mib),
            "memory_total_mib": _cell(r.memory_total_mib),
            "power_w": _cell(r.power_w),
            "temperature_c": _cell(r.temperature_c),
            "clock_sm_mhz": _cell(r.clock_sm_mhz),
            "clock_mem_mhz": _cell(r.clock_mem_mhz),
            "throttle_reasons": r.throttle_reasons or "",
            "simulated": "true" if r.simulated else "false",
        }


def _cell(value: float | None) -> str:
    """Empty for a reading the GPU does not give; whole numbers without `.0`."""
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0")
