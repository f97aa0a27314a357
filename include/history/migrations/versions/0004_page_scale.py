"""Page at scale: indexes for the filter options' skip scans (distinct modes and accelerators read one index probe
per value, not a pass over every result).

Revision ID: 0004_page_scale
Revises: 0003_trends
Create Date: 2026-11-29
"""
from __future__ import annotations

from alembic import op

revision = "0004_page_scale"
down_revision = "0003_trends"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_benchmark_results_mode", "benchmark_results", ["mode"])
    op.create_index("ix_benchmark_results_accelerator", "benchmark_results", ["accelerator"])


def downgrade() -> None:
    op.drop_index("ix_benchmark_results_accelerator", table_name="benchmark_results")
    op.drop_index("ix_benchmark_results_mode", table_name="benchmark_results")
