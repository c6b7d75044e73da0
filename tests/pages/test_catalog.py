"""The catalog page: every GPU type, filters, sorting, launch buttons, errors."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from app import ui
from app.providers.base import ProviderAuthError
from app.services import catalog
from tests.compare.factory import Spec, make_run
from tests.pages.support import open_page


def _gpu_names(app: AppTest) -> list[str]:
    return [
        m.value.split("**")[1]
        for m in app.markdown
        if m.value.startswith("**") and "`" in m.value
    ]


def test_lists_every_mock_gpu_with_prices_and_says_prices_are_illustrative() -> None:
    app = open_page()

    assert not app.exception and not app.error
    assert app.title[0].value == "GPU catalog"
    assert "prices are illustrative" in app.info[0].value
    assert len(_gpu_names(app)) == 15
    [count] = [c for c in app.caption.values if c.startswith("15 of 15 GPU types.")]
    assert " Prices read just now (" in count
    row = next(m for m in app.markdown if "`l4-24gb`" in m.value)
    assert row.value == "**L4**  \n`l4-24gb`"
    assert "$0.43/h" in [m.value for m in app.markdown]


def test_cheapest_first_by_default() -> None:
    app = open_page()

    # Community prices count: RTX A5000 at $0.16/h is the cheapest.
    assert _gpu_names(app)[:3] == ["RTX A5000", "RTX A4000", "RTX 3090"]


def test_minimum_vram_filter() -> None:
    app = open_page()

    app.selectbox(key="catalog_min_vram").select(80).run()

    names = _gpu_names(app)
    assert set(names) == {
        "A100 PCIe",
        "A100 SXM",
        "H100 PCIe",
        "H100 SXM",
        "H200 SXM",
        "B200",
    }
    assert any(c.startswith("6 of 15 GPU types.") for c in app.caption.values)


def test_maximum_price_filter_uses_the_cheapest_tier() -> None:
    app = open_page()

    app.number_input(key="catalog_max_price").set_value(0.2).run()

    assert _gpu_names(app) == ["RTX A5000", "RTX A4000"]


def test_no_match_says_how_to_widen() -> None:
    app = open_page()

    app.number_input(key="catalog_max_price").set_value(0.01).run()

    assert "No GPU type matches" in app.warning[0].value


def test_sort_by_vram_then_by_name() -> None:
    app = open_page()

    app.selectbox(key="catalog_sort").select("VRAM (largest first)").run()
    assert _gpu_names(app)[:2] == ["B200", "H200 SXM"]

    app.selectbox(key="catalog_sort").select("Name").run()
    names = _gpu_names(app)
    assert names == sorted(names, key=str.lower)


def test_launch_button_opens_launch_page_with_that_gpu() -> None:
    app = open_page()
    button = app.button(key="launch_rtx-4090-24gb")
    # An icon, named when pointed at: a label would be cut to "La…".
    assert (button.label, button.help) == ("", "Launch a benchmark on RTX 4090")

    button.click().run()

    assert not app.exception
    assert app.title[0].value == "Launch a benchmark"
    assert app.query_params["gpu"] == "rtx-4090-24gb"
    assert app.selectbox(key="launch_gpu").value == "rtx-4090-24gb"


class _RefusingProvider:
    def list_offers(self) -> list[object]:
        raise ProviderAuthError(
            "RunPod refused the API key (401): check RUNPOD_API_KEY."
        )


def test_provider_error_is_one_sentence_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(catalog, "get_provider", _RefusingProvider)

    app = open_page()

    assert not app.exception
    assert [e.value for e in app.error] == [
        ui.escape("RunPod refused the API key (401): check RUNPOD_API_KEY.")
    ]
    assert not app.button


def test_sort_by_measured_cost_puts_measured_types_first() -> None:
    # H100 SXM: $2.69/h × 2 s ÷ 100 samples; L4: $0.43/h × 30 s ÷ 100 samples.
    make_run(Spec(gpu_type="h100-sxm-80gb", measure_s=2.0, simulated=False))
    make_run(Spec(gpu_type="l4-24gb", measure_s=30.0, simulated=False))
    app = open_page()

    app.selectbox(key="catalog_sort").select(
        "Measured cost per 1,000 samples (lowest first)"
    ).run()

    assert _gpu_names(app)[:2] == ["H100 SXM", "L4"]
    assert "$0.0149" in [m.value for m in app.markdown]
    assert "$0.0358" in [m.value for m in app.markdown]
    assert "2 GPU types measured with `mock-v0`." in app.caption.values


def test_a_tiny_measured_cost_is_not_zero_and_simulated_ones_say_so() -> None:
    # $0.43/h × 0.0186 s ÷ 200 samples × 1000: a matrix multiply's cost.
    make_run(Spec(model_ref="gemm:bf16:256", samples=200, measure_s=0.0186))

    app = open_page()
    app.text_input(key="catalog_workload").set_value("gemm:bf16:256").run()

    assert "$0.0000111 :gray[simulated]" in [m.value for m in app.markdown]
    assert "1 GPU type measured with `gemm:bf16:256`." in app.caption.values
