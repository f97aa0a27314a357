"""The benchmark history store: write one DAG run's results, read them back for the UI and for regressions.

The write side (`record`, once per pipeline run, after the report) is idempotent per run id: a task retried by
Airflow, or a run re-imported, replaces that run's rows in one transaction and never duplicates them; when the
write fails, the transaction rolls back and what was recorded before stays as it was.

The read side returns frozen dataclasses (`RunRow`, `ResultRow`, `RegressionRow`, `ScalingRow`), never ORM objects,
so that callers (the UI plugin) cannot write through them and need no session. `HistoryStore(url, readonly=True)`
additionally makes the database itself refuse writes (SQLite `query_only`, PostgreSQL read-only transactions).

Every value a caller passes (filters, run ids) reaches the database as a bound parameter. A database that cannot
be reached raises `HistoryUnavailable` naming the URL without its password.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, create_engine, delete, event, func, or_, select
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.orm import Session

from include.history.models import (
    BRANCHES,
    MODES,
    RESULT_STATUSES,
    RUN_STATUSES,
    TRIGGERS,
    BenchmarkResult,
    BenchmarkRun,
    RegressionRecord,
    ScalingResultRow,
)
from include.records import Regression, RunRecord, ScalingResult
from include.verdict import COMPLIANT, RunVerdict, Verdict

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_URL = "MLPERF_HISTORY_URL"
ROUGE_METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def default_url() -> str:
    """MLPERF_HISTORY_URL, else a SQLite file under the repository's .artifacts/ (PostgreSQL in production)."""
    return os.environ.get(ENV_URL) or f"sqlite:///{REPO_ROOT / '.artifacts' / 'history.sqlite'}"


class HistoryUnavailable(RuntimeError):
    """The history database cannot be reached or has no schema; the message names the URL without password."""


# ----------------------------------------------------------------------------------------------------------------
# What callers pass in


@dataclass(frozen=True)
class RunMeta:
    """One DAG run as the store records it (the parent of its SUT runs' results)."""

    run_id: str                        # Airflow's dag_run.run_id (unique)
    dag_id: str
    logical_date: datetime             # timezone-aware
    trigger: str                       # 'scheduled' | 'manual' | 'cli' | 'import'
    status: str                        # 'success' | 'failed' | 'partial'
    params: dict[str, Any]             # trigger-time params; secret-looking keys are redacted on write
    verdict: str                       # the Verdict's headline, as the pipeline computed it
    compliance: str                    # compliant | not compliant | unknown
    report_path: str | None
    report_url: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes as ISO 8601) for XCom."""
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunMeta:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for name in ("logical_date", "started_at", "finished_at"):
            if isinstance(values.get(name), str):
                values[name] = datetime.fromisoformat(values[name].replace("Z", "+00:00"))
        return cls(**values)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class _Row:
    """Read-side rows: `to_dict()` gives JSON-ready values (datetimes as ISO 8601) for the UI's API."""

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))


# ----------------------------------------------------------------------------------------------------------------
# What the read side returns


@dataclass(frozen=True)
class RunRow(_Row):
    run_id: str
    dag_id: str
    logical_date: datetime
    trigger: str
    status: str
    params: dict[str, Any]
    mlperf_compliant: bool
    compliance: str                    # compliant | not compliant | unknown (runs recorded before verdicts: unknown)
    verdict: str | None
    report_path: str | None
    report_url: str | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    # headline: how this run's SUT runs ended
    results_total: int = 0
    results_valid: int = 0             # completed and LoadGen VALID
    results_invalid: int = 0           # completed but LoadGen INVALID
    results_failed: int = 0            # failed or missing
    regressions_total: int = 0
    results_implausible: int = 0       # the verdict found the figure above a physical limit
    results_not_submission_grade: int = 0   # LoadGen logged an error


