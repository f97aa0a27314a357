"""What each view asks of the history store, and only that: filtered and paged in SQL, then shaped for the page.

The overview reads the results of a window of time (the filter's dates, else the TREND_WINDOW_DAYS up to the
latest run), one page of runs, the latest regressions and the published references; never the whole history.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from include.history import HistoryStore

from . import trends, views
from .filters import Filters

RUNS_PER_PAGE = 25
REGRESSIONS_SHOWN = 20
TREND_WINDOW_DAYS = 14


def trend_window(store: HistoryStore, filters: Filters, options: dict[str, Any]) -> dict[str, Any]:
    """The store filters of the trend charts: the user's dates, else the last TREND_WINDOW_DAYS of the history."""
    kwargs = filters.store_kwargs()
    if kwargs["since"] is None and options.get("date_range"):
        last = kwargs["until"] or options["date_range"][1]
        kwargs["since"] = last - timedelta(days=TREND_WINDOW_DAYS)
    return kwargs


def overview(store: HistoryStore, filters: Filters, page: int) -> dict[str, Any]:
    options = store.filter_options()
    if options.get("date_range") is None:
        return {"empty": True, "options": options}
    window = trend_window(store, filters, options)
    results = store.trend_rows(**window)
    chart_regressions = store.regressions(**window)
    groups = trends.build_groups(results, chart_regressions, store.published())

    run_rows = store.runs(limit=RUNS_PER_PAGE + 1, offset=(page - 1) * RUNS_PER_PAGE, **filters.store_kwargs())
    has_more = len(run_rows) > RUNS_PER_PAGE
    run_rows = run_rows[:RUNS_PER_PAGE]
    by_run: dict[str, list] = {}
    for row in store.headline_figures([r.run_id for r in run_rows]):
        by_run.setdefault(row.run_id, []).append(row)
    runs = [{"run": r, "headline": views.run_headline(by_run.get(r.run_id, [])), "has_report": bool(r.report_path)}
            for r in run_rows]
    latest = next(iter(store.runs(limit=1)), None)
    return {
        "empty": False, "options": options, "groups": groups, "runs": runs, "page": page, "has_more": has_more,
        "window_since": window["since"], "window_defaulted": filters.since is None,
        "regressions": list(reversed(store.regressions(latest=REGRESSIONS_SHOWN, **filters.store_kwargs()))),
        "kpis": {
            "runs": len({r.run_id for r in results}), "results": len(results),
            "invalid": sum(1 for r in results if r.valid is False),
            "failed": sum(1 for r in results if r.status != "completed"),
            "implausible": sum(1 for r in results if r.plausibility == "implausible"),
            "regressions": len(chart_regressions), "latest": latest,
        },
    }


def figures(store: HistoryStore, filters: Filters) -> list[dict[str, Any]]:
    """The trend groups as JSON: each group's title, series (settings in words, what changed) and figures."""
    window = trend_window(store, filters, store.filter_options())
    groups = trends.build_groups(store.trend_rows(**window), store.regressions(**window), store.published())
    return [{"scenario": g.scenario, "accelerator": g.accelerator, "figures": g.figures, "references": g.references,
             "series": [{"name": s.name, "node": s.node, "branch": s.branch, "mode": s.mode, "settings": s.settings,
                         "changed": s.changed, "comparability_hash": s.key_hash, "points": len(s.rows)}
                        for s in g.series]} for g in groups]


def comparison(store: HistoryStore, a: str, b: str) -> dict[str, Any] | None:
    run_a, run_b = store.run(a), store.run(b)
    if run_a is None or run_b is None:
        return None
    groups = views.compare_runs(store.results(run_id=a), store.results(run_id=b), store.published())
    return {"run_a": run_a, "run_b": run_b, "groups": groups}
