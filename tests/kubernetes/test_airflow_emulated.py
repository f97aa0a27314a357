"""The runner inside real Airflow: `airflow dags test` (task runner, retries, setup/teardown) against the emulated
cluster. A small DAG of the same shape as the benchmark DAG's kubernetes parts: two single-node SUT pods (one fails
once and is retried), and the coordinated branch (setup starts the vLLM servers, the driver pod fails, the teardown
still removes the servers).
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.kubernetes.context import NAMESPACE, NODES, REPO, SUT_IMAGE

pytestmark = pytest.mark.slow

DAG_ID = "k8s_runner_emulated"
DAG_FILE = textwrap.dedent(f'''
    from datetime import datetime, timedelta

    from airflow.sdk import DAG, setup, task, teardown

    from include.runners.kubernetes import create_vllm_servers, delete_vllm_servers, sut_pod

    FAST = dict(startup_check_interval_seconds=0.2, base_container_status_polling_interval=0.2)

    @setup
    @task
    def start_servers(run_id=None):
        return create_vllm_servers(run_id, {NODES!r}, "{SUT_IMAGE}", [], "/models/llama", ready_timeout_s=60,
                                   poll_interval_s=0.2)

    @teardown
    @task
    def stop_servers(run_id=None):
        return delete_vllm_servers(run_id, {NODES!r})

    with DAG("{DAG_ID}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        ok = sut_pod(task_id="single_ok", node="{NODES[0]}", branch="single", retries=0, **FAST,
                     arguments=["run", "--output-dir", "/artifacts/{{{{ run_id }}}}/single/{NODES[0]}"])
        flaky = sut_pod(task_id="single_flaky", node="{NODES[1]}", branch="single", retries=1,
                        retry_delay=timedelta(seconds=1), **FAST,
                        arguments=["run", "--fake-fail-once", "/artifacts/flaky-marker",
                                   "--output-dir", "/artifacts/{{{{ run_id }}}}/single/{NODES[1]}"])
        servers = start_servers()
        driver = sut_pod(task_id="coordinated", node=None, gpus=0, branch="distributed", retries=0, **FAST,
                         arguments=["run", "--fake-exit-code", "4"])
        servers >> driver >> stop_servers()
''')


def _airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "airflow", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def test_dag_with_sut_pods_and_servers_under_the_task_runner(cluster, tmp_path: Path) -> None:
    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    (dags / "k8s_runner_emulated.py").write_text(DAG_FILE)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
           "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
           "AIRFLOW_CONN_KUBERNETES_DEFAULT": cluster.connection_uri, "PYTHONPATH": str(REPO)}
    migrate = _airflow(env, "db", "migrate")
    assert migrate.returncode == 0, migrate.stderr[-4000:]
    run = _airflow(env, "dags", "test", DAG_ID, "2026-11-29T02:00:00+00:00")
    log = run.stdout + run.stderr
    (tmp_path / "dags-test.log").write_text(log)

    with sqlite3.connect(home / "airflow.db") as db:
        states = {t: (s, n) for t, s, n in db.execute("SELECT task_id, state, try_number FROM task_instance")}
        (dag_state,) = db.execute("SELECT state FROM dag_run").fetchone()
    assert states["single_ok"] == ("success", 1), log[-6000:]
    assert states["single_flaky"] == ("success", 2), log[-6000:]     # failed once, retried, one pod at a time
    assert states["start_servers"][0] == "success", log[-6000:]
    assert states["coordinated"][0] == "failed", log[-6000:]
    assert states["stop_servers"][0] == "success", log[-6000:]       # the teardown ran after the failure
    assert dag_state == "failed"
    assert "engine died, exiting with 4" in log                       # the driver's termination message

    assert cluster.live("pods", NAMESPACE) == [] and cluster.live("services", NAMESPACE) == []
    peak = cluster.call(lambda: dict(cluster.emulator.max_live_pods))
    assert peak["single_flaky"] == 1 and peak["single_ok"] == 1
