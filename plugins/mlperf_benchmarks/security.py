"""Authentication for the plugin's app, through Airflow's own auth manager.

A plugin's FastAPI app is mounted on Airflow's API server but is NOT behind Airflow's login: nothing protects it
unless the app asks. Every route of this app therefore depends on Airflow 3's core-API security dependency
`requires_access_view(AccessView.WEBSITE)`: it resolves the user from the JWT in the `Authorization: Bearer`
header or, for the browser, the `_token` cookie the Airflow UI sets (`get_user`), then asks the configured auth
manager (SimpleAuthManager, FAB, Keycloak, ...) whether that user may see the web UI. The Benchmarks page shows
what every UI user may see, so "may use the website" is the right permission; no write permission is involved
because the plugin only reads.

Anonymous requests get 401; a browser asking for an HTML page is redirected to the auth manager's login page with
`next` pointing back here, the way the Airflow UI itself behaves.
"""
from __future__ import annotations

from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
from airflow.api_fastapi.core_api.security import requires_access_view
from fastapi import Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

#: The dependency every route of the app carries (set on the FastAPI app, so no route can forget it).
REQUIRE_UI_USER = Depends(requires_access_view(AccessView.WEBSITE))


def wants_html(request: Request) -> bool:
    """A browser navigation (not the JSON API, not a static file, not a script's fetch)."""
    path = request.url.path
    root = request.scope.get("root_path", "")
    local = path[len(root):] if root and path.startswith(root) else path
    if local.startswith(("/api/", "/static/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def login_redirect(request: Request) -> Response:
    """Send a browser to the auth manager's login page, coming back here afterwards."""
    from airflow.api_fastapi.app import get_auth_manager

    # Back to this path, on this server: the path and query only, never the Host header (a forged one would have
    # sent the user to another site after the login).
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    try:
        url = get_auth_manager().get_url_login(next_url=here)
    except Exception:  # no auth manager initialised: nothing to redirect to, answer plainly
        return JSONResponse({"detail": "Not authenticated"}, status_code=401)
    return RedirectResponse(url, status_code=303)
