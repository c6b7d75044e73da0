"""The fake's world: switches, pods with a lifecycle, and their agent processes.

A pod goes PROVISIONING → STARTING → RUNNING on a clock. Its container starts
when it turns RUNNING: that is when the agent process is spawned, and a little
later `runtime` (uptime and ports) appears, as on RunPod where a RUNNING pod
can have `runtime: null` for a while. A container whose process exits is
restarted, again and again, as RunPod does.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

TERMINATE_GRACE_S = 3.0
TICK_S = 0.05


class Switches(BaseModel):
    """Misbehaviours to switch on, at start (CLI), from Python or over HTTP."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # Creates fail with RunPod's no-capacity wording (400): all, or these ids.
    no_capacity: bool = False
    no_capacity_gpu_ids: list[str] = Field(default_factory=list)
    # The next N API calls answer 429 with this Retry-After (whole seconds).
    rate_limit_next: int = Field(default=0, ge=0)
    retry_after_s: int = Field(default=1, ge=0)
    # The next N creates make the pod, then answer 500 (a known RunPod bug).
    fail_after_create_next: int = Field(default=0, ge=0)
    # The next N API calls answer 500; `outage_after_create` arms this after
    # the next successful create, so the very next call fails.
    server_errors_next: int = Field(default=0, ge=0)
    outage_after_create: int = Field(default=0, ge=0)
    # 5xx bodies are HTML pages (as from a proxy in front of the API).
    html_errors: bool = False
    # Lifecycle pacing, captured by each pod when it is created.
    provision_s: float = Field(default=0.2, ge=0)
    slow_start_s: float = Field(default=0.0, ge=0)
    runtime_delay_s: float = Field(default=0.2, ge=0)
    # The container keeps restarting (uptime resets); its agent never answers.
    restart_loop: bool = False
    restart_period_s: float = Field(default=2.0, gt=0)
    # The next N DELETEs answer 500 and leave the pod running.
    fail_terminate_next: int = Field(default=0, ge=0)
    # Pods disappear this long after their container started.
    vanish_after_s: float | None = Field(default=None, ge=0)
    # The proxy answers 200 with an HTML holding page until the agent is up.
    holding_page: bool = False


def new_pod_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(14))


