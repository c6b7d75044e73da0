"""The fake's command line maps every flag onto a switch."""

from __future__ import annotations

from fakes.runpod.__main__ import parse_args, switches_from


def test_flags_become_switches() -> None:
    args = parse_args(
        [
            "--port",
            "0",
            "--api-key",
            "k",
            "--no-capacity-gpu",
            "NVIDIA L4",
            "--rate-limit-next",
            "2",
            "--retry-after",
            "3",
            "--fail-after-create",
            "1",
            "--slow-start",
            "5",
            "--restart-loop",
            "--fail-terminate",
            "4",
            "--vanish-after",
            "9",
            "--holding-page",
            "--html-errors",
        ]
    )

    switches = switches_from(args)

    assert (args.host, args.port, args.api_key) == ("127.0.0.1", 0, "k")
    assert switches.no_capacity_gpu_ids == ["NVIDIA L4"]
    assert (switches.rate_limit_next, switches.retry_after_s) == (2, 3)
    assert switches.fail_after_create_next == 1
    assert switches.slow_start_s == 5.0
    assert switches.restart_loop and switches.holding_page and switches.html_errors
    assert switches.fail_terminate_next == 4
    assert switches.vanish_after_s == 9.0
    assert not switches.no_capacity
