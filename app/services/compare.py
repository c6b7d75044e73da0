"""Runs of one workload on different GPUs, side by side, ranked and flagged.

Every number here comes from the run's stored summary and its frozen price
(app.services.costs), so the page, the CSV and the JSON show the same figures.
Only succeeded runs of the most common workload are ranked; the others are
listed with their error or their flag.
Differences that make a comparison unfair (throttling, simulated metrics,
different workloads) are flagged on the row and warned about once, never
silently averaged away.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import statistics
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Literal, TypeVar

import numpy as np
from pydantic import BaseModel

from agent.spec import SpecError, parse_workload
from app.models import Run, RunState
from app.services import runs
from app.services.costs import run_cost
from app.services.runs import InvalidRequest
from app.services.timeseries import METRICS, chart_lines, load_samples

MAX_COMPARED_RUNS = 200
BUNDLE_VERSION = 1

Flag = Literal[
    "not_succeeded",
    "simulated",
    "throttled",
    "different_workload",
    "telemetry_degraded",
    "telemetry_unavailable",
]
Level = Literal["run", "gpu_type"]
T = TypeVar("T")


class WorkloadKey(BaseModel):
    """What was measured; runs compare fairly only when this is equal."""

    model_ref: str
    parameters: dict[str, int | float | str | bool | None]
    samples: int

    @property
    def fingerprint(self) -> str:
        return self.model_dump_json()

    @property
    def label(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in sorted(self.parameters.items()))
        return f"{self.model_ref} × {self.samples} samples ({params or 'defaults'})"


class RunRow(BaseModel):
    """One run, as the comparison table shows it."""

    run_id: str
    state: str
    error_message: str | None
    sweep_id: str | None
    repeat_index: int
    created_at: datetime
    gpu_type: str
    gpu_name: str
    provider: str
    tier: str
    price_per_hour_usd: float | None
    price_read_at: datetime | None
    workload: WorkloadKey
    samples_done: int
    latency_n: int | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    throughput_per_s: float | None
    output_tokens_per_s: float | None
    measure_s: float | None
    billed_s: float | None
    total_usd: float | None
    steady_usd_per_1k_samples: float | None
    all_in_usd_per_1k_samples: float | None
    steady_usd_per_1m_tokens: float | None
    all_in_usd_per_1m_tokens: float | None
    energy_j_per_sample: float | None
    energy_method: str | None
    energy_estimated: bool | None
    simulated: bool
    throttled: bool
    ranked: bool
    on_pareto_front: bool = False
    best_for_cost: bool = False
    best_for_latency: bool = False
    flags: list[Flag]


class Spread(BaseModel):
    """Several repeats of one value: mean, range and sample stdev (n ≥ 2)."""

    n: int
    mean: float
    min: float
    max: float
    stdev: float | None


class GpuGroup(BaseModel):
    """All runs on one GPU type and tier; figures over its succeeded runs."""

    gpu_type: str
    tier: str
    gpu_name: str
    price_per_hour_usd: float | None
    run_ids: list[str]
    runs_succeeded: int
    latency_n: int
    latency_p50_ms: Spread | None
    latency_p95_ms: Spread | None
    latency_p99_ms: Spread | None
    throughput_per_s: Spread | None
    output_tokens_per_s: Spread | None
    steady_usd_per_1k_samples: Spread | None
    all_in_usd_per_1k_samples: Spread | None
    steady_usd_per_1m_tokens: Spread | None
    all_in_usd_per_1m_tokens: Spread | None
    energy_j_per_sample: Spread | None
    energy_methods: list[str]
    simulated: bool
    throttled: bool
    on_pareto_front: bool = False
    best_for_cost: bool = False
    best_for_latency: bool = False
    flags: list[Flag]


class Pick(BaseModel):
    """A winner: the run (or GPU type) and the value it won with."""

    run_id: str | None
    gpu_type: str
    tier: str
    value: float


class Comparison(BaseModel):
    run_ids: list[str]
    reference_workload: WorkloadKey
    workloads: list[WorkloadKey]
    rows: list[RunRow]
    groups: list[GpuGroup]
    best_for_cost: Pick | None
    best_for_latency: Pick | None
    best_gpu_for_cost: Pick | None
    best_gpu_for_latency: Pick | None
    pareto_run_ids: list[str]
    warnings: list[str]


# Building the comparison


def compare(run_ids: Sequence[str]) -> Comparison:
    """Compare the given runs; raises RunNotFound or InvalidRequest."""
    wanted = _unique_ids(run_ids)
    found = [runs.get_run(run_id) for run_id in wanted]
    keys = [workload_key(run) for run in found]
    counts = Counter(key.fingerprint for key in keys)
    # The most common workload is the reference; ties go to the first listed.
    reference = next(k for k in keys if k.fingerprint == counts.most_common(1)[0][0])
    rows = [
        _row(run, key, key.fingerprint != reference.fingerprint)
        for run, key in zip(found, keys, strict=True)
    ]
    _rank_rows(rows)
    groups = _groups(rows)
    _rank_groups(groups)
    return Comparison(
        run_ids=wanted,
        reference_workload=reference,
        workloads=_distinct(keys),
        rows=rows,
        groups=groups,
        best_for_cost=_pick_row(rows, "best_for_cost", _steady_cost),
        best_for_latency=_pick_row(rows, "best_for_latency", _p95),
        best_gpu_for_cost=_pick_group(groups, "best_for_cost", _group_cost),
        best_gpu_for_latency=_pick_group(groups, "best_for_latency", _group_p95),
        pareto_run_ids=[row.run_id for row in rows if row.on_pareto_front],
        warnings=_warnings(rows, keys),
    )


def _distinct(keys: list[WorkloadKey]) -> list[WorkloadKey]:
    first: dict[str, WorkloadKey] = {}
    for key in keys:
        first.setdefault(key.fingerprint, key)
    return list(first.values())


def _unique_ids(run_ids: Sequence[str]) -> list[str]:
    wanted = list(dict.fromkeys(run_id.strip() for run_id in run_ids if run_id.strip()))
    if not wanted:
        raise InvalidRequest("runs", "runs must name at least one run id.")
    if len(wanted) > MAX_COMPARED_RUNS:
        raise InvalidRequest(
            "runs",
            f"runs names {len(wanted)} runs; compare at most {MAX_COMPARED_RUNS}.",
        )
    return wanted


def workload_key(run: Run) -> WorkloadKey:
    """The run's workload with the agent's defaults filled in ({} = defaults)."""
    try:
        parameters: Mapping[str, object] = parse_workload(
            run.model_ref, run.parameters
        ).parameters
    except SpecError:
        # Stored by an older version whose rules differ: compare as stored.
        parameters = run.parameters
    return WorkloadKey.model_validate(
        {
            "model_ref": run.model_ref,
            "parameters": dict(sorted(parameters.items())),
            "samples": run.samples,
        }
    )


def _row(run: Run, key: WorkloadKey, different_workload: bool) -> RunRow:
    cost = run_cost(run)
    succeeded = run.run_state == RunState.SUCCEEDED
    row = RunRow(
        run_id=run.id,
        state=run.state,
        error_message=run.error_message,
        sweep_id=run.sweep_id,
        repeat_index=run.repeat_index,
        created_at=run.created_at,
        gpu_type=run.gpu_type,
        gpu_name=run.gpu_name,
        provider=run.provider,
        tier=run.cloud_tier,
        price_per_hour_usd=run.price_per_hour,
        price_read_at=run.price_read_at,
        workload=key,
        samples_done=run.samples_done,
        latency_n=run.latency_n,
        latency_p50_ms=run.latency_p50_ms,
        latency_p95_ms=run.latency_p95_ms,
        latency_p99_ms=run.latency_p99_ms,
        throughput_per_s=run.throughput_per_s,
        output_tokens_per_s=run.tokens_per_s,
        measure_s=run.measure_s,
        billed_s=cost.billed_s,
        total_usd=cost.total_usd,
        steady_usd_per_1k_samples=cost.steady_per_1k_samples_usd,
        all_in_usd_per_1k_samples=cost.all_in_per_1k_samples_usd,
        steady_usd_per_1m_tokens=cost.steady_per_1m_tokens_usd,
        all_in_usd_per_1m_tokens=cost.all_in_per_1m_tokens_usd,
        energy_j_per_sample=_energy_per_sample(run),
        energy_method=run.energy_method,
        energy_estimated=(
            run.energy_method == "power_integration" if run.energy_method else None
        ),
        simulated=bool(run.simulated_metrics),
        throttled=bool(run.throttled),
        # Only runs of the reference workload are ranked: a different workload's
        # cost per sample or latency measures different work.
        ranked=succeeded and not different_workload,
        flags=[],
    )
    row.flags = _row_flags(run, row, different_workload)
    return row


def _energy_per_sample(run: Run) -> float | None:
    if run.energy_j is None or not run.samples_done:
        return None
    return run.energy_j / run.samples_done


def _row_flags(run: Run, row: RunRow, different_workload: bool) -> list[Flag]:
    flags: list[Flag] = []
    if run.run_state != RunState.SUCCEEDED:
        flags.append("not_succeeded")
    if row.simulated:
        flags.append("simulated")
    if row.throttled:
        flags.append("throttled")
    if different_workload:
        flags.append("different_workload")
    if run.telemetry_status == "degraded":
        flags.append("telemetry_degraded")
    elif run.telemetry_status == "unavailable":
        flags.append("telemetry_unavailable")
    return flags


# Rankings: lowest steady cost per 1k samples, lowest p95, Pareto front.


def _steady_cost(row: RunRow) -> float | None:
    return row.steady_usd_per_1k_samples


def _p95(row: RunRow) -> float | None:
    return row.latency_p95_ms


def _group_cost(group: GpuGroup) -> float | None:
    spread = group.steady_usd_per_1k_samples
    return spread.mean if spread else None


def _group_p95(group: GpuGroup) -> float | None:
    spread = group.latency_p95_ms
    return spread.mean if spread else None


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For each (cost, latency) point: is no other point at least as good in both
    and better in one? Equal points are all on the front."""
    on_front = []
    for cost, latency in points:
        dominated = any(
            other_cost <= cost
            and other_latency <= latency
            and (other_cost < cost or other_latency < latency)
            for other_cost, other_latency in points
        )
        on_front.append(not dominated)
    return on_front


