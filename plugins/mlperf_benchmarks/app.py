"""The Benchmarks page: a read-only FastAPI app over the benchmark history store, mounted in Airflow's API server.

Pages (HTML, server-rendered with Jinja2 autoescaping):
    GET /                          trends, regressions, run table, comparison picker; filters in the query string
    GET /compare?a=RUN&b=RUN       two runs side by side, metric by metric, change in percent (B against A)
    GET /runs/{run_id}             one run: its SUT runs, regressions, scaling, and its report
    GET /runs/{run_id}/report/     the run's HTML report file (only from under MLPERF_ARTIFACTS_DIR)
JSON (the same data, for scripts):
    GET /api/runs  /api/runs/{run_id}  /api/results  /api/regressions  /api/figures  /api/compare  /api/filters
Static:
    GET /static/plotly.min.js      plotly.js as shipped inside the pinned `plotly` wheel (no CDN: works offline)
    GET /static/benchmarks.{css,js}

Every route requires an Airflow user (see security.py). The app only reads: it opens the store read-only
(`HistoryStore(url, readonly=True)`: SQLite `query_only`, PostgreSQL read-only transactions) and offers no route
that changes anything. Filters and run ids reach the database only as bound parameters (the store's contract)
and the page only through autoescaped templates or JSON.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import mimetypes
import threading
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from include.history import HistoryStore, HistoryUnavailable

from . import reports, views
from .security import REQUIRE_UI_USER, login_redirect, wants_html

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
RUNS_PER_PAGE = 50
MAX_FILTER_LEN = 250

# Content-Security-Policy of the plugin's own pages: scripts only from this app (plotly.js and benchmarks.js; no
# inline script, no eval), styles inline too because plotly.js injects its own <style>. Framed only by Airflow.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
            "connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'self'")
# Reports are HTML the pipeline wrote; they may carry inline scripts and styles of their own. They may not call
# out (connect-src 'none'), nor submit forms, nor be framed by other sites.
REPORT_CSP = ("default-src 'self' data: blob: 'unsafe-inline'; connect-src 'none'; form-action 'none'; "
              "object-src 'none'; base-uri 'self'; frame-ancestors 'self'")


def plotly_js_path() -> Path:
    """plotly.min.js inside the installed `plotly` wheel (plotly/package_data/plotly.min.js)."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the `plotly` package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


STATIC_FILES = {
    "benchmarks.css": lambda: HERE / "static" / "benchmarks.css",
    "benchmarks.js": lambda: HERE / "static" / "benchmarks.js",
    "plotly.min.js": plotly_js_path,
    "icon.svg": lambda: HERE / "static" / "icon.svg",
}


# ----------------------------------------------------------------------------------------------------------------
# The history store (read-only, one engine per URL)

_stores: dict[str, HistoryStore] = {}
_stores_lock = threading.Lock()


class HistoryNotCreated(HistoryUnavailable):
    """The default SQLite history file does not exist yet: no run has been recorded (an empty history)."""


def history_url() -> str:
    """The deployment's history URL (include/deployment.py: MLPERF_HISTORY_URL, else a SQLite file in the artefacts
    folder). The page never creates that file: a missing one is an empty history."""
    from include import deployment

    try:
        dep = deployment.load()
    except deployment.DeploymentError as exc:
        raise HistoryUnavailable(f"the deployment's settings are wrong, so the Benchmarks page does not know where "
                                 f"the benchmark history is: {exc}") from None
    default_file = dep.artifacts_dir / "history.sqlite"
    if dep.history_url == f"sqlite:///{default_file}" and not default_file.is_file():
        raise HistoryNotCreated(f"no benchmark history yet: {default_file} does not exist")
    return dep.history_url


def get_store() -> HistoryStore:
    """The read-only store for the configured URL (read at each request, so a changed setting takes effect)."""
    url = history_url()
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = HistoryStore(url, readonly=True)
        return store


def reset_stores() -> None:
    """Dispose cached engines (tests switch databases)."""
    with _stores_lock:
        for store in _stores.values():
            store.dispose()
        _stores.clear()


# ----------------------------------------------------------------------------------------------------------------
# Input: filters from the query string


class BadFilter(ValueError):
    """A filter value the page cannot use; the message is shown to the user."""


