"""The login gate: a plain form post, then a session cookie; the key never echoed.

AppTest cannot send cookies, so these tests replace `ui._session_cookie`, the
one place the dashboard reads the browser's cookie, with the token a browser
would send. The routes that issue the cookie are tested in tests/test_web_auth.py
and, with a real browser, in tests/test_browser.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from app import context, ui, web_auth
from app.ui import LAUNCH_PAGE, RUN_PAGE
from tests.pages.conftest import ORIGINAL_PAGES_MANAGER_INIT
from tests.pages.support import ROUTER, launch, open_page, texts

KEY = "k3y-that-must-never-show"


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSEPHONE_API_KEY", KEY)
    context.reset()


def _send_cookie(monkeypatch: pytest.MonkeyPatch, token: str | None) -> None:
    monkeypatch.setattr(ui, "_session_cookie", lambda: token)


def _shown(app: AppTest) -> str:
    return "\n".join(texts(app))


def _form(app: AppTest) -> str:
    [form] = [element.proto.body for element in app.get("html")]
    return str(form)


def test_unset_key_is_local_single_user_mode_said_in_the_sidebar() -> None:
    app = open_page()

    sidebar = [c.value for c in app.sidebar.caption]
    assert "Local single-user mode: no API key set (PERSEPHONE_API_KEY)." in sidebar
    assert any("Catalog mode: **mock**" in text for text in sidebar)
    assert not app.get("html")


@pytest.mark.usefixtures("keyed")
def test_sign_in_form_comes_before_any_page_and_posts_to_the_server() -> None:
    app = open_page()

    assert not app.exception
    assert [t.value for t in app.title] == ["Persephone"]
    form = _form(app)
    assert '<form class="persephone-signin" method="post" action="/auth/signin">' in (
        form
    )
    assert '<input type="password" name="key"' in form
    assert '<input type="hidden" name="next" value="/">' in form
    assert not app.get("plotly_chart") and not app.metric and not app.error
    assert KEY not in _shown(app)


@pytest.mark.usefixtures("keyed")
def test_the_form_comes_back_to_the_deep_link_it_was_shown_on() -> None:
    run = launch()
    app = AppTest.from_file(str(ROUTER), default_timeout=30)
    app.context["url"] = "http://127.0.0.1:8501/run"
    app.run()
    app.query_params.update({"id": run.id, "signin": "failed"})
    app.switch_page(RUN_PAGE).run()

    assert [t.value for t in app.title] == ["Persephone"]
    # The failed attempt's marker is dropped; the page and its query stay.
    assert f'name="next" value="/run?id={run.id}"' in _form(app)


@pytest.mark.usefixtures("keyed")
def test_a_refused_key_is_said_with_the_fix() -> None:
    app = open_page(None)
    app.query_params["signin"] = "failed"
    app.run()

    assert [e.value for e in app.error] == [
        "That key is not PERSEPHONE_API_KEY: enter the value the server was "
        "started with."
    ]
    assert [t.value for t in app.title] == ["Persephone"]


@pytest.mark.usefixtures("keyed")
def test_a_valid_session_cookie_lets_every_page_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _send_cookie(monkeypatch, web_auth.issue_token())

    app = open_page()

    assert not app.exception and not app.error
    assert app.title[0].value == "GPU catalog"
    assert "Signed in with the dashboard's API key." in app.sidebar.caption.values
    # A sign-out button posts to the server, which clears the cookie.
    assert 'action="/auth/signout"' in _form(app)
    assert KEY not in _shown(app)
    assert KEY not in str(app.session_state.to_dict())
    run = launch()
    app.query_params["id"] = run.id
    app.switch_page(RUN_PAGE).run()
    assert app.title[0].value == f"Run {run.id}"


# Made inside the test: a token needs the test installation's secret.
BAD_TOKENS: dict[str, Callable[[], str]] = {
    "empty": lambda: "",
    "garbage": lambda: "not-a-token",
    "expired": lambda: web_auth.issue_token(now=time.time() - 13 * 3600),
    "tampered": lambda: re.sub(r"^\d+", "1", web_auth.issue_token()),
}


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_an_invalid_session_cookie_is_asked_to_sign_in(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    _send_cookie(monkeypatch, BAD_TOKENS[kind]())

    app = open_page()

    assert [t.value for t in app.title] == ["Persephone"]
    assert 'action="/auth/signin"' in _form(app)


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
