"""`python -m fakes.runpod`: the fake RunPod on loopback, for demos.

Prints the environment that points Persephone at it, then serves until
interrupted; its pods (agent processes) are killed on the way out.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType

from fakes.runpod.server import DEFAULT_API_KEY, FakeRunPod
from fakes.runpod.state import Switches


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fakes.runpod",
        description="A fake RunPod API (REST v2 subset) whose pods are local agents.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=9999, help="port (0: any free)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("FAKE_RUNPOD_API_KEY", DEFAULT_API_KEY),
        help="the bearer key it accepts (default: $FAKE_RUNPOD_API_KEY or a fixed one)",
    )
    switches = parser.add_argument_group("misbehaviours (also POST /_fake/switches)")
    switches.add_argument(
        "--no-capacity", action="store_true", help="every create: no capacity"
    )
    switches.add_argument(
        "--no-capacity-gpu",
        action="append",
        default=[],
        metavar="GPU_ID",
        help="no capacity for this exact GPU id (repeatable)",
    )
    switches.add_argument("--rate-limit-next", type=int, default=0, metavar="N")
    switches.add_argument("--retry-after", type=int, default=1, metavar="SECONDS")
    switches.add_argument(
        "--fail-after-create",
        type=int,
        default=0,
        metavar="N",
        help="the next N creates make the pod, then answer 500",
    )
    switches.add_argument(
        "--server-errors-next", type=int, default=0, metavar="N", help="next N: 500"
    )
    switches.add_argument(
        "--html-errors", action="store_true", help="5xx answers are HTML pages"
    )
    switches.add_argument(
        "--slow-start",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="seconds a pod spends STARTING (pulling its image); default 2",
    )
    switches.add_argument(
        "--restart-loop", action="store_true", help="containers keep restarting"
    )
    switches.add_argument(
        "--fail-terminate",
        type=int,
        default=0,
        metavar="N",
        help="the next N DELETEs answer 500",
    )
    switches.add_argument(
        "--vanish-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="pods disappear this long after their container started",
    )
    switches.add_argument(
        "--holding-page",
        action="store_true",
        help="the proxy answers 200 with an HTML page until the agent is up",
    )
    return parser.parse_args(argv)


def switches_from(args: argparse.Namespace) -> Switches:
    return Switches(
        no_capacity=args.no_capacity,
        no_capacity_gpu_ids=args.no_capacity_gpu,
        rate_limit_next=args.rate_limit_next,
        retry_after_s=args.retry_after,
        fail_after_create_next=args.fail_after_create,
        server_errors_next=args.server_errors_next,
        html_errors=args.html_errors,
        slow_start_s=args.slow_start,
        restart_loop=args.restart_loop,
        fail_terminate_next=args.fail_terminate,
        vanish_after_s=args.vanish_after,
        holding_page=args.holding_page,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    fake = FakeRunPod(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        switches=switches_from(args),
    )

    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    # The main thread only waits on an event: a signal interrupting a thread
    # join can make Python think the server thread has already ended.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    fake.start()
    sys.stdout.write(
        f"Fake RunPod listening on {fake.url}\n"
        "Point Persephone at it with:\n"
        "  PERSEPHONE_CATALOG_MODE=runpod \\\n"
        f"  RUNPOD_API_KEY={args.api_key} \\\n"
        f"  RUNPOD_API_BASE_URL={fake.url} \\\n"
        f"  PERSEPHONE_RUNPOD_PROXY_URL='{fake.proxy_url}' \\\n"
        "  make run\n"
        f"Switches: curl -X POST {fake.url}/_fake/switches "
        "-d '{\"fail_terminate_next\": 2}'; state: "
        f"curl {fake.url}/_fake/state\n"
    )
    sys.stdout.flush()
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
