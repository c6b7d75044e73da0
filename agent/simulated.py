"""A stand-in GPU for mock pods on machines without one (PERSEPHONE_SIMULATE_GPU=1).

Its readings follow the run's phase so charts look like a real run, and every
row and summary built from them says `simulated`.
"""

from __future__ import annotations

import math
import random
import time

from agent.nvml import GpuReading
from agent.schema import Phase

SIMULATED_NAME = "Simulated GPU"
SIMULATED_UUID = "GPU-SIMULATED-0"
_MEMORY_TOTAL_MIB = 24576.0
_POWER_IDLE_W = 55.0
_POWER_LIMIT_W = 300.0
_TEMPERATURE_TAU_S = 20.0
_POWER_TAU_S = 1.0

# Busy percentage, memory used (MiB) and target temperature (°C) per phase.
_PHASE_PROFILE: dict[str, tuple[float, float, float]] = {
    "load": (6.0, 1800.0, 36.0),
    "warmup": (82.0, 4300.0, 58.0),
    "measure": (96.0, 4400.0, 67.0),
    "idle": (1.0, 4300.0, 33.0),
}


class SimulatedGpu:
    """Plausible readings that track the phase; never presented as measured."""

    simulated = True
    index = 0
    uuid = SIMULATED_UUID
    name = SIMULATED_NAME
    memory_info_version: str | None = None

    def __init__(self, seed: int = 0) -> None:
        self._random = random.Random(seed)
        self._temperature_c = 31.0
        self._last_mono_s: float | None = None
        self._power_w: float | None = None

    def read(self, phase: Phase) -> GpuReading:
        mono_s = time.monotonic()
        busy_pct, memory_mib, target_c = _PHASE_PROFILE[phase]
        noise = self._random.uniform
        utilization = min(100.0, max(0.0, busy_pct + noise(-3.0, 3.0)))
        elapsed_s = 0.0 if self._last_mono_s is None else mono_s - self._last_mono_s
        step = 1.0 - math.exp(-elapsed_s / _TEMPERATURE_TAU_S)
        self._temperature_c += (target_c - self._temperature_c) * step
        self._last_mono_s = mono_s
        target_w = _POWER_IDLE_W + (_POWER_LIMIT_W - _POWER_IDLE_W - 20.0) * (
            utilization / 100.0
        )
        # NVML's power reading is an average over about a second, so it lags too.
        if self._power_w is None:
            self._power_w = target_w
        else:
            self._power_w += (target_w - self._power_w) * (
                1.0 - math.exp(-elapsed_s / _POWER_TAU_S)
            )
        power_w = self._power_w
        busy = utilization > 20.0
        return GpuReading(
            gpu_index=self.index,
            gpu_uuid=self.uuid,
            mono_s=mono_s,
            wall_s=time.time(),
            utilization_gpu_pct=round(utilization),
            utilization_memory_pct=round(utilization * 0.45),
            memory_used_mib=memory_mib,
            memory_total_mib=_MEMORY_TOTAL_MIB,
            power_w=round(power_w + noise(-4.0, 4.0), 3),
            temperature_c=round(self._temperature_c),
            clock_sm_mhz=1980.0 if busy else 345.0,
            clock_mem_mhz=6251.0 if busy else 405.0,
            throttle_reasons="none" if busy else "gpu_idle",
            energy_mj=None,
            simulated=True,
        )

    def static_facts(self) -> dict[str, str | int | float | None]:
        return {
            "name": self.name,
            "uuid": self.uuid,
            "vbios": None,
            "power_limit_w": _POWER_LIMIT_W,
            "clock_sm_max_mhz": 1980,
            "clock_mem_max_mhz": 6251,
            "ecc_mode": None,
            "mig_mode": None,
            "pcie_gen": None,
            "pcie_width": None,
            "pcie_gen_max": None,
            "pcie_width_max": None,
        }
