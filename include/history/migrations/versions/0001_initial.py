"""History store: benchmark_runs, benchmark_results, scaling_results, regressions.

Written by hand and checked against the models by tests/history (autogenerate's comparison must find no
difference).

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "benchmark_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("logical_date", TS, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("mlperf_compliant", sa.Boolean(), nullable=False),
        sa.Column("report_path", sa.Text(), nullable=True),
        sa.Column("report_url", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_benchmark_runs"),
        sa.UniqueConstraint("run_id", name="uq_benchmark_runs_run_id"),
        sa.CheckConstraint("trigger IN ('scheduled', 'manual', 'cli', 'import')", name="ck_benchmark_runs_trigger"),
        sa.CheckConstraint("status IN ('success', 'failed', 'partial')", name="ck_benchmark_runs_status"),
    )
    op.create_index("ix_benchmark_runs_logical_date", "benchmark_runs", ["logical_date"])

    op.create_table(
        "benchmark_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("branch", sa.String(16), nullable=False),
        sa.Column("node", sa.String(250), nullable=False),
        sa.Column("scenario", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("valid", sa.Boolean(), nullable=True),
        sa.Column("invalid_reasons", sa.JSON(), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=True),
        sa.Column("accelerator", sa.String(250), nullable=True),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("samples_per_second", sa.Float(), nullable=True),
        sa.Column("tokens_per_second", sa.Float(), nullable=True),
        sa.Column("ttft_p50_ns", sa.Float(), nullable=True),
        sa.Column("ttft_p99_ns", sa.Float(), nullable=True),
        sa.Column("tpot_p50_ns", sa.Float(), nullable=True),
        sa.Column("tpot_p99_ns", sa.Float(), nullable=True),
        sa.Column("latency_p50_ns", sa.Float(), nullable=True),
        sa.Column("latency_p99_ns", sa.Float(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("samples_completed", sa.Integer(), nullable=True),
        sa.Column("rouge1", sa.Float(), nullable=True),
        sa.Column("rouge2", sa.Float(), nullable=True),
        sa.Column("rougeL", sa.Float(), nullable=True),
        sa.Column("rougeLsum", sa.Float(), nullable=True),
        sa.Column("gen_len", sa.Integer(), nullable=True),
        sa.Column("gen_num", sa.Integer(), nullable=True),
        sa.Column("accuracy_passed", sa.Boolean(), nullable=True),
        sa.Column("accuracy_meaningful", sa.Boolean(), nullable=True),
        sa.Column("start_utc", TS, nullable=True),
        sa.Column("end_utc", TS, nullable=True),
        sa.Column("run_dir", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_benchmark_results"),
        sa.ForeignKeyConstraint(["run_pk"], ["benchmark_runs.id"], ondelete="CASCADE",
                                name="fk_benchmark_results_run_pk_benchmark_runs"),
        sa.UniqueConstraint("run_pk", "branch", "node", "scenario", "mode", name="uq_benchmark_results_run_key"),
        sa.CheckConstraint("branch IN ('single', 'distributed')", name="ck_benchmark_results_branch"),
        sa.CheckConstraint("status IN ('completed', 'failed', 'missing')", name="ck_benchmark_results_status"),
        sa.CheckConstraint("mode IN ('performance', 'accuracy')", name="ck_benchmark_results_mode"),
    )
    op.create_index("ix_benchmark_results_run_pk", "benchmark_results", ["run_pk"])
    op.create_index("ix_benchmark_results_scenario", "benchmark_results", ["scenario"])
    op.create_index("ix_benchmark_results_node", "benchmark_results", ["node"])
    op.create_index("ix_benchmark_results_branch", "benchmark_results", ["branch"])
    op.create_index("ix_benchmark_results_config_hash", "benchmark_results", ["config_hash"])
    op.create_index("ix_benchmark_results_comparable", "benchmark_results",
                    ["config_hash", "accelerator", "node", "branch", "scenario", "mode"])

    op.create_table(
        "scaling_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("scenario", sa.String(32), nullable=False),
        sa.Column("efficiency", sa.Float(), nullable=True),
        sa.Column("aggregate_tokens_per_second", sa.Float(), nullable=True),
        sa.Column("aggregate_samples_per_second", sa.Float(), nullable=True),
        sa.Column("single_sum_tokens_per_second", sa.Float(), nullable=True),
        sa.Column("window_s", sa.Float(), nullable=True),
        sa.Column("nodes", sa.JSON(), nullable=False),
        sa.Column("balance", sa.JSON(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("excluded", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scaling_results"),
        sa.ForeignKeyConstraint(["run_pk"], ["benchmark_runs.id"], ondelete="CASCADE",
                                name="fk_scaling_results_run_pk_benchmark_runs"),
    )
    op.create_index("ix_scaling_results_run_pk", "scaling_results", ["run_pk"])
    op.create_index("ix_scaling_results_scenario", "scaling_results", ["scenario"])

    op.create_table(
        "regressions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("result_pk", sa.Integer(), nullable=True),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("node", sa.String(250), nullable=False),
        sa.Column("scenario", sa.String(32), nullable=False),
        sa.Column("branch", sa.String(16), nullable=False),
        sa.Column("current", sa.Float(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("change_pct", sa.Float(), nullable=False),
        sa.Column("threshold_pct", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("baseline_runs", sa.JSON(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_regressions"),
        sa.ForeignKeyConstraint(["run_pk"], ["benchmark_runs.id"], ondelete="CASCADE",
                                name="fk_regressions_run_pk_benchmark_runs"),
        sa.ForeignKeyConstraint(["result_pk"], ["benchmark_results.id"], ondelete="SET NULL",
                                name="fk_regressions_result_pk_benchmark_results"),
    )
    op.create_index("ix_regressions_run_pk", "regressions", ["run_pk"])
    op.create_index("ix_regressions_scenario", "regressions", ["scenario"])
    op.create_index("ix_regressions_node", "regressions", ["node"])


def downgrade() -> None:
    op.drop_table("regressions")
    op.drop_table("scaling_results")
    op.drop_table("benchmark_results")
    op.drop_table("benchmark_runs")
