"""Writing result.json once, atomically, whoever gets there first."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path

from agent.schema import Result

logger = logging.getLogger(__name__)


def write_atomically(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, then rename: readers see all or nothing."""
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


class ResultStore:
    """The run's one result: the workload's end, a signal or the deadline may race."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._written: Result | None = None

    @property
    def written(self) -> Result | None:
        return self._written

    def write_once(self, result: Result) -> bool:
        """Write `result` unless one was already written; True if this one was."""
        with self._lock:
            if self._written is not None:
                return False
            data = result.model_dump_json(indent=2).encode("utf-8") + b"\n"
            write_atomically(self.path, data)
            self._written = result
        logger.info(
            "result.json written: %s%s",
            result.status,
            f" ({result.error})" if result.error else "",
        )
        return True
