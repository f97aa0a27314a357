"""The history store on SQLite and on a real PostgreSQL: migrations, idempotent writes, reads, failures."""
from __future__ import annotations

import dataclasses
import json
import socket
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from include.history import (
    HistoryStore,
    HistoryUnavailable,
    ResultRow,
    RunMeta,
    RunRow,
    default_url,
    result_columns,
)
from include.analysis.regressions import assess
from include.analysis.verdict import judge
from include.history import store as store_module
from include.history.migrations import alembic_config
from include.history.models import Base
from tests.history.factory import CONFIG_B, T0, meta, record, regression, scaling, verdict

TABLES = {"benchmark_runs", "benchmark_results", "scaling_results", "regressions", "alembic_version"}
INJECTIONS = [
    "x' OR '1'='1",
    "'; DROP TABLE benchmark_runs; --",
    "\" OR 1=1 --",
    "Offline') UNION SELECT * FROM benchmark_runs --",
    "%",
    "_",
    "run\\'id",
    "nul\x00byte",
]


def _head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _count(url: str, table: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------------------------
# migrations


def test_upgrade_from_empty_creates_the_schema_at_head(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # no alembic.ini anywhere near: the migrations are found from the package
    history = HistoryStore(db_url)
    assert history.current_revision() is None
    history.upgrade()
    assert history.current_revision() == _head()
    engine = create_engine(db_url)
    try:
        inspector = inspect(engine)
        assert TABLES <= set(inspector.get_table_names())
        indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes("benchmark_results")}
        for columns in [("scenario",), ("node",), ("branch",), ("config_hash",)]:
            assert columns in indexed
        assert ("logical_date",) in {tuple(ix["column_names"]) for ix in inspector.get_indexes("benchmark_runs")}
    finally:
        engine.dispose()
    history.upgrade()   # a second upgrade is a no-op
    assert history.current_revision() == _head()
    history.dispose()


def test_migrations_match_the_models(store, db_url):
    """The hand-written migration and the Mapped[] models describe the same schema (autogenerate finds nothing)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_up_again(store, db_url):
    from alembic import command

    with store.engine.begin() as connection:
        command.downgrade(alembic_config(db_url, connection=connection), "base")
    assert store.current_revision() is None
    store.upgrade()
    store.record(meta("r1"), [record()])
    assert len(store.results()) == 1


def test_a_database_of_the_first_schema_is_upgraded_and_keeps_its_runs(store, db_url):
    """A history recorded before verdicts existed: upgraded in place, nothing lost, its verdict 'unknown'."""
    from alembic import command

    with store.engine.begin() as connection:
        command.downgrade(alembic_config(db_url, connection=connection), "0001_initial")
        connection.execute(text(
            "INSERT INTO benchmark_runs (run_id, dag_id, logical_date, trigger, status, params, mlperf_compliant,"
            " created_at) VALUES ('old', 'mlperf_llama31_8b', :t, 'scheduled', 'success', '{}', :c, :t)"),
            {"t": T0.replace(tzinfo=None), "c": True})
        connection.execute(text(
            "INSERT INTO benchmark_results (run_pk, branch, node, scenario, mode, status, valid, invalid_reasons,"
            " versions, tokens_per_second, start_utc) SELECT id, 'single', 'n0', 'Offline', 'performance',"
            " 'completed', :v, '[]', '{}', 5000.0, :s FROM benchmark_runs WHERE run_id = 'old'"),
            {"v": True, "s": (T0 + timedelta(minutes=7)).replace(tzinfo=None)})
    store.upgrade()
    assert store.current_revision() == _head()
    old = store.run("old")
    assert old.compliance == "unknown" and old.verdict is None
    assert (old.state, old.tone) == ("unknown", "unknown")       # 0005: never VALID for a verdict nobody computed
    assert old.run_at == T0 + timedelta(minutes=7)          # 0003 dates it by its own SUT start
    [row] = store.results(run_id="old")
    assert (row.tokens_per_second, row.state, row.comparability_hash) == (5000.0, None, None)


def test_upgrading_to_stored_run_verdicts_keeps_each_runs_state_and_tone(store, db_url):
    """0005 gives each run recorded with its verdict the state and tone the pipeline computed for it; a run whose
    results' verdicts were never stored is 'unknown', never VALID."""
    from alembic import command

    runs = {
        "valid": [record(node="n0"), record(node="n0", mode="accuracy", rougeL=24.6)],
        "invalid": [record(node="n0"), record(node="n1", valid=False)],
        "failed": [record(node="n0"), record(node="n1", status="missing")],
        "accuracy only": [record(node="n0", mode="accuracy", rougeL=24.6)],
        "regressed": [record(node="n0")],
        "nothing readable": [],
    }
    expected = {}
    for day, (run_id, records) in enumerate(runs.items()):
        regressions = [regression(node="n0")] if run_id == "regressed" else []
        run_meta, judged = judged_meta(run_id, records, regressions, day=day)
        store.record(run_meta, records, [], regressions, judged)
        expected[run_id] = (judged.state, judged.tone)
    # recorded with a headline, but without its results' verdicts (as before 0002's columns were written)
    store.record(meta("unjudged", day=9), [record(node="n0")])
    expected["unjudged"] = ("unknown", "unknown")
    assert {run_id: (store.run(run_id).state, store.run(run_id).tone) for run_id in runs} == {
        run_id: expected[run_id] for run_id in runs}
    assert {state for state, _ in expected.values()} == {"VALID", "INVALID", "FAILED", "COMPLETED", "unknown"}
    assert {tone for _, tone in expected.values()} == {"good", "warn", "bad", "unknown"}

    with store.engine.begin() as connection:
        command.downgrade(alembic_config(db_url, connection=connection), "0004_page_scale")
    store.upgrade()
    assert {run_id: (store.run(run_id).state, store.run(run_id).tone) for run_id in expected} == expected


# ---------------------------------------------------------------------------------------------------------------
# writing


def test_record_maps_every_figure_from_the_run_record(store):
    perf = record(tokens_per_second=5123.5, ttft_p99_ns=1.8e9,
                  start_utc=datetime(2026, 11, 1, 2, 5, tzinfo=timezone.utc))
    acc = record(mode="accuracy", rougeL=24.61)
    store.record(meta("r1"), [perf, acc])
    rows = {r.mode: r for r in store.results(run_id="r1")}
    p = rows["performance"]
    assert isinstance(p, ResultRow)
    assert p.tokens_per_second == 5123.5
    assert p.samples_per_second == pytest.approx(5123.5 / 128)
    assert p.ttft_p99_ns == 1.8e9 and p.ttft_p50_ns == pytest.approx(0.6e9)
    assert (p.tpot_p50_ns, p.tpot_p99_ns, p.latency_p50_ns, p.latency_p99_ns) == (2.0e7, 4.5e7, 3.0e9, 9.0e9)
    assert p.valid is True and p.invalid_reasons == []
    assert p.accelerator == "NVIDIA H200" and p.config_hash == "a" * 64
    assert p.versions["vllm"] == "0.26.0" and p.versions["loadgen"] == "6.0.17"
    assert p.output_tokens == 1_711_104 and p.samples_completed == 13_368 and p.duration_s == 641.5
    assert p.start_utc == datetime(2026, 11, 1, 2, 5, tzinfo=timezone.utc)
    assert p.end_utc == datetime(2026, 11, 1, 2, 15, 41, 500000, tzinfo=timezone.utc)
    assert p.logical_date == T0 and p.logical_date.tzinfo is not None
    assert p.at == p.start_utc and rows["accuracy"].at == store.run("r1").run_at == p.start_utc   # its own time
    assert p.rougeL is None and p.run_dir == "/artifacts/run/single/gpu-node-0/Offline/performance"
    a = rows["accuracy"]
    assert a.valid is None and a.rougeL == 24.61 and a.rouge1 == 38.9 and a.gen_num == 13368
    assert a.accuracy_passed is True and a.accuracy_meaningful is True
    assert result_columns(perf)["ttft_p99_ns"] == 1.8e9


def test_failed_and_missing_runs_are_recorded_not_dropped(store):
    store.record(meta("r1", status="partial"), [
        record(node="n0"), record(node="n1", valid=False), record(node="n2", status="failed"),
        record(node="n3", status="missing")])
    run = store.run("r1")
    assert isinstance(run, RunRow)
    assert (run.results_total, run.results_valid, run.results_invalid, run.results_failed) == (4, 1, 1, 2)
    missing = store.results(node="n3")[0]
    assert missing.status == "missing" and missing.tokens_per_second is None and missing.config_hash is None
    invalid = store.results(node="n1")[0]
    assert invalid.valid is False and invalid.invalid_reasons == ["min duration not satisfied"]


def test_storing_the_same_run_twice_keeps_one_copy(store, db_url):
    args = (meta("r1"), [record(node="n0"), record(node="n1")], [scaling()], [regression()])
    store.record(*args)
    store.record(*args)
    assert len(store.runs()) == 1
    assert len(store.results()) == 2
    assert len(store.scaling()) == 1 and len(store.regressions()) == 1
    assert _count(db_url, "benchmark_results") == 2


def test_re_record_replaces_the_results_of_that_run_only(store):
    store.record(meta("other", day=-1), [record(node="n0")])
    store.record(meta("r1", status="failed"), [record(node="n0", status="failed"), record(node="n1")],
                 [scaling(0.5)], [regression()])
    created = store.run("r1").created_at
    store.record(meta("r1", status="success", report_url="http://ui/r1"), [record(node="n0", tokens_per_second=6000)],
                 [scaling(0.98)])
    run = store.run("r1")
    assert run.status == "success" and run.report_url == "http://ui/r1" and run.created_at == created
    results = store.results(run_id="r1")
    assert [(r.node, r.status, r.tokens_per_second) for r in results] == [("n0", "completed", 6000.0)]
    assert [s.efficiency for s in store.scaling("r1")] == [0.98]
    assert store.regressions("r1") == []
    assert len(store.results(run_id="other")) == 1


def test_a_failed_write_loses_nothing_already_recorded(store, monkeypatch):
    store.record(meta("r1"), [record(node="n0"), record(node="n1")], [scaling()], [regression()])
    before = (store.run("r1"), store.results(), store.scaling(), store.regressions())

    def explode(*_args, **_kwargs):
        raise RuntimeError("disk full")

    # fails after the old rows were deleted and the new results inserted, inside the same transaction
    monkeypatch.setattr(store_module.HistoryStore, "_insert_regressions", staticmethod(explode))
    with pytest.raises(RuntimeError, match="disk full"):
        store.record(meta("r1", status="failed"), [record(node="n9")], [scaling(0.1)], [regression()])
    assert (store.run("r1"), store.results(), store.scaling(), store.regressions()) == before


def test_invalid_input_is_refused_before_any_write(store):
    store.record(meta("r1"), [record(node="n0")])
    with pytest.raises(ValueError, match="two records"):
        store.record(meta("r1"), [record(node="n5"), record(node="n5")])
    with pytest.raises(ValueError, match="timezone-aware"):
        store.record(meta("r2", logical_date=datetime(2026, 1, 1)), [])
    with pytest.raises(ValueError, match="trigger"):
        store.record(meta("r3", trigger="cron"), [])
    assert [r.node for r in store.results()] == ["n0"]


def test_xcom_dicts_are_accepted_and_rows_serialise(store):
    run = meta("r1")
    assert RunMeta.from_dict(json.loads(json.dumps(run.to_dict()))) == run
    store.record(run.to_dict(), [record().to_dict()], [scaling()], [regression()])
    for row in (store.run("r1"), store.results()[0], store.scaling()[0], store.regressions()[0]):
        data = json.loads(json.dumps(row.to_dict()))
        assert data["run_id"] == "r1"
    assert store.results()[0].to_dict()["logical_date"] == "2026-11-01T02:00:00+00:00"


def test_params_keep_no_secrets(store):
    store.record(meta("r1", params={"max_tokens": 128, "hf_token": "hf_abc", "db": {"password": "pw"},
                                    "api_key": "k", "when": T0}), [])
    params = store.run("r1").params
    assert params["max_tokens"] == 128 and params["when"] == str(T0)
    assert params["hf_token"] == "***" and params["db"]["password"] == "***" and params["api_key"] == "***"


def test_regressions_are_stored_with_the_run_and_linked_to_their_results(store):
    records = [record(node="n0"), record(node="n0", mode="accuracy", rougeL=24.0)]
    regressions = [regression(node="n0"), regression(node="n0", metric="rougeL"), regression(node="elsewhere")]
    store.record(meta("r1"), records, [], regressions, verdict(records))
    rows = store.regressions("r1")
    assert len(rows) == 3 and store.run("r1").regressions_total == 3
    results = {r.mode: r.id for r in store.results(run_id="r1")}
    linked = {(r.node, r.metric): r.result_id for r in rows}
    assert linked[("n0", "tokens_per_second")] == results["performance"]
    assert linked[("n0", "rougeL")] == results["accuracy"]
    assert linked[("elsewhere", "tokens_per_second")] is None
    assert rows[0].baseline_runs == ["r1", "r2", "r3"] and rows[0].p_value == 0.001


def judged_meta(run_id: str, records, regressions=(), **overrides):
    """The run's meta and verdict as the pipeline makes them (pipeline.run_meta: every run-level part of the verdict)."""
    judged = judge(run_id, records, {}, list(regressions))
    return meta(run_id, status=judged.status, verdict=judged.headline, compliance=judged.compliance,
                state=judged.state, tone=judged.tone, **overrides), judged


def test_the_verdict_is_stored_as_the_pipeline_computed_it(store):
    records = [record(node="n0"), record(node="n1", valid=False), record(node="n2", status="failed")]
    run_meta, judged = judged_meta("r1", records)
    store.record(run_meta, records, [], [], judged)
    run = store.run("r1")
    assert (run.verdict, run.compliance, run.state, run.tone) == (
        judged.headline, judged.compliance, "FAILED", "bad")
    by_node = {r.node: r for r in store.results(run_id="r1")}
    for expected in judged.runs:
        row = by_node[expected.node]
        assert (row.state, row.verdict, row.compliance, row.comparability_hash) == (
            expected.state, expected.headline, expected.compliance, expected.comparability_hash)
    assert by_node["n1"].state == "INVALID" and by_node["n2"].state == "FAILED"
    with pytest.raises(ValueError, match="one verdict per run"):
        store.record(meta("r2"), records, [], [], verdict(records[:1]))


# ---------------------------------------------------------------------------------------------------------------
# reading


def test_runs_newest_first_with_paging(store):
    for day in range(5):
        store.record(meta(f"r{day}", day=day), [record()])
    assert [r.run_id for r in store.runs()] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r.run_id for r in store.runs(limit=2, offset=1)] == ["r3", "r2"]
    assert store.run("missing") is None
    with pytest.raises(ValueError):
        store.runs(limit=-1)


