# ruff: noqa: N802 - the functions carry NVML's own camel-case names
"""A fake `pynvml` module: NVML's calls and error codes without a GPU.

`build_module(FakeNvml(...))` returns a real module object with the function
names, constants and `NVMLError` that the agent uses, backed by a `FakeNvml`
whose GPUs a test configures (a metric not supported, a GPU lost mid-run, names
as bytes...). For a subprocess, `write_shim(folder, "scenario")` writes a
`pynvml.py` into `folder` that installs one of the named `SCENARIOS`; put that
folder first on PYTHONPATH.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_RESET_REQUIRED = 16
NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25
NVML_ERROR_UNKNOWN = 999

_ERROR_TEXT = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_TIMEOUT: "Timeout",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_RESET_REQUIRED: "GPU requires restart",
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH: "Argument version mismatch",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_MEMORY_V2 = 0x02000028
NVML_CUDA_DRIVER_VERSION = 12020


class NVMLError(Exception):
    """Like nvidia-ml-py's: the NVML return code is in `value`."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _ERROR_TEXT.get(self.value, f"NVML error {self.value}")


@dataclass
class FakeGpu:
    """One fake card; every reading is fixed so tests can assert exact values."""

    name: str | bytes = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-11111111-2222-3333-4444-555555555555"
    utilization_gpu_pct: int = 97
    utilization_memory_pct: int = 41
    memory_total_bytes: int = 80 * 1024**3
    memory_used_bytes: int = 12 * 1024**3
    # v1 counts reserved memory as used; v2 does not.
    memory_reserved_bytes: int = 512 * 1024**2
    power_mw: int = 250_000
    temperature_c: int = 61
    clock_sm_mhz: int = 1980
    clock_mem_mhz: int = 2619
    throttle_mask: int = 0x4
    # Calls that answer NVML_ERROR_NOT_SUPPORTED on this card.
    unsupported: frozenset[str] = frozenset()
    mig_enabled: bool = False
    # Set by break_gpu: every later call on this card raises this code.
    failure_code: int | None = None


@dataclass
class FakeNvml:
    """The fake library's state, shared by the module's functions."""

    gpus: list[FakeGpu] = field(default_factory=lambda: [FakeGpu()])
    # nvmlInit raises this code (NVML missing, driver not loaded).
    init_error: int | None = None
    # False: the v2 memory call answers FUNCTION_NOT_FOUND (an old driver).
    memory_v2_works: bool = True
    # False: the module has no nvmlMemory_v2 constant (old bindings).
    has_memory_v2_constant: bool = True
    # False: the module has only the old name of the throttle call.
    has_event_reasons: bool = True
    # True: like nvidia-ml-py, bytes are decoded, raising on invalid UTF-8.
    decode_text: bool = True
    initialized: bool = False
    init_calls: int = 0
    shutdown_calls: int = 0
    # Problems a test asserts are absent.
    violations: list[str] = field(default_factory=list)
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _init_mono_s: float = 0.0

    def break_gpu(self, index: int, code: int = NVML_ERROR_GPU_IS_LOST) -> None:
        self.gpus[index].failure_code = code

    def energy_mj(self, gpu: FakeGpu) -> int:
        """Energy since init at the card's constant power, plus a boot offset."""
        return 5_000_000 + int(gpu.power_mw * (time.monotonic() - self._init_mono_s))


@dataclass(frozen=True)
class _Handle:
    index: int


