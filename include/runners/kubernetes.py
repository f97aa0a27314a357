"""The `kubernetes` runner: every SUT process is a pod on a GPU node of a real cluster.

Two ways in, both with the same pod defaults (affinity to one node, GPUs, tolerations, /dev/shm, volumes, labels):

* `sut_pod(...)` / `sut_pod_partial(...)`: the ONE project-wide factory for the KubernetesPodOperator that runs
  `python -m mlperf_sut run ...` (single-node and sharded runs, and the coordinated run's LoadGen driver). The DAG
  passes only what differs per task: task id, node, branch and the SUT arguments.
* `create_vllm_servers(...)` / `delete_vllm_servers(...)`: the coordinated distributed branch's setup and teardown;
  one vLLM OpenAI server pod (`python -m mlperf_sut serve ...`) plus one Service per node.

Artefacts (LoadGen logs, result.json) are written to a ReadWriteMany volume mounted at the same path in the SUT pods
and in Airflow, so the parse step reads files, never pod logs (the kubelet rotates those at 10 MiB, and a Server run's
detail log is larger).

Deploy-time settings are the deployment's (include/deployment.py: `Deployment`, its `kubernetes` part for the
namespace, PVCs, label key and pod limits), passed down by the caller; a DAG file never names a PVC, namespace or label
key.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from kubernetes.client import models as k8s
from kubernetes.client.exceptions import ApiException

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.pod_generator import make_safe_label_value

from include import deployment
from include.deployment import Deployment

if TYPE_CHECKING:
    from kubernetes.client import CoreV1Api

log = logging.getLogger(__name__)

# Label keys this project puts on every object it creates (values go through `safe_label_value`).
LABEL_DAG = "mlperf/dag"
LABEL_RUN = "mlperf/run"
LABEL_NODE = "mlperf/node"
LABEL_BRANCH = "mlperf/branch"
LABEL_ROLE = "mlperf/role"            # "sut" (a run pod) or "vllm-server"
LABEL_SERVER = "mlperf/server"        # a server pod's own name: its Service's selector
APP_LABELS = {"app.kubernetes.io/name": "mlperf-llama31-8b", "app.kubernetes.io/managed-by": "airflow"}

SUT_CONTAINER = "base"                # the provider's default base container name (its log is followed)
SERVER_CONTAINER = "vllm"
SERVER_PORT = 8000
ANY_NODE = "any"                      # the `mlperf/node` label of a pod without node affinity

GPU_RESOURCE = "nvidia.com/gpu"
# The node lifecycle controller's event on every pod of a node that stopped reporting (kubelet or machine down).
NODE_LOST_EVENT = "NodeNotReady"
NODE_CHECK_INTERVAL_S = 10
# How long a broken log stream waits for the control plane's verdict on the node: the controller manager's node
# monitor grace period (40 s by default) plus a few checks.
NODE_VERDICT_TIMEOUT_S = 90


def _deployment(dep: Deployment | None) -> Deployment:
    """The caller's deployment; without one (a direct call, a test), this process's (include/deployment.py)."""
    return dep if dep is not None else deployment.load()


# --------------------------------------------------------------------------------------------------------------------
# Names and labels
# --------------------------------------------------------------------------------------------------------------------

def safe_label_value(value: str) -> str:
    """A label value Kubernetes accepts (<= 63 chars of [A-Za-z0-9_.-], alphanumeric at both ends).

    The provider's own sanitiser, so our labels and the provider's `run_id`/`dag_id` labels agree; a value it had to
    change gets a hash suffix, so two different run ids never collapse into one label value.
    """
    return make_safe_label_value(str(value))


def _dns_label(text: str, max_len: int) -> str:
    """Lowercase RFC 1035 label fragment: [a-z0-9-], no leading/trailing dash."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")[:max_len].strip("-")


def server_name(run_id: str, node: str) -> str:
    """The pod and Service name of one node's vLLM server: derived, so teardown needs no state from setup.

    RFC 1035 (a Service name must start with a letter, <= 63 chars); the hash keeps two runs or two long node names
    with a common prefix apart.
    """
    digest = hashlib.sha256(f"{run_id}\0{node}".encode()).hexdigest()[:10]
    return f"vllm-{_dns_label(node, 40) or 'node'}-{digest}"


