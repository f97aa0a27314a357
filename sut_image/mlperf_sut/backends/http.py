"""Coordinated distributed runs: one LoadGen drives vLLM OpenAI-compatible servers (`python -m mlperf_sut serve`).

Each query is one streaming POST /v1/completions with the prompt as token ids and `return_token_ids`, so nothing is
re-tokenised and the accuracy log holds exactly the ids the engine produced; the first streamed chunk marks the
first token. `serve` starts vLLM with a stream interval of a whole generation, so a query costs a few chunks (the
first token, the rest, the usage), not one per token: LoadGen needs only the first token's and the completion's
times. All requests run on one long-lived event loop in a dedicated thread, sharing one aiohttp session;
LoadGen's threads only schedule onto it (run_coroutine_threadsafe) and never wait for a generation.

A failing endpoint fails the whole run (no fail-over): a benchmark that silently moved work to other nodes would
report numbers for a different system. Every request has a timeout, so no query can stay outstanding forever.
"""
from __future__ import annotations

import asyncio
import json
import resource
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp

from mlperf_sut.backends.base import Backend, Query, Reporter
from mlperf_sut.errors import InputError
from mlperf_sut.generation import GenerationConfig
from mlperf_sut.server_card import KEEP_ALIVE_S, SERVER_CARD_PATH
from mlperf_sut.settings import Scenario

T = TypeVar("T")

# Longest piece of an error body quoted in a message: enough for vLLM's JSON error, short enough for a log line.
_BODY_EXCERPT = 500
# Open files besides the request sockets: LoadGen's logs, the data set, the interpreter's own.
_FILE_HEADROOM = 256


class EndpointError(RuntimeError):
    """An endpoint is unreachable, unhealthy or answered something unusable; the message names its URL."""


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """Client limits. In flight per endpoint: half as many again as vLLM's largest default max_num_seqs (1024 on H200),
    so in Offline a server's batch is full and requests wait in its queue: with exactly max_num_seqs in flight, every
    finished sequence left its slot empty until the client had the answer and sent the next request, and the batch
    of an H200 swung between 1,024 and ~400 sequences (reference/h200x2, 2026-11-29). At most three quarters of the
    server's listen backlog (uvicorn's 2048): Offline opens them all at once, and a full backlog drops connections
    until the connect timeout fails the run. The request timeout bounds how long a query can stay outstanding, so it
    must cover the wait in the server's queue (1536 requests at 2.5 samples/s on an A30: ~10 min)."""

    connect_timeout_s: float = 10.0
    request_timeout_s: float = 1800.0
    health_timeout_s: float = 10.0
    max_in_flight_per_endpoint: int = 1536

    def __post_init__(self) -> None:
        for name in ("connect_timeout_s", "request_timeout_s", "health_timeout_s", "max_in_flight_per_endpoint"):
            if getattr(self, name) <= 0:
                raise InputError(f"http backend: {name} must be positive, got {getattr(self, name)}")


def create_backend(urls: Sequence[str], scenario: Scenario, generation: GenerationConfig, model: Path,
                   options: HttpOptions = HttpOptions()) -> HttpBackend:
    """The CLI's entry: servers started by `serve --model DIR` serve the model under DIR's basename."""
    return HttpBackend(urls, model.name, generation, report_first_token=scenario.streaming, options=options)


@dataclass(slots=True)
class _EndpointState:
    """One server's base URL and requests in flight; touched only on the loop thread (no locks)."""

    url: str
    outstanding: int = 0
    card: dict | None = None       # GET /mlperf/server: the server's accelerator and engine settings


