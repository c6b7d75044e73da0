"""`python -m agent`: read the settings, set up logging, run until stopped."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from agent.app import LOG_NAME, prepare_workspace, run_agent
from agent.clock import RunClock
from agent.config import load_config


def configure_logging(log_path: Path) -> None:
    """One format to stderr and to agent.log in the workspace, times in UTC."""
    formatter = logging.Formatter(
        "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    try:
        handlers.append(logging.FileHandler(log_path, encoding="utf-8"))
    except OSError as error:
        print(f"agent.log cannot be written at {log_path}: {error}", file=sys.stderr)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    # Libraries the workloads load are chatty at INFO.
    for name in ("urllib3", "filelock", "httpx", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main() -> int:
    clock = RunClock()
    config = load_config(os.environ)
    workspace = prepare_workspace(config)
    configure_logging(workspace / LOG_NAME)
    return run_agent(config, clock, workspace, os.environ)


if __name__ == "__main__":
    sys.exit(main())
