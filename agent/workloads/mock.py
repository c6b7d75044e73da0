"""`mock-v0`: seeded synthetic latencies, slept for real so the time series covers them.

Nothing runs on a GPU. Latencies are lognormal around 60 ms, divided by the mock
GPU's speed factor (PERSEPHONE_MOCK_SPEED), and grow mildly with the batch size.
"""

from __future__ import annotations

import math
import random
import time

from agent.spec import WorkloadKind, WorkloadSpec
from agent.workloads import SampleTiming, WorkloadInfo

MEDIAN_LATENCY_S = 0.060
LATENCY_SIGMA = 0.15
LOAD_S = 0.1
# The first call after loading is this much slower, as a real cold call is.
COLD_FACTOR = 2.5


class MockWorkload:
    kind: WorkloadKind = "mock"

    def __init__(self, spec: WorkloadSpec, *, speed: float) -> None:
        self._random = random.Random(spec.int_param("seed"))
        self._speed = speed
        self._batch_size = spec.int_param("batch_size")
        self._calls = 0
        self.info = WorkloadInfo(
            device="mock",
            notes=[
                "mock-v0: synthetic latencies (lognormal, median "
                f"{MEDIAN_LATENCY_S * 1000:.0f} ms / speed {speed:g}), no model runs"
            ],
            items_per_sample=self._batch_size,
        )

    def load(self) -> None:
        time.sleep(LOAD_S / self._speed)

    def run_sample(self) -> SampleTiming:
        target_s = self._random.lognormvariate(
            math.log(MEDIAN_LATENCY_S), LATENCY_SIGMA
        )
        target_s *= 1.0 + 0.1 * (self._batch_size - 1)
        if self._calls == 0:
            target_s *= COLD_FACTOR
        self._calls += 1
        started = time.perf_counter()
        time.sleep(target_s / self._speed)
        return SampleTiming(latency_s=time.perf_counter() - started)