def build_module(fake: FakeNvml, name: str = "pynvml") -> ModuleType:
    """A module object that behaves like pynvml over `fake`."""
    module = ModuleType(name, "fake pynvml for tests")
    module.__dict__["FAKE"] = fake
    module.__dict__["NVMLError"] = NVMLError
    for key, value in globals().items():
        if key.startswith("NVML_ERROR_") or key in (
            "NVML_SUCCESS",
            "NVML_TEMPERATURE_GPU",
            "NVML_CLOCK_SM",
            "NVML_CLOCK_MEM",
        ):
            module.__dict__[key] = value
    if fake.has_memory_v2_constant:
        module.__dict__["nvmlMemory_v2"] = NVML_MEMORY_V2

    def text(value: str | bytes) -> str | bytes:
        if isinstance(value, bytes) and fake.decode_text:
            return value.decode()  # raises on invalid UTF-8, as nvidia-ml-py does
        return value

    def system_call(function: str) -> None:
        with fake._lock:
            fake.calls += 1
        if not fake.initialized:
            fake.violations.append(f"{function} called while NVML is not initialised")
            raise NVMLError(NVML_ERROR_UNINITIALIZED)

    def device(handle: _Handle, function: str) -> FakeGpu:
        system_call(function)
        gpu = fake.gpus[handle.index]
        if gpu.failure_code is not None:
            raise NVMLError(gpu.failure_code)
        if function in gpu.unsupported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return gpu

    def nvmlInit() -> None:
        fake.init_calls += 1
        if fake.init_error is not None:
            raise NVMLError(fake.init_error)
        fake.initialized = True
        fake._init_mono_s = time.monotonic()

    def nvmlShutdown() -> None:
        fake.shutdown_calls += 1
        if not fake.initialized:
            fake.violations.append("nvmlShutdown without a successful nvmlInit")
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        alive = [t.name for t in threading.enumerate() if t.name == "gpu-sampler"]
        if alive:
            fake.violations.append("nvmlShutdown while the sampler thread runs")
        fake.initialized = False

    def nvmlSystemGetDriverVersion() -> str | bytes:
        system_call("nvmlSystemGetDriverVersion")
        return text(b"535.129.03")

    def nvmlSystemGetCudaDriverVersion() -> int:
        system_call("nvmlSystemGetCudaDriverVersion")
        return NVML_CUDA_DRIVER_VERSION

    def nvmlSystemGetNVMLVersion() -> str | bytes:
        system_call("nvmlSystemGetNVMLVersion")
        return text(b"12.535.129.03")

    def nvmlDeviceGetCount() -> int:
        system_call("nvmlDeviceGetCount")
        return len(fake.gpus)

    def nvmlDeviceGetHandleByIndex(index: int) -> _Handle:
        system_call("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(fake.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return _Handle(index)

    def nvmlDeviceGetHandleByUUID(uuid: str) -> _Handle:
        system_call("nvmlDeviceGetHandleByUUID")
        for index, gpu in enumerate(fake.gpus):
            if gpu.uuid == uuid:
                return _Handle(index)
        raise NVMLError(NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetName(handle: _Handle) -> str | bytes:
        return text(device(handle, "nvmlDeviceGetName").name)

    def nvmlDeviceGetUUID(handle: _Handle) -> str | bytes:
        return text(device(handle, "nvmlDeviceGetUUID").uuid)

    def nvmlDeviceGetUtilizationRates(handle: _Handle) -> SimpleNamespace:
        gpu = device(handle, "nvmlDeviceGetUtilizationRates")
        if gpu.mig_enabled:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)  # as on a MIG-enabled card
        return SimpleNamespace(
            gpu=gpu.utilization_gpu_pct, memory=gpu.utilization_memory_pct
        )

    def nvmlDeviceGetMemoryInfo(handle: _Handle, version: int | None = None) -> Any:
        gpu = device(handle, "nvmlDeviceGetMemoryInfo")
        total, used = gpu.memory_total_bytes, gpu.memory_used_bytes
        if version is None:
            used_v1 = used + gpu.memory_reserved_bytes
            return SimpleNamespace(total=total, used=used_v1, free=total - used_v1)
        if not fake.memory_v2_works:
            raise NVMLError(NVML_ERROR_FUNCTION_NOT_FOUND)
        if version != NVML_MEMORY_V2:
            raise NVMLError(NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        return SimpleNamespace(
            version=version,
            total=total,
            reserved=gpu.memory_reserved_bytes,
            used=used,
            free=total - used - gpu.memory_reserved_bytes,
        )

    def nvmlDeviceGetPowerUsage(handle: _Handle) -> int:
        return device(handle, "nvmlDeviceGetPowerUsage").power_mw

    def nvmlDeviceGetTemperature(handle: _Handle, sensor: int) -> int:
        gpu = device(handle, "nvmlDeviceGetTemperature")
        if sensor != NVML_TEMPERATURE_GPU:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return gpu.temperature_c

    def nvmlDeviceGetClockInfo(handle: _Handle, clock: int) -> int:
        gpu = device(handle, "nvmlDeviceGetClockInfo")
        return gpu.clock_sm_mhz if clock == NVML_CLOCK_SM else gpu.clock_mem_mhz

    def nvmlDeviceGetMaxClockInfo(handle: _Handle, clock: int) -> int:
        device(handle, "nvmlDeviceGetMaxClockInfo")
        return 1980 if clock == NVML_CLOCK_SM else 2619

    def event_reasons(handle: _Handle) -> int:
        gpu = device(handle, "nvmlDeviceGetCurrentClocksEventReasons")
        return gpu.throttle_mask

    def throttle_reasons(handle: _Handle) -> int:
        gpu = device(handle, "nvmlDeviceGetCurrentClocksThrottleReasons")
        return gpu.throttle_mask

    def nvmlDeviceGetTotalEnergyConsumption(handle: _Handle) -> int:
        gpu = device(handle, "nvmlDeviceGetTotalEnergyConsumption")
        return fake.energy_mj(gpu)

    def nvmlDeviceGetVbiosVersion(handle: _Handle) -> str | bytes:
        device(handle, "nvmlDeviceGetVbiosVersion")
        return text(b"96.00.89.00.01")

    def nvmlDeviceGetEnforcedPowerLimit(handle: _Handle) -> int:
        device(handle, "nvmlDeviceGetEnforcedPowerLimit")
        return 700_000

    def nvmlDeviceGetEccMode(handle: _Handle) -> list[int]:
        device(handle, "nvmlDeviceGetEccMode")
        return [1, 1]

    def nvmlDeviceGetMigMode(handle: _Handle) -> list[int]:
        gpu = device(handle, "nvmlDeviceGetMigMode")
        mode = 1 if gpu.mig_enabled else 0
        return [mode, mode]

    def nvmlDeviceGetCurrPcieLinkGeneration(handle: _Handle) -> int:
        device(handle, "nvmlDeviceGetCurrPcieLinkGeneration")
        return 5

    def nvmlDeviceGetCurrPcieLinkWidth(handle: _Handle) -> int:
        device(handle, "nvmlDeviceGetCurrPcieLinkWidth")
        return 16

    def nvmlDeviceGetMaxPcieLinkGeneration(handle: _Handle) -> int:
        device(handle, "nvmlDeviceGetMaxPcieLinkGeneration")
        return 5

    def nvmlDeviceGetMaxPcieLinkWidth(handle: _Handle) -> int:
        device(handle, "nvmlDeviceGetMaxPcieLinkWidth")
        return 16

    for function in (
        nvmlInit,
        nvmlShutdown,
        nvmlSystemGetDriverVersion,
        nvmlSystemGetCudaDriverVersion,
        nvmlSystemGetNVMLVersion,
        nvmlDeviceGetCount,
        nvmlDeviceGetHandleByIndex,
        nvmlDeviceGetHandleByUUID,
        nvmlDeviceGetName,
        nvmlDeviceGetUUID,
        nvmlDeviceGetUtilizationRates,
        nvmlDeviceGetMemoryInfo,
        nvmlDeviceGetPowerUsage,
        nvmlDeviceGetTemperature,
        nvmlDeviceGetClockInfo,
        nvmlDeviceGetMaxClockInfo,
        nvmlDeviceGetTotalEnergyConsumption,
        nvmlDeviceGetVbiosVersion,
        nvmlDeviceGetEnforcedPowerLimit,
        nvmlDeviceGetEccMode,
        nvmlDeviceGetMigMode,
        nvmlDeviceGetCurrPcieLinkGeneration,
        nvmlDeviceGetCurrPcieLinkWidth,
        nvmlDeviceGetMaxPcieLinkGeneration,
        nvmlDeviceGetMaxPcieLinkWidth,
    ):
        module.__dict__[function.__name__] = function
    module.__dict__["nvmlDeviceGetCurrentClocksThrottleReasons"] = throttle_reasons
    if fake.has_event_reasons:
        module.__dict__["nvmlDeviceGetCurrentClocksEventReasons"] = event_reasons
    return module


def eight_gpus() -> list[FakeGpu]:
    return [
        FakeGpu(uuid=f"GPU-{index:08d}-0000-0000-0000-000000000000")
        for index in range(8)
    ]


# Named scenarios for subprocess runs (see write_shim).
SCENARIOS: dict[str, Any] = {
    "ok": lambda: FakeNvml(),
    "eight_gpus": lambda: FakeNvml(gpus=eight_gpus()),
    "no_library": lambda: FakeNvml(init_error=NVML_ERROR_LIBRARY_NOT_FOUND),
    "no_driver": lambda: FakeNvml(init_error=NVML_ERROR_DRIVER_NOT_LOADED),
    "no_gpu": lambda: FakeNvml(gpus=[]),
    "no_energy_counter": lambda: FakeNvml(
        gpus=[FakeGpu(unsupported=frozenset({"nvmlDeviceGetTotalEnergyConsumption"}))]
    ),
}


def scenario(name: str) -> FakeNvml:
    return SCENARIOS[name]()


def write_shim(folder: Path, scenario_name: str) -> Path:
    """Write `folder/pynvml.py`, which becomes the fake for `scenario_name`."""
    if scenario_name not in SCENARIOS:
        raise KeyError(f"unknown fake NVML scenario {scenario_name!r}")
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "pynvml.py"
    shim.write_text(
        "import importlib.util, sys\n"
        f"_spec = importlib.util.spec_from_file_location("
        f"'persephone_fake_pynvml', {str(Path(__file__).resolve())!r})\n"
        "_fake = importlib.util.module_from_spec(_spec)\n"
        "sys.modules['persephone_fake_pynvml'] = _fake\n"
        "_spec.loader.exec_module(_fake)\n"
        f"sys.modules[__name__] = _fake.build_module("
        f"_fake.scenario({scenario_name!r}))\n"
    )
    return shim
