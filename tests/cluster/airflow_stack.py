"""A real Airflow next to the local cluster, as docker-compose.yaml runs it: api-server, scheduler (LocalExecutor:
tasks run as its child processes), dag-processor; metadata in a fresh PostgreSQL database on 127.0.0.1:5432; the
benchmark DAG with MLPERF_RUNNER=kubernetes, talking to the cluster as the `airflow` service account.

Paths: the pods mount the artifacts claim at the same path Airflow reads (the claim's local volume folder on this
machine), as production mounts one ReadWriteMany volume at /artifacts in both. The model and data set paths are the
pods' (/models, /data): Airflow never reads them, so the data set's size is given (MLPERF_DATASET_SIZE).
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx

from tests.cluster.local import NODES, REPO, LocalCluster
from tests.ui.conftest import PG_ADMIN_DSN, airflow_bin, running_api_server, stop_process_group

DAG_ID = "mlperf_llama31_8b"
ADMIN_PASSWORD = "cluster-admin-4711"


@dataclass
class AirflowOnCluster:
    api: httpx.Client
    artifacts: Path
    logs: Path

    def trigger(self, conf: dict) -> str:
        response = self.api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf})
        assert response.status_code == 200, response.text
        return response.json()["dag_run_id"]

    def wait(self, run_id: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"]
            if state in ("success", "failed"):
                return state
            assert time.monotonic() < deadline, (f"DAG run {run_id} still {state} after {timeout_s:.0f} s; "
                                                 f"tasks: {self.task_states(run_id)}; logs: {self.logs}")
            time.sleep(5)

    def task_instances(self, run_id: str) -> list[dict]:
        response = self.api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 200})
        assert response.status_code == 200, response.text
        return response.json()["task_instances"]

    def task_states(self, run_id: str) -> dict[str, str]:
        return {f"{ti['task_id']}[{ti['map_index']}]": ti["state"] for ti in self.task_instances(run_id)}

    def task_log(self, run_id: str, task_id: str, map_index: int = -1, try_number: int = 1) -> str:
        response = self.api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                                params={"map_index": map_index})
        if response.status_code != 200:
            return response.text
        return "\n".join(str(line.get("event", "")) if isinstance(line, dict) else str(line)
                         for line in response.json()["content"])


@contextlib.contextmanager
def _database() -> Iterator[str]:
    import psycopg2

    name = f"mlperf_cluster_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(PG_ADMIN_DSN)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
        finally:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """An Airflow component in its own process group (its task processes included), stopped whatever happened."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        stop_process_group(proc)


def _command(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, \
        f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-5000:]}"
    return done.stdout


def _deployment_env(cluster: LocalCluster, kubeconfig: Path, work: Path) -> dict[str, str]:
    """The benchmark's deploy-time settings (include/deployment.py) for this cluster: embedded profile, two nodes."""
    dataset = json.loads((cluster.volume_dirs["dataset"] / "cnn_eval.json").read_text())
    return {
        "MLPERF_RUNNER": "kubernetes", "MLPERF_NODES": ",".join(NODES), "MLPERF_PROFILE": "embedded",
        "MLPERF_SCHEDULE": "none", "MLPERF_ARTIFACTS_DIR": str(cluster.volume_dirs["artifacts"]),
        "MLPERF_HISTORY_URL": f"sqlite:///{work / 'history.sqlite'}",
        "MLPERF_MODEL_DIR": "/models/tiny-llama", "MLPERF_DATASET": "/data/cnn_eval.json",
        "MLPERF_DATASET_SIZE": str(len(dataset)),
        # Real pods on a busy 2-core machine: a container starts in seconds, vLLM's CPU engine in ~20-60 s.
        "MLPERF_POD_STARTUP_TIMEOUT_S": "300", "MLPERF_RUN_TIMEOUT_S": "900", "MLPERF_SERVER_START_TIMEOUT_S": "400",
        "MLPERF_SHM_SIZE": "1Gi", "MLPERF_RETRIES": "0",
        "AIRFLOW_CONN_KUBERNETES_DEFAULT": json.dumps({"conn_type": "kubernetes",
                                                       "extra": {"kube_config_path": str(kubeconfig)}}),
    }


@contextlib.contextmanager
def airflow_on_cluster(cluster: LocalCluster, work: Path) -> Iterator[AirflowOnCluster]:
    home, dags = work / "airflow", work / "dags"
    dags.mkdir(parents=True)
    shutil.copy(REPO / "dags" / f"{DAG_ID}.py", dags)
    passwords = work / "passwords.json"
    passwords.write_text(json.dumps({"admin": ADMIN_PASSWORD}))
    kubeconfig = cluster.service_account_kubeconfig("airflow", work / "airflow.kubeconfig")
    with _database() as db_url:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("MLPERF_", "AIRFLOW_", "AIRFLOW__"))}
        env.update({
            "PYTHONPATH": str(REPO), "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__FERNET_KEY": "",
            **_deployment_env(cluster, kubeconfig, work),
        })
        airflow = airflow_bin()
        _command([airflow, "db", "migrate"], env)
        pools = work / "pools.json"
        pools.write_text(_command([os.path.join(os.path.dirname(airflow), "python"), "-m", "include.deployment",
                                   "pools"], env))
        _command([airflow, "pools", "import", str(pools)], env)
        with running_api_server(env, work / "api-server.log") as base:
            env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"{base}/execution/"
            with _process([airflow, "dag-processor"], env, work / "dag-processor.log"), \
                    _process([airflow, "scheduler"], env, work / "scheduler.log"):
                token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD},
                                   timeout=30)
                assert token.status_code == 201, token.text
                with httpx.Client(base_url=base, timeout=60,
                                  headers={"Authorization": f"Bearer {token.json()['access_token']}"}) as api:
                    deadline = time.monotonic() + 180
                    while api.get(f"/api/v2/dags/{DAG_ID}").status_code != 200:
                        assert time.monotonic() < deadline, \
                            f"the DAG was not parsed in 180 s:\n{(work / 'dag-processor.log').read_text()[-4000:]}"
                        time.sleep(2)
                    yield AirflowOnCluster(api=api, artifacts=cluster.volume_dirs["artifacts"], logs=work)