def _labels(*, dag_id: str | None, run_id: str | None, node: str, branch: str, role: str) -> dict[str, str]:
    labels = {**APP_LABELS, LABEL_NODE: node, LABEL_BRANCH: branch, LABEL_ROLE: role}
    if dag_id:
        labels[LABEL_DAG] = dag_id
    if run_id:
        labels[LABEL_RUN] = run_id
    return {key: safe_label_value(value) for key, value in labels.items()}


# --------------------------------------------------------------------------------------------------------------------
# Pod building blocks shared by run pods and server pods
# --------------------------------------------------------------------------------------------------------------------

def node_affinity(node: str, label_key: str) -> k8s.V1Affinity:
    # Required (not preferred) affinity: a benchmark result names the node it ran on, so the scheduler must never
    # move the pod to another GPU node when the requested one is busy: it waits (and times out) instead.
    return k8s.V1Affinity(
        node_affinity=k8s.V1NodeAffinity(
            required_during_scheduling_ignored_during_execution=k8s.V1NodeSelector(
                node_selector_terms=[k8s.V1NodeSelectorTerm(match_expressions=[
                    k8s.V1NodeSelectorRequirement(key=label_key, operator="In", values=[node]),
                ])]
            )
        )
    )


def gpu_tolerations() -> list[k8s.V1Toleration]:
    # GPU nodes are commonly tainted nvidia.com/gpu:NoSchedule so that only pods asking for GPUs land there.
    return [k8s.V1Toleration(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")]


def gpu_resources(gpus: int) -> k8s.V1ResourceRequirements:
    # Whole GPUs, as many as the tensor-parallel size: the device plugin gives the container exactly these devices.
    # Extended resources cannot be overcommitted, so requests == limits is implied by setting the limit.
    if gpus < 1:
        raise ValueError(f"a SUT pod needs at least one GPU, got gpus={gpus}")
    return k8s.V1ResourceRequirements(limits={GPU_RESOURCE: str(gpus)})


def sut_volumes(dep: Deployment) -> list[k8s.V1Volume]:
    settings = dep.kubernetes
    return [
        # Model weights and the data set are filled once by deploy/download-job.yaml and only read by runs.
        k8s.V1Volume(name="model", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
            claim_name=settings.model_pvc, read_only=True)),
        k8s.V1Volume(name="dataset", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
            claim_name=settings.dataset_pvc, read_only=True)),
        # ReadWriteMany, also mounted into Airflow at the same path: LoadGen logs and result.json are files,
        # not stdout (pod logs are rotated at 10 MiB and vanish with the pod).
        k8s.V1Volume(name="artifacts", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
            claim_name=settings.artifacts_pvc)),
        # vLLM/NCCL/PyTorch use /dev/shm for inter-process tensors; the container runtime's default is 64 MiB.
        # Memory-backed and bounded: it counts against the pod's memory, so a leak evicts the pod, not the node.
        k8s.V1Volume(name="dshm", empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory", size_limit=settings.shm_size)),
    ]


def sut_volume_mounts(dep: Deployment) -> list[k8s.V1VolumeMount]:
    settings = dep.kubernetes
    return [
        k8s.V1VolumeMount(name="model", mount_path=settings.model_mount, read_only=True),
        k8s.V1VolumeMount(name="dataset", mount_path=settings.dataset_mount, read_only=True),
        # the same path as in Airflow: the parse step reads what the pods wrote
        k8s.V1VolumeMount(name="artifacts", mount_path=str(dep.artifacts_dir)),
        k8s.V1VolumeMount(name="dshm", mount_path="/dev/shm"),
    ]


def sut_env(node: str | None) -> list[k8s.V1EnvVar]:
    env = [
        # Nothing is downloaded at run time: weights come from the model volume (and no token is in the pod).
        k8s.V1EnvVar(name="HF_HUB_OFFLINE", value="1"),
        k8s.V1EnvVar(name="TRANSFORMERS_OFFLINE", value="1"),
        # The node Kubernetes actually ran the pod on (and below, the node the DAG asked for), for result.json.
        k8s.V1EnvVar(name="MLPERF_K8S_NODE_NAME", value_from=k8s.V1EnvVarSource(
            field_ref=k8s.V1ObjectFieldSelector(field_path="spec.nodeName"))),
    ]
    if node:
        env.append(k8s.V1EnvVar(name="MLPERF_NODE", value=node))
    return env


