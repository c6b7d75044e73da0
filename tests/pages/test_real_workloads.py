"""A gemm run and an hf: run with a tiny model, launched as the dashboard does,
run by real agents in mock pods, then shown on the run page."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.models import Run
from app.providers.mock import MockProvider
from app.services import runs
from app.settings import get_settings
from app.supervisor import Supervisor, Timing
from app.ui import RUN_PAGE
from tests.agent.tiny_models import build_tiny_llama
from tests.pages.support import open_page

FAST = Timing(poll_s=0.05, scan_s=0.1, reaper_s=float("inf"))


@pytest.fixture
def supervisor(persephone_env: Path) -> Iterator[Supervisor]:
    provider = MockProvider(persephone_env, simulate_gpu=True)
    running = Supervisor(lambda: provider, get_settings(), timing=FAST)
    runs.on_change(running.wake)
    running.start()
    yield running
    running.stop()


def run_to_the_end(payload: dict[str, object]) -> Run:
    run = runs.start_run(runs.parse_launch_request(payload))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run = runs.get_run(run.id)
        if run.finished_at is not None and not run.may_be_billing:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run.id} did not finish: {run!r}")


def metric(app: AppTest, label: str) -> str:
    return str(next(m.value for m in app.metric if m.label == label))


def phase_bands(app: AppTest) -> set[str]:
    """The phases drawn as bands behind the charts' lines."""
    names = set()
    for chart in app.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        for shape in spec.get("layout", {}).get("shapes", []):
            names.add(str(shape.get("name", "")))
    return names


def test_gemm_run_shows_tflops_phases_and_energy_method(
    supervisor: Supervisor,
) -> None:
    run = run_to_the_end(
        {"gpu_type": "l4-24gb", "model_ref": "gemm:fp32:128", "samples": 5}
    )

    assert run.state == "succeeded", run.error_message
    result = runs.result_document(run.id)
    assert result is not None and result.throughput.tflops
    app = open_page(RUN_PAGE, id=run.id)

    assert not app.exception
    assert float(metric(app, "TFLOP/s").replace(",", "")) > 0
    assert metric(app, "Samples measured (n)") == "5"
    assert {"load", "warmup", "measure"} <= phase_bands(app)
    energy_note = next(m.proto.delta for m in app.metric if m.label == "Energy")
    assert energy_note == "power_integration, estimated"


def test_hf_tiny_model_run_shows_token_metrics(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    model = build_tiny_llama(tmp_path / "tiny-llama")

    run = run_to_the_end(
        {
            "gpu_type": "rtx-4090-24gb",
            "model_ref": f"hf:{model}",
            "samples": 3,
            "parameters": {"prompt_tokens": 8, "new_tokens": 4, "warmup": 1},
        }
    )

    assert run.state == "succeeded", run.error_message
    assert run.output_tokens == 12
    app = open_page(RUN_PAGE, id=run.id)

    assert not app.exception
    assert metric(app, "TTFT p50").endswith("ms")
    assert metric(app, "TPOT p50").endswith("ms")
    assert float(metric(app, "Output tokens/s").replace(",", "")) > 0
    assert {"load", "measure"} <= phase_bands(app)
