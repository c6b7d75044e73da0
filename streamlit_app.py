"""Persephone's dashboard: the router that lists every page.

`server.py` serves this file together with the HTTP API; the API owns the
`/runs`, `/compute`, `/sweeps` and `/compare` paths, so no page uses them.
"""

from __future__ import annotations

import logging

import streamlit as st

from app import ui
from app.db import DatabaseError
from app.providers.base import ProviderError
from app.settings import SettingsError, get_settings

logger = logging.getLogger("persephone.dashboard")

# An emoji favicon is drawn by the browser from a data: URL. Without one the
# tab shows the page's :material/ icon, which the frontend fetches from
# fonts.gstatic.com: the dashboard would reach beyond its own server.
FAVICON = "🌱"
PAGES = [
    # The default page is served at "/": link to it with st.page_link or
    # st.switch_page and ui.CATALOG_PAGE, never with a path of its own.
    st.Page(ui.CATALOG_PAGE, title="Catalog", icon=":material/memory:", default=True),
    st.Page(
        ui.LAUNCH_PAGE,
        title="Launch",
        url_path="launch",
        icon=":material/rocket_launch:",
    ),
    st.Page(ui.RUNS_PAGE, title="Runs", url_path="history", icon=":material/list:"),
    st.Page(ui.SWEEP_PAGE, title="Sweep", url_path="sweep", icon=":material/stacks:"),
    st.Page(
        ui.COMPARE_PAGE,
        title="Compare",
        url_path="comparison",
        icon=":material/compare_arrows:",
    ),
    # Reached from a run's link (`run?id=...`), not from the menu.
    st.Page(
        ui.RUN_PAGE,
        title="Run",
        url_path="run",
        icon=":material/monitoring:",
        visibility="hidden",
    ),
]


def main() -> None:
    st.set_page_config(page_title="Persephone", page_icon=FAVICON, layout="wide")
    try:
        get_settings()
    except SettingsError as error:
        ui.fail(ui.escape(error))
    page = st.navigation(PAGES, position="sidebar" if ui.signed_in() else "hidden")
    ui.require_login()
    ui.sidebar_status()
    try:
        page.run()
    except (ProviderError, DatabaseError) as error:
        ui.fail(ui.escape(error))
    except Exception:
        logger.exception("page %s failed", page.url_path or "catalog")
        ui.fail("This page failed unexpectedly; the server log has the details.")


main()