def _rank_rows(rows: list[RunRow]) -> None:
    scored = [
        row
        for row in rows
        if row.ranked and _steady_cost(row) is not None and _p95(row) is not None
    ]
    points = [(_steady_cost(row) or 0.0, _p95(row) or 0.0) for row in scored]
    for row, on_front in zip(scored, pareto_front(points), strict=True):
        row.on_pareto_front = on_front
    for attribute, primary, secondary in (
        ("best_for_cost", _steady_cost, _p95),
        ("best_for_latency", _p95, _steady_cost),
    ):
        best = _lowest([r for r in rows if r.ranked], primary, secondary)
        if best is not None:
            setattr(best, attribute, True)


def _rank_groups(groups: list[GpuGroup]) -> None:
    scored = [
        group
        for group in groups
        if _group_cost(group) is not None and _group_p95(group) is not None
    ]
    points = [(_group_cost(g) or 0.0, _group_p95(g) or 0.0) for g in scored]
    for group, on_front in zip(scored, pareto_front(points), strict=True):
        group.on_pareto_front = on_front
    for attribute, primary, secondary in (
        ("best_for_cost", _group_cost, _group_p95),
        ("best_for_latency", _group_p95, _group_cost),
    ):
        best = _lowest(groups, primary, secondary)
        if best is not None:
            setattr(best, attribute, True)


