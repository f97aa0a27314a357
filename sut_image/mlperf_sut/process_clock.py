"""The SUT process's own clock: when it started, when its engine was ready, when it stopped.

Every result.json a process writes carries it (`process`), so the pipeline can tell how much of the time a process
held its GPU went to LoadGen's timed tests and how much to start-up (imports, weights, CUDA graphs, warm-up) and
teardown: the report's "GPU time budget". Several tests of one process (one engine) share one `id`, and the clock
lists every LoadGen test the process ran (`tests`), so the budget counts each one even where a test's own result.json
is not among what the pipeline reads.
"""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


def process_start_time() -> float:
    """When this process started (Linux: /proc's start time, so interpreter start and imports count); now elsewhere."""
    try:
        ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


@dataclass(frozen=True, slots=True)
class LoadGenTest:
    """One LoadGen test the process ran; its times are those of the test's result.json `timing` (null when the test
    failed before LoadGen's timed part ended)."""

    name: str                      # as `--also` names it: performance, accuracy, TEST06
    scenario: str                  # one process may run several (the QPS search)
    output_dir: str                # as given
    start_utc: str | None
    end_utc: str | None
    duration_s: float | None
    status: str                    # result.json's status of the test: completed | failed


@dataclass
class ProcessClock:
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    start_utc: str = field(default_factory=lambda: _utc(process_start_time()))
    engine_start_utc: str | None = None
    engine_ready_utc: str | None = None
    stopped_utc: str | None = None
    tests: list[LoadGenTest] = field(default_factory=list)

    def engine_starting(self) -> None:
        if self.engine_start_utc is None:
            self.engine_start_utc = _utc(time.time())

    def engine_ready(self) -> None:
        if self.engine_ready_utc is None:
            self.engine_ready_utc = _utc(time.time())

    def test_ended(self, name: str, scenario: str, output_dir: str, timing: dict, status: str) -> None:
        """Record a test as it ends (`timing`: the dict its result.json gets)."""
        self.tests.append(LoadGenTest(name, scenario, output_dir, timing["start_utc"], timing["end_utc"],
                                      timing["duration_s"], status))

    def stopped(self) -> None:
        self.stopped_utc = _utc(time.time())

    def to_dict(self) -> dict:
        return {"id": self.id, "start_utc": self.start_utc, "engine_start_utc": self.engine_start_utc,
                "engine_ready_utc": self.engine_ready_utc, "stopped_utc": self.stopped_utc,
                "tests": [asdict(test) for test in self.tests]}
