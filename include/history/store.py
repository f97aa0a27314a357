"""The benchmark history store: write one DAG run's results, read them back for the UI and for regressions.

The write side (`record`, once per pipeline run, after the report) is idempotent per run id: a task retried by
Airflow, or a run re-imported, replaces that run's rows in one transaction and never duplicates them; when the
write fails, the transaction rolls back and what was recorded before stays as it was.

The read side returns frozen dataclasses (`RunRow`, `ResultRow`, `RegressionRow`, `ScalingRow`), never ORM objects,
so that callers (the UI plugin) cannot write through them and need no session. `HistoryStore(url, readonly=True)`
additionally makes the database itself refuse writes (SQLite `query_only`, PostgreSQL read-only transactions).

Every value a caller passes (filters, run ids) reaches the database as a bound parameter. A database that cannot
be reached, or whose file is not (or no longer) a database, raises `HistoryUnavailable` naming the URL without its
password; no connection to it is kept, so the next call tries afresh (a SQLite file replaced under the same name is
noticed at the next checkout).
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, create_engine, delete, event, exists, func, or_, select, type_coerce
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.orm import Session

from include.history.mapping import (
    check_aware,
    mode_of_metric,
    parse_utc,
    regression_columns,
    scaling_columns,
    unstorable,
    validate_meta,
    validate_records,
    redact_params,
    result_columns,
)
from include.history.models import (
    BenchmarkResult,
    BenchmarkRun,
    PublishedResultRow,
    RegressionRecord,
    ScalingResultRow,
    UTCDateTime,
)
from include.history.rows import (
    PublishedRow,
    RegressionRow,
    ResultRow,
    RunMeta,
    RunRow,
    ScalingRow,
    TrendRow,
)
from include.analysis.verdict import COMPLIANT, Verdict
from include.records import Regression, RunRecord, ScalingResult


def _file_identity(database: str) -> tuple[int, int] | None:
    """Which file a SQLite path names now (device, inode); None for no file or an in-memory database."""
    try:
        found = os.stat(database)
    except (OSError, ValueError):
        return None
    return found.st_dev, found.st_ino


def default_url() -> str:
    """The deployment's history URL (include/deployment.py defines it once: MLPERF_HISTORY_URL, else a SQLite file
    in the artefacts folder; PostgreSQL in production)."""
    from include import deployment

    return deployment.load().history_url


class HistoryUnavailable(RuntimeError):
    """The history database cannot be reached or has no schema; the message names the URL without password."""


class RunIdentityConflict(ValueError):
    """A CLI or imported record would overwrite a run the DAG recorded (its trigger, dag_id and dates)."""


DAG_TRIGGERS = ("scheduled", "manual")
_PUBLISHED_FIELDS = [f.name for f in dataclasses.fields(PublishedRow)]


# ----------------------------------------------------------------------------------------------------------------
# The store


_RESULT_FIELDS = [f.name for f in dataclasses.fields(ResultRow)
                  if f.name not in ("id", "run_id", "dag_id", "logical_date", "mlperf_compliant", "at")]
_RESULT_ORDER = (BenchmarkRun.run_at, BenchmarkRun.id, BenchmarkResult.branch, BenchmarkResult.node,
                 BenchmarkResult.scenario, BenchmarkResult.mode)


def _skip_scan(column):
    """The distinct non-NULL values of an indexed column, one index probe per value (a recursive CTE), not a pass
    over every result: the page's filter options cost the same at 50 and at 50,000 results."""
    values = select(func.min(column).label("value")).cte("distinct_values", recursive=True)
    following = select(column).where(column > values.c.value).order_by(column).limit(1).scalar_subquery()
    values = values.union_all(select(following).where(values.c.value.is_not(None)))
    return select(values.c.value).where(values.c.value.is_not(None))


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
            database = self._url.database or ""

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_connection, _record):
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA foreign_keys=ON")
                if readonly:
                    cursor.execute("PRAGMA query_only=ON")
                cursor.close()
                _record.info["file"] = _file_identity(database)

            @event.listens_for(engine, "checkout")
            def _same_file(_dbapi_connection, record, _proxy):
                # A pooled connection keeps the file it opened: a history replaced or restored under the same name
                # (a new inode) went unseen, and a connection opened on a bad file failed until a restart. One stat
                # per checkout; a stale connection is dropped and the pool connects afresh.
                if record.info.get("file") != _file_identity(database):
                    raise DisconnectionError(f"{database} is another file than the one this connection opened")
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
            # A bare DatabaseError is the file itself: "file is not a database", "database disk image is malformed".
            if isinstance(exc, (OperationalError, InterfaceError)) or type(exc) is DatabaseError \
                    or exc.connection_invalidated:
                self.engine.dispose()        # no connection to what failed is kept: the next call connects afresh
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
        validate_meta(run)
        validate_records(records)
        verdicts = list(verdict.runs) if verdict is not None else [None] * len(records)
        if len(verdicts) != len(records):
            raise ValueError(f"{len(verdicts)} verdicts for {len(records)} records: one verdict per run")
        # Map everything before touching the database, so a bad record fails before any write.
        result_rows = [result_columns(r, v) for r, v in zip(records, verdicts)]
        scaling_rows = [scaling_columns(s) for s in scaling]
        regression_rows = [regression_columns(r) for r in regressions]
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
                        self._keep_dag_identity(run_row, run)
                        self._delete_children(session, run_row.id)
                    run_row.dag_id = run.dag_id
                    run_row.logical_date = run.logical_date
                    run_row.trigger = run.trigger
                    run_row.status = run.status
                    run_row.started_at = run.started_at
                    run_row.finished_at = run.finished_at
                    run_row.run_at = run_time(run, result_rows)
                    run_row.params = params
                    run_row.mlperf_compliant = run.compliance == COMPLIANT
                    run_row.compliance = run.compliance
                    run_row.verdict = run.verdict
                    run_row.state = run.state
                    run_row.tone = run.tone
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
    def _keep_dag_identity(existing: BenchmarkRun, run: RunMeta) -> None:
        """A run the DAG recorded keeps its identity: only the DAG (a retry, a re-run) may record it again."""
        if existing.trigger in DAG_TRIGGERS and run.trigger not in DAG_TRIGGERS:
            raise RunIdentityConflict(
                f"run id {run.run_id!r} was recorded by the DAG ({existing.dag_id}, {existing.trigger}, logical date "
                f"{existing.logical_date:%Y-%m-%d %H:%M} UTC); a {run.trigger} record does not replace it: record "
                f"under another run id (--run-id)")

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
            key = (columns["branch"], columns["node"], columns["scenario"], mode_of_metric(columns["metric"]))
            session.add(RegressionRecord(run_pk=run_pk, result_pk=result_ids.get(key), **columns))

    # -- read side -----------------------------------------------------------------------------------------------

    @staticmethod
    def _run_query(run_pks: Any):
        """Runs with their headline counts, counted only for the runs `run_pks` (ids or a select of ids): a page of
        runs costs the same on a history of 50 runs and of 50,000 results."""
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
            ).where(BenchmarkResult.run_pk.in_(run_pks)).group_by(BenchmarkResult.run_pk).subquery()
        )
        regression_counts = (
            select(RegressionRecord.run_pk.label("run_pk"), func.count(RegressionRecord.id).label("total"))
            .where(RegressionRecord.run_pk.in_(run_pks)).group_by(RegressionRecord.run_pk).subquery()
        )
        return (
            select(BenchmarkRun, result_counts.c.total, result_counts.c.valid, result_counts.c.invalid,
                   result_counts.c.failed, regression_counts.c.total, result_counts.c.implausible,
                   result_counts.c.not_grade)
            .outerjoin(result_counts, result_counts.c.run_pk == BenchmarkRun.id)
            .outerjoin(regression_counts, regression_counts.c.run_pk == BenchmarkRun.id)
            .where(BenchmarkRun.id.in_(run_pks))
        )

    @staticmethod
    def _run_row(run: BenchmarkRun, total, valid, invalid, failed, regressions, implausible, not_grade) -> RunRow:
        return RunRow(
            run_id=run.run_id, dag_id=run.dag_id, logical_date=run.logical_date, trigger=run.trigger,
            status=run.status, params=run.params or {}, mlperf_compliant=bool(run.mlperf_compliant),
            compliance=run.compliance or "unknown", verdict=run.verdict, state=run.state, tone=run.tone,
            report_path=run.report_path, report_url=run.report_url, started_at=run.started_at,
            finished_at=run.finished_at, created_at=run.created_at, results_total=int(total or 0),
            results_valid=int(valid or 0), results_invalid=int(invalid or 0), results_failed=int(failed or 0),
            regressions_total=int(regressions or 0), results_implausible=int(implausible or 0),
            results_not_submission_grade=int(not_grade or 0), run_at=run.run_at)

    def runs(self, limit: int = 100, offset: int = 0, *, scenario: str | None = None, node: str | None = None,
             branch: str | None = None, since: datetime | None = None, until: datetime | None = None) -> list[RunRow]:
        """Runs newest first by their own time, each with its headline counts; filtered and paged in SQL (a run
        matches a scenario / node / branch when one of its SUT runs does; `since` inclusive, `until` exclusive)."""
        limit, offset = int(limit), int(offset)
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        where = self._run_filters(scenario, node, branch, since, until)
        if where is None:
            return []
        newest_first = (BenchmarkRun.run_at.desc(), BenchmarkRun.id.desc())
        page = select(BenchmarkRun.id).where(*where).order_by(*newest_first).limit(limit).offset(offset)
        with self._guard("list runs"), Session(self.engine) as session:
            ids = list(session.scalars(page))
            if not ids:
                return []
            return [self._run_row(*row) for row in session.execute(self._run_query(ids).order_by(*newest_first))]

    @staticmethod
    def _run_filters(scenario: str | None, node: str | None, branch: str | None, since: datetime | None,
                     until: datetime | None) -> list[Any] | None:
        """WHERE clauses on benchmark_runs; None when a value cannot match anything stored."""
        check_aware("since", since)
        check_aware("until", until)
        places = [(BenchmarkResult.scenario, scenario), (BenchmarkResult.node, node), (BenchmarkResult.branch, branch)]
        if any(unstorable(value) for _, value in places):
            return None
        where: list[Any] = []
        given = [column == str(value) for column, value in places if value is not None]
        if given:
            where.append(exists().where(BenchmarkResult.run_pk == BenchmarkRun.id, *given))
        if since is not None:
            where.append(BenchmarkRun.run_at >= since)
        if until is not None:
            where.append(BenchmarkRun.run_at < until)
        return where

    def run(self, run_id: str) -> RunRow | None:
        if unstorable(run_id):
            return None
        with self._guard("read a run"), Session(self.engine) as session:
            row = session.execute(self._run_query(
                select(BenchmarkRun.id).where(BenchmarkRun.run_id == str(run_id)))).first()
            return self._run_row(*row) if row else None

    @staticmethod
    def _result_query():
        """Results with their run's identity, as plain rows (no ORM objects: a report reads hundreds of them)."""
        return (select(*BenchmarkResult.__table__.columns, BenchmarkRun.run_id.label("run_run_id"),
                       BenchmarkRun.dag_id.label("run_dag_id"), BenchmarkRun.logical_date.label("run_logical_date"),
                       BenchmarkRun.mlperf_compliant.label("run_compliant"), BenchmarkRun.run_at.label("run_run_at"))
                .join(BenchmarkRun, BenchmarkResult.run_pk == BenchmarkRun.id))

    @staticmethod
    def _result_rows(result: Any) -> list[ResultRow]:
        """Plain dicts per row (RowMapping.get() and Row._asdict() cost microseconds a call: thousands of rows)."""
        keys = list(result.keys())
        return [HistoryStore._result_row(dict(zip(keys, row))) for row in result]

    @staticmethod
    def _result_row(m: dict[str, Any]) -> ResultRow:
        values = {name: m.get(name) for name in _RESULT_FIELDS}
        values["invalid_reasons"] = list(values["invalid_reasons"] or [])
        values["versions"] = dict(values["versions"] or {})
        return ResultRow(id=m["id"], run_id=m["run_run_id"], dag_id=m["run_dag_id"],
                         logical_date=m["run_logical_date"], mlperf_compliant=bool(m["run_compliant"]),
                         at=m["start_utc"] or m["run_run_at"], **values)

    def results(self, scenario: str | None = None, node: str | None = None, branch: str | None = None,
                mode: str | None = None, since: datetime | None = None, until: datetime | None = None,
                run_id: str | None = None, run_ids: Sequence[str] | None = None,
                key_hashes: Sequence[str] | None = None, latest: int | None = None) -> list[ResultRow]:
        """SUT runs matching every given filter, oldest first by their run's own time; `since` inclusive, `until`
        exclusive (the run's own time); `latest`: only the newest N."""
        where = self._result_filters(scenario, node, branch, mode, run_id, since, until)
        if where is None:
            return []
        query = self._result_query().where(*where)
        if run_ids is not None:
            query = query.where(BenchmarkRun.run_id.in_([str(r) for r in run_ids if not unstorable(r)]))
        if key_hashes is not None:
            query = query.where(BenchmarkResult.comparability_hash.in_([str(k) for k in key_hashes
                                                                        if not unstorable(k)]))
        order = _RESULT_ORDER
        if latest is not None:          # the newest `latest`, still returned oldest first
            query = query.order_by(*(column.desc() for column in order)).limit(int(latest))
        else:
            query = query.order_by(*order)
        with self._guard("read results"), Session(self.engine) as session:
            rows = self._result_rows(session.execute(query))
        return rows[::-1] if latest is not None else rows

    @staticmethod
    def _result_filters(scenario: str | None, node: str | None, branch: str | None, mode: str | None,
                        run_id: str | None, since: datetime | None, until: datetime | None) -> list[Any] | None:
        """WHERE clauses on results joined to their runs; None when a value cannot match anything stored."""
        check_aware("since", since)
        check_aware("until", until)
        filters = ((BenchmarkResult.scenario, scenario), (BenchmarkResult.node, node),
                   (BenchmarkResult.branch, branch), (BenchmarkResult.mode, mode), (BenchmarkRun.run_id, run_id))
        if any(unstorable(value) for _, value in filters):
            return None
        where = [column == str(value) for column, value in filters if value is not None]
        if since is not None:
            where.append(BenchmarkRun.run_at >= since)
        if until is not None:
            where.append(BenchmarkRun.run_at < until)
        return where

    def trend_rows(self, scenario: str | None = None, node: str | None = None, branch: str | None = None,
                   since: datetime | None = None, until: datetime | None = None) -> list[TrendRow]:
        """The SUT runs of a window as the trend charts draw them (TrendRow's columns only), oldest first by their
        run's own time, filtered as `results`. Each comparability key is read once, on its first row in the window
        (a window function), so one query serves the charts and their series' settings."""
        where = self._result_filters(scenario, node, branch, None, None, since, until)
        if where is None:
            return []
        first_of_key = and_(BenchmarkResult.comparability_hash.is_not(None), BenchmarkResult.id == func.min(
            BenchmarkResult.id).over(partition_by=BenchmarkResult.comparability_hash))
        computed = {
            "run_id": BenchmarkRun.run_id, "logical_date": BenchmarkRun.logical_date,
            "at": type_coerce(func.coalesce(BenchmarkResult.start_utc, BenchmarkRun.run_at), UTCDateTime()),
            "comparability": type_coerce(case((first_of_key, BenchmarkResult.comparability)),
                                         BenchmarkResult.comparability.type),
        }
        columns = [computed[name] if name in computed else getattr(BenchmarkResult, name) for name in TrendRow._fields]
        query = (select(*columns).join(BenchmarkRun, BenchmarkResult.run_pk == BenchmarkRun.id).where(*where)
                 .order_by(*_RESULT_ORDER))
        with self._guard("read trend rows"), Session(self.engine) as session:
            return [TrendRow._make(row) for row in session.execute(query)]

    def headline_figures(self, run_ids: Sequence[str]) -> list[Any]:
        """The few columns of each SUT run of these runs that a run table's headline needs (read-only rows with
        attribute access: run_id, place, mode, status, validity, plausibility, throughput, p99s, ROUGE-L; no JSON
        column, so a page of 25 runs decodes none)."""
        ids = [str(r) for r in run_ids if not unstorable(r)]
        if not ids:
            return []
        columns = [getattr(BenchmarkResult, name) for name in (
            "branch", "node", "scenario", "mode", "status", "valid", "plausibility", "tokens_per_second",
            "ttft_p99_ns", "tpot_p99_ns", "rougeL", "accuracy_passed")]
        query = (select(BenchmarkRun.run_id, *columns).join(BenchmarkRun, BenchmarkResult.run_pk == BenchmarkRun.id)
                 .where(BenchmarkRun.run_id.in_(ids)))
        with self._guard("read headline figures"), Session(self.engine) as session:
            return list(session.execute(query).all())

    def comparable_history(self, key_hash: str | None, mode: str, before: datetime, limit: int = 20,
                           exclude_run_id: str | None = None) -> list[ResultRow]:
        """The latest `limit` earlier SUT runs of the same comparability key usable as a baseline, oldest first.

        Same key: the same settings, hardware, place and scenario (include/analysis/verdict.py). Usable: completed and
        LoadGen VALID (accuracy mode: completed; LoadGen judges no validity there). Earlier: the run's own time
        before `before`. A result without a key (recorded before verdicts existed) has no comparable history.
        """
        check_aware("before", before)
        if not key_hash or unstorable(key_hash) or unstorable(exclude_run_id):
            return []
        query = (
            self._result_query()
            .where(BenchmarkResult.comparability_hash == key_hash, BenchmarkResult.mode == mode,
                   BenchmarkResult.status == "completed",
                   BenchmarkResult.plausibility.is_distinct_from("implausible"),
                   or_(BenchmarkResult.valid.is_(True),
                       and_(BenchmarkResult.mode == "accuracy", BenchmarkResult.valid.is_(None))),
                   BenchmarkRun.run_at < before)
            .order_by(BenchmarkRun.run_at.desc(), BenchmarkRun.id.desc())
            .limit(int(limit))
        )
        if exclude_run_id is not None:
            query = query.where(BenchmarkRun.run_id != exclude_run_id)
        with self._guard("read comparable history"), Session(self.engine) as session:
            rows = self._result_rows(session.execute(query))
        rows.reverse()
        return rows

    def regressions(self, run_id: str | None = None, *, scenario: str | None = None, node: str | None = None,
                    branch: str | None = None, since: datetime | None = None, until: datetime | None = None,
                    latest: int | None = None) -> list[RegressionRow]:
        """Recorded regressions matching every given filter (in SQL), oldest first; `latest`: only the newest N."""
        check_aware("since", since)
        check_aware("until", until)
        query = select(RegressionRecord, BenchmarkRun).join(BenchmarkRun, RegressionRecord.run_pk == BenchmarkRun.id)
        filters = ((BenchmarkRun.run_id, run_id), (RegressionRecord.scenario, scenario),
                   (RegressionRecord.node, node), (RegressionRecord.branch, branch))
        if any(unstorable(value) for _, value in filters):
            return []
        for column, value in filters:
            if value is not None:
                query = query.where(column == str(value))
        if since is not None:
            query = query.where(BenchmarkRun.run_at >= since)
        if until is not None:
            query = query.where(BenchmarkRun.run_at < until)
        query = query.order_by(BenchmarkRun.run_at.desc(), BenchmarkRun.id.desc(), RegressionRecord.id.desc())
        if latest is not None:
            query = query.limit(int(latest))
        with self._guard("read regressions"), Session(self.engine) as session:
            return [RegressionRow(
                id=r.id, run_id=run.run_id, logical_date=run.logical_date, result_id=r.result_pk, metric=r.metric,
                node=r.node, scenario=r.scenario, branch=r.branch, current=r.current, baseline=r.baseline,
                change_pct=r.change_pct, threshold_pct=r.threshold_pct, p_value=r.p_value,
                baseline_runs=list(r.baseline_runs or []), explanation=r.explanation, run_at=run.run_at,
            ) for r, run in reversed(session.execute(query).all())]

    def scaling(self, run_id: str | None = None) -> list[ScalingRow]:
        query = select(ScalingResultRow, BenchmarkRun).join(BenchmarkRun, ScalingResultRow.run_pk == BenchmarkRun.id)
        if unstorable(run_id):
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
        """Distinct values the UI offers as filters, and the range of the runs' own times (None when empty)."""
        with self._guard("read filter options"), Session(self.engine) as session:
            def distinct(column) -> list[str]:
                return sorted(session.scalars(_skip_scan(column)))

            first, last = session.execute(
                select(func.min(BenchmarkRun.run_at), func.max(BenchmarkRun.run_at))).one()
            # min()/max() bypass the column type on some backends: normalise to aware UTC here.
            first, last = (parse_utc(v) for v in (first, last))
            return {
                "scenarios": distinct(BenchmarkResult.scenario),
                "nodes": distinct(BenchmarkResult.node),
                "branches": distinct(BenchmarkResult.branch),
                "modes": distinct(BenchmarkResult.mode),
                "accelerators": distinct(BenchmarkResult.accelerator),
                "date_range": (first, last) if first is not None else None,
            }

    # -- published MLPerf results ----------------------------------------------------------------------------------

    def replace_published(self, entries: Iterable[Any]) -> int:
        """Store the published results (include/analysis/published.py's PublishedResult), replacing those stored before,
        in one transaction; returns how many."""
        self._writable()
        rows = [{name: getattr(entry, name) for name in _PUBLISHED_FIELDS} for entry in entries]
        with self._guard("record published results"), Session(self.engine) as session, session.begin():
            session.execute(delete(PublishedResultRow))
            session.add_all(PublishedResultRow(**row) for row in rows)
        return len(rows)

    def published(self, accelerator: str | None = None, scenario: str | None = None) -> list[PublishedRow]:
        """Published results, best per-accelerator throughput first."""
        query = select(PublishedResultRow)
        if unstorable(accelerator) or unstorable(scenario):
            return []
        if accelerator is not None:
            query = query.where(PublishedResultRow.accelerator == str(accelerator))
        if scenario is not None:
            query = query.where(PublishedResultRow.scenario == str(scenario))
        query = query.order_by(PublishedResultRow.tokens_per_s_per_accelerator.desc(), PublishedResultRow.id)
        with self._guard("read published results"), Session(self.engine) as session:
            return [PublishedRow(**{name: getattr(p, name) for name in _PUBLISHED_FIELDS})
                    for p in session.scalars(query)]


def run_time(run: RunMeta, result_rows: list[dict[str, Any]]) -> datetime:
    """The run's own time: its earliest SUT start (result.json), else when it started, else its logical date."""
    starts = [r["start_utc"] for r in result_rows if r.get("start_utc") is not None]
    return min(starts) if starts else (run.started_at or run.logical_date)
