"""Sweep: one workload on several GPU types at once, priced before it starts."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from agent.spec import MODEL_REF_FORMS
from app import ui
from app.providers.base import GpuOffer, ProviderError
from app.services import catalog, sweeps
from app.services.runs import InvalidRequest
from app.services.sweeps import (
    DEFAULT_CONFIRM_ABOVE_USD,
    MAX_GPU_TYPES,
    MAX_REPEATS,
    ConfirmationRequired,
    SweepEstimate,
    SweepRequest,
)

PLAN_KEY = "sweep_plan"
LAUNCHED_KEY = "sweep_launched"
LIVE_REFRESH_S = 2.0
DEFAULT_TIER = "each GPU type's default"
MODEL_HELP = "Accepted forms: " + ", ".join(f"`{form}`" for form in MODEL_REF_FORMS)
PARAMETERS_HELP = (
    'A JSON object of workload parameters, e.g. {"batch_size": 4, "warmup": 5}: '
    "batch_size, prompt_tokens, new_tokens, dtype, warmup. Leave {} for the "
    "workload's defaults."
)
BASIS_TEXT = {
    "history": "past runs",
    "history_scaled": "past runs, scaled",
    "mock_model": "mock timing model",
    "timeout": "upper bound (timeout)",
}


@dataclass(frozen=True)
class _Plan:
    """An estimated sweep, waiting for the user to launch it."""

    request: SweepRequest
    estimate: SweepEstimate
    confirm_above_usd: float

    @property
    def needs_confirmation(self) -> bool:
        return self.estimate.total_usd > self.confirm_above_usd


def _offer_label(offer: GpuOffer) -> str:
    tiers = ", ".join(
        f"{ui.usd(offer.price_for(tier))}/h {tier}" for tier in offer.tiers
    )
    return f"{offer.display_name} · {offer.memory_gb} GB · {tiers or 'no price'}"


def _form(offers: list[GpuOffer]) -> tuple[dict[str, object], float] | None:
    """The form's payload and threshold once submitted, else None."""
    by_slug = {offer.slug: offer for offer in offers}
    with st.form("sweep"):
        gpu_types = st.multiselect(
            "GPU types",
            list(by_slug),
            format_func=lambda slug: f"{_offer_label(by_slug[slug])} ({slug})",
            max_selections=MAX_GPU_TYPES,
            key="sweep_gpus",
        )
        model_ref = st.text_input(
            "Model", value="mock-v0", help=MODEL_HELP, key="sweep_model"
        )
        left, middle, right = st.columns(3)
        samples = left.number_input("Samples", value=100, step=1, key="sweep_samples")
        seed = middle.number_input("Seed", value=0, step=1, key="sweep_seed")
        repeats = right.number_input(
            "Repeats per GPU type",
            min_value=1,
            max_value=MAX_REPEATS,
            value=1,
            key="sweep_repeats",
            help="Several runs per GPU type show how much the figures spread.",
        )
        tier = left.selectbox(
            "Cloud tier", [DEFAULT_TIER, "secure", "community"], key="sweep_tier"
        )
        threshold = middle.number_input(
            "Ask me to confirm above (USD)",
            min_value=0.0,
            value=DEFAULT_CONFIRM_ABOVE_USD,
            step=1.0,
            key="sweep_threshold",
        )
        parameters = st.text_input(
            "Other parameters (JSON)",
            value="{}",
            help=PARAMETERS_HELP,
            key="sweep_parameters",
        )
        submitted = st.form_submit_button("Estimate cost", type="primary")
    if not submitted:
        return None
    payload: dict[str, object] = {
        "gpu_types": gpu_types,
        "model_ref": model_ref,
        "samples": samples,
        "repeats": repeats,
        "parameters": _with_seed(_parameters(parameters), seed),
    }
    if tier != DEFAULT_TIER:
        payload["tier"] = tier
    return payload, float(threshold)


def _parameters(text: str) -> dict[str, object]:
    try:
        parsed = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        ui.fail(f"**parameters** — not valid JSON ({error.msg}): write e.g. {{}}.")
    if not isinstance(parsed, dict):
        ui.fail("**parameters** — must be a JSON object such as {}, not a list.")
    return parsed


def _with_seed(parameters: dict[str, object], seed: int) -> dict[str, object]:
    """The parameters with the Seed field's seed; a different one in the JSON is
    refused rather than silently replaced."""
    if "seed" in parameters and parameters["seed"] != seed:
        ui.fail(
            f"**parameters** — the JSON sets seed={ui.escape(parameters['seed'])} "
            f"and the Seed field says {seed}: set the seed in one place (the Seed "
            "field, or remove it from the JSON)."
        )
    return {**parameters, "seed": seed}


def _plan(payload: dict[str, object], threshold: float) -> _Plan:
    try:
        request = sweeps.parse_sweep_request(payload)
        estimate = sweeps.estimate_sweep(request)
    except InvalidRequest as error:
        ui.fail(ui.field_error(error.field, str(error), error.suggestions))
    return _Plan(request, estimate, threshold)