@dataclasses.dataclass(frozen=True)
class Filters:
    scenario: str | None = None
    node: str | None = None
    branch: str | None = None
    since: date | None = None
    until: date | None = None

    @property
    def since_dt(self) -> datetime | None:
        return datetime.combine(self.since, time.min, tzinfo=timezone.utc) if self.since else None

    @property
    def until_dt(self) -> datetime | None:
        """`until` is inclusive for the user (a whole day), exclusive for the store."""
        return datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=timezone.utc) if self.until else None

    def query(self) -> dict[str, str]:
        return {k: str(v) for k, v in dataclasses.asdict(self).items() if v is not None}

    def store_kwargs(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "node": self.node, "branch": self.branch,
                "since": self.since_dt, "until": self.until_dt}


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > MAX_FILTER_LEN:
        raise BadFilter(f"a filter value is longer than {MAX_FILTER_LEN} characters")
    return value


def _day(name: str, value: str | None) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise BadFilter(f"'{name}' must be a date as YYYY-MM-DD") from None


def parse_filters(scenario: str | None, node: str | None, branch: str | None, since: str | None,
                  until: str | None) -> Filters:
    filters = Filters(_text(scenario), _text(node), _text(branch), _day("since", since), _day("until", until))
    if filters.since and filters.until and filters.since > filters.until:
        raise BadFilter("'since' is after 'until'")
    return filters


# ----------------------------------------------------------------------------------------------------------------
# Output helpers

_templates = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                         autoescape=select_autoescape(default=True, default_for_string=True))
_templates.filters["fmt"] = views.fmt
_templates.filters["urlpart"] = lambda value: quote(str(value), safe="")
_templates.filters["short_hash"] = views.short_hash
_templates.filters["dt"] = lambda m: m.strftime("%Y-%m-%d %H:%M") if m else "—"
_templates.filters["tojson_attr"] = lambda value: json.dumps(jsonable_encoder(value), separators=(",", ":"))
_templates.globals["METRICS"] = views.METRICS


def base_path(request: Request) -> str:
    """Where this app is mounted (e.g. /mlperf-benchmarks), for links that survive Airflow's [api] base_url."""
    return request.scope.get("root_path", "").rstrip("/")


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("error", None)
    body = _templates.get_template(template).render(request=request, base=base_path(request), **context)
    return HTMLResponse(body, status_code=status_code, headers={"Content-Security-Policy": PAGE_CSP})


