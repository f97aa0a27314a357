"""Runners: how a planned SUT run becomes a process, chosen at deploy time (MLPERF_RUNNER).

* kubernetes: a pod per planned run (a node's tests of one scenario on one engine) from the project's one pod
  factory (`runners.kubernetes.sut_pod_partial`); the coordinated branch's vLLM servers are pods + Services
  (`create_vllm_servers` / `delete_vllm_servers`).
* local: the same `python -m mlperf_sut` command as a process group of the SUT's venv (`runners.local`); the
  coordinated branch's servers are `serve` processes on 127.0.0.1.

`sut_runs(...)` returns the mapped Airflow task for one node's (or the coordinator's) runs with the project's task
defaults: the node's GPU pool, execution_timeout, retries. The DAG file stays the same for both runners.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from include.deployment import Deployment

# Airflow's execution_timeout is a backstop behind the runner's own timeout, which kills more precisely
# (the process group, the pod) and says which run it was.
TIMEOUT_MARGIN_S = 300


def task_defaults(dep: Deployment) -> dict[str, Any]:
    return {"retries": dep.retries, "retry_delay": timedelta(seconds=dep.retry_delay_s),
            "execution_timeout": timedelta(minutes=30)}


def run_local(spec: dict[str, Any]) -> dict[str, Any]:
    """Task body of one local SUT run. Bad input (SUT exit 2) fails at once: a retry would fail the same way."""
    from airflow.sdk.exceptions import AirflowFailException

    from include import deployment
    from include.runners import local

    try:
        dep = deployment.load()
        return local.run_spec(spec, dep.sut_python, dep.sut_pythonpath, dep.local_gpus)
    except local.SutBadInput as exc:
        raise AirflowFailException(str(exc)) from None


def arguments_of(spec: dict[str, Any]) -> list[str]:
    return spec["arguments"]


def sut_runs(dep: Deployment, *, task_id: str, node: str | None, branch: str, runs: Any,
             tensor_parallel_size: int = 1):
    """The mapped task running `runs` (an XComArg: a list of RunSpec dicts) on `node`.

    `node=None` is the coordinated run's LoadGen driver: it holds no GPU, so no GPU pool (its servers do).
    """
    from include.planning.plan import MAX_TESTS_PER_RUN

    # A single-GPU run is one SUT process for all tests of a scenario (the plan's RunSpec.timeout_s is the
    # deployment's run timeout per test); the timeout is fixed when the DAG is parsed, so it covers the most tests.
    runner_timeout_s = dep.run_timeout_s * (MAX_TESTS_PER_RUN if branch == "single" else 1)
    run_timeout = timedelta(seconds=runner_timeout_s + TIMEOUT_MARGIN_S)
    common = {**task_defaults(dep), "task_id": task_id, "execution_timeout": run_timeout,
              "pool": dep.pool(node) if node else "default_pool"}
    if dep.runner == "kubernetes":
        from kubernetes.client import models as k8s

        from include.runners.kubernetes import sut_pod_partial

        # The pod's own deadline beyond Airflow's: it bounds the pod even if the worker died.
        extra: dict[str, Any] = {"image": "{{ params.sut_image }}",
                                 "active_deadline_seconds": runner_timeout_s + 2 * TIMEOUT_MARGIN_S}
        if node is None:          # the coordinator: any node, no GPU
            extra.update(affinity=None, container_resources=k8s.V1ResourceRequirements())
        return sut_pod_partial(node=node or dep.nodes[0], branch=branch, gpus=tensor_parallel_size, dep=dep,
                               **common, **extra).expand(arguments=runs.map(arguments_of))
    from airflow.sdk import task

    return task(run_local, **common, map_index_template="{{ task.op_kwargs['spec']['name'] }}").expand(spec=runs)


def start_servers(dep: Deployment, servers: dict[str, Any], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Setup of the coordinated branch: one vLLM server per node; returns the coordinator's runs with their
    --endpoint NODE=URL flags (empty when the branch is off)."""
    nodes = servers["nodes"]
    if not nodes or not runs:
        return []
    if dep.runner == "kubernetes":
        from include.runners.kubernetes import create_vllm_servers

        tp = int(servers["engine_args"][servers["engine_args"].index("--tensor-parallel-size") + 1])
        urls = create_vllm_servers(servers["run_id"], nodes, servers["image"], servers["engine_args"],
                                   servers["model_path"], gpus=tp, dep=dep)
    else:
        from include.runners import local

        urls = local.start_servers(run_dir=servers["run_dir"], nodes=nodes, model_path=servers["model_path"],
                                   engine_args=servers["engine_args"], sut_python=dep.sut_python,
                                   pythonpath=dep.sut_pythonpath, gpus=dep.local_gpus,
                                   ready_timeout_s=dep.server_start_timeout_s)
    endpoint_args = [arg for node in nodes for arg in ("--endpoint", f"{node}={urls[node]}")]
    return [{**r, "arguments": [*r["arguments"], *endpoint_args]} for r in runs]


def stop_servers(dep: Deployment, servers: dict[str, Any]) -> list[str]:
    """Teardown of the coordinated branch: remove this run's servers, whatever happened (idempotent)."""
    if not servers["nodes"]:
        return []
    if dep.runner == "kubernetes":
        from include.runners.kubernetes import delete_vllm_servers

        return delete_vllm_servers(servers["run_id"], servers["nodes"], dep=dep)
    from include.runners import local

    return local.stop_servers(servers["run_dir"])
