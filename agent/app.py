"""The agent's life: serve at once, run the workload beside, stay up until told.

Order matters: the HTTP server answers /health before the model loads; the
sampler starts before the workload; after the run the agent keeps serving its
files until SIGTERM/SIGINT or its deadline, because RunPod restarts a pod whose
main process exits.
"""

from __future__ import annotations

import logging
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

from agent import __version__
from agent.clock import RunClock
from agent.config import AgentConfig
from agent.deadline import terminate_own_pod
from agent.results import ResultStore
from agent.runner import Runner, RunState, config_failure_result
from agent.schema import AgentStatus
from agent.server import CSV_NAME, RESULT_NAME, AgentHttp, AgentServer
from agent.telemetry import GpuSampler, write_header
from agent.workloads import create_workload

logger = logging.getLogger(__name__)

LOG_NAME = "agent.log"


def prepare_workspace(config: AgentConfig) -> Path:
    """The workspace folder, created if needed; a temporary one if it cannot be."""
    try:
        config.workspace.mkdir(parents=True, exist_ok=True)
        probe = config.workspace / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
        return config.workspace
    except OSError as error:
        fallback = Path(tempfile.mkdtemp(prefix="persephone-agent-"))
        config.errors.append(
            f"PERSEPHONE_WORKSPACE={str(config.workspace)!r} is not a writable "
            f"folder ({error.strerror or error}): set it to a folder the agent can "
            f"write (files went to {fallback} instead)."
        )
        return fallback


class _Stop:
    """Why the main thread stops waiting: a signal's name or 'deadline'."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only set a flag here; the main thread does the work.
        if self.reason is None:
            self.reason = signal.Signals(signum).name
        self.event.set()


def run_agent(
    config: AgentConfig,
    clock: RunClock,
    workspace: Path,
    environ: Mapping[str, str],
) -> int:
    """Run until a signal or the deadline; return the process exit status."""
    logger.info("persephone agent %s starting: %r", __version__, config)
    csv_path = workspace / CSV_NAME
    write_header(csv_path)
    store = ResultStore(workspace / RESULT_NAME)
    state = RunState(config.run_id, config.samples)
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop.on_signal)
    signal.signal(signal.SIGINT, stop.on_signal)
    if config.runpod_pod_id and not config.runpod_api_key:
        logger.warning(
            "RUNPOD_POD_ID is set but RUNPOD_API_KEY is not: the agent cannot "
            "terminate its own pod at the deadline"
        )

    def status() -> AgentStatus:
        try:
            size = csv_path.stat().st_size
        except OSError:
            size = 0
        return state.snapshot(
            timeseries_bytes=size, result_ready=store.written is not None
        )

    server = _start_server(config, workspace, status)
    if server is None:
        config.errors.append(
            f"the agent cannot listen on {config.host}:{config.port}: free the "
            "port or set PERSEPHONE_AGENT_PORT to another one."
        )

    runner: Runner | None = None
    if config.errors or config.spec is None:
        for error in config.errors:
            logger.error("%s", error)
        state.set(state="failed", phase="idle", error=" ".join(config.errors))
        _write_quietly(store, config, clock, environ)
    else:
        sampler = GpuSampler(
            csv_path,
            clock,
            sample_hz=config.sample_hz,
            simulate=config.simulate_gpu,
            cuda_visible_devices=environ.get("CUDA_VISIBLE_DEVICES"),
            seed=config.spec.int_param("seed"),
        )
        runner = Runner(
            config,
            config.spec,
            clock,
            store,
            state,
            environ,
            make_workload=lambda spec: create_workload(
                spec, mock_speed=config.mock_speed
            ),
            sampler=sampler,
        )
        threading.Thread(target=runner.run, name="runner", daemon=True).start()

    _wait(stop, clock.start_mono_s + config.deadline_s)
    logger.info("stopping: %s", stop.reason)
    if runner is not None:
        runner.abort(_abort_message(stop.reason, config.deadline_s))
    if stop.reason == "deadline":
        terminate_own_pod(
            config.runpod_pod_id, config.runpod_api_key, config.runpod_api_base_url
        )
    if server is not None:
        server.stop()
    logger.info("agent stopped")
    return 0


def _start_server(
    config: AgentConfig, workspace: Path, status: Callable[[], AgentStatus]
) -> AgentServer | None:
    try:
        server = AgentServer(
            config.host, config.port, AgentHttp(config.token, workspace, status)
        )
    except OSError as error:
        logger.error("cannot listen on %s:%d: %s", config.host, config.port, error)
        return None
    server.start()
    logger.info("serving on %s:%d", config.host, server.port)
    return server


def _write_quietly(
    store: ResultStore,
    config: AgentConfig,
    clock: RunClock,
    environ: Mapping[str, str],
) -> None:
    try:
        store.write_once(config_failure_result(config, clock, environ))
    except OSError as error:
        logger.error("cannot write result.json: %s", error)


def _wait(stop: _Stop, deadline_mono_s: float) -> None:
    while True:
        left_s = deadline_mono_s - time.monotonic()
        if left_s <= 0:
            if stop.reason is None:
                stop.reason = "deadline"
            return
        # Short waits keep signal handling prompt on every platform.
        if stop.event.wait(min(left_s, 1.0)):
            return


def _abort_message(reason: str | None, deadline_s: float) -> str:
    if reason == "deadline":
        return (
            f"the deadline of {deadline_s:g} s (PERSEPHONE_DEADLINE_S) passed before "
            "the workload finished"
        )
    return f"the agent was stopped by {reason} before the workload finished"
