"""Fixtures of the DAG tests: the deployment environment (local runner, two simulated nodes) and a DagBag of dags/.

The DAG reads its deploy-time configuration when it is parsed, so the environment is set before every DagBag.
"""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
DAG_ID = "mlperf_llama31_8b"
NODES = ("local-0", "local-1")


@pytest.fixture
def deploy_env(monkeypatch, tmp_path) -> dict[str, str]:
    env = {
        "MLPERF_RUNNER": "local",
        "MLPERF_NODES": ",".join(NODES),
        "MLPERF_PROFILE": "embedded",
        "MLPERF_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "MLPERF_HISTORY_URL": f"sqlite:///{tmp_path / 'history.sqlite'}",
        "MLPERF_MODEL_DIR": str(REPO / ".cache/tiny-llama"),
        "MLPERF_DATASET": str(REPO / ".cache/tiny-cnn/cnn_eval.json"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("MLPERF_SCHEDULE", "MLPERF_RETRIES", "MLPERF_RUN_TIMEOUT_S", "MLPERF_DATASET_SIZE"):
        monkeypatch.delenv(key, raising=False)
    return env


@pytest.fixture
def dagbag(deploy_env):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture
def dag(dagbag):
    assert not dagbag.import_errors, "\n".join(f"{f}: {e}" for f, e in dagbag.import_errors.items())
    return dagbag.dags[DAG_ID]
