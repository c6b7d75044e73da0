"""Each workload through the real runner, with the fake NVML for telemetry."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.clock import RunClock
from agent.config import load_config
from agent.results import ResultStore
from agent.runner import Runner, RunState
from agent.schema import Result
from agent.spec import WorkloadSpec
from agent.telemetry import GpuSampler, write_header
from agent.workloads import SampleTiming, Workload, create_workload
from tests.agent.conftest import StartAgent
from tests.agent.support import read_csv_rows
from tests.agent.tiny_models import build_tiny_llama, build_tiny_sentence_transformer
from tests.fakes import fake_pynvml
from tests.fakes.fake_pynvml import FakeNvml

MakeWorkload = Callable[[WorkloadSpec], Workload]


def run_in_process(
    workspace: Path,
    model_ref: str,
    samples: int,
    params: dict[str, object] | None = None,
    *,
    fake: FakeNvml | None = None,
    make_workload: MakeWorkload | None = None,
) -> Result:
    config = load_config(
        {
            "MODEL_REF": model_ref,
            "SAMPLES": str(samples),
            "PERSEPHONE_AGENT_TOKEN": "t",
            "PERSEPHONE_PARAMS": json.dumps(params or {}),
            "PERSEPHONE_WORKSPACE": str(workspace),
        }
    )
    assert config.errors == [] and config.spec is not None
    workspace.mkdir(parents=True, exist_ok=True)
    clock = RunClock()
    csv_path = workspace / "gpu_timeseries.csv"
    write_header(csv_path)
    module = fake_pynvml.build_module(fake or FakeNvml())
    sampler = GpuSampler(
        csv_path,
        clock,
        sample_hz=10.0,
        simulate=False,
        cuda_visible_devices=None,
        load_nvml=lambda: module,
    )
    store = ResultStore(workspace / "result.json")
    runner = Runner(
        config,
        config.spec,
        clock,
        store,
        RunState(None, samples),
        {},
        make_workload=make_workload or create_workload,
        sampler=sampler,
    )
    runner.run()
    return Result.model_validate_json(store.path.read_bytes())


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "tiny-st"
    return build_tiny_sentence_transformer(folder)


def test_mock_speed_scales_latency(tmp_path: Path) -> None:
    def fast(spec: WorkloadSpec) -> Workload:
        return create_workload(spec, mock_speed=4.0)

    result = run_in_process(tmp_path, "mock-v0", 6, make_workload=fast)

    assert result.latency_ms is not None
    assert result.latency_ms.p50 is not None and 8 < result.latency_ms.p50 < 30
    assert result.workload is not None and result.workload.device == "mock"
    assert result.throughput.samples_per_s is not None
    assert result.throughput.samples_per_s == pytest.approx(
        6 / (result.measure_window.duration_s or 1)
    )


def test_gemm_on_the_cpu(tmp_path: Path) -> None:
    result = run_in_process(tmp_path, "gemm:fp32:128", 5, {"warmup": 1})

    assert result.status == "succeeded", result.error
    assert result.workload is not None
    assert result.workload.device == "cpu" and result.workload.matrix_size == 128
    assert any("CPU" in note for note in result.workload.notes)
    assert result.warmup.count == 1
    assert result.latency_ms is not None and result.latency_ms.n == 5
    mean_s = (result.latency_ms.mean or 0) / 1000
    assert result.throughput.tflops == pytest.approx(2 * 128**3 / mean_s / 1e12)
    assert result.environment["torch_version"] is not None


def test_gemm_on_the_cpu_is_cut_to_a_size_that_fits(tmp_path: Path) -> None:
    result = run_in_process(tmp_path, "gemm:bf16:4096", 1, {"warmup": 0})

    assert result.status == "succeeded", result.error
    assert result.workload is not None and result.workload.matrix_size == 1024
    assert any("requested 4096x4096" in note for note in result.workload.notes)


def test_causal_lm_token_timings(tmp_path: Path, tiny_llama: Path) -> None:
    params = {"batch_size": 2, "prompt_tokens": 8, "new_tokens": 5, "warmup": 1}

    result = run_in_process(tmp_path, f"hf:{tiny_llama}", 3, params)

    assert result.status == "succeeded", result.error
    assert result.workload is not None and result.workload.kind == "hf_causal_lm"
    assert (result.workload.model_revision or "").startswith("local-sha256:")
    tokens = result.tokens
    assert tokens is not None
    assert tokens.total_output_tokens == 3 * 5 * 2
    assert (tokens.prompt_tokens, tokens.new_tokens_per_sample) == (8, 5)
    assert tokens.ttft_ms.n == 3 and tokens.tpot_ms.n == 3 and tokens.itl_ms.n == 12
    assert 0 < (tokens.ttft_ms.mean or 0) < (result.latency_ms.mean or 0)
    assert (tokens.tpot_ms.mean or 0) > 0
    # With equal token counts per sample, mean TPOT is the mean gap between tokens.
    assert tokens.tpot_ms.mean == pytest.approx(tokens.itl_ms.mean, rel=1e-9)
    assert tokens.output_tokens_per_s == pytest.approx(
        30 / (result.measure_window.duration_s or 1)
    )
    assert result.energy.joules_per_output_token == pytest.approx(
        (result.energy.joules or 0) / 30
    )
    assert result.environment["transformers_version"] is not None


def test_causal_lm_too_long_for_the_model(tmp_path: Path, tiny_llama: Path) -> None:
    params = {"prompt_tokens": 250, "new_tokens": 10}

    result = run_in_process(tmp_path, f"hf:{tiny_llama}", 1, params)

    assert result.status == "failed"
    assert "prompt_tokens + new_tokens = 260" in (result.error or "")
    assert result.tokens is None and result.latency_ms is None


def test_causal_lm_that_does_not_exist(tmp_path: Path) -> None:
    result = run_in_process(tmp_path, f"hf:{tmp_path}/missing-model", 1)

    assert result.status == "failed"
    assert f"the model folder '{tmp_path}/missing-model' does not exist" in (
        result.error or ""
    )
    assert result.cold_start.load_s is None


def test_embedding_model(tmp_path: Path, tiny_embedder: Path) -> None:
    params = {"batch_size": 4, "prompt_tokens": 16, "warmup": 1}

    result = run_in_process(tmp_path, f"embed:{tiny_embedder}", 3, params)

    assert result.status == "succeeded", result.error
    assert result.workload is not None and result.workload.kind == "embedding"
    assert (result.workload.model_revision or "").startswith("local-sha256:")
    assert result.latency_ms is not None and result.latency_ms.n == 3
    assert result.throughput.items_per_s == pytest.approx(
        4 * (result.throughput.samples_per_s or 0)
    )
    assert result.tokens is None
    assert result.environment["sentence_transformers_version"] is not None


def test_missing_torch_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails

    result = run_in_process(tmp_path, "gemm:fp16:256", 2)

    assert result.status == "failed"
    assert "gemm:fp16:256 needs the Python package torch" in (result.error or "")
    assert result.telemetry.status == "ok"


def test_telemetry_failure_does_not_fail_the_workload(tmp_path: Path) -> None:
    fake = FakeNvml()

    class BreaksTheGpu:
        """mock-v0, except that the GPU is lost after the second sample."""

        def __init__(self, spec: WorkloadSpec) -> None:
            self._inner = create_workload(spec, mock_speed=4.0)
            self.kind = self._inner.kind
            self.info = self._inner.info
            self._calls = 0

        def load(self) -> None:
            self._inner.load()

        def run_sample(self) -> SampleTiming:
            self._calls += 1
            if self._calls == 5:  # first call + 2 warm-ups + 2 measured
                fake.break_gpu(0)
            return self._inner.run_sample()

    result = run_in_process(
        tmp_path, "mock-v0", 6, fake=fake, make_workload=BreaksTheGpu
    )

    assert result.status == "succeeded"
    assert result.latency_ms is not None and result.latency_ms.n == 6
    assert result.telemetry.status == "degraded"
    assert "GPU is lost" in (result.telemetry.first_error or "")
    assert result.energy.joules is None and result.energy.note is not None
    rows = read_csv_rows(tmp_path / "gpu_timeseries.csv")
    assert len(rows) == result.telemetry.rows
    assert "idle" not in {r["phase"] for r in rows}
    assert fake.violations == []


def test_hub_model_records_its_commit_end_to_end(
    start_agent: StartAgent, tiny_llama: Path, tmp_path: Path
) -> None:
    # A Hub cache laid out by hand: the agent finds the model offline.
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--tiny-org--tiny-llama"
    shutil.copytree(tiny_llama, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    params = {"prompt_tokens": 4, "new_tokens": 3, "warmup": 0}

    agent = start_agent(
        nvml="ok",
        MODEL_REF="hf:tiny-org/tiny-llama",
        SAMPLES="2",
        PERSEPHONE_PARAMS=json.dumps(params),
        HF_HUB_CACHE=str(tmp_path / "hub"),
    )
    result = Result.model_validate(agent.wait_result(timeout_s=60))

    assert result.status == "succeeded", result.error
    assert result.workload is not None
    assert result.workload.model_revision == commit
    assert result.environment["model_revision"] == commit
    assert result.tokens is not None and result.tokens.total_output_tokens == 6
    assert agent.terminate() == 0
    assert "Traceback" not in agent.stderr()
