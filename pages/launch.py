"""Launch: start one benchmark run on a GPU type from the catalog."""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from agent.spec import MODEL_DTYPES, MODEL_REF_FORMS
from app import ui
from app.models import Run
from app.providers.base import CloudTier, GpuOffer, ProviderError
from app.services import catalog, runs

MODEL_HELP = "Accepted forms: " + ", ".join(f"`{form}`" for form in MODEL_REF_FORMS)
# Whole-number parameters; the agent's own rules check them on launch.
INT_PARAMETERS = {
    "batch_size": "Samples processed together per call.",
    "prompt_tokens": "Prompt length in tokens (language and embedding models).",
    "new_tokens": "Tokens generated per sample (language models).",
    "seed": "Seed for inputs and sampling, for repeatable runs.",
    "warmup": "Unmeasured calls before measuring starts.",
}


def _offer_label(offer: GpuOffer) -> str:
    prices = [
        f"{ui.usd(price)}/h {tier}"
        for tier, price in (
            ("secure", offer.price_secure_per_hour),
            ("community", offer.price_community_per_hour),
        )
        if price
    ]
    return f"{offer.display_name} · {offer.memory_gb} GB · {', '.join(prices)}"


def _wanted_slug(offers: list[GpuOffer], slugs: list[str]) -> str | None:
    """The GPU type the address names, or its only close match (said so)."""
    wanted = st.query_params.get("gpu")
    if not wanted or wanted in slugs:
        return wanted
    suggestions = catalog.suggest_slugs(wanted, offers)
    named = ", ".join(ui.code(slug) for slug in suggestions)
    if len(suggestions) == 1:
        st.warning(
            f"GPU type {ui.code(wanted)} is not a catalog slug: showing {named}, "
            "the nearest one. Check it before launching."
        )
        return suggestions[0]
    if suggestions:
        st.warning(
            f"GPU type {ui.code(wanted)} is not a catalog slug. Nearest: {named}; "
            "choose one below."
        )
    else:
        st.warning(
            f"GPU type {ui.code(wanted)} is not in the catalog: choose one below."
        )
    return None


def _choose_offer(offers: list[GpuOffer]) -> GpuOffer:
    by_slug = {offer.slug: offer for offer in offers}
    slugs = list(by_slug)
    wanted = _wanted_slug(offers, slugs)
    slug = st.selectbox(
        "GPU type",
        slugs,
        index=slugs.index(wanted) if wanted in by_slug else 0,
        format_func=lambda s: f"{_offer_label(by_slug[s])} ({s})",
        key="launch_gpu",
    )
    # Keeps the address shareable: it names the GPU on screen.
    st.query_params["gpu"] = slug
    return by_slug[slug]


def _choose_tier(offer: GpuOffer) -> CloudTier | None:
    tiers = offer.tiers
    return st.radio(
        "Cloud tier",
        tiers,
        format_func=lambda t: f"{t} ({ui.usd(offer.price_for(t))}/GPU-hour)",
        horizontal=True,
        key=f"launch_tier_{offer.slug}",
        help="The provider's price tier; the price is frozen into the run.",
    )


def _advanced_parameters() -> dict[str, int | str]:
    chosen: dict[str, int | str | None] = {}
    left, right = st.columns(2)
    for number, (name, help_text) in enumerate(INT_PARAMETERS.items()):
        column = left if number % 2 == 0 else right
        chosen[name] = column.number_input(
            name,
            value=None,
            step=1,
            placeholder="workload default",
            help=help_text,
            key=f"launch_{name}",
        )
    chosen["dtype"] = right.selectbox(
        "dtype",
        MODEL_DTYPES,
        index=None,
        placeholder="workload default",
        help="Weights and activations (hf: and embed: models).",
        key="launch_dtype",
    )
    return {name: value for name, value in chosen.items() if value is not None}


def _launch(payload: dict[str, object], message: DeltaGenerator) -> None:
    try:
        run: Run = runs.start_run(runs.parse_launch_request(payload))
    except runs.InvalidRequest as error:
        message.error(ui.field_error(error.field, str(error), error.suggestions))
        return
    except ProviderError as error:
        message.error(ui.escape(error))
        return
    with message:
        st.success(
            f"Run {ui.code(run.id)} is queued on {ui.escape(run.gpu_name)} "
            f"({ui.escape(run.cloud_tier)})."
        )
        ui.run_link(run.id, f"Open run {run.id}")


def render() -> None:
    ui.require_login()
    st.title("Launch a benchmark")
    st.write("Pick a GPU and a workload; the run starts at once and reports live.")
    try:
        offers = catalog.list_offers()
    except ProviderError as error:
        ui.fail(ui.escape(error))
    offer = _choose_offer(offers)
    tier = _choose_tier(offer)
    message = st.container()
    with st.form("launch"):
        model_ref = st.text_input("Model", value="mock-v0", help=MODEL_HELP)
        samples = st.number_input(
            "Samples", value=8, step=1, help="Measured samples, from 1 to 100000."
        )
        with st.expander("Advanced parameters"):
            parameters = _advanced_parameters()
        submitted = st.form_submit_button("Launch", type="primary")
    if submitted:
        payload = {
            "gpu_type": offer.slug,
            "tier": tier,
            "model_ref": model_ref,
            "samples": samples,
            "parameters": parameters,
        }
        _launch(payload, message)


render()
