"""Time stamps: UTC wall time for people, the monotonic clock for durations."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utc_iso(wall_s: float | None = None) -> str:
    """ISO-8601 UTC with milliseconds and a `Z`, e.g. `2026-01-02T03:04:05.678Z`."""
    moment = datetime.fromtimestamp(time.time() if wall_s is None else wall_s, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class RunClock:
    """The agent's start on both clocks, so any monotonic instant maps to UTC."""

    def __init__(self) -> None:
        self.start_mono_s = time.monotonic()
        self.start_wall_s = time.time()

    def elapsed_s(self, mono_s: float | None = None) -> float:
        return (time.monotonic() if mono_s is None else mono_s) - self.start_mono_s

    def wall_of(self, mono_s: float) -> float:
        """Wall time of a monotonic instant, anchored at the agent's start."""
        return self.start_wall_s + (mono_s - self.start_mono_s)

    def iso_of(self, mono_s: float) -> str:
        return utc_iso(self.wall_of(mono_s))