def test_results_filters_and_dates(store):
    berlin = timezone(timedelta(hours=1))
    store.record(meta("r0", logical_date=datetime(2026, 11, 1, 3, 0, tzinfo=berlin)),   # 02:00 UTC
                 [record(node="n0"), record(node="n1", scenario="Server")])
    store.record(meta("r1", day=1), [record(node="n0", branch="distributed"),
                                     record(node="n0", mode="accuracy", rougeL=24.5)])
    assert store.run("r0").logical_date == T0 and store.run("r0").logical_date.utcoffset() == timedelta(0)
    assert [r.run_id for r in store.results()] == ["r0", "r0", "r1", "r1"]
    assert [r.node for r in store.results(scenario="Server")] == ["n1"]
    assert [r.run_id for r in store.results(branch="distributed")] == ["r1"]
    assert [r.mode for r in store.results(mode="accuracy")] == ["accuracy"]
    assert [r.run_id for r in store.results(node="n0", since=T0 + timedelta(hours=1))] == ["r1", "r1"]
    assert [r.run_id for r in store.results(until=T0 + timedelta(days=1))] == ["r0", "r0"]
    assert {r.run_id for r in store.results(since=T0, until=T0 + timedelta(days=2))} == {"r0", "r1"}
    with pytest.raises(ValueError):
        store.results(since=datetime(2026, 1, 1))


