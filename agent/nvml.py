"""Reading GPUs through the `pynvml` module (package nvidia-ml-py).

Everything NVML-specific lives here: which GPUs the workload can see, one reading
per GPU, the static facts for the manifest, and what each NVML error means.
A reading the card does not support is `None` (an empty CSV cell), never 0.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from agent.schema import Phase

logger = logging.getLogger(__name__)

MIB = 1024 * 1024

# NVML's clock event reason bits (nvml.h); names as written in the CSV.
THROTTLE_REASON_BITS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
# The reasons that mean the GPU ran slower than it could (idle is not one).
SLOWDOWN_REASONS = frozenset(
    {
        "sw_power_cap",
        "hw_slowdown",
        "sw_thermal_slowdown",
        "hw_thermal_slowdown",
        "hw_power_brake_slowdown",
    }
)

# nvidia-ml-py renamed the throttle call; older bindings have only the old name.
_EVENT_REASONS = "nvmlDeviceGetCurrentClocksEventReasons"
_THROTTLE_REASONS = "nvmlDeviceGetCurrentClocksThrottleReasons"

# Metric groups and the CSV columns (or, for the energy counter, the name) each fills.
METRIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "utilization": ("utilization_gpu_pct", "utilization_memory_pct"),
    "memory": ("memory_used_mib", "memory_total_mib"),
    "power": ("power_w",),
    "temperature": ("temperature_c",),
    "clock_sm": ("clock_sm_mhz",),
    "clock_mem": ("clock_mem_mhz",),
    "throttle": ("throttle_reasons",),
    "energy": ("energy_counter",),
}


@dataclass(slots=True)
class GpuReading:
    """One GPU at one instant; None means the card cannot say."""

    gpu_index: int
    gpu_uuid: str
    mono_s: float
    wall_s: float
    utilization_gpu_pct: float | None = None
    utilization_memory_pct: float | None = None
    memory_used_mib: float | None = None
    memory_total_mib: float | None = None
    power_w: float | None = None
    temperature_c: float | None = None
    clock_sm_mhz: float | None = None
    clock_mem_mhz: float | None = None
    throttle_reasons: str | None = None
    energy_mj: float | None = None
    simulated: bool = False


class NvmlUnavailable(Exception):
    """NVML cannot be used at all; `reason` is a sentence for result.json."""

    def __init__(self, reason: str, *, no_gpu: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        # True when the cause is "no GPU here" (what simulation may stand in for).
        self.no_gpu = no_gpu


def import_pynvml() -> ModuleType:
    """The `pynvml` module, or NvmlUnavailable when the package is missing."""
    try:
        return importlib.import_module("pynvml")
    except ImportError as error:
        raise NvmlUnavailable(
            f"the pynvml module (package nvidia-ml-py) cannot be imported: {error}"
        ) from None


def error_code(error: BaseException) -> int | None:
    value = getattr(error, "value", None)
    return value if isinstance(value, int) else None


def _code(nvml: ModuleType, name: str) -> int:
    value = getattr(nvml, name, None)
    # -1 never equals a real NVML return code.
    return value if isinstance(value, int) else -1


def is_unsupported(nvml: ModuleType, error: BaseException) -> bool:
    """Errors that mean "this card or driver cannot give this reading", for good."""
    return error_code(error) in {
        _code(nvml, "NVML_ERROR_NOT_SUPPORTED"),
        _code(nvml, "NVML_ERROR_FUNCTION_NOT_FOUND"),
        _code(nvml, "NVML_ERROR_NO_PERMISSION"),
    }


def is_gpu_gone(nvml: ModuleType, error: BaseException) -> bool:
    """Errors after which this GPU will not answer again in this run."""
    return error_code(error) in {
        _code(nvml, "NVML_ERROR_GPU_IS_LOST"),
        _code(nvml, "NVML_ERROR_RESET_REQUIRED"),
        _code(nvml, "NVML_ERROR_UNINITIALIZED"),
        _code(nvml, "NVML_ERROR_DRIVER_NOT_LOADED"),
    }


def describe_error(error: BaseException) -> str:
    code = error_code(error)
    text = str(error) or type(error).__name__
    return f"{text} (NVML code {code})" if code is not None else text


def as_text(raw: object) -> str:
    """NVML text arrives as str (new bindings) or bytes (old), maybe not UTF-8."""
    if isinstance(raw, bytes | bytearray):
        return bytes(raw).decode("utf-8", errors="replace")
    return str(raw)


def read_text(function: Callable[..., object], *args: object) -> str:
    try:
        return as_text(function(*args))
    except UnicodeDecodeError as error:
        # nvidia-ml-py decodes for us and fails on bytes that are not UTF-8.
        return as_text(error.object)


def init(nvml: ModuleType) -> None:
    """nvmlInit, with its failures turned into a reason a person can act on."""
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as error:
        raise _init_failure(nvml, error) from None


def _init_failure(nvml: ModuleType, error: BaseException) -> NvmlUnavailable:
    code = error_code(error)
    if code == _code(nvml, "NVML_ERROR_LIBRARY_NOT_FOUND"):
        return NvmlUnavailable(
            "the NVML library (libnvidia-ml.so.1) is not present: no NVIDIA "
            "driver is visible in this container"
        )
    if code == _code(nvml, "NVML_ERROR_DRIVER_NOT_LOADED"):
        return NvmlUnavailable("the NVIDIA driver is not loaded on this machine")
    # NVML is there but failing: a GPU may exist, so this is never simulated.
    return NvmlUnavailable(f"nvmlInit failed: {describe_error(error)}", no_gpu=False)


def select_devices(
    nvml: ModuleType, cuda_visible_devices: str | None
) -> list[tuple[int, Any]]:
    """(NVML index, handle) of each GPU the workload sees, in CUDA's order.

    CUDA_VISIBLE_DEVICES may list indices or UUIDs (or their prefixes); like CUDA,
    the list ends at the first entry that matches no GPU. Integer entries are
    taken as NVML indices, which match CUDA's only in PCI bus order.
    """
    count = nvml.nvmlDeviceGetCount()
    devices = [(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
    if cuda_visible_devices is None:
        return devices
    uuids = [read_text(nvml.nvmlDeviceGetUUID, handle) for _, handle in devices]
    chosen: list[tuple[int, Any]] = []
    for entry in (e.strip() for e in cuda_visible_devices.split(",")):
        match = _match_entry(nvml, entry, devices, uuids, len(chosen))
        if match is None:
            break
        if all(match[0] != index for index, _ in chosen):
            chosen.append(match)
    return chosen


def _match_entry(
    nvml: ModuleType,
    entry: str,
    devices: list[tuple[int, Any]],
    uuids: list[str],
    position: int,
) -> tuple[int, Any] | None:
    if entry.isascii() and entry.isdigit():
        index = int(entry)
        return devices[index] if index < len(devices) else None
    if entry.startswith("GPU-"):
        hits = [
            dev
            for dev, uuid in zip(devices, uuids, strict=True)
            if uuid.startswith(entry)
        ]
        return hits[0] if len(hits) == 1 else None
    if entry.startswith("MIG-"):
        # MIG devices are not enumerated by index; the CUDA ordinal stands in.
        try:
            return position, nvml.nvmlDeviceGetHandleByUUID(entry)
        except nvml.NVMLError:
            return None
    return None


class NvmlGpu:
    """One GPU read through NVML; remembers which readings the card cannot give."""

    simulated = False

    def __init__(
        self,
        nvml: ModuleType,
        index: int,
        handle: Any,
        on_unsupported: Callable[[str, int, str], None],
    ) -> None:
        self._nvml = nvml
        self._handle = handle
        self._on_unsupported = on_unsupported
        self._unsupported: set[str] = set()
        self.index = index
        self.uuid = read_text(nvml.nvmlDeviceGetUUID, handle)
        self.name: str | None = self._static_text("nvmlDeviceGetName")
        self.memory_info_version: str | None = None
        self._throttle_function = (
            _EVENT_REASONS if hasattr(nvml, _EVENT_REASONS) else _THROTTLE_REASONS
        )

    def read(self, phase: Phase) -> GpuReading:
        """Every reading this card supports; NVMLError when the GPU fails.

        `phase` is unused: a real GPU's readings do not depend on it.
        """
        nvml = self._nvml
        reading = GpuReading(
            gpu_index=self.index,
            gpu_uuid=self.uuid,
            mono_s=time.monotonic(),
            wall_s=time.time(),
        )
        utilization = self._get("utilization", "nvmlDeviceGetUtilizationRates")
        if utilization is not None:
            reading.utilization_gpu_pct = float(utilization.gpu)
            reading.utilization_memory_pct = float(utilization.memory)
        memory = self._memory()
        if memory is not None:
            reading.memory_used_mib = round(memory.used / MIB, 1)
            reading.memory_total_mib = round(memory.total / MIB, 1)
        power_mw = self._get("power", "nvmlDeviceGetPowerUsage")
        if power_mw is not None:
            reading.power_w = power_mw / 1000.0
        temperature = self._get(
            "temperature", "nvmlDeviceGetTemperature", nvml.NVML_TEMPERATURE_GPU
        )
        if temperature is not None:
            reading.temperature_c = float(temperature)
        clock_sm = self._get("clock_sm", "nvmlDeviceGetClockInfo", nvml.NVML_CLOCK_SM)
        if clock_sm is not None:
            reading.clock_sm_mhz = float(clock_sm)
        clock_mem = self._get(
            "clock_mem", "nvmlDeviceGetClockInfo", nvml.NVML_CLOCK_MEM
        )
        if clock_mem is not None:
            reading.clock_mem_mhz = float(clock_mem)
        reasons = self._throttle()
        if reasons is not None:
            reading.throttle_reasons = format_throttle_reasons(reasons)
        energy_mj = self._get("energy", "nvmlDeviceGetTotalEnergyConsumption")
        if energy_mj is not None:
            reading.energy_mj = float(energy_mj)
        return reading

    def static_facts(self) -> dict[str, str | int | float | None]:
        """What the manifest records about this GPU; None where NVML cannot say."""
        nvml = self._nvml
        power_limit_mw = self._static("nvmlDeviceGetEnforcedPowerLimit")
        ecc = self._static("nvmlDeviceGetEccMode")
        mig = self._static("nvmlDeviceGetMigMode")
        return {
            "name": self.name,
            "uuid": self.uuid,
            "vbios": self._static_text("nvmlDeviceGetVbiosVersion"),
            "power_limit_w": power_limit_mw / 1000.0 if power_limit_mw else None,
            "clock_sm_max_mhz": self._static(
                "nvmlDeviceGetMaxClockInfo", nvml.NVML_CLOCK_SM
            ),
            "clock_mem_max_mhz": self._static(
                "nvmlDeviceGetMaxClockInfo", nvml.NVML_CLOCK_MEM
            ),
            "ecc_mode": _mode_name(ecc[0]) if ecc else None,
            "mig_mode": _mode_name(mig[0]) if mig else None,
            "pcie_gen": self._static("nvmlDeviceGetCurrPcieLinkGeneration"),
            "pcie_width": self._static("nvmlDeviceGetCurrPcieLinkWidth"),
            "pcie_gen_max": self._static("nvmlDeviceGetMaxPcieLinkGeneration"),
            "pcie_width_max": self._static("nvmlDeviceGetMaxPcieLinkWidth"),
        }

    def _get(self, metric: str, function_name: str, *args: object) -> Any:
        if metric in self._unsupported:
            return None
        function = getattr(self._nvml, function_name, None)
        if function is None:
            self._mark_unsupported(metric, f"{function_name} is not in this pynvml")
            return None
        try:
            return function(self._handle, *args)
        except self._nvml.NVMLError as error:
            if is_unsupported(self._nvml, error):
                self._mark_unsupported(metric, describe_error(error))
                return None
            raise

    def _memory(self) -> Any:
        nvml = self._nvml
        if "memory" in self._unsupported:
            return None
        if self.memory_info_version in (None, "v2"):
            version = getattr(nvml, "nvmlMemory_v2", None)
            if version is not None:
                try:
                    info = nvml.nvmlDeviceGetMemoryInfo(self._handle, version=version)
                except TypeError:
                    info = None  # bindings whose function takes no version
                except nvml.NVMLError as error:
                    if not self._v2_refused(error):
                        raise
                    info = None
                if info is not None:
                    self.memory_info_version = "v2"
                    return info
        info = self._get("memory", "nvmlDeviceGetMemoryInfo")
        if info is not None:
            self.memory_info_version = "v1"
        return info

    def _v2_refused(self, error: BaseException) -> bool:
        # Drivers before the v2 struct answer one of these; v1 still works there.
        return is_unsupported(self._nvml, error) or error_code(error) == _code(
            self._nvml, "NVML_ERROR_ARGUMENT_VERSION_MISMATCH"
        )

    def _throttle(self) -> int | None:
        nvml = self._nvml
        if "throttle" in self._unsupported:
            return None
        if self._throttle_function == _EVENT_REASONS and hasattr(
            nvml, _THROTTLE_REASONS
        ):
            try:
                return nvml.nvmlDeviceGetCurrentClocksEventReasons(self._handle)
            except nvml.NVMLError as error:
                if error_code(error) != _code(nvml, "NVML_ERROR_FUNCTION_NOT_FOUND"):
                    if is_unsupported(nvml, error):
                        self._mark_unsupported("throttle", describe_error(error))
                        return None
                    raise
            # A driver older than the renamed call still answers the old one.
            self._throttle_function = _THROTTLE_REASONS
        return self._get("throttle", self._throttle_function)

    def _mark_unsupported(self, metric: str, why: str) -> None:
        self._unsupported.add(metric)
        self._on_unsupported(metric, self.index, why)

    def _static(self, function_name: str, *args: object) -> Any:
        function = getattr(self._nvml, function_name, None)
        if function is None:
            return None
        try:
            return function(self._handle, *args)
        except self._nvml.NVMLError:
            return None

    def _static_text(self, function_name: str) -> str | None:
        function = getattr(self._nvml, function_name, None)
        if function is None:
            return None
        try:
            return read_text(function, self._handle)
        except self._nvml.NVMLError:
            return None


def format_throttle_reasons(mask: int) -> str:
    """`sw_power_cap|hw_slowdown`, or `none` when no reason is active."""
    if mask == 0:
        return "none"
    names = [name for bit, name in THROTTLE_REASON_BITS.items() if mask & bit]
    unknown = mask & ~sum(THROTTLE_REASON_BITS)
    if unknown:
        names.append(f"other_0x{unknown:x}")
    return "|".join(names)


def _mode_name(value: object) -> str:
    return "enabled" if value == 1 else "disabled" if value == 0 else str(value)


def system_facts(nvml: ModuleType) -> dict[str, str | int | float | None]:
    """Driver, CUDA driver API and NVML versions; None where NVML cannot say."""
    cuda = _optional(nvml, nvml.nvmlSystemGetCudaDriverVersion)
    return {
        "driver_version": _optional_text(nvml, nvml.nvmlSystemGetDriverVersion),
        # NVML encodes CUDA 12.2 as 12020.
        "cuda_driver_version": (
            f"{int(cuda) // 1000}.{int(cuda) % 1000 // 10}" if cuda else None
        ),
        "nvml_version": _optional_text(nvml, nvml.nvmlSystemGetNVMLVersion),
    }


def _optional(nvml: ModuleType, function: Callable[[], object]) -> Any:
    try:
        return function()
    except nvml.NVMLError:
        return None


def _optional_text(nvml: ModuleType, function: Callable[[], object]) -> str | None:
    try:
        return read_text(function)
    except nvml.NVMLError:
        return None
