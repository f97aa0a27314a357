"""Constants and the fake task context shared by the Kubernetes tests (kept out of conftest.py so test modules import
them without importing conftest a second time)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "mlperf-test"
NODES = ["gpu-node-a", "gpu-node-b"]
SUT_IMAGE = "registry.example/mlperf-sut:test"
REAL_SUT_IMAGE = "registry.example/mlperf-sut:real"
# The SUT's virtual environment (`make venvs`); /tmp/venv-sut is where the DAG tests also look for one.
REAL_SUT_PYTHON = next((p for p in (REPO / ".venv-sut/bin/python", Path("/tmp/venv-sut/bin/python")) if p.exists()),
                       REPO / ".venv-sut/bin/python")

# Kubernetes manifests and Airflow connections only: keep the tests independent of the developer's environment.
SETTINGS_ENV = {
    "MLPERF_NAMESPACE": NAMESPACE,
    "MLPERF_SUT_IMAGE": SUT_IMAGE,
    "MLPERF_MODEL_PVC": "test-model",
    "MLPERF_DATASET_PVC": "test-dataset",
    "MLPERF_ARTIFACTS_PVC": "test-artifacts",
    "MLPERF_SHM_SIZE": "1Gi",
    "MLPERF_POD_STARTUP_TIMEOUT_S": "30",
    "MLPERF_RUN_TIMEOUT_S": "120",
}


class FakeTaskInstance:
    """What KubernetesPodOperator.execute reads from `ti`: identity labels and xcom_push."""

    def __init__(self, dag_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> None:
        self.dag_id, self.task_id, self.try_number, self.map_index = dag_id, task_id, try_number, map_index
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        self.xcoms[key] = value


def task_context(task_id: str, *, run_id: str = "manual__2026-11-29T03:00:00+00:00", try_number: int = 1,
                 map_index: int = -1, dag_id: str = "mlperf_llama31_8b", params: dict | None = None) -> dict[str, Any]:
    ti = FakeTaskInstance(dag_id, task_id, try_number, map_index)
    return {"ti": ti, "task_instance": ti, "run_id": run_id, "dag": SimpleNamespace(dag_id=dag_id),
            "params": dict(params or {}), "ds": "2026-11-29", "logical_date": None}