def test_read_rows_are_frozen(store):
    store.record(meta("r1"), [record()], [scaling()], [regression()])
    for row in (store.run("r1"), store.results()[0], store.scaling()[0], store.regressions()[0]):
        with pytest.raises(dataclasses.FrozenInstanceError):
            row.node = "changed"  # type: ignore[misc]


def _record_judged(store, run_id: str, day: int, *records):
    store.record(meta(run_id, day=day), list(records), [], [], verdict(list(records), run_id))


def test_comparable_history_only_same_settings_valid_and_earlier(store):
    for day in range(6):
        _record_judged(store, f"ok{day}", day, record(tokens_per_second=5000 + day))
    _record_judged(store, "invalid", 6, record(valid=False))
    _record_judged(store, "failed", 7, record(status="failed"))
    _record_judged(store, "other-settings", 8, record(config_hash=CONFIG_B))
    _record_judged(store, "other-gpu", 9, record(accelerator="NVIDIA A30"))
    _record_judged(store, "other-node", 10, record(node="gpu-node-1"))
    _record_judged(store, "distributed", 11, record(branch="distributed"))
    _record_judged(store, "server", 12, record(scenario="Server"))
    _record_judged(store, "current", 20, record(tokens_per_second=4000))
    _record_judged(store, "later", 30, record())
    current = store.results(run_id="current")[0]
    history = store.comparable_history(current.comparability_hash, "performance", before=current.logical_date)
    assert [r.run_id for r in history] == [f"ok{d}" for d in range(6)]
    assert [r.run_id for r in store.comparable_history(current.comparability_hash, "performance",
                                                       current.logical_date, limit=2)] == ["ok4", "ok5"]
    assert store.comparable_history(None, "performance", before=T0 + timedelta(days=40)) == []
    # regressions end to end: history from the store, judged against the current run's stored columns
    found = assess(current, history).regressions
    assert [r.metric for r in found] == ["tokens_per_second", "samples_per_second"]