def runpod_time(moment: datetime) -> str:
    """RunPod's Go-style timestamp: "2026-08-20 06:16:19.436 +0000 UTC"."""
    moment = moment.astimezone(UTC)
    return (
        moment.strftime("%Y-%m-%d %H:%M:%S.")
        + f"{moment.microsecond // 1000:03d} +0000 UTC"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FakePod:
    id: str
    name: str
    image: str
    gpu_id: str
    gpu_count: int
    cloud: str
    ports: list[str]
    env: dict[str, str]
    disk_gb: int
    cost_per_hr: float
    api_key: str
    created_at: datetime
    created_mono: float
    provision_s: float
    slow_start_s: float
    runtime_delay_s: float
    restart_loop: bool
    restart_period_s: float
    vanish_after_s: float | None
    directory: Path
    status: str = "PROVISIONING"
    started_at: datetime | None = None
    first_start_mono: float | None = None
    container_start_mono: float | None = None
    restarts: int = 0
    agent_port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    public_port: int = field(default_factory=lambda: 40000 + secrets.randbelow(20000))
    internal_ip: str = field(
        default_factory=lambda: (
            f"100.65.{secrets.randbelow(256)}.{secrets.randbelow(256)}"
        )
    )

    def http_ports(self) -> list[int]:
        ports = []
        for entry in self.ports:
            number, _, protocol = entry.partition("/")
            if protocol == "http" and number.isdigit():
                ports.append(int(number))
        return ports

    def uptime_s(self, now: float) -> int | None:
        """Whole seconds since the container (re)started, once runtime exists."""
        if self.status != "RUNNING" or self.first_start_mono is None:
            return None
        if now < self.first_start_mono + self.runtime_delay_s:
            return None
        assert self.container_start_mono is not None
        return int(now - self.container_start_mono)


class World:
    """Pods, counters and switches behind one lock; processes handled outside it."""

    def __init__(
        self,
        *,
        api_key: str,
        api_base_url: str,
        agent_command: Sequence[str],
        project_root: Path,
        switches: Switches | None = None,
    ) -> None:
        self.api_key = api_key
        self.api_base_url = api_base_url
        self.agent_command = list(agent_command)
        self.project_root = project_root
        self.switches = switches or Switches()
        self.lock = threading.RLock()
        self.pods: dict[str, FakePod] = {}
        # Every API request received, as "METHOD /route", and DELETEs per pod.
        self.calls: Counter[str] = Counter()
        self.deletes: Counter[str] = Counter()
        self.create_bodies: list[bytes] = []
        self.created_ids: list[str] = []
        self.terminated_ids: list[str] = []
        self.vanished_ids: list[str] = []
        self._base_dir = Path(tempfile.mkdtemp(prefix="fake-runpod-"))
        self._stop = threading.Event()
        self._ticker = threading.Thread(
            target=self._tick_forever, name="fake-runpod-ticker", daemon=True
        )

    def start(self) -> None:
        self._ticker.start()

    def close(self) -> None:
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(5)
        with self.lock:
            pods = list(self.pods.values())
            self.pods.clear()
        for pod in pods:
            self._kill(pod)
        shutil.rmtree(self._base_dir, ignore_errors=True)

    # Switch handling (under the lock, so handlers and tests do not race)

    def take(self, name: str) -> bool:
        """Consume one unit of a countdown switch; True if it was armed."""
        with self.lock:
            left = getattr(self.switches, name)
            if left <= 0:
                return False
            setattr(self.switches, name, left - 1)
            return True

    def update_switches(self, changes: dict[str, object]) -> Switches:
        with self.lock:
            merged = {**self.switches.model_dump(), **changes}
            self.switches = Switches.model_validate(merged)
            return self.switches

    # Pods

    def create(
        self,
        *,
        name: str,
        image: str,
        gpu_id: str,
        gpu_count: int,
        cloud: str,
        ports: list[str],
        env: dict[str, str],
        disk_gb: int,
        cost_per_hr: float,
    ) -> FakePod:
        with self.lock:
            switches = self.switches
            pod_id = new_pod_id()
            directory = self._base_dir / pod_id
            (directory / "workspace").mkdir(parents=True)
            pod = FakePod(
                id=pod_id,
                name=name,
                image=image,
                gpu_id=gpu_id,
                gpu_count=gpu_count,
                cloud=cloud,
                ports=ports,
                env=env,
                disk_gb=disk_gb,
                cost_per_hr=cost_per_hr,
                api_key=f"rpa_pod_{secrets.token_hex(16)}",
                created_at=datetime.now(UTC),
                created_mono=time.monotonic(),
                provision_s=switches.provision_s,
                slow_start_s=switches.slow_start_s,
                runtime_delay_s=switches.runtime_delay_s,
                restart_loop=switches.restart_loop,
                restart_period_s=switches.restart_period_s,
                vanish_after_s=switches.vanish_after_s,
                directory=directory,
            )
            self.pods[pod_id] = pod
            self.created_ids.append(pod_id)
            return pod

    def get(self, pod_id: str) -> FakePod | None:
        with self.lock:
            pod = self.pods.get(pod_id)
            if pod is not None:
                self._advance(pod, time.monotonic())
            return self.pods.get(pod_id)

    def pod_for_key(self, key: str) -> FakePod | None:
        with self.lock:
            return next((p for p in self.pods.values() if p.api_key == key), None)

    def remove(self, pod_id: str, *, vanished: bool = False, wait: bool = True) -> bool:
        """Take the pod away and kill its container; False if it did not exist.

        With `wait`, return only once the agent process is dead; otherwise kill
        it in the background (for a pod that asked to delete itself).
        """
        with self.lock:
            pod = self.pods.pop(pod_id, None)
            if pod is None:
                return False
            (self.vanished_ids if vanished else self.terminated_ids).append(pod_id)
        if wait:
            self._dispose(pod)
        else:
            threading.Thread(target=self._dispose, args=(pod,), daemon=True).start()
        logger.info("fake pod %s %s", pod_id, "vanished" if vanished else "terminated")
        return True

    def _dispose(self, pod: FakePod) -> None:
        self._kill(pod)
        shutil.rmtree(pod.directory, ignore_errors=True)

    # The clock

    def _tick_forever(self) -> None:
        while not self._stop.wait(TICK_S):
            now = time.monotonic()
            vanishing = []
            with self.lock:
                for pod in list(self.pods.values()):
                    if self._advance(pod, now):
                        vanishing.append(pod.id)
            for pod_id in vanishing:
                self.remove(pod_id, vanished=True)

    def _advance(self, pod: FakePod, now: float) -> bool:
        """Move the pod along its lifecycle; True when it should vanish now."""
        if pod.status == "PROVISIONING" and now >= pod.created_mono + pod.provision_s:
            pod.status = "STARTING"
        start_at = pod.created_mono + pod.provision_s + pod.slow_start_s
        if pod.status == "STARTING" and now >= start_at:
            pod.status = "RUNNING"
            pod.started_at = datetime.now(UTC)
            pod.first_start_mono = now
            self._start_container(pod, now)
        if pod.status != "RUNNING":
            return False
        assert pod.container_start_mono is not None and pod.first_start_mono is not None
        if pod.restart_loop:
            if now - pod.container_start_mono >= pod.restart_period_s:
                pod.restarts += 1
                pod.container_start_mono = now
        elif pod.process is not None and pod.process.poll() is not None:
            # The main process exited: RunPod restarts the container.
            logger.info(
                "fake pod %s: agent exited with %s; restarting",
                pod.id,
                pod.process.returncode,
            )
            pod.restarts += 1
            self._start_container(pod, now)
        return (
            pod.vanish_after_s is not None
            and now >= pod.first_start_mono + pod.vanish_after_s
        )

    def _start_container(self, pod: FakePod, now: float) -> None:
        pod.container_start_mono = now
        if pod.restart_loop:
            return  # Its process dies at once: nothing ever listens.
        pod.agent_port = free_port()
        env = {
            **_inherited_env(),
            **pod.env,
            # What RunPod injects into every pod.
            "RUNPOD_POD_ID": pod.id,
            "RUNPOD_API_KEY": pod.api_key,
            "RUNPOD_DC_ID": "US-TX-3",
            "RUNPOD_GPU_COUNT": str(pod.gpu_count),
            "RUNPOD_POD_HOSTNAME": f"{pod.id}-64410065",
            # Where this fake differs from a pod: loopback, a free port, a
            # temporary workspace, and no GPU to read.
            "RUNPOD_API_BASE_URL": self.api_base_url,
            "PERSEPHONE_AGENT_HOST": "127.0.0.1",
            "PERSEPHONE_AGENT_PORT": str(pod.agent_port),
            "PERSEPHONE_WORKSPACE": str(pod.directory / "workspace"),
            "PERSEPHONE_SIMULATE_GPU": "1",
        }
        with (pod.directory / "agent.log").open("ab") as log:
            pod.process = subprocess.Popen(
                self.agent_command,
                cwd=self.project_root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: terminate kills the agent and children.
                start_new_session=True,
            )

    @staticmethod
    def _kill(pod: FakePod) -> None:
        process = pod.process
        if process is None or process.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(TERMINATE_GRACE_S)
                return
            except subprocess.TimeoutExpired:
                continue


def _inherited_env() -> dict[str, str]:
    """Paths an agent needs from this process; never a secret."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "HF_HOME")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    # Fake pods never reach the internet.
    env["HF_HUB_OFFLINE"] = "1"
    return env