# --------------------------------------------------------------------------------------------------------------------
# The run pod: one project-wide KubernetesPodOperator factory
# --------------------------------------------------------------------------------------------------------------------

class NodeLost(RuntimeError):
    """The node of a running SUT pod went NotReady; the message names the node, the pod and the cause."""


class _NodeWatch:
    """Watches a running pod's node while the operator follows the pod's log.

    A node that goes NotReady mid-run (its kubelet or the machine died) leaves its pod "Running" in the API for good:
    the kubelet that would report the end is gone, the pod's own deadline never fires, and the provider either waits
    until execution_timeout (hours) or fails on the first broken log stream with an HTTP 500 that names neither the
    node nor the cause, leaving the pod Terminating. This sees the node lifecycle controller's verdict on the pod
    (Ready=False and a NodeNotReady event), remembers the cause and force-deletes the pod (grace period 0: only that
    removes the object while no kubelet can confirm; the kubelet kills the container if it comes back). Reads only the
    pod and its events: the `airflow` Role needs no cluster-wide access.
    """

    def __init__(self, client: CoreV1Api, pod: k8s.V1Pod, interval_s: float = NODE_CHECK_INTERVAL_S) -> None:
        self.client, self.name, self.namespace = client, pod.metadata.name, pod.metadata.namespace
        self.interval_s = interval_s
        self.cause: str | None = None
        self._decided = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"node-watch-{self.name}", daemon=True)

    def __enter__(self) -> "_NodeWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def verdict(self, timeout_s: float) -> str | None:
        """The cause, once the node was found lost, waiting at most `timeout_s` for it."""
        self._decided.wait(timeout_s)
        return self.cause

    def _watch(self) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    if self._check():
                        return
                except ApiException as exc:      # the pod is gone or the API hiccuped: the operator sees it too
                    if exc.status == 404:
                        return
                    log.warning("node watch of pod %s/%s: %s", self.namespace, self.name, exc.reason)
        finally:
            self._decided.set()                  # a verdict, or none will come

    def _check(self) -> bool:
        pod = self.client.read_namespaced_pod(self.name, self.namespace)
        not_ready = any(c.type == "Ready" and c.status != "True" for c in pod.status.conditions or [])
        if pod.status.phase != "Running" or not not_ready:
            return False
        events = self.client.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={self.name}")
        lost = [e for e in events.items if e.reason == NODE_LOST_EVENT and e.involved_object.uid == pod.metadata.uid]
        if not lost:
            return False
        self.cause = (f"node {pod.spec.node_name} went NotReady mid-run ({lost[-1].message}: its kubelet stopped "
                      f"reporting); pod {self.namespace}/{self.name} was force-deleted")
        log.error("%s", self.cause)
        self.client.delete_namespaced_pod(self.name, self.namespace, grace_period_seconds=0)
        return True