def test_accuracy_history_uses_completed_accuracy_runs(store):
    for day in range(3):
        _record_judged(store, f"a{day}", day, record(mode="accuracy", rougeL=24.6))
    key = verdict([record(mode="accuracy", rougeL=20.0)]).runs[0].comparability_hash
    assert len(store.comparable_history(key, "accuracy", before=T0 + timedelta(days=5))) == 3


def test_trend_rows_are_the_results_as_charted_with_each_key_once(store):
    for day in range(3):
        _record_judged(store, f"r{day}", day, record(node="n0", tokens_per_second=5000 + day),
                       record(node="n1", scenario="Server"))
    _record_judged(store, "fp8", 3, record(node="n0", config_hash=CONFIG_B))
    full = store.results(since=T0 + timedelta(days=1))
    rows = store.trend_rows(since=T0 + timedelta(days=1))
    assert [(r.run_id, r.node, r.at, r.tokens_per_second, r.verdict, r.comparability_hash) for r in rows] == [
        (r.run_id, r.node, r.at, r.tokens_per_second, r.verdict, r.comparability_hash) for r in full]
    keyed = [r for r in rows if r.comparability is not None]     # the first row of each key in the window
    assert [(r.run_id, r.node) for r in keyed] == [("r1", "n0"), ("r1", "n1"), ("fp8", "n0")]
    assert all(r.comparability == next(f.comparability for f in full if f.id == r.id) for r in keyed)
    assert [r.run_id for r in store.trend_rows(scenario="Server", until=T0 + timedelta(days=2))] == ["r0", "r1"]
    assert store.trend_rows(node="n0' OR '1'='1") == []


