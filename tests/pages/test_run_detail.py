"""The run page: header, metrics, warnings, charts, downloads, live updates."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from agent.schema import MeasureWindow, Result, Stats, Tokens
from app import ui
from app.db import session_scope
from app.models import Run, RunState
from app.services import ingest, runs
from app.ui import RUN_PAGE
from tests.pages.support import (
    Refreshes,
    finish,
    launch,
    open_page,
    result_json,
    timeseries_csv,
)


def _metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def _note(app: AppTest, label: str) -> str:
    return next(m.proto.delta for m in app.metric if m.label == label)


def _charts(app: AppTest) -> list[dict[str, Any]]:
    return [json.loads(c.proto.spec) for c in app.get("plotly_chart")]


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """What each download button would send, by file name (deferred ones called)."""
    sent: dict[str, bytes] = {}
    add, add_deferred = MediaFileManager.add, MediaFileManager.add_deferred

    def record(
        self: MediaFileManager, data: bytes | str, *args: object, **kw: object
    ) -> str:
        name = kw.get("file_name") or args[2]
        sent[str(name)] = data if isinstance(data, bytes) else data.encode()
        return add(self, data, *args, **kw)  # type: ignore[arg-type]

    def record_deferred(
        self: MediaFileManager, make: Callable[[], bytes], *args: object, **kw: object
    ) -> str:
        sent[str(kw.get("file_name") or args[2])] = make()
        return add_deferred(self, make, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(MediaFileManager, "add", record)
    monkeypatch.setattr(MediaFileManager, "add_deferred", record_deferred)
    return sent


def test_unknown_run_id_is_named_with_a_way_back() -> None:
    app = open_page(RUN_PAGE, id="nope123")

    assert not app.exception
    assert [e.value for e in app.error] == [
        "There is no run with id `nope123`: check the link, or pick the run from "
        "the Runs page."
    ]
    assert app.get("page_link")[0].proto.page == "history"
    assert not app.title


def test_a_run_id_from_the_address_cannot_inject_markdown() -> None:
    hostile = "[Sign in again](http://evil) :red[**expired**]"

    app = open_page(RUN_PAGE, id=hostile)

    # A code span: Markdown shows its content literally, no link or colour.
    assert [e.value for e in app.error] == [
        f"There is no run with id `{hostile}`: check the link, or pick the run "
        "from the Runs page."
    ]


def test_missing_run_id_points_to_the_runs_page() -> None:
    app = open_page(RUN_PAGE)

    assert "No run is named in the address" in app.error[0].value


def test_succeeded_run_shows_its_measurements_costs_and_charts() -> None:
    run = launch()
    finish(run, csv_data=timeseries_csv(), result=result_json(run, p50_ms=12.5, n=8))

    app = open_page(RUN_PAGE, id=run.id)

    assert not app.exception and not app.error
    assert app.title[0].value == f"Run {run.id}"
    assert any(m.value.startswith(":green[succeeded] · ") for m in app.markdown)
    assert "**GPU**  \nL4 (`l4-24gb`)" in [m.value for m in app.markdown]
    assert _metric(app, "Latency p50") == "12.5 ms"
    assert _metric(app, "Latency p95") == "19.5 ms"
    # n = 8 < 100: the p99 is marked indicative.
    assert _metric(app, "Latency p99") == "21 ms"
    assert _note(app, "Latency p99") == "indicative (n < 100)"
    assert _metric(app, "Samples measured (n)") == "8"
    assert _metric(app, "Throughput (samples/s)") == "0.267"
    assert _metric(app, "Measure window") == "30.0 s"
    # $0.43/h × 30 s ÷ 8 samples × 1000, and × 62 s billed for all-in.
    assert _metric(app, "Steady state / 1k samples") == "$0.448"
    assert _metric(app, "All-in / 1k samples") == "$0.926"
    assert _metric(app, "Total billed") == "$0.00741"
    assert _metric(app, "Energy") == "2,100 J"
    assert _note(app, "Energy") == "power_integration, estimated"
    assert _metric(app, "Cold start: load") == "1.2 s"
    assert _metric(app, "Cold start: first call") == "31 ms"
    assert _metric(app, "Warm-up calls") == "2"
    assert app.subheader[0].value == "Measurements"


def test_short_windows_and_small_costs_are_never_shown_as_zero() -> None:
    run = launch(model_ref="gemm:bf16:256", samples=200)
    result = Result.model_validate_json(result_json(run, n=200))
    result.measure_window = MeasureWindow(duration_s=0.0186)
    finish(run, result=result.model_dump_json().encode())

    app = open_page(RUN_PAGE, id=run.id)

    assert _metric(app, "Measure window") == "18.6 ms"
    # $0.43/h × 0.0186 s ÷ 200 samples × 1000.
    assert _metric(app, "Steady state / 1k samples") == "$0.0000111"


def test_charts_mark_phases_and_note_a_metric_the_gpu_never_reported() -> None:
    run = launch()
    finish(run, csv_data=timeseries_csv(gpus=2), result=result_json(run))

    app = open_page(RUN_PAGE, id=run.id)

    charts = _charts(app)
    titles = [chart["layout"]["title"]["text"] for chart in charts]
    assert titles == [
        "GPU utilisation (%)",
        "Memory used (MiB)",
        "Power (W)",
        "Temperature (°C)",
        "SM clock (MHz)",
        "Memory clock (MHz)",
    ]
    assert (
        "Not reported by this GPU: Memory controller utilisation." in app.caption.values
    )
    utilisation = charts[0]
    assert [trace["name"] for trace in utilisation["data"]] == ["GPU 0", "GPU 1"]
    assert all(trace["connectgaps"] is False for trace in utilisation["data"])
    bands = [(s["name"], s["x0"], s["x1"]) for s in utilisation["layout"]["shapes"]]
    assert bands == [
        ("load", 0, 10),
        ("warmup", 10, 20),
        ("measure", 20, 50),
        ("idle", 50, 59),
    ]
    memory = charts[1]
    assert any(a["text"] == "total 23,034 MiB" for a in memory["layout"]["annotations"])


def test_failed_run_shows_its_error_message() -> None:
    run = finish(
        launch("b200-180gb"),
        RunState.FAILED,
        error="There are no longer any instances available with the requested "
        "specifications. Please refresh and try again.",
    )

    app = open_page(RUN_PAGE, id=run.id)

    assert not app.exception
    assert [e.value for e in app.error] == [ui.escape(run.error_message)]
    assert "This run produced no measurements." in app.caption.values
    assert "This run recorded no GPU samples." in app.caption.values


def test_an_error_message_cannot_inject_markdown() -> None:
    run = finish(
        launch(),
        RunState.FAILED,
        error="Pod lost. [Sign in again](http://evil) :red[**expired**]",
    )

    app = open_page(RUN_PAGE, id=run.id)

    [shown] = [e.value for e in app.error]
    assert shown == (
        "Pod lost\\. \\[Sign in again\\]\\(http\\:\u2060\\/\\/evil\\) "
        "\\:red\\[\\*\\*expired\\*\\*\\]"
    )
    note = app.table[0].value["note"].iloc[-1]
    assert note == shown


def test_simulated_metrics_are_labelled() -> None:
    run = launch()
    finish(
        run,
        csv_data=timeseries_csv(simulated=True),
        result=result_json(run, simulated=True),
    )

    app = open_page(RUN_PAGE, id=run.id)

    assert app.warning[0].value.startswith("**Simulated GPU metrics**")
    assert app.subheader[0].value == "Measurements (simulated)"
    titles = [chart["layout"]["title"]["text"] for chart in _charts(app)]
    assert titles[0] == "GPU utilisation (%) (simulated)"
    assert all(title.endswith(" (simulated)") for title in titles)


def test_simulated_rows_are_labelled_even_without_a_result() -> None:
    run = finish(launch(), RunState.FAILED, csv_data=timeseries_csv(simulated=True))

    app = open_page(RUN_PAGE, id=run.id)

    assert app.warning[0].value.startswith("**Simulated GPU metrics**")


def test_pod_that_may_still_bill_is_a_warning_with_the_provider_error() -> None:
    run = finish(launch(), RunState.SUCCEEDED, pod_terminated=False)

    app = open_page(RUN_PAGE, id=run.id)

    [warning] = [w.value for w in app.warning]
    assert warning.startswith(f"Pod `pod-{run.id}` may still be billing")
    assert "after 3 attempts" in warning
    assert warning.endswith(
        "Last error: " + ui.escape("RunPod answered 502 Bad Gateway")
    )


def _set_termination(run: Run, *, attempts: int, error: str | None, done: bool) -> None:
    with session_scope() as session:
        row = session.get(Run, run.id)
        assert row is not None
        row.terminate_attempts = attempts
        row.terminate_error = error
        if done:
            assert row.finished_at is not None
            row.pod_terminated_at = row.finished_at + timedelta(seconds=2)
        session.add(row)


def test_a_finished_run_keeps_refreshing_until_its_pod_is_confirmed_gone(
    refreshes: Refreshes,
) -> None:
    run = launch()
    finish(run, RunState.SUCCEEDED, result=result_json(run), pod_terminated=False)
    _set_termination(run, attempts=0, error=None, done=False)

    # Final, pod termination under way: no alarm, and the page keeps watching.
    app = open_page(RUN_PAGE, id=run.id)
    assert not app.warning
    assert app.info[0].value.startswith(f"Terminating pod `pod-{run.id}`")
    assert refreshes.every("_termination") == 2.0
    assert _metric(app, "Total billed") == "—"

    # A failed attempt: the warning shows the current count and error.
    _set_termination(run, attempts=2, error="RunPod answered 502", done=False)
    app.run()
    [warning] = [w.value for w in app.warning]
    assert "after 2 attempts" in warning
    assert warning.endswith(ui.escape("RunPod answered 502"))

    # Confirmed: the costs fill in and nothing refreshes any more.
    refreshes.clear()
    _set_termination(run, attempts=3, error=None, done=True)
    app.run()
    assert not app.warning and not app.info
    assert _metric(app, "Total billed") == "$0.00741"
    assert refreshes.every("_termination") is None


def test_downloads_are_the_agent_files_byte_for_byte(
    downloads: dict[str, bytes],
) -> None:
    run = launch()
    csv_data = timeseries_csv()
    raw_result = result_json(run)
    finish(run, csv_data=csv_data, result=raw_result)

    app = open_page(RUN_PAGE, id=run.id)

    assert [b.label for b in app.get("download_button")] == [
        "gpu_timeseries.csv",
        "result.json",
    ]
    assert downloads == {
        f"{run.id}-gpu_timeseries.csv": csv_data,
        f"{run.id}-result.json": raw_result,
    }


def test_active_run_fills_in_live_then_shows_final_metrics() -> None:
    run = launch()
    app = open_page(RUN_PAGE, id=run.id)

    assert not app.exception and not app.error
    assert any(":blue[queued…]" in m.value for m in app.markdown)
    assert app.button[0].label == "Cancel run"
    assert "No GPU samples yet." in app.caption.values
    assert list(app.table[0].value["state"]) == ["queued"]

    first = timeseries_csv(seconds=range(30))
    ingest.ingest_timeseries_chunk(run.id, 0, first)
    app.run()
    assert len(_charts(app)) == 6
    frame = app.session_state[f"run_frame:{run.id}"]
    assert len(frame) == 60

    rest = timeseries_csv(seconds=range(30, 60)).split(b"\n", 1)[1]
    ingest.ingest_timeseries_chunk(run.id, len(first), rest)
    app.run()
    frame = app.session_state[f"run_frame:{run.id}"]
    assert list(frame["row"]) == list(range(120))

    finish(run, result=result_json(run, p50_ms=9.75))
    app.run()
    assert f"run_frame:{run.id}" not in app.session_state
    assert _metric(app, "Latency p50") == "9.75 ms"
    assert not [b for b in app.button if b.label == "Cancel run"]


def test_cancel_button_asks_the_supervisor_to_stop() -> None:
    run = launch()
    app = open_page(RUN_PAGE, id=run.id)

    app.button[0].click().run()

    assert runs.get_run(run.id).cancel_requested
    assert app.button[0].disabled


def test_language_model_run_shows_token_metrics_and_cost_per_million_tokens() -> None:
    run = launch(model_ref="hf:sshleifer/tiny-gpt2")
    result = Result.model_validate_json(result_json(run))
    result.tokens = Tokens(
        prompt_tokens=128,
        new_tokens_per_sample=64,
        total_output_tokens=512,
        ttft_ms=Stats(n=8, p50=35.0),
        tpot_ms=Stats(n=8, p50=4.25),
        itl_ms=Stats(n=504, p50=4.0),
        output_tokens_per_s=17.07,
    )
    finish(run, result=result.model_dump_json().encode())

    app = open_page(RUN_PAGE, id=run.id)

    assert not app.exception and not app.error
    assert _metric(app, "TTFT p50") == "35 ms"
    assert _metric(app, "TPOT p50") == "4.25 ms"
    assert _metric(app, "ITL p50") == "4 ms"
    assert _metric(app, "Output tokens/s") == "17.1"
    # $0.43/h × 30 s ÷ 512 tokens × 1e6, and × 62 s billed for all-in.
    assert _metric(app, "Steady state / 1M tokens") == "$7.00"
    assert _metric(app, "All-in / 1M tokens") == "$14.46"


def test_matrix_multiply_run_shows_tflops() -> None:
    run = launch(model_ref="gemm:bf16:1024")
    result = Result.model_validate_json(result_json(run))
    result.throughput.tflops = 61.234
    finish(run, result=result.model_dump_json().encode())

    app = open_page(RUN_PAGE, id=run.id)

    assert _metric(app, "TFLOP/s") == "61.2"
