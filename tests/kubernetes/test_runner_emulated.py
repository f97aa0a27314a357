"""The kubernetes runner end to end against an emulated cluster (tests/kubernetes/emulator.py).

The real KubernetesPodOperator.execute and the real `kubernetes` client talk HTTP to kmock's API server; a node
agent runs each pod's container as a local process (fake_sut.py stands in for the SUT image). No real cluster can
run on these machines, so scheduling, kubelet and volumes are emulated: see emulator.py for exactly what.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from include.runners import kubernetes as runner
from tests.kubernetes.context import NAMESPACE, NODES, REAL_SUT_IMAGE, REAL_SUT_PYTHON, SUT_IMAGE, task_context

OUT = "/artifacts/run-1/single/gpu-node-a/Offline/performance"


def _sut_task(task_id: str, *arguments: str, **overrides):
    task = runner.sut_pod(task_id=task_id, node="gpu-node-a", branch="single",
                          arguments=["run", "--scenario", "Offline", "--output-dir", OUT, *arguments], **overrides)
    # Poll the emulator quickly; the defaults (5 s, 1 s) are for real clusters.
    task.startup_check_interval_seconds = 0.1
    task.base_container_status_polling_interval = 0.1
    return task


def _execute(task, context) -> None:
    task.render_template_fields(context)
    task.execute(context)


def _pods(cluster, task_id: str | None = None) -> list[dict]:
    return [p for p in cluster.live("pods", NAMESPACE)
            if task_id is None or p["metadata"]["labels"].get("task_id") == task_id]


def _created_pods(cluster) -> list[str]:
    return [name for plural, _, name in cluster.call(lambda: list(cluster.emulator.created)) if plural == "pods"]


def test_successful_run_writes_artefacts_to_the_volume_and_deletes_its_pod(cluster) -> None:
    context = task_context("run_single")
    _execute(_sut_task("run_single"), context)

    result = cluster.artifacts_dir / "run-1/single/gpu-node-a/Offline/performance/result.json"
    assert json.loads(result.read_text())["node"] == "gpu-node-a"
    assert _pods(cluster) == []                       # on_finish_action=delete_pod
    assert len(_created_pods(cluster)) == 1
    assert context["ti"].xcoms["pod_namespace"] == NAMESPACE


def test_failing_pod_fails_the_task_with_the_log_tail_and_is_deleted(cluster) -> None:
    with pytest.raises(AirflowException) as failure:
        _execute(_sut_task("run_single", "--fake-exit-code", "3"), task_context("run_single"))
    # FallbackToLogsOnError: the SUT's last words are in the task's exception, not only in a deleted pod's log.
    assert "engine died, exiting with 3" in str(failure.value)
    assert _pods(cluster) == []


def test_retry_after_a_failed_try_never_leaves_a_second_pod(cluster) -> None:
    marker = "/artifacts/run-1/failed-once"
    with pytest.raises(AirflowException):
        _execute(_sut_task("run_single", "--fake-fail-once", marker), task_context("run_single", try_number=1))
    assert _pods(cluster) == []
    # Airflow runs the retry as a fresh copy of the task with try_number 2.
    _execute(_sut_task("run_single", "--fake-fail-once", marker), task_context("run_single", try_number=2))

    assert len(_created_pods(cluster)) == 2           # one pod per try ...
    assert cluster.call(lambda: cluster.emulator.max_live_pods["run_single"]) == 1   # ... never two at once
    assert _pods(cluster) == []


def test_retry_after_the_worker_died_reattaches_instead_of_starting_a_duplicate(cluster) -> None:
    # Try 1 gets as far as creating its pod, then its worker dies (nothing cleans up).
    first = _sut_task("run_single", "--fake-sleep", "1.5")
    context1 = task_context("run_single", try_number=1)
    first.render_template_fields(context1)
    first.get_or_create_pod(first.build_pod_request_obj(context1), context1)
    deadline = time.monotonic() + 10
    while not any(p["status"].get("phase") == "Running" for p in _pods(cluster)) and time.monotonic() < deadline:
        time.sleep(0.05)
    (orphan,) = _pods(cluster)
    assert orphan["status"]["phase"] == "Running"

    # Try 2 finds the still-running pod by its dag/task/run labels and follows it to the end.
    _execute(_sut_task("run_single", "--fake-sleep", "1.5"), task_context("run_single", try_number=2))

    assert _created_pods(cluster) == [orphan["metadata"]["name"]]
    assert cluster.call(lambda: cluster.emulator.max_live_pods["run_single"]) == 1
    assert (cluster.artifacts_dir / "run-1/single/gpu-node-a/Offline/performance/result.json").exists()
    assert _pods(cluster) == []


def test_killed_task_deletes_its_running_pod(cluster) -> None:
    """execution_timeout or "mark failed" calls on_kill: the pod (and its GPUs) must go."""
    task = _sut_task("run_single", "--fake-sleep", "30")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _execute(task, task_context("run_single"))
        except BaseException as exc:   # the follow loop ends with an error once the pod is gone
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not any(p["status"].get("phase") == "Running" for p in _pods(cluster)) and time.monotonic() < deadline:
        time.sleep(0.05)
    task.on_kill()
    assert _pods(cluster) == []
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_unschedulable_node_times_out_with_a_clear_error(cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPERF_POD_STARTUP_TIMEOUT_S", "1")
    task = runner.sut_pod(task_id="run_ghost", node="gpu-node-missing", branch="single", arguments=["run"])
    task.startup_check_interval_seconds = 0.1
    with pytest.raises(AirflowException) as failure:
        _execute(task, task_context("run_ghost"))
    # The provider's cleanup raises "returned a failure" from its finally block; the cause is chained beneath it.
    assert "too long to be scheduled" in str(failure.value.__context__)
    assert _pods(cluster) == []


# ------------------------------------------------------------------------------------------------ coordinated branch

def _servers(cluster) -> tuple[list[dict], list[dict]]:
    pods = [p for p in cluster.live("pods", NAMESPACE) if p["metadata"]["labels"].get("mlperf/role") == "vllm-server"]
    return pods, cluster.live("services", NAMESPACE)


def test_coordinated_setup_creates_ready_servers_and_teardown_removes_them(cluster) -> None:
    run_id = "scheduled__2026-11-29T02:00:00+00:00"
    urls = runner.create_vllm_servers(run_id, NODES, SUT_IMAGE, ["--fake-ready-delay", "0.3"], "/models/llama",
                                      ready_timeout_s=30, poll_interval_s=0.1)

    pods, services = _servers(cluster)
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(NODES)
    assert all({"type": "Ready", "status": "True"} in p["status"]["conditions"] for p in pods)
    assert len(services) == 2
    assert urls == {n: f"http://{runner.server_name(run_id, n)}.{NAMESPACE}.svc:8000" for n in NODES}

    # A retried setup task reuses the running servers.
    assert runner.create_vllm_servers(run_id, NODES, SUT_IMAGE, [], "/models/llama", ready_timeout_s=30,
                                      poll_interval_s=0.1) == urls
    assert len(_servers(cluster)[0]) == 2

    deleted = runner.delete_vllm_servers(run_id, NODES)
    assert len(deleted) == 4
    assert _servers(cluster) == ([], [])
    assert runner.delete_vllm_servers(run_id, NODES) == []      # idempotent


def test_teardown_removes_servers_when_the_coordinated_run_fails(cluster) -> None:
    """The DAG's shape: setup -> LoadGen driver pod -> teardown (a teardown task runs even after a failure)."""
    run_id = "manual__coordinated-fails"
    urls = runner.create_vllm_servers(run_id, NODES, SUT_IMAGE, [], "/models/llama", ready_timeout_s=30,
                                      poll_interval_s=0.1)
    endpoints = [a for n in NODES for a in ("--endpoint", f"{n}={urls[n]}")]
    try:
        with pytest.raises(AirflowException):
            _execute(_sut_task("run_coordinated", "--fake-exit-code", "1", *endpoints),
                     task_context("run_coordinated", run_id=run_id))
    finally:
        runner.delete_vllm_servers(run_id, NODES)
    assert _servers(cluster) == ([], [])
    assert cluster.live("pods", NAMESPACE) == []


