"""The background supervisor: moves runs through their states, never leaks pods.

One thread scans the database for runs that need work and hands each to a
worker thread of its own. A run is claimed with a lease in the database, so two
dashboards sharing one database never drive the same run. Everything a worker
knows lives in the run's row, so a restarted dashboard resumes where the last
one stopped.

Money safety:
- the pod id is stored the moment the provider returns it;
- before creating a pod, and after a create that failed with a server error,
  the worker looks the pod up by its unique name and adopts it if it exists;
- every end state terminates the pod, and only the provider's confirmation
  sets `pod_terminated_at`; a failed terminate is retried until confirmed;
- a reaper terminates pods that carry this installation's prefix but belong to
  no live run.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import col, select

from agent.schema import AgentStatus
from app.agent_client import AgentAuthError, AgentClient, AgentError
from app.db import session_scope
from app.models import ACTIVE_STATES, FINAL_STATES, Run, RunEvent, RunState, utcnow
from app.providers.base import (
    NoCapacityError,
    PodInfo,
    PodSpec,
    Provider,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderServerError,
    ProviderValidationError,
)
from app.security import agent_token
from app.services import ingest
from app.services.runs import get_run
from app.settings import Settings

logger = logging.getLogger(__name__)

LEASE_S = 30.0
AGENT_PORT = 8000


@dataclass(frozen=True)
class Timing:
    """Pacing of the supervisor; tests shorten it."""

    poll_s: float = 0.25
    scan_s: float = 1.0
    reaper_s: float = 300.0
    reaper_retry_s: float = 30.0
    create_attempts: int = 4
    create_backoff_s: float = 2.0
    terminate_backoff_s: float = 1.0
    terminate_backoff_max_s: float = 30.0
    # How long a pod may take from create until its agent answers.
    start_timeout_mock_s: float = 60.0
    start_timeout_runpod_s: float = 900.0
    # A pod restarting this often is in a restart loop (its process keeps dying).
    max_restarts: int = 3
    # Agent silent this long while its pod exists: the run fails.
    agent_silence_s: float = 120.0


class RunFailure(Exception):
    """Ends a run as failed; the message becomes its error_message."""


class Supervisor:
    def __init__(
        self,
        provider_factory: Callable[[], Provider],
        settings: Settings,
        *,
        timing: Timing | None = None,
        owner: str | None = None,
    ) -> None:
        self._provider_factory = provider_factory
        self._settings = settings
        self.timing = timing or Timing()
        self.owner = owner or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._workers: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # The reaper runs at start, then every reaper_s (sooner after a failure).
        self._next_reap = 0.0

    # Lifecycle of the supervisor itself

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._loop, name="persephone-supervisor", daemon=True
        )
        self._thread.start()
        logger.info("supervisor %s started", self.owner)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop driving runs; pods keep running and are resumed after a restart."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.join(timeout_s)
        self._release_leases()
        logger.info("supervisor %s stopped", self.owner)

    def wake(self) -> None:
        self._wake.set()

    @property
    def provider(self) -> Provider:
        return self._provider_factory()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan_once()
                if time.monotonic() >= self._next_reap:
                    self._next_reap = time.monotonic() + self.timing.reaper_s
                    self.reap_once()
            except Exception:
                # The loop must outlive any single failure; the next scan retries.
                logger.exception("supervisor scan failed")
            self._wake.wait(self.timing.scan_s)
            self._wake.clear()

    # Finding work

    def scan_once(self) -> None:
        """Claim every run that needs driving and start a worker for it."""
        for run_id in self._runs_needing_work():
            with self._lock:
                busy = run_id in self._workers and self._workers[run_id].is_alive()
            if busy or not self._claim(run_id):
                continue
            worker = threading.Thread(
                target=self._drive, args=(run_id,), name=f"run-{run_id}", daemon=True
            )
            with self._lock:
                self._workers[run_id] = worker
            worker.start()

    def _runs_needing_work(self) -> list[str]:
        active = [state.value for state in ACTIVE_STATES]
        query = select(Run.id).where(
            or_(
                col(Run.state).in_(active),
                (col(Run.pod_id).is_not(None)) & (col(Run.pod_terminated_at).is_(None)),
            )
        )
        with session_scope() as session:
            return list(session.exec(query))

    def _claim(self, run_id: str) -> bool:
        now = utcnow()
        statement = (
            update(Run)
            .where(
                col(Run.id) == run_id,
                or_(
                    col(Run.lease_owner).is_(None),
                    col(Run.lease_owner) == self.owner,
                    col(Run.lease_until) < now,
                ),
            )
            .values(
                lease_owner=self.owner, lease_until=now + timedelta(seconds=LEASE_S)
            )
        )
        with session_scope() as session:
            result = session.execute(statement)
            return getattr(result, "rowcount", 0) == 1

    def _release_leases(self) -> None:
        statement = (
            update(Run)
            .where(col(Run.lease_owner) == self.owner)
            .values(lease_owner=None, lease_until=None)
        )
        with session_scope() as session:
            session.execute(statement)

    # Driving one run

    def _drive(self, run_id: str) -> None:
        worker = _RunWorker(self, run_id)
        try:
            worker.run()
        except Exception:
            logger.exception("worker for run %s stopped on an error", run_id)
        finally:
            with self._lock:
                self._workers.pop(run_id, None)

    def is_stopping(self) -> bool:
        return self._stop.is_set()

    def sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    # The reaper

    def reap_once(self) -> list[str]:
        """Terminate pods with this installation's prefix that no live run owns."""
        prefix = f"{self._settings.pod_name_prefix}-"
        try:
            pods = self.provider.find_pods(prefix)
        except ProviderError as error:
            logger.warning("reaper could not list pods: %s", error)
            return []
        reaped = []
        for pod in pods:
            if not pod.name.startswith(prefix) or self._pod_is_owned(pod):
                continue
            try:
                self.provider.terminate_pod(pod.pod_id)
            except ProviderError as error:
                logger.warning("reaper could not terminate %s: %s", pod.pod_id, error)
                # An orphan bills until it is gone: try again soon, not in minutes.
                self._next_reap = min(
                    self._next_reap, time.monotonic() + self.timing.reaper_retry_s
                )
                continue
            logger.warning("reaper terminated orphan pod %s (%s)", pod.pod_id, pod.name)
            reaped.append(pod.pod_id)
        return reaped

    def _pod_is_owned(self, pod: PodInfo) -> bool:
        """A pod is owned while its run is live or still has it to terminate."""
        with session_scope() as session:
            run = session.exec(select(Run).where(Run.pod_name == pod.name)).first()
        if run is None:
            return False
        if run.is_active:
            return run.pod_id in (None, pod.pod_id)
        return run.pod_id == pod.pod_id and run.pod_terminated_at is None


