"""The Benchmarks page: a read-only FastAPI app over the benchmark history store, mounted in Airflow's API server.

Pages (pages.py; HTML, server-rendered with Jinja2 autoescaping):
    GET /                          trends by series, regressions, run table, comparison picker; filters in the query
    GET /compare?a=RUN&b=RUN       two runs side by side, metric by metric (judged only between equal settings)
    GET /runs/{run_id}             one run: its SUT runs, regressions, scaling, and its report
    GET /runs/{run_id}/report/     the run's HTML report file (only from under MLPERF_ARTIFACTS_DIR)
JSON (api.py; the same data, for scripts):
    GET /api/runs  /api/runs/{run_id}  /api/results  /api/regressions  /api/figures  /api/compare  /api/filters
    GET /api/published
Static:
    GET /static/plotly.min.js      plotly.js as shipped inside the pinned `plotly` wheel (no CDN: works offline)
    GET /static/benchmarks.{css,js}

Every route requires an Airflow user (see security.py). The app only reads: it opens the store read-only
(store_access.py: SQLite `query_only`, PostgreSQL read-only transactions) and offers no route that changes
anything. Filters and run ids reach the database only as bound parameters (the store's contract), filtered and
paged there (queries.py), and the page only through autoescaped templates or JSON.
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from include.history import HistoryUnavailable

from . import api, pages
from .filters import BadFilter
from .rendering import HERE, error_page
from .security import REQUIRE_UI_USER, login_redirect, wants_html
from .store_access import get_store, reset_stores

log = logging.getLogger(__name__)

__all__ = ["app", "create_app", "get_store", "reset_stores"]


def plotly_js_path() -> Path:
    """plotly.min.js inside the installed `plotly` wheel (plotly/package_data/plotly.min.js)."""
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


async def security_headers(request: Request, call_next):
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


async def http_error(request: Request, exc: StarletteHTTPException):
    if exc.status_code == 401 and wants_html(request):
        return login_redirect(request)
    if wants_html(request):
        titles = {401: "Not signed in", 403: "Access denied", 404: "Not found"}
        return error_page(request, exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail))
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def invalid_request(request: Request, exc: RequestValidationError):
    # The default handler echoes the input back; keep it to field names and messages.
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
    if wants_html(request):
        return error_page(request, 422, "Invalid request",
                          "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
    return JSONResponse({"detail": errors}, status_code=422)


async def history_down(request: Request, exc: HistoryUnavailable):
    log.warning("benchmark history unavailable: %s", exc)
    if wants_html(request):
        return error_page(request, 503, "Benchmark history unavailable", str(exc))
    return JSONResponse({"detail": str(exc)}, status_code=503)


async def bad_filter(request: Request, exc: BadFilter):
    if wants_html(request):
        return error_page(request, 400, "Invalid filter", str(exc))
    return JSONResponse({"detail": str(exc)}, status_code=400)


def create_app() -> FastAPI:
    app = FastAPI(
        title="MLPerf benchmarks",
        description="Benchmark history of the MLPerf Inference llama3.1-8b pipeline (read-only).",
        dependencies=[REQUIRE_UI_USER],
        docs_url=None, redoc_url=None, openapi_url=None,
    )
    app.middleware("http")(security_headers)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HistoryUnavailable, history_down)
    app.add_exception_handler(BadFilter, bad_filter)
    app.add_api_route("/static/{name}", static, methods=["GET"], include_in_schema=False)
    app.include_router(api.router)
    app.include_router(pages.router)
    return app


app = create_app()
