"""No stale result passes as a new one: the pipeline fails a result.json of another run (its run_id, or a SUT process
started before this run was planned), and a rerun killed into the folder of a completed run reports no VALID.

Before: a completed run, then a rerun into the same folder SIGKILLed after 25 s, and `python -m include report`
exited 0 with "verdict: VALID" from the first run's result.json and logs."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from include import pipeline
from tests.conftest import REPO, _sut_python
from tests.dags.conftest import deploy_env  # noqa: F401 - the deployment the plan test plans for

# A real completed run (one H200, Server) as a run of our layout.
REFERENCE_RUN = REPO / "reference" / "h200x2" / "h200x2-http" / "single" / "h200-0" / "Server" / "performance"
STARTED = "2026-11-29T17:46:34.338703+00:00"        # its timing.start_utc (it predates result.json's process clock)


def _plan_of(tmp_path: Path, run_id: str, planned_utc: str | None, result_run_id: str | None) -> dict:
    out = tmp_path / "single" / "h200-0" / "Server" / "performance"
    shutil.copytree(REFERENCE_RUN, out)
    result = json.loads((out / "result.json").read_text())
    result["run_id"] = result_run_id
    (out / "result.json").write_text(json.dumps(result))
    return {"run_id": run_id, "planned_utc": planned_utc,
            "runs": [{"branch": "single", "tests": [{"output_dir": str(out), "compliance_test": None}]}]}


@pytest.mark.parametrize("result_run_id, planned_utc", [
    (None, "2026-12-01T00:00:00+00:00"),           # no run_id: an older result or another harness's, read as before
    ("manual__1", "2026-11-29T17:46:00+00:00"),    # this run's, its process started after the plan
    ("manual__1", "2026-11-29T17:47:00+00:00"),    # ... 26 s "before" it: within the clocks' slack
    ("manual__1", None),                           # a plan made before plans were timed
])
def test_a_result_of_this_run_is_read(tmp_path, result_run_id, planned_utc):
    [record] = pipeline.parse_plan(_plan_of(tmp_path, "manual__1", planned_utc, result_run_id))
    assert (record.status, record.error) == ("completed", None)
    assert record.valid


def test_a_result_of_another_run_is_failed_as_stale(tmp_path):
    [record] = pipeline.parse_plan(_plan_of(tmp_path, "manual__2", "2026-11-29T17:40:00+00:00", "manual__1"))
    assert record.status == "failed" and not record.valid
    assert record.error == ("stale result from an earlier run: result.json says run manual__1 started "
                            f"{STARTED}, this is run manual__2 planned at 2026-11-29T17:40:00+00:00")
    assert record.result is None and record.loadgen is None     # nothing of the earlier run is reported as this one


def test_a_result_of_the_same_run_id_made_before_the_plan_is_failed_as_stale(tmp_path):
    """A cleared DAG run plans again under its run id: what its first attempt wrote is not this attempt's."""
    [record] = pipeline.parse_plan(_plan_of(tmp_path, "manual__1", "2026-11-29T18:30:00+00:00", "manual__1"))
    assert record.status == "failed"
    assert record.error.startswith("stale result from an earlier run: result.json says run manual__1 started ")


def test_an_earlier_runs_files_set_aside_are_never_a_run(tmp_path):
    """The SUT moves them to <scenario>/.earlier/: neither our layout nor the search of other folders takes them."""
    from include.results import run_artifacts

    for root in (tmp_path / "ours" / "single" / "local" / "Offline", tmp_path / "theirs" / "Offline"):
        shutil.copytree(REFERENCE_RUN, root / ".earlier" / "performance-20261206T210505.735388Z")
        shutil.copytree(REFERENCE_RUN, root / "performance")
        assert run_artifacts.discover_runs(root.parents[2] if "ours" in str(root) else root.parent) == [
            ("single", root / "performance")]


def test_the_plan_records_when_it_was_made_and_gives_every_sut_its_run_id(deploy_env):
    from include import deployment
    from include.planning import plan

    dep = deployment.load()
    made = plan.make_plan({name: p.value for name, p in plan.trigger_params(dep).items()}, dep, "manual__7")
    assert abs(pipeline._as_datetime(made.planned_utc).timestamp() - time.time()) < 60
    for run in made.runs:
        assert run.arguments[run.arguments.index("--run-id") + 1] == "manual__7"


def _sut(out: Path, log: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONPATH": str(REPO / "sut_image")}
    command = [str(_sut_python()), "-m", "mlperf_sut", "run", "--scenario", "Offline", "--mode", "performance",
               "--enforce-eager", "--model", str(REPO / ".cache" / "tiny-llama"),
               "--dataset", str(REPO / ".cache" / "tiny-cnn" / "cnn_eval.json"), "--total-sample-count", "4",
               "--override", "min_duration=0", "--output-dir", str(out), *extra]
    with open(log, "w") as sink:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)


@pytest.mark.slow
def test_a_killed_rerun_into_a_completed_runs_folder_reports_no_valid(tiny_model_dir, tiny_dataset, tmp_path):
    root = tmp_path / "run"
    out = root / "single" / "local" / "Offline" / "performance"
    first = _sut(out, tmp_path / "first.log", "--override", "min_query_count=4")
    assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()[-3000:]
    assert pipeline.parse_folder(root)[0].valid

    rerun = _sut(out, tmp_path / "rerun.log", "--override", "min_query_count=20000")
    try:
        deadline = time.monotonic() + 120
        while "Loading safetensors" not in (tmp_path / "rerun.log").read_text():    # the engine has started
            assert rerun.poll() is None and time.monotonic() < deadline, (tmp_path / "rerun.log").read_text()[-3000:]
            time.sleep(0.2)
    finally:
        os.killpg(rerun.pid, signal.SIGKILL)
        rerun.wait()
    [record] = pipeline.parse_folder(root)
    assert record.status in ("missing", "failed") and not record.valid, record
    report = subprocess.run([sys.executable, "-m", "include", "report", str(root), "--out", str(tmp_path / "report")],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert report.returncode != 0 and "verdict: VALID" not in report.stdout, report.stdout + report.stderr
