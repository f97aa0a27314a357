"""Every DAG imports cleanly and follows the project's policy; failures name the DAG and the task."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.dags.conftest import DAG_ID, NODES

REQUIRED_TAGS = {"mlperf", "benchmark"}
# Tasks allowed to have no retry, and why (a reviewer sees the exception here, not hidden in the DAG).
NO_RETRY = {"verdict": "deterministic: it judges finished results; a retry only delays the same answer"}


def test_no_import_errors(dagbag):
    assert not dagbag.import_errors, "DAG import errors:\n" + "\n".join(
        f"{path}: {error}" for path, error in dagbag.import_errors.items())
    assert DAG_ID in dagbag.dag_ids, f"{DAG_ID} not found; DAGs: {dagbag.dag_ids}"


def test_policy_every_dag(dagbag):
    problems = []
    for dag_id, dag in dagbag.dags.items():
        if not REQUIRED_TAGS <= set(dag.tags):
            problems.append(f"{dag_id}: tags {sorted(dag.tags)} lack {sorted(REQUIRED_TAGS - set(dag.tags))}")
        if dag.max_active_runs != 1:
            problems.append(f"{dag_id}: max_active_runs={dag.max_active_runs}, want 1 (GPUs are exclusive)")
        if dag.catchup:
            problems.append(f"{dag_id}: catchup is on")
        for t in dag.tasks:
            if t.execution_timeout is None:
                problems.append(f"{dag_id}.{t.task_id}: no execution_timeout")
            if (not t.retries or t.retries < 1) and t.task_id not in NO_RETRY:
                problems.append(f"{dag_id}.{t.task_id}: retries={t.retries}")
    assert not problems, "\n".join(problems)


def test_nightly_schedule_from_deployment(dag):
    assert dag.schedule == "0 2 * * *" and dag.timetable.expression == "0 2 * * *"


def test_schedule_can_be_changed_or_disabled(monkeypatch, deploy_env):
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.conftest import DAGS

    monkeypatch.setenv("MLPERF_SCHEDULE", "none")
    dag = DagBag(dag_folder=str(DAGS)).dags[DAG_ID]
    assert dag.schedule is None and not dag.timetable.can_be_scheduled


def test_one_gpu_pool_per_node_and_static_per_node_tasks(dag):
    for node in NODES:
        for task_id in (f"single_{node}.sut", f"distributed.sharded_{node}"):
            assert dag.get_task(task_id).pool == f"mlperf_gpu_{node}", f"{DAG_ID}.{task_id}: wrong pool"


def test_graph_reads_like_the_benchmark(dag):
    def downstream(task_id):
        return {t.task_id for t in dag.get_task(task_id).get_flat_relatives(upstream=False)}

    chain = ["plan", "single_local-0.runs", "single_local-0.sut", "distributed.start_vllm_servers",
             "distributed.coordinated", "distributed.stop_vllm_servers", "parse_logs",
             "score_accuracy", "analyse", "charts_and_report", "record_history", "notify_team", "verdict"]
    for a, b in zip(chain, chain[1:]):
        assert b in downstream(a), f"{DAG_ID}: {b} is not downstream of {a}"
    assert dag.get_task("distributed.start_vllm_servers").is_setup
    assert dag.get_task("distributed.stop_vllm_servers").is_teardown
    assert "distributed.start_vllm_servers" in dag.get_task("distributed.stop_vllm_servers").upstream_task_ids


def test_steps_after_runs_still_run_when_a_node_fails_and_verdict_is_a_leaf(dag):
    for task_id in ("parse_logs", "score_accuracy", "analyse", "charts_and_report", "record_history", "notify_team",
                    "verdict"):
        assert dag.get_task(task_id).trigger_rule == "all_done", f"{DAG_ID}.{task_id}"
    leaves = {t.task_id for t in dag.leaves}
    assert "verdict" in leaves, f"{DAG_ID}: verdict must be a leaf so that its failure fails the run; leaves {leaves}"


def test_report_is_an_asset(dag):
    outlets = dag.get_task("charts_and_report").outlets
    assert [a.name for a in outlets] == ["mlperf_llama31_8b_report"]


def test_sut_runs_have_a_timeout_above_the_runner_timeout(dag):
    """A node's SUT process runs every test of a scenario: Airflow's timeout must outlast the plan's longest one
    (performance, accuracy and TEST06 at the deployment's 900 s each), or Airflow would kill it first."""
    from include import deployment
    from include.planning import plan

    dep = deployment.load()
    params = {name: p.value for name, p in plan.trigger_params(dep).items()}
    params.update(accuracy_scenarios=["Offline", "Server"], compliance_tests=["TEST06"])
    longest = max(r.timeout_s for r in plan.make_plan(params, dep, "r1").runs if r.branch == "single")
    assert longest == 3 * 900
    for node in NODES:
        assert dag.get_task(f"single_{node}.sut").execution_timeout > timedelta(seconds=longest)


def test_params_have_a_schema_and_a_description(dag):
    for name in dag.params:
        param = dag.params.get_param(name)
        schema = param.schema
        assert "type" in schema or "enum" in schema, f"{DAG_ID}: param {name} has no type"
        assert param.description, f"{DAG_ID}: param {name} has no description"


@pytest.mark.parametrize("runner", ["kubernetes"])
def test_kubernetes_runner_builds_the_same_graph(monkeypatch, deploy_env, runner):
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.conftest import DAGS

    monkeypatch.setenv("MLPERF_RUNNER", runner)
    monkeypatch.setenv("MLPERF_NODES", "gpu-a,gpu-b")
    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[DAG_ID]
    task = dag.get_task("single_gpu-a.sut")
    assert type(task).__name__ in ("SutPodOperator", "MappedOperator")
    assert task.pool == "mlperf_gpu_gpu-a"
    # a node's pod runs every test of a scenario: its own deadline outlasts Airflow's timeout for all of them
    deadline = task.partial_kwargs["active_deadline_seconds"]
    assert deadline > task.execution_timeout.total_seconds() > 3 * 900
