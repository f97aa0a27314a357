"""The benchmark DAG on the real cluster, end to end: a real Airflow (api-server, scheduler with LocalExecutor,
dag-processor; PostgreSQL metadata) with MLPERF_RUNNER=kubernetes, triggered through the REST API with params as a
user would. Every SUT process is a pod the real scheduler binds to a node; the single-GPU runs of both nodes run at
the same time (one pool slot per node), then the distributed branch (sharded in one run, coordinated in the other:
`distributed` is one choice per run), then parse -> score -> analyse -> report as usual. The report of each run is
the main evidence.

What this does not cover: real GPUs (the nodes advertise nvidia.com/gpu without one, vLLM runs its CPU build), the
full-size model and data set (the embedded profile's tiny ones), and a production DNS add-on (see
deploy/local-cluster/README.md).
"""
from __future__ import annotations

import time
from datetime import datetime

import pytest

from include.runners.kubernetes import LABEL_RUN, safe_label_value
from tests.cluster.airflow_stack import AirflowOnCluster, airflow_on_cluster
from tests.cluster.local import NODES, LocalCluster

pytestmark = pytest.mark.slow

RUN_TIMEOUT_S = 20 * 60
SMALL = {"scenarios": ["Offline"], "mode": "performance", "distributed_scenarios": ["Offline"]}


@pytest.fixture(scope="module")
def airflow(local_cluster: LocalCluster, volumes, tmp_path_factory) -> AirflowOnCluster:
    with airflow_on_cluster(local_cluster, tmp_path_factory.mktemp("airflow-on-cluster")) as stack:
        yield stack


def _run(airflow: AirflowOnCluster, conf: dict) -> tuple[str, dict[str, list[dict]]]:
    """Trigger, wait, and return the run id and its task instances by task id; a red run fails with its tasks'
    states and the failed tasks' log tails."""
    run_id = airflow.trigger(conf)
    state = airflow.wait(run_id, RUN_TIMEOUT_S)
    tis: dict[str, list[dict]] = {}
    for ti in airflow.task_instances(run_id):
        tis.setdefault(ti["task_id"], []).append(ti)
    if state != "success":
        failed = [ti for group in tis.values() for ti in group if ti["state"] not in ("success", "skipped")]
        logs = "\n".join(f"--- {ti['task_id']}[{ti['map_index']}] {ti['state']}\n"
                         f"{airflow.task_log(run_id, ti['task_id'], ti['map_index'])[-3000:]}" for ti in failed)
        pytest.fail(f"DAG run {run_id} is {state}: {airflow.task_states(run_id)}\n{logs}")
    return run_id, tis


def _interval(tis: list[dict]) -> tuple[datetime, datetime]:
    assert tis and all(ti["state"] == "success" for ti in tis), tis
    return (min(datetime.fromisoformat(ti["start_date"]) for ti in tis),
            max(datetime.fromisoformat(ti["end_date"]) for ti in tis))


def _ran_in_parallel(tis: dict[str, list[dict]], task_ids: list[str]) -> None:
    intervals = {task_id: _interval(tis[task_id]) for task_id in task_ids}
    latest_start = max(start for start, _ in intervals.values())
    earliest_end = min(end for _, end in intervals.values())
    assert latest_start < earliest_end, f"not at the same time: {intervals}"


def _report(airflow: AirflowOnCluster, run_id: str) -> str:
    plans = [p for p in airflow.artifacts.glob("*/plan.json") if f'"{run_id}"' in p.read_text()]
    assert len(plans) == 1, plans
    return (plans[0].parent / "report" / "report.md").read_text()


def _result_row(report: str, node: str, branch: str) -> str:
    rows = [line for line in report.splitlines() if line.startswith(f"| {node} | {branch} | Offline |")]
    assert len(rows) == 1, f"{node}/{branch}: {rows}\n{report}"
    return rows[0]


def _single_runs_in_parallel_on_their_pools(tis: dict[str, list[dict]]) -> None:
    for node in NODES:
        assert {ti["pool"] for ti in tis[f"single_{node}.sut"]} == {f"mlperf_gpu_{node}"}
    _ran_in_parallel(tis, [f"single_{node}.sut" for node in NODES])


def _nothing_left(cluster: LocalCluster, run_id: str) -> None:
    selector = f"{LABEL_RUN}={safe_label_value(run_id)}"
    deadline = time.monotonic() + 60
    while (left := cluster.objects_labelled(selector)) and time.monotonic() < deadline:
        time.sleep(1)
    assert left == [], f"run {run_id} left {left}"


def _verdict_and_single_rows(report: str, performance_runs: int) -> None:
    # Every run VALID, and honest about the embedded profile's shortcuts.
    assert f"**Verdict: VALID: all {performance_runs} performance runs · not MLPerf-compliant**" in report, report[:800]
    for node in NODES:
        assert "**VALID**" in _result_row(report, node, "single")


def test_sharded_run_single_runs_in_parallel_then_every_node_on_its_shard(local_cluster, airflow) -> None:
    run_id, tis = _run(airflow, {**SMALL, "distributed": "sharded"})
    _single_runs_in_parallel_on_their_pools(tis)
    _ran_in_parallel(tis, [f"distributed.sharded_{node}" for node in NODES])
    report = _report(airflow, run_id)
    _verdict_and_single_rows(report, performance_runs=2 * len(NODES))
    for node in NODES:
        assert "**VALID**" in _result_row(report, node, "distributed")
    _nothing_left(local_cluster, run_id)


def test_coordinated_run_drives_a_vllm_server_pod_per_node_through_services(local_cluster, airflow) -> None:
    run_id, tis = _run(airflow, {**SMALL, "distributed": "coordinated"})
    _single_runs_in_parallel_on_their_pools(tis)
    for task_id in ("distributed.start_vllm_servers", "distributed.coordinated", "distributed.stop_vllm_servers"):
        _interval(tis[task_id])
    report = _report(airflow, run_id)
    _verdict_and_single_rows(report, performance_runs=len(NODES) + 1)
    assert "**VALID**" in _result_row(report, "+".join(NODES), "distributed")
    # One LoadGen drove both servers through their Services: each node's share of the samples is in the report.
    shares = report.split("| node | samples | output tokens | share of tokens | tokens/s |", 1)[1].splitlines()[2:4]
    assert sorted(row.split(" | ")[0].strip("| ") for row in shares) == sorted(NODES), shares
    assert all(int(row.split(" | ")[1]) > 0 for row in shares), shares
    _nothing_left(local_cluster, run_id)
