"""The history store's tables as typed SQLAlchemy 2 declarative models.

One row per DAG run (`benchmark_runs`) and one per SUT run (`benchmark_results`), as asv and pytest-benchmark keep
one immutable record per (run, machine, configuration); failed and missing SUT runs are rows too, so a failure is
recorded rather than dropped. The schema itself is owned by the Alembic migrations in `migrations/versions/`: these
models must match them (a test compares the two).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names so that migrations can address them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TRIGGERS = ("scheduled", "manual", "cli", "import")
RUN_STATUSES = ("success", "failed", "partial")
BRANCHES = ("single", "distributed")
RESULT_STATUSES = ("completed", "failed", "missing")
MODES = ("performance", "accuracy")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator):
    """A timezone-aware timestamp stored as UTC on every backend.

    SQLite has no time zones and PostgreSQL answers in the session's zone: writing UTC and reading back UTC makes
    `logical_date` compare and sort the same everywhere. Naive datetimes are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(f"naive datetime {value!r}: the history store needs timezone-aware datetimes")
        value = value.astimezone(timezone.utc)
        # SQLite stores the text as given; drop the offset so that string order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
        str: String(),
    }


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class BenchmarkRun(Base):
    """One Airflow DAG run (or one imported/CLI run) of the benchmark."""

    __tablename__ = "benchmark_runs"
    __table_args__ = (
        CheckConstraint(_in("trigger", TRIGGERS), name="trigger"),
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        Index("ix_benchmark_runs_logical_date", "logical_date"),
        Index("ix_benchmark_runs_run_at", "run_at", "id"),       # the page: runs newest first by their own time
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(250), unique=True)   # Airflow's dag_run.run_id
    dag_id: Mapped[str] = mapped_column(String(250))
    logical_date: Mapped[datetime]
    # When the run itself started (its earliest SUT start), else its logical date; never an import's time.
    run_at: Mapped[datetime | None]   # written on every record; NULL only in a row no store has written
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)   # trigger-time params, never secrets
    mlperf_compliant: Mapped[bool] = mapped_column(Boolean)            # compliance == 'compliant'
    compliance: Mapped[str | None] = mapped_column(String(16))         # compliant | not compliant | unknown
    verdict: Mapped[str | None] = mapped_column(Text)                  # the Verdict's headline, as computed once
    # The Verdict's state and tone as computed once (what the page shows beside the headline); "unknown" for a run
    # recorded before they were stored and not derivable from its stored verdict (migration 0005).
    state: Mapped[str | None] = mapped_column(String(16))              # VALID | INVALID | FAILED | COMPLETED | unknown
    tone: Mapped[str | None] = mapped_column(String(8))                # good | warn | bad | unknown
    report_path: Mapped[str | None] = mapped_column(Text)
    report_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=_utcnow)

    results: Mapped[list[BenchmarkResult]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True)
    scaling: Mapped[list[ScalingResultRow]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True)
    regressions: Mapped[list[RegressionRecord]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True)


