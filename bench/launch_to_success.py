"""How long a mock run with samples=8 takes from launch to `succeeded`.

Starts the real server (as the image starts it) on a free loopback port, runs
the seed's scenario a few times through the HTTP API and prints each time.

    .venv/bin/python bench/launch_to_success.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.serving import running_server

KEY = {"X-API-Key": "bench"}
SEED_RUN = {"gpu_type": "l4-24gb", "model_ref": "mock-v0", "samples": 8}


def one_run(url: str) -> tuple[float, float]:
    """Seconds to `succeeded`, and to the pod's confirmed termination."""
    started = time.perf_counter()
    run_id = httpx.post(f"{url}/runs/start", headers=KEY, json=SEED_RUN).json()[
        "run_id"
    ]
    succeeded_s = None
    while True:
        run = httpx.get(f"{url}/runs/{run_id}", headers=KEY).json()
        if run["status"] in {"failed", "timed_out", "cancelled"}:
            raise SystemExit(
                f"run {run_id} ended {run['status']}: {run['error_message']}"
            )
        if run["status"] == "succeeded" and succeeded_s is None:
            succeeded_s = time.perf_counter() - started
        if succeeded_s is not None and run["pod"]["terminated_at"]:
            return succeeded_s, time.perf_counter() - started
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as data_dir,
        running_server(Path(data_dir), {"PERSEPHONE_API_KEY": "bench"}) as server,
    ):
        timings = [one_run(server.url) for _ in range(args.runs)]
    for number, (succeeded_s, terminated_s) in enumerate(timings, 1):
        print(
            f"run {number}: succeeded after {succeeded_s:.2f} s, "
            f"pod terminated after {terminated_s:.2f} s"
        )
    succeeded = [t[0] for t in timings]
    print(
        f"launch → succeeded: median {statistics.median(succeeded):.2f} s, "
        f"max {max(succeeded):.2f} s over {len(succeeded)} runs (target < 5 s)"
    )


if __name__ == "__main__":
    main()