def test_scaling_and_filter_options(store):
    assert store.filter_options()["date_range"] is None
    store.record(meta("r0"), [record(node="n0"), record(node="n1", scenario="Server")], [scaling(0.97)])
    store.record(meta("r1", day=2), [record(node="n0", branch="distributed")])
    rows = store.scaling()
    assert [(s.run_id, s.efficiency, s.nodes, s.excluded) for s in rows] == [
        ("r0", 0.97, ["gpu-node-0", "gpu-node-1"], {"gpu-node-2": "INVALID"})]
    options = store.filter_options()
    assert options["scenarios"] == ["Offline", "Server"]
    assert options["nodes"] == ["n0", "n1"]
    assert options["branches"] == ["distributed", "single"]
    assert options["modes"] == ["performance"] and options["accelerators"] == ["NVIDIA H200"]
    assert options["date_range"] == (T0 + timedelta(minutes=1), T0 + timedelta(days=2, minutes=1))   # runs started


# ---------------------------------------------------------------------------------------------------------------
# hostile input and unavailable databases


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_strings_match_nothing_and_break_nothing(store, db_url, evil):
    store.record(meta("r1"), [record(node="n0"), record(node="n1", scenario="Server")])
    assert store.results(scenario=evil) == []
    assert store.results(node=evil) == []
    assert store.results(branch=evil, mode=evil) == []
    assert store.results(run_id=evil) == []
    assert store.run(evil) is None
    assert store.regressions(evil) == [] and store.scaling(evil) == []
    assert store.comparable_history(evil, evil, before=T0) == []
    assert len(store.results()) == 2 and _count(db_url, "benchmark_runs") == 1
    # the same strings as stored values come back verbatim (NUL: refused, PostgreSQL cannot store it)
    if "\x00" in evil:
        with pytest.raises(ValueError, match="NUL"):
            store.record(meta(evil, day=1), [record(node=evil)])
        return
    store.record(meta(evil, day=1), [record(node=evil)])
    assert [r.node for r in store.results(run_id=evil)] == [evil]
    assert store.run(evil).run_id == evil
    assert len(store.runs()) == 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]   # released on close: nothing listens there


