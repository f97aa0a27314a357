"""The whole DAG with `airflow dags test`, local runner, two simulated nodes, real vLLM (CPU) and LoadGen.

Slow (each vLLM engine start on a CPU is ~15-20 s): needs the SUT venv and the tiny model (`make tiny`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dags.conftest import REPO

pytestmark = pytest.mark.slow

SUT_PYTHON = next((p for p in (REPO / ".venv-sut/bin/python", Path("/tmp/venv-sut/bin/python")) if p.exists()), None)
TINY = REPO / ".cache/tiny-llama/config.json"
LOGICAL_DATE = "2026-11-29T02:00:00+00:00"
LOADGEN_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json", "result.json")

# Skipped only outside CI: there `make test` builds both, so a missing one must fail, not skip.
needs_sut = pytest.mark.skipif((SUT_PYTHON is None or not TINY.exists()) and not os.environ.get("CI"),
                               reason="needs the SUT venv and `make tiny`")


def demo(home: Path, *args: str, conf: dict) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "include.apps.demo", "--airflow-home", str(home / "airflow"),
           "--artifacts", str(home / "artifacts"), "--sut-python", str(SUT_PYTHON), "--logical-date", LOGICAL_DATE,
           "--conf", json.dumps(conf), "--no-reference", *args]   # the history holds this DAG's runs only
    env = {**os.environ, "MLPERF_RETRY_DELAY_S": "1"}
    env.pop("MLPERF_HISTORY_URL", None)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    (home / f"demo-{len(list(home.glob('demo-*.log')))}.log").write_text(proc.stdout + proc.stderr)
    return proc


def only_run_dir(home: Path) -> Path:
    plans = list((home / "artifacts").glob("*/plan.json"))
    assert len(plans) == 1, plans
    return plans[0].parent


def history(home: Path):
    from include.history import HistoryStore

    store = HistoryStore(f"sqlite:///{home / 'artifacts' / 'history.sqlite'}", readonly=True)
    try:
        return store.runs(), store.results()
    finally:
        store.dispose()


def leftover_sut_processes(home: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "mlperf_sut" in line and str(home) in line]


@needs_sut
def test_two_nodes_end_to_end_then_the_same_run_id_again(tmp_path):
    conf = {"scenarios": ["Offline"], "mode": "both", "accuracy_scenarios": ["Offline"],
            "distributed": "coordinated", "distributed_scenarios": ["Offline"]}
    proc = demo(tmp_path, conf=conf)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    run_dir = only_run_dir(tmp_path)
    run_id = json.loads((run_dir / "plan.json").read_text())["run_id"]
    expected = [("single", "local-0", "performance"), ("single", "local-0", "accuracy"),
                ("single", "local-1", "performance"), ("single", "local-1", "accuracy"),
                ("distributed", "coordinated", "performance")]
    for branch, label, mode in expected:
        out = run_dir / branch / label / "Offline" / mode
        missing = [f for f in LOADGEN_FILES if not (out / f).is_file()]
        assert not missing, f"{out}: missing {missing}"
        assert "No errors encountered" in (out / "mlperf_log_summary.txt").read_text(), out
        assert json.loads((out / "result.json").read_text())["run_id"] == run_id, out     # the plan's --run-id
    report = run_dir / "report"
    assert (report / "report.html").is_file() and (report / "report.md").is_file()
    assert list(report.glob("*.png")), "no charts"
    text = (report / "report.md").read_text()
    assert "not MLPerf-compliant" in text or "NOT MLPerf-compliant" in text
    assert str(report / "report.html") in proc.stdout      # the demo prints the paths
    runs, results = history(tmp_path)
    assert [r.run_id for r in runs] == [run_id]
    assert len(results) == 5
    assert not leftover_sut_processes(tmp_path)
    assert not (run_dir / "distributed" / "servers.json").exists(), "teardown did not stop the servers"

    # The analysis and history tasks of the same DAG run id again (a retry, a cleared task): rows replaced, never
    # duplicated; the history is written once per run, with the verdict the analysis computed.
    from include.apps.demo import demo_env

    env = demo_env(airflow_home=tmp_path / "airflow", artifacts=tmp_path / "artifacts", nodes="local-0,local-1",
                   sut_python=str(SUT_PYTHON))
    airflow = Path(sys.executable).with_name("airflow")
    for task_id in ("analyse", "record_history"):
        rerun = subprocess.run([str(airflow), "tasks", "test", "mlperf_llama31_8b", task_id, run_id], env=env,
                               cwd=REPO, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    runs, results = history(tmp_path)
    assert len(runs) == 1 and len(results) == 5

    # benchmarks/h200_reference.py and h200x2_reference.py take their published figures from folders like this one
    # (the plan.json of a DAG run): they find it, with the efficiency the DAG's own report computed, and keep it out
    # of the H200 headline (this is a CPU).
    sys.path.insert(0, str(REPO / "benchmarks"))
    import h200_reference
    import h200x2_reference

    eff = next(s["efficiency"] for s in json.loads((report / "analysis.json").read_text())["scaling"]
               if s["scenario"] == "Offline")
    one = h200_reference.dag_runs(tmp_path / "artifacts")
    assert [r.run_id for r in one] == [run_id] and one[0].offline_tok_s > 0 and "H200" not in one[0].card
    assert h200_reference.dag_figures(one)["dag_run"] is None
    # the embedded profile's tests are shortened (min_duration 0, a sample subset): LoadGen-VALID at its own
    # settings, yet never a headline, not even from an H200
    assert not one[0].full_length
    assert h200_reference.dag_figures([dataclasses.replace(one[0], card="NVIDIA H200")])["dag_run"] is None
    full = dataclasses.replace(one[0], card="NVIDIA H200", full_length=True)
    assert h200_reference.dag_figures([full])["dag_offline_tok_s"] == one[0].offline_tok_s
    two = h200x2_reference.dag_x2_runs(tmp_path / "artifacts")
    assert [(r.run_id, r.mode, r.offline_eff, r.full_length) for r in two] == [(run_id, "coordinated", eff, False)]
    assert set(h200x2_reference.dag_x2_figures(two, None).values()) == {None}
    shortened_on_h200 = [dataclasses.replace(two[0], card="NVIDIA H200")]
    assert set(h200x2_reference.dag_x2_figures(shortened_on_h200, None).values()) == {None}
    on_h200 = [dataclasses.replace(two[0], card="NVIDIA H200", full_length=True)]
    assert h200x2_reference.dag_x2_figures(on_h200, None) == {
        "dag_x2_run": run_id, "dag_x2_coordinated_eff": round(eff, 4), "dag_x2_sharded_eff": None,
        "dag_x2_server_qps_ratio": None}


@needs_sut
def test_a_failing_node_still_gets_a_report_and_the_run_fails(tmp_path):
    conf = {"scenarios": ["Offline"], "mode": "performance", "distributed": "off",
            "node_overrides": {"local-1": {"model_path": str(tmp_path / "no-such-model")}}}
    proc = demo(tmp_path, conf=conf)
    assert proc.returncode != 0, "the DAG run must fail when a node fails"
    assert "DAG run" in proc.stdout and "FAILED" in proc.stdout
    run_dir = only_run_dir(tmp_path)
    assert (run_dir / "single/local-0/Offline/performance/result.json").is_file()
    report = (run_dir / "report" / "report.md").read_text()
    assert "local-1" in report and ("FAILED" in report.upper() or "MISSING" in report.upper())
    runs, results = history(tmp_path)
    assert runs[0].status in ("partial", "failed")
    by_node = {r.node: r.status for r in results}
    assert by_node["local-0"] == "completed" and by_node["local-1"] != "completed"
    assert not leftover_sut_processes(tmp_path)


@needs_sut
def test_a_run_the_history_cannot_record_ends_red_and_says_so(tmp_path):
    """A corrupt history database (pages overwritten with random bytes, as a disk fault leaves it): the record step
    fails, and the DAG run must not end green with the run missing from the history and the page."""
    from include.history import HistoryStore

    db = tmp_path / "artifacts" / "history.sqlite"
    db.parent.mkdir(parents=True)
    store = HistoryStore(f"sqlite:///{db}")
    store.upgrade()
    store.dispose()
    data = bytearray(db.read_bytes())
    data[4096:] = os.urandom(len(data) - 4096)
    db.write_bytes(bytes(data))
    conf = {"scenarios": ["Offline"], "mode": "performance", "distributed": "off", "total_sample_count": 4,
            "user_conf_overrides": {"min_duration": 0, "min_query_count": 4}}
    proc = demo(tmp_path, "--nodes", "local-0", conf=conf)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "FAILED" in proc.stdout
    # Airflow's own output (dags-test.log: the demo prints one line per task) and the task logs
    logs = "\n".join(p.read_text(errors="replace") for p in (tmp_path / "airflow").rglob("*.log"))
    logs += proc.stdout + proc.stderr
    assert "NOT recorded: the record_history task failed" in logs          # the notification says it
    assert "the run is not recorded" in logs                                # and the verdict fails on it
    assert (only_run_dir(tmp_path) / "report" / "report.md").is_file()      # the report is still written
