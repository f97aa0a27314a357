"""Responses of the page: autoescaped Jinja2 templates with the page's Content-Security-Policy, JSON, errors."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import views

HERE = Path(__file__).resolve().parent

# Content-Security-Policy of the plugin's own pages: scripts only from this app (plotly.js and benchmarks.js; no
# inline script, no eval), styles inline too because plotly.js injects its own <style>. Framed only by Airflow.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
            "connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'self'")
# Reports are HTML the pipeline wrote; they may carry inline scripts and styles of their own. They may not call
# out (connect-src 'none'), nor submit forms, nor be framed by other sites.
REPORT_CSP = ("default-src 'self' data: blob: 'unsafe-inline'; connect-src 'none'; form-action 'none'; "
              "object-src 'none'; base-uri 'self'; frame-ancestors 'self'")

_templates = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                         autoescape=select_autoescape(default=True, default_for_string=True))
_templates.filters["fmt"] = views.fmt
_templates.filters["urlpart"] = lambda value: quote(str(value), safe="")
_templates.filters["short_hash"] = views.short_hash
_templates.filters["dt"] = lambda m: m.strftime("%Y-%m-%d %H:%M") if m else "—"
# A chart's figure is JSON-ready already (thousands of points): encoded directly, jsonable_encoder only for what is not.
_templates.filters["tojson_attr"] = lambda value: json.dumps(value, separators=(",", ":"), default=jsonable_encoder)
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


def error_page(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code=status_code, title=title, message=message)