def test_database_down_raises_history_unavailable_without_password():
    url = f"postgresql+psycopg2://bench:s3cr3t-pw@127.0.0.1:{_closed_port()}/history"
    history = HistoryStore(url)
    for call in (history.runs, history.upgrade, lambda: history.record(meta("r1"), [record()]),
                 lambda: history.results(node="n0"), history.filter_options):
        with pytest.raises(HistoryUnavailable) as caught:
            call()
        message = str(caught.value)
        assert "127.0.0.1" in message and "bench" in message and "s3cr3t-pw" not in message
        assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_corrupt_sqlite_file_is_unavailable_and_a_restored_one_is_read_again(sqlite_url):
    """A real file gone bad: "file is not a database" was a raw DatabaseError (a 500 on the page); a connection
    opened on it, or on the file before a restore by rename, was kept by the pool until the process restarted."""
    import os
    from pathlib import Path

    path = Path(sqlite_url.removeprefix("sqlite:///"))
    writer = HistoryStore(sqlite_url)
    writer.upgrade()
    writer.record(meta("r1"), [record()])
    writer.dispose()
    good = path.read_bytes()
    reader = HistoryStore(sqlite_url, readonly=True)

    def replace(data: bytes) -> None:
        path.with_suffix(".new").write_bytes(data)
        os.replace(path.with_suffix(".new"), path)

    assert [r.run_id for r in reader.runs()] == ["r1"]
    for spoil, restore in ((lambda: path.write_bytes(b"not a database" * 400), lambda: path.write_bytes(good)),
                           (lambda: replace(b"garbage" * 4096), lambda: replace(good)),
                           (lambda: path.write_bytes(good[:len(good) // 3]), lambda: replace(good))):
        spoil()
        for _ in range(2):
            with pytest.raises(HistoryUnavailable, match="unavailable while trying to list runs"):
                reader.runs()
        restore()
        assert [r.run_id for r in reader.runs()] == ["r1"]
    reader.dispose()


def test_store_without_schema_says_to_upgrade(sqlite_url):
    with pytest.raises(HistoryUnavailable, match=r"upgrade\(\)"):
        HistoryStore(sqlite_url).runs()


@pytest.mark.postgres
def test_postgres_without_schema_says_to_upgrade(pg_url):
    with pytest.raises(HistoryUnavailable, match=r"upgrade\(\)"):
        HistoryStore(pg_url).results()


def test_read_only_store_never_writes(store, db_url):
    store.record(meta("r1"), [record()])
    reader = HistoryStore(db_url, readonly=True)
    assert [r.run_id for r in reader.runs()] == ["r1"]
    with pytest.raises(PermissionError):
        reader.record(meta("r2"), [])
    # the database itself refuses writes on the reader's connections
    with reader.engine.connect() as connection, pytest.raises(Exception, match="(?i)read.only|readonly"):
        connection.execute(text("DELETE FROM benchmark_runs"))
    reader.dispose()
    assert _count(db_url, "benchmark_runs") == 1


def test_default_url_is_the_deployments(monkeypatch, tmp_path):
    """One definition (include/deployment.py), whatever MLPERF_ARTIFACTS_DIR and the runner say."""
    from include import deployment

    for name in ("MLPERF_HISTORY_URL", "MLPERF_ARTIFACTS_DIR", "MLPERF_RUNNER"):
        monkeypatch.delenv(name, raising=False)
    assert default_url() == deployment.load().history_url == "sqlite:////artifacts/history.sqlite"
    monkeypatch.setenv("MLPERF_RUNNER", "local")
    assert default_url().endswith("/.artifacts/history.sqlite")
    monkeypatch.setenv("MLPERF_ARTIFACTS_DIR", str(tmp_path))
    assert default_url() == f"sqlite:///{tmp_path / 'history.sqlite'}" == deployment.load().history_url
    monkeypatch.setenv("MLPERF_HISTORY_URL", "postgresql+psycopg2://u@db/history")
    assert default_url() == "postgresql+psycopg2://u@db/history"
    assert HistoryStore().safe_url == "postgresql+psycopg2://u@db/history"


def test_concurrent_records_of_one_new_run_leave_one_copy(store):
    """Two task attempts racing on the same run id: the loser retries and replaces, nothing is duplicated."""
    import threading

    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def write(i: int) -> None:
        try:
            barrier.wait()
            store.record(meta("race", report_url=f"http://ui/{i}"), [record(node="n0"), record(node="n1")])
        except BaseException as exc:   # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.runs()) == 1 and len(store.results()) == 2


# ---------------------------------------------------------------------------------------------------------------
# issue 14: the run's own time, identity of DAG runs, filtering in SQL, published results


def test_an_imported_run_is_dated_by_its_own_start_not_by_the_import(store):
    ran = datetime(2026, 10, 3, 9, 33, tzinfo=timezone.utc)
    store.record(meta("dag", day=40), [record()])
    store.record(meta("imported", day=50, trigger="cli", dag_id="cli", started_at=None),
                 [record(start_utc=ran), record(scenario="Server", start_utc=ran + timedelta(minutes=5))])
    assert store.run("imported").run_at == ran
    assert [r.run_id for r in store.runs()] == ["dag", "imported"]      # the DAG run is the latest run
    assert [r.at for r in store.results(run_id="imported")] == [ran, ran + timedelta(minutes=5)]
    assert [r.run_id for r in store.runs(until=ran + timedelta(days=1))] == ["imported"]


def test_a_cli_record_never_replaces_a_run_the_dag_recorded(store):
    from include.history import RunIdentityConflict

    store.record(meta("nightly"), [record()])
    with pytest.raises(RunIdentityConflict, match="recorded by the DAG.*another run id"):
        store.record(meta("nightly", day=3, trigger="cli", dag_id="cli"), [record(tokens_per_second=1.0)])
    run = store.run("nightly")
    assert (run.trigger, run.dag_id, run.logical_date) == ("scheduled", "mlperf_llama31_8b", T0)
    assert store.results(run_id="nightly")[0].tokens_per_second == 5000.0
    store.record(meta("nightly", status="partial"), [record()])          # the DAG's own retry replaces it
    assert store.run("nightly").status == "partial"


def test_runs_are_filtered_in_sql_before_paging(store):
    for day in range(6):
        store.record(meta(f"r{day}", day=day), [record(node="n0" if day < 2 else "n1")])
    assert [r.run_id for r in store.runs(limit=5, node="n0")] == ["r1", "r0"]
    assert [r.run_id for r in store.runs(limit=1, offset=1, node="n0")] == ["r0"]
    assert store.runs(scenario="Server") == []
    assert [r.run_id for r in store.runs(since=T0 + timedelta(days=4))] == ["r5", "r4"]


def test_regressions_are_filtered_in_sql_and_the_latest_kept(store):
    for day in range(3):
        store.record(meta(f"r{day}", day=day), [record(node="gpu-node-0"), record(node="n9")],
                     regressions=[regression(), regression(node="n9")])
    assert [(r.run_id, r.node) for r in store.regressions(node="n9", latest=2)] == [("r1", "n9"), ("r2", "n9")]
    assert store.regressions(scenario="Server") == []
    assert len(store.regressions(since=T0 + timedelta(days=2))) == 2


def test_published_results_are_replaced_and_read_best_first(store):
    from types import SimpleNamespace

    def published(submitter: str, per_gpu: float, scenario: str = "Offline") -> SimpleNamespace:
        return SimpleNamespace(round="v5.1", division="closed", submitter=submitter, system=f"{submitter} box",
                               accelerator="H200", accelerator_count=8, engine="TensorRT-LLM", scenario=scenario,
                               tokens_per_s=per_gpu * 8, tokens_per_s_per_accelerator=per_gpu,
                               source_url="https://mlcommons.org/benchmarks/inference-datacenter/")

    assert store.replace_published([published("A", 6000.0), published("B", 7288.0),
                                    published("C", 5000.0, "Server")]) == 3
    best = store.published("H200", "Offline")
    assert [p.submitter for p in best] == ["B", "A"]
    assert best[0].label == "MLPerf v5.1, 8x H200 TensorRT-LLM (B): 7,288 tokens/s per GPU"
    store.replace_published([published("D", 1.0)])
    assert [p.submitter for p in store.published()] == ["D"]