def test_a_server_that_crashes_fails_setup_naming_the_node_and_cleans_up(cluster) -> None:
    with pytest.raises(runner.ServerNotReady, match="gpu-node-a.*exit code 7.*failed to load model"):
        runner.create_vllm_servers("run-crash", ["gpu-node-a"], SUT_IMAGE, ["--fake-exit-code", "7"],
                                   "/models/llama", ready_timeout_s=30, poll_interval_s=0.1)
    assert _servers(cluster) == ([], [])


def test_a_server_on_an_unknown_node_times_out_naming_the_node(cluster) -> None:
    with pytest.raises(runner.ServerNotReady, match="not ready after 1s.*gpu-node-missing.*Unschedulable"):
        runner.create_vllm_servers("run-ghost", ["gpu-node-a", "gpu-node-missing"], SUT_IMAGE, [],
                                   "/models/llama", ready_timeout_s=1, poll_interval_s=0.1)
    assert _servers(cluster) == ([], [])


# ------------------------------------------------------------------------------------------------ the real SUT

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL, TINY_DATASET = REPO / ".cache" / "tiny-llama", REPO / ".cache" / "tiny-cnn" / "cnn_eval.json"


@pytest.mark.slow
@pytest.mark.skipif(not (REAL_SUT_PYTHON.exists() and (TINY_MODEL / "config.json").exists() and TINY_DATASET.exists())
                    and not os.environ.get("CI"),    # in CI `make test` builds them: missing means failing
                    reason="needs `make venvs tiny` (.venv-sut and the tiny model and data set)")
def test_real_sut_runs_in_an_emulated_pod(cluster) -> None:
    """The real `python -m mlperf_sut run` (vLLM on the CPU, LoadGen) as the container of a real operator's pod."""
    (cluster.volume_dirs["test-model"] / "tiny-llama").symlink_to(TINY_MODEL, target_is_directory=True)
    (cluster.volume_dirs["test-dataset"] / "cnn_eval.json").symlink_to(TINY_DATASET)
    out = "/artifacts/run-real/single/gpu-node-a/Offline/performance"
    task = runner.sut_pod(task_id="run_real", node="gpu-node-a", branch="single", image=REAL_SUT_IMAGE, arguments=[
        "run", "--scenario", "Offline", "--mode", "performance", "--model", "/models/tiny-llama",
        "--dataset", "/data/cnn_eval.json", "--total-sample-count", "64", "--output-dir", out,
        "--node", "gpu-node-a", "--override", "min_duration=0", "--override", "min_query_count=64"])
    task.startup_check_interval_seconds = 0.2
    _execute(task, task_context("run_real"))
    run_dir = cluster.artifacts_dir / "run-real/single/gpu-node-a/Offline/performance"
    assert (run_dir / "mlperf_log_summary.txt").exists()
    assert json.loads((run_dir / "result.json").read_text())["schema_version"] == 1
    assert _pods(cluster) == []
