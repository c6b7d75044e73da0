"""Every dashboard test gets a fresh installation in mock mode (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.runtime.pages_manager import PagesManager

ORIGINAL_PAGES_MANAGER_INIT = PagesManager.__init__


def _init_as_served(self: PagesManager, *args: object, **kwargs: object) -> None:
    ORIGINAL_PAGES_MANAGER_INIT(self, *args, **kwargs)  # type: ignore[arg-type]
    PagesManager.uses_pages_directory = False


@pytest.fixture(autouse=True)
def _fresh_install(persephone_env: Path) -> Path:
    return persephone_env


@pytest.fixture(autouse=True)
def _navigation_as_served(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route every run through streamlit_app.py, as a serving process does.

    AppTest looks for a `pages/` folder before each run and, finding one, runs
    Streamlit's v1 multipage mode, where a page file runs without the router.
    A server leaves that mode for good at the router's first `st.navigation`.
    """
    monkeypatch.setattr(PagesManager, "__init__", _init_as_served)
