"""The one small interface every inference backend implements.

LoadGen calls the harness from its own threads; the harness turns LoadGen's QuerySamples into `Query` objects and
hands them to a backend. A backend never talks to LoadGen itself: it reports through a `Reporter`, which the harness
implements with `FirstTokenComplete` / `QuerySamplesComplete`. That keeps LoadGen's lifecycle in one place
(harness.py) and lets tests drive a backend without LoadGen.
"""
from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Query:
    """One LoadGen query sample: the response id LoadGen gave it and the prompt's token ids."""

    response_id: int
    sample_index: int
    prompt_token_ids: tuple[int, ...]


class Reporter(Protocol):
    """What a backend calls back. All methods are thread-safe and may be called from any thread."""

    def first_token(self, query: Query, token_id: int) -> None:
        """The first generated token of `query` exists (streaming scenarios: TTFT)."""

    def complete(self, query: Query, token_ids: Sequence[int], endpoint: str | None = None) -> None:
        """`query` is finished with these output token ids (stored as int32); `endpoint` names the server used."""

    def fail(self, error: BaseException) -> None:
        """The backend cannot go on; the harness ends the run with this error and a non-zero exit."""

    def generated(self, count: int) -> None:
        """Progress only: `count` more queries finished inside the engine but are reported later (Offline's
        single LLM.generate call returns all at once; without this a long Offline run shows no progress)."""


class Backend(abc.ABC):
    """An inference engine behind LoadGen.

    Lifecycle: start(reporter) -> submit(...) any number of times (from LoadGen's threads) -> flush() -> stop().
    `submit` must not block for the length of the generation in streaming scenarios: Server, Interactive and
    SingleStream measure latency from the moment LoadGen issues a query.
    """

    name: str

    @abc.abstractmethod
    def start(self, reporter: Reporter) -> None:
        """Load the engine or check the endpoints; raise a clear error if that is impossible."""

    @abc.abstractmethod
    def submit(self, queries: Sequence[Query]) -> None:
        """Begin generating for `queries`; results arrive through the reporter."""

    def flush(self) -> None:
        """LoadGen has issued every query (Offline may use this to run its batch)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Release the engine, threads and connections. Must be safe to call after a failed start."""

    def engine_info(self) -> dict:
        """Engine settings and versions for result.json (empty where unknown)."""
        return {}

    def accelerator_info(self) -> dict | None:
        """The accelerator that served the queries, where it is not this process's own (None: this machine's)."""
        return None

    def server_cards(self) -> dict[str, dict]:
        """The http backend's servers' cards (accelerator, engine) by URL; empty for an in-process engine."""
        return {}