class SutPodOperator(KubernetesPodOperator):
    """A KubernetesPodOperator whose pod also carries the run's sanitised `mlperf/dag` and `mlperf/run` labels.

    Those two values exist only at run time (the run id is in the context), so they are added when the pod is
    built rather than in the factory; `node` and `branch` are ordinary (templated, mappable) arguments.
    """

    template_fields = (*KubernetesPodOperator.template_fields, "node", "branch")

    def __init__(self, *, node: str | None, branch: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.node = node
        self.branch = branch

    def build_pod_request_obj(self, context: Any = None, *, dry_run: bool = False) -> k8s.V1Pod:
        dag_id = run_id = None
        if context:
            dag_id = context["ti"].dag_id
            run_id = context["run_id"]
        # Set on self.labels (not only on the pod) because the provider's find_pod builds its label selector from
        # self.labels: reattaching after a worker restart must match exactly the labels the pod was created with.
        self.labels = {**self.labels, **_labels(dag_id=dag_id, run_id=run_id, node=self.node or ANY_NODE,
                                                branch=self.branch, role="sut")}
        return super().build_pod_request_obj(context, dry_run=dry_run)

    def await_pod_completion(self, pod: k8s.V1Pod) -> None:
        with _NodeWatch(self.client, pod) as watch:
            try:
                super().await_pod_completion(pod)
            except ApiException as exc:
                # The log stream broke (e.g. 500: the API server cannot reach the kubelet): the node's fault?
                if cause := watch.verdict(NODE_VERDICT_TIMEOUT_S):
                    raise NodeLost(cause) from exc
                raise
            except Exception as exc:
                if watch.cause:
                    raise NodeLost(watch.cause) from exc
                raise
        if watch.cause:
            raise NodeLost(watch.cause)


def _sut_pod_kwargs(
    *, task_id: str, node: str | None, branch: str, gpus: int = 1, dep: Deployment | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    dep = _deployment(dep)
    s = dep.kubernetes
    if gpus < 0:
        raise ValueError(f"gpus must be >= 0, got {gpus}")
    kwargs: dict[str, Any] = dict(
        task_id=task_id,
        node=node,
        branch=branch,
        kubernetes_conn_id=s.conn_id,
        namespace=s.namespace,
        image=dep.sut_image,
        # The image's ENTRYPOINT is `python -m mlperf_sut`; callers pass `arguments=["run", ...]`.
        cmds=None,
        # Readable pod names in `kubectl get pods`; the provider adds a random suffix so mapped tasks never clash.
        name=f"sut-{_dns_label(branch, 12)}-{_dns_label(node or ANY_NODE, 30)}",
        random_name_suffix=True,
        # A pinned tag or digest does not change: do not re-pull a multi-GB vLLM image for every run.
        image_pull_policy=s.image_pull_policy,
        # Own, unprivileged account (deploy/rbac.yaml); the SUT never talks to the API, so no token is mounted.
        service_account_name=s.service_account,
        automount_service_account_token=False,
        # node=None (the coordinated run's LoadGen driver): any node; gpus=0: no GPU, so no GPU toleration either.
        affinity=node_affinity(node, s.node_label_key) if node else None,
        tolerations=gpu_tolerations() if gpus else [],
        container_resources=gpu_resources(gpus) if gpus else k8s.V1ResourceRequirements(),
        volumes=sut_volumes(dep),
        volume_mounts=sut_volume_mounts(dep),
        env_vars=sut_env(node),
        # Pulling the image and loading 16 GB of weights onto a cold node takes minutes, not the default 120 s.
        startup_timeout_seconds=s.startup_timeout_s,
        schedule_timeout_seconds=s.startup_timeout_s,
        # Airflow kills (and on_kill deletes) a hung run; the pod deadline bounds it even if the worker itself died.
        execution_timeout=timedelta(seconds=dep.run_timeout_s),
        active_deadline_seconds=dep.run_timeout_s + 600,
        # The pod's log is streamed into the task log while it runs; the artefacts are on the shared volume.
        get_logs=True,
        # On failure: the pod's events (Unschedulable, OOMKilled, ImagePullBackOff) go to the task log, but not the
        # whole pod spec, which the provider would otherwise append to the exception, burying the SUT's own message.
        log_events_on_failure=True,
        log_pod_spec_on_failure=False,
        # A finished pod (success or failure) is deleted: its GPU is free for the next run and its artefacts are
        # already on the artefacts volume. on_kill (timeout, "mark failed") deletes it too.
        on_finish_action="delete_pod",
        on_kill_action="delete_pod",
        # A crashing SUT's last log lines become the container's termination message, which the provider puts into
        # the task's exception: the reason is in the failure itself, not only in the (deleted) pod's log.
        termination_message_policy="FallbackToLogsOnError",
        # One retry for transient node trouble. No retry ever leaves a second pod: a failed try's pod is deleted by
        # on_finish_action before the try ends, and if the worker died mid-run, the next try reattaches to the
        # still-running pod (found by the persisted pod identity or by its dag/task/run/map-index labels) instead
        # of starting a duplicate on the same GPUs (`durable`, which replaced reattach_on_restart in Airflow 3.3).
        retries=1,
        retry_delay=timedelta(minutes=1),
        durable=True,
    )
    kwargs.update(overrides)
    return kwargs


def sut_pod(*, task_id: str, node: str | None, branch: str, gpus: int = 1,
            dep: Deployment | None = None, **overrides: Any) -> SutPodOperator:
    """The SUT pod operator for one node: `sut_pod(task_id=..., node=..., branch=..., arguments=["run", ...])`.

    `gpus` is the tensor-parallel size. `node=None, gpus=0` is the coordinated run's LoadGen driver (no affinity, no
    GPU: its vLLM servers hold the GPUs). `dep`: the deployment whose settings the pod gets (the DAG passes its own).
    Any KubernetesPodOperator argument in `overrides` replaces the default.
    """
    return SutPodOperator(**_sut_pod_kwargs(task_id=task_id, node=node, branch=branch, gpus=gpus, dep=dep,
                                            **overrides))


def sut_pod_partial(*, task_id: str, node: str | None, branch: str, gpus: int = 1,
                    dep: Deployment | None = None, **overrides: Any):
    """The same defaults for a mapped task: `sut_pod_partial(task_id=, node=, branch=).expand(arguments=[...])`.

    One partial per node (and branch): `node` fixes the affinity, the GPU request's placement, the labels and the pod
    name, so only what differs between that node's runs (`arguments`, possibly from an upstream XCom) is mapped.
    """
    kwargs = _sut_pod_kwargs(task_id=task_id, node=node, branch=branch, gpus=gpus, dep=dep, **overrides)
    task_id = kwargs.pop("task_id")
    return SutPodOperator.partial(task_id=task_id, **kwargs)


# --------------------------------------------------------------------------------------------------------------------
# The coordinated distributed branch: one vLLM server (pod + Service) per node
# --------------------------------------------------------------------------------------------------------------------

def core_v1(conn_id: str) -> CoreV1Api:
    """A CoreV1Api from the Airflow connection (kubernetes_default: in-cluster, kubeconfig file or kube_config)."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    return KubernetesHook(conn_id=conn_id).core_v1_client


def server_pod_manifest(*, run_id: str, node: str, image: str, engine_args: list[str], model_path: str,
                        gpus: int = 1, dep: Deployment, dag_id: str | None = None) -> k8s.V1Pod:
    name = server_name(run_id, node)
    settings = dep.kubernetes
    labels = {**_labels(dag_id=dag_id, run_id=run_id, node=node, branch="distributed", role="vllm-server"),
              LABEL_SERVER: name}
    container = k8s.V1Container(
        name=SERVER_CONTAINER,
        image=image,
        image_pull_policy=settings.image_pull_policy,
        args=["serve", "--model", model_path, "--host", "0.0.0.0", "--port", str(SERVER_PORT), *engine_args],
        ports=[k8s.V1ContainerPort(name="http", container_port=SERVER_PORT, protocol="TCP")],
        # Ready only when vLLM's engine has loaded the weights and answers /health: setup waits for exactly this.
        readiness_probe=k8s.V1Probe(
            http_get=k8s.V1HTTPGetAction(path="/health", port="http"),
            period_seconds=5, timeout_seconds=3, failure_threshold=3,
        ),
        resources=gpu_resources(gpus),
        volume_mounts=sut_volume_mounts(dep),
        env=sut_env(node),
        termination_message_policy="FallbackToLogsOnError",
    )
    return k8s.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=k8s.V1ObjectMeta(name=name, namespace=settings.namespace, labels=labels),
        spec=k8s.V1PodSpec(
            containers=[container],
            affinity=node_affinity(node, settings.node_label_key),
            tolerations=gpu_tolerations(),
            volumes=sut_volumes(dep),
            service_account_name=settings.service_account,
            automount_service_account_token=False,
            # A crashed server must fail the setup/run visibly, not come back mid-benchmark with a cold cache.
            restart_policy="Never",
            # Bounds the GPU time of a server whose teardown never ran (Airflow down, DAG edited mid-run).
            active_deadline_seconds=settings.server_lifetime_s,
        ),
    )


def server_service_manifest(*, run_id: str, node: str, namespace: str,
                            dag_id: str | None = None) -> k8s.V1Service:
    name = server_name(run_id, node)
    labels = _labels(dag_id=dag_id, run_id=run_id, node=node, branch="distributed", role="vllm-server")
    return k8s.V1Service(
        api_version="v1",
        kind="Service",
        metadata=k8s.V1ObjectMeta(name=name, namespace=namespace, labels=labels),
        spec=k8s.V1ServiceSpec(
            type="ClusterIP",
            selector={LABEL_SERVER: name},
            ports=[k8s.V1ServicePort(name="http", port=SERVER_PORT, target_port="http", protocol="TCP")],
        ),
    )


def server_url(run_id: str, node: str, namespace: str) -> str:
    return f"http://{server_name(run_id, node)}.{namespace}.svc:{SERVER_PORT}"


class ServerNotReady(RuntimeError):
    """A node's vLLM server failed or did not become ready in time (the message names the node)."""


def create_vllm_servers(
    run_id: str,
    nodes: list[str],
    image: str,
    engine_args: list[str],
    model_path: str,
    *,
    gpus: int = 1,
    namespace: str | None = None,
    ready_timeout_s: float | None = None,
    poll_interval_s: float = 5.0,
    delete_on_failure: bool = True,
    dag_id: str | None = None,
    conn_id: str | None = None,
    client: CoreV1Api | None = None,
    dep: Deployment | None = None,
) -> dict[str, str]:
    """Start one vLLM server pod and Service per node and wait until every one is ready: {node: base URL}.

    Idempotent for a retried setup task: an existing, still-running server of this run is reused; a finished one is
    replaced. On failure (a server fails or is not ready within `ready_timeout_s`) the error names the node and, by
    default, every server of this run is deleted so no GPU stays held; the DAG's teardown calls
    `delete_vllm_servers` anyway.
    """
    if not nodes:
        raise ValueError("create_vllm_servers needs at least one node")
    if len(set(nodes)) != len(nodes):
        raise ValueError(f"duplicate nodes: {nodes}")
    dep = _deployment(dep)
    if namespace:
        dep = dataclasses.replace(dep, kubernetes=dataclasses.replace(dep.kubernetes, namespace=namespace))
    api = client or core_v1(conn_id or dep.kubernetes.conn_id)
    ns = dep.kubernetes.namespace
    timeout = dep.server_start_timeout_s if ready_timeout_s is None else ready_timeout_s
    try:
        for node in nodes:
            pod = server_pod_manifest(run_id=run_id, node=node, image=image, engine_args=engine_args,
                                      model_path=model_path, gpus=gpus, dep=dep, dag_id=dag_id)
            _create_pod_once(api, pod, poll_interval_s=poll_interval_s)
            service = server_service_manifest(run_id=run_id, node=node, namespace=ns, dag_id=dag_id)
            try:
                api.create_namespaced_service(namespace=ns, body=service)
            except ApiException as exc:
                if exc.status != 409:   # already there from an earlier try: same name, same selector
                    raise
            log.info("vLLM server for node %s: pod and service %s/%s created", node, ns, service.metadata.name)
        _wait_ready(api, run_id, nodes, ns, timeout, poll_interval_s)
    except BaseException:
        if delete_on_failure:
            try:
                delete_vllm_servers(run_id, nodes, namespace=ns, client=api)
            except Exception:   # the setup's own error is the one to report; teardown retries the deletion
                log.exception("could not delete the vLLM servers of run %s after a failed setup", run_id)
        raise
    return {node: server_url(run_id, node, ns) for node in nodes}


def _create_pod_once(api: CoreV1Api, pod: k8s.V1Pod, *, poll_interval_s: float) -> None:
    ns, name = pod.metadata.namespace, pod.metadata.name
    try:
        api.create_namespaced_pod(namespace=ns, body=pod)
        return
    except ApiException as exc:
        if exc.status != 409:
            raise
    existing = api.read_namespaced_pod(name=name, namespace=ns)
    phase = existing.status.phase if existing.status else None
    if phase not in ("Succeeded", "Failed"):
        log.info("reusing vLLM server pod %s/%s (phase %s) from an earlier try", ns, name, phase)
        return
    log.info("replacing finished vLLM server pod %s/%s (phase %s)", ns, name, phase)
    _delete_ignoring_missing(api.delete_namespaced_pod, name, ns)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            api.read_namespaced_pod(name=name, namespace=ns)
        except ApiException as exc:
            if exc.status == 404:
                break
            raise
        time.sleep(poll_interval_s)
    api.create_namespaced_pod(namespace=ns, body=pod)


def _pod_state(pod: k8s.V1Pod) -> tuple[bool, str | None]:
    """(ready, failure description or None)."""
    status = pod.status
    if status is None:
        return False, None
    if status.phase in ("Failed", "Succeeded"):
        reason = status.reason or status.phase
        for cs in status.container_statuses or []:
            term = cs.state.terminated if cs.state else None
            if term is not None:
                reason = f"{reason}: exit code {term.exit_code}, {term.reason or ''} {term.message or ''}".strip()
        return False, f"pod phase {status.phase} ({reason})"
    for cs in status.container_statuses or []:
        waiting = cs.state.waiting if cs.state else None
        if waiting is not None and waiting.reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                                                      "CreateContainerConfigError", "CrashLoopBackOff"):
            return False, f"container {cs.name} waiting: {waiting.reason} {waiting.message or ''}".strip()
    ready = any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])
    return ready, None


