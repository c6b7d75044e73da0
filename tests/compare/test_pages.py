"""The Sweep and Compare pages, driven with AppTest through a router.

The router registers the two pages (and the run page they link to) with the
st.Page lines the dashboard's router is to use, so page links resolve as they
do when served. Downloads are checked byte for byte: Streamlit names a
download by a hash of its bytes, MIME type and file name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import select
from streamlit import dataframe_util
from streamlit.runtime.memory_media_file_storage import _calculate_file_id
from streamlit.testing.v1 import AppTest

from app import ui
from app.db import session_scope
from app.models import Run, RunState, Sweep
from app.services import sweeps
from app.services.compare import (
    compare,
    comparison_csv,
    comparison_json,
    run_bundle,
)
from tests.compare.factory import Spec, make_run

REPO = Path(__file__).resolve().parents[2]
ROUTER = """
import streamlit as st

st.navigation(
    [
        st.Page("pages/sweep.py", title="Sweep", url_path="sweep"),
        st.Page("pages/compare.py", title="Compare", url_path="comparison"),
        st.Page(
            "pages/run_detail.py", title="Run", url_path="run", visibility="hidden"
        ),
    ]
).run()
"""

Open = Callable[..., AppTest]


@pytest.fixture
def open_page(persephone_env: Path, tmp_path: Path) -> Open:
    """Open a page through the router, with query parameters."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "pages").symlink_to(REPO / "pages")
    (site / "router.py").write_text(ROUTER)

    def opener(page: str, **query: str) -> AppTest:
        app = AppTest.from_file(str(site / "router.py"), default_timeout=30)
        app.switch_page(page)
        app.query_params.update(query)
        return app.run()

    return opener


def stored() -> tuple[list[Sweep], list[Run]]:
    with session_scope() as session:
        return list(session.exec(select(Sweep))), list(session.exec(select(Run)))


def download_url(app: AppTest, key: str) -> str:
    button = next(b for b in app.get("download_button") if b.proto.id.endswith(key))
    return str(button.proto.url)


def media_url(data: bytes, mime: str, file_name: str, extension: str) -> str:
    return f"/mock/media/{_calculate_file_id(data, mime, file_name)}{extension}"


def shown_cells(app: AppTest, index: int = 0) -> pd.DataFrame:
    """The text each cell of a dataframe shows (the styler's display values)."""
    proto = app.dataframe[index].proto.arrow_data
    return dataframe_util.convert_arrow_bytes_to_pandas_df(proto.styler.display_values)


# Sweep page


def estimate(app: AppTest, gpu_types: list[str], threshold: float) -> AppTest:
    app.multiselect(key="sweep_gpus").set_value(gpu_types)
    app.number_input(key="sweep_samples").set_value(100)
    app.number_input(key="sweep_threshold").set_value(threshold)
    return app.button(key="FormSubmitter:sweep-Estimate cost").click().run()


def test_sweep_shows_the_estimate_and_waits_for_confirmation(open_page: Open) -> None:
    app = estimate(open_page("pages/sweep.py"), ["l4-24gb", "rtx-4090-24gb"], 0.0)

    assert not app.exception
    assert app.title[0].value == "Sweep"
    table = app.dataframe[0].value
    expected = sweeps.estimate_sweep(
        sweeps.parse_sweep_request(
            {
                "gpu_types": ["l4-24gb", "rtx-4090-24gb"],
                "model_ref": "mock-v0",
                "samples": 100,
                "parameters": {"seed": 0},
            }
        )
    )
    assert list(table["GPU"]) == ["l4-24gb", "rtx-4090-24gb"]
    assert list(table["$/GPU-hour"]) == [0.43, 0.69]
    assert list(table["Cost (USD)"]) == [g.cost_usd for g in expected.gpus]
    assert list(table["Based on"]) == ["mock timing model"] * 2
    assert app.metric[0].label == "Estimated total"
    assert app.warning[0].value.startswith("The estimate, $0.00")
    assert app.button(key="sweep_go").disabled
    assert stored() == ([], [])

    app.checkbox(key="sweep_confirm").check().run()
    app.button(key="sweep_go").click().run()

    sweeps_made, runs_made = stored()
    assert len(sweeps_made) == 1
    assert sorted(run.gpu_type for run in runs_made) == ["l4-24gb", "rtx-4090-24gb"]
    sweep_id = sweeps_made[0].id
    assert app.success[0].value == (
        f"Sweep `{sweep_id}` launched: 2 runs of `mock-v0` on 2 GPU types."
    )
    links = [link.proto for link in app.get("page_link")]
    assert links[0].label == f"Compare sweep {sweep_id}"
    assert links[0].query_string == f"sweep={sweep_id}"
    assert sorted(link.query_string for link in links[1:]) == sorted(
        f"id={run.id}" for run in runs_made
    )