@dataclass(frozen=True)
class ResultRow(_Row):
    id: int
    run_id: str
    dag_id: str
    logical_date: datetime
    mlperf_compliant: bool
    branch: str
    node: str
    scenario: str
    mode: str
    status: str
    error: str | None
    valid: bool | None
    invalid_reasons: list[str]
    config_hash: str | None
    accelerator: str | None
    versions: dict[str, Any]
    samples_per_second: float | None
    tokens_per_second: float | None
    ttft_p50_ns: float | None
    ttft_p99_ns: float | None
    tpot_p50_ns: float | None
    tpot_p99_ns: float | None
    latency_p50_ns: float | None
    latency_p99_ns: float | None
    duration_s: float | None
    output_tokens: int | None
    samples_completed: int | None
    rouge1: float | None
    rouge2: float | None
    rougeL: float | None
    rougeLsum: float | None
    gen_len: int | None
    gen_num: int | None
    accuracy_passed: bool | None
    accuracy_meaningful: bool | None
    start_utc: datetime | None
    end_utc: datetime | None
    run_dir: str | None
    state: str | None = None
    verdict: str | None = None
    exit_code: int | None = None
    log_path: str | None = None
    loadgen_errors: dict[str, Any] | None = None
    submission_grade: bool | None = None
    compliance: str | None = None
    compliance_reasons: list[str] | None = None
    plausibility: str | None = None
    plausibility_bound: float | None = None
    plausibility_ratio: float | None = None
    accuracy_verdict: str | None = None
    comparability: dict[str, Any] | None = None
    comparability_hash: str | None = None

    @property
    def usable_as_baseline(self) -> bool:
        return is_baseline_worthy(self.status, self.mode, self.valid)


@dataclass(frozen=True)
class RegressionRow(_Row):
    id: int
    run_id: str
    logical_date: datetime
    result_id: int | None
    metric: str
    node: str
    scenario: str
    branch: str
    current: float
    baseline: float
    change_pct: float
    threshold_pct: float
    p_value: float | None
    baseline_runs: list[str]
    explanation: str


@dataclass(frozen=True)
class ScalingRow(_Row):
    id: int
    run_id: str
    logical_date: datetime
    scenario: str
    efficiency: float | None
    aggregate_tokens_per_second: float | None
    aggregate_samples_per_second: float | None
    single_sum_tokens_per_second: float | None
    window_s: float | None
    nodes: list[str]
    balance: list[dict[str, Any]]
    flags: list[str]
    excluded: dict[str, str]


# ----------------------------------------------------------------------------------------------------------------
# Mapping records onto rows (pure functions)


def is_baseline_worthy(status: str, mode: str, valid: bool | None) -> bool:
    """Completed and LoadGen-VALID; in accuracy mode LoadGen judges no validity, so completed is enough."""
    if status != "completed":
        return False
    return valid is True or (mode == "accuracy" and valid is None)


def _finite(value: Any) -> float | None:
    """A float for the database; NaN and infinities (no JSON, no meaning as a figure) become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _parse_utc(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def verdict_columns(verdict: RunVerdict | None) -> dict[str, Any]:
    """The run's verdict as stored: exactly what the pipeline computed (None values for a run never judged)."""
    if verdict is None:
        return {}
    return {"state": verdict.state, "verdict": verdict.headline, "exit_code": verdict.exit_code,
            "log_path": verdict.log_path, "loadgen_errors": dict(verdict.loadgen_errors),
            "submission_grade": verdict.submission_grade, "compliance": verdict.compliance,
            "compliance_reasons": list(verdict.compliance_reasons), "plausibility": verdict.plausibility,
            "plausibility_bound": _finite(verdict.plausibility_bound),
            "plausibility_ratio": _finite(verdict.plausibility_ratio), "accuracy_verdict": verdict.accuracy,
            "comparability": json.loads(json.dumps(verdict.comparability, default=str)),
            "comparability_hash": verdict.comparability_hash}


