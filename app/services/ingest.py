"""Storing what the agent produced: raw bytes for downloads, parsed rows for charts.

Each chunk of `gpu_timeseries.csv` is stored with its byte offset in the same
transaction as its parsed rows and the run's ingest position, so ingestion can
stop anywhere (a restart, a lost connection) and resume without a gap or a
duplicate.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import delete, insert
from sqlmodel import Session, col

from agent.schema import READING_COLUMNS, TIMESERIES_COLUMNS, Result
from app.db import session_scope
from app.models import ArtifactChunk, GpuSample, Run, utcnow
from app.services.runs import RESULT_JSON, TIMESERIES_CSV

logger = logging.getLogger(__name__)


class IngestError(ValueError):
    """The agent's file does not follow the contract."""


def _float_or_none(value: str) -> float | None:
    # An empty cell is a reading the GPU does not provide: None, never 0.
    return float(value) if value != "" else None


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def parse_timeseries_rows(
    text: str, *, first_row: int, has_header: bool
) -> list[dict[str, object]]:
    reader = csv.reader(io.StringIO(text))
    rows: list[dict[str, object]] = []
    for number, cells in enumerate(reader):
        if number == 0 and has_header:
            if tuple(cells) != TIMESERIES_COLUMNS:
                raise IngestError(
                    f"gpu_timeseries.csv has an unexpected header: {cells!r}."
                )
            continue
        if not cells:
            continue
        if len(cells) != len(TIMESERIES_COLUMNS):
            raise IngestError(
                f"gpu_timeseries.csv row has {len(cells)} cells, "
                f"expected {len(TIMESERIES_COLUMNS)}."
            )
        record = dict(zip(TIMESERIES_COLUMNS, cells, strict=True))
        row: dict[str, object] = {
            "row": first_row + len(rows),
            "ts": _epoch(record["timestamp"]),
            "elapsed_s": float(record["elapsed_s"]),
            "phase": record["phase"],
            "gpu_index": int(record["gpu_index"]),
            "gpu_uuid": record["gpu_uuid"] or None,
            "throttle_reasons": record["throttle_reasons"] or None,
            "simulated": record["simulated"] == "true",
        }
        for column in READING_COLUMNS:
            row[column] = _float_or_none(record[column])
        rows.append(row)
    return rows


def ingest_timeseries_chunk(run_id: str, offset: int, data: bytes) -> int:
    """Store one chunk that starts at byte `offset`; return the rows added.

    A chunk whose offset is not where the run's ingestion stands was already
    stored (or is out of order) and is ignored.
    """
    if not data:
        return 0
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise IngestError(f"gpu_timeseries.csv is not UTF-8: {error}.") from None
    with session_scope() as session:
        run = session.get(Run, run_id, with_for_update=True)
        if run is None or run.timeseries_bytes != offset:
            return 0
        rows = parse_timeseries_rows(
            text, first_row=run.timeseries_rows, has_header=offset == 0
        )
        session.add(
            ArtifactChunk(run_id=run_id, name=TIMESERIES_CSV, offset=offset, data=data)
        )
        if rows:
            session.execute(insert(GpuSample), [{"run_id": run_id, **r} for r in rows])
        run.timeseries_bytes = offset + len(data)
        run.timeseries_rows += len(rows)
        run.updated_at = utcnow()
        session.add(run)
    return len(rows)


def store_result(run_id: str, raw: bytes) -> Result:
    """Keep result.json byte for byte and copy its summary onto the run."""
    try:
        result = Result.model_validate_json(raw)
    except ValidationError as error:
        raise IngestError(
            f"result.json does not match schema version 1: {error.errors()[0]['msg']}"
        ) from None
    with session_scope() as session:
        run = session.get(Run, run_id, with_for_update=True)
        if run is None:
            raise IngestError(f"Run {run_id} disappeared while storing its result.")
        _replace_artifact(session, run_id, RESULT_JSON, raw)
        _copy_summary(run, result)
        run.updated_at = utcnow()
        session.add(run)
    return result


def _replace_artifact(session: Session, run_id: str, name: str, raw: bytes) -> None:
    session.execute(
        delete(ArtifactChunk).where(
            col(ArtifactChunk.run_id) == run_id, col(ArtifactChunk.name) == name
        )
    )
    session.add(ArtifactChunk(run_id=run_id, name=name, offset=0, data=raw))


def _copy_summary(run: Run, result: Result) -> None:
    latency = result.latency_ms
    if latency is not None:
        run.latency_n = latency.n
        run.latency_mean_ms = latency.mean
        run.latency_p50_ms = latency.p50
        run.latency_p90_ms = latency.p90
        run.latency_p95_ms = latency.p95
        run.latency_p99_ms = latency.p99
    run.throughput_per_s = result.throughput.samples_per_s
    run.measure_s = result.measure_window.duration_s
    run.samples_done = result.samples_completed
    if result.tokens is not None:
        run.output_tokens = result.tokens.total_output_tokens
        run.tokens_per_s = result.tokens.output_tokens_per_s
        run.ttft_p50_ms = result.tokens.ttft_ms.p50
        run.tpot_p50_ms = result.tokens.tpot_ms.p50
    run.energy_j = result.energy.joules
    run.energy_method = result.energy.method
    run.simulated_metrics = result.simulated_metrics
    run.telemetry_status = result.telemetry.status
    run.throttled = any(gpu.throttled for gpu in result.gpus)