def _lowest(
    items: Sequence[T],
    primary: Callable[[T], float | None],
    secondary: Callable[[T], float | None],
) -> T | None:
    """The item with the lowest primary value; ties go to the lower secondary."""
    candidates = [item for item in items if primary(item) is not None]
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda item: (primary(item), _or_inf(secondary(item))),
    )


def _or_inf(value: float | None) -> float:
    return math.inf if value is None else value


def _pick_row(
    rows: list[RunRow], attribute: str, value: Callable[[RunRow], float | None]
) -> Pick | None:
    best = next((row for row in rows if getattr(row, attribute)), None)
    if best is None:
        return None
    return Pick(
        run_id=best.run_id,
        gpu_type=best.gpu_type,
        tier=best.tier,
        value=value(best) or 0.0,
    )


def _pick_group(
    groups: list[GpuGroup],
    attribute: str,
    value: Callable[[GpuGroup], float | None],
) -> Pick | None:
    best = next((group for group in groups if getattr(group, attribute)), None)
    if best is None:
        return None
    return Pick(
        run_id=None, gpu_type=best.gpu_type, tier=best.tier, value=value(best) or 0.0
    )


# Per GPU type: mean and spread over repeats


def spread(values: Sequence[float | None]) -> Spread | None:
    present = [value for value in values if value is not None]
    if not present:
        return None
    return Spread(
        n=len(present),
        mean=statistics.fmean(present),
        min=min(present),
        max=max(present),
        stdev=statistics.stdev(present) if len(present) >= 2 else None,
    )


