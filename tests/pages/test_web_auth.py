"""Dashboard sign-in: the session token and the /auth routes (app.web_auth)."""

from __future__ import annotations

import logging
import re
import time

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from app import context, web_auth

KEY = "k3y-that-must-never-show"
NOW = 1_767_600_000.0


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSEPHONE_API_KEY", KEY)
    monkeypatch.setattr(web_auth, "FAILED_SIGNIN_DELAY_S", 0.0)
    context.reset()


@pytest.fixture
def client(keyed: None) -> TestClient:
    app = Starlette(routes=web_auth.routes())
    return TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)


# The token


@pytest.mark.usefixtures("keyed")
def test_a_fresh_token_is_valid_for_twelve_hours() -> None:
    token = web_auth.issue_token(now=NOW)

    assert re.fullmatch(r"1767600000\.[0-9a-f]{64}", token)
    assert web_auth.token_valid(token, now=NOW)
    assert web_auth.token_valid(token, now=NOW + 12 * 3600)
    assert not web_auth.token_valid(token, now=NOW + 12 * 3600 + 1)
    # Issued far in the future: forged or a broken clock.
    assert not web_auth.token_valid(token, now=NOW - 3600)


@pytest.mark.usefixtures("keyed")
def test_a_tampered_token_is_refused() -> None:
    token = web_auth.issue_token(now=NOW)
    issued, mac = token.split(".")

    later = f"{int(issued) + 3600}.{mac}"
    flipped = f"{issued}.{mac[:-1]}{'0' if mac[-1] != '0' else '1'}"

    assert not web_auth.token_valid(later, now=NOW + 3600)
    assert not web_auth.token_valid(flipped, now=NOW)
    for garbage in (None, "", ".", issued, f"{issued}.", f" {token}", f"{token}x"):
        assert not web_auth.token_valid(garbage, now=NOW)


@pytest.mark.usefixtures("keyed")
def test_a_token_of_another_secret_or_another_api_key_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = web_auth.issue_token(now=NOW)

    assert not web_auth.token_valid(token, now=NOW, secret=b"another installation")

    # A new PERSEPHONE_API_KEY signs every browser out.
    monkeypatch.setenv("PERSEPHONE_API_KEY", "a-new-key")
    context.reset()
    assert not web_auth.token_valid(token, now=NOW)


@pytest.mark.parametrize(
    ("asked", "safe"),
    [
        ("/run?id=abc", "/run?id=abc"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("run", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_is_a_path_on_this_server_or_the_root(
    asked: str | None, safe: str
) -> None:
    assert web_auth.safe_next(asked) == safe


def test_the_form_escapes_the_path_it_returns_to() -> None:
    form = web_auth.signin_form('/run?id="><script>alert(1)</script>')

    assert "<script>" not in form
    assert 'value="/run?id=&quot;&gt;&lt;script&gt;' in form


# The routes


def test_the_right_key_sets_a_session_cookie_and_returns_to_next(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    answer = client.post("/auth/signin", data={"key": KEY, "next": "/run?id=abc"})

    assert answer.status_code == 303
    assert answer.headers["location"] == "/run?id=abc"
    [cookie] = answer.headers.get_list("set-cookie")
    name, _, rest = cookie.partition("=")
    token, *flags = [part.strip() for part in rest.split(";")]
    assert name == "persephone_session"
    assert web_auth.token_valid(token)
    assert {flag.lower() for flag in flags} == {
        "httponly",
        "path=/",
        "samesite=strict",
    }
    # No Max-Age or Expires: the cookie ends with the browser session.
    assert KEY not in cookie and KEY not in answer.text
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    "asked", ["//evil.example/", "https://evil.example/", "/\\evil.example", ""]
)
def test_an_open_redirect_is_refused(client: TestClient, asked: str) -> None:
    answer = client.post("/auth/signin", data={"key": KEY, "next": asked})

    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


@pytest.mark.parametrize(
    "form", [{"key": "guess", "next": "/run?id=abc"}, {"next": "/"}, {"key": ""}]
)
def test_a_wrong_or_missing_key_goes_back_to_the_form(
    client: TestClient, caplog: pytest.LogCaptureFixture, form: dict[str, str]
) -> None:
    caplog.set_level(logging.DEBUG)

    answer = client.post("/auth/signin", data=form)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/?signin=failed"
    assert "set-cookie" not in answer.headers
    assert "guess" not in caplog.text
    assert "dashboard sign-in refused" in caplog.text


def test_a_key_sent_as_json_or_in_the_query_is_not_a_sign_in(
    client: TestClient,
) -> None:
    as_json = client.post("/auth/signin", json={"key": KEY})
    in_query = client.post(f"/auth/signin?key={KEY}")

    for answer in (as_json, in_query):
        assert answer.headers["location"] == "/?signin=failed"
        assert "set-cookie" not in answer.headers


def test_an_oversized_form_is_refused(client: TestClient) -> None:
    answer = client.post("/auth/signin", data={"key": KEY, "next": "/" + "a" * 9000})

    assert answer.headers["location"] == "/?signin=failed"


def test_sign_in_is_post_only(client: TestClient) -> None:
    assert client.get("/auth/signin", params={"key": KEY}).status_code == 405


def test_sign_out_clears_the_cookie(client: TestClient) -> None:
    client.post("/auth/signin", data={"key": KEY, "next": "/"})

    answer = client.post("/auth/signout")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    [cookie] = answer.headers.get_list("set-cookie")
    assert cookie.startswith('persephone_session="";')
    assert "max-age=0" in cookie.lower()


def test_the_failed_sign_in_is_slowed(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web_auth, "FAILED_SIGNIN_DELAY_S", 0.2)
    started = time.monotonic()

    client.post("/auth/signin", data={"key": "guess"})

    assert time.monotonic() - started >= 0.2


@pytest.mark.usefixtures("keyed")
def test_over_https_the_cookie_is_secure() -> None:
    app = Starlette(routes=web_auth.routes())
    client = TestClient(app, base_url="https://127.0.0.1", follow_redirects=False)

    answer = client.post("/auth/signin", data={"key": KEY, "next": "/"})

    assert "secure" in answer.headers["set-cookie"].lower().split("; ")