class BenchmarkResult(Base):
    """One SUT run: where it ran, what LoadGen and result.json said, its accuracy."""

    __tablename__ = "benchmark_results"
    __table_args__ = (
        UniqueConstraint("run_pk", "branch", "node", "scenario", "mode", name="uq_benchmark_results_run_key"),
        CheckConstraint(_in("branch", BRANCHES), name="branch"),
        CheckConstraint(_in("status", RESULT_STATUSES), name="status"),
        CheckConstraint(_in("mode", MODES), name="mode"),
        Index("ix_benchmark_results_scenario", "scenario"),
        Index("ix_benchmark_results_node", "node"),
        Index("ix_benchmark_results_branch", "branch"),
        Index("ix_benchmark_results_config_hash", "config_hash"),
        # comparable_history(): same configuration on the same hardware and place
        Index("ix_benchmark_results_comparable", "config_hash", "accelerator", "node", "branch", "scenario", "mode"),
        # comparable_history(): the same comparability key (settings, hardware, place, scenario)
        Index("ix_benchmark_results_comparability", "comparability_hash", "mode"),
        # the page's filters: the runs with a result in this scenario / node / branch
        Index("ix_benchmark_results_place", "scenario", "node", "branch", "run_pk"),
        # the page's filter options: distinct values by a skip scan (scenario, node, branch have theirs above)
        Index("ix_benchmark_results_mode", "mode"),
        Index("ix_benchmark_results_accelerator", "accelerator"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("benchmark_runs.id", ondelete="CASCADE"), index=True)
    branch: Mapped[str] = mapped_column(String(16))
    node: Mapped[str] = mapped_column(String(250))
    scenario: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    valid: Mapped[bool | None] = mapped_column(Boolean)        # LoadGen's verdict; None in accuracy mode
    invalid_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    config_hash: Mapped[str | None] = mapped_column(String(64))
    accelerator: Mapped[str | None] = mapped_column(String(250))
    versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    samples_per_second: Mapped[float | None] = mapped_column(Float)
    tokens_per_second: Mapped[float | None] = mapped_column(Float)
    ttft_p50_ns: Mapped[float | None] = mapped_column(Float)
    ttft_p99_ns: Mapped[float | None] = mapped_column(Float)
    tpot_p50_ns: Mapped[float | None] = mapped_column(Float)
    tpot_p99_ns: Mapped[float | None] = mapped_column(Float)
    latency_p50_ns: Mapped[float | None] = mapped_column(Float)
    latency_p99_ns: Mapped[float | None] = mapped_column(Float)
    duration_s: Mapped[float | None] = mapped_column(Float)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    samples_completed: Mapped[int | None] = mapped_column(Integer)
    rouge1: Mapped[float | None] = mapped_column(Float)
    rouge2: Mapped[float | None] = mapped_column(Float)
    rougeL: Mapped[float | None] = mapped_column(Float)
    rougeLsum: Mapped[float | None] = mapped_column(Float)
    gen_len: Mapped[int | None] = mapped_column(Integer)
    gen_num: Mapped[int | None] = mapped_column(Integer)
    accuracy_passed: Mapped[bool | None] = mapped_column(Boolean)
    accuracy_meaningful: Mapped[bool | None] = mapped_column(Boolean)
    start_utc: Mapped[datetime | None]
    end_utc: Mapped[datetime | None]
    run_dir: Mapped[str | None] = mapped_column(Text)
    # The run's verdict (include/analysis/verdict.py), computed once by the pipeline and stored as it was computed.
    state: Mapped[str | None] = mapped_column(String(16))               # VALID | INVALID | COMPLETED | FAILED | MISSING
    verdict: Mapped[str | None] = mapped_column(Text)                   # the headline: state and every flag
    exit_code: Mapped[int | None] = mapped_column(Integer)
    log_path: Mapped[str | None] = mapped_column(Text)
    loadgen_errors: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    submission_grade: Mapped[bool | None] = mapped_column(Boolean)
    compliance: Mapped[str | None] = mapped_column(String(16))
    compliance_reasons: Mapped[list[str] | None] = mapped_column(JSON)
    plausibility: Mapped[str | None] = mapped_column(String(16))        # plausible | implausible | unknown
    plausibility_bound: Mapped[float | None] = mapped_column(Float)
    plausibility_ratio: Mapped[float | None] = mapped_column(Float)
    accuracy_verdict: Mapped[str | None] = mapped_column(String(32))
    comparability: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    comparability_hash: Mapped[str | None] = mapped_column(String(64))

    run: Mapped[BenchmarkRun] = relationship(back_populates="results")


class ScalingResultRow(Base):
    """Distributed aggregate vs the sum of single-node throughputs (records.ScalingResult)."""

    __tablename__ = "scaling_results"
    __table_args__ = (Index("ix_scaling_results_scenario", "scenario"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("benchmark_runs.id", ondelete="CASCADE"), index=True)
    scenario: Mapped[str] = mapped_column(String(32))
    efficiency: Mapped[float | None] = mapped_column(Float)
    aggregate_tokens_per_second: Mapped[float | None] = mapped_column(Float)
    aggregate_samples_per_second: Mapped[float | None] = mapped_column(Float)
    single_sum_tokens_per_second: Mapped[float | None] = mapped_column(Float)
    window_s: Mapped[float | None] = mapped_column(Float)
    nodes: Mapped[list[str]] = mapped_column(JSON, default=list)
    balance: Mapped[list[Any]] = mapped_column(JSON, default=list)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    excluded: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    run: Mapped[BenchmarkRun] = relationship(back_populates="scaling")


class RegressionRecord(Base):
    """A metric of one SUT run found worse than its comparable history (records.Regression)."""

    __tablename__ = "regressions"
    __table_args__ = (
        Index("ix_regressions_scenario", "scenario"),
        Index("ix_regressions_node", "node"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("benchmark_runs.id", ondelete="CASCADE"), index=True)
    result_pk: Mapped[int | None] = mapped_column(ForeignKey("benchmark_results.id", ondelete="SET NULL"))
    metric: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(250))
    scenario: Mapped[str] = mapped_column(String(32))
    branch: Mapped[str] = mapped_column(String(16))
    current: Mapped[float] = mapped_column(Float)
    baseline: Mapped[float] = mapped_column(Float)
    change_pct: Mapped[float] = mapped_column(Float)
    threshold_pct: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    baseline_runs: Mapped[list[str]] = mapped_column(JSON, default=list)
    explanation: Mapped[str] = mapped_column(Text)

    run: Mapped[BenchmarkRun] = relationship(back_populates="regressions")


class PublishedResultRow(Base):
    """A published MLPerf result (include/analysis/published.py's PublishedResult), drawn as a reference line."""

    __tablename__ = "published_results"
    __table_args__ = (Index("ix_published_results_accelerator", "accelerator", "scenario"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    round: Mapped[str] = mapped_column(String(16))                # e.g. "v5.1"
    division: Mapped[str] = mapped_column(String(16))
    submitter: Mapped[str] = mapped_column(String(250))
    system: Mapped[str] = mapped_column(Text)
    accelerator: Mapped[str] = mapped_column(String(250))         # our accelerator names, e.g. "H200"
    accelerator_count: Mapped[int] = mapped_column(Integer)
    engine: Mapped[str] = mapped_column(String(250))
    scenario: Mapped[str] = mapped_column(String(32))
    tokens_per_s: Mapped[float] = mapped_column(Float)
    tokens_per_s_per_accelerator: Mapped[float] = mapped_column(Float)
    source_url: Mapped[str] = mapped_column(Text)
