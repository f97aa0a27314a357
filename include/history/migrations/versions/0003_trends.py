"""Trends: each run's own time, published MLPerf results as reference, and the indexes the page's queries use.

- `benchmark_runs.run_at`: when the run itself started (the earliest SUT start in result.json), else its logical
  date; never the time of an import. Existing rows are filled from their results' `start_utc`.
- `published_results`: MLPerf's published results (include/analysis/published.py), drawn as reference lines.
- Indexes for the page: runs by `run_at`, results by run and by (scenario, node, branch), regressions by run.

Revision ID: 0003_trends
Revises: 0002_verdicts
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from include.history.models import UTCDateTime

revision = "0003_trends"
down_revision = "0002_verdicts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable in the schema (SQLite cannot add a NOT NULL column without rebuilding the table, and a rebuild would
    # cascade-delete the results); the store writes it on every record and this fills every existing row.
    op.add_column("benchmark_runs", sa.Column("run_at", UTCDateTime(), nullable=True))
    op.execute("UPDATE benchmark_runs SET run_at = COALESCE((SELECT MIN(r.start_utc) FROM benchmark_results r "
               "WHERE r.run_pk = benchmark_runs.id), started_at, logical_date)")
    op.create_index("ix_benchmark_runs_run_at", "benchmark_runs", ["run_at", "id"])
    op.create_index("ix_benchmark_results_place", "benchmark_results", ["scenario", "node", "branch", "run_pk"])
    op.create_table(
        "published_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("round", sa.String(16), nullable=False),
        sa.Column("division", sa.String(16), nullable=False),
        sa.Column("submitter", sa.String(250), nullable=False),
        sa.Column("system", sa.Text(), nullable=False),
        sa.Column("accelerator", sa.String(250), nullable=False),
        sa.Column("accelerator_count", sa.Integer(), nullable=False),
        sa.Column("engine", sa.String(250), nullable=False),
        sa.Column("scenario", sa.String(32), nullable=False),
        sa.Column("tokens_per_s", sa.Float(), nullable=False),
        sa.Column("tokens_per_s_per_accelerator", sa.Float(), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_published_results")),
    )
    op.create_index("ix_published_results_accelerator", "published_results", ["accelerator", "scenario"])


def downgrade() -> None:
    op.drop_index("ix_published_results_accelerator", table_name="published_results")
    op.drop_table("published_results")
    op.drop_index("ix_benchmark_results_place", table_name="benchmark_results")
    op.drop_index("ix_benchmark_runs_run_at", table_name="benchmark_runs")
    op.drop_column("benchmark_runs", "run_at")