def test_sweep_under_the_threshold_needs_no_checkbox(open_page: Open) -> None:
    app = estimate(open_page("pages/sweep.py"), ["l4-24gb"], 5.0)

    assert not app.checkbox
    app.button(key="sweep_go").click().run()

    assert not app.exception
    assert len(stored()[1]) == 1


def test_sweep_names_a_bad_field_and_creates_nothing(open_page: Open) -> None:
    no_gpu = estimate(open_page("pages/sweep.py"), [], 5.0)
    bad_json = open_page("pages/sweep.py")
    bad_json.text_input(key="sweep_parameters").set_value("{batch_size: 4}")
    bad_json = estimate(bad_json, ["l4-24gb"], 5.0)

    assert not no_gpu.exception
    assert no_gpu.error[0].value == "**gpu\\_types** — " + ui.escape(
        "gpu_types must list 1 to 16 GPU type slugs."
    )
    assert bad_json.error[0].value.startswith("**parameters** — not valid JSON")
    assert stored() == ([], [])


# Compare page


@pytest.fixture
def four_runs(persephone_env: Path) -> dict[str, Run]:
    return {
        "l4": make_run(Spec("l4-24gb", measure_s=6.0, p95_ms=75.0)),
        "4090": make_run(Spec("rtx-4090-24gb", measure_s=3.0, p95_ms=40.0)),
        "h100": make_run(Spec("h100-sxm-80gb", measure_s=1.0, p95_ms=12.0)),
        "b200": make_run(
            Spec(
                "b200-180gb",
                state=RunState.FAILED,
                error="No B200 is available.",
                had_pod=False,
            )
        ),
    }


def test_compare_ranks_flags_and_tabulates_the_runs(
    open_page: Open, four_runs: dict[str, Run]
) -> None:
    ids = [run.id for run in four_runs.values()]

    app = open_page("pages/compare.py", runs=",".join(ids))

    assert not app.exception
    assert app.title[0].value == "Compare"
    assert app.success[0].value.startswith(
        "**Best for cost:** rtx\\-4090\\-24gb (secure) — $0.00575 per 1,000 samples"
    )
    assert app.success[1].value.startswith(
        "**Best for latency:** h100\\-sxm\\-80gb (secure) — p95 12 ms"
    )
    warnings = " ".join(w.value for w in app.warning)
    assert "3 of 4 runs report simulated GPU metrics" in warnings
    assert ui.escape(f"{four_runs['b200'].id} (b200-180gb, failed)") in warnings
    comparison = compare(ids)
    table = app.dataframe[0].value
    assert list(table["Run"]) == ids
    assert list(table["Steady $/1k"])[:3] == [
        row.steady_usd_per_1k_samples for row in comparison.rows[:3]
    ]
    assert list(table["Pareto"]) == [False, True, True, False]
    assert list(table["Flags"])[3] == "not succeeded"
    # Four bars, the cost–latency scatter and the aligned time series.
    charts = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    assert len(charts) == 6
    titles = [chart["layout"]["title"]["text"] for chart in charts]
    assert titles[0] == "p95 latency (simulated)"
    assert all(title.endswith(" (simulated)") for title in titles)
    # Dollars on the cost axes, never in SI prefixes ("10µ").
    [cost] = [c for c in charts if c["layout"]["title"]["text"].startswith("Steady")]
    cost_axis = cost["layout"]["yaxis"]
    assert (cost_axis["tickprefix"], cost_axis["exponentformat"]) == ("$", "none")
    # Money and figures as everywhere on the dashboard; an empty cell is "—".
    shown = shown_cells(app)
    assert list(shown["Steady $/1k"])[:3] == [
        ui.usd(row.steady_usd_per_1k_samples) for row in comparison.rows[:3]
    ]
    assert list(shown.iloc[3])[5:9] == ["—", "—", "—", "—"]
    assert "None" not in shown.to_numpy()