def _show_estimate(plan: _Plan) -> None:
    estimate = plan.estimate
    st.subheader("Estimated cost")
    table = pd.DataFrame(
        {
            "GPU": [g.gpu_type for g in estimate.gpus],
            "Tier": [g.tier for g in estimate.gpus],
            "$/GPU-hour": [g.price_per_hour_usd for g in estimate.gpus],
            "Runs": [g.runs for g in estimate.gpus],
            "Seconds per run": [round(g.duration_s, 1) for g in estimate.gpus],
            "Based on": [BASIS_TEXT[g.basis] for g in estimate.gpus],
            "Cost (USD)": [g.cost_usd for g in estimate.gpus],
        }
    )
    # Formatted as everywhere on the dashboard; the cells stay numbers.
    st.dataframe(
        table.style.format({"$/GPU-hour": ui.usd, "Cost (USD)": ui.usd}, na_rep="—"),
        hide_index=True,
        placeholder="—",
    )
    st.metric("Estimated total", ui.usd(estimate.total_usd))
    notes = "; ".join(sorted({g.basis_note for g in estimate.gpus}))
    st.caption(
        "Frozen prices × estimated billed time (pod start to confirmed "
        f"termination). {ui.escape(notes)}"
    )
    for gpu in estimate.gpus:
        if gpu.exceeds_timeout:
            st.warning(
                f"{ui.code(gpu.gpu_type)} would need longer than "
                f"PERSEPHONE_REQUEST_TIMEOUT_S={estimate.timeout_s:g} s: its runs "
                "will be stopped there. Lower the samples or raise the timeout."
            )


def _launch_controls(plan: _Plan) -> None:
    confirmed = False
    if plan.needs_confirmation:
        st.warning(
            f"The estimate, {ui.usd(plan.estimate.total_usd)}, is above your "
            f"threshold of {ui.usd(plan.confirm_above_usd)}."
        )
        confirmed = st.checkbox(
            f"I accept an estimated cost of {ui.usd(plan.estimate.total_usd)}",
            key="sweep_confirm",
        )
    blocked = plan.needs_confirmation and not confirmed
    if st.button("Launch sweep", type="primary", disabled=blocked, key="sweep_go"):
        _launch(plan, confirmed)


def _launch(plan: _Plan, confirmed: bool) -> None:
    try:
        sweep = sweeps.start_sweep(
            plan.request, confirmed=confirmed, confirm_above_usd=plan.confirm_above_usd
        )
    except ConfirmationRequired as refused:
        ui.fail(ui.escape(refused))
    except InvalidRequest as error:
        ui.fail(ui.field_error(error.field, str(error), error.suggestions))
    except ProviderError as error:
        ui.fail(ui.escape(error))
    st.session_state.pop(PLAN_KEY, None)
    st.session_state[LAUNCHED_KEY] = sweep.id
    st.rerun()


def _show_launched(sweep_id: str) -> None:
    try:
        detail = sweeps.get_sweep(sweep_id)
    except sweeps.SweepNotFound as error:
        ui.fail(ui.escape(error))
    st.success(
        f"Sweep {ui.code(sweep_id)} launched: {ui.plural(len(detail.runs), 'run')} "
        f"of {ui.code(detail.sweep.model_ref)} on "
        f"{ui.plural(len(detail.gpu_types), 'GPU type')}."
    )
    st.page_link(
        ui.COMPARE_PAGE,
        label=f"Compare sweep {sweep_id}",
        query_params={"sweep": sweep_id},
        icon=":material/compare_arrows:",
    )
    live = any(run.is_active for run in detail.runs)
    st.fragment(run_every=LIVE_REFRESH_S if live else None)(_run_states)(sweep_id, live)


def _run_states(sweep_id: str, was_live: bool) -> None:
    """Each run's link and state, refreshed while any of them is still going."""
    detail = sweeps.get_sweep(sweep_id)
    for run in detail.runs:
        left, right = st.columns([3, 2])
        with left:
            ui.run_link(
                run.id, f"{ui.escape(run.gpu_type)} · repeat {run.repeat_index + 1}"
            )
        right.markdown(ui.status_markdown(run))
    if was_live and not any(run.is_active for run in detail.runs):
        # All final: one full rerun draws the page without the refresh timer.
        st.rerun()


def render() -> None:
    ui.require_login()
    st.title("Sweep")
    st.write(
        "Run one workload on several GPU types at once; the cost is estimated "
        "before anything starts."
    )
    try:
        offers = catalog.list_offers()
    except ProviderError as error:
        ui.fail(ui.escape(error))
    submitted = _form(offers)
    if submitted is not None:
        st.session_state.pop(LAUNCHED_KEY, None)
        st.session_state[PLAN_KEY] = _plan(*submitted)
    plan: _Plan | None = st.session_state.get(PLAN_KEY)
    if plan is not None:
        _show_estimate(plan)
        _launch_controls(plan)
    launched: str | None = st.session_state.get(LAUNCHED_KEY)
    if launched is not None:
        _show_launched(launched)


render()
