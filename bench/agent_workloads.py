"""The agent's workloads on this machine, each run by the real `python -m agent`.

Prints mock-v0's process start → result.json time, gemm TFLOP/s at a few sizes,
and tokens/s and samples/s of tiny random models built here (no download). On
a machine without CUDA everything runs on the CPU, and the lines say so.

    .venv/bin/python bench/agent_workloads.py [--mock-runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.schema import Result
from tests.agent.support import free_port
from tests.agent.tiny_models import build_tiny_llama, build_tiny_sentence_transformer

REPO = Path(__file__).resolve().parent.parent


def run_agent(
    folder: Path, model_ref: str, samples: int, params: dict[str, object]
) -> tuple[Result, float]:
    """Run one agent to its result; (the result, seconds from start to result)."""
    workspace = Path(tempfile.mkdtemp(dir=folder))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "MODEL_REF": model_ref,
        "SAMPLES": str(samples),
        "PERSEPHONE_PARAMS": json.dumps(params),
        "PERSEPHONE_AGENT_TOKEN": "bench",
        "PERSEPHONE_AGENT_HOST": "127.0.0.1",
        "PERSEPHONE_AGENT_PORT": str(free_port()),
        "PERSEPHONE_WORKSPACE": str(workspace),
    }
    result_path = workspace / "result.json"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "agent"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not result_path.exists():
            if process.poll() is not None or time.perf_counter() - started > 600:
                raise SystemExit(f"{model_ref}: the agent ended without a result")
            time.sleep(0.005)
        seconds = time.perf_counter() - started
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    result = Result.model_validate_json(result_path.read_bytes())
    if result.status != "succeeded":
        raise SystemExit(f"{model_ref} failed: {result.error}")
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mock-runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)

        times = [run_agent(folder, "mock-v0", 8, {})[1] for _ in range(args.mock_runs)]
        print(
            f"mock-v0, samples=8: process start → result.json median "
            f"{statistics.median(times):.2f} s, max {max(times):.2f} s "
            f"over {len(times)} runs"
        )

        for ref in (
            "gemm:fp32:256",
            "gemm:fp32:512",
            "gemm:fp32:1024",
            "gemm:bf16:1024",
        ):
            result, _ = run_agent(folder, ref, 20, {"warmup": 3})
            assert result.workload is not None and result.latency_ms is not None
            latency = result.latency_ms
            print(
                f"{ref} on {result.workload.device} "
                f"(size {result.workload.matrix_size}): "
                f"{result.throughput.tflops or 0:.4f} TFLOP/s, "
                f"mean {latency.mean:.2f} ms, p50 {latency.p50:.2f} ms, n={latency.n}"
            )

        llama = build_tiny_llama(folder / "tiny-llama")
        params = {"batch_size": 1, "prompt_tokens": 32, "new_tokens": 32, "warmup": 2}
        result, _ = run_agent(folder, f"hf:{llama}", 10, params)
        tokens = result.tokens
        assert tokens is not None and result.workload is not None
        print(
            f"hf tiny Llama (2 layers, hidden 32) on {result.workload.device}, "
            f"batch 1, 32+32 tokens, n={tokens.ttft_ms.n}: "
            f"{tokens.output_tokens_per_s:.0f} output tokens/s, "
            f"TTFT p50 {tokens.ttft_ms.p50:.2f} ms, "
            f"TPOT p50 {tokens.tpot_ms.p50:.2f} ms"
        )

        embedder = build_tiny_sentence_transformer(folder / "tiny-st")
        params = {"batch_size": 8, "prompt_tokens": 32, "warmup": 2}
        result, _ = run_agent(folder, f"embed:{embedder}", 20, params)
        assert result.workload is not None and result.latency_ms is not None
        print(
            f"embed tiny BERT (2 layers, hidden 32) on {result.workload.device}, "
            f"batch 8: {result.throughput.items_per_s:.0f} texts/s, "
            f"p50 {result.latency_ms.p50:.2f} ms per batch"
        )


if __name__ == "__main__":
    main()
