"""Secrets: the HTTP API key check and each run's agent token.

Agent tokens are derived from an installation secret and the run id, so no
token is ever stored in the database, and a restarted dashboard can still
reach the agents of runs it launched before.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import os
import secrets
import tempfile
import threading
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


_secret_lock = threading.Lock()


@functools.cache
def installation_secret() -> bytes:
    settings = get_settings()
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode("utf-8")
    with _secret_lock:
        secret = _read_or_create_secret(settings.data_dir / SECRET_FILE_NAME)
    if not secret:
        raise RuntimeError(
            f"The installation secret in {settings.data_dir / SECRET_FILE_NAME} is "
            f"empty; delete the file so a new one is made, or set "
            f"PERSEPHONE_SECRET_KEY."
        )
    return secret


def _read_or_create_secret(path: Path) -> bytes:
    """Create the secret file whole or not at all, so no reader sees it empty."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
            os.chmod(temporary, 0o600)
            # A link fails if another process got there first; theirs wins.
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return path.read_text().strip().encode("utf-8")


def agent_token(run_id: str) -> str:
    """The bearer token the run's agent expects on every request."""
    digest = hmac.new(installation_secret(), run_id.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()
