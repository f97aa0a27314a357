"""The server card: what a `serve`d vLLM server runs on and how its engine was set up, at GET /mlperf/server.

A coordinated run's LoadGen process (the http backend) runs on a machine without the model: the accelerator it would
detect and the engine flags it was given say nothing of the servers that did the work. `serve` detects the
accelerator and writes the card into the server's environment before it execs vLLM's server, which serves it through
this middleware (vLLM's `--middleware`); the http backend reads every endpoint's card and records the servers' own
accelerator, engine settings and engine preset in result.json.
"""
from __future__ import annotations

import json
import os

SERVER_CARD_PATH = "/mlperf/server"
SERVER_CARD_ENV = "MLPERF_SERVER_CARD"
# vLLM's `--middleware` value: an import path to a class, which vLLM adds with app.add_middleware (a function would be
# added with @app.middleware("http"), Starlette's BaseHTTPMiddleware, which pipes every streamed completion through an
# extra in-memory stream for the sake of one GET).
MIDDLEWARE = f"{__name__}.ServerCard"
# How long a `serve`d server keeps an idle connection open (uvicorn's keep-alive; vLLM's VLLM_HTTP_TIMEOUT_KEEP_ALIVE,
# default 5 s, which `serve` sets to this). The http backend drops idle connections after half of it, so it never
# sends a request on a connection the server is closing at that moment: aiohttp retries no POST, and that race ended a
# run with "Server disconnected" (CI, 2026-11-30; benchmarks/http_keepalive_race.py reproduces it with the defaults).
KEEP_ALIVE_S = 60


def card(accelerator: dict, engine: dict, engine_preset: dict | None) -> str:
    """The card as `serve` puts it into the server's environment; engine_preset as result.json records it."""
    return json.dumps({"accelerator": accelerator, "engine": engine, "engine_preset": engine_preset}, sort_keys=True)


class ServerCard:
    """Pure ASGI middleware: answers GET /mlperf/server with the card from the environment, passes everything else
    to vLLM untouched."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != SERVER_CARD_PATH:
            await self.app(scope, receive, send)
            return
        body = os.environ[SERVER_CARD_ENV].encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
