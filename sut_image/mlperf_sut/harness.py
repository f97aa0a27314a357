"""The LoadGen side of the SUT: one explicit, symmetric lifecycle and the Reporter that backends call back.

ConstructQSL -> ConstructSUT -> StartTestWithLogSettings -> DestroySUT -> DestroyQSL, whatever happens in between.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import mlperf_loadgen as lg
import numpy as np

from mlperf_sut.backends.base import Backend, Query
from mlperf_sut.generation import TOKEN_DTYPE
from mlperf_sut.progress import Progress
from mlperf_sut.qsl import QuerySampleLibrary
from mlperf_sut.settings import AUDIT_CONFIG


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What the timed part did: wall clock (UTC) around StartTest and what the SUT returned to LoadGen."""

    start_utc: datetime
    end_utc: datetime
    queries_issued: int
    samples_completed: int
    output_tokens: int
    per_endpoint: dict[str, tuple[int, int]]

    @property
    def duration_s(self) -> float:
        return (self.end_utc - self.start_utc).total_seconds()


class BackendFailed(RuntimeError):
    """The backend reported an error; LoadGen's logs of this run are partial."""


class Harness:
    """Implements the Reporter protocol with LoadGen's FirstTokenComplete / QuerySamplesComplete.

    LoadGen cannot be aborted: after a backend failure it keeps scheduling Server queries until min_duration (600 s
    in MLPerf) has passed, although each is answered empty at once. So when a failure has been reported and LoadGen
    has not returned within `abort_grace_s`, `on_abort(error)` is called from a watchdog thread; the CLI records the
    failure and exits there, so a dead endpoint ends a run in seconds rather than minutes.
    """

    def __init__(self, qsl: QuerySampleLibrary, backend: Backend, progress: Progress,
                 on_abort: Callable[[BaseException], None] | None = None, abort_grace_s: float = 15.0) -> None:
        self._qsl = qsl
        self._backend = backend
        self._progress = progress
        self._on_abort = on_abort
        self._abort_grace_s = abort_grace_s
        self._lock = threading.Lock()
        self._outstanding: dict[int, Query] = {}
        self._error: BaseException | None = None
        self._failed = threading.Event()
        self._per_endpoint: dict[str, tuple[int, int]] = {}

    # -- Reporter ---------------------------------------------------------------------------------------------
    def first_token(self, query: Query, token_id: int) -> None:
        data = np.array([token_id], dtype=TOKEN_DTYPE)
        lg.FirstTokenComplete([lg.QuerySampleResponse(query.response_id, data.ctypes.data, data.nbytes)])

    def complete(self, query: Query, token_ids: Sequence[int], endpoint: str | None = None) -> None:
        with self._lock:
            if self._outstanding.pop(query.response_id, None) is None:
                return  # already completed by fail()
        data = np.asarray(token_ids, dtype=TOKEN_DTYPE)
        # LoadGen copies the bytes during the call (accuracy mode), so `data` only has to live until it returns.
        lg.QuerySamplesComplete([lg.QuerySampleResponse(query.response_id, data.ctypes.data, data.nbytes, len(data))])
        self._progress.add_completed(len(data))
        if endpoint is not None:
            with self._lock:
                samples, tokens = self._per_endpoint.get(endpoint, (0, 0))
                self._per_endpoint[endpoint] = (samples + 1, tokens + len(data))

    def generated(self, count: int) -> None:
        self._progress.add_generated(count)

    def fail(self, error: BaseException) -> None:
        """Remember the first error and answer every open query empty, so LoadGen's test ends instead of hanging."""
        with self._lock:
            if self._error is None:
                self._error = error
            abandoned = list(self._outstanding.values())
            self._outstanding.clear()
        self._failed.set()
        if abandoned:
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.response_id, 0, 0, 0) for q in abandoned])

    # -- LoadGen callbacks ------------------------------------------------------------------------------------
    def _issue(self, samples) -> None:
        queries = [Query(s.id, s.index, self._qsl.prompts[s.index]) for s in samples]
        with self._lock:
            failed = self._error is not None
            if not failed:
                self._outstanding.update((q.response_id, q) for q in queries)
        if failed:
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.response_id, 0, 0, 0) for q in queries])
            return
        self._progress.add_issued(len(queries))
        self._backend.submit(queries)

    def _flush(self) -> None:
        self._backend.flush()

    def _watch(self, finished: threading.Event) -> None:
        """Call on_abort if LoadGen is still running `abort_grace_s` after a reported failure."""
        while not finished.is_set():
            if self._failed.wait(1.0):
                if not finished.wait(self._abort_grace_s):
                    self._on_abort(self._error)
                return

    # -- the run ----------------------------------------------------------------------------------------------
    def run(self, settings: lg.TestSettings, output_dir: Path, audit_config: Path | None = None) -> RunOutcome:
        """Run one LoadGen test with a started backend; raises BackendFailed if the backend reported an error.

        LoadGen applies an audit config over the settings when the file exists (a compliance test writes
        <output_dir>/audit.config); its path is always given, so an audit.config left in the working directory can
        never change a run unseen."""
        audit_config = audit_config or output_dir / AUDIT_CONFIG
        log_settings = lg.LogSettings()
        log_settings.log_output.outdir = str(output_dir)
        log_settings.log_output.copy_summary_to_stdout = True
        log_settings.enable_trace = False
        finished = threading.Event()
        if self._on_abort is not None:
            threading.Thread(target=self._watch, args=(finished,), name="harness-watchdog", daemon=True).start()
        qsl_handle = self._qsl.construct()
        try:
            sut_handle = lg.ConstructSUT(self._issue, self._flush)
            try:
                self._progress.start()
                start = datetime.now(timezone.utc)
                lg.StartTestWithLogSettings(sut_handle, qsl_handle, settings, log_settings, str(audit_config))
                end = datetime.now(timezone.utc)
            finally:
                self._progress.stop()
                lg.DestroySUT(sut_handle)
        finally:
            lg.DestroyQSL(qsl_handle)
            finished.set()
        if self._error is not None:
            raise BackendFailed(f"backend {self._backend.name} failed: {self._error!r}") from self._error
        return RunOutcome(start, end, self._progress.issued, self._progress.completed, self._progress.output_tokens,
                          dict(self._per_endpoint))
