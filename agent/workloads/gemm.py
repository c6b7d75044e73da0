"""`gemm:<dtype>:<size>`: square matrix products, timed with device synchronisation.

On a machine without CUDA the products run on the CPU at a size the CPU can
finish in reasonable time, and result.json says so.
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

from agent.spec import WorkloadKind, WorkloadSpec
from agent.workloads import SampleTiming, WorkloadInfo
from agent.workloads._torch import (
    import_library,
    pick_device,
    resolve_dtype,
    synchronize,
)

# A 1024-wide product is about 2 GFLOP: tens of milliseconds on a CPU core.
CPU_MAX_SIZE = 1024


class GemmWorkload:
    kind: WorkloadKind = "gemm"

    def __init__(self, spec: WorkloadSpec) -> None:
        assert spec.gemm_size is not None and spec.gemm_dtype is not None
        self._spec = spec
        self.info = WorkloadInfo()
        self._torch: ModuleType | None = None
        self._device = "cpu"
        self._a: Any = None
        self._b: Any = None
        self._out: Any = None

    def load(self) -> None:
        spec = self._spec
        torch = import_library("torch", "torch", spec.model_ref)
        self._torch = torch
        self._device, note = pick_device(torch)
        size = spec.gemm_size or 0
        if note:
            self.info.notes.append(note)
        if self._device == "cpu" and size > CPU_MAX_SIZE:
            self.info.notes.append(
                f"the CPU ran {CPU_MAX_SIZE}x{CPU_MAX_SIZE} products instead of the "
                f"requested {size}x{size}, which would take too long on a CPU"
            )
            size = CPU_MAX_SIZE
        dtype, dtype_name = resolve_dtype(
            torch, spec.gemm_dtype or "fp32", self._device
        )
        if self._device == "cuda" and dtype_name == "fp32":
            # TF32 would make "fp32" several times faster and less exact.
            tf32 = torch.backends.cuda.matmul.allow_tf32
            self.info.notes.append(f"fp32 products with TF32 {'on' if tf32 else 'off'}")
        generator = torch.Generator(device="cpu").manual_seed(spec.int_param("seed"))
        # Drawn on the CPU so the same seed gives the same matrices on any device.
        self._a = torch.randn(size, size, generator=generator).to(self._device, dtype)
        self._b = torch.randn(size, size, generator=generator).to(self._device, dtype)
        self._out = torch.empty(size, size, device=self._device, dtype=dtype)
        synchronize(torch, self._device)
        self.info.device = self._device
        self.info.matrix_size = size
        self.info.flops_per_sample = 2.0 * size**3

    def run_sample(self) -> SampleTiming:
        torch = self._torch
        assert torch is not None
        synchronize(torch, self._device)
        started = time.perf_counter()
        torch.matmul(self._a, self._b, out=self._out)
        synchronize(torch, self._device)
        return SampleTiming(latency_s=time.perf_counter() - started)
