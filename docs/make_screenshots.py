"""Take the README's screenshots of the real dashboard in headless Chromium.

Starts the server in mock mode on a free loopback port with a throwaway data
folder, runs a four-GPU sweep of mock-v0 through the HTTP API, and saves
docs/catalog.png, docs/run.png, docs/sweep.png and docs/compare.png.

    .venv/bin/python docs/make_screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.serving import running_server  # noqa: E402
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

DOCS = ROOT / "docs"
GPU_TYPES = ["l4-24gb", "rtx-4090-24gb", "a100-sxm-80gb", "h100-sxm-80gb"]


def run_sweep(url: str) -> tuple[str, list[str]]:
    body = {
        "gpu_types": GPU_TYPES,
        "model_ref": "mock-v0",
        "samples": 400,
        "confirmed": True,
    }
    sweep = httpx.post(f"{url}/sweeps", json=body, timeout=30).json()
    run_ids = list(sweep["run_ids"])
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        states = [
            httpx.get(f"{url}/runs/{run_id}", timeout=10).json()["status"]
            for run_id in run_ids
        ]
        if all(state == "succeeded" for state in states):
            return sweep["sweep"]["sweep_id"], run_ids
        time.sleep(1)
    raise SystemExit(f"the sweep did not finish: {states}")


def shoot(page: Page, url: str, name: str, wait_for: str, height: int) -> None:
    # Streamlit scrolls inside its own container: a tall window shows it all.
    page.set_viewport_size({"width": 1400, "height": height})
    page.goto(url)
    page.get_by_text(wait_for).first.wait_for(timeout=60_000)
    page.wait_for_timeout(3000)
    charts = page.locator('[data-testid="stPlotlyChart"]')
    for index in range(charts.count()):
        # Plotly draws a chart once it has scrolled into view.
        charts.nth(index).scroll_into_view_if_needed()
        charts.nth(index).locator(".main-svg").first.wait_for(timeout=30_000)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(1000)
    page.screenshot(path=DOCS / name)
    print(f"saved docs/{name}")


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as data_dir,
        running_server(Path(data_dir)) as server,
        sync_playwright() as playwright,
    ):
        sweep_id, run_ids = run_sweep(server.url)
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        shoot(page, server.url, "catalog.png", "GPU catalog", 1100)
        run_url = f"{server.url}/run?id={run_ids[1]}"
        shoot(page, run_url, "run.png", "Latency p50", 3400)
        comparison = f"{server.url}/comparison?sweep={sweep_id}"
        shoot(page, comparison, "compare.png", "Best for cost:", 3400)
        browser.close()


if __name__ == "__main__":
    main()
