"""A real local Kubernetes cluster under the tests (deploy/local-cluster/): two kubelet nodes, the project's
namespace, RBAC and volumes from deploy/, and the SUT image imported into both nodes.

The session starts the cluster (building it first if the cache is cold) and stops it at the end (unless
MLPERF_CLUSTER_KEEP=1); test_zz_down.py stops it explicitly and checks that nothing is left running or mounted.
Root is required (containers, cgroups, mounts): without it the tests are skipped on a developer's machine, and fail
in CI (CI=true), where they must run.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cluster.local import REPO, LocalCluster

UP_TIMEOUT_S = 45 * 60          # a cold build of Kubernetes (43 min measured on 2 busy cores); warm: ~1.5 min


def pytest_configure(config: pytest.Config) -> None:
    # The local API server's certificate is self-signed and not verified (127.0.0.1 only; see the table in
    # deploy/local-cluster/README.md).
    config.addinivalue_line("filterwarnings", "ignore::urllib3.exceptions.InsecureRequestWarning")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> LocalCluster:
    if os.geteuid() != 0:
        if _in_ci():
            pytest.fail("the local cluster tests need root in CI (containers, cgroups, mounts)")
        pytest.skip("the local cluster needs root (run `sudo make test-cluster`)")
    cluster = LocalCluster.from_env()
    log = tmp_path_factory.mktemp("cluster") / "up.log"
    with log.open("w") as out:
        up = subprocess.run([str(REPO / "deploy/local-cluster/up.sh")], stdout=out, stderr=subprocess.STDOUT,
                            timeout=UP_TIMEOUT_S)
    if up.returncode != 0:
        subprocess.run([str(REPO / "deploy/local-cluster/down.sh")], capture_output=True, timeout=300)
        pytest.fail(f"deploy/local-cluster/up.sh failed ({up.returncode}):\n{log.read_text()[-6000:]}")
    yield cluster
    if os.environ.get("MLPERF_CLUSTER_KEEP") != "1":      # set it to keep the cluster between runs while iterating
        subprocess.run([str(REPO / "deploy/local-cluster/down.sh")], capture_output=True, timeout=300)


@pytest.fixture(scope="session")
def volumes(local_cluster: LocalCluster) -> dict[str, Path]:
    """The local PersistentVolumes' folders, filled as deploy/download-job.yaml would: the tiny model and data set."""
    model, dataset = REPO / ".cache/tiny-llama", REPO / ".cache/tiny-cnn/cnn_eval.json"
    for path in (model / "config.json", dataset):
        assert path.exists(), f"{path} is missing: run `make tiny` first"
    dirs = local_cluster.volume_dirs
    if not (dirs["model"] / "tiny-llama").exists():
        shutil.copytree(model, dirs["model"] / "tiny-llama")
    shutil.copy(dataset, dirs["dataset"] / "cnn_eval.json")
    # The SUT runs as uid 10001 (sut_image/Dockerfile): the volumes' files must be readable by it, as the download
    # Job leaves them (a tiny model built before build-tiny-model made its weights 0644 has them 0600).
    for root in (dirs["model"], dirs["dataset"]):
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    return dirs


@pytest.fixture
def airflow_connection(local_cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Airflow's kubernetes_default connection as the `airflow` service account of deploy/rbac.yaml (not admin)."""
    kubeconfig = local_cluster.service_account_kubeconfig("airflow", tmp_path / "airflow.kubeconfig")
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT",
                       json.dumps({"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig)}}))
    for key in [k for k in os.environ if k.startswith("MLPERF_")]:
        monkeypatch.delenv(key)
    # Real pods on a busy 2-core machine: starting a container takes seconds, vLLM's CPU engine ~20 s.
    monkeypatch.setenv("MLPERF_POD_STARTUP_TIMEOUT_S", "180")
    monkeypatch.setenv("MLPERF_RUN_TIMEOUT_S", "900")
    monkeypatch.setenv("MLPERF_SHM_SIZE", "1Gi")
    return kubeconfig