def _describe_pending(pod: k8s.V1Pod) -> str:
    status = pod.status
    if status is None:
        return "no status yet"
    parts = [f"phase {status.phase}"]
    for c in status.conditions or []:
        if c.status != "True" and (c.reason or c.message):
            parts.append(f"{c.type}={c.status} {c.reason or ''} {c.message or ''}".strip())
    return ", ".join(parts)


def _wait_ready(api: CoreV1Api, run_id: str, nodes: list[str], ns: str, timeout_s: float,
                poll_interval_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = list(nodes)
    last: dict[str, k8s.V1Pod] = {}
    while True:
        for node in list(waiting):
            name = server_name(run_id, node)
            try:
                pod = api.read_namespaced_pod(name=name, namespace=ns)
            except ApiException as exc:
                if exc.status == 404:
                    raise ServerNotReady(f"vLLM server pod {ns}/{name} for node {node!r} disappeared") from exc
                raise
            last[node] = pod
            ready, failure = _pod_state(pod)
            if failure:
                raise ServerNotReady(f"vLLM server for node {node!r} (pod {ns}/{name}) failed: {failure}")
            if ready:
                log.info("vLLM server for node %s is ready", node)
                waiting.remove(node)
        if not waiting:
            return
        if time.monotonic() >= deadline:
            detail = "; ".join(f"node {n!r} (pod {ns}/{server_name(run_id, n)}): {_describe_pending(last[n])}"
                               for n in waiting if n in last)
            raise ServerNotReady(f"vLLM servers not ready after {timeout_s:.0f}s: {detail}")
        time.sleep(poll_interval_s)


def _delete_ignoring_missing(delete, name: str, namespace: str) -> bool:
    try:
        delete(name=name, namespace=namespace)
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


def delete_vllm_servers(run_id: str, nodes: list[str], *, namespace: str | None = None, conn_id: str | None = None,
                        client: CoreV1Api | None = None, dep: Deployment | None = None) -> list[str]:
    """Delete the vLLM server pods and Services of `run_id` on `nodes`; missing ones are fine (idempotent).

    Also deletes any other server of the same run found by label (a node list edited between setup and teardown).
    Returns the names of the objects that were deleted.
    """
    settings = _deployment(dep).kubernetes
    ns = namespace or settings.namespace
    api = client or core_v1(conn_id or settings.conn_id)
    names = {server_name(run_id, node) for node in nodes}
    selector = f"{LABEL_RUN}={safe_label_value(run_id)},{LABEL_ROLE}=vllm-server"
    for pod in api.list_namespaced_pod(namespace=ns, label_selector=selector).items:
        names.add(pod.metadata.name)
    deleted = []
    for name in sorted(names):
        if _delete_ignoring_missing(api.delete_namespaced_service, name, ns):
            deleted.append(f"service/{name}")
        if _delete_ignoring_missing(api.delete_namespaced_pod, name, ns):
            deleted.append(f"pod/{name}")
    log.info("deleted vLLM servers of run %s in %s: %s", run_id, ns, deleted or "none were left")
    return deleted
