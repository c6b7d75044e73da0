"""Catalog: every GPU type with its memory, hourly prices and availability."""

from __future__ import annotations

import math

import streamlit as st

from app import ui
from app.models import RunState
from app.providers.base import GpuOffer, ProviderError
from app.services import catalog, runs
from app.services.compare import measured_cost_by_gpu
from app.settings import get_settings

SORTS = {
    "Price (lowest first)": lambda o: (_lowest_price(o), o.display_name),
    "VRAM (largest first)": lambda o: (-o.memory_gb, _lowest_price(o)),
    "Name": lambda o: (o.display_name.lower(), o.memory_gb),
}
MEASURED_SORT = "Measured cost per 1,000 samples (lowest first)"
AVAILABILITY_COLOURS = {
    "high": "green",
    "medium": "orange",
    "low": "red",
    "none": "gray",
}
# Widths checked in Chromium at 1280 and 1400 px: no header or button is cut.
COLUMN_WIDTHS = (2.4, 1, 1.2, 1.4, 1.4, 1.9, 0.7)
HEADERS = (
    ("GPU", None),
    ("VRAM", None),
    ("Secure", None),
    ("Community", None),
    ("Availability", None),
    (
        "Measured $/1k",
        "Median steady-state cost per 1,000 samples of this workload's succeeded "
        "runs on each GPU type; *simulated* when those runs ran on mock pods.",
    ),
    ("", None),
)
# As many runs as the measured-cost service reads.
MEASURED_RUNS_LIMIT = 10_000


def _lowest_price(offer: GpuOffer) -> float:
    prices = (offer.price_secure_per_hour, offer.price_community_per_hour)
    return min((price for price in prices if price), default=float("inf"))


def _filters(offers: list[GpuOffer]) -> tuple[int, float | None, str]:
    memory_choices = sorted({offer.memory_gb for offer in offers})
    left, middle, right = st.columns(3)
    min_vram = left.selectbox(
        "Minimum VRAM (GB)",
        [0, *memory_choices],
        format_func=lambda gb: f"{gb} GB" if gb else "any",
        key="catalog_min_vram",
    )
    max_price = middle.number_input(
        "Maximum price ($/GPU-hour)",
        min_value=0.0,
        value=None,
        step=0.1,
        placeholder="any",
        key="catalog_max_price",
        help="Compared with the cheapest tier each GPU is offered in.",
    )
    sort = right.selectbox("Sort by", [*SORTS, MEASURED_SORT], key="catalog_sort")
    return int(min_vram), max_price, sort


def _measured_costs() -> tuple[str, dict[str, float], set[str]]:
    """The workload, its measured cost per GPU type, and the simulated types."""
    model_ref = st.text_input(
        "Workload measured",
        "mock-v0",
        key="catalog_workload",
        help="Median steady-state cost per 1,000 samples of succeeded runs of this "
        "model_ref on each GPU type.",
    )
    succeeded = runs.list_runs(
        model_ref=model_ref,
        states=[RunState.SUCCEEDED.value],
        limit=MEASURED_RUNS_LIMIT,
    )
    simulated = {run.gpu_type for run in succeeded if run.simulated_metrics}
    return model_ref, measured_cost_by_gpu(model_ref), simulated


def _measured_text(slug: str, measured: dict[str, float], simulated: set[str]) -> str:
    cost = measured.get(slug)
    if cost is None:
        return ":gray[not measured]"
    return ui.usd(cost) + (" :gray[simulated]" if slug in simulated else "")


def _row(offer: GpuOffer, measured: dict[str, float], simulated: set[str]) -> None:
    cells = st.columns(COLUMN_WIDTHS, vertical_alignment="center")
    cells[0].markdown(f"**{ui.escape(offer.display_name)}**  \n{ui.code(offer.slug)}")
    cells[1].write(f"{offer.memory_gb} GB")
    cells[2].write(_price(offer.price_secure_per_hour))
    cells[3].write(_price(offer.price_community_per_hour))
    colour = AVAILABILITY_COLOURS.get(offer.availability or "", "gray")
    cells[4].markdown(f":{colour}[{ui.escape(offer.availability or 'unknown')}]")
    cells[5].markdown(_measured_text(offer.slug, measured, simulated))
    if cells[6].button(
        "",
        key=f"launch_{offer.slug}",
        icon=":material/rocket_launch:",
        help=f"Launch a benchmark on {ui.escape(offer.display_name)}",
    ):
        st.switch_page(ui.LAUNCH_PAGE, query_params={"gpu": offer.slug})


def _price(value: float | None) -> str:
    return f"{ui.usd(value)}/h" if value else "—"


def _header() -> None:
    for cell, (name, help_text) in zip(st.columns(COLUMN_WIDTHS), HEADERS, strict=True):
        if name:
            cell.markdown(f"**{name}**", help=help_text)


def _prices_read(offers: list[GpuOffer]) -> str:
    """When the oldest price shown was read from the provider."""
    moments = [offer.read_at for offer in offers if offer.read_at is not None]
    if not moments:
        return ""
    oldest = min(moments)
    return f" Prices read {ui.age(oldest)} ({ui.when(oldest)})."


def render() -> None:
    ui.require_login()
    st.title("GPU catalog")
    st.write("GPU types you can benchmark on, with the price per GPU-hour per tier.")
    if get_settings().catalog_mode == "mock":
        st.info(
            "Mock catalog: prices are illustrative, not quotes, and GPU metrics are "
            "simulated on machines without a GPU."
        )
    try:
        offers = catalog.list_offers()
    except ProviderError as error:
        ui.fail(ui.escape(error))
    min_vram, max_price, sort = _filters(offers)
    shown = [
        offer
        for offer in offers
        if offer.memory_gb >= min_vram
        and (max_price is None or _lowest_price(offer) <= max_price)
    ]
    model_ref, measured, simulated = _measured_costs()
    if sort == MEASURED_SORT:
        # GPU types never measured for this workload go last, cheapest first.
        shown.sort(key=lambda o: (measured.get(o.slug, math.inf), _lowest_price(o)))
    else:
        shown.sort(key=SORTS[sort])
    st.caption(
        f"{len(shown)} of {ui.plural(len(offers), 'GPU type')}.{_prices_read(shown)}"
    )
    st.caption(
        f"{ui.plural(len(measured), 'GPU type')} measured with {ui.code(model_ref)}."
    )
    if not shown:
        st.warning(
            "No GPU type matches these filters: lower the VRAM or raise the price."
        )
        return
    _header()
    for offer in shown:
        _row(offer, measured, simulated)


render()
