"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("error_message", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column(
            "gpu_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column(
            "model_ref", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False
        ),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column(
            "parameters_json", sqlmodel.sql.sqltypes.AutoString(), nullable=False
        ),
        sa.Column(
            "sweep_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True
        ),
        sa.Column("repeat_index", sa.Integer(), nullable=False),
        sa.Column(
            "provider", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        ),
        sa.Column(
            "provider_gpu_id",
            sqlmodel.sql.sqltypes.AutoString(length=128),
            nullable=False,
        ),
        sa.Column(
            "gpu_name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False
        ),
        sa.Column(
            "cloud_tier", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        ),
        sa.Column("price_per_hour", sa.Float(), nullable=True),
        sa.Column("price_read_at", sa.DateTime(), nullable=True),
        sa.Column("simulated_speed", sa.Float(), nullable=True),
        sa.Column(
            "pod_name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column(
            "pod_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True
        ),
        sa.Column("pod_created_at", sa.DateTime(), nullable=True),
        sa.Column("pod_terminated_at", sa.DateTime(), nullable=True),
        sa.Column("terminate_attempts", sa.Integer(), nullable=False),
        sa.Column("terminate_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("deadline_at", sa.DateTime(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column(
            "lease_owner", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("timeseries_bytes", sa.Integer(), nullable=False),
        sa.Column("timeseries_rows", sa.Integer(), nullable=False),
        sa.Column(
            "agent_state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True
        ),
        sa.Column("samples_done", sa.Integer(), nullable=False),
        sa.Column("latency_n", sa.Integer(), nullable=True),
        sa.Column("latency_p50_ms", sa.Float(), nullable=True),
        sa.Column("latency_p90_ms", sa.Float(), nullable=True),
        sa.Column("latency_p95_ms", sa.Float(), nullable=True),
        sa.Column("latency_p99_ms", sa.Float(), nullable=True),
        sa.Column("latency_mean_ms", sa.Float(), nullable=True),
        sa.Column("throughput_per_s", sa.Float(), nullable=True),
        sa.Column("measure_s", sa.Float(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("tokens_per_s", sa.Float(), nullable=True),
        sa.Column("ttft_p50_ms", sa.Float(), nullable=True),
        sa.Column("tpot_p50_ms", sa.Float(), nullable=True),
        sa.Column("energy_j", sa.Float(), nullable=True),
        sa.Column(
            "energy_method", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True
        ),
        sa.Column("simulated_metrics", sa.Boolean(), nullable=True),
        sa.Column(
            "telemetry_status",
            sqlmodel.sql.sqltypes.AutoString(length=16),
            nullable=True,
        ),
        sa.Column("throttled", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_run_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_run_pod_name"), ["pod_name"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_sweep_id"), ["sweep_id"], unique=False)

    op.create_table(
        "sweep",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column(
            "model_ref", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False
        ),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column(
            "parameters_json", sqlmodel.sql.sqltypes.AutoString(), nullable=False
        ),
        sa.Column("gpu_types_json", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("estimated_cost_usd", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sweep", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sweep_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "artifactchunk",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "run_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False
        ),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("offset", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("artifactchunk", schema=None) as batch_op:
        batch_op.create_index(
            "ix_artifact_run_name_offset", ["run_id", "name", "offset"], unique=False
        )

    op.create_table(
        "gpusample",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "run_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False
        ),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("elapsed_s", sa.Float(), nullable=False),
        sa.Column("phase", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("gpu_index", sa.Integer(), nullable=False),
        sa.Column(
            "gpu_uuid", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=True
        ),
        sa.Column("utilization_gpu_pct", sa.Float(), nullable=True),
        sa.Column("utilization_memory_pct", sa.Float(), nullable=True),
        sa.Column("memory_used_mib", sa.Float(), nullable=True),
        sa.Column("memory_total_mib", sa.Float(), nullable=True),
        sa.Column("power_w", sa.Float(), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("clock_sm_mhz", sa.Float(), nullable=True),
        sa.Column("clock_mem_mhz", sa.Float(), nullable=True),
        sa.Column(
            "throttle_reasons",
            sqlmodel.sql.sqltypes.AutoString(length=256),
            nullable=True,
        ),
        sa.Column("simulated", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("gpusample", schema=None) as batch_op:
        batch_op.create_index("ix_gpusample_run_row", ["run_id", "row"], unique=False)

    op.create_table(
        "runevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "run_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False
        ),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("message", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("runevent", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_runevent_run_id"), ["run_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("runevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runevent_run_id"))

    op.drop_table("runevent")
    with op.batch_alter_table("gpusample", schema=None) as batch_op:
        batch_op.drop_index("ix_gpusample_run_row")

    op.drop_table("gpusample")
    with op.batch_alter_table("artifactchunk", schema=None) as batch_op:
        batch_op.drop_index("ix_artifact_run_name_offset")

    op.drop_table("artifactchunk")
    with op.batch_alter_table("sweep", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sweep_created_at"))

    op.drop_table("sweep")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_sweep_id"))
        batch_op.drop_index(batch_op.f("ix_run_state"))
        batch_op.drop_index(batch_op.f("ix_run_pod_name"))
        batch_op.drop_index(batch_op.f("ix_run_created_at"))

    op.drop_table("run")
