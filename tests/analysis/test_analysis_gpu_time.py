"""include.analysis.gpu_time: the share of the SUT processes' GPU time inside LoadGen's timed tests, honest where
unknown."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from include.analysis import Analysis
from include.analysis.gpu_time import GOAL_SHARE, gpu_time_budget
from include.pipeline import analyse, publish_report
from tests.analysis.analysis_factory import T0, make_record


def _utc(offset_s: float) -> str:
    return (T0 + timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")


def _clock(process_id: str, start_s: float, ready_s: float, stopped_s: float | None) -> dict:
    """A result.json `process` with times in seconds from the factory's T0, without `tests` (as written before the
    SUT listed them: the budget takes the process's tests from the runs carrying its id)."""
    return {"id": process_id, "start_utc": _utc(start_s), "engine_start_utc": _utc(start_s + 5),
            "engine_ready_utc": _utc(ready_s), "stopped_utc": None if stopped_s is None else _utc(stopped_s)}


def _offline_process(stopped_s: float | None = 840.0) -> list:
    """One engine: started 90 s before T0, Offline performance 600 s at T0, accuracy 220 s from T0+610, stopped at
    T0+840 (10 s after the accuracy test's end)."""
    clock = _clock("offline-engine", -90, 0, stopped_s)
    return [make_record("gpu-a", duration_s=600.0, process=clock),
            make_record("gpu-a", mode="accuracy", start_offset_s=610.0, duration_s=220.0, process=clock)]


def _server_process() -> list:
    """A second engine on the same GPU: started at T0+840, ready 90 s later, Server 600 s, stopped 10 s after."""
    return [make_record("gpu-a", scenario="Server", start_offset_s=930.0, duration_s=600.0,
                        process=_clock("server-engine", 840, 930, 1540))]


def test_two_tests_of_one_process_share_one_start_up() -> None:
    budget = gpu_time_budget(_offline_process())
    [process] = budget.processes
    assert process.tests == ["Offline performance", "Offline accuracy"]
    assert process.startup_s == pytest.approx(90.0)
    assert process.timed_s == pytest.approx(600.0 + 220.0)
    assert process.teardown_s == pytest.approx(10.0)
    assert process.other_s == pytest.approx(10.0)          # the 10 s between the two tests
    assert process.wall_s == pytest.approx(930.0)
    assert process.share == pytest.approx(820 / 930)
    assert process.unknown is None
    assert budget.share == pytest.approx(820 / 930) and budget.meets_goal is True
    assert budget.goal == GOAL_SHARE == 0.80


def test_total_is_all_timed_over_all_wall_of_the_nightly_plan() -> None:
    budget = gpu_time_budget(_offline_process() + _server_process())
    assert [p.tests for p in budget.processes] == [["Offline performance", "Offline accuracy"], ["Server performance"]]
    assert budget.processes[1].share == pytest.approx(600 / 700)
    assert budget.timed_s == pytest.approx(1420.0) and budget.wall_s == pytest.approx(1630.0)
    assert budget.share == pytest.approx(1420 / 1630)       # 87.1%, not the mean of 88.2% and 85.7%


def test_an_old_result_without_a_process_clock_is_unknown_and_not_counted() -> None:
    old = make_record("gpu-a", scenario="Server", start_offset_s=2000.0, duration_s=600.0)
    budget = gpu_time_budget(_offline_process() + [old])
    unknown = budget.processes[-1]
    assert unknown.process_id is None and unknown.tests == ["Server performance"]
    assert unknown.timed_s == pytest.approx(600.0)          # LoadGen's duration is known, the process's wall is not
    assert (unknown.startup_s, unknown.teardown_s, unknown.wall_s, unknown.share) == (None, None, None, None)
    assert "no process clock" in unknown.unknown
    assert budget.share == pytest.approx(820 / 930) and budget.unknown_processes == 1

    only_old = gpu_time_budget([old, make_record("gpu-a", mode="accuracy")])
    assert len(only_old.processes) == 2                      # runs without a clock cannot be joined into one process
    assert only_old.share is None and only_old.meets_goal is None and only_old.timed_s is None


def test_a_killed_process_is_unknown_not_zero() -> None:
    budget = gpu_time_budget(_offline_process(stopped_s=None))
    [process] = budget.processes
    assert process.startup_s == pytest.approx(90.0) and process.timed_s == pytest.approx(820.0)
    assert (process.teardown_s, process.other_s, process.wall_s, process.share) == (None, None, None, None)
    assert "not stopped cleanly" in process.unknown
    assert budget.share is None

    killed_server = gpu_time_budget(_server_process() + [
        make_record("gpu-b", process=_clock("killed", -90, 0, None), duration_s=600.0)])
    assert killed_server.share == pytest.approx(600 / 700)   # the complete process alone


def test_coordinated_runs_are_named_as_not_covered() -> None:
    coordinated = make_record("gpu-a+gpu-b", branch="distributed", label="coordinated",
                              endpoints=[{"url": "http://gpu-a:8000", "node": "gpu-a", "samples_completed": 1500,
                                          "output_tokens": 192000}])
    budget = gpu_time_budget(_offline_process() + [coordinated])
    assert len(budget.processes) == 1
    assert any("coordinated runs (distributed gpu-a+gpu-b Offline performance)" in line
               and "backend http" in line for line in budget.not_covered)


