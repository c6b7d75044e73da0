"""Server time and chart payload of the run page for a day on eight GPUs.

Stores a 24 h × 8 GPU series at 1 Hz (691,200 rows) in a temporary SQLite
database through the same ingestion the supervisor uses, then times:

- the chart path alone: loading, downsampling, building every figure and
  serialising it as `st.plotly_chart` does, cold and from the page's cache;
- the old way of loading the rows (`load_samples`), for comparison;
- the whole run page rendered by Streamlit's AppTest, first view and again.

    .venv/bin/python bench/run_page.py [--hours 24] [--gpus 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from app.charts import ChartSet

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHUNK_BYTES = 4_000_000
CSV_BUDGET_S = 3.0
PAGE_BUDGET_S = 1.5
PAYLOAD_BUDGET_BYTES = 3_000_000
T = TypeVar("T")


def _configure(data_dir: Path) -> None:
    os.environ["PERSEPHONE_DATA_DIR"] = str(data_dir)
    os.environ["PERSEPHONE_DB_URL"] = f"sqlite:///{data_dir}/bench.db"
    os.environ["PERSEPHONE_CATALOG_MODE"] = "mock"
    os.environ.pop("PERSEPHONE_API_KEY", None)
    from app import context

    context.reset()


def _phase(second: int, total: int) -> str:
    if second < 300:
        return "load"
    if second < 600:
        return "warmup"
    return "measure" if second < total - 300 else "idle"


def _csv_chunks(seconds: int, gpus: int) -> Iterator[bytes]:
    """The agent's CSV, cut at line ends the way the supervisor pulls it."""
    from agent.schema import TIMESERIES_COLUMNS

    rng = np.random.default_rng(3)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TIMESERIES_COLUMNS)
    for second in range(seconds):
        stamp = (start + timedelta(seconds=second)).isoformat(timespec="milliseconds")
        phase = _phase(second, seconds)
        busy_pct = (88, 100) if phase == "measure" else (0, 5)
        load = rng.uniform(*busy_pct, gpus)
        for gpu in range(gpus):
            busy = load[gpu]
            writer.writerow(
                [
                    *(stamp.replace("+00:00", "Z"), f"{second:.3f}", phase, gpu),
                    *(f"GPU-{gpu}", f"{busy:.0f}", f"{busy * 0.6:.0f}", 60_000 + gpu),
                    *("81559", f"{120 + busy * 5.8:.1f}", f"{40 + busy / 4:.0f}"),
                    *("1980", "2619", "none", "false"),
                ]
            )
        if out.tell() >= CHUNK_BYTES:
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode("utf-8")


def _stored_run(seconds: int, gpus: int) -> str:
    from agent.schema import Result, Stats, Telemetry
    from app.db import session_scope
    from app.models import Run, RunState, utcnow
    from app.services import ingest, runs

    run = runs.start_run(
        runs.parse_launch_request(
            {"gpu_type": "h100-sxm-80gb", "model_ref": "mock-v0", "samples": 1000}
        )
    )
    offset = 0
    for chunk in _csv_chunks(seconds, gpus):
        ingest.ingest_timeseries_chunk(run.id, offset, chunk)
        offset += len(chunk)
    result = Result(
        agent_version="bench",
        status="succeeded",
        samples=1000,
        samples_completed=1000,
        started_at="2026-01-05T00:00:00Z",
        latency_ms=Stats(n=1000, p50=12.0, p95=15.0, p99=18.0),
        telemetry=Telemetry(status="ok"),
    )
    ingest.store_result(run.id, result.model_dump_json().encode("utf-8"))
    with session_scope() as session:
        row = session.get(Run, run.id)
        assert row is not None
        row.state = RunState.SUCCEEDED
        row.finished_at = utcnow()
        session.add(row)
    return run.id


def _timed(action: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def _figure_specs(chart_set: ChartSet) -> list[str]:
    """Every figure as `st.plotly_chart` serialises it."""
    import plotly.io
    import plotly.tools

    from app import charts
    from app.services.timeseries import METRICS

    specs = []
    for metric in METRICS:
        figure = charts.metric_figure(metric, chart_set)
        if figure is not None:
            checked = plotly.tools.return_figure_from_figure_or_data(figure, True)
            specs.append(plotly.io.to_json(checked, validate=False))
    return specs


def _chart_path(run_id: str, repeat: int) -> None:
    from app import charts
    from app.services.timeseries import load_samples

    load_s, frame = _timed(lambda: charts.load_frame(run_id))
    build_s, chart_set = _timed(lambda: charts.build_chart_set(frame))
    figures_s, specs = _timed(lambda: _figure_specs(chart_set))
    payload = sum(len(spec) for spec in specs)
    cold_s = load_s + build_s + figures_s
    warm = [_timed(lambda: _figure_specs(chart_set))[0] for _ in range(repeat)]
    rows_s, _ = _timed(lambda: load_samples(run_id))
    print(
        f"chart path, cold: {cold_s:.3f} s (load CSV {load_s:.3f} s, "
        f"downsample {build_s:.3f} s, figures + JSON {figures_s:.3f} s)"
    )
    print(f"chart path, cached chart set: {statistics.median(warm):.3f} s (median)")
    print(f"figure payload: {payload:,} bytes in {len(specs)} charts")
    print(f"for comparison, load_samples of every row: {rows_s:.3f} s")


def _csv_download(run_id: str, repeat: int) -> None:
    """What the download button and GET /runs/{id}/timeseries.csv both read."""
    from app.services import runs

    times = []
    for _ in range(repeat):
        seconds, data = _timed(lambda: runs.artifact_bytes(run_id, runs.TIMESERIES_CSV))
        times.append(seconds)
    size = len(data or b"")
    print(
        f"CSV ready: {statistics.median(times):.3f} s median, {max(times):.3f} s max "
        f"({size:,} bytes; budget {CSV_BUDGET_S} s)"
    )


def _page(run_id: str, repeat: int) -> None:
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    from app.ui import RUN_PAGE

    original = PagesManager.__init__

    def as_served(self: PagesManager, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = as_served  # type: ignore[method-assign]
    app = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120).run()
    app.query_params["id"] = run_id
    app.switch_page(RUN_PAGE)
    times = [_timed(app.run)[0] for _ in range(repeat + 1)]
    if app.exception or app.error:
        raise SystemExit(f"the run page failed: {app.exception or app.error}")
    specs = [chart.proto.spec for chart in app.get("plotly_chart")]
    payload = sum(len(spec) for spec in specs)
    json.loads(specs[0])
    print(f"run page (AppTest), first view: {times[0]:.3f} s")
    print(f"run page (AppTest), again: {statistics.median(times[1:]):.3f} s (median)")
    print(f"run page payload: {payload:,} bytes in {len(specs)} charts")
    within = times[0] < PAGE_BUDGET_S and payload < PAYLOAD_BUDGET_BYTES
    verdict = "within" if within else "OVER"
    print(f"budget ({PAGE_BUDGET_S} s, {PAYLOAD_BUDGET_BYTES:,} bytes): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    seconds = round(args.hours * 3600)
    with tempfile.TemporaryDirectory() as data_dir:
        _configure(Path(data_dir))
        build_s, run_id = _timed(lambda: _stored_run(seconds, args.gpus))
        print(f"stored {seconds * args.gpus:,} rows in {build_s:.1f} s (run {run_id})")
        _chart_path(run_id, args.repeat)
        _csv_download(run_id, args.repeat)
        _page(run_id, args.repeat)


if __name__ == "__main__":
    main()
