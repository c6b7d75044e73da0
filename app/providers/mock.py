"""The mock provider: real RunPod GPU ids with plausible prices, local pods.

A mock pod is a real agent process on loopback with its own workspace, reached
over HTTP exactly as a RunPod pod is reached through RunPod's proxy, and
terminated for real. Pods are recorded in `<data>/pods/<pod id>/pod.json`, so a
restarted dashboard finds (and can terminate) the pods it made before.

Prices and speed factors are illustrative, not quotes; the catalog says so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.providers.base import (
    Availability,
    GpuOffer,
    NoCapacityError,
    PodInfo,
    PodSpec,
    ProviderError,
    ProviderValidationError,
    slugify,
)
from app.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

TERMINATE_GRACE_S = 5.0


@dataclass(frozen=True)
class _MockGpu:
    gpu_id: str
    display_name: str
    memory_gb: int
    secure: float | None
    community: float | None
    availability: Availability
    speed: float


# Real RunPod GPU ids (sent byte for byte in runpod mode); prices in USD per
# GPU-hour are plausible figures for a demo, and `speed` scales mock-v0's
# simulated latencies relative to an L4.
MOCK_GPUS: tuple[_MockGpu, ...] = (
    _MockGpu("NVIDIA RTX A4000", "RTX A4000", 16, 0.25, 0.17, "high", 0.8),
    _MockGpu("NVIDIA L4", "L4", 24, 0.43, None, "high", 1.0),
    _MockGpu("NVIDIA RTX A5000", "RTX A5000", 24, 0.27, 0.16, "medium", 1.1),
    _MockGpu("NVIDIA GeForce RTX 3090", "RTX 3090", 24, 0.43, 0.22, "high", 1.3),
    _MockGpu("NVIDIA GeForce RTX 4090", "RTX 4090", 24, 0.69, 0.34, "high", 2.2),
    _MockGpu("NVIDIA A40", "A40", 48, 0.40, None, "low", 1.3),
    _MockGpu("NVIDIA RTX A6000", "RTX A6000", 48, 0.49, 0.33, "medium", 1.4),
    _MockGpu(
        "NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada", 48, 0.77, 0.74, "medium", 2.5
    ),
    _MockGpu("NVIDIA L40S", "L40S", 48, 0.86, 0.79, "medium", 2.6),
    _MockGpu("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, 1.64, 1.19, "medium", 3.0),
    _MockGpu("NVIDIA A100-SXM4-80GB", "A100 SXM", 80, 1.74, 1.39, "low", 3.3),
    _MockGpu("NVIDIA H100 PCIe", "H100 PCIe", 80, 2.39, 1.99, "low", 4.6),
    _MockGpu("NVIDIA H100 80GB HBM3", "H100 SXM", 80, 2.69, None, "medium", 5.5),
    _MockGpu("NVIDIA H200", "H200 SXM", 141, 3.59, None, "low", 6.2),
    # Never has capacity, so the failed path can be seen from the dashboard.
    _MockGpu("NVIDIA B200", "B200", 180, 5.99, None, "none", 9.0),
)

NO_CAPACITY_MESSAGE = (
    "There are no longer any instances available with the requested "
    "specifications. Please refresh and try again."
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _new_pod_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(14))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    status_file = Path(f"/proc/{pid}/status")
    if status_file.exists():
        # A zombie has exited; it only waits for its parent to collect it.
        return "\nState:\tZ" not in status_file.read_text()
    return True


class MockProvider:
    name = "mock"

    def __init__(self, data_dir: Path, *, simulate_gpu: bool | None = None) -> None:
        self._pods_dir = data_dir / "pods"
        self._pods_dir.mkdir(parents=True, exist_ok=True)
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._read_at = datetime.now(UTC)
        # Simulate readings only where NVML has no GPU to read.
        self._simulate_gpu = simulate_gpu

    # Catalog

    def list_offers(self) -> list[GpuOffer]:
        return [
            GpuOffer(
                slug=slugify(gpu.display_name, gpu.memory_gb),
                provider_gpu_id=gpu.gpu_id,
                display_name=gpu.display_name,
                memory_gb=gpu.memory_gb,
                price_secure_per_hour=gpu.secure,
                price_community_per_hour=gpu.community,
                availability=gpu.availability,
                read_at=self._read_at,
                simulated_speed=gpu.speed,
            )
            for gpu in MOCK_GPUS
        ]

    # Pods

    def create_pod(self, spec: PodSpec) -> PodInfo:
        gpu = next((g for g in MOCK_GPUS if g.gpu_id == spec.provider_gpu_id), None)
        if gpu is None:
            raise ProviderValidationError(
                f"GPU type id {spec.provider_gpu_id!r} is not in the mock catalog.",
                field_name="gpu.id",
            )
        if gpu.availability == "none":
            raise NoCapacityError(NO_CAPACITY_MESSAGE)

        pod_id = _new_pod_id()
        pod_dir = self._pods_dir / pod_id
        workspace = pod_dir / "workspace"
        workspace.mkdir(parents=True)
        port = _free_port()
        env = {
            **_inherited_env(),
            **spec.env,
            "PERSEPHONE_AGENT_HOST": "127.0.0.1",
            "PERSEPHONE_AGENT_PORT": str(port),
            "PERSEPHONE_WORKSPACE": str(workspace),
            "PERSEPHONE_MOCK_SPEED": str(gpu.speed),
            "PERSEPHONE_SIMULATE_GPU": "1" if self._should_simulate() else "0",
        }
        created_at = datetime.now(UTC)
        with (pod_dir / "agent.out").open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "agent"],
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own process group, so terminate ends the agent and children.
                start_new_session=True,
            )
        record = {
            "pod_id": pod_id,
            "name": spec.name,
            "pid": process.pid,
            "port": port,
            "gpu_id": gpu.gpu_id,
            "tier": spec.tier,
            "created_at": created_at.isoformat(),
        }
        (pod_dir / "pod.json").write_text(json.dumps(record))
        with self._lock:
            self._children[pod_id] = process
        logger.info("mock pod %s created (pid %d, port %d)", pod_id, process.pid, port)
        return self._info(record)

    def get_pod(self, pod_id: str) -> PodInfo | None:
        record = self._record(pod_id)
        if record is None:
            return None
        return self._info(record)

    def find_pods(self, name_prefix: str) -> list[PodInfo]:
        pods = []
        for path in sorted(self._pods_dir.glob("*/pod.json")):
            record = self._record(path.parent.name)
            if record is not None and str(record["name"]).startswith(name_prefix):
                pods.append(self._info(record))
        return pods

    def terminate_pod(self, pod_id: str) -> None:
        record = self._record(pod_id)
        if record is None:
            return
        pid = int(record["pid"])
        self._signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + TERMINATE_GRACE_S
        while self._alive(pod_id, pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._alive(pod_id, pid):
            self._signal_group(pid, signal.SIGKILL)
            time.sleep(0.2)
        if self._alive(pod_id, pid):
            raise ProviderError(f"Mock pod {pod_id} (pid {pid}) did not exit.")
        shutil.rmtree(self._pods_dir / pod_id, ignore_errors=True)
        with self._lock:
            self._children.pop(pod_id, None)
        logger.info("mock pod %s terminated", pod_id)

    def close(self) -> None:
        """Leave pods running: the supervisor terminates them, also after restart."""

    # Helpers

    def _should_simulate(self) -> bool:
        if self._simulate_gpu is not None:
            return self._simulate_gpu
        self._simulate_gpu = not _nvml_sees_a_gpu()
        return self._simulate_gpu

    def _record(self, pod_id: str) -> dict[str, object] | None:
        if not pod_id.isalnum():
            return None
        path = self._pods_dir / pod_id / "pod.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise ProviderError(
                f"Mock pod record {path} is unreadable: {error}."
            ) from None

    def _alive(self, pod_id: str, pid: int) -> bool:
        with self._lock:
            child = self._children.get(pod_id)
        if child is not None:
            return child.poll() is None
        return _process_alive(pid)

    def _info(self, record: dict[str, object]) -> PodInfo:
        pod_id = str(record["pod_id"])
        alive = self._alive(pod_id, int(record["pid"]))  # type: ignore[call-overload]
        return PodInfo(
            pod_id=pod_id,
            name=str(record["name"]),
            status="RUNNING" if alive else "EXITED",
            agent_url=f"http://127.0.0.1:{record['port']}" if alive else None,
            created_at=datetime.fromisoformat(str(record["created_at"])),
        )

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)


def _inherited_env() -> dict[str, str]:
    """What a local agent needs from this process: paths, not secrets."""
    keep = (
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "TMPDIR",
        "PYTHONPATH",
        "HF_HOME",
        "CUDA_VISIBLE_DEVICES",
    )
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env["HF_HUB_OFFLINE"] = os.environ.get("HF_HUB_OFFLINE", "0")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _nvml_sees_a_gpu() -> bool:
    try:
        import pynvml
    except ImportError:
        return False
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    try:
        return pynvml.nvmlDeviceGetCount() > 0
    except pynvml.NVMLError:
        return False
    finally:
        pynvml.nvmlShutdown()
