"""A query sent on a pooled connection as the server closes it for idleness: CI's "Server disconnected" (2026-11-30).

vLLM's server closes a keep-alive connection idle for VLLM_HTTP_TIMEOUT_KEEP_ALIVE seconds (default 5); aiohttp keeps
idle connections 15 s by default and retries no POST. When the client's event loop is busy as the server closes (it
issues thousands of queries at the start of an Offline run), it has not yet seen the close when it reuses the
connection, and the query fails. `serve` sets the server's keep-alive to server_card.KEEP_ALIVE_S (60 s) and the HTTP
backend drops idle connections at half of it, so the client never reuses a connection the server may be closing.

Starts vLLM's server on the tiny model (as `serve` builds its command line, with --server-keep-alive instead of
`serve`'s), then --attempts times: a GET on one pooled connection, --idle seconds (spread over +-20 ms) with the loop
blocked for the last --busy seconds, then a POST /v1/completions on the same pool.

    VLLM_CPU_KVCACHE_SPACE=1 .venv-sut/bin/python benchmarks/http_keepalive_race.py                   # vLLM and aiohttp defaults
    VLLM_CPU_KVCACHE_SPACE=1 .venv-sut/bin/python benchmarks/http_keepalive_race.py --server-keep-alive 60 \\
        --client-keep-alive 30 --idle 5                                                               # what serve sets
Last line: `server_keep_alive_s=.. client_keep_alive_s=.. idle_s=.. busy_s=.. failed=N/M`.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import aiohttp

# this folder is on sys.path when a script of it runs; importing it puts sut_image there too
from http_stream_cost import REPO, wait_until_serving


def start_server(model: Path, port: int, keep_alive_s: int, log: Path) -> subprocess.Popen:
    from mlperf_sut.engine import EngineOptions
    from mlperf_sut.serve import KEEP_ALIVE_ENV, build_parser, vllm_server_argv

    options = EngineOptions.from_args(build_parser().parse_args(["--model", str(model), "--max-model-len", "1024"]))
    argv = vllm_server_argv(model, "127.0.0.1", port, options)
    at = argv.index("--middleware")
    del argv[at:at + 2]             # the card needs `serve`'s environment; this measurement needs no card
    env = {**os.environ, KEEP_ALIVE_ENV: str(keep_alive_s), "PYTHONPATH": str(REPO / "sut_image")}
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return wait_until_serving(process, port, log)


async def attempts(url: str, model: str, client_keep_alive_s: float, idle_s: float, busy_s: float,
                   count: int) -> int:
    """How many of `count` POSTs failed on a connection left idle for about `idle_s`."""
    failed = 0
    connector = aiohttp.TCPConnector(limit=1, keepalive_timeout=client_keep_alive_s)
    async with aiohttp.ClientSession(connector=connector) as session:
        for k in range(count):
            idle = idle_s - 0.02 + 0.04 * k / max(count - 1, 1)
            async with session.get(f"{url}/health") as response:
                await response.read()
            await asyncio.sleep(max(idle - busy_s, 0))
            time.sleep(busy_s)      # the loop busy (issuing queries), as the server closes the idle connection
            try:
                async with session.post(f"{url}/v1/completions",
                                        json={"model": model, "prompt": [1, 2, 3], "max_tokens": 2}) as response:
                    await response.read()
            except aiohttp.ClientError as error:
                failed += 1
                print(f"idle {idle:.3f} s: {type(error).__name__}: {error}", flush=True)
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / ".cache" / "tiny-llama")
    parser.add_argument("--server-keep-alive", type=int, default=5, help="the server's keep-alive (vLLM's default 5)")
    parser.add_argument("--client-keep-alive", type=float, default=15.0,
                        help="the client pool's idle limit (aiohttp's default 15)")
    parser.add_argument("--idle", type=float, help="seconds a connection idles before the POST (default: the "
                                                    "server's keep-alive)")
    parser.add_argument("--busy", type=float, default=0.1, help="seconds the client's loop is blocked at the end")
    parser.add_argument("--attempts", type=int, default=40)
    parser.add_argument("--port", type=int, default=8477)
    parser.add_argument("--log", type=Path, default=Path("/tmp/http_keepalive_race.log"))
    args = parser.parse_args()
    idle = args.server_keep_alive if args.idle is None else args.idle

    server = start_server(args.model, args.port, args.server_keep_alive, args.log)
    try:
        failed = asyncio.run(attempts(f"http://127.0.0.1:{args.port}", args.model.name, args.client_keep_alive, idle,
                                      args.busy, args.attempts))
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    print(f"server_keep_alive_s={args.server_keep_alive} client_keep_alive_s={args.client_keep_alive:g} "
          f"idle_s={idle:g} busy_s={args.busy:g} failed={failed}/{args.attempts}")


if __name__ == "__main__":
    main()
