"""Every pod and Service the kubernetes runner creates, rendered without a cluster and validated against the
Kubernetes 1.28 schema and the newest one kubernetes-validate ships (strict: unknown fields are errors)."""
from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from include import deployment
from include.runners import kubernetes as runner
from tests.kubernetes.context import NAMESPACE, SUT_IMAGE, task_context
from tests.kubernetes.manifests import assert_labels_valid, render_pod, to_dict, validate_strict

UGLY_RUN_ID = "manual__2026-11-29T03:05:43.123456+00:00 with spaces/and:colons" + "x" * 80
LONG_NODE = "gpu-node-" + "a" * 70 + ".cluster.example.com"


@pytest.fixture
def offline_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, k8s_env) -> None:
    """build_pod_request_obj asks the hook whether it runs in-cluster; a kubeconfig answers without a server."""
    kc = tmp_path / "kubeconfig.json"
    kc.write_text('{"apiVersion":"v1","kind":"Config","current-context":"c",'
                  '"clusters":[{"name":"c","cluster":{"server":"http://127.0.0.1:9"}}],'
                  '"users":[{"name":"u","user":{}}],"contexts":[{"name":"c","context":{"cluster":"c","user":"u"}}]}')
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT",
                       f'{{"conn_type":"kubernetes","extra":{{"kube_config_path":"{kc}"}}}}')


def _container(pod: dict) -> dict:
    (container,) = pod["spec"]["containers"]
    return container


