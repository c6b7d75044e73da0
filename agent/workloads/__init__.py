"""Workloads: what runs between the sampler's `load` and `idle` phases.

Each workload loads once, then runs one sample per `run_sample()` call, timing
it itself (with device synchronisation) because only it knows when the device
work ended. Heavy libraries are imported in `load()`, never at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from agent.spec import WorkloadKind, WorkloadSpec


class WorkloadError(Exception):
    """A workload that cannot run; the message goes into result.json as is."""


@dataclass
class SampleTiming:
    """One measured call."""

    latency_s: float
    # Language models: seconds from the call's start to each decoding step.
    token_times_s: list[float] | None = None
    output_tokens: int = 0


@dataclass
class WorkloadInfo:
    """What the workload learned while loading, for result.json."""

    device: str | None = None
    model_revision: str | None = None
    notes: list[str] = field(default_factory=list)
    # Inputs per sample: the batch size.
    items_per_sample: int = 1
    # gemm: floating-point operations per sample and the matrix size really used.
    flops_per_sample: float | None = None
    matrix_size: int | None = None


class Workload(Protocol):
    kind: WorkloadKind
    info: WorkloadInfo

    def load(self) -> None: ...

    def run_sample(self) -> SampleTiming: ...


def create_workload(spec: WorkloadSpec, *, mock_speed: float = 1.0) -> Workload:
    """The workload for `spec`; its module is imported only now."""
    if spec.kind == "mock":
        from agent.workloads.mock import MockWorkload

        return MockWorkload(spec, speed=mock_speed)
    if spec.kind == "gemm":
        from agent.workloads.gemm import GemmWorkload

        return GemmWorkload(spec)
    if spec.kind == "hf_causal_lm":
        from agent.workloads.causal_lm import CausalLmWorkload

        return CausalLmWorkload(spec)
    from agent.workloads.embedding import EmbeddingWorkload

    return EmbeddingWorkload(spec)