def as_json(value: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(jsonable_encoder(value), status_code=status_code)


def row_dict(row: Any) -> dict[str, Any]:
    return dataclasses.asdict(row)


def is_missing_schema(exc: HistoryUnavailable) -> bool:
    """A database the pipeline has not written to yet: shown as an empty history, not as an outage."""
    return isinstance(exc, HistoryNotCreated) or "no history schema" in str(exc)


def error_page(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code=status_code, title=title, message=message)


# ----------------------------------------------------------------------------------------------------------------
# The app


def create_app() -> FastAPI:
    app = FastAPI(
        title="MLPerf benchmarks",
        description="Benchmark history of the MLPerf Inference llama3.1-8b pipeline (read-only).",
        dependencies=[REQUIRE_UI_USER],
        docs_url=None, redoc_url=None, openapi_url=None,
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 401 and wants_html(request):
            return login_redirect(request)
        if wants_html(request):
            titles = {401: "Not signed in", 403: "Access denied", 404: "Not found"}
            return error_page(request, exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        # The default handler echoes the input back; keep it to field names and messages.
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        if wants_html(request):
            return error_page(request, 422, "Invalid request",
                              "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(HistoryUnavailable)
    async def history_down(request: Request, exc: HistoryUnavailable):
        log.warning("benchmark history unavailable: %s", exc)
        if wants_html(request):
            return error_page(request, 503, "Benchmark history unavailable", str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(BadFilter)
    async def bad_filter(request: Request, exc: BadFilter):
        if wants_html(request):
            return error_page(request, 400, "Invalid filter", str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=400)

    # -- static --------------------------------------------------------------------------------------------------

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        locate = STATIC_FILES.get(name)
        if locate is None:
            return JSONResponse({"detail": "Not found"}, status_code=404)
        try:
            path = locate()
        except FileNotFoundError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)
        media = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}[name.rsplit(".", 1)[1]]
        # Cacheable for an hour: the file changes only with a new plugin or plotly version.
        return FileResponse(path, media_type=media, headers={"Cache-Control": "private, max-age=3600"})

    # -- pages ---------------------------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, name="index")
    def index(request: Request, scenario: str | None = None, node: str | None = None, branch: str | None = None,
              since: str | None = None, until: str | None = None, page: int = Query(1, ge=1, le=10_000)):
        filters = parse_filters(scenario, node, branch, since, until)
        try:
            store = get_store()
            options = store.filter_options()
        except HistoryUnavailable as exc:
            if not is_missing_schema(exc):
                raise
            return render(request, "index.html", empty=True, schema_missing=str(exc), filters=filters,
                          options={}, figures=[], runs=[], regressions=[], kpis={}, page=1, has_more=False)
        if options.get("date_range") is None:
            return render(request, "index.html", empty=True, schema_missing=None, filters=filters, options=options,
                          figures=[], runs=[], regressions=[], kpis={}, page=1, has_more=False)

        results = store.results(**filters.store_kwargs())
        regressions = [r for r in store.regressions() if _matches(r, filters)]
        figures = views.trend_figures(results, regressions)
        offset = (page - 1) * RUNS_PER_PAGE
        run_rows = store.runs(limit=RUNS_PER_PAGE + 1, offset=offset)
        has_more = len(run_rows) > RUNS_PER_PAGE
        run_rows = [r for r in run_rows[:RUNS_PER_PAGE] if _run_in_range(r, filters)]
        by_run: dict[str, list] = {}
        for row in results:
            by_run.setdefault(row.run_id, []).append(row)
        if filters.scenario or filters.node or filters.branch:
            run_rows = [r for r in run_rows if r.run_id in by_run]
        runs = [{"run": r, "validity": views.validity_summary(r), "headline": views.run_headline(by_run.get(
            r.run_id, [])), "has_report": bool(r.report_path)} for r in run_rows]
        latest = next(iter(store.runs(limit=1)), None)
        kpis = {
            "runs": len({r.run_id for r in results}),
            "results": len(results),
            "invalid": sum(1 for r in results if r.valid is False),
            "failed": sum(1 for r in results if r.status != "completed"),
            "regressions": len(regressions),
            "latest": latest,
            "latest_validity": views.validity_summary(latest) if latest else None,
        }
        return render(request, "index.html", empty=False, schema_missing=None, filters=filters, options=options,
                      figures=figures, runs=runs, regressions=list(reversed(regressions))[:20], kpis=kpis,
                      page=page, has_more=has_more)

    @app.get("/compare", response_class=HTMLResponse, name="compare")
    def compare_page(request: Request, a: str = Query(..., max_length=MAX_FILTER_LEN),
                     b: str = Query(..., max_length=MAX_FILTER_LEN)):
        data = _comparison(a, b)
        if data is None:
            return error_page(request, 404, "Run not found",
                              "One of the runs to compare is not in the benchmark history.")
        return render(request, "compare.html", **data)

    # Run ids may hold any character, "/" included (Airflow's default pattern forbids it, imported runs may not):
    # the routes take the id as a path and the report routes come first, matched on their "/report" suffix.
    @app.get("/runs/{run_id:path}/report/{asset:path}", name="report")
    def report(request: Request, run_id: str, asset: str) -> Response:
        return _serve_report(request, run_id, asset or None)

    @app.get("/runs/{run_id:path}/report", include_in_schema=False)
    def report_no_slash(request: Request, run_id: str) -> Response:
        # The report's relative links (its charts) resolve against the folder URL: always serve it with a slash.
        return RedirectResponse(f"{base_path(request)}/runs/{quote(run_id, safe='')}/report/", status_code=307)

    @app.get("/runs/{run_id:path}", response_class=HTMLResponse, name="run")
    def run_page(request: Request, run_id: str):
        store = get_store()
        run = store.run(run_id)
        if run is None:
            return error_page(request, 404, "No benchmark record for this run",
                              f"The benchmark history has no run with id {run_id!s}. Runs appear here once the "
                              "pipeline's record step has stored them.")
        results = store.results(run_id=run_id)
        regressions = store.regressions(run_id=run_id)
        scaling = store.scaling(run_id=run_id)
        report_problem = None
        try:
            reports.resolve_report(run.report_path, reports.artifacts_root())
        except (reports.ReportUnavailable, reports.ReportRefused) as exc:
            report_problem = str(exc)
        return render(request, "run.html", run=run, validity=views.validity_summary(run), results=results,
                      regressions=regressions, scaling=scaling,
                      report_problem=report_problem, headline=views.run_headline(results))

    # -- JSON ----------------------------------------------------------------------------------------------------

    @app.get("/api/filters")
    def api_filters():
        return as_json(get_store().filter_options())

    @app.get("/api/runs")
    def api_runs(limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)):
        runs = get_store().runs(limit=limit, offset=offset)
        return as_json({"runs": [dict(row_dict(r), validity=views.validity_summary(r)) for r in runs],
                        "limit": limit, "offset": offset})

    @app.get("/api/runs/{run_id:path}")
    def api_run(run_id: str):
        store = get_store()
        run = store.run(run_id)
        if run is None:
            return JSONResponse({"detail": "no such run in the benchmark history"}, status_code=404)
        results = store.results(run_id=run_id)
        return as_json({"run": row_dict(run), "validity": views.validity_summary(run),
                        "headline": views.run_headline(results),
                        "results": [row_dict(r) for r in results],
                        "regressions": [row_dict(r) for r in store.regressions(run_id=run_id)],
                        "scaling": [row_dict(r) for r in store.scaling(run_id=run_id)]})

    @app.get("/api/results")
    def api_results(scenario: str | None = None, node: str | None = None, branch: str | None = None,
                    since: str | None = None, until: str | None = None,
                    mode: str | None = Query(None, max_length=MAX_FILTER_LEN),
                    run_id: str | None = Query(None, max_length=MAX_FILTER_LEN)):
        filters = parse_filters(scenario, node, branch, since, until)
        rows = get_store().results(mode=mode or None, run_id=run_id or None, **filters.store_kwargs())
        return as_json({"filters": filters.query(), "results": [row_dict(r) for r in rows]})

    @app.get("/api/regressions")
    def api_regressions(run_id: str | None = Query(None, max_length=MAX_FILTER_LEN)):
        return as_json({"regressions": [row_dict(r) for r in get_store().regressions(run_id=run_id or None)]})

    @app.get("/api/figures")
    def api_figures(scenario: str | None = None, node: str | None = None, branch: str | None = None,
                    since: str | None = None, until: str | None = None):
        filters = parse_filters(scenario, node, branch, since, until)
        store = get_store()
        results = store.results(**filters.store_kwargs())
        regressions = [r for r in store.regressions() if _matches(r, filters)]
        return as_json({"filters": filters.query(), "figures": views.trend_figures(results, regressions)})

    @app.get("/api/compare")
    def api_compare(a: str = Query(..., max_length=MAX_FILTER_LEN), b: str = Query(..., max_length=MAX_FILTER_LEN)):
        data = _comparison(a, b)
        if data is None:
            return JSONResponse({"detail": "one of the runs is not in the benchmark history"}, status_code=404)
        return as_json({"a": row_dict(data["run_a"]), "b": row_dict(data["run_b"]), "groups": data["groups"]})

    # -- helpers that need the store -----------------------------------------------------------------------------

    def _comparison(a: str, b: str) -> dict[str, Any] | None:
        store = get_store()
        run_a, run_b = store.run(a), store.run(b)
        if run_a is None or run_b is None:
            return None
        groups = views.compare_runs(store.results(run_id=a), store.results(run_id=b))
        return {"run_a": run_a, "run_b": run_b, "groups": groups,
                "validity_a": views.validity_summary(run_a), "validity_b": views.validity_summary(run_b)}

    def _serve_report(request: Request, run_id: str, asset: str | None) -> Response:
        run = get_store().run(run_id)
        if run is None:
            return error_page(request, 404, "No benchmark record for this run",
                              "The benchmark history has no record of this DAG run, so there is no report to show. "
                              "Runs appear here once the pipeline's record step has stored them.")
        root = reports.artifacts_root()
        try:
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

    return app


def _matches(reg, filters: Filters) -> bool:
    if filters.scenario and reg.scenario != filters.scenario:
        return False
    if filters.node and reg.node != filters.node:
        return False
    if filters.branch and reg.branch != filters.branch:
        return False
    if filters.since_dt and reg.logical_date < filters.since_dt:
        return False
    if filters.until_dt and reg.logical_date >= filters.until_dt:
        return False
    return True


def _run_in_range(run, filters: Filters) -> bool:
    if filters.since_dt and run.logical_date < filters.since_dt:
        return False
    if filters.until_dt and run.logical_date >= filters.until_dt:
        return False
    return True


app = create_app()
