"""The JSON endpoints: the same data as the pages, for scripts."""
from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from . import queries, views
from .filters import MAX_FILTER_LEN, check_offset, parse_filters
from .rendering import as_json, row_dict
from .store_access import get_store

router = APIRouter(prefix="/api")


@router.get("/filters")
def api_filters():
    return as_json(get_store().filter_options())


@router.get("/runs")
def api_runs(limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0), scenario: str | None = None,
             node: str | None = None, branch: str | None = None, since: str | None = None, until: str | None = None):
    filters = parse_filters(scenario, node, branch, since, until)
    offset = check_offset(offset)
    runs = get_store().runs(limit=limit, offset=offset, **filters.store_kwargs())
    return as_json({"runs": [row_dict(r) for r in runs],
                    "limit": limit, "offset": offset, "filters": filters.query()})


@router.get("/runs/{run_id:path}")
def api_run(run_id: str):
    store = get_store()
    run = store.run(run_id)
    if run is None:
        return JSONResponse({"detail": "no such run in the benchmark history"}, status_code=404)
    results = store.results(run_id=run_id)
    return as_json({"run": row_dict(run),
                    "headline": dict(views.run_headline(results), **views.run_versions(results)),
                    "results": [row_dict(r) for r in results],
                    "regressions": [row_dict(r) for r in store.regressions(run_id=run_id)],
                    "scaling": [row_dict(r) for r in store.scaling(run_id=run_id)]})


@router.get("/results")
def api_results(scenario: str | None = None, node: str | None = None, branch: str | None = None,
                since: str | None = None, until: str | None = None,
                mode: str | None = Query(None, max_length=MAX_FILTER_LEN),
                run_id: str | None = Query(None, max_length=MAX_FILTER_LEN)):
    filters = parse_filters(scenario, node, branch, since, until)
    rows = get_store().results(mode=mode or None, run_id=run_id or None, **filters.store_kwargs())
    return as_json({"filters": filters.query(), "results": [row_dict(r) for r in rows]})


@router.get("/regressions")
def api_regressions(run_id: str | None = Query(None, max_length=MAX_FILTER_LEN), scenario: str | None = None,
                    node: str | None = None, branch: str | None = None, since: str | None = None,
                    until: str | None = None):
    filters = parse_filters(scenario, node, branch, since, until)
    rows = get_store().regressions(run_id=run_id or None, **filters.store_kwargs())
    return as_json({"regressions": [row_dict(r) for r in rows]})


@router.get("/figures")
def api_figures(scenario: str | None = None, node: str | None = None, branch: str | None = None,
                since: str | None = None, until: str | None = None):
    filters = parse_filters(scenario, node, branch, since, until)
    return as_json({"filters": filters.query(), "groups": queries.figures(get_store(), filters)})


@router.get("/published")
def api_published(accelerator: str | None = Query(None, max_length=MAX_FILTER_LEN),
                  scenario: str | None = Query(None, max_length=MAX_FILTER_LEN)):
    return as_json({"published": [row_dict(p) for p in get_store().published(accelerator, scenario)]})


@router.get("/compare")
def api_compare(a: str = Query(..., max_length=MAX_FILTER_LEN), b: str = Query(..., max_length=MAX_FILTER_LEN)):
    data = queries.comparison(get_store(), a, b)
    if data is None:
        return JSONResponse({"detail": "one of the runs is not in the benchmark history"}, status_code=404)
    return as_json({"a": row_dict(data["run_a"]), "b": row_dict(data["run_b"]), "groups": data["groups"]})
