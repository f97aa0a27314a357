"""The run's verdict as the page shows it: its state and tone beside the headline (0002 stored the headline).

New runs get both as the pipeline computed them (include/analysis/verdict.py's `Verdict.state` and `Verdict.tone`).
Existing runs whose verdict was stored (the headline, and each result's state, plausibility and submission grade, from
0002 on) get them from those stored parts, by the rule the Verdict applied when this revision was written (a migration
keeps its own copy: the library's rule may change, what this revision wrote may not). A run recorded before verdicts
were stored, or with a result whose state was not stored, gets "unknown": never VALID or good for a verdict nobody
computed.

Revision ID: 0005_run_verdict
Revises: 0004_page_scale
Create Date: 2026-12-07
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005_run_verdict"
down_revision = "0004_page_scale"
branch_labels = None
depends_on = None

UNKNOWN = "unknown"


def state_and_tone(compliance: str | None, results: Sequence[Any], regressed: bool) -> tuple[str, str]:
    """(state, tone) of a run whose headline was stored, from its results' stored verdicts (state, mode,
    plausibility, submission_grade), its stored compliance and whether regressions were recorded for it."""
    states = [r.state for r in results]
    if None in states:
        return UNKNOWN, UNKNOWN
    failed = not results or any(s in ("FAILED", "MISSING") for s in states)
    invalid = "INVALID" in states
    if failed:
        state = "FAILED"
    elif invalid:
        state = "INVALID"
    else:
        state = "VALID" if any(r.mode == "performance" for r in results) else "COMPLETED"
    if failed or invalid or regressed or any(r.plausibility == "implausible" for r in results):
        tone = "bad"
    else:
        graded = all(r.submission_grade is True for r in results)
        tone = "good" if compliance == "compliant" and graded else "warn"
    return state, tone


def upgrade() -> None:
    op.add_column("benchmark_runs", sa.Column("state", sa.String(16), nullable=True))
    op.add_column("benchmark_runs", sa.Column("tone", sa.String(8), nullable=True))
    runs = sa.table("benchmark_runs", sa.column("id", sa.Integer), sa.column("compliance", sa.String),
                    sa.column("verdict", sa.Text), sa.column("state", sa.String), sa.column("tone", sa.String))
    results = sa.table("benchmark_results", sa.column("run_pk", sa.Integer), sa.column("mode", sa.String),
                       sa.column("state", sa.String), sa.column("plausibility", sa.String),
                       sa.column("submission_grade", sa.Boolean))
    regressions = sa.table("regressions", sa.column("run_pk", sa.Integer))
    bind = op.get_bind()
    judged_runs = sa.select(runs.c.id).where(runs.c.verdict.is_not(None))
    judged = {row.id: row.compliance for row in bind.execute(
        sa.select(runs.c.id, runs.c.compliance).where(runs.c.verdict.is_not(None)))}
    of_run: dict[int, list[Any]] = {pk: [] for pk in judged}
    for row in bind.execute(sa.select(results.c.run_pk, results.c.mode, results.c.state, results.c.plausibility,
                                      results.c.submission_grade).where(results.c.run_pk.in_(judged_runs))):
        of_run[row.run_pk].append(row)
    regressed = set(bind.execute(sa.select(regressions.c.run_pk).distinct()).scalars())
    updates = [dict(zip(("new_state", "new_tone"), state_and_tone(compliance, of_run[pk], pk in regressed)), pk=pk)
               for pk, compliance in judged.items()]
    if updates:
        bind.execute(runs.update().where(runs.c.id == sa.bindparam("pk"))
                     .values(state=sa.bindparam("new_state"), tone=sa.bindparam("new_tone")), updates)
    bind.execute(runs.update().where(runs.c.state.is_(None)).values(state=UNKNOWN, tone=UNKNOWN))


def downgrade() -> None:
    # Not batch: on SQLite a batch rebuilds the table, and dropping the old benchmark_runs would cascade-delete the
    # results (as in 0003's downgrade).
    op.drop_column("benchmark_runs", "tone")
    op.drop_column("benchmark_runs", "state")
