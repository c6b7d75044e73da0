"""The real dashboard in headless Chromium: launch from the catalog, watch the
run succeed, download its CSV."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("browser")
    with running_server(data_dir) as running:
        yield running
    provider = MockProvider(data_dir)
    for pod in provider.find_pods(""):
        provider.terminate_pod(pod.pod_id)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "install Debian's chromium (apt-get install chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1400, "height": 1800}, accept_downloads=True
    )
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    yield opened
    context.close()


def test_launch_from_catalog_watch_success_download_csv(
    server: Server, page: Page, tmp_path: Path
) -> None:
    page.goto(server.url)
    page.locator(".st-key-launch_l4-24gb button").click()

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


def test_a_shared_run_link_opens_the_run_first(
    server: Server, browser: Browser
) -> None:
    started = httpx.post(
        f"{server.url}/runs/start",
        json={"gpu_type": "rtx-4090-24gb", "model_ref": "mock-v0", "samples": 8},
    )
    run_id = started.json()["run_id"]
    context = browser.new_context()
    fresh = context.new_page()

    fresh.goto(f"{server.url}/run?id={run_id}")

    expect(fresh.get_by_text(run_id).first).to_be_visible(timeout=30_000)
    expect(fresh.get_by_text("RTX 4090").first).to_be_visible()
    context.close()