class HttpBackend(Backend):
    name = "http"

    def __init__(self, urls: Sequence[str], model_name: str, generation: GenerationConfig, *,
                 report_first_token: bool, options: HttpOptions = HttpOptions()) -> None:
        """`model_name`: the name the servers serve the model under; `report_first_token`: the latency scenarios'
        TTFT (Offline measures throughput only, so it skips one LoadGen call per query)."""
        bases = [_base_url(url) for url in urls]
        if not bases:
            raise InputError("--backend http needs at least one --endpoint [NODE=]URL")
        repeated = sorted({url for url in bases if bases.count(url) > 1})
        if repeated:
            raise InputError(f"--endpoint: {', '.join(repeated)} given more than once")
        self._states = [_EndpointState(url) for url in bases]
        self._model_name = model_name
        self._generation = generation
        self._report_first_token = report_first_token
        self._options = options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="http-backend-loop", daemon=True)
        self._reporter: Reporter | None = None
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task] = set()
        self._failure: BaseException | None = None
        self._next = 0

    # --- called from the harness and LoadGen's threads -------------------------------------------------------

    def start(self, reporter: Reporter) -> None:
        """Open the session and check every endpoint is healthy and serves the model; raise naming those that fail."""
        self._reporter = reporter
        _allow_open_files(self._options.max_in_flight_per_endpoint * len(self._states) + _FILE_HEADROOM)
        self._thread.start()
        self._call(self._open())
        self._call(self._check_endpoints())

    def submit(self, queries: Sequence[Query]) -> None:
        asyncio.run_coroutine_threadsafe(self._issue(queries), self._loop)

    def stop(self) -> None:
        """Cancel what is still in flight, close the connections and end the loop thread."""
        if self._thread.is_alive():
            try:
                self._call(self._close(), timeout=30)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join()
        if not self._loop.is_closed():
            self._loop.close()

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    # --- on the loop thread ------------------------------------------------------------------------------------

    async def _open(self) -> None:
        in_flight = self._options.max_in_flight_per_endpoint * len(self._states)
        self._slots = asyncio.Semaphore(in_flight)
        # A pool as large as the concurrency, so no request waits for a connection; idle connections dropped well
        # before the server drops them (server_card.KEEP_ALIVE_S); 1 MiB lines because the first streamed chunk echoes
        # the prompt's ids.
        connector = aiohttp.TCPConnector(limit=in_flight, keepalive_timeout=KEEP_ALIVE_S / 2)
        self._session = aiohttp.ClientSession(connector=connector, read_bufsize=2**20)

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _check_endpoints(self) -> None:
        problems = await asyncio.gather(*(self._check(state) for state in self._states))
        failed = [f"{state.url}: {problem}" for state, problem in zip(self._states, problems) if problem]
        if failed:
            raise EndpointError("endpoint check failed: " + "; ".join(failed))
        for part in ("engine", "accelerator"):
            first = self._states[0]
            differ = [s.url for s in self._states[1:] if s.card[part] != first.card[part]]
            if differ:
                raise EndpointError(f"endpoints serve with different {part} settings ({', '.join(differ)} differ from "
                                    f"{first.url}): one LoadGen over unlike servers measures no single system; start "
                                    "every server with the same `serve` flags on the same kind of node")

    def engine_info(self) -> dict:
        """The servers' engine settings (all equal: checked at start), as their cards report them."""
        return dict(self._states[0].card["engine"]) if self._states[0].card else {}

    def accelerator_info(self) -> dict | None:
        """One server's accelerator (all equal: checked at start): what served the queries, not this machine."""
        return dict(self._states[0].card["accelerator"]) if self._states[0].card else None

    def server_cards(self) -> dict[str, dict]:
        """Each endpoint's card by URL (empty before start)."""
        return {state.url: state.card for state in self._states if state.card}

    async def _check(self, state: _EndpointState) -> str | None:
        """None if the server is healthy, serves the model and reports its card (kept in `state`), else what is
        wrong."""
        url = state.url
        timeout = aiohttp.ClientTimeout(total=self._options.health_timeout_s,
                                        sock_connect=self._options.connect_timeout_s)
        try:
            async with self._session.get(f"{url}/health", timeout=timeout) as response:
                if response.status != 200:
                    return f"GET /health answered HTTP {response.status}: {await _excerpt(response)}"
            async with self._session.get(f"{url}/v1/models", timeout=timeout) as response:
                if response.status != 200:
                    return f"GET /v1/models answered HTTP {response.status}: {await _excerpt(response)}"
                served = [model["id"] for model in (await response.json())["data"]]
            async with self._session.get(f"{url}{SERVER_CARD_PATH}", timeout=timeout) as response:
                if response.status != 200:
                    return (f"GET {SERVER_CARD_PATH} answered HTTP {response.status}: the server does not report its "
                            "accelerator and engine settings; start it with `python -m mlperf_sut serve`")
                card = await response.json()
                state.card = {"accelerator": dict(card["accelerator"]), "engine": dict(card["engine"]),
                              "engine_preset": card.get("engine_preset")}   # absent from cards before presets
        except TimeoutError:
            return f"no answer within {self._options.health_timeout_s:g} s"
        except aiohttp.ClientConnectorError as error:
            return f"unreachable: {_describe(error)}"
        except aiohttp.ClientError as error:
            return f"request failed: {_describe(error)}"
        except (ValueError, KeyError, TypeError) as error:
            return f"not a `serve`d vLLM server (unexpected /v1/models or {SERVER_CARD_PATH} answer): {_describe(error)}"
        if self._model_name not in served:
            return (f"does not serve model {self._model_name!r} (it serves {', '.join(map(repr, served)) or 'none'}; "
                    "start it with `python -m mlperf_sut serve --model DIR`, which serves DIR's basename)")
        return None

    async def _issue(self, queries: Sequence[Query]) -> None:
        for query in queries:
            task = asyncio.create_task(self._run(query))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, query: Query) -> None:
        async with self._slots:
            if self._failure is not None:
                return
            state = self._pick()
            state.outstanding += 1
            try:
                tokens = await self._generate(state.url, query)
                self._reporter.complete(query, tokens, endpoint=state.url)
            except EndpointError as error:
                self._fail(error)
            except aiohttp.ConnectionTimeoutError:
                self._fail(EndpointError(f"endpoint {state.url}: no connection within "
                                         f"{self._options.connect_timeout_s:g} s for query {query.response_id}"))
            except TimeoutError:
                self._fail(EndpointError(f"endpoint {state.url}: no complete answer to query {query.response_id} "
                                         f"within {self._options.request_timeout_s:g} s"))
            except Exception as error:  # noqa: BLE001 - connection reset, bad JSON, reporter error: all end the run
                self._fail(EndpointError(f"endpoint {state.url}: query {query.response_id} failed: "
                                         f"{_describe(error)}"))
            finally:
                state.outstanding -= 1

    def _pick(self) -> _EndpointState:
        """Least outstanding requests; ties go round robin so equal servers share the work evenly."""
        count = len(self._states)
        index = min(((self._next + i) % count for i in range(count)), key=lambda i: self._states[i].outstanding)
        self._next = (index + 1) % count
        return self._states[index]

    async def _generate(self, url: str, query: Query) -> list[int]:
        """Stream one completion, report the first token on arrival, return every output id."""
        generation = self._generation
        payload = {
            "model": self._model_name, "prompt": list(query.prompt_token_ids), "stream": True,
            "return_token_ids": True, "stream_options": {"include_usage": True},
            "max_tokens": generation.max_tokens, "min_tokens": generation.min_tokens,
            "temperature": generation.temperature, "top_k": generation.top_k, "seed": generation.seed,
        }
        timeout = aiohttp.ClientTimeout(total=self._options.request_timeout_s,
                                        sock_connect=self._options.connect_timeout_s)
        where = f"endpoint {url}, query {query.response_id}"
        tokens: list[int] = []
        finished = False
        counted: int | None = None
        async with self._session.post(f"{url}/v1/completions", json=payload, timeout=timeout) as response:
            if response.status != 200:
                raise EndpointError(f"{where}: POST /v1/completions answered HTTP {response.status}: "
                                    f"{await _excerpt(response)}")
            async for line in response.content:
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    raise EndpointError(f"{where}: the server reported an error mid-stream: {chunk['error']}")
                for choice in chunk["choices"]:
                    prompt = choice.get("prompt_token_ids")
                    if prompt is not None and tuple(prompt) != query.prompt_token_ids:
                        raise EndpointError(f"{where}: the server changed the prompt's token ids "
                                            f"({len(query.prompt_token_ids)} sent, {len(prompt)} used)")
                    delta = choice.get("token_ids")
                    if delta is None:
                        raise EndpointError(f"{where}: no token_ids in the stream; the server ignores "
                                            "return_token_ids (vLLM too old?)")
                    if delta and not tokens and self._report_first_token:
                        self._reporter.first_token(query, delta[0])
                    tokens.extend(delta)
                    finished = finished or choice.get("finish_reason") is not None
                if chunk.get("usage"):
                    counted = chunk["usage"]["completion_tokens"]
            else:
                raise EndpointError(f"{where}: the stream ended without [DONE] (the server closed the connection)")
        if not finished or counted != len(tokens):
            raise EndpointError(f"{where}: incomplete stream ({len(tokens)} token ids received, the server counted "
                                f"{counted}, finished: {finished})")
        return tokens

    def _fail(self, error: BaseException) -> None:
        """Report the first failure once and cancel everything else in flight: after fail() the harness ends
        LoadGen's test, so no further completion may reach it."""
        if self._failure is not None:
            return
        self._failure = error
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self._reporter.fail(error)


def _allow_open_files(needed: int) -> None:
    """Each request in flight holds a socket; a soft limit of 1024 open files (a common default) would fail requests
    with EMFILE in the middle of a run, so raise it up to the hard limit now or say why the run cannot go on."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RuntimeError(f"http backend: {needed} open files needed for the requests in flight, but the hard limit "
                         f"is {hard} (ulimit -Hn): raise it or use fewer endpoints")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _base_url(url: str) -> str:
    """`http://HOST:PORT` without a trailing slash; anything else is a usage error named by the flag."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as error:
        raise InputError(f"--endpoint {url!r}: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
        raise InputError(f"--endpoint {url!r}: expected [NODE=]http://HOST:PORT, the server's base URL without /v1")
    return f"{parts.scheme}://{parts.netloc}"


async def _excerpt(response: aiohttp.ClientResponse) -> str:
    return (await response.text(errors="replace"))[:_BODY_EXCERPT].strip() or "(empty body)"


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
