"""What every dashboard page shares: the login gate, run status, formatting.

Pages import these helpers and `app.services`; nothing here talks to a
provider or the database except through the services.

Streamlit renders every alert, caption and Markdown body as Markdown, so any
text a user, a URL, a provider or an agent supplied goes through `escape` (in
a sentence) or `code` (a name or an id) before it reaches one.
"""

from __future__ import annotations

import math
import re
import string
from datetime import UTC, datetime, tzinfo
from typing import NoReturn
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import streamlit as st

from app import web_auth
from app.models import Run, RunState, utcnow
from app.security import api_key_required
from app.settings import get_settings

CATALOG_PAGE = "pages/catalog.py"
LAUNCH_PAGE = "pages/launch.py"
RUNS_PAGE = "pages/runs.py"
RUN_PAGE = "pages/run_detail.py"
SWEEP_PAGE = "pages/sweep.py"
COMPARE_PAGE = "pages/compare.py"

STATUS_COLOURS = {
    RunState.SUCCEEDED: "green",
    RunState.FAILED: "red",
    RunState.TIMED_OUT: "orange",
    RunState.CANCELLED: "gray",
}


def fail(message: str) -> NoReturn:
    """Show one sentence and end the page: never a traceback.

    `message` is Markdown: pass what others supplied through `escape` or `code`.
    """
    st.error(message)
    st.stop()


# Markdown


_ESCAPED = frozenset(string.punctuation)
# GitHub-flavoured Markdown links bare URLs and e-mail addresses after escapes
# are resolved, so an invisible word joiner is put where each would start.
_WORD_JOINER = "\u2060"
_AUTOLINK_STARTS = re.compile(r"(?<=:)(?=//)|(?<=@)|(?<=www)(?=\.)", re.IGNORECASE)


def escape(text: object) -> str:
    """`text` as literal Markdown: no link, colour, emphasis, math or HTML forms.

    Every ASCII punctuation character is backslash-escaped (CommonMark allows
    that for each of them), which stops `[..](..)`, `:red[..]`, `**`, `$` and
    `<..>`; a word joiner stops bare URLs and addresses becoming links.
    """
    joined = _AUTOLINK_STARTS.sub(_WORD_JOINER, str(text))
    return "".join(f"\\{char}" if char in _ESCAPED else char for char in joined)


def code(text: object) -> str:
    """`text` as an inline code span, whatever backticks it holds."""
    value = str(text).replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def field_error(field: str, message: str, suggestions: list[str] | None = None) -> str:
    """A form error naming the field, its message and any suggested values."""
    hint = f" Try: {', '.join(code(s) for s in suggestions)}." if suggestions else ""
    return f"**{escape(field)}** — {escape(message)}{hint}"


# Login


def _session_cookie() -> str | None:
    """The browser's session cookie (AppTest cannot send one: tests replace this)."""
    value = st.context.cookies.get(web_auth.COOKIE_NAME)
    # Without a browser (AppTest, bare mode) the cookies are not strings.
    return value if isinstance(value, str) else None


def signed_in() -> bool:
    return not api_key_required() or web_auth.token_valid(_session_cookie())


def _current_path() -> str:
    """This page's path and query, for the sign-in form to come back to."""
    path = urlsplit(st.context.url or "").path or "/"
    query = [
        (name, value)
        for name in st.query_params
        if name != "signin"
        for value in st.query_params.get_all(name)
    ]
    return f"{path}?{urlencode(query)}" if query else path


def require_login() -> None:
    """Ask for PERSEPHONE_API_KEY once per browser session; stop until signed in.

    The form posts to /auth/signin (app.web_auth), which sets a session cookie
    and comes back here. The router calls this before any page, and every page
    calls it again: from a server's start until the router first runs,
    Streamlit treats `pages/` as a v1 page folder, where a page's address runs
    that page without the router.
    """
    if signed_in():
        return
    st.title("Persephone")
    st.write(
        "This dashboard is shared: sign in with its API key, once per browser session."
    )
    if st.query_params.get("signin") == "failed":
        st.error(
            "That key is not PERSEPHONE_API_KEY: enter the value the server was "
            "started with."
        )
    st.html(web_auth.signin_form(_current_path()))
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
        with st.sidebar:
            st.html(web_auth.signout_form())
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


def terminating(run: Run) -> bool:
    """Final, with the pod's first terminate call not yet answered."""
    return (
        not run.is_active
        and run.may_be_billing
        and run.terminate_attempts == 0
        and not run.terminate_error
    )


def billing_flag(run: Run) -> str | None:
    """A note while a finished run's pod has no confirmed termination."""
    if run.is_active or not run.may_be_billing:
        return None
    if terminating(run):
        return ":gray[terminating pod…]"
    return f":red[⚠ pod {escape(run.pod_id)} may still be billing]"


def settled(run: Run) -> bool:
    """Final, and its pod (if it had one) confirmed gone: nothing will change."""
    return not run.is_active and not run.may_be_billing


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
    """Dollars: cents from $1 up, else `digits` significant figures ($0.0000274)."""
    if value is None or math.isnan(value):
        return "—"
    if abs(value) >= 1 or value == 0:
        return f"${value:,.2f}"
    whole, _, decimals = significant(value, digits).partition(".")
    return f"${whole}.{decimals.ljust(2, '0')}"


def quantity(value: float | None, unit: str = "", digits: int = 3) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{significant(value, digits)} {unit}".strip()


def duration(seconds: float | None) -> str:
    """Milliseconds under a second, then seconds, minutes, hours."""
    if seconds is None or math.isnan(seconds):
        return "—"
    # Below 999.5 ms: three significant figures would round up to "1000 ms".
    if seconds < 0.9995:
        return quantity(seconds * 1000, "ms")
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """The count and its noun: 1 run, 2 runs; `nouns` for an irregular plural."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


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
