"""Fixtures for the Kubernetes runner's tests: the runner's environment and an emulated cluster (see emulator.py).

No real cluster can run here: `cluster` is kmock's in-memory API server plus a node agent that runs each pod's
container as a local process. The SUT image (SUT_IMAGE) maps to tests/kubernetes/fake_sut.py, which can be told to
fail, fail once or run long; REAL_SUT_IMAGE maps to the real SUT (`<repo>/.venv-sut/bin/python -m mlperf_sut`) for
the one test that runs it when that environment exists.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.kubernetes.context import NODES, REAL_SUT_IMAGE, REAL_SUT_PYTHON, SETTINGS_ENV, SUT_IMAGE
from tests.kubernetes.emulator import FAKE_SUT, EmulatedCluster


@pytest.fixture
def k8s_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key in [k for k in os.environ if k.startswith("MLPERF_")]:
        monkeypatch.delenv(key)
    for key, value in SETTINGS_ENV.items():
        monkeypatch.setenv(key, value)
    return dict(SETTINGS_ENV)


@pytest.fixture
def cluster(tmp_path: Path, k8s_env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    volumes = {name: tmp_path / "volumes" / name for name in ("test-model", "test-dataset", "test-artifacts")}
    for path in volumes.values():
        path.mkdir(parents=True)
    images = {SUT_IMAGE: list(FAKE_SUT), REAL_SUT_IMAGE: [str(REAL_SUT_PYTHON), "-m", "mlperf_sut"]}
    with EmulatedCluster(workdir=tmp_path, nodes=NODES, images=images, volumes=volumes) as emulated:
        monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", emulated.connection_uri)
        emulated.artifacts_dir = volumes["test-artifacts"]
        emulated.volume_dirs = volumes
        yield emulated