def test_sut_pod_defaults_render_to_a_valid_pod(offline_kubeconfig) -> None:
    task = runner.sut_pod(task_id="run_single", node="gpu-node-a", branch="single", gpus=2,
                          arguments=["run", "--scenario", "Offline", "--output-dir", "/artifacts/r/single/gpu-node-a"])
    pod = render_pod(task, task_context("run_single"))
    validate_strict(pod)
    assert_labels_valid(pod)

    spec, container = pod["spec"], _container(pod)
    assert pod["metadata"]["namespace"] == NAMESPACE
    term = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term == [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                                           "values": ["gpu-node-a"]}]}]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert container["image"] == SUT_IMAGE and container["imagePullPolicy"] == "IfNotPresent"
    assert container["args"][:3] == ["run", "--scenario", "Offline"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == "mlperf-sut" and spec["automountServiceAccountToken"] is False

    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Gi"}
    assert mounts["dshm"]["mountPath"] == "/dev/shm"
    assert volumes["model"]["persistentVolumeClaim"] == {"claimName": "test-model", "readOnly": True}
    assert volumes["dataset"]["persistentVolumeClaim"] == {"claimName": "test-dataset", "readOnly": True}
    assert volumes["artifacts"]["persistentVolumeClaim"] == {"claimName": "test-artifacts"}
    assert mounts["model"]["readOnly"] and mounts["dataset"]["readOnly"]
    assert mounts["artifacts"]["mountPath"] == "/artifacts" and not mounts["artifacts"].get("readOnly")

    labels = pod["metadata"]["labels"]
    assert labels["mlperf/node"] == "gpu-node-a" and labels["mlperf/branch"] == "single"
    assert labels["mlperf/dag"] == "mlperf_llama31_8b" and labels["mlperf/run"]
    # No secret material in a SUT pod: no secret env, no secret volumes, no API token.
    assert not any("valueFrom" in e and "secretKeyRef" in e["valueFrom"] for e in container.get("env", []))
    assert not any("secret" in v for v in spec["volumes"])


def test_operator_defaults_that_are_not_in_the_pod(k8s_env) -> None:
    task = runner.sut_pod(task_id="t", node="n", branch="single", arguments=["run"])
    assert task.on_finish_action.value == "delete_pod" and task.on_kill_action.value == "delete_pod"
    assert task.durable is True
    assert task.retries == 1
    assert task.execution_timeout == datetime.timedelta(seconds=120)
    assert task.startup_timeout_seconds == 30
    assert task.get_logs is True


def test_overrides_replace_defaults(offline_kubeconfig) -> None:
    task = runner.sut_pod(task_id="t", node="n", branch="single", arguments=["run"], retries=0,
                          image_pull_policy="Always", image="other:1")
    assert task.retries == 0
    pod = render_pod(task, task_context("t"))
    assert _container(pod)["imagePullPolicy"] == "Always" and _container(pod)["image"] == "other:1"


def test_settings_come_from_the_environment(offline_kubeconfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPERF_NODE_LABEL_KEY", "example.com/gpu-node")
    monkeypatch.setenv("MLPERF_MODEL_PVC", "llama-weights")
    monkeypatch.setenv("MLPERF_ARTIFACTS_DIR", "/data/mlperf")
    monkeypatch.setenv("MLPERF_NAMESPACE", "bench")
    pod = render_pod(runner.sut_pod(task_id="t", node="n1", branch="single", arguments=["run"]), task_context("t"))
    validate_strict(pod)
    expr = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchExpressions"][0]
    assert expr["key"] == "example.com/gpu-node"
    assert pod["metadata"]["namespace"] == "bench"
    assert {"claimName": "llama-weights", "readOnly": True} in [
        v.get("persistentVolumeClaim") for v in pod["spec"]["volumes"]]
    assert {"name": "artifacts", "mountPath": "/data/mlperf"} in _container(pod)["volumeMounts"]


def test_the_pod_gets_the_deployment_it_is_given(offline_kubeconfig) -> None:
    """The DAG passes its Deployment down: the pod is built from it, whatever this process's environment says."""
    dep = deployment.load({"MLPERF_NAMESPACE": "bench", "MLPERF_SUT_IMAGE": "registry.example/sut:2",
                           "MLPERF_ARTIFACTS_DIR": "/data/mlperf", "MLPERF_SHM_SIZE": "2Gi",
                           "MLPERF_IMAGE_PULL_POLICY": "Always", "MLPERF_RUN_TIMEOUT_S": "600"})
    task = runner.sut_pod(task_id="t", node="n1", branch="single", arguments=["run"], dep=dep)
    assert task.execution_timeout == datetime.timedelta(seconds=600)
    pod = render_pod(task, task_context("t"))
    validate_strict(pod)
    container = _container(pod)
    assert pod["metadata"]["namespace"] == "bench" != NAMESPACE
    assert container["image"] == "registry.example/sut:2" and container["imagePullPolicy"] == "Always"
    assert {"name": "artifacts", "mountPath": "/data/mlperf"} in container["volumeMounts"]
    assert {"medium": "Memory", "sizeLimit": "2Gi"} in [v.get("emptyDir") for v in pod["spec"]["volumes"]]


def test_label_values_are_sanitised(offline_kubeconfig) -> None:
    task = runner.sut_pod(task_id="run_single", node=LONG_NODE, branch="single", arguments=["run"])
    pod = render_pod(task, task_context("run_single", run_id=UGLY_RUN_ID))
    validate_strict(pod)
    assert_labels_valid(pod)
    # Two run ids that differ only in characters the label charset lacks still get different labels.
    assert runner.safe_label_value("a:b") != runner.safe_label_value("a;b")
    assert len(pod["metadata"]["name"]) <= 63


def test_mapped_sut_pods_render_one_valid_pod_per_argument_list(offline_kubeconfig) -> None:
    from airflow.sdk import DAG

    argument_lists = [["run", "--scenario", s, "--output-dir", f"/artifacts/r/single/gpu-node-b/{s}"]
                      for s in ("Offline", "Server")]
    with DAG("mapped_render", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
        mapped = runner.sut_pod_partial(task_id="run_node_b", node="gpu-node-b", branch="single").expand(
            arguments=argument_lists)
    for index, arguments in enumerate(argument_lists):
        task = mapped.unmap({"arguments": arguments})
        assert isinstance(task, runner.SutPodOperator)
        pod = render_pod(task, task_context("run_node_b", map_index=index))
        validate_strict(pod)
        assert_labels_valid(pod)
        assert _container(pod)["args"] == arguments
        assert pod["metadata"]["labels"]["map_index"] == str(index)
        assert pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["gpu-node-b"]


@pytest.mark.parametrize("node", ["gpu-node-a", LONG_NODE, "GPU_Node.7"])
def test_server_pod_and_service_are_valid_and_match(k8s_env, node: str) -> None:
    dep = deployment.load()
    pod = to_dict(runner.server_pod_manifest(run_id=UGLY_RUN_ID, node=node, image=SUT_IMAGE,
                                             engine_args=["--tensor-parallel-size", "2"], model_path="/models/llama",
                                             gpus=2, dep=dep, dag_id="mlperf_llama31_8b"))
    service = to_dict(runner.server_service_manifest(run_id=UGLY_RUN_ID, node=node,
                                                     namespace=dep.kubernetes.namespace))
    for manifest in (pod, service):
        validate_strict(manifest)
        assert_labels_valid(manifest)
    container = _container(pod)
    assert container["args"][:3] == ["serve", "--model", "/models/llama"]
    assert container["args"][-2:] == ["--tensor-parallel-size", "2"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    assert pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == [node]
    # The Service selects exactly this pod, on the port the probe and the URL use.
    assert all(pod["metadata"]["labels"][k] == v for k, v in service["spec"]["selector"].items())
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    name = service["metadata"]["name"]
    assert len(name) <= 63 and name[0].isalpha() and name == pod["metadata"]["name"]
    assert runner.server_url(UGLY_RUN_ID, node, NAMESPACE) == f"http://{name}.{NAMESPACE}.svc:8000"


def test_server_names_differ_per_run_and_node() -> None:
    names = {runner.server_name(r, n) for r in ("run-1", "run-2") for n in ("a" * 60 + "1", "a" * 60 + "2")}
    assert len(names) == 4


DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "mlperf_llama31_8b.py"


def test_every_pod_of_the_dag_is_valid(offline_kubeconfig, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse dags/ with the kubernetes runner (docker-compose's default) and render every SUT pod it declares."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    monkeypatch.setenv("MLPERF_RUNNER", "kubernetes")
    monkeypatch.setenv("MLPERF_NODES", "gpu-node-a,gpu-node-b")
    monkeypatch.setenv("MLPERF_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("MLPERF_HISTORY_URL", f"sqlite:///{tmp_path / 'history.sqlite'}")
    dagbag = DagBag(dag_folder=str(DAG_FILE.parent))
    assert not dagbag.import_errors, "\n".join(f"{f}: {e}" for f, e in dagbag.import_errors.items())
    dags = list(dagbag.dags.values())
    assert dags, f"no DAG in {DAG_FILE.parent}"
    rendered = 0
    for dag in dags:
        for task in dag.tasks:
            if not issubclass(getattr(task, "operator_class", type(task)), KubernetesPodOperator):
                continue
            expand = getattr(task, "expand_input", None)
            if expand is None:
                candidates = [task]
            else:
                value = expand.value
                # Mapped over an upstream XCom (the plan's argument lists): the pod's shape does not depend on the
                # arguments, so render it with a placeholder argument list.
                value = {k: (v if isinstance(v, list) else [["run", "--help"]]) for k, v in dict(value).items()}
                keys = list(value)
                candidates = [task.unmap(dict(zip(keys, combo))) for combo in zip(*value.values())]
            for index, candidate in enumerate(candidates):
                context = task_context(task.task_id, dag_id=dag.dag_id, params=dag.params.dump(),
                                       map_index=index if expand is not None else -1)
                pod = render_pod(candidate, context)
                validate_strict(pod)
                assert_labels_valid(pod)
                rendered += 1
    assert rendered, "the DAG declares no KubernetesPodOperator task although MLPERF_RUNNER=kubernetes"


def test_coordinated_driver_pod_has_no_node_and_no_gpu(offline_kubeconfig) -> None:
    """node=None, gpus=0: the coordinated run's LoadGen driver; its vLLM servers hold the GPUs."""
    task = runner.sut_pod(task_id="run_coordinated", node=None, branch="distributed", gpus=0,
                          arguments=["run", "--endpoint", "gpu-node-a=http://vllm-a.mlperf-test.svc:8000"])
    pod = render_pod(task, task_context("run_coordinated"))
    validate_strict(pod)
    assert_labels_valid(pod)
    assert not pod["spec"].get("affinity") and not pod["spec"].get("tolerations")
    assert not _container(pod).get("resources", {}).get("limits")
    assert pod["metadata"]["labels"]["mlperf/node"] == runner.ANY_NODE
    assert {v["name"] for v in pod["spec"]["volumes"]} == {"model", "dataset", "artifacts", "dshm"}
