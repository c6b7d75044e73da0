"""What every dashboard page shares: the login gate, run status, formatting.

Pages import these helpers and `app.services`; nothing here talks to a
provider or the database except through the services.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from typing import NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import streamlit as st

from app.models import Run, RunState, utcnow
from app.security import api_key_matches, api_key_required
from app.settings import get_settings

CATALOG_PAGE = "pages/catalog.py"
LAUNCH_PAGE = "pages/launch.py"
RUNS_PAGE = "pages/runs.py"
RUN_PAGE = "pages/run_detail.py"
SWEEP_PAGE = "pages/sweep.py"
COMPARE_PAGE = "pages/compare.py"

SIGNED_IN_KEY = "persephone_signed_in"
STATUS_COLOURS = {
    RunState.SUCCEEDED: "green",
    RunState.FAILED: "red",
    RunState.TIMED_OUT: "orange",
    RunState.CANCELLED: "gray",
}


def fail(message: str) -> NoReturn:
    """Show one sentence and end the page: never a traceback."""
    st.error(message)
    st.stop()


# Login


def signed_in() -> bool:
    return not api_key_required() or bool(st.session_state.get(SIGNED_IN_KEY))


def require_login() -> None:
    """Ask for PERSEPHONE_API_KEY once per browser session; stop until it matches.

    The router calls it before any page, and every page calls it again: from a
    server's start until the router first runs, Streamlit treats `pages/` as a
    v1 page folder, where a page's address runs that page without the router.
    """
    if signed_in():
        return
    st.title("Persephone")
    st.write("This dashboard is shared: enter its API key to continue.")
    # Cleared on submit so the key never travels back to the browser.
    with st.form("login", clear_on_submit=True):
        candidate = st.text_input("API key", type="password", key="login_api_key")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        if api_key_matches(candidate):
            st.session_state[SIGNED_IN_KEY] = True
            st.rerun()
        st.error(
            "That is not the dashboard's API key: enter the value of "
            "PERSEPHONE_API_KEY the server was started with."
        )
    st.stop()


def sidebar_status() -> None:
    settings = get_settings()
    if settings.catalog_mode == "mock":
        st.sidebar.caption(
            "Catalog mode: **mock** — illustrative prices, local mock pods."
        )
    else:
        st.sidebar.caption("Catalog mode: **runpod** — live RunPod prices and pods.")
    if api_key_required():
        st.sidebar.caption("Signed in with the dashboard's API key.")
    else:
        st.sidebar.caption(
            "Local single-user mode: no API key set (PERSEPHONE_API_KEY)."
        )


# Runs


def status_markdown(run: Run) -> str:
    """The run's state in colour; active states read as still going."""
    state = run.run_state
    if state in STATUS_COLOURS:
        text = f":{STATUS_COLOURS[state]}[{state.value.replace('_', ' ')}]"
    else:
        text = f":blue[{state.value}…]"
    if run.cancel_requested and run.is_active:
        text += " :gray[(cancelling)]"
    return text


def billing_flag(run: Run) -> str | None:
    """A warning when a finished run's pod has no confirmed termination."""
    if run.is_active or not run.may_be_billing:
        return None
    return f":red[⚠ pod {run.pod_id} may still be billing]"


def wall_seconds(run: Run) -> float:
    """Launch to end (or to now while the run is active)."""
    end = run.finished_at or utcnow()
    return max(0.0, (end - run.created_at).total_seconds())


def run_link(run_id: str, label: str | None = None, *, icon: bool = True) -> None:
    st.page_link(
        RUN_PAGE,
        label=label or run_id,
        query_params={"id": run_id},
        icon=":material/monitoring:" if icon else None,
    )


def download_name(run_id: str, artifact: str) -> str:
    return f"{run_id}-{artifact}"


# Formatting


def significant(value: float, digits: int = 3) -> str:
    """`digits` significant figures, never in exponent notation."""
    if abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return np.format_float_positional(
        value, precision=digits, unique=False, fractional=False, trim="-"
    )


def usd(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    if value >= 1:
        return f"${value:,.2f}"
    return f"${significant(value, digits)}"


def quantity(value: float | None, unit: str = "", digits: int = 3) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{significant(value, digits)} {unit}".strip()


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def age(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    seconds = (utcnow() - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h ago"
    return f"{seconds // 86400:.0f} d ago"


def _browser_zone() -> tzinfo:
    name = st.context.timezone
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def when(moment: datetime | None) -> str:
    """A stored UTC time in the reader's own time zone."""
    if moment is None:
        return "—"
    local = moment.astimezone(_browser_zone())
    return local.strftime("%Y-%m-%d %H:%M:%S %Z")
