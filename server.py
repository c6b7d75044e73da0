"""Persephone's one server: the dashboard, the HTTP API and the supervisor.

Start it with `streamlit run server.py` (what `make run` does). Streamlit
serves the pages of `streamlit_app.py`; the API routes and the background
supervisor ride along on the same port.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route
from streamlit.runtime.pages_manager import PagesManager

from app import api, api_compare, web_auth
from app.context import get_supervisor
from app.db import DatabaseError, get_engine
from app.settings import SettingsError, get_settings

logging.basicConfig(
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)
logger = logging.getLogger("persephone")

try:
    settings = get_settings()
    get_engine()
except (SettingsError, DatabaseError) as error:
    sys.stderr.write(f"Persephone cannot start: {error}\n")
    raise SystemExit(2) from None


@asynccontextmanager
async def lifespan(_app: st.App) -> AsyncIterator[None]:
    supervisor = get_supervisor()
    supervisor.start()
    logger.info(
        "Persephone ready: %s mode, database %s, API key %s",
        settings.catalog_mode,
        "at PERSEPHONE_DB_URL" if settings.db_url else settings.database_url,
        "required" if settings.api_key else "not required (local single-user mode)",
    )
    try:
        yield
    finally:
        supervisor.stop()


def on_script_error(error: Exception) -> bool:
    """Log a page's unexpected error; the page shows a sentence, not a trace."""
    logger.error("page failed: %s", error, exc_info=error)
    st.error("This page failed unexpectedly; the server log has the details.")
    return True


# The router (streamlit_app.py) declares every page with st.navigation, which
# switches Streamlit's old "pages/ folder" mode off on its first run. A first
# request for a deep link such as /launch would otherwise run in that mode,
# because this project's page files live in a folder named pages/.
PagesManager.uses_pages_directory = False


async def catalog_redirect(_request: Request) -> RedirectResponse:
    # The catalog is the default page, which Streamlit serves at "/".
    return RedirectResponse("/", status_code=308)


app = st.App(
    "streamlit_app.py",
    routes=[
        *api.routes(),
        *api_compare.routes(),
        *web_auth.routes(),
        Route("/catalog", catalog_redirect, methods=["GET"]),
    ],
    lifespan=lifespan,
    on_script_error=on_script_error,
)
