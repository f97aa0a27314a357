"""GPU time budget: how much of the time the SUT processes held their GPU went to LoadGen's timed tests.

Each SUT process (one engine, backend "vllm") stamps its clock into every result.json it writes (`process`: start,
engine ready, stopped after the engine's shutdown; sut_image/mlperf_sut/process_clock.py). Its wall time, start to
stop, splits into start-up (start -> engine ready: imports, weights, CUDA graphs, warm-up), timed (the sum of its
LoadGen tests' durations), teardown (the last test's end -> stop) and other (the rest: between tests, writing logs).
The tests are those the clock lists (`process.tests`, compliance tests included, whether or not the pipeline reads
their folders); results written before the SUT listed them fall back to the runs that carry the process's id.
The share is timed / wall; the run's total is the sum of timed over the sum of wall of the processes whose clock is
complete. A process whose clock is incomplete (a result written before the SUT recorded it, or a process killed
before it stopped) is listed as unknown and left out of the total: it is neither 0% nor 100%.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from include.analysis.scaling import parse_utc, scenario_key, timed_window
from include.analysis.verdict import min_duration_ms
from include.mlperf_rules import COMPLIANCE_TESTS, MIN_DURATION_S
from include.records import RunRecord
from include.results.sut_result import LoadGenTest

# Issue 17 part 6: a nightly plan on one GPU should spend at least this share of its GPU time in LoadGen's timed tests.
GOAL_SHARE = 0.80
IN_PROCESS_BACKEND = "vllm"        # the SUT backend whose process holds the GPU (an engine in the process)
# What no result.json can tell, whatever the runs: said in every budget.
OUTSIDE_PROCESSES = ("time outside the SUT processes (pod scheduling, image pull, a GPU idle between two pods) is "
                     "not measured")


@dataclass(frozen=True)
class ProcessBudget:
    """One SUT process's wall time split into start-up, LoadGen's timed tests, other and teardown (seconds)."""

    process_id: str | None         # None: results written before the SUT recorded its clock (one row per run)
    node: str
    branch: str
    tests: list[str]               # "Offline performance", "Offline accuracy", "Offline TEST06", in run order
    startup_s: float | None        # process start -> engine ready
    timed_s: float | None          # sum of its tests' LoadGen durations
    other_s: float | None          # wall - start-up - timed - teardown
    teardown_s: float | None       # last test's end -> stopped (after the engine's shutdown)
    wall_s: float | None           # process start -> stopped
    share: float | None            # timed / wall; None when either is unknown
    unknown: str | None            # why part of the clock is unknown; None when it is complete

    @property
    def complete(self) -> bool:
        return self.share is not None


@dataclass(frozen=True)
class GpuTimeBudget:
    """The GPU time budget of one pipeline run: per process, and the total over processes with a complete clock."""

    processes: list[ProcessBudget]
    timed_s: float | None          # sum over the complete processes; None when none is complete
    wall_s: float | None
    share: float | None            # timed_s / wall_s: None ("unknown") when no process has a complete clock
    goal: float
    not_covered: list[str]         # GPU time this budget cannot see, and why
    # performance tests shorter than MLPerf's min_duration: start-up weighs more in them, so the goal (set for a
    # nightly plan's full-length tests) is not judged
    shortened: list[str] = dataclasses.field(default_factory=list)

    @property
    def meets_goal(self) -> bool | None:
        return None if self.share is None or self.shortened else self.share >= self.goal

    @property
    def unknown_processes(self) -> int:
        return sum(1 for p in self.processes if not p.complete)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GpuTimeBudget":
        return cls(**{**data, "processes": [ProcessBudget(**p) for p in data["processes"]]})


def _test_name(record: RunRecord) -> str:
    folder = Path(record.run_dir).name
    return f"{record.scenario} {folder if folder in COMPLIANCE_TESTS else record.mode}"


def _duration(record: RunRecord) -> float | None:
    return timed_window(record)[2]


def _end_of(start: datetime | None, end: datetime | None, duration: float | None) -> datetime | None:
    if end is None and start is not None and duration is not None:
        return start + timedelta(seconds=duration)
    return end


def _end(record: RunRecord) -> datetime | None:
    return _end_of(*timed_window(record))


def _listed_tests(tests: list[RunRecord]) -> list[LoadGenTest]:
    """The tests the process's clock lists: each result.json lists those up to its write, the ones rewritten at the
    stop all of them, so the longest list is the latest; empty when every result.json predates the list."""
    return max((r.sut.process.tests for r in tests if r.sut.process), key=len, default=[])


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def _clock_field(tests: list[RunRecord], name: str) -> str | None:
    """One field of the process's clock: every result.json of the process carries it, the later ones (rewritten at
    the stop) possibly more than the earlier; the first value given is taken."""
    return next((getattr(r.sut.process, name) for r in tests if r.sut.process and getattr(r.sut.process, name)), None)


def _process(process_id: str | None, tests: list[RunRecord]) -> ProcessBudget:
    tests = sorted(tests, key=lambda r: (r.sut.timing.start_utc or "", scenario_key(r.scenario), r.run_dir))
    if listed := _listed_tests(tests):
        names = [f"{t.scenario} {t.name}" for t in listed]
        durations = [t.duration_s for t in listed]
        last = listed[-1]
        last_end = _end_of(parse_utc(last.start_utc), parse_utc(last.end_utc), last.duration_s)
    else:
        names = [_test_name(r) for r in tests]
        durations = [_duration(r) for r in tests]
        ends = [_end(r) for r in tests]
        last_end = max(ends) if ends and all(ends) else None
    timed = sum(durations) if all(d is not None for d in durations) else None
    first = tests[0]
    reasons = []
    start = ready = stopped = None
    if process_id is None:
        reasons.append("no process clock in result.json (written before the SUT recorded it)")
    else:
        start = parse_utc(_clock_field(tests, "start_utc"))
        ready = parse_utc(_clock_field(tests, "engine_ready_utc"))
        stopped = parse_utc(_clock_field(tests, "stopped_utc"))
        if stopped is None:
            reasons.append("not stopped cleanly (stopped_utc null: killed, or still running)")
        if ready is None:
            reasons.append("the engine never reported ready")
    if timed is None:
        reasons.append("no timed duration for " + ", ".join(n for n, d in zip(names, durations) if d is None))
    startup = _seconds(start, ready)
    teardown = _seconds(last_end, stopped)
    wall = _seconds(start, stopped)
    parts = [startup, timed, teardown]
    other = wall - sum(parts) if wall is not None and all(p is not None for p in parts) else None
    if other is not None and -0.5 < other < 0:     # clocks read to the millisecond, durations rounded: not time
        other = 0.0
    share = timed / wall if timed is not None and wall else None
    return ProcessBudget(process_id=process_id, node=first.sut.node, branch=first.branch, tests=names,
                         startup_s=startup, timed_s=timed, other_s=other, teardown_s=teardown, wall_s=wall,
                         share=share, unknown="; ".join(reasons) or None)


def _names(records: list[RunRecord]) -> str:
    return ", ".join(f"{r.branch} {r.node} {_test_name(r)}" for r in records)


def gpu_time_budget(records: list[RunRecord], goal: float = GOAL_SHARE) -> GpuTimeBudget:
    """The budget over every in-process SUT run of `records`: a process's tests as its clock lists them (compliance
    tests included, which the pipeline's records leave out), else the runs of `records` that carry its id."""
    in_process = [r for r in records if r.sut is not None and r.sut.backend == IN_PROCESS_BACKEND]
    groups: dict[str, list[RunRecord]] = {}
    for r in in_process:   # a run without a clock is a process of its own: it cannot be joined to any other
        groups.setdefault(r.sut.process.id if r.sut.process else f"no clock: {r.run_dir}", []).append(r)
    processes = [_process(key if tests[0].sut.process else None, tests) for key, tests in groups.items()]
    processes.sort(key=lambda p: (p.branch != "single", p.node, p.process_id is None))
    complete = [p for p in processes if p.complete]
    timed = sum(p.timed_s for p in complete) if complete else None
    wall = sum(p.wall_s for p in complete) if complete else None
    not_covered = []
    coordinated = [r for r in records if r.sut is not None and r.sut.backend != IN_PROCESS_BACKEND]
    if coordinated:
        not_covered.append(f"coordinated runs ({_names(coordinated)}): LoadGen's driver (backend "
                           f"{coordinated[0].sut.backend}) holds no GPU, and the vLLM servers that do write no "
                           "result.json, so their GPU time is not covered")
    no_result = [r for r in records if r.sut is None]
    if no_result:
        not_covered.append(f"runs without a result.json ({_names(no_result)}): no process clock to read")
    not_covered.append(OUTSIDE_PROCESSES)
    shortened = [f"{r.node} {_test_name(r)}" for r in in_process if r.mode == "performance"
                 and (ms := min_duration_ms(r)) is not None and ms < MIN_DURATION_S * 1000]
    return GpuTimeBudget(processes=processes, timed_s=timed, wall_s=wall, share=timed / wall if wall else None,
                         goal=goal, not_covered=not_covered, shortened=shortened)
