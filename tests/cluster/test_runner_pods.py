"""The kubernetes runner's pods on the real cluster: the project-wide pod factory (include/runners/kubernetes.py),
the provider's KubernetesPodOperator and the real scheduler, kubelets and containers, acting as the `airflow`
service account. A single run pinned to each node runs the real SUT (vLLM's CPU build, tiny model); then the faults:
the pod killed mid-run, an image that does not exist, the pod's deadline, a retry after the worker died, the node
going NotReady. Each leaves nothing of its run behind.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from include.runners import kubernetes as runner
from tests.cluster.local import NAMESPACE, NODES, REPO, LocalCluster
from tests.kubernetes.context import task_context

pytestmark = pytest.mark.slow


class PodWatch:
    """Records, from the admin side, every pod of one run and the node the scheduler bound it to."""

    def __init__(self, cluster: LocalCluster, run_id: str) -> None:
        self.api, self.selector = cluster.api(), f"{runner.LABEL_RUN}={runner.safe_label_value(run_id)}"
        self.nodes: dict[str, str | None] = {}
        self.phases: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            for pod in self.api.list_namespaced_pod(NAMESPACE, label_selector=self.selector).items:
                self.nodes[pod.metadata.name] = pod.spec.node_name or self.nodes.get(pod.metadata.name)
                self.phases[pod.metadata.name] = pod.status.phase
            time.sleep(0.3)

    def __enter__(self) -> "PodWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def wait_running(self, timeout_s: float = 180) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            running = [name for name, phase in self.phases.items() if phase == "Running"]
            if running:
                return running[0]
            time.sleep(0.2)
        raise AssertionError(f"no pod of {self.selector} running after {timeout_s:.0f} s: {self.phases}")


def _sut_task(task_id: str, node: str, run_id: str, *, samples: int = 16,
              extra_arguments: tuple[str, ...] = (), **overrides):
    """The SUT pod for `node` exactly as the DAG makes it (the node supplies the SUT environment and its CPU binding:
    deploy/local-cluster/up.sh's base runtime spec)."""
    out = f"/artifacts/{run_id}/single/{node}/Offline/performance"
    task = runner.sut_pod(
        task_id=task_id, node=node, branch="single",
        arguments=["run", "--scenario", "Offline", "--mode", "performance", "--model", "/models/tiny-llama",
                   "--dataset", "/data/cnn_eval.json", "--total-sample-count", str(samples), "--output-dir", out,
                   "--node", node, "--override", "min_duration=0", "--override", f"min_query_count={samples}",
                   *extra_arguments],
        **overrides)
    task.startup_check_interval_seconds = 1
    return task


def _execute(task, context) -> None:
    task.render_template_fields(context)
    task.execute(context)


def _run_in_thread(task, context) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _execute(task, context)
        except BaseException as exc:
            errors.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def _nothing_left(cluster: LocalCluster, run_id: str, timeout_s: float = 60) -> None:
    selector = f"{runner.LABEL_RUN}={runner.safe_label_value(run_id)}"
    deadline = time.monotonic() + timeout_s
    while (left := cluster.objects_labelled(selector)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == [], f"run {run_id} left {left}"


def _failure_text(exc: BaseException) -> str:
    """The operator's exception and the causes chained beneath it (the provider re-raises from its cleanup)."""
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def test_a_single_run_pinned_to_each_node_runs_the_sut_there(local_cluster, volumes, airflow_connection) -> None:
    run_id = f"cluster-single-{uuid.uuid4().hex[:8]}"
    with PodWatch(local_cluster, run_id) as watch:
        threads = {node: _run_in_thread(_sut_task(f"single_{i}", node, run_id),
                                        task_context(f"single_{i}", run_id=run_id))
                   for i, node in enumerate(NODES)}
        for node, (thread, errors) in threads.items():
            thread.join(timeout=900)
            assert not thread.is_alive(), f"the run on {node} did not finish"
            assert not errors, f"the run on {node} failed:\n{_failure_text(errors[0])}"
    # One pod per node, bound by the scheduler to the node the DAG asked for.
    placed = sorted(watch.nodes.values())
    assert placed == sorted(NODES), watch.nodes
    for node in NODES:
        run_dir = volumes["artifacts"] / run_id / "single" / node / "Offline/performance"
        result = json.loads((run_dir / "result.json").read_text())
        assert result["node"] == node and result["status"] != "failed", result
        assert "Result is" in (run_dir / "mlperf_log_summary.txt").read_text()
    _nothing_left(local_cluster, run_id)


def test_sut_pod_killed_mid_run_fails_the_task_and_leaves_nothing(local_cluster, volumes,
                                                                  airflow_connection) -> None:
    run_id = f"cluster-killed-{uuid.uuid4().hex[:8]}"
    # A run long enough to be killed in the middle: LoadGen keeps issuing queries for 10 minutes.
    task = _sut_task("killed", NODES[1], run_id, retries=0,
                     extra_arguments=("--override", "min_duration=600000"))
    with PodWatch(local_cluster, run_id) as watch:
        thread, errors = _run_in_thread(task, task_context("killed", run_id=run_id))
        pod = watch.wait_running()
        time.sleep(3)
        local_cluster.kubectl("-n", NAMESPACE, "delete", "pod", pod, "--grace-period=0", "--force")
        thread.join(timeout=300)
    assert not thread.is_alive(), "the task did not notice its pod was deleted"
    assert errors, "the task succeeded although its pod was killed"
    assert watch.nodes[pod] == NODES[1]
    _nothing_left(local_cluster, run_id)


def test_image_that_does_not_exist_fails_fast_with_the_cause(local_cluster, volumes, airflow_connection) -> None:
    run_id = f"cluster-noimage-{uuid.uuid4().hex[:8]}"
    image = "localhost:9/mlperf-sut:does-not-exist"
    task = _sut_task("no_image", NODES[0], run_id, retries=0, image=image)
    started = time.monotonic()
    with pytest.raises(AirflowException) as failure:
        _execute(task, task_context("no_image", run_id=run_id))
    text = _failure_text(failure.value)
    assert image in text or "ErrImagePull" in text or "ImagePullBackOff" in text, text
    assert time.monotonic() - started < 150, "the missing image was only noticed at the startup timeout"
    # The task deleted its pod at once: every pod of the run is already terminating (or gone) ...
    api = local_cluster.api()
    selector = f"{runner.LABEL_RUN}={runner.safe_label_value(run_id)}"
    pods = api.list_namespaced_pod(NAMESPACE, label_selector=selector).items
    assert all(p.metadata.deletion_timestamp is not None for p in pods), [p.metadata.name for p in pods]
    # ... but kubelet 1.20 may hold a pod deleted during its image-pull back-off for its 2-minute volume wait
    # ("Unable to attach or mount volumes ... unmounted volumes", measured on 2026-11-30: gone 124 s after the
    # delete), so "nothing left" is checked past that wait.
    _nothing_left(local_cluster, run_id, timeout_s=180)


def test_pod_past_its_deadline_is_stopped_and_the_timed_out_task_deletes_it(local_cluster, volumes,
                                                                           airflow_connection) -> None:
    """Both timeouts of a run: the pod's own deadline (active_deadline_seconds, the runner's bound even when Airflow
    is gone: Kubernetes kills the containers) and Airflow's execution_timeout, which calls the operator's on_kill.

    Kubelet 1.20 leaves a deadline-killed container's status at "running" (newer kubelets report it terminated), so
    here the operator only stops following the pod when the Airflow-side timeout fires, as it would in production.
    """
    run_id = f"cluster-deadline-{uuid.uuid4().hex[:8]}"
    task = _sut_task("deadline", NODES[0], run_id, retries=0, active_deadline_seconds=20,
                     extra_arguments=("--override", "min_duration=600000"))
    api = local_cluster.api()
    with PodWatch(local_cluster, run_id) as watch:
        thread, errors = _run_in_thread(task, task_context("deadline", run_id=run_id))
        pod = watch.wait_running()
        deadline = time.monotonic() + 180
        while (status := api.read_namespaced_pod(pod, NAMESPACE).status).phase != "Failed":
            assert time.monotonic() < deadline, f"the pod outlived its deadline: {status.phase}"
            time.sleep(1)
        assert status.reason == "DeadlineExceeded", status
        task.on_kill()                      # what Airflow's execution_timeout does to the running task
        thread.join(timeout=120)
    assert not thread.is_alive(), "the task kept following a deleted pod"
    assert errors, "the timed-out task succeeded"
    _nothing_left(local_cluster, run_id)


def test_retry_after_the_worker_died_reattaches_to_the_running_pod(local_cluster, volumes,
                                                                   airflow_connection) -> None:
    """The Airflow task process dies mid-run (try 1 created its pod, nothing cleaned up): try 2 must follow that
    still-running pod to its end, not start a second SUT on the same GPU."""
    run_id = f"cluster-reattach-{uuid.uuid4().hex[:8]}"
    with PodWatch(local_cluster, run_id) as watch:
        first = _sut_task("reattach", NODES[0], run_id)
        context1 = task_context("reattach", run_id=run_id, try_number=1)
        first.render_template_fields(context1)
        first.get_or_create_pod(first.build_pod_request_obj(context1), context1)
        orphan = watch.wait_running()

        _execute(_sut_task("reattach", NODES[0], run_id),
                 task_context("reattach", run_id=run_id, try_number=2))
    assert list(watch.nodes) == [orphan], f"a second pod was started: {watch.nodes}"
    result = volumes["artifacts"] / run_id / "single" / NODES[0] / "Offline/performance/result.json"
    assert json.loads(result.read_text())["node"] == NODES[0]
    _nothing_left(local_cluster, run_id)


def _node(cluster: LocalCluster, action: str, node: str) -> None:
    done = subprocess.run([str(REPO / "deploy/local-cluster/node.sh"), action, node], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "MLPERF_CLUSTER_DIR": str(cluster.state_dir)})
    assert done.returncode == 0, done.stdout + done.stderr


def _sut_processes_of(run_id: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "mlperf_sut" in line and run_id in line]


def test_node_that_goes_not_ready_fails_the_run_naming_the_node_and_leaves_nothing(local_cluster, volumes,
                                                                                   airflow_connection) -> None:
    """The kubelet of the pod's node dies mid-run: the control plane marks the node NotReady, the task fails naming
    the node and the cause (not hours later at its timeout), the pod is gone from the API, and once the kubelet is
    back it kills the orphaned container. The kubelet is started again whatever happened, for the later tests."""
    run_id = f"cluster-nodelost-{uuid.uuid4().hex[:8]}"
    node = NODES[1]
    task = _sut_task("node_lost", node, run_id, retries=0,
                     extra_arguments=("--override", "min_duration=600000"))
    try:
        with PodWatch(local_cluster, run_id) as watch:
            thread, errors = _run_in_thread(task, task_context("node_lost", run_id=run_id))
            pod = watch.wait_running()
            _node(local_cluster, "stop", node)
            thread.join(timeout=240)
        assert not thread.is_alive(), "the task kept following a pod whose node is gone"
        assert errors, "the task succeeded although its node went NotReady"
        text = _failure_text(errors[0])
        assert f"node {node} went NotReady" in text and pod in text, text
        assert list(watch.nodes) == [pod], f"more than one pod: {watch.nodes}"
        _nothing_left(local_cluster, run_id)
    finally:
        _node(local_cluster, "start", node)
    deadline = time.monotonic() + 180
    while local_cluster.kubectl("get", "node", node, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"
                                ).stdout != "True":
        assert time.monotonic() < deadline, f"{node} is not Ready again after its kubelet restarted"
        time.sleep(2)
    while _sut_processes_of(run_id):
        assert time.monotonic() < deadline, f"the deleted pod's SUT still runs: {_sut_processes_of(run_id)}"
        time.sleep(2)
