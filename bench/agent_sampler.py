"""What the GPU sampler costs: CPU share of one core at a given rate and GPU count.

Runs the real sampler thread against the fake NVML (8 GPUs by default) while the
main thread sleeps, and reports the process's CPU time over wall time. With
`--nvml real` it samples the machine's own GPUs through pynvml instead.

    .venv/bin/python bench/agent_sampler.py [--seconds 20] [--hz 1] [--gpus 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent import nvml as nv
from agent.clock import RunClock
from agent.telemetry import GpuSampler, write_header
from tests.fakes.fake_pynvml import FakeGpu, FakeNvml, build_module


def measure(nvml: ModuleType, hz: float, seconds: float) -> tuple[float, int, float]:
    """(CPU % of one core, rows written, CPU ms per tick) over `seconds`."""
    with tempfile.TemporaryDirectory() as folder:
        csv_path = Path(folder) / "gpu_timeseries.csv"
        write_header(csv_path)
        sampler = GpuSampler(
            csv_path,
            RunClock(),
            sample_hz=hz,
            simulate=False,
            cuda_visible_devices=None,
            load_nvml=lambda: nvml,
        )
        sampler.start()
        sampler.mark_phase("measure")
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        rows_before = sampler.rows
        time.sleep(seconds)
        cpu_s = time.process_time() - cpu_before
        wall_s = time.perf_counter() - wall_before
        rows = sampler.rows - rows_before
        sampler.close()
    gpus = max(1, len(sampler.gpu_summaries()))
    ticks = max(1, rows // gpus)
    return 100.0 * cpu_s / wall_s, rows, 1000.0 * cpu_s / ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--hz", type=float, default=1.0)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--nvml", choices=("fake", "real"), default="fake")
    args = parser.parse_args()
    if args.nvml == "real":
        nvml = nv.import_pynvml()
        label = "real NVML"
    else:
        gpus = [
            FakeGpu(uuid=f"GPU-{i:08d}-0000-0000-0000-000000000000")
            for i in range(args.gpus)
        ]
        nvml = build_module(FakeNvml(gpus=gpus))
        label = f"fake NVML, {args.gpus} GPUs"

    cpu_pct, rows, per_tick_ms = measure(nvml, args.hz, args.seconds)

    print(
        f"sampler at {args.hz:g} Hz, {label}, {args.seconds:g} s: "
        f"{cpu_pct:.3f} % of one core, {rows} rows, "
        f"{per_tick_ms:.2f} ms CPU per tick (target < 1 %)"
    )


if __name__ == "__main__":
    main()