def _groups(rows: list[RunRow]) -> list[GpuGroup]:
    by_key: dict[tuple[str, str], list[RunRow]] = {}
    for row in rows:
        by_key.setdefault((row.gpu_type, row.tier), []).append(row)
    return [_group(members) for members in by_key.values()]


def _group(members: list[RunRow]) -> GpuGroup:
    ranked = [row for row in members if row.ranked]
    first = members[0]

    def over(value: Callable[[RunRow], float | None]) -> Spread | None:
        return spread([value(row) for row in ranked])

    flags: list[Flag] = []
    for row in members:
        flags.extend(flag for flag in row.flags if flag not in flags)
    return GpuGroup(
        gpu_type=first.gpu_type,
        tier=first.tier,
        gpu_name=first.gpu_name,
        price_per_hour_usd=first.price_per_hour_usd,
        run_ids=[row.run_id for row in members],
        runs_succeeded=len(ranked),
        latency_n=sum(row.latency_n or 0 for row in ranked),
        latency_p50_ms=over(lambda r: r.latency_p50_ms),
        latency_p95_ms=over(lambda r: r.latency_p95_ms),
        latency_p99_ms=over(lambda r: r.latency_p99_ms),
        throughput_per_s=over(lambda r: r.throughput_per_s),
        output_tokens_per_s=over(lambda r: r.output_tokens_per_s),
        steady_usd_per_1k_samples=over(lambda r: r.steady_usd_per_1k_samples),
        all_in_usd_per_1k_samples=over(lambda r: r.all_in_usd_per_1k_samples),
        steady_usd_per_1m_tokens=over(lambda r: r.steady_usd_per_1m_tokens),
        all_in_usd_per_1m_tokens=over(lambda r: r.all_in_usd_per_1m_tokens),
        energy_j_per_sample=over(lambda r: r.energy_j_per_sample),
        energy_methods=sorted({r.energy_method for r in ranked if r.energy_method}),
        simulated=any(row.simulated for row in ranked),
        throttled=any(row.throttled for row in ranked),
        flags=flags,
    )


# Warnings: one sentence per kind of unfairness


def _warnings(rows: list[RunRow], keys: list[WorkloadKey]) -> list[str]:
    warnings = []
    distinct = _distinct(keys)
    if len(distinct) > 1:
        labels = "; ".join(key.label for key in distinct)
        warnings.append(
            f"These runs measure {len(distinct)} different workloads ({labels}). "
            f"Only runs of the most common one are ranked; rows flagged "
            f"'different_workload' are listed but left out of every ranking."
        )
    simulated = [row for row in rows if row.simulated]
    if simulated:
        warnings.append(
            f"{len(simulated)} of {len(rows)} runs report simulated GPU metrics "
            f"(mock pods): their latency follows the mock catalog's speed factors "
            f"and their power, energy and throttling are simulated, not measured."
        )
    for row in rows:
        if row.throttled:
            warnings.append(
                f"Run {row.run_id} on {row.gpu_type} was throttled (the GPU slowed "
                f"its clocks): its latency and cost may be worse than the GPU can do."
            )
    left_out = [row for row in rows if row.state != RunState.SUCCEEDED]
    if left_out:
        names = ", ".join(
            f"{row.run_id} ({row.gpu_type}, {row.state})" for row in left_out
        )
        one = len(left_out) == 1
        warnings.append(
            f"{len(left_out)} {'run' if one else 'runs'} did not succeed and "
            f"{'is' if one else 'are'} left out of the rankings: {names}."
        )
    methods = {row.energy_method for row in rows if row.ranked and row.energy_method}
    if len(methods) > 1:
        warnings.append(
            "Energy was measured two ways: some runs read NVML's energy counter, "
            "others integrate sampled power (estimated)."
        )
    return warnings


# Time series aligned at the start of measurement


@dataclass(frozen=True)
class AlignedLine:
    """One GPU of one run; x is seconds since that run's measure phase began."""

    run_id: str
    gpu_type: str
    gpu_index: int
    label: str
    # Elapsed seconds of the run's first "measure" row; None: it never measured,
    # and x is then seconds since the agent started.
    measure_start_s: float | None
    x_s: np.ndarray
    y: np.ndarray


