"""Fixtures for the agent's tests: the fake NVML and real agent processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.agent.support import REPO, TOKEN, AgentProcess, free_port
from tests.fakes import fake_pynvml

StartAgent = Callable[..., AgentProcess]


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[StartAgent]:
    """`start_agent(nvml="scenario", MODEL_REF=..., ...)` starts `python -m agent`.

    `nvml` names a fake NVML scenario put first on PYTHONPATH (None: the real
    pynvml). Every variable given replaces the default; the agent is killed at
    teardown if a test left it running.
    """
    started: list[AgentProcess] = []

    def start(
        *, nvml: str | None = "ok", wait: bool = True, **variables: str
    ) -> AgentProcess:
        index = len(started)
        workspace = tmp_path / f"workspace{index}"
        port = free_port()
        path_entries = [str(REPO)]
        if nvml is not None:
            shim_dir = tmp_path / f"nvml{index}"
            fake_pynvml.write_shim(shim_dir, nvml)
            path_entries.insert(0, str(shim_dir))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "PYTHONPATH": os.pathsep.join(path_entries),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "MODEL_REF": "mock-v0",
            "SAMPLES": "8",
            "PERSEPHONE_AGENT_TOKEN": TOKEN,
            "PERSEPHONE_AGENT_HOST": "127.0.0.1",
            "PERSEPHONE_AGENT_PORT": str(port),
            "PERSEPHONE_WORKSPACE": str(workspace),
        }
        env.update(variables)
        stderr_path = tmp_path / f"stderr{index}.txt"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "agent"],
                cwd=tmp_path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        agent = AgentProcess(process, port, workspace, stderr_path)
        started.append(agent)
        if wait:
            agent.wait_healthy()
        return agent

    yield start
    for agent in started:
        if agent.process.poll() is None:
            agent.process.kill()
            agent.process.wait(10)
