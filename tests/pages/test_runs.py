"""The runs page: newest first, status in colour, paging, cancel, billing flag."""

from __future__ import annotations

from datetime import timedelta

from streamlit.testing.v1 import AppTest

from app.db import session_scope
from app.models import Run, RunState, utcnow
from app.services import runs
from app.ui import RUNS_PAGE
from tests.pages.support import (
    Refreshes,
    finish,
    launch,
    open_page,
    result_json,
    set_created,
)


def _linked_ids(app: AppTest) -> list[str]:
    return [link.value for link in app.get("page_link")]


def _row_markdown(app: AppTest, text: str) -> list[str]:
    return [m.value for m in app.markdown if text in m.value]


def test_no_runs_points_to_launch() -> None:
    app = open_page(RUNS_PAGE)

    assert not app.exception and not app.error
    assert app.info[0].value == "No runs yet."
    assert app.get("page_link")[0].proto.page == "launch"


def test_newest_first_with_status_in_colour_and_numbers() -> None:
    now = utcnow()
    old = launch()
    finish(old, result=result_json(old, p50_ms=12.5))
    set_created(old, now - timedelta(hours=2))
    failed = finish(launch("rtx-4090-24gb"), RunState.FAILED, error="No capacity.")
    set_created(failed, now - timedelta(hours=1))
    queued = launch("a40-48gb")

    app = open_page(RUNS_PAGE)

    assert not app.exception and not app.error
    assert _linked_ids(app) == [queued.id, failed.id, old.id]
    assert app.get("page_link")[0].proto.query_string == f"id={queued.id}"
    assert app.get("page_link")[0].proto.page == "run"
    assert _row_markdown(app, "[queued") == [":blue[queued…]"]
    assert _row_markdown(app, "[failed") == [":red[failed]"]
    assert _row_markdown(app, "[succeeded") == [":green[succeeded]"]
    assert "12.5 / 19.5" in [m.value for m in app.markdown]
    assert "L4 :gray[secure]  \n`mock-v0`" in [m.value for m in app.markdown]
    assert "Runs 1–3 of 3, newest first." in app.caption.values


def test_active_run_has_a_cancel_button_that_requests_cancel() -> None:
    queued = launch()
    done = finish(launch(), RunState.CANCELLED)

    app = open_page(RUNS_PAGE)
    assert [b.key for b in app.button] == [f"cancel_{queued.id}"]
    # An icon that says what it does when pointed at: no label to cut short.
    assert app.button[0].label == ""
    assert app.button[0].help.startswith(f"Cancel run {queued.id}")

    app.button(key=f"cancel_{queued.id}").click().run()

    assert runs.get_run(queued.id).cancel_requested
    assert not runs.get_run(done.id).cancel_requested
    assert _row_markdown(app, "cancelling") == [":blue[queued…] :gray[(cancelling)]"]
    assert app.button(key=f"cancel_{queued.id}").disabled


def test_finished_run_whose_pod_may_still_bill_is_flagged() -> None:
    run = finish(launch(), RunState.FAILED, error="Agent lost.", pod_terminated=False)

    app = open_page(RUNS_PAGE)

    assert _row_markdown(app, "may still be billing") == [
        f":red[failed]  \n:red[⚠ pod pod\\-{run.id} may still be billing]"
    ]


def test_the_list_keeps_refreshing_until_every_pod_is_confirmed_gone(
    refreshes: Refreshes,
) -> None:
    run = finish(launch(), RunState.SUCCEEDED, pod_terminated=False)
    with session_scope() as session:
        row = session.get(Run, run.id)
        assert row is not None
        row.terminate_attempts, row.terminate_error = 0, None
        session.add(row)

    app = open_page(RUNS_PAGE)
    assert _row_markdown(app, "terminating") == [
        ":green[succeeded]  \n:gray[terminating pod…]"
    ]
    assert refreshes.every("_table") == 2.0

    refreshes.clear()
    finish(run, RunState.SUCCEEDED)
    app.run()
    assert _row_markdown(app, "[succeeded") == [":green[succeeded]"]
    assert refreshes.every("_table") is None


def test_simulated_runs_say_so() -> None:
    run = launch()
    finish(run, result=result_json(run, simulated=True))

    app = open_page(RUNS_PAGE)

    assert _row_markdown(app, "[succeeded") == [":green[succeeded]  \n:gray[simulated]"]


def test_pages_of_fifty() -> None:
    start = utcnow() - timedelta(days=1)
    made = []
    for number in range(120):
        run = launch()
        set_created(run, start + timedelta(minutes=number))
        made.append(run.id)
    newest_first = made[::-1]

    app = open_page(RUNS_PAGE)
    assert _linked_ids(app) == newest_first[:50]
    assert "Runs 1–50 of 120, newest first." in app.caption.values

    app.number_input(key="runs_page").set_value(3).run()

    assert _linked_ids(app) == newest_first[100:]
    assert "Runs 101–120 of 120, newest first." in app.caption.values
