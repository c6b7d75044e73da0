"""Dashboard sign-in: one form post per browser session, then a signed cookie.

`POST /auth/signin` checks the posted key against PERSEPHONE_API_KEY and sets
`persephone_session`, an HttpOnly, SameSite=Strict cookie without an expiry
date, so it ends with the browser session. Its value is the issue time and an
HMAC-SHA256 of it; the key never goes into the cookie, a URL or a log. The
dashboard's pages read the cookie through `st.context.cookies` (app.ui).

The signing key is derived from the installation secret and the API key, so
changing PERSEPHONE_API_KEY (or the secret) signs every browser out.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import logging
import re
import time
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.security import api_key_matches, installation_secret
from app.settings import get_settings

logger = logging.getLogger(__name__)

COOKIE_NAME = "persephone_session"
SESSION_TTL_S = 12 * 3600
# A token issued this far "in the future" still counts: clocks drift a little.
CLOCK_SKEW_S = 60
SIGNIN_PATH = "/auth/signin"
SIGNOUT_PATH = "/auth/signout"
FAILED_SIGNIN_PATH = "/?signin=failed"
FAILED_SIGNIN_DELAY_S = 0.5
# A sign-in form is a key and a path: anything larger is not one.
MAX_FORM_BYTES = 8192
MAX_NEXT_CHARS = 2048
_TOKEN = re.compile(r"(?P<issued>[0-9]{1,12})\.(?P<mac>[0-9a-f]{64})")
_KEY_LABEL = b"persephone dashboard session v1"


def _signing_key(secret: bytes | None = None) -> bytes:
    api_key = get_settings().api_key
    key_digest = hashlib.sha256(
        api_key.get_secret_value().encode("utf-8") if api_key else b""
    ).digest()
    base = secret if secret is not None else installation_secret()
    return hmac.new(base, _KEY_LABEL + key_digest, hashlib.sha256).digest()


def _mac(issued: int, secret: bytes | None) -> str:
    message = str(issued).encode("ascii")
    return hmac.new(_signing_key(secret), message, hashlib.sha256).hexdigest()


def issue_token(now: float | None = None, *, secret: bytes | None = None) -> str:
    """A session token: the issue time in whole seconds, a dot, its MAC."""
    issued = int(time.time() if now is None else now)
    return f"{issued}.{_mac(issued, secret)}"


def token_valid(
    token: str | None, now: float | None = None, *, secret: bytes | None = None
) -> bool:
    """True for a token this installation signed in the last SESSION_TTL_S."""
    match = _TOKEN.fullmatch(token or "")
    if match is None:
        return False
    issued = int(match["issued"])
    moment = time.time() if now is None else now
    if issued > moment + CLOCK_SKEW_S or moment - issued > SESSION_TTL_S:
        return False
    return hmac.compare_digest(match["mac"], _mac(issued, secret))


def safe_next(value: str | None) -> str:
    """A path on this server to return to; anything else becomes "/".

    Browsers read a backslash as a slash and drop tabs and newlines, so
    "/\\evil.example" or "/\\t/evil.example" would leave the site.
    """
    if (
        not value
        or len(value) > MAX_NEXT_CHARS
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value)
    ):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def signin_form(next_path: str) -> str:
    """The sign-in form as HTML: a plain post, so the key never reaches the page."""
    target = html.escape(safe_next(next_path), quote=True)
    return f"""
<style>
  .persephone-signin {{ display: flex; gap: 0.5rem; align-items: end;
    flex-wrap: wrap; max-width: 36rem; }}
  .persephone-signin label {{ display: flex; flex-direction: column;
    gap: 0.25rem; flex: 1 1 16rem; font-size: 0.875rem; }}
  .persephone-signin input[type=password] {{ padding: 0.5rem 0.75rem;
    border: 1px solid #d5d7de; border-radius: 0.5rem; font-size: 1rem; }}
  .persephone-signin button {{ padding: 0.5rem 1rem; border-radius: 0.5rem;
    border: 1px solid #d5d7de; background: #ff4b4b; color: white;
    font-size: 1rem; cursor: pointer; }}
</style>
<form class="persephone-signin" method="post" action="{SIGNIN_PATH}">
  <input type="hidden" name="next" value="{target}">
  <label>API key
    <input type="password" name="key" autocomplete="current-password" required
      autofocus>
  </label>
  <button type="submit">Sign in</button>
</form>
"""


def signout_form() -> str:
    return f"""
<form method="post" action="{SIGNOUT_PATH}" style="margin: 0">
  <button type="submit" style="padding: 0.25rem 0.75rem; border-radius: 0.5rem;
    border: 1px solid #d5d7de; background: transparent; cursor: pointer;">
    Sign out</button>
</form>
"""


async def _form_fields(request: Request) -> dict[str, str]:
    """The posted url-encoded form, first value of each field; {} if it is not one."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {name: values[0] for name, values in parsed.items() if values}


def _secure(request: Request) -> bool:
    # Behind a TLS proxy the server sees http: the cookie then lacks Secure.
    return request.url.scheme == "https"


async def signin(request: Request) -> Response:
    fields = await _form_fields(request)
    candidate = fields.get("key")
    client = request.client.host if request.client else "unknown"
    if not candidate or not api_key_matches(candidate):
        logger.warning("dashboard sign-in refused (wrong key) from %s", client)
        # Slows guessing; the key is compared in constant time either way.
        await asyncio.sleep(FAILED_SIGNIN_DELAY_S)
        return RedirectResponse(FAILED_SIGNIN_PATH, status_code=303)
    response = RedirectResponse(safe_next(fields.get("next")), status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        issue_token(),
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    logger.info("dashboard sign-in from %s", client)
    return response


async def signout(request: Request) -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


def routes() -> list[Route]:
    """The sign-in routes server.py serves next to the dashboard."""
    return [
        Route(SIGNIN_PATH, signin, methods=["POST"]),
        Route(SIGNOUT_PATH, signout, methods=["POST"]),
    ]
