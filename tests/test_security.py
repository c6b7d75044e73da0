"""Agent tokens: derived from one installation secret that no thread sees half-made."""

from __future__ import annotations

import threading
from pathlib import Path

from app import context, security


def test_concurrent_first_use_agrees_on_one_nonempty_secret(
    persephone_env: Path,
) -> None:
    tokens: list[str] = []
    barrier = threading.Barrier(8)

    def derive() -> None:
        barrier.wait()
        tokens.append(security.agent_token("run-1"))

    for _ in range(20):
        context.reset()
        (persephone_env / security.SECRET_FILE_NAME).unlink(missing_ok=True)
        tokens.clear()
        threads = [threading.Thread(target=derive) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        secret = (persephone_env / security.SECRET_FILE_NAME).read_text()
        assert len(secret) == 64
        assert len(set(tokens)) == 1
    assert not list(persephone_env.glob(".secret-*"))


def test_tokens_differ_per_run_and_survive_a_restart(persephone_env: Path) -> None:
    first = security.agent_token("run-1")

    context.reset()

    assert security.agent_token("run-1") == first
    assert security.agent_token("run-2") != first
    assert (persephone_env / security.SECRET_FILE_NAME).stat().st_mode & 0o777 == 0o600
