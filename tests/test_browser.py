"""The real dashboard in headless Chromium: launch from the catalog, watch the
run succeed, download its CSV; what only a browser shows (links that Markdown
would make, the favicon, live refreshes, the sign-in cookie)."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from app.providers.mock import MockProvider
from tests.serving import Server, running_server

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
# Without these, Chromium phones home at start and the closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


API_KEY = "browser-test-key-never-shown"
HOSTILE = "[Sign in again](http://evil) :red[**expired**] http://evil.example/x"


def _serve(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    with running_server(data_dir, extra_env) as running:
        yield running
    provider = MockProvider(data_dir)
    for pod in provider.find_pods(""):
        provider.terminate_pod(pod.pod_id)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(
        tmp_path_factory.mktemp("browser-keyed"), {"PERSEPHONE_API_KEY": API_KEY}
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "install Debian's chromium (apt-get install chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


class Requests:
    """Every URL a browser context asks for, pages and downloads alike."""

    def __init__(self, context: BrowserContext) -> None:
        self.urls: list[str] = []
        context.on("request", lambda request: self.urls.append(request.url))

    def hosts(self) -> set[str]:
        # data: and blob: URLs name no host: they never leave the browser.
        return {
            urlsplit(url).hostname or urlsplit(url).scheme
            for url in self.urls
            if not url.startswith(("data:", "blob:"))
        }


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(
        viewport={"width": 1400, "height": 1800}, accept_downloads=True
    )
    opened.set_default_timeout(30_000)
    yield opened
    opened.close()


@pytest.fixture
def requests(context: BrowserContext) -> Requests:
    return Requests(context)


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def _wait_for_run(server: Server, run_id: str, headers: dict[str, str]) -> dict:
    """The run's JSON once it is final and its pod confirmed terminated."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = httpx.get(f"{server.url}/runs/{run_id}", headers=headers).json()
        if run["finished_at"] and run["pod"]["terminated_at"]:
            return run
        time.sleep(0.25)
    raise AssertionError(f"run {run_id} did not settle: {run}")


def _start_run(server: Server, headers: dict[str, str] | None = None) -> str:
    started = httpx.post(
        f"{server.url}/runs/start",
        json={"gpu_type": "rtx-4090-24gb", "model_ref": "mock-v0", "samples": 8},
        headers=headers or {},
    )
    assert started.status_code == 201, started.text
    return str(started.json()["run_id"])


def test_launch_from_catalog_watch_success_download_csv(
    server: Server, page: Page, requests: Requests, tmp_path: Path
) -> None:
    page.goto(server.url)
    page.locator(".st-key-launch_l4-24gb button").first.click()

    expect(page).to_have_url(re.compile(r"/launch\?gpu=l4-24gb"))
    page.get_by_role("button", name="Launch").last.click()
    page.get_by_role("link", name=re.compile(r"Open run ")).click()

    expect(page).to_have_url(re.compile(r"/run\?id=[0-9a-f]+"))
    run_id = page.url.rsplit("=", 1)[1]
    expect(page.get_by_text("Latency p50")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("succeeded").first).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()

    with page.expect_download() as download_info:
        page.get_by_role("button", name="gpu_timeseries.csv").click()
    download = download_info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)

    assert download.suggested_filename == f"{run_id}-gpu_timeseries.csv"
    served = httpx.get(f"{server.url}/runs/{run_id}/timeseries.csv")
    assert served.status_code == 200
    assert saved.read_bytes() == served.content
    header = saved.read_bytes().split(b"\n", 1)[0]
    assert header.startswith(b"timestamp,elapsed_s,phase,gpu_index")

    # Once the pod is confirmed gone, the page fills in the billed cost itself.
    expect(page.get_by_text("may still be billing")).to_have_count(0)
    billed = page.locator('[data-testid="stMetric"]', has_text="Total billed")
    expect(billed.locator('[data-testid="stMetricValue"]')).to_contain_text("$")
    # The favicon is an emoji drawn from a data: URL, and the whole flow never
    # asked anything of a host other than this server.
    icon = page.locator("link[rel='shortcut icon']").get_attribute("href") or ""
    assert icon.startswith("data:image/svg+xml"), icon
    assert requests.hosts() == {"127.0.0.1"}, sorted(set(requests.urls))


