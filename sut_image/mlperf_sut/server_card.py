"""The server card: what a `serve`d vLLM server runs on and how its engine was set up, at GET /mlperf/server.

A coordinated run's LoadGen process (the http backend) runs on a machine without the model: the accelerator it would
detect and the engine flags it was given say nothing of the servers that did the work. `serve` detects the
accelerator and writes the card into the server's environment before it execs vLLM's server, which serves it through
this middleware (vLLM's `--middleware`); the http backend reads every endpoint's card and records the servers' own
accelerator and engine settings in result.json.
"""
from __future__ import annotations

import json
import os

SERVER_CARD_PATH = "/mlperf/server"
SERVER_CARD_ENV = "MLPERF_SERVER_CARD"
# vLLM's `--middleware` value: an import path to an async function (added with @app.middleware("http")).
MIDDLEWARE = f"{__name__}.serve_card"


def card(accelerator: dict, engine: dict) -> str:
    """The card as `serve` puts it into the server's environment."""
    return json.dumps({"accelerator": accelerator, "engine": engine}, sort_keys=True)


async def serve_card(request, call_next):
    """Answer GET /mlperf/server with the card; pass every other request on to vLLM."""
    if request.url.path != SERVER_CARD_PATH:
        return await call_next(request)
    from starlette.responses import JSONResponse

    return JSONResponse(json.loads(os.environ[SERVER_CARD_ENV]))
