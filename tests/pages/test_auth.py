"""The login gate: one key per browser session, never echoed."""

from __future__ import annotations

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from app import context
from app.ui import LAUNCH_PAGE, RUN_PAGE
from tests.pages.conftest import ORIGINAL_PAGES_MANAGER_INIT
from tests.pages.support import launch, open_page, texts

KEY = "k3y-that-must-never-show"


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSEPHONE_API_KEY", KEY)
    context.reset()


def _sign_in(app: AppTest, candidate: str) -> AppTest:
    app.text_input(key="login_api_key").input(candidate)
    return app.button[0].click().run()


def _shown(app: AppTest) -> str:
    return "\n".join(texts(app))


def test_unset_key_is_local_single_user_mode_said_in_the_sidebar() -> None:
    app = open_page()

    sidebar = [c.value for c in app.sidebar.caption]
    assert "Local single-user mode: no API key set (PERSEPHONE_API_KEY)." in sidebar
    assert any("Catalog mode: **mock**" in text for text in sidebar)


@pytest.mark.usefixtures("keyed")
def test_login_comes_before_any_page() -> None:
    app = open_page()

    assert not app.exception
    assert [t.value for t in app.title] == ["Persephone"]
    assert app.text_input(key="login_api_key").proto.type == 1  # password
    assert not app.get("plotly_chart") and not app.metric


@pytest.mark.usefixtures("keyed")
def test_wrong_key_is_refused_with_the_fix_and_never_echoed() -> None:
    app = open_page()

    _sign_in(app, "guess")

    assert [e.value for e in app.error] == [
        "That is not the dashboard's API key: enter the value of "
        "PERSEPHONE_API_KEY the server was started with."
    ]
    assert [t.value for t in app.title] == ["Persephone"]
    shown = _shown(app)
    assert "PERSEPHONE_API_KEY the server was started with" in shown
    assert "guess" not in shown


@pytest.mark.usefixtures("keyed")
def test_right_key_lets_the_session_through_once() -> None:
    app = open_page()

    _sign_in(app, KEY)

    assert not app.exception and not app.error
    assert app.title[0].value == "GPU catalog"
    assert "Signed in with the dashboard's API key." in app.sidebar.caption.values
    shown = _shown(app)
    assert "GPU catalog" in shown
    assert KEY not in shown
    assert KEY not in str(app.session_state.to_dict())
    # The same session moves between pages without asking again.
    run = launch()
    app.query_params["id"] = run.id
    app.switch_page(RUN_PAGE).run()
    assert app.title[0].value == f"Run {run.id}"


@pytest.mark.usefixtures("keyed")
def test_deep_link_is_gated_even_in_streamlit_v1_page_folder_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Until the router first runs in a server, Streamlit treats pages/ as v1
    # pages: a page file runs without the router, so each page checks the key.
    monkeypatch.setattr(PagesManager, "__init__", ORIGINAL_PAGES_MANAGER_INIT)
    run = launch()

    app = open_page(LAUNCH_PAGE)
    assert [t.value for t in app.title] == ["Persephone"]
    app = open_page(RUN_PAGE, id=run.id)
    assert [t.value for t in app.title] == ["Persephone"]