def aligned_timeseries(run_ids: Sequence[str], metric: str) -> list[AlignedLine]:
    """Each run's GPU series, downsampled, shifted so t=0 is its measure start."""
    if metric not in METRICS:
        raise InvalidRequest(
            "metric", f"metric must be one of {', '.join(METRICS)}, not {metric!r}."
        )
    lines: list[AlignedLine] = []
    for run_id in _unique_ids(run_ids):
        run = runs.get_run(run_id)
        frame = load_samples(run_id)
        if frame.empty:
            continue
        measuring = frame[frame["phase"] == "measure"]
        start_s = float(measuring["elapsed_s"].iloc[0]) if len(measuring) else None
        gpu_count = frame["gpu_index"].nunique()
        for line in chart_lines(frame, metric):
            label = f"{run.gpu_type} · {run.id}"
            if gpu_count > 1:
                label += f" · GPU {line.gpu_index}"
            lines.append(
                AlignedLine(
                    run_id=run.id,
                    gpu_type=run.gpu_type,
                    gpu_index=line.gpu_index,
                    label=label,
                    measure_start_s=start_s,
                    x_s=line.x - (start_s or 0.0),
                    y=line.y,
                )
            )
    return lines


# For the catalog: what a workload measured on each GPU type


def measured_cost_by_gpu(model_ref: str) -> dict[str, float]:
    """Median steady-state cost per 1,000 samples of succeeded runs, per GPU type."""
    found = runs.list_runs(
        states=[RunState.SUCCEEDED.value], model_ref=model_ref, limit=10_000
    )
    costs: dict[str, list[float]] = {}
    for run in found:
        value = run_cost(run).steady_per_1k_samples_usd
        if value is not None:
            costs.setdefault(run.gpu_type, []).append(value)
    return {slug: statistics.median(values) for slug, values in sorted(costs.items())}


# Exports


@dataclass(frozen=True)
class _Column(Generic[T]):
    header: str
    value: Callable[[T], object]


def _spread_columns(
    name: str, get: Callable[[GpuGroup], Spread | None]
) -> list[_Column[GpuGroup]]:
    def part(field: str) -> Callable[[GpuGroup], object]:
        return lambda group: getattr(get(group), field, None)

    return [
        _Column(f"{name}_{field}", part(field))
        for field in ("mean", "min", "max", "stdev", "n")
    ]


RUN_COLUMNS: tuple[_Column[RunRow], ...] = (
    _Column("run_id", lambda r: r.run_id),
    _Column("state", lambda r: r.state),
    _Column("gpu_type", lambda r: r.gpu_type),
    _Column("gpu_name", lambda r: r.gpu_name),
    _Column("tier", lambda r: r.tier),
    _Column("price_per_hour_usd", lambda r: r.price_per_hour_usd),
    _Column("model_ref", lambda r: r.workload.model_ref),
    _Column("parameters", lambda r: json.dumps(r.workload.parameters, sort_keys=True)),
    _Column("samples", lambda r: r.workload.samples),
    _Column("repeat_index", lambda r: r.repeat_index),
    _Column("latency_n", lambda r: r.latency_n),
    _Column("latency_p50_ms", lambda r: r.latency_p50_ms),
    _Column("latency_p95_ms", lambda r: r.latency_p95_ms),
    _Column("latency_p99_ms", lambda r: r.latency_p99_ms),
    _Column("throughput_per_s", lambda r: r.throughput_per_s),
    _Column("output_tokens_per_s", lambda r: r.output_tokens_per_s),
    _Column("steady_usd_per_1k_samples", lambda r: r.steady_usd_per_1k_samples),
    _Column("all_in_usd_per_1k_samples", lambda r: r.all_in_usd_per_1k_samples),
    _Column("steady_usd_per_1m_tokens", lambda r: r.steady_usd_per_1m_tokens),
    _Column("all_in_usd_per_1m_tokens", lambda r: r.all_in_usd_per_1m_tokens),
    _Column("energy_j_per_sample", lambda r: r.energy_j_per_sample),
    _Column("energy_method", lambda r: r.energy_method),
    _Column("simulated", lambda r: r.simulated),
    _Column("throttled", lambda r: r.throttled),
    _Column("on_pareto_front", lambda r: r.on_pareto_front),
    _Column("best_for_cost", lambda r: r.best_for_cost),
    _Column("best_for_latency", lambda r: r.best_for_latency),
    _Column("flags", lambda r: "|".join(r.flags)),
    _Column("error_message", lambda r: r.error_message),
)

