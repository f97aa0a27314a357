"""Benchmark history: SQLAlchemy models, Alembic migrations and the store the DAG writes and the UI reads.

    store = HistoryStore(default_url())          # MLPERF_HISTORY_URL, else .artifacts/history.sqlite
    store.upgrade()                              # Alembic to head; the migrations are found from this package
    store.record(RunMeta(...), run_records, scaling_results, regressions, verdict)   # once per run, idempotent
    store.comparable_history(run_verdict.comparability_hash, "performance", before=...)   # regressions' baseline

    ui = HistoryStore(url, readonly=True)        # the UI: the database refuses writes on its connections
    ui.runs(limit, offset, scenario=..., since=...); ui.run(run_id); ui.results(scenario=..., node=..., since=...)
    ui.trend_rows(scenario=..., since=...)        # the page's charts: TrendRow tuples of the charted columns
    ui.regressions(run_id, scenario=..., latest=20); ui.scaling(run_id); ui.filter_options()
    ui.published(accelerator, scenario)          # MLPerf's published results (store.replace_published writes them)

Dates are each run's own time (`run_at`: its earliest SUT start in result.json), never the time of an import.

Create one store per process and reuse it (it owns a connection pool). Hand-made revisions:
`python -m include.history.migrations revision --autogenerate -m "..."` (review what it writes).
"""
from include.history.store import (
    HistoryStore,
    HistoryUnavailable,
    PublishedRow,
    RegressionRow,
    ResultRow,
    RunIdentityConflict,
    RunMeta,
    RunRow,
    ScalingRow,
    default_url,
    redact_params,
    result_columns,
)

__all__ = [
    "HistoryStore", "HistoryUnavailable", "PublishedRow", "RegressionRow", "ResultRow", "RunIdentityConflict",
    "RunMeta", "RunRow", "ScalingRow", "default_url", "redact_params", "result_columns",
]