def test_compare_per_gpu_type_shows_mean_and_range(
    open_page: Open, persephone_env: Path
) -> None:
    ids = [
        make_run(Spec("l4-24gb", p95_ms=p95, repeat_index=i)).id
        for i, p95 in enumerate([70.0, 80.0])
    ]
    app = open_page("pages/compare.py", runs=",".join(ids))

    app.radio(key="cmp_level").set_value("Per GPU type").run()

    table = app.dataframe[0].value
    assert list(table["GPU"]) == ["l4-24gb"]
    assert list(table["Runs ok"]) == ["2/2"]
    assert list(table["p95 ms"]) == ["75 ± 7.07 (70–80, n=2)"]


def test_compare_per_gpu_type_shows_a_dash_not_none_in_empty_cells(
    open_page: Open, four_runs: dict[str, Run]
) -> None:
    # A run stored without a frozen price (before prices were frozen, say).
    with session_scope() as session:
        row = session.get(Run, four_runs["b200"].id)
        assert row is not None
        row.price_per_hour = None
        session.add(row)
    ids = [run.id for run in four_runs.values()]
    app = open_page("pages/compare.py", runs=",".join(ids))

    app.radio(key="cmp_level").set_value("Per GPU type").run()

    assert app.dataframe[0].proto.placeholder == "—"
    shown = shown_cells(app)
    b200 = shown[shown["GPU"] == "b200-180gb"].iloc[0]
    assert (b200["$/GPU-hour"], b200["p95 ms"], b200["Steady $/1k"]) == (
        "—",
        "—",
        "—",
    )
    assert list(shown["$/GPU-hour"])[:3] == ["$0.43", "$0.69", "$2.69"]
    assert "None" not in shown.to_numpy()


def test_compare_downloads_are_the_exports_byte_for_byte(
    open_page: Open, four_runs: dict[str, Run]
) -> None:
    ids = [run.id for run in four_runs.values()]

    app = open_page("pages/compare.py", runs=",".join(ids))

    comparison = compare(ids)
    assert download_url(app, "cmp_csv_runs") == media_url(
        comparison_csv(comparison), "text/csv", "comparison-runs.csv", ".csv"
    )
    assert download_url(app, "cmp_csv_gpus") == media_url(
        comparison_csv(comparison, level="gpu_type"),
        "text/csv",
        "comparison-gpu-types.csv",
        ".csv",
    )
    assert download_url(app, "cmp_json") == media_url(
        comparison_json(comparison), "application/json", "comparison.json", ".json"
    )
    first = ids[0]
    assert download_url(app, "cmp_bundle") == media_url(
        run_bundle(first), "application/zip", f"{first}-bundle.zip", ".zip"
    )


def test_compare_a_sweep_from_the_address(
    open_page: Open, persephone_env: Path
) -> None:
    sweep = Sweep(
        model_ref="mock-v0",
        samples=100,
        gpu_types_json='["l4-24gb", "rtx-4090-24gb"]',
    )
    with session_scope() as session:
        session.add(sweep)
    for gpu_type in ("l4-24gb", "rtx-4090-24gb"):
        make_run(Spec(gpu_type, sweep_id=sweep.id))

    app = open_page("pages/compare.py", sweep=sweep.id)

    assert not app.exception
    assert app.caption[0].value == (
        f"Sweep `{sweep.id}`: `mock-v0`, 100 samples, 2 runs."
    )
    assert list(app.dataframe[0].value["GPU"]) == ["l4-24gb", "rtx-4090-24gb"]