def result_columns(record: RunRecord, verdict: RunVerdict | None = None) -> dict[str, Any]:
    """RunRecord (+ its verdict) -> benchmark_results columns (without the run foreign key).

    Percentiles come from LoadGen's own report (`record.loadgen`), counts, accelerator, versions, configuration hash
    and timing from the SUT's result.json (`record.sut`), ROUGE from `record.accuracy`.
    """
    sut = record.sut
    loadgen = record.loadgen
    accuracy = record.accuracy
    versions = dict(sut.versions) if sut else {}
    if loadgen is not None and loadgen.loadgen_version and not versions.get("loadgen"):
        versions["loadgen"] = loadgen.loadgen_version

    def pct(series: str, key: str) -> float | None:
        if loadgen is None:
            return None
        return _finite((getattr(loadgen, series) or {}).get(key))

    duration = sut.timing.duration_s if sut else None
    if duration is None and loadgen is not None:
        duration = loadgen.duration_s
    return {
        "branch": record.branch,
        "node": record.node,
        "scenario": record.scenario,
        "mode": record.mode,
        "status": record.status,
        "error": record.error,
        "valid": loadgen.valid if loadgen is not None else None,
        "invalid_reasons": list(loadgen.invalid_reasons) if loadgen is not None else [],
        "config_hash": sut.config_hash if sut else None,
        "accelerator": sut.accelerator.name if sut else None,
        "versions": versions,
        "samples_per_second": _finite(loadgen.samples_per_second) if loadgen else None,
        "tokens_per_second": _finite(loadgen.tokens_per_second) if loadgen else None,
        "ttft_p50_ns": pct("ttft_ns", "p50"),
        "ttft_p99_ns": pct("ttft_ns", "p99"),
        "tpot_p50_ns": pct("tpot_ns", "p50"),
        "tpot_p99_ns": pct("tpot_ns", "p99"),
        "latency_p50_ns": pct("latency_ns", "p50"),
        "latency_p99_ns": pct("latency_ns", "p99"),
        "duration_s": _finite(duration),
        "output_tokens": sut.counts.output_tokens if sut else None,
        "samples_completed": sut.counts.samples_completed if sut else None,
        "rouge1": _finite(accuracy.rouge1) if accuracy else None,
        "rouge2": _finite(accuracy.rouge2) if accuracy else None,
        "rougeL": _finite(accuracy.rougeL) if accuracy else None,
        "rougeLsum": _finite(accuracy.rougeLsum) if accuracy else None,
        "gen_len": _int(accuracy.gen_len) if accuracy else None,
        "gen_num": _int(accuracy.gen_num) if accuracy else None,
        "accuracy_passed": accuracy.passed if accuracy else None,
        "accuracy_meaningful": sut.accuracy_meaningful if sut else None,
        "start_utc": _parse_utc(sut.timing.start_utc if sut else None),
        "end_utc": _parse_utc(sut.timing.end_utc if sut else None),
        "run_dir": record.run_dir,
        **verdict_columns(verdict),
    }


_SECRET_KEY = re.compile(r"passw|secret|credential|api[_-]?key|private[_-]?key|(^|_)token$|^auth", re.IGNORECASE)


def redact_params(params: Any) -> Any:
    """Params as JSON, with the values of secret-looking keys replaced: the history is readable by every UI user."""
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): ("***" if _SECRET_KEY.search(str(k)) else walk(v)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value
    return json.loads(json.dumps(walk(params or {}), default=str))


def _mode_of_metric(metric: str) -> str:
    return "accuracy" if metric in ROUGE_METRICS or metric in ("gen_len", "gen_num") else "performance"


def _check_aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.tzinfo.utcoffset(value) is None):
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


def _unstorable(value: Any) -> bool:
    """Text with a NUL byte: PostgreSQL cannot store it, so no backend may (and no stored row can match it)."""
    return isinstance(value, str) and "\x00" in value


def _validate_meta(run: RunMeta) -> None:
    if not run.run_id:
        raise ValueError("run_id is empty")
    if _unstorable(run.run_id) or _unstorable(run.dag_id):
        raise ValueError(f"run_id/dag_id contain a NUL byte: {run.run_id!r}")
    if run.trigger not in TRIGGERS:
        raise ValueError(f"trigger {run.trigger!r} is not one of {TRIGGERS}")
    if run.status not in RUN_STATUSES:
        raise ValueError(f"status {run.status!r} is not one of {RUN_STATUSES}")
    _check_aware("logical_date", run.logical_date)
    _check_aware("started_at", run.started_at)
    _check_aware("finished_at", run.finished_at)


