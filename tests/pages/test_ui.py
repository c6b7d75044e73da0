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

    assert ui.billing_flag(billing) == (
        f":red[⚠ pod pod\\-{run.id} may still be billing]"
    )
    assert ui.billing_flag(finish(launch(), RunState.FAILED)) is None


def test_a_pod_whose_first_terminate_is_pending_is_not_yet_an_alarm() -> None:
    run = finish(launch(), RunState.SUCCEEDED, pod_terminated=False)
    pending = run.model_copy(update={"terminate_attempts": 0, "terminate_error": None})

    assert ui.terminating(pending)
    assert ui.billing_flag(pending) == ":gray[terminating pod…]"
    assert not ui.settled(pending)


@pytest.mark.parametrize(
    ("usd", "shown"),
    [
        (None, "—"),
        (float("nan"), "—"),
        (0.0, "$0.00"),
        (0.0000274, "$0.0000274"),
        (0.00000001234, "$0.0000000123"),
        (0.000154, "$0.000154"),
        (0.4, "$0.40"),
        (0.4475, "$0.448"),
        (14.4639, "$14.46"),
        (1234.5, "$1,234.50"),
    ],
)
def test_money_keeps_three_significant_figures_and_never_rounds_to_zero(
    usd: float | None, shown: str
) -> None:
    assert ui.usd(usd) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "—"),
        (0.0, "0 ms"),
        (0.000412, "0.412 ms"),
        (0.011, "11 ms"),
        (0.0314, "31.4 ms"),
        (0.9996, "1.0 s"),
        (2.44, "2.4 s"),
        (125, "2 min 05 s"),
        (86_400, "24 h 00 min"),
    ],
)
def test_durations_under_a_second_are_milliseconds(
    seconds: float | None, shown: str
) -> None:
    assert ui.duration(seconds) == shown


@pytest.mark.parametrize(
    ("count", "shown"),
    [(0, "0 runs"), (1, "1 run"), (2, "2 runs"), (1500, "1,500 runs")],
)
def test_plural(count: int, shown: str) -> None:
    assert ui.plural(count, "run") == shown


def test_escape_leaves_no_markdown_to_interpret() -> None:
    hostile = "[Sign in again](http://evil) :red[**expired**] $x$ <b>"

    escaped = ui.escape(hostile)

    assert escaped == (
        "\\[Sign in again\\]\\(http\\:\u2060\\/\\/evil\\) \\:red\\[\\*\\*expired"
        "\\*\\*\\] \\$x\\$ \\<b\\>"
    )
    # What remains once Markdown resolves the escapes is the text itself.
    assert escaped.replace("\\", "").replace("\u2060", "") == hostile


def test_escape_breaks_bare_urls_and_addresses_with_an_invisible_joiner() -> None:
    assert ui.escape("www.evil.example") == "www\u2060\\.evil\\.example"
    assert ui.escape("a@b.c") == "a\\@\u2060b\\.c"


def test_code_spans_hold_any_backticks() -> None:
    assert ui.code("mock-v0") == "`mock-v0`"
    assert ui.code("a`b") == "``a`b``"
    assert ui.code("`x`") == "`` `x` ``"


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


def test_no_page_links_to_a_catalog_path() -> None:
    # The catalog is the default page, served at "/"; "/catalog" is no page.
    repo = ROUTER.parent
    for source in [ROUTER, repo / "app" / "ui.py", *sorted(repo.glob("pages/*.py"))]:
        text = source.read_text()
        assert '"/catalog' not in text and "(/catalog" not in text, source
        assert 'url_path="catalog"' not in text, source
    finish(launch(), RunState.FAILED)
    for page, query in [(RUNS_PAGE, {}), (ui.RUN_PAGE, {"id": "nope"})]:
        app = AppTest.from_file(str(ROUTER), default_timeout=30).run()
        app.query_params.update(query)
        app.switch_page(page).run()
        targets = {link.proto.page for link in app.get("page_link")}
        assert targets and "catalog" not in targets
