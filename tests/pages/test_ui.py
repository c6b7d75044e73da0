"""Shared page helpers: status colours, billing flag, formatting, local times."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from streamlit.testing.v1 import AppTest

from app import ui
from app.models import Run, RunState
from app.ui import RUNS_PAGE
from tests.pages.support import ROUTER, finish, launch


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        (RunState.SUCCEEDED, ":green[succeeded]"),
        (RunState.FAILED, ":red[failed]"),
        (RunState.TIMED_OUT, ":orange[timed out]"),
        (RunState.CANCELLED, ":gray[cancelled]"),
        (RunState.RUNNING, ":blue[running…]"),
        (RunState.COLLECTING, ":blue[collecting…]"),
    ],
)
def test_status_colours(state: RunState, shown: str) -> None:
    run = Run(gpu_type="l4-24gb", model_ref="mock-v0", samples=8, state=state)

    assert ui.status_markdown(run) == shown


def test_billing_flag_only_for_a_finished_run_with_an_unconfirmed_pod() -> None:
    run = launch()
    assert ui.billing_flag(run) is None

    billing = finish(run, RunState.FAILED, pod_terminated=False)

    assert ui.billing_flag(billing) == f":red[⚠ pod pod-{run.id} may still be billing]"
    assert ui.billing_flag(finish(launch(), RunState.FAILED)) is None


@pytest.mark.parametrize(
    ("usd", "shown"),
    [(None, "—"), (0.000154, "$0.000154"), (0.4475, "$0.448"), (14.4639, "$14.46")],
)
def test_money(usd: float | None, shown: str) -> None:
    assert ui.usd(usd) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "—"), (2.44, "2.4 s"), (125, "2 min 05 s"), (86_400, "24 h 00 min")],
)
def test_durations(seconds: float | None, shown: str) -> None:
    assert ui.duration(seconds) == shown


def test_quantities_keep_three_significant_figures_without_exponents() -> None:
    assert ui.quantity(12.3456, "ms") == "12.3 ms"
    assert ui.quantity(0.000123456) == "0.000123"
    assert ui.quantity(691_200) == "691,200"
    assert ui.quantity(None, "ms") == "—"


def test_times_are_shown_in_the_browser_time_zone() -> None:
    run = launch()
    app = AppTest.from_file(str(ROUTER), default_timeout=30)
    app.context["timezone"] = "Asia/Tokyo"
    app.run()

    app.switch_page(RUNS_PAGE).run()

    tokyo = run.created_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert tokyo.strftime("%Y-%m-%d %H:%M:%S JST") in app.caption.values
