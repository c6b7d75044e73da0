"""Every dashboard test gets a fresh installation in mock mode (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from tests.pages.support import Refreshes

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


@pytest.fixture
def refreshes(monkeypatch: pytest.MonkeyPatch) -> Refreshes:
    """Record each page fragment's refresh timer, then declare it as usual."""
    seen = Refreshes()
    declare = st.fragment

    def fragment(
        func: Callable[..., Any] | None = None,
        *,
        run_every: float | None = None,
        **options: Any,
    ) -> Any:
        def register(function: Callable[..., Any]) -> Any:
            seen.seen[function.__name__] = run_every
            return declare(function, run_every=run_every, **options)

        return register(func) if func is not None else register

    monkeypatch.setattr(st, "fragment", fragment)
    return seen
