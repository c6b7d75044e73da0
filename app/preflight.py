"""Check the configuration and the database before the server starts.

`make run` calls `python -m app.preflight` first, so a bad setting stops
start-up with its one sentence before Streamlit prints any address.
"""

from __future__ import annotations

import sys

from app.db import DatabaseError, get_engine
from app.settings import SettingsError, get_settings


def main() -> int:
    try:
        get_settings()
        get_engine()
    except (SettingsError, DatabaseError) as error:
        sys.stderr.write(f"Persephone cannot start: {error}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
