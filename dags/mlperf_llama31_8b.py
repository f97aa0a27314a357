"""MLPerf Inference llama3.1-8b on vLLM: every GPU node alone, then all nodes on one workload; results, history, report.

plan -> single-GPU runs (per node, in parallel) -> distributed runs -> parse logs -> score accuracy -> analyse
(scaling, plausibility, regressions, the one verdict) -> charts and report (an Asset) -> record history -> notify
-> verdict (red if a run failed, the pipeline could not judge, or a regression with fail_on_regression).
Deploy-time settings (runner, nodes, schedule, paths): include/deployment.py. Params: include/planning/plan.py.
Results pipeline: include/pipeline.py (the same stages `python -m include report` runs).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, TaskGroup, setup, task, teardown

from include import deployment, pipeline, runners
from include.planning import plan as planning
from include.reporting import notify
from include.submission import run as submission_tree

DEPLOY = deployment.load()
# Other DAGs can schedule on the report; each event's extra holds that run's report and chart paths.
REPORT = Asset(name="mlperf_llama31_8b_report", uri=f"file://{DEPLOY.artifacts_dir}/reports")
SERVER_START_TIMEOUT = timedelta(seconds=DEPLOY.server_start_timeout_s + runners.TIMEOUT_MARGIN_S)
AFTER_RUNS = {"trigger_rule": "all_done"}     # a failed node still gets its report; `verdict` makes the run red


@task(multiple_outputs=True)
def plan(params=None, run_id=None):
    return planning.plan_outputs(params, DEPLOY, run_id)


@task
def runs_of(plan: dict, node: str, branch: str):
    return planning.runs_of(plan, node, branch)


@setup
def start_vllm_servers(servers: dict, runs: list):
    return runners.start_servers(DEPLOY, servers, runs)


@teardown
def stop_vllm_servers(servers: dict):
    return runners.stop_servers(DEPLOY, servers)


@task(**AFTER_RUNS)
def parse_logs(plan: dict):
    return pipeline.parse_task(plan)


@task(**AFTER_RUNS)
def score_accuracy(plan: dict, records: list):
    return pipeline.score_task(plan, records)


@task(**AFTER_RUNS)
def analyse(plan: dict, records: list, dag_run=None):
    return pipeline.analyse_task(DEPLOY.history_url, plan, records,
                                 logical_date=dag_run.logical_date or dag_run.run_after)


@task(**AFTER_RUNS)
def submission(plan: dict, records: list):
    return submission_tree.submission_task(plan, records, DEPLOY)


@task(outlets=[REPORT], **AFTER_RUNS)
def charts_and_report(plan: dict, analysis: dict, checked: dict | None, outlet_events=None):
    paths = outlet_events[REPORT].extra = pipeline.report_task(plan, analysis, checked)   # the event says where
    return paths


@task(**AFTER_RUNS)
def record_history(plan: dict, analysis: dict, paths: dict | None, dag_run=None):
    return pipeline.record_task(DEPLOY.history_url, plan, analysis, paths, dag_id=dag_run.dag_id,
                                run_type=dag_run.run_type, logical_date=dag_run.logical_date or dag_run.run_after)


@task(**AFTER_RUNS)
def notify_team(plan: dict, analysis: dict | None, paths: dict | None, recorded: dict | None):
    return notify.notify(notify.summary(plan, analysis, paths, recorded), DEPLOY.notify_webhook)


@task(retries=0, **AFTER_RUNS)              # deterministic: a retry would only delay the same answer
def verdict(summary: dict | None, plan: dict, analysis: dict | None, recorded: dict | None):
    return notify.verdict(summary, plan, analysis, recorded)


with DAG(
    dag_id="mlperf_llama31_8b",
    description="MLPerf Inference llama3.1-8b (vLLM + LoadGen): single-GPU and distributed, nightly",
    schedule=DEPLOY.schedule,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,                 # with one pool slot per GPU node: two benchmarks never share a GPU
    tags=["mlperf", "llama3.1-8b", "benchmark", f"runner:{DEPLOY.runner}", f"profile:{DEPLOY.profile}"],
    params=planning.trigger_params(DEPLOY),
    default_args=runners.task_defaults(DEPLOY),
    dagrun_timeout=timedelta(hours=24),
    doc_md=__doc__,
):
    p = plan()
    single, sharded = [], []
    for n in DEPLOY.nodes:                         # nodes are deploy-time config: static tasks, one GPU pool each
        with TaskGroup(f"single_{n}", tooltip=f"single-GPU runs on {n}"):
            runs = runs_of.override(task_id="runs")(p["plan"], n, "single")
            single.append(runners.sut_runs(DEPLOY, task_id="sut", node=n, branch="single", runs=runs))

    with TaskGroup("distributed", tooltip="all selected nodes on one workload, after the single-GPU runs"):
        servers = start_vllm_servers.override(trigger_rule="all_done", execution_timeout=SERVER_START_TIMEOUT)(
            p["servers"], p["coordinated"])
        coordinated = runners.sut_runs(DEPLOY, task_id="coordinated", node=None, branch="distributed", runs=servers)
        servers_down = stop_vllm_servers(p["servers"]).as_teardown(setups=servers)
        single >> servers >> coordinated >> servers_down
        for n in DEPLOY.nodes:                     # sharded: every node runs LoadGen on its shard at the same time
            runs = runs_of.override(task_id=f"shard_{n}_runs", trigger_rule="all_done")(p["plan"], n, "distributed")
            sharded.append(runners.sut_runs(DEPLOY, task_id=f"sharded_{n}", node=n, branch="distributed", runs=runs))
            single >> runs

    parsed = parse_logs(p["plan"])
    [coordinated, servers_down, *sharded] >> parsed
    scored = score_accuracy(p["plan"], parsed)
    analysis = analyse(p["plan"], scored)
    paths = charts_and_report(p["plan"], analysis, submission(p["plan"], scored))
    recorded = record_history(p["plan"], analysis, paths)
    summary = notify_team(p["plan"], analysis, paths, recorded)
    verdict(summary, p["plan"], analysis, recorded)