def test_a_shared_run_link_opens_the_run_first(
    server: Server, browser: Browser
) -> None:
    started = httpx.post(
        f"{server.url}/runs/start",
        json={"gpu_type": "rtx-4090-24gb", "model_ref": "mock-v0", "samples": 8},
    )
    run_id = started.json()["run_id"]
    context = browser.new_context()
    requests = Requests(context)
    fresh = context.new_page()

    fresh.goto(f"{server.url}/run?id={run_id}")

    expect(fresh.get_by_text(run_id).first).to_be_visible(timeout=30_000)
    expect(fresh.get_by_text("RTX 4090").first).to_be_visible()
    assert requests.hosts() == {"127.0.0.1"}, sorted(set(requests.urls))
    context.close()


def test_text_from_the_address_makes_no_link(
    server: Server, page: Page, requests: Requests
) -> None:
    page.goto(f"{server.url}/run?id={quote(HOSTILE)}")

    error = page.locator('[data-testid="stAlertContentError"]')
    expect(error).to_contain_text("[Sign in again](http://evil)")
    expect(error).to_contain_text(":red[**expired**]")
    assert page.locator('a[href^="http://evil"]').count() == 0
    assert error.locator("a").count() == 0

    page.goto(f"{server.url}/comparison?runs={quote(HOSTILE)}")
    # Where "://" appears, an invisible word joiner keeps Markdown from linking.
    expect(page.locator('[data-testid="stAlertContentError"]')).to_contain_text(
        "[Sign in again](http:"
    )
    assert page.locator('a[href^="http://evil"]').count() == 0
    assert requests.hosts() == {"127.0.0.1"}


class _Database:
    """The served installation's SQLite file, to hold a run in one state."""

    def __init__(self, server: Server) -> None:
        self.path = server.data_dir / "persephone.db"

    def update(self, run_id: str, **values: object) -> None:
        names = ", ".join(f"{name} = ?" for name in values)
        with sqlite3.connect(self.path, timeout=10) as connection:
            connection.execute(
                f"UPDATE run SET {names} WHERE id = ?",  # noqa: S608 - names are ours
                [*values.values(), run_id],
            )

    def value(self, run_id: str, name: str) -> object:
        with sqlite3.connect(self.path, timeout=10) as connection:
            row = connection.execute(
                f"SELECT {name} FROM run WHERE id = ?",  # noqa: S608 - name is ours
                [run_id],
            ).fetchone()
        return row[0]


def test_a_finished_run_page_follows_its_pod_until_termination_is_confirmed(
    server: Server, page: Page
) -> None:
    run_id = _start_run(server)
    _wait_for_run(server, run_id, {})
    database = _Database(server)
    terminated_at = database.value(run_id, "pod_terminated_at")
    # Hold the run's lease so the supervisor leaves it as this test sets it.
    held_until = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    database.update(
        run_id,
        pod_terminated_at=None,
        terminate_attempts=2,
        terminate_error="RunPod answered 502 Bad Gateway",
        lease_owner="browser-test",
        lease_until=held_until.strftime("%Y-%m-%d %H:%M:%S.%f"),
    )

    page.goto(f"{server.url}/run?id={run_id}")
    warning = page.locator('[data-testid="stAlertContentWarning"]', has_text="billing")
    expect(warning).to_contain_text("after 2 attempt")
    billed = page.locator('[data-testid="stMetric"]', has_text="Total billed")
    expect(billed.locator('[data-testid="stMetricValue"]')).to_have_text("—")

    # No reload from here on: the page follows the database by itself.
    database.update(run_id, terminate_attempts=3)
    expect(warning).to_contain_text("after 3 attempt", timeout=15_000)

    database.update(
        run_id,
        pod_terminated_at=terminated_at,
        terminate_error=None,
        lease_owner=None,
        lease_until=None,
    )
    expect(page.get_by_text("may still be billing")).to_have_count(0, timeout=15_000)
    expect(billed.locator('[data-testid="stMetricValue"]')).to_contain_text("$")