def test_compare_an_unknown_sweep_is_an_error_not_a_traceback(
    open_page: Open,
) -> None:
    app = open_page("pages/compare.py", sweep="nosuch")

    assert not app.exception
    assert app.error[0].value.startswith("There is no sweep with id `nosuch`")
    app.button(key="cmp_clear").click().run()
    assert not app.error
    assert app.radio(key="cmp_mode").value == "A sweep"
    assert app.info[0].value.startswith("No sweep yet")


def test_compare_picks_runs_of_one_workload(
    open_page: Open, four_runs: dict[str, Run]
) -> None:
    make_run(Spec("a40-48gb", samples=50))

    app = open_page("pages/compare.py")
    app.radio(key="cmp_mode").set_value("Runs of one workload").run()

    workloads = app.selectbox(key="cmp_workload").options
    assert workloads == [
        "mock-v0 × 50 samples (batch_size=1, seed=0, warmup=2)",
        "mock-v0 × 100 samples (batch_size=1, seed=0, warmup=2)",
    ]
    app.selectbox(key="cmp_workload").set_value(workloads[1]).run()
    assert sorted(app.dataframe[0].value["GPU"]) == [
        "h100-sxm-80gb",
        "l4-24gb",
        "rtx-4090-24gb",
    ]


@pytest.mark.parametrize("named", ["", ",,,", " , "])
def test_compare_an_empty_run_list_in_the_address_says_so(
    open_page: Open, four_runs: dict[str, Run], named: str
) -> None:
    app = open_page("pages/compare.py", runs=named)

    assert not app.exception
    assert [e.value for e in app.error] == [
        f"The address's run list is empty ({ui.code('?runs=' + named)}): name run "
        "ids separated by commas, or choose other runs."
    ]
    assert not app.dataframe and not app.radio


def test_compare_runs_and_a_sweep_in_the_address_is_refused(
    open_page: Open, four_runs: dict[str, Run]
) -> None:
    app = open_page("pages/compare.py", runs=four_runs["l4"].id, sweep="b")

    assert [e.value for e in app.error] == [
        "The address names both `?runs=` and `?sweep=`: use one or the other (the "
        "API refuses both as well)."
    ]
    assert not app.dataframe


def test_compare_an_unknown_run_in_the_address_cannot_inject_markdown(
    open_page: Open, four_runs: dict[str, Run]
) -> None:
    hostile = "[Sign in again](http://evil)"

    app = open_page("pages/compare.py", runs=hostile)

    [error] = [e.value for e in app.error]
    assert "\\[Sign in again\\]\\(http" in error
    assert "[Sign in again](http" not in error


def test_sweep_refuses_a_seed_in_the_json_that_differs_from_the_seed_field(
    open_page: Open,
) -> None:
    app = open_page("pages/sweep.py")
    app.text_input(key="sweep_parameters").set_value('{"seed": 5, "warmup": 1}')
    app.number_input(key="sweep_seed").set_value(3)

    app = estimate(app, ["l4-24gb"], 5.0)

    assert [e.value for e in app.error] == [
        "**parameters** — the JSON sets seed=5 and the Seed field says 3: set the "
        "seed in one place (the Seed field, or remove it from the JSON)."
    ]
    assert not app.dataframe
    assert stored() == ([], [])


def test_sweep_accepts_the_same_seed_in_both_places(open_page: Open) -> None:
    app = open_page("pages/sweep.py")
    app.text_input(key="sweep_parameters").set_value('{"seed": 3}')
    app.number_input(key="sweep_seed").set_value(3)

    app = estimate(app, ["l4-24gb"], 5.0)

    assert not app.error
    assert app.metric[0].label == "Estimated total"