def _validate_records(records: Sequence[RunRecord]) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for record in records:
        key = (record.branch, record.node, record.scenario, record.mode)
        if record.branch not in BRANCHES or record.mode not in MODES or record.status not in RESULT_STATUSES:
            raise ValueError(f"record {key} has branch/mode/status outside {BRANCHES}/{MODES}/{RESULT_STATUSES}: "
                             f"{record.status!r}")
        if any(_unstorable(part) for part in key):
            raise ValueError(f"record {key!r} contains a NUL byte")
        if key in seen:
            raise ValueError(f"two records for branch/node/scenario/mode {key}: one SUT run each")
        seen.add(key)


def _scaling_columns(item: ScalingResult | dict[str, Any]) -> dict[str, Any]:
    data = item.to_dict() if hasattr(item, "to_dict") else dict(item)
    return {
        "scenario": data["scenario"],
        "efficiency": _finite(data.get("efficiency")),
        "aggregate_tokens_per_second": _finite(data.get("aggregate_tokens_per_second")),
        "aggregate_samples_per_second": _finite(data.get("aggregate_samples_per_second")),
        "single_sum_tokens_per_second": _finite(data.get("single_sum_tokens_per_second")),
        "window_s": _finite(data.get("window_s")),
        "nodes": list(data.get("nodes") or []),
        "balance": json.loads(json.dumps(data.get("balance") or [], default=str)),
        "flags": list(data.get("flags") or []),
        "excluded": dict(data.get("excluded") or {}),
    }


def _regression_columns(item: Regression | dict[str, Any]) -> dict[str, Any]:
    data = item.to_dict() if hasattr(item, "to_dict") else dict(item)
    return {
        "metric": data["metric"],
        "node": data["node"],
        "scenario": data["scenario"],
        "branch": data["branch"],
        "current": float(data["current"]),
        "baseline": float(data["baseline"]),
        "change_pct": float(data["change_pct"]),
        "threshold_pct": float(data["threshold_pct"]),
        "p_value": _finite(data.get("p_value")),
        "baseline_runs": [str(r) for r in data.get("baseline_runs") or []],
        "explanation": data.get("explanation") or "",
    }


# ----------------------------------------------------------------------------------------------------------------
# The store


_RESULT_FIELDS = [f.name for f in dataclasses.fields(ResultRow)
                  if f.name not in ("id", "run_id", "dag_id", "logical_date", "mlperf_compliant")]


