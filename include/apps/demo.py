"""`python -m include.apps.demo`: the whole benchmark DAG, end to end, on this machine, with `airflow dags test`.

Embedded profile (MLPERF_PROFILE=embedded: a small, NOT MLPerf-compliant run), local runner, the tiny model and
data set of `make tiny`, two simulated GPU nodes (local-0, local-1), Airflow metadata in SQLite under .airflow/.
Steps: `airflow db migrate`, one pool per node, `airflow dags test`, then the run's state and the report's paths.
Exit status: 0 when the DAG run succeeded, 1 when it failed (the report is still printed when it exists).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from include import deployment
from include.apps.host import REPO, airflow_env, prepare, run_dag

REFERENCE_RUNS = REPO / "reference" / "h200"        # one NVIDIA H200
REFERENCE_X2_RUNS = REPO / "reference" / "h200x2"   # two NVIDIA H200 of one host: single, sharded, coordinated
REFERENCE_MODEL = REPO / "tools" / "gpu" / "llama-3.1-8b"   # config.json only: the runs used dummy weights
# The demo's workload: single branch Offline + Server performance and Offline accuracy per node, then the
# coordinated distributed Offline run over both nodes (each vLLM engine start on a CPU is ~15-20 s).
DEMO_CONF = {"scenarios": ["Offline", "Server"], "mode": "both", "accuracy_scenarios": ["Offline"],
             "distributed": "coordinated", "distributed_scenarios": ["Offline"]}


def demo_env(*, airflow_home: Path, artifacts: Path, nodes: str, sut_python: str | None) -> dict[str, str]:
    """The embedded default: the local runner on the CPU, the tiny model, the embedded profile; unless this
    environment says otherwise, retries after 5 s and a 1 GiB KV cache per CPU engine."""
    return airflow_env(airflow_home=airflow_home, artifacts=artifacts, nodes=nodes, profile="embedded",
                       sut_python=sut_python, defaults={"MLPERF_RETRY_DELAY_S": "5", "VLLM_CPU_KVCACHE_SPACE": "1"})


def import_reference(dep: deployment.Deployment, root: Path = REFERENCE_RUNS) -> list[Path]:
    """The committed GPU reference runs under `root` (one folder per configuration, or per tune.py sweep: an
    attempt per subfolder, the pipeline reads each as a single-node test): each rendered by the
    pipeline's report CLI and recorded in the demo's history, so the Benchmarks page shows real GPU figures.
    Runs that failed on the GPU are reported as failed (the CLI's exit status 1 is expected for them). A folder whose
    tests the history cannot keep apart (tune.py sweeps from before it named each attempt's node: every attempt
    says h200-0) is rendered but not recorded, and the demo prints why. `dep`: the demo's deployment (its history
    and artefacts root)."""
    from include.apps import cli
    from include.history.store import validate_records
    from include.results import run_artifacts

    reports = []
    log = dep.artifacts_dir / f"reference-{root.name}" / "import.log"   # the report CLI's own lines, a block per run
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    for run in sorted(p for p in root.iterdir() if p.is_dir()):
        # under the demo's artefacts root: the history stores the report's path relative to it
        out = dep.artifacts_dir / f"reference-{root.name}" / run.name
        out.mkdir(parents=True, exist_ok=True)
        record = ["--record", "--history-url", dep.history_url, "--run-id", f"{root.name}-reference-{run.name}"]
        try:
            validate_records([run_artifacts.read_run(d, b) for b, d in run_artifacts.discover_runs(run)])
        except ValueError as refused:
            print(f"reference run {run.name}: rendered, not recorded in the history: {refused}")
            record = []
        with open(log, "a", encoding="utf-8") as quiet, contextlib.redirect_stdout(quiet), \
                contextlib.redirect_stderr(quiet):
            print(f"== {run.name}")
            cli.main(["report", str(run), "--out", str(out), "--model", str(REFERENCE_MODEL), *record], dep)
        reports.append(out / "report.html")
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.apps.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--airflow-home", type=Path, default=REPO / ".airflow")
    parser.add_argument("--artifacts", type=Path, default=REPO / ".artifacts")
    parser.add_argument("--nodes", default="local-0,local-1")
    parser.add_argument("--sut-python", default=None)
    parser.add_argument("--logical-date", default=None,
                        help="ISO date; the same date again re-runs the same DAG run id (history stays unique)")
    parser.add_argument("--conf", default=None, help="JSON merged over the demo's params")
    parser.add_argument("--skip-prepare", action="store_true", help="DB and pools already exist")
    parser.add_argument("--no-reference", action="store_true",
                        help="do not record the committed H200 reference run in the history (tests of the DAG alone)")
    args = parser.parse_args(argv)
    airflow_home, artifacts = args.airflow_home.resolve(), args.artifacts.resolve()
    nodes = [n.strip() for n in args.nodes.split(",") if n.strip()]
    env = demo_env(airflow_home=airflow_home, artifacts=artifacts, nodes=",".join(nodes), sut_python=args.sut_python)
    if not args.skip_prepare:
        prepare(env, nodes)
    run = run_dag(env, {**DEMO_CONF, **json.loads(args.conf or "{}")}, args.logical_date,
                  log_path=airflow_home / "dags-test.log")
    run.print_summary()
    if not args.no_reference:
        dep = deployment.load(env)          # the deployment the DAG run had: its history and artefacts root
        for root in (REFERENCE_RUNS, REFERENCE_X2_RUNS):
            reports = import_reference(dep, root)
            print(f"reference GPU runs of {root.relative_to(REPO)}/: {len(reports)} reports under "
                  f"{reports[0].parent.parent if reports else artifacts}, recorded in the same history")
    print("\nthe Benchmarks page on this history: make ui (prints the URL and the login)")
    return 0 if run.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
