"""The local cluster itself: two GPU-labelled nodes, deploy/ applied as is, claims bound to local volumes, and the
real scheduler placing GPU pods (one per node, a third kept Pending)."""
from __future__ import annotations

import time
import uuid

import pytest
from kubernetes.client import models as k8s

from tests.cluster.local import KUBELET_PORTS, NAMESPACE, NODES, REPO, LocalCluster

pytestmark = pytest.mark.slow


def test_two_ready_gpu_nodes_each_with_its_own_kubelet(local_cluster: LocalCluster) -> None:
    nodes = {n.metadata.name: n for n in local_cluster.api().list_node().items}
    assert sorted(nodes) == sorted(NODES)
    for name, node in nodes.items():
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert ready.status == "True", (name, ready.reason, ready.message)
        assert node.metadata.labels["kubernetes.io/hostname"] == name
        assert node.metadata.labels["nvidia.com/gpu.present"] == "true"
        assert node.status.capacity["nvidia.com/gpu"] == "1" and node.status.allocatable["nvidia.com/gpu"] == "1"
        assert node.status.node_info.kubelet_version == "v1.20.2"
        # The API server reaches each kubelet (logs, exec) at InternalIP and the port the kubelet reported.
        assert {"InternalIP": "127.0.0.1"}.items() <= {a.type: a.address for a in node.status.addresses}.items()
        assert node.status.daemon_endpoints.kubelet_endpoint.port == KUBELET_PORTS[name]


def test_deploy_manifests_are_applied_as_they_are(local_cluster: LocalCluster) -> None:
    # `kubectl diff` compares deploy/ with the live objects through a server-side dry run: empty means identical.
    diff = local_cluster.kubectl("diff", "-k", str(REPO / "deploy"), check=False)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    names = local_cluster.kubectl("-n", NAMESPACE, "get", "serviceaccount,role,rolebinding", "-o", "name").stdout
    for expected in ("serviceaccount/airflow", "serviceaccount/mlperf-sut",
                     "role.rbac.authorization.k8s.io/mlperf-airflow",
                     "rolebinding.rbac.authorization.k8s.io/mlperf-airflow"):
        assert expected in names.split()


def test_claims_are_bound_to_local_volumes_on_this_machine(local_cluster: LocalCluster) -> None:
    api = local_cluster.api()
    folders = {"mlperf-model": "model", "mlperf-dataset": "dataset", "mlperf-artifacts": "artifacts"}
    for claim, folder in folders.items():
        pvc = api.read_namespaced_persistent_volume_claim(claim, NAMESPACE)
        assert pvc.status.phase == "Bound", claim
        pv = api.read_persistent_volume(pvc.spec.volume_name)
        assert pv.spec.local.path == str(local_cluster.volume_dirs[folder])
        assert pv.spec.access_modes == ["ReadWriteMany"]
        # Both nodes may mount it (they share this machine's disk).
        (term,) = pv.spec.node_affinity.required.node_selector_terms
        assert sorted(term.match_expressions[0].values) == sorted(NODES)


def _gpu_pod(name: str, label: str) -> k8s.V1Pod:
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name, labels={"test": label}),
        spec=k8s.V1PodSpec(
            restart_policy="Never", automount_service_account_token=False, termination_grace_period_seconds=0,
            containers=[k8s.V1Container(
                name="main", image="localhost/busybox:mlperf", image_pull_policy="IfNotPresent",
                command=["sh", "-c", "echo on $NODE_NAME; sleep 300"],
                env=[k8s.V1EnvVar(name="NODE_NAME", value_from=k8s.V1EnvVarSource(
                    field_ref=k8s.V1ObjectFieldSelector(field_path="spec.nodeName")))],
                resources=k8s.V1ResourceRequirements(limits={"nvidia.com/gpu": "1"}))]))


def _wait(what: str, condition, timeout_s: float = 120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s")


def test_scheduler_gives_each_node_one_gpu_pod_and_keeps_a_third_pending(local_cluster: LocalCluster) -> None:
    api, label = local_cluster.api(), f"gpu-{uuid.uuid4().hex[:8]}"
    names = [f"{label}-{i}" for i in range(3)]
    try:
        for name in names[:2]:
            api.create_namespaced_pod(NAMESPACE, _gpu_pod(name, label))
        def both_running():
            pods = api.list_namespaced_pod(NAMESPACE, label_selector=f"test={label}").items
            return pods if len(pods) == 2 and all(p.status.phase == "Running" for p in pods) else None
        running = _wait("two GPU pods running", both_running)
        assert sorted(p.spec.node_name for p in running) == sorted(NODES)
        # Each pod's log comes from its own node's kubelet, through the API server.
        for pod in running:
            log = _wait("a log line", lambda: api.read_namespaced_pod_log(
                pod.metadata.name, NAMESPACE, _preload_content=False).data.decode())
            assert log.strip() == f"on {pod.spec.node_name}"

        api.create_namespaced_pod(NAMESPACE, _gpu_pod(names[2], label))

        def unschedulable():
            pod = api.read_namespaced_pod(names[2], NAMESPACE)
            return next((c for c in pod.status.conditions or [] if c.type == "PodScheduled" and c.status == "False"),
                        None)
        condition = _wait("the third pod marked unschedulable", unschedulable)
        assert condition.reason == "Unschedulable"
        assert "Insufficient nvidia.com/gpu" in condition.message
    finally:
        for name in names:
            local_cluster.kubectl("-n", NAMESPACE, "delete", "pod", name, "--grace-period=0", "--force",
                                  "--ignore-not-found", check=False)
    _wait("the test's pods gone", lambda: local_cluster.objects_labelled(f"test={label}") == [])
