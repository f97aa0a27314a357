"""The HTML pages: overview (trends, regressions, runs), comparison, one run, and its report file."""
from __future__ import annotations

import logging
import mimetypes
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from include.history import HistoryUnavailable

from . import queries, reports, views
from .filters import MAX_FILTER_LEN, parse_filters
from .rendering import REPORT_CSP, base_path, error_page, render
from .store_access import get_store, is_missing_schema

log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/", response_class=HTMLResponse, name="index")
def index(request: Request, scenario: str | None = None, node: str | None = None, branch: str | None = None,
          since: str | None = None, until: str | None = None, page: int = Query(1, ge=1, le=10_000)):
    filters = parse_filters(scenario, node, branch, since, until)
    try:
        data = queries.overview(get_store(), filters, page)
    except HistoryUnavailable as exc:
        if not is_missing_schema(exc):
            raise
        return render(request, "index.html", empty=True, schema_missing=str(exc), filters=filters, options={})
    return render(request, "index.html", schema_missing=None, filters=filters, **data)


@router.get("/compare", response_class=HTMLResponse, name="compare")
def compare_page(request: Request, a: str = Query(..., max_length=MAX_FILTER_LEN),
                 b: str = Query(..., max_length=MAX_FILTER_LEN)):
    data = queries.comparison(get_store(), a, b)
    if data is None:
        return error_page(request, 404, "Run not found", "One of the runs to compare is not in the benchmark history.")
    return render(request, "compare.html", **data)


# Run ids may hold any character, "/" included (Airflow's default pattern forbids it, imported runs may not):
# the routes take the id as a path and the report routes come first, matched on their "/report" suffix.
@router.get("/runs/{run_id:path}/report/{asset:path}", name="report")
def report(request: Request, run_id: str, asset: str) -> Response:
    run = get_store().run(run_id)
    if run is None:
        return error_page(request, 404, "No benchmark record for this run",
                          "The benchmark history has no record of this DAG run, so there is no report to show. "
                          "Runs appear here once the pipeline's record step has stored them.")
    try:
        root = reports.artifacts_root()
        path = reports.resolve_report(run.report_path, root)
        if asset:
            path = reports.resolve_asset(path, asset, root)
    except reports.ReportRefused as exc:
        log.warning("refused report path for run %r: %s", run_id, exc)
        return error_page(request, 403, "Report refused", str(exc))
    except reports.ReportUnavailable as exc:
        return error_page(request, 404, "No report for this run", f"{exc}.")
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = {"Content-Security-Policy": REPORT_CSP} if media == "text/html" else {}
    return FileResponse(path, media_type=media, headers=headers)


@router.get("/runs/{run_id:path}/report", include_in_schema=False)
def report_no_slash(request: Request, run_id: str) -> Response:
    # The report's relative links (its charts) resolve against the folder URL: always serve it with a slash.
    return RedirectResponse(f"{base_path(request)}/runs/{quote(run_id, safe='')}/report/", status_code=307)


@router.get("/runs/{run_id:path}", response_class=HTMLResponse, name="run")
def run_page(request: Request, run_id: str):
    store = get_store()
    run = store.run(run_id)
    if run is None:
        return error_page(request, 404, "No benchmark record for this run",
                          f"The benchmark history has no run with id {run_id!s}. Runs appear here once the "
                          "pipeline's record step has stored them.")
    results = store.results(run_id=run_id)
    report_problem = None
    try:
        reports.resolve_report(run.report_path, reports.artifacts_root())
    except (reports.ReportUnavailable, reports.ReportRefused) as exc:
        report_problem = str(exc)
    return render(request, "run.html", run=run, results=results,
                  regressions=store.regressions(run_id=run_id), scaling=store.scaling(run_id=run_id),
                  report_problem=report_problem,
                  headline=dict(views.run_headline(results), **views.run_versions(results)))
