"""deploy/rbac.yaml enforced by a real API server: the `airflow` service account can do what the runner needs in
the benchmark namespace, and nothing else (no Secrets, no other namespace, no cluster-wide objects)."""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from kubernetes.client import models as k8s
from kubernetes.client.exceptions import ApiException

from tests.cluster.local import NAMESPACE, LocalCluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def as_airflow(local_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory):
    path = local_cluster.service_account_kubeconfig("airflow", tmp_path_factory.mktemp("rbac") / "airflow.kubeconfig")
    return local_cluster.api(path)


def _forbidden(call, *args, **kwargs) -> None:
    with pytest.raises(ApiException) as denied:
        call(*args, **kwargs)
    assert denied.value.status == 403, denied.value
    assert "system:serviceaccount:" in denied.value.body


def _pod(name: str) -> k8s.V1Pod:
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name, labels={"test": name}),
        spec=k8s.V1PodSpec(restart_policy="Never", automount_service_account_token=False,
                           service_account_name="mlperf-sut", termination_grace_period_seconds=0,
                           containers=[k8s.V1Container(name="main", image="localhost/busybox:mlperf",
                                                       image_pull_policy="IfNotPresent",
                                                       command=["sh", "-c", "echo rbac-ok"])]))


def test_airflow_account_runs_a_pod_reads_its_log_and_cleans_up(as_airflow, local_cluster: LocalCluster) -> None:
    name = f"rbac-{uuid.uuid4().hex[:8]}"
    as_airflow.create_namespaced_pod(NAMESPACE, _pod(name))
    try:
        deadline = time.monotonic() + 120
        while as_airflow.read_namespaced_pod(name, NAMESPACE).status.phase != "Succeeded":
            assert time.monotonic() < deadline, "the pod did not finish"
            time.sleep(0.5)
        log = as_airflow.read_namespaced_pod_log(name, NAMESPACE, _preload_content=False).data.decode()
        assert log == "rbac-ok\n"
        # What the operator does besides: find the pod by labels, mark it checked, read its events.
        found = as_airflow.list_namespaced_pod(NAMESPACE, label_selector=f"test={name}").items
        assert [p.metadata.name for p in found] == [name]
        as_airflow.patch_namespaced_pod(name, NAMESPACE, {"metadata": {"labels": {"already_checked": "True"}}})
        as_airflow.list_namespaced_event(NAMESPACE, field_selector=f"involvedObject.name={name}")
        # The coordinated branch's Services.
        service = k8s.V1Service(metadata=k8s.V1ObjectMeta(name=name),
                                spec=k8s.V1ServiceSpec(selector={"test": name}, ports=[k8s.V1ServicePort(port=8000)]))
        as_airflow.create_namespaced_service(NAMESPACE, service)
        as_airflow.delete_namespaced_service(name, NAMESPACE)
    finally:
        as_airflow.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
    assert local_cluster.objects_labelled(f"test={name}") in ([], [f"pod/{name}"])   # deletion may still be running


def test_airflow_account_cannot_read_secrets(as_airflow, local_cluster: LocalCluster) -> None:
    # The download Job's Hugging Face token lives in a Secret of this very namespace (deploy/download-job.yaml).
    local_cluster.kubectl("-n", NAMESPACE, "create", "secret", "generic", "rbac-test-token",
                          "--from-literal=token=not-for-airflow", check=False)
    try:
        _forbidden(as_airflow.read_namespaced_secret, "rbac-test-token", NAMESPACE)
        _forbidden(as_airflow.list_namespaced_secret, NAMESPACE)
        _forbidden(as_airflow.create_namespaced_secret, NAMESPACE,
                   k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="airflow-made"), string_data={"a": "b"}))
    finally:
        local_cluster.kubectl("-n", NAMESPACE, "delete", "secret", "rbac-test-token", "--ignore-not-found")


def test_airflow_account_cannot_touch_another_namespace_or_the_cluster(as_airflow) -> None:
    _forbidden(as_airflow.list_namespaced_pod, "default")
    _forbidden(as_airflow.create_namespaced_pod, "default", _pod("rbac-elsewhere"))
    _forbidden(as_airflow.list_namespaced_secret, "kube-system")
    _forbidden(as_airflow.create_namespace, k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="airflow-made")))
    _forbidden(as_airflow.list_node)
    _forbidden(as_airflow.list_persistent_volume)
    # Nor change the volumes or the accounts of its own namespace.
    _forbidden(as_airflow.delete_namespaced_persistent_volume_claim, "mlperf-artifacts", NAMESPACE)
    _forbidden(as_airflow.create_namespaced_service_account, NAMESPACE,
               k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="airflow-made")))


def test_sut_account_has_no_access_at_all(local_cluster: LocalCluster, tmp_path: Path) -> None:
    as_sut = local_cluster.api(local_cluster.service_account_kubeconfig("mlperf-sut", tmp_path / "sut.kubeconfig"))
    _forbidden(as_sut.list_namespaced_pod, NAMESPACE)
    _forbidden(as_sut.read_namespaced_secret, "any", NAMESPACE)
