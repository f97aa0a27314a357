"""Verdict columns: each result's verdict as the pipeline computed it once, and its comparability key.

Existing rows keep NULL in the new columns: their verdict was never computed, and the views say "unknown" for them
rather than guess. A result without a comparability hash has no comparable history.

Revision ID: 0002_verdicts
Revises: 0001_initial
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_verdicts"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

RESULT_COLUMNS = [
    sa.Column("state", sa.String(16), nullable=True),
    sa.Column("verdict", sa.Text(), nullable=True),
    sa.Column("exit_code", sa.Integer(), nullable=True),
    sa.Column("log_path", sa.Text(), nullable=True),
    sa.Column("loadgen_errors", sa.JSON(), nullable=True),
    sa.Column("submission_grade", sa.Boolean(), nullable=True),
    sa.Column("compliance", sa.String(16), nullable=True),
    sa.Column("compliance_reasons", sa.JSON(), nullable=True),
    sa.Column("plausibility", sa.String(16), nullable=True),
    sa.Column("plausibility_bound", sa.Float(), nullable=True),
    sa.Column("plausibility_ratio", sa.Float(), nullable=True),
    sa.Column("accuracy_verdict", sa.String(32), nullable=True),
    sa.Column("comparability", sa.JSON(), nullable=True),
    sa.Column("comparability_hash", sa.String(64), nullable=True),
]


def upgrade() -> None:
    op.add_column("benchmark_runs", sa.Column("compliance", sa.String(16), nullable=True))
    op.add_column("benchmark_runs", sa.Column("verdict", sa.Text(), nullable=True))
    for column in RESULT_COLUMNS:
        op.add_column("benchmark_results", column)
    op.create_index("ix_benchmark_results_comparability", "benchmark_results", ["comparability_hash", "mode"])


def downgrade() -> None:
    op.drop_index("ix_benchmark_results_comparability", table_name="benchmark_results")
    with op.batch_alter_table("benchmark_results") as batch:
        for column in reversed(RESULT_COLUMNS):
            batch.drop_column(column.name)
    with op.batch_alter_table("benchmark_runs") as batch:
        batch.drop_column("verdict")
        batch.drop_column("compliance")