class _RunWorker:
    """Drives one run until it is final and its pod confirmed terminated."""

    def __init__(self, supervisor: Supervisor, run_id: str) -> None:
        self.supervisor = supervisor
        self.timing = supervisor.timing
        self.run_id = run_id
        self._lease_renewed = time.monotonic()
        self._last_agent_contact = time.monotonic()
        self._agent: AgentClient | None = None

    @property
    def provider(self) -> Provider:
        return self.supervisor.provider

    def run(self) -> None:
        try:
            while not self.supervisor.is_stopping():
                run = get_run(self.run_id)
                if run.run_state in FINAL_STATES:
                    self._terminate_until_confirmed(run)
                    return
                try:
                    self._step(run)
                except RunFailure as failure:
                    self._finish(RunState.FAILED, str(failure))
                    continue
                except _TransientError as error:
                    logger.warning("run %s: provider unreachable: %s", run.id, error)
                self._renew_lease()
                self.supervisor.sleep(self.timing.poll_s)
        finally:
            if self._agent is not None:
                self._agent.close()

    def _step(self, run: Run) -> None:
        # A cancel that arrives while collecting would only throw away finished
        # work: the collection (a second or two) completes first.
        if run.cancel_requested and run.run_state != RunState.COLLECTING:
            self._finish(RunState.CANCELLED, "Cancelled by the user.")
            return
        if run.deadline_at is not None and utcnow() >= run.deadline_at:
            timeout = self.supervisor._settings.request_timeout_s
            self._finish(
                RunState.TIMED_OUT,
                f"No result within PERSEPHONE_REQUEST_TIMEOUT_S={timeout:g} s; "
                f"the run was stopped and its pod is being terminated.",
            )
            return
        match run.run_state:
            case RunState.QUEUED:
                self._transition(RunState.PROVISIONING)
            case RunState.PROVISIONING:
                self._provision(run)
            case RunState.STARTING:
                self._wait_for_agent(run)
            case RunState.RUNNING:
                self._follow(run)
            case RunState.COLLECTING:
                self._collect(run)

    # Provisioning

    def _provision(self, run: Run) -> None:
        if run.pod_id is None:
            existing = self._find_pod_by_name(run)
            if existing is not None:
                self._store_pod(existing, adopted=True)
            else:
                self._create_pod(run)
        self._transition(RunState.STARTING)

    def _find_pod_by_name(self, run: Run) -> PodInfo | None:
        try:
            pods = self.provider.find_pods(run.pod_name)
        except ProviderError as error:
            # Unknown is not "none": creating now could make a second pod.
            raise _TransientError(f"could not look up pods: {error}") from None
        return next((pod for pod in pods if pod.name == run.pod_name), None)

    def _create_pod(self, run: Run) -> None:
        spec = PodSpec(
            name=run.pod_name,
            provider_gpu_id=run.provider_gpu_id,
            tier=run.cloud_tier,  # type: ignore[arg-type]
            image=self.supervisor._settings.image_agent,
            env=self._agent_env(run),
            port=AGENT_PORT,
            simulated_speed=run.simulated_speed,
        )
        for attempt in range(1, self.timing.create_attempts + 1):
            # Billing starts at creation; the local clock before the call never
            # undercounts it, and both ends of the billed time use this clock.
            asked_at = utcnow()
            try:
                pod = self.provider.create_pod(spec)
            except NoCapacityError as error:
                raise RunFailure(
                    f"No {run.gpu_name} is available in the {run.cloud_tier} cloud "
                    f"right now ({error}). Try another GPU type or tier, or launch "
                    f"again later."
                ) from None
            except ProviderAuthError as error:
                raise RunFailure(
                    f"The provider refused the credentials: {error} Check "
                    f"RUNPOD_API_KEY and restart the dashboard."
                ) from None
            except ProviderValidationError as error:
                raise RunFailure(
                    f"The provider rejected the pod for {run.gpu_name}: {error}"
                ) from None
            except ProviderRateLimited as error:
                wait_s = error.retry_after_s or self.timing.create_backoff_s * attempt
                self._event(run.state, f"rate limited; retrying in {wait_s:g} s")
                self.supervisor.sleep(wait_s)
            except ProviderServerError as error:
                # The create may still have made a pod: look before retrying.
                self._event(run.state, f"create failed ({error}); checking for pod")
                self.supervisor.sleep(self.timing.create_backoff_s * attempt)
            except ProviderError as error:
                raise RunFailure(f"Creating the pod failed: {error}") from None
            else:
                self._store_pod(pod, adopted=False, created_at=asked_at)
                return
            if self.supervisor.is_stopping():
                raise _TransientError("stopping before the pod was created")
            existing = self._find_pod_by_name(run)
            if existing is not None:
                self._store_pod(existing, adopted=True)
                return
        raise RunFailure(
            f"Creating a {run.gpu_name} pod failed {self.timing.create_attempts} "
            f"times; the provider may be having trouble. Try again later."
        )

    def _agent_env(self, run: Run) -> dict[str, str]:
        return {
            "MODEL_REF": run.model_ref,
            "SAMPLES": str(run.samples),
            "PERSEPHONE_RUN_ID": run.id,
            "PERSEPHONE_AGENT_TOKEN": agent_token(run.id),
            "PERSEPHONE_AGENT_PORT": str(AGENT_PORT),
            "PERSEPHONE_SAMPLE_HZ": f"{self.supervisor._settings.sample_hz:g}",
            "PERSEPHONE_PARAMS": json.dumps(run.parameters, sort_keys=True),
            # The agent stops its own pod a little after the dashboard would.
            "PERSEPHONE_DEADLINE_S": str(
                int(self.supervisor._settings.request_timeout_s) + 120
            ),
        }

    def _store_pod(
        self, pod: PodInfo, *, adopted: bool, created_at: datetime | None = None
    ) -> None:
        with session_scope() as session:
            run = session.get(Run, self.run_id)
            assert run is not None
            run.pod_id = pod.pod_id
            run.pod_created_at = created_at or pod.created_at or utcnow()
            run.updated_at = utcnow()
            session.add(run)
            verb = "adopted existing" if adopted else "created"
            session.add(
                RunEvent(
                    run_id=self.run_id,
                    state=run.state,
                    message=f"{verb} pod {pod.pod_id}",
                )
            )

    # Starting

    def _wait_for_agent(self, run: Run) -> None:
        assert run.pod_id is not None
        pod = self._get_pod(run)
        if pod.restarts > self.timing.max_restarts:
            raise RunFailure(
                f"Pod {pod.pod_id} restarted {pod.restarts} times without its agent "
                f"answering; the image {self.supervisor._settings.image_agent!r} may "
                f"be crashing at start."
            )
        if pod.status in ("EXITED", "ERROR"):
            raise RunFailure(
                f"The agent in pod {pod.pod_id} exited before it answered; "
                f"see the pod's log."
            )
        if pod.agent_url is not None and self._client(pod.agent_url).is_ready():
            self._transition(RunState.RUNNING, started=True)
            self._last_agent_contact = time.monotonic()
            return
        waited_s = (utcnow() - (run.pod_created_at or utcnow())).total_seconds()
        limit_s = (
            self.timing.start_timeout_mock_s
            if run.provider == "mock"
            else self.timing.start_timeout_runpod_s
        )
        if waited_s > limit_s:
            raise RunFailure(
                f"The agent in pod {pod.pod_id} did not answer within {limit_s:g} s "
                f"of the pod's creation (pod status {pod.status})."
            )

    def _get_pod(self, run: Run) -> PodInfo:
        assert run.pod_id is not None
        try:
            pod = self.provider.get_pod(run.pod_id)
        except ProviderError as error:
            raise _TransientError(str(error)) from None
        if pod is None:
            raise RunFailure(
                f"Pod {run.pod_id} vanished: the provider no longer knows it, so "
                f"its results are lost."
            )
        return pod

    def _client(self, url: str) -> AgentClient:
        if self._agent is None:
            self._agent = AgentClient(url, agent_token(self.run_id))
        return self._agent

    # Running

    def _follow(self, run: Run) -> None:
        try:
            status = self._agent_for(run).status()
            self._ingest_timeseries(run)
        except (AgentError, _TransientError) as error:
            self._agent_unreachable(
                run, error if isinstance(error, AgentError) else str(error)
            )
            return
        self._last_agent_contact = time.monotonic()
        self._record_progress(status)
        if status.result_ready or status.state in ("finished", "failed"):
            self._transition(RunState.COLLECTING)

    def _agent_for(self, run: Run) -> AgentClient:
        if self._agent is None:
            pod = self._get_pod(run)
            if pod.agent_url is None:
                raise _TransientError(f"pod {pod.pod_id} has no address yet")
            self._client(pod.agent_url)
        assert self._agent is not None
        return self._agent

    def _agent_unreachable(self, run: Run, error: AgentError | str) -> None:
        if isinstance(error, AgentAuthError):
            raise RunFailure(str(error))
        reason = str(error)
        # The pod may be gone (then the run fails) or the network blinked.
        self._get_pod(run)
        silent_s = time.monotonic() - self._last_agent_contact
        if silent_s > self.timing.agent_silence_s:
            raise RunFailure(
                f"The agent in pod {run.pod_id} stopped answering for "
                f"{silent_s:.0f} s ({reason})."
            )
        if self._agent is not None:
            # Reconnect next time: the pod's address may have changed.
            self._agent.close()
            self._agent = None

    def _ingest_timeseries(self, run: Run) -> bool:
        """Pull the next chunk of the time series; True if anything arrived."""
        offset = get_run(self.run_id).timeseries_bytes
        data, _ = self._agent_for(run).timeseries_chunk(offset)
        if not data:
            return False
        try:
            ingest.ingest_timeseries_chunk(self.run_id, offset, data)
        except ingest.IngestError as error:
            raise RunFailure(
                f"The agent's time series is unreadable: {error}"
            ) from None
        return True

    def _record_progress(self, status: AgentStatus) -> None:
        with session_scope() as session:
            run = session.get(Run, self.run_id)
            assert run is not None
            if (run.agent_state, run.samples_done) != (
                status.state,
                status.samples_done,
            ):
                run.agent_state = status.state
                run.samples_done = status.samples_done
                run.updated_at = utcnow()
                session.add(run)

    # Collecting

    def _collect(self, run: Run) -> None:
        agent = self._agent_for(run)
        try:
            while self._ingest_timeseries(run):
                pass
            raw = agent.result_json()
        except AgentError as error:
            self._agent_unreachable(run, error)
            return
        if raw is None:
            return  # The agent says it is done but is still writing the file.
        try:
            result = ingest.store_result(self.run_id, raw)
        except ingest.IngestError as error:
            raise RunFailure(str(error)) from None
        if result.status == "succeeded":
            self._finish(RunState.SUCCEEDED, None)
        else:
            self._finish(RunState.FAILED, result.error or "The workload failed.")

    # Ending

    def _finish(self, state: RunState, message: str | None) -> None:
        with session_scope() as session:
            run = session.get(Run, self.run_id)
            assert run is not None
            if run.run_state in FINAL_STATES:
                return
            now = utcnow()
            run.state = state
            run.error_message = message if state != RunState.SUCCEEDED else None
            run.finished_at = now
            run.updated_at = now
            session.add(run)
            session.add(
                RunEvent(run_id=self.run_id, at=now, state=state, message=message)
            )
        logger.info(
            "run %s %s%s", self.run_id, state, f": {message}" if message else ""
        )

    def _terminate_until_confirmed(self, run: Run) -> None:
        if run.pod_id is None or run.pod_terminated_at is not None:
            return
        backoff_s = self.timing.terminate_backoff_s
        while not self.supervisor.is_stopping():
            try:
                self.provider.terminate_pod(run.pod_id)
            except ProviderError as error:
                self._terminate_failed(run, str(error))
                self.supervisor.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self.timing.terminate_backoff_max_s)
                self._renew_lease()
                continue
            self._terminate_confirmed(run)
            return

    def _terminate_failed(self, run: Run, reason: str) -> None:
        logger.warning(
            "run %s: terminating pod %s failed: %s", run.id, run.pod_id, reason
        )
        with session_scope() as session:
            row = session.get(Run, self.run_id)
            assert row is not None
            row.terminate_attempts += 1
            row.terminate_error = reason
            row.updated_at = utcnow()
            session.add(row)
            session.add(
                RunEvent(
                    run_id=self.run_id,
                    state=row.state,
                    message=f"terminating pod {run.pod_id} failed ({reason}); retrying",
                )
            )

    def _terminate_confirmed(self, run: Run) -> None:
        now = utcnow()
        with session_scope() as session:
            row = session.get(Run, self.run_id)
            assert row is not None
            row.terminate_attempts += 1
            row.terminate_error = None
            row.pod_terminated_at = now
            row.lease_owner = None
            row.lease_until = None
            row.updated_at = now
            session.add(row)
            session.add(
                RunEvent(
                    run_id=self.run_id,
                    at=now,
                    state=row.state,
                    message=f"pod {run.pod_id} terminated (confirmed by the provider)",
                )
            )
        logger.info("run %s: pod %s terminated", run.id, run.pod_id)

    # Bookkeeping

    def _transition(self, state: RunState, *, started: bool = False) -> None:
        now = utcnow()
        with session_scope() as session:
            run = session.get(Run, self.run_id)
            assert run is not None
            run.state = state
            run.updated_at = now
            if started:
                run.started_at = now
            session.add(run)
            session.add(RunEvent(run_id=self.run_id, at=now, state=state))
        logger.info("run %s %s", self.run_id, state)

    def _event(self, state: str, message: str) -> None:
        with session_scope() as session:
            session.add(RunEvent(run_id=self.run_id, state=state, message=message))

    def _renew_lease(self) -> None:
        if time.monotonic() - self._lease_renewed < LEASE_S / 3:
            return
        self._lease_renewed = time.monotonic()
        until = utcnow() + timedelta(seconds=LEASE_S)
        with session_scope() as session:
            session.execute(
                update(Run)
                .where(col(Run.id) == self.run_id)
                .values(lease_owner=self.supervisor.owner, lease_until=until)
            )


class _TransientError(Exception):
    """The provider could not be asked right now; the next poll tries again."""
