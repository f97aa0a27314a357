"""Refuse a bad trigger of the benchmark DAG at the api-server's door, before a DAG run exists.

Airflow 3.3 validates each declared param against its JSON schema when a run is created, but a conf key that is
no param passes (SerializedParamsDict.deep_merge adds it unchecked; apache/airflow#29018), so a misspelt
`total_samples_count` ran the default sample count without a word. Airflow has no option to refuse it; its
plugins can wrap the api-server in an ASGI middleware (`fastapi_root_middlewares`), which is what this is:
POST /api/v2/dags/mlperf_llama31_8b/dagRuns (the REST API and the UI's trigger form alike) gets
`include.planning.plan.check_at_the_door` on its conf, and a 400 naming the key and the nearest param when it fails.
Everything else passes through untouched; Airflow's own validation of each param's value follows.

The middleware sits in front of Airflow's own authentication, so it does Airflow's checks first, with Airflow's
functions (`resolve_user_from_token`, `requires_access_dag`) and Airflow's answers (401, 403): nobody who may not
trigger the DAG gets a byte of body read or a word about its params. The body is capped at MAX_BODY_BYTES (413
beyond it: a declared Content-Length at once, a chunked body once it has grown past it), and an error answer of
this route (ours or Airflow's, which quotes the input: jsonschema's message, FastAPI's `input`) carries at most a
short excerpt of any value sent.
"""
from __future__ import annotations

import json
import re
from typing import Any

DAG_ID = "mlperf_llama31_8b"
MAX_BODY_BYTES = 1 << 20             # a trigger's JSON is a few KiB; the UI form and the REST API alike
EXCERPT_CHARS = 60                   # of a quoted value in an error message
MAX_MESSAGE_CHARS = 1_000            # of any one string in an error answer (the param list is ~520)
_TRIGGER = re.compile(r"/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/?$")
_QUOTED = re.compile(r"""'(?:[^'\\\n]|\\.){%d,}'|"(?:[^"\\\n]|\\.){%d,}\"""" % (EXCERPT_CHARS + 20,
                                                                               EXCERPT_CHARS + 20))


def refusal(dag_id: str, body: bytes) -> str | None:
    """Why this trigger request must not create a run, or None (also for bodies Airflow itself will reject)."""
    if dag_id != DAG_ID:
        return None
    try:
        conf = json.loads(body or b"{}").get("conf")
    except (ValueError, AttributeError):
        return None                      # not a JSON object: FastAPI's validation answers
    if not isinstance(conf, dict):
        return None
    from include import deployment
    from include.planning import plan

    try:
        plan.check_at_the_door(conf, deployment.load())
    except plan.PlanError as error:
        return f"Invalid conf for {dag_id}: {error}"
    return None


def excerpt(text: str) -> str:
    """An error message with every long quoted value cut to its start, and the whole cut to MAX_MESSAGE_CHARS."""
    text = _QUOTED.sub(lambda m: f"{m[0][:EXCERPT_CHARS + 1]}...{m[0][0]} ({len(m[0]) - 2:,} characters)", text)
    if len(text) > MAX_MESSAGE_CHARS:
        text = f"{text[:MAX_MESSAGE_CHARS]}... ({len(text):,} characters)"
    return text


def _shorten(value: Any, key: str | None = None) -> Any:
    """An error answer's JSON with its strings excerpted; FastAPI's echo of the input (`input`) cut shorter still."""
    if key == "input" and not isinstance(value, str):
        value = json.dumps(value)
    if isinstance(value, str):
        return excerpt(value) if key != "input" or len(value) <= EXCERPT_CHARS else \
            f"{value[:EXCERPT_CHARS]}... ({len(value):,} characters)"
    if isinstance(value, dict):
        return {k: _shorten(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    return value


def short_error_body(body: bytes) -> bytes:
    try:
        return json.dumps(_shorten(json.loads(body))).encode()
    except ValueError:
        return excerpt(body.decode("utf-8", "replace")).encode()


async def _answer(send, status: int, detail: Any, headers: dict[str, str] | None = None) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())]})
    await send({"type": "http.response.body", "body": payload})


async def not_allowed(scope: dict[str, Any], dag_id: str) -> tuple[int, Any, dict[str, str] | None] | None:
    """Airflow's answer to a trigger by this caller, decided from the headers alone, or None: allowed. The same
    steps as the route's own dependencies (security.get_user, then requires_access_dag POST RUN): the bearer token
    of the Authorization header, else the `_token` cookie of the UI; 401 without one, 401/403 for an expired or
    forged one, 403 for a user who may not trigger this DAG."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag, resolve_user_from_token
    from fastapi import HTTPException, Request
    from starlette.concurrency import run_in_threadpool

    request = Request(scope)
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    bearer = scheme.lower() == "bearer" and credentials.strip()
    try:
        user = await resolve_user_from_token(credentials.strip() if bearer else
                                             request.cookies.get(COOKIE_NAME_JWT_TOKEN))
        await run_in_threadpool(requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=dag_id),
                                request, user)
    except HTTPException as refused:
        return refused.status_code, refused.detail, refused.headers
    return None


class TriggerGuard:
    """ASGI middleware: authenticates a trigger of the benchmark DAG, reads its body (at most MAX_BODY_BYTES),
    refuses it with 400 {"detail": ...} or replays it to the app; error answers carry excerpts of the input."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        match = _TRIGGER.search(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope.get("method") != "POST" or match["dag_id"] != DAG_ID:
            await self.app(scope, receive, send)
            return
        refused = await not_allowed(scope, match["dag_id"])
        if refused is not None:
            await _answer(send, *refused)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").strip()
        if declared and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            await _answer(send, 413, f"the request body is larger than {MAX_BODY_BYTES:,} bytes")
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:      # chunked, or longer than declared
                await _answer(send, 413, f"the request body is larger than {MAX_BODY_BYTES:,} bytes")
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        reason = refusal(match["dag_id"], body)
        if reason is not None:
            await _answer(send, 400, excerpt(reason))
            return

        async def replay():
            return messages.pop(0) if messages else await receive()

        # Airflow's own refusals quote the input in full (a 20 MB value came back twice): hold an error answer
        # back and excerpt it. Uncompressed, so that it can be read: the answer is small, and ours to shorten.
        scope = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k != b"accept-encoding"])
        held: dict[str, Any] = {}

        async def excerpting_send(message):
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held["start"], held["body"] = message, b""
                return
            if "start" not in held or message["type"] != "http.response.body":
                await send(message)
                return
            held["body"] += message.get("body", b"")
            if message.get("more_body"):
                return
            payload = short_error_body(held["body"])
            start = held["start"]
            await send(dict(start, headers=[(k, v) for k, v in start.get("headers", [])
                                            if k.lower() != b"content-length"]
                            + [(b"content-length", str(len(payload)).encode())]))
            await send({"type": "http.response.body", "body": payload})

        await self.app(scope, replay, excerpting_send)
