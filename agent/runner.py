"""One run: sampler first, then load, cold first call, warm-up, measure, result.

The runner owns the order of phases and the figures in result.json. Whatever
happens to the GPU telemetry, the workload decides whether the run succeeded.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from agent import __version__
from agent.clock import RunClock, utc_iso
from agent.config import AgentConfig
from agent.manifest import software_manifest
from agent.results import ResultStore
from agent.schema import (
    AgentState,
    AgentStatus,
    ColdStart,
    Energy,
    MeasureWindow,
    Phase,
    Result,
    Telemetry,
    Throughput,
    Tokens,
    Warmup,
    Workload,
)
from agent.spec import WorkloadSpec
from agent.stats import summarize
from agent.telemetry import GpuSampler
from agent.workloads import SampleTiming, WorkloadError, WorkloadInfo
from agent.workloads import Workload as RunnableWorkload

logger = logging.getLogger(__name__)


class RunState:
    """What /status answers; written by the runner, read by the server."""

    def __init__(self, run_id: str | None, samples_total: int) -> None:
        self._lock = threading.Lock()
        self._status = AgentStatus(
            run_id=run_id, state="loading", phase="load", samples_total=samples_total
        )

    def set(
        self,
        state: AgentState | None = None,
        phase: Phase | None = None,
        error: str | None = None,
    ) -> None:
        with self._lock:
            if state is not None:
                self._status.state = state
            if phase is not None:
                self._status.phase = phase
            if error is not None:
                self._status.error = error

    def sample_done(self) -> None:
        with self._lock:
            self._status.samples_done += 1

    def snapshot(self, *, timeseries_bytes: int, result_ready: bool) -> AgentStatus:
        with self._lock:
            return self._status.model_copy(
                update={
                    "timeseries_bytes": timeseries_bytes,
                    "result_ready": result_ready,
                }
            )


@dataclass
class _Progress:
    """Figures gathered as the run goes, so a failed run still reports them."""

    load_s: float | None = None
    first_call_s: float | None = None
    warmup_count: int = 0
    warmup_s: float | None = None
    window_mono: tuple[float, float] | None = None
    window_wall: tuple[float, float] | None = None
    timings: list[SampleTiming] = field(default_factory=list)
    info: WorkloadInfo = field(default_factory=WorkloadInfo)


class Runner:
    """Runs the configured workload once and writes result.json."""

    def __init__(
        self,
        config: AgentConfig,
        spec: WorkloadSpec,
        clock: RunClock,
        store: ResultStore,
        state: RunState,
        environ: Mapping[str, str],
        *,
        make_workload: Callable[[WorkloadSpec], RunnableWorkload],
        sampler: GpuSampler,
    ) -> None:
        self._config = config
        self._spec = spec
        self._clock = clock
        self._store = store
        self._state = state
        self._environ = environ
        self._make_workload = make_workload
        self._sampler = sampler
        self._progress = _Progress()
        self._abort = threading.Event()
        self._started_at = utc_iso(clock.start_wall_s)

    def run(self) -> None:
        """The thread's body: never raises, always ends in a written result."""
        error: str | None = None
        try:
            self._sampler.start()
            self._run_workload()
        except WorkloadError as failure:
            error = str(failure)
        except _Aborted:
            return
        # The run's boundary: any failure must end in result.json, not a dead thread.
        except Exception as failure:
            logger.exception("the workload failed")
            error = f"the workload failed: {type(failure).__name__}: {failure}"
        self._sampler.mark_phase("idle")
        self._sampler.close()
        if error is not None:
            logger.error("run failed: %s", error)
        self._write(error)

    def abort(self, reason: str) -> None:
        """Stop early (signal or deadline): close the sampler, write a failed result."""
        self._abort.set()
        self._sampler.close()
        self._write(reason)

    # Phases

    def _run_workload(self) -> None:
        progress = self._progress
        samples = self._config.samples
        workload = self._make_workload(self._spec)
        progress.info = workload.info

        self._state.set(state="loading", phase="load")
        started = time.perf_counter()
        workload.load()
        progress.load_s = time.perf_counter() - started
        logger.info("loaded %s in %.3f s", self._spec.model_ref, progress.load_s)
        self._check_abort()

        self._enter("warmup", "warmup")
        progress.first_call_s = workload.run_sample().latency_s
        started = time.perf_counter()
        for _ in range(self._spec.int_param("warmup")):
            self._check_abort()
            workload.run_sample()
            progress.warmup_count += 1
        progress.warmup_s = time.perf_counter() - started

        self._enter("measuring", "measure")
        start_mono, start_wall = time.monotonic(), time.time()
        for _ in range(samples):
            self._check_abort()
            progress.timings.append(workload.run_sample())
            self._state.sample_done()
        progress.window_mono = (start_mono, time.monotonic())
        progress.window_wall = (start_wall, time.time())
        logger.info(
            "measured %d samples in %.3f s",
            samples,
            progress.window_mono[1] - progress.window_mono[0],
        )

    def _enter(self, state: AgentState, phase: Phase) -> None:
        self._state.set(state=state, phase=phase)
        self._sampler.mark_phase(phase)

    def _check_abort(self) -> None:
        if self._abort.is_set():
            raise _Aborted

    # The result

    def _write(self, error: str | None) -> None:
        result = self._result(error)
        try:
            written = self._store.write_once(result)
        except OSError as failure:
            logger.error("cannot write result.json: %s", failure)
            written = True  # nothing else will be written; say how the run ended
        if not written:
            return  # the other writer's result stands, and so does its state
        if result.status == "succeeded":
            self._state.set(state="finished", phase="idle")
        else:
            self._state.set(state="failed", phase="idle", error=result.error)

    def _result(self, error: str | None) -> Result:
        progress = self._progress
        info = progress.info
        spec = self._spec
        succeeded = error is None and progress.window_mono is not None
        samples_done = len(progress.timings)
        result = Result(
            run_id=self._config.run_id,
            agent_version=__version__,
            status="succeeded" if succeeded else "failed",
            error=error,
            workload=Workload(
                model_ref=spec.model_ref,
                kind=spec.kind,
                parameters=dict(spec.parameters),
                device=info.device,
                model_revision=info.model_revision,
                notes=list(info.notes),
                matrix_size=info.matrix_size,
            ),
            samples=self._config.samples,
            samples_completed=samples_done,
            started_at=self._started_at,
            finished_at=utc_iso(),
            cold_start=ColdStart(
                load_s=progress.load_s, first_call_s=progress.first_call_s
            ),
            warmup=Warmup(count=progress.warmup_count, duration_s=progress.warmup_s),
            telemetry=self._sampler.telemetry(),
            gpus=self._sampler.gpu_summaries(),
            simulated_metrics=self._sampler.simulated,
            environment=self._environment(),
        )
        if succeeded and progress.window_mono and progress.window_wall:
            self._add_measurements(result)
        return result

    def _add_measurements(self, result: Result) -> None:
        progress = self._progress
        info = progress.info
        assert progress.window_mono is not None and progress.window_wall is not None
        timings = progress.timings
        n = len(timings)
        window_s = progress.window_mono[1] - progress.window_mono[0]
        result.measure_window = MeasureWindow(
            start=utc_iso(progress.window_wall[0]),
            end=utc_iso(progress.window_wall[1]),
            duration_s=window_s,
        )
        result.latency_ms = summarize([t.latency_s * 1000.0 for t in timings])
        busy_s = sum(t.latency_s for t in timings)
        result.throughput = Throughput(
            samples_per_s=n / window_s if window_s > 0 else None,
            items_per_s=n * info.items_per_sample / window_s if window_s > 0 else None,
            tflops=(
                info.flops_per_sample * n / busy_s / 1e12
                if info.flops_per_sample and busy_s > 0
                else None
            ),
        )
        output_tokens = None
        if self._spec.kind == "hf_causal_lm":
            result.tokens = self._tokens(timings, window_s)
            output_tokens = result.tokens.total_output_tokens
        result.energy = self._energy(n, output_tokens)

    def _tokens(self, timings: list[SampleTiming], window_s: float) -> Tokens:
        ttft_ms: list[float] = []
        tpot_ms: list[float] = []
        itl_ms: list[float] = []
        for timing in timings:
            steps = timing.token_times_s or []
            if not steps:
                continue
            ttft_ms.append(steps[0] * 1000.0)
            if len(steps) >= 2:
                # Decode time per token after the first: (last - first) / (n - 1).
                tpot_ms.append((steps[-1] - steps[0]) / (len(steps) - 1) * 1000.0)
            itl_ms.extend(
                (later - earlier) * 1000.0
                for earlier, later in itertools.pairwise(steps)
            )
        total = sum(t.output_tokens for t in timings)
        return Tokens(
            prompt_tokens=self._spec.int_param("prompt_tokens"),
            new_tokens_per_sample=self._spec.int_param("new_tokens"),
            total_output_tokens=total,
            ttft_ms=summarize(ttft_ms),
            tpot_ms=summarize(tpot_ms),
            itl_ms=summarize(itl_ms),
            output_tokens_per_s=total / window_s if window_s > 0 else None,
        )

    def _energy(self, samples: int, output_tokens: int | None) -> Energy:
        window = self._progress.window_mono
        if window is None:
            return Energy()
        return self._sampler.energy(
            window, samples=samples, output_tokens=output_tokens
        )

    def _environment(self) -> dict[str, str | int | float | bool | None]:
        environment: dict[str, str | int | float | bool | None] = {}
        environment.update(software_manifest(self._environ))
        environment.update(self._sampler.manifest())
        environment["model_revision"] = self._progress.info.model_revision
        environment["seed"] = self._spec.parameters.get("seed")
        environment["sample_hz"] = self._config.sample_hz
        return environment


class _Aborted(Exception):
    """The run was stopped from outside; `abort` already wrote the result."""


def config_failure_result(
    config: AgentConfig, clock: RunClock, environ: Mapping[str, str]
) -> Result:
    """The result of a run that could not start because of its settings."""
    environment: dict[str, str | int | float | bool | None] = dict(
        software_manifest(environ)
    )
    spec = config.spec
    return Result(
        run_id=config.run_id,
        agent_version=__version__,
        status="failed",
        error=" ".join(config.errors),
        workload=(
            Workload(
                model_ref=spec.model_ref,
                kind=spec.kind,
                parameters=dict(spec.parameters),
            )
            if spec is not None
            else None
        ),
        samples=config.samples,
        started_at=utc_iso(clock.start_wall_s),
        finished_at=utc_iso(),
        environment=environment,
        telemetry=Telemetry(
            status="unavailable",
            reason="the run did not start: its settings are invalid",
            sample_hz=config.sample_hz,
        ),
    )