GROUP_COLUMNS: tuple[_Column[GpuGroup], ...] = (
    _Column("gpu_type", lambda g: g.gpu_type),
    _Column("tier", lambda g: g.tier),
    _Column("gpu_name", lambda g: g.gpu_name),
    _Column("price_per_hour_usd", lambda g: g.price_per_hour_usd),
    _Column("runs", lambda g: len(g.run_ids)),
    _Column("runs_succeeded", lambda g: g.runs_succeeded),
    _Column("latency_n", lambda g: g.latency_n),
    *_spread_columns("latency_p50_ms", lambda g: g.latency_p50_ms),
    *_spread_columns("latency_p95_ms", lambda g: g.latency_p95_ms),
    *_spread_columns("latency_p99_ms", lambda g: g.latency_p99_ms),
    *_spread_columns("throughput_per_s", lambda g: g.throughput_per_s),
    *_spread_columns(
        "steady_usd_per_1k_samples", lambda g: g.steady_usd_per_1k_samples
    ),
    *_spread_columns(
        "all_in_usd_per_1k_samples", lambda g: g.all_in_usd_per_1k_samples
    ),
    *_spread_columns("steady_usd_per_1m_tokens", lambda g: g.steady_usd_per_1m_tokens),
    *_spread_columns("energy_j_per_sample", lambda g: g.energy_j_per_sample),
    _Column("energy_methods", lambda g: "|".join(g.energy_methods)),
    _Column("simulated", lambda g: g.simulated),
    _Column("throttled", lambda g: g.throttled),
    _Column("on_pareto_front", lambda g: g.on_pareto_front),
    _Column("best_for_cost", lambda g: g.best_for_cost),
    _Column("best_for_latency", lambda g: g.best_for_latency),
    _Column("flags", lambda g: "|".join(g.flags)),
)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # repr is the shortest text that reads back as the same float.
        return repr(value)
    return str(value)


def _csv(columns: Sequence[_Column[T]], items: Sequence[T]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([column.header for column in columns])
    for item in items:
        writer.writerow([_cell(column.value(item)) for column in columns])
    return buffer.getvalue().encode("utf-8")


def comparison_csv(comparison: Comparison, *, level: Level = "run") -> bytes:
    """One row per run (or per GPU type and tier), full-precision numbers."""
    if level == "gpu_type":
        return _csv(GROUP_COLUMNS, comparison.groups)
    return _csv(RUN_COLUMNS, comparison.rows)


def comparison_json(comparison: Comparison) -> bytes:
    return comparison.model_dump_json(indent=2).encode("utf-8")


# A run's bundle: the agent's files byte for byte plus a manifest


def run_bundle(run_id: str) -> bytes:
    """A zip of result.json and gpu_timeseries.csv as stored, and manifest.json."""
    run = runs.get_run(run_id)
    files = {
        name: data
        for name in (runs.RESULT_JSON, runs.TIMESERIES_CSV)
        if (data := runs.artifact_bytes(run.id, name)) is not None
    }
    manifest = json.dumps(_manifest(run, files), indent=2).encode("utf-8")
    # A fixed time stamp (the run's launch) makes the zip the same on every read.
    stamp = run.created_at.timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in (*files.items(), ("manifest.json", manifest)):
            archive.writestr(zipfile.ZipInfo(name, date_time=stamp), data)
    return buffer.getvalue()


def _manifest(run: Run, files: Mapping[str, bytes]) -> dict[str, object]:
    cost = run_cost(run)
    return {
        "bundle_version": BUNDLE_VERSION,
        "run_id": run.id,
        "state": run.state,
        "error_message": run.error_message,
        "sweep_id": run.sweep_id,
        "repeat_index": run.repeat_index,
        "gpu": {
            "gpu_type": run.gpu_type,
            "name": run.gpu_name,
            "provider": run.provider,
            "provider_gpu_id": run.provider_gpu_id,
        },
        "tier": run.cloud_tier,
        "price": {
            "per_hour_usd": run.price_per_hour,
            "frozen_at": run.created_at.isoformat(),
            "read_at": _iso(run.price_read_at),
        },
        "model_ref": run.model_ref,
        "parameters": run.parameters,
        "samples": run.samples,
        "samples_done": run.samples_done,
        "states": [
            {"state": event.state, "at": event.at.isoformat(), "message": event.message}
            for event in runs.run_events(run.id)
        ],
        "cost_usd": cost.as_json(),
        "simulated_metrics": run.simulated_metrics,
        "throttled": run.throttled,
        "telemetry_status": run.telemetry_status,
        "files": {
            name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in files.items()
        },
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
