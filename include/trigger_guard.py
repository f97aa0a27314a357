"""Refuse a bad trigger of the benchmark DAG at the api-server's door, before a DAG run exists.

Airflow 3.3 validates each declared param against its JSON schema when a run is created, but a conf key that is
no param passes (SerializedParamsDict.deep_merge adds it unchecked; apache/airflow#29018), so a misspelt
`total_samples_count` ran the default sample count without a word. Airflow has no option to refuse it; its
plugins can wrap the api-server in an ASGI middleware (`fastapi_root_middlewares`), which is what this is:
POST /api/v2/dags/mlperf_llama31_8b/dagRuns (the REST API and the UI's trigger form alike) gets
`include.plan.check_at_the_door` on its conf, and a 400 naming the key and the nearest param when it fails.
Everything else passes through untouched; Airflow's own validation of each param's value follows.
"""
from __future__ import annotations

import json
import re
from typing import Any

DAG_ID = "mlperf_llama31_8b"
_TRIGGER = re.compile(r"/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/?$")


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
    from include import deployment, plan

    try:
        plan.check_at_the_door(conf, deployment.load())
    except plan.PlanError as error:
        return f"Invalid conf for {dag_id}: {error}"
    return None


class TriggerGuard:
    """ASGI middleware: reads a trigger's body, refuses it with 400 {"detail": ...} or replays it to the app."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        match = _TRIGGER.search(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        reason = refusal(match["dag_id"], body)
        if reason is not None:
            payload = json.dumps({"detail": reason}).encode()
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
