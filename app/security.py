"""Secrets: the HTTP API key check and each run's agent token.

Agent tokens are derived from an installation secret and the run id, so no
token is ever stored in the database, and a restarted dashboard can still
reach the agents of runs it launched before.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from app.settings import get_settings

SECRET_FILE_NAME = ".secret_key"  # noqa: S105 - a file name, not a secret


def api_key_required() -> bool:
    return get_settings().api_key is not None


def api_key_matches(candidate: str | None) -> bool:
    """Constant-time comparison with PERSEPHONE_API_KEY; True when none is set."""
    expected = get_settings().api_key
    if expected is None:
        return True
    if candidate is None:
        return False
    return hmac.compare_digest(
        candidate.encode("utf-8"), expected.get_secret_value().encode("utf-8")
    )


@functools.cache
def _installation_secret() -> bytes:
    settings = get_settings()
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode("utf-8")
    path: Path = settings.data_dir / SECRET_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode("utf-8")


def agent_token(run_id: str) -> str:
    """The bearer token the run's agent expects on every request."""
    digest = hmac.new(_installation_secret(), run_id.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()