class HistoryStore:
    """Benchmark history on SQLAlchemy: SQLite by default, PostgreSQL in production."""

    def __init__(self, url: str | None = None, *, readonly: bool = False, connect_timeout_s: int = 5):
        self.url = url or default_url()
        self.readonly = readonly
        try:
            self._url: URL = make_url(self.url)
        except ArgumentError as exc:
            raise HistoryUnavailable(f"history database URL is not valid: {exc}") from None
        self.safe_url = self._url.render_as_string(hide_password=True)
        self.engine = self._make_engine(connect_timeout_s)

    # -- plumbing ----------------------------------------------------------------------------------------------

    def _make_engine(self, connect_timeout_s: int) -> Engine:
        backend = self._url.get_backend_name()
        connect_args: dict[str, Any] = {}
        if backend == "sqlite":
            database = self._url.database
            if database and database != ":memory:" and not database.startswith("file:") and not self.readonly:
                try:
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise HistoryUnavailable(f"history database {self.safe_url}: cannot create its folder: "
                                             f"{exc}") from None
            connect_args["timeout"] = 30   # seconds to wait for another writer's lock
        elif backend == "postgresql":
            if self._url.get_driver_name() in ("psycopg2", "psycopg"):
                connect_args["connect_timeout"] = connect_timeout_s
                if self.readonly:
                    connect_args["options"] = "-c default_transaction_read_only=on"
        try:
            engine = create_engine(self._url, pool_pre_ping=True, connect_args=connect_args)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise HistoryUnavailable(f"history database {self.safe_url}: cannot use this URL: {exc}") from None

        if backend == "sqlite":
            readonly = self.readonly

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_connection, _record):
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA foreign_keys=ON")
                if readonly:
                    cursor.execute("PRAGMA query_only=ON")
                cursor.close()
        return engine

    def _scrub(self, text: str) -> str:
        if self._url.password:
            text = text.replace(str(self._url.password), "***")
        return text

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn the driver's connection and missing-schema errors into one HistoryUnavailable."""
        try:
            yield
        except (HistoryUnavailable, ValueError, PermissionError):
            raise
        except IntegrityError:
            raise
        except (OperationalError, InterfaceError, ProgrammingError, DBAPIError) as exc:
            original = str(getattr(exc, "orig", None) or exc).strip()
            detail = self._scrub(original.splitlines()[0] if original else type(exc).__name__)
            lowered = detail.lower()
            if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
                raise HistoryUnavailable(
                    f"history database {self.safe_url} has no history schema ({detail}); "
                    f"run HistoryStore(url).upgrade() first") from None
            if isinstance(exc, (OperationalError, InterfaceError)) or exc.connection_invalidated:
                raise HistoryUnavailable(f"history database {self.safe_url} unavailable while trying to {action}: "
                                         f"{detail}") from None
            raise

    def _writable(self) -> None:
        if self.readonly:
            raise PermissionError(f"history store {self.safe_url} was opened read-only")

    def dispose(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.dispose()

    # -- schema --------------------------------------------------------------------------------------------------

    def upgrade(self, revision: str = "head") -> None:
        """Run the Alembic migrations up to `revision` (head), from an empty database or any earlier revision."""
        from alembic import command

        from include.history.migrations import alembic_config

        self._writable()
        with self._guard("migrate the schema"), self.engine.begin() as connection:
            command.upgrade(alembic_config(self.url, connection=connection), revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self._guard("read the schema revision"), self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    # -- write side ----------------------------------------------------------------------------------------------

    def record(self, run: RunMeta, records: Iterable[RunRecord], scaling: Iterable[ScalingResult] = (),
               regressions: Iterable[Regression] = (), verdict: Verdict | None = None) -> None:
        """Store one pipeline run with its SUT runs and their verdicts (`verdict.runs` in the order of `records`);
        a run id recorded before has its rows replaced, in one transaction."""
        self._writable()
        records = [RunRecord.from_dict(r) if isinstance(r, dict) else r for r in records]
        if isinstance(run, dict):
            run = RunMeta.from_dict(run)
        _validate_meta(run)
        _validate_records(records)
        verdicts = list(verdict.runs) if verdict is not None else [None] * len(records)
        if len(verdicts) != len(records):
            raise ValueError(f"{len(verdicts)} verdicts for {len(records)} records: one verdict per run")
        # Map everything before touching the database, so a bad record fails before any write.
        result_rows = [result_columns(r, v) for r, v in zip(records, verdicts)]
        scaling_rows = [_scaling_columns(s) for s in scaling]
        regression_rows = [_regression_columns(r) for r in regressions]
        params = redact_params(run.params)

        for attempt in (1, 2):
            try:
                with self._guard("record run"), Session(self.engine) as session, session.begin():
                    run_row = session.scalars(
                        select(BenchmarkRun).where(BenchmarkRun.run_id == run.run_id).with_for_update()).first()
                    if run_row is None:
                        run_row = BenchmarkRun(run_id=run.run_id)
                        session.add(run_row)
                    else:
                        self._delete_children(session, run_row.id)
                    run_row.dag_id = run.dag_id
                    run_row.logical_date = run.logical_date
                    run_row.trigger = run.trigger
                    run_row.status = run.status
                    run_row.started_at = run.started_at
                    run_row.finished_at = run.finished_at
                    run_row.params = params
                    run_row.mlperf_compliant = run.compliance == COMPLIANT
                    run_row.compliance = run.compliance
                    run_row.verdict = run.verdict
                    run_row.report_path = run.report_path
                    run_row.report_url = run.report_url
                    session.flush()
                    result_ids = self._insert_results(session, run_row.id, result_rows)
                    for columns in scaling_rows:
                        session.add(ScalingResultRow(run_pk=run_row.id, **columns))
                    self._insert_regressions(session, run_row.id, regression_rows, result_ids)
                return
            except IntegrityError:
                # Two writers inserted the same new run id at once: the loser retries and replaces.
                if attempt == 2:
                    raise

    @staticmethod
    def _delete_children(session: Session, run_pk: int) -> None:
        session.execute(delete(RegressionRecord).where(RegressionRecord.run_pk == run_pk))
        session.execute(delete(ScalingResultRow).where(ScalingResultRow.run_pk == run_pk))
        session.execute(delete(BenchmarkResult).where(BenchmarkResult.run_pk == run_pk))
        session.expire_all()

    @staticmethod
    def _insert_results(session: Session, run_pk: int, rows: list[dict[str, Any]]) -> dict[tuple, int]:
        objects = [BenchmarkResult(run_pk=run_pk, **columns) for columns in rows]
        session.add_all(objects)
        session.flush()
        return {(o.branch, o.node, o.scenario, o.mode): o.id for o in objects}

    @staticmethod
    def _insert_regressions(session: Session, run_pk: int, rows: list[dict[str, Any]],
                            result_ids: dict[tuple, int]) -> None:
        for columns in rows:
            key = (columns["branch"], columns["node"], columns["scenario"], _mode_of_metric(columns["metric"]))
            session.add(RegressionRecord(run_pk=run_pk, result_pk=result_ids.get(key), **columns))

    # -- read side -----------------------------------------------------------------------------------------------

    @staticmethod
    def _run_query():
        result_counts = (
            select(
                BenchmarkResult.run_pk.label("run_pk"),
                func.count(BenchmarkResult.id).label("total"),
                func.sum(case((and_(BenchmarkResult.status == "completed", BenchmarkResult.valid.is_(True)), 1),
                              else_=0)).label("valid"),
                func.sum(case((and_(BenchmarkResult.status == "completed", BenchmarkResult.valid.is_(False)), 1),
                              else_=0)).label("invalid"),
                func.sum(case((BenchmarkResult.status.in_(("failed", "missing")), 1), else_=0)).label("failed"),
                func.sum(case((BenchmarkResult.plausibility == "implausible", 1), else_=0)).label("implausible"),
                func.sum(case((BenchmarkResult.submission_grade.is_(False), 1), else_=0)).label("not_grade"),
            ).group_by(BenchmarkResult.run_pk).subquery()
        )
        regression_counts = (
            select(RegressionRecord.run_pk.label("run_pk"), func.count(RegressionRecord.id).label("total"))
            .group_by(RegressionRecord.run_pk).subquery()
        )
        return (
            select(BenchmarkRun, result_counts.c.total, result_counts.c.valid, result_counts.c.invalid,
                   result_counts.c.failed, regression_counts.c.total, result_counts.c.implausible,
                   result_counts.c.not_grade)
            .outerjoin(result_counts, result_counts.c.run_pk == BenchmarkRun.id)
            .outerjoin(regression_counts, regression_counts.c.run_pk == BenchmarkRun.id)
        )

    @staticmethod
    def _run_row(run: BenchmarkRun, total, valid, invalid, failed, regressions, implausible, not_grade) -> RunRow:
        return RunRow(
            run_id=run.run_id, dag_id=run.dag_id, logical_date=run.logical_date, trigger=run.trigger,
            status=run.status, params=run.params or {}, mlperf_compliant=bool(run.mlperf_compliant),
            compliance=run.compliance or "unknown", verdict=run.verdict, report_path=run.report_path, report_url=run.report_url, started_at=run.started_at,
            finished_at=run.finished_at, created_at=run.created_at, results_total=int(total or 0),
            results_valid=int(valid or 0), results_invalid=int(invalid or 0), results_failed=int(failed or 0),
            regressions_total=int(regressions or 0), results_implausible=int(implausible or 0),
            results_not_submission_grade=int(not_grade or 0))

    def runs(self, limit: int = 100, offset: int = 0) -> list[RunRow]:
        """Runs newest first (by logical date), each with its headline counts."""
        limit, offset = int(limit), int(offset)
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        query = (self._run_query().order_by(BenchmarkRun.logical_date.desc(), BenchmarkRun.id.desc())
                 .limit(limit).offset(offset))
        with self._guard("list runs"), Session(self.engine) as session:
            return [self._run_row(*row) for row in session.execute(query).all()]

    def run(self, run_id: str) -> RunRow | None:
        if _unstorable(run_id):
            return None
        with self._guard("read a run"), Session(self.engine) as session:
            row = session.execute(self._run_query().where(BenchmarkRun.run_id == str(run_id))).first()
            return self._run_row(*row) if row else None

    @staticmethod
    def _result_row(result: BenchmarkResult, run: BenchmarkRun) -> ResultRow:
        values = {name: getattr(result, name) for name in _RESULT_FIELDS}
        values["invalid_reasons"] = list(values["invalid_reasons"] or [])
        values["versions"] = dict(values["versions"] or {})
        return ResultRow(id=result.id, run_id=run.run_id, dag_id=run.dag_id, logical_date=run.logical_date,
                         mlperf_compliant=bool(run.mlperf_compliant), **values)

    def results(self, scenario: str | None = None, node: str | None = None, branch: str | None = None,
                mode: str | None = None, since: datetime | None = None, until: datetime | None = None,
                run_id: str | None = None) -> list[ResultRow]:
        """SUT runs matching every given filter, oldest first; `since` inclusive, `until` exclusive."""
        _check_aware("since", since)
        _check_aware("until", until)
        query = select(BenchmarkResult, BenchmarkRun).join(BenchmarkRun, BenchmarkResult.run_pk == BenchmarkRun.id)
        filters = ((BenchmarkResult.scenario, scenario), (BenchmarkResult.node, node),
                   (BenchmarkResult.branch, branch), (BenchmarkResult.mode, mode), (BenchmarkRun.run_id, run_id))
        if any(_unstorable(value) for _, value in filters):
            return []
        for column, value in filters:
            if value is not None:
                query = query.where(column == str(value))
        if since is not None:
            query = query.where(BenchmarkRun.logical_date >= since)
        if until is not None:
            query = query.where(BenchmarkRun.logical_date < until)
        query = query.order_by(BenchmarkRun.logical_date, BenchmarkRun.id, BenchmarkResult.branch,
                               BenchmarkResult.node, BenchmarkResult.scenario, BenchmarkResult.mode)
        with self._guard("read results"), Session(self.engine) as session:
            return [self._result_row(result, run) for result, run in session.execute(query).all()]

    def comparable_history(self, key_hash: str | None, mode: str, before: datetime, limit: int = 20,
                           exclude_run_id: str | None = None) -> list[ResultRow]:
        """The latest `limit` earlier SUT runs of the same comparability key usable as a baseline, oldest first.

        Same key: the same settings, hardware, place and scenario (include/verdict.py). Usable: completed and
        LoadGen VALID (accuracy mode: completed; LoadGen judges no validity there). Earlier: logical date before
        `before`. A result without a key (recorded before verdicts existed) has no comparable history.
        """
        _check_aware("before", before)
        if not key_hash or _unstorable(key_hash) or _unstorable(exclude_run_id):
            return []
        query = (
            select(BenchmarkResult, BenchmarkRun)
            .join(BenchmarkRun, BenchmarkResult.run_pk == BenchmarkRun.id)
            .where(BenchmarkResult.comparability_hash == key_hash, BenchmarkResult.mode == mode,
                   BenchmarkResult.status == "completed",
                   BenchmarkResult.plausibility.is_distinct_from("implausible"),
                   or_(BenchmarkResult.valid.is_(True),
                       and_(BenchmarkResult.mode == "accuracy", BenchmarkResult.valid.is_(None))),
                   BenchmarkRun.logical_date < before)
            .order_by(BenchmarkRun.logical_date.desc(), BenchmarkRun.id.desc())
            .limit(int(limit))
        )
        if exclude_run_id is not None:
            query = query.where(BenchmarkRun.run_id != exclude_run_id)
        with self._guard("read comparable history"), Session(self.engine) as session:
            rows = [self._result_row(r, run) for r, run in session.execute(query).all()]
        rows.reverse()
        return rows

    def regressions(self, run_id: str | None = None) -> list[RegressionRow]:
        query = select(RegressionRecord, BenchmarkRun).join(BenchmarkRun, RegressionRecord.run_pk == BenchmarkRun.id)
        if _unstorable(run_id):
            return []
        if run_id is not None:
            query = query.where(BenchmarkRun.run_id == str(run_id))
        query = query.order_by(BenchmarkRun.logical_date, BenchmarkRun.id, RegressionRecord.id)
        with self._guard("read regressions"), Session(self.engine) as session:
            return [RegressionRow(
                id=r.id, run_id=run.run_id, logical_date=run.logical_date, result_id=r.result_pk, metric=r.metric,
                node=r.node, scenario=r.scenario, branch=r.branch, current=r.current, baseline=r.baseline,
                change_pct=r.change_pct, threshold_pct=r.threshold_pct, p_value=r.p_value,
                baseline_runs=list(r.baseline_runs or []), explanation=r.explanation,
            ) for r, run in session.execute(query).all()]

    def scaling(self, run_id: str | None = None) -> list[ScalingRow]:
        query = select(ScalingResultRow, BenchmarkRun).join(BenchmarkRun, ScalingResultRow.run_pk == BenchmarkRun.id)
        if _unstorable(run_id):
            return []
        if run_id is not None:
            query = query.where(BenchmarkRun.run_id == str(run_id))
        query = query.order_by(BenchmarkRun.logical_date, BenchmarkRun.id, ScalingResultRow.scenario,
                               ScalingResultRow.id)
        with self._guard("read scaling results"), Session(self.engine) as session:
            return [ScalingRow(
                id=s.id, run_id=run.run_id, logical_date=run.logical_date, scenario=s.scenario,
                efficiency=s.efficiency, aggregate_tokens_per_second=s.aggregate_tokens_per_second,
                aggregate_samples_per_second=s.aggregate_samples_per_second,
                single_sum_tokens_per_second=s.single_sum_tokens_per_second, window_s=s.window_s,
                nodes=list(s.nodes or []), balance=list(s.balance or []), flags=list(s.flags or []),
                excluded=dict(s.excluded or {}),
            ) for s, run in session.execute(query).all()]

    def filter_options(self) -> dict[str, Any]:
        """Distinct values the UI offers as filters, and the logical-date range (None when the store is empty)."""
        def distinct(column) -> list[str]:
            return [v for v in session.scalars(select(column).distinct().order_by(column)) if v is not None]

        with self._guard("read filter options"), Session(self.engine) as session:
            first, last = session.execute(
                select(func.min(BenchmarkRun.logical_date), func.max(BenchmarkRun.logical_date))).one()
            # min()/max() bypass the column type on some backends: normalise to aware UTC here.
            first, last = (_parse_utc(v) for v in (first, last))
            return {
                "scenarios": distinct(BenchmarkResult.scenario),
                "nodes": distinct(BenchmarkResult.node),
                "branches": distinct(BenchmarkResult.branch),
                "modes": distinct(BenchmarkResult.mode),
                "accelerators": distinct(BenchmarkResult.accelerator),
                "date_range": (first, last) if first is not None else None,
            }