def _listed(name: str, start_s: float, duration_s: float | None, status: str = "completed") -> dict:
    """One entry of a clock's `tests` (Offline, times in seconds from T0); no duration: failed before its end."""
    return {"name": name, "scenario": "Offline", "output_dir": f"/artifacts/run-1/single/gpu-a/Offline/{name}",
            "start_utc": _utc(start_s), "end_utc": None if duration_s is None else _utc(start_s + duration_s),
            "duration_s": duration_s, "status": status}


def _listing_process(test06_duration_s: float | None) -> list:
    """One engine ran performance (600 s at T0), accuracy (220 s from T0+610) and TEST06 (from T0+835), stopped at
    T0+950; the pipeline's records hold the first two only (they leave <scenario>/TEST06/ out)."""
    clock = {**_clock("offline-engine", -90, 0, 950),
             "tests": [_listed("performance", 0, 600.0), _listed("accuracy", 610, 220.0),
                       _listed("TEST06", 835, test06_duration_s, "completed" if test06_duration_s else "failed")]}
    performance_written = {**clock, "stopped_utc": None, "tests": clock["tests"][:1]}   # as at its own test's end
    return [make_record("gpu-a", duration_s=600.0, process=performance_written),
            make_record("gpu-a", mode="accuracy", start_offset_s=610.0, duration_s=220.0, process=clock)]


def test_a_process_counts_every_test_its_clock_lists_compliance_included(tmp_path: Path) -> None:
    """TEST06 is in no record the pipeline passes, and no folder is read from disk: the clock alone lists it."""
    budget = gpu_time_budget(_listing_process(test06_duration_s=100.0))
    [process] = budget.processes
    assert process.tests == ["Offline performance", "Offline accuracy", "Offline TEST06"]
    assert process.timed_s == pytest.approx(600.0 + 220.0 + 100.0)
    assert process.teardown_s == pytest.approx(15.0)                # TEST06's end (T0+935) -> stopped
    assert process.wall_s == pytest.approx(1040.0) and process.other_s == pytest.approx(15.0)
    assert process.unknown is None and budget.share == pytest.approx(920 / 1040)
    md = publish_report(analyse(_listing_process(100.0), run_id="listed", history_url=None),
                        tmp_path).markdown.read_text()
    assert ("| gpu-a | single | Offline performance, Offline accuracy, Offline TEST06 | 90.0 | 920.0 | 15.0 | 15.0 "
            "| 1,040.0 | 88.5% |") in md


def test_a_listed_test_without_a_duration_makes_the_process_unknown() -> None:
    budget = gpu_time_budget(_listing_process(test06_duration_s=None))
    [process] = budget.processes
    assert process.tests == ["Offline performance", "Offline accuracy", "Offline TEST06"]
    assert process.unknown == "no timed duration for Offline TEST06"
    assert (process.timed_s, process.teardown_s, process.share) == (None, None, None)
    assert budget.share is None and budget.unknown_processes == 1


def test_report_shows_the_budget_against_the_goal(tmp_path: Path) -> None:
    old = make_record("gpu-b", scenario="Server", duration_s=600.0)
    analysis = analyse(_offline_process() + _server_process() + [old], run_id="nightly", history_url=None)
    paths = publish_report(analysis, tmp_path)
    md, html = paths.markdown.read_text(), paths.html.read_text()
    line = ("GPU time budget: 87.1% of 1,630 s of GPU time inside LoadGen's timed tests (goal >= 80%: met); "
            "1 process(es) with an unknown clock not counted")
    assert f"**{line}**" in md and line.replace(">", "&gt;").replace("'", "&#39;") in html
    assert ("| gpu-a | single | Offline performance, Offline accuracy | 90.0 | 820.0 | 10.0 | 10.0 | 930.0 | 88.2% |"
            in md)
    assert "| gpu-b | single | Server performance | unknown | 600.0 | unknown | unknown | unknown | unknown |" in md
    assert "pod scheduling" in md                            # what the budget cannot see is said
    again = Analysis.from_dict(json.loads(json.dumps(analysis.to_dict())))
    assert again.gpu_time == analysis.gpu_time


def test_report_says_unknown_when_no_process_has_a_clock(tmp_path: Path) -> None:
    analysis = analyse([make_record("gpu-a")], run_id="old", history_url=None)
    md = publish_report(analysis, tmp_path).markdown.read_text()
    assert ("**GPU time budget: unknown (none of the 1 SUT process(es) has a complete clock; goal >= 80%)**"
            in md)


def test_a_shortened_test_is_measured_but_not_judged_against_the_goal(tmp_path: Path) -> None:
    """The 80% goal is for a nightly plan's full-length tests: a 60 s test weighs the same start-up against less
    timed work, so its share is shown and the goal is not judged (the demo's 16-sample runs read this way)."""
    clock = _clock("short-engine", -90, 0, 70)
    short = [make_record("gpu-a", duration_s=60.0, process=clock, loadgen_settings={"min_duration": 60000})]
    budget = gpu_time_budget(short)
    assert budget.share == pytest.approx(60 / 160) and budget.meets_goal is None
    assert budget.shortened == ["gpu-a Offline performance"]
    analysis = analyse(short, run_id="short", history_url=None)
    md = publish_report(analysis, tmp_path).markdown.read_text()
    assert ("**GPU time budget: 37.5% of 160 s of GPU time inside LoadGen's timed tests (goal >= 80%: not judged: "
            "gpu-a Offline performance shorter than MLPerf's minimum duration, where start-up weighs more)**") in md