def test_sign_in_lasts_the_browser_session_and_covers_deep_links(
    keyed_server: Server, browser: Browser
) -> None:
    server = keyed_server
    headers = {"X-API-Key": API_KEY}
    probe = httpx.post(f"{server.url}/auth/signin", data={"key": "x"})
    assert probe.status_code == 303, (
        "server.py does not serve app.web_auth.routes() yet "
        f"(POST /auth/signin answered {probe.status_code})"
    )
    run_id = _start_run(server, headers)
    _wait_for_run(server, run_id, headers)
    context = browser.new_context()
    requests = Requests(context)
    page = context.new_page()
    page.set_default_timeout(30_000)

    # A wrong key first: refused, with the fix, and never shown back.
    page.goto(f"{server.url}/run?id={run_id}")
    page.locator("input[name=key]").fill("a-wrong-key")
    page.locator("form.persephone-signin button").click()
    expect(page.get_by_text("That key is not PERSEPHONE_API_KEY")).to_be_visible()

    page.goto(f"{server.url}/run?id={run_id}")
    page.locator("input[name=key]").fill(API_KEY)
    page.locator("form.persephone-signin button").click()
    expect(page).to_have_url(f"{server.url}/run?id={run_id}")
    expect(page.get_by_role("heading", name=f"Run {run_id}")).to_be_visible()
    [cookie] = [c for c in context.cookies() if c["name"] == "persephone_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["expires"] == -1  # a session cookie
    assert API_KEY not in cookie["value"]

    page.reload()
    expect(page.get_by_role("heading", name=f"Run {run_id}")).to_be_visible()
    second = context.new_page()
    second.goto(f"{server.url}/run?id={run_id}")
    expect(second.get_by_role("heading", name=f"Run {run_id}")).to_be_visible()
    assert second.locator("input[name=key]").count() == 0
    assert API_KEY not in page.content() and API_KEY not in second.content()
    assert all(API_KEY not in url for url in requests.urls)
    assert requests.hosts() == {"127.0.0.1"}

    # Signing out ends it for every tab of this browser session.
    second.get_by_role("button", name="Sign out").click()
    expect(second.locator("input[name=key]")).to_be_visible()
    page.reload()
    expect(page.locator("input[name=key]")).to_be_visible()
    context.close()

    # A new browser session signs in again.
    fresh = browser.new_context()
    other = fresh.new_page()
    other.goto(f"{server.url}/run?id={run_id}")
    expect(other.locator("input[name=key]")).to_be_visible(timeout=30_000)
    assert other.get_by_role("heading", name=f"Run {run_id}").count() == 0
    fresh.close()


SWEEP_GPUS = ["l4-24gb", "rtx-4090-24gb", "a100-sxm-80gb", "h100-sxm-80gb"]


def test_sweep_four_gpus_then_compare_and_export(
    server: Server, page: Page, requests: Requests, tmp_path: Path
) -> None:
    page.goto(f"{server.url}/sweep")
    picker = page.locator(".st-key-sweep_gpus input")
    for slug in SWEEP_GPUS:
        picker.fill(slug)
        picker.press("Enter")
    page.locator(".st-key-sweep_samples input").fill("60")
    page.get_by_role("button", name="Estimate cost").click()
    page.get_by_role("button", name="Launch sweep").click()
    page.get_by_role("link", name=re.compile(r"Compare sweep ")).click()

    expect(page).to_have_url(re.compile(r"/comparison\?sweep=[0-9a-f]+"))
    sweep_id = page.url.rsplit("=", 1)[1]
    run_ids = httpx.get(f"{server.url}/sweeps/{sweep_id}").json()["runs"]
    for run in run_ids:
        _wait_for_run(server, run["run_id"], {})
    page.reload()
    expect(page.get_by_text("Best for cost:").first).to_be_visible(timeout=60_000)
    # The fastest simulated GPU of the four (speed 5.5) has the lowest p95.
    expect(page.get_by_text("Best for latency: h100-sxm-80gb")).to_be_visible()

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Comparison per run (CSV)").click()
    saved = tmp_path / "comparison.csv"
    download_info.value.save_as(saved)

    served = httpx.get(
        f"{server.url}/compare", params={"sweep": sweep_id, "format": "csv"}
    )
    assert saved.read_bytes() == served.content
    lines = saved.read_text().splitlines()
    assert len(lines) == 1 + len(SWEEP_GPUS)
    assert {slug for slug in SWEEP_GPUS if any(slug in line for line in lines)} == set(
        SWEEP_GPUS
    )
    assert requests.hosts() == {"127.0.0.1"}
