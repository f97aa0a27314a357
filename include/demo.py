"""`python -m include.demo`: the whole benchmark DAG, end to end, on this machine, with `airflow dags test`.

Embedded profile (MLPERF_PROFILE=embedded: a small, NOT MLPerf-compliant run), local runner, the tiny model and
data set of `make tiny`, two simulated GPU nodes (local-0, local-1), Airflow metadata in SQLite under .airflow/.
Steps: `airflow db migrate`, one pool per node, `airflow dags test`, then the run's state and the report's paths.
Exit status: 0 when the DAG run succeeded, 1 when it failed (the report is still printed when it exists).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from include.deployment import POOL_PREFIX

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "mlperf_llama31_8b"
REFERENCE_RUNS = REPO / "reference" / "h200"        # one NVIDIA H200
REFERENCE_X2_RUNS = REPO / "reference" / "h200x2"   # two NVIDIA H200 of one host: single, sharded, coordinated
REFERENCE_MODEL = REPO / "benchmarks" / "h200" / "llama-3.1-8b"   # config.json only: the runs used dummy weights
# The demo's workload: single branch Offline + Server performance and Offline accuracy per node, then the
# coordinated distributed Offline run over both nodes (each vLLM engine start on a CPU is ~15-20 s).
DEMO_CONF = {"scenarios": ["Offline", "Server"], "mode": "both", "accuracy_scenarios": ["Offline"],
             "distributed": "coordinated", "distributed_scenarios": ["Offline"]}


def demo_env(*, airflow_home: Path, artifacts: Path, nodes: str, sut_python: str | None) -> dict[str, str]:
    env = dict(os.environ)
    sut = sut_python or env.get("MLPERF_SUT_PYTHON") or next(
        (str(p) for p in (REPO / ".venv-sut/bin/python", Path("/tmp/venv-sut/bin/python")) if p.exists()),
        str(REPO / ".venv-sut/bin/python"))
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        "MLPERF_RUNNER": "local",
        "MLPERF_NODES": nodes,
        "MLPERF_PROFILE": "embedded",
        "MLPERF_SCHEDULE": env.get("MLPERF_SCHEDULE", "none"),
        "MLPERF_ARTIFACTS_DIR": str(artifacts),
        "MLPERF_HISTORY_URL": env.get("MLPERF_HISTORY_URL") or f"sqlite:///{artifacts / 'history.sqlite'}",
        "MLPERF_SUT_PYTHON": sut,
        "MLPERF_RETRY_DELAY_S": env.get("MLPERF_RETRY_DELAY_S", "5"),
        "MLPERF_LOAD_FORMAT": env.get("MLPERF_LOAD_FORMAT", "auto"),
        "VLLM_CPU_KVCACHE_SPACE": env.get("VLLM_CPU_KVCACHE_SPACE", "1"),
    })
    if (REPO / ".cache/nltk_data").is_dir():
        env.setdefault("NLTK_DATA", str(REPO / ".cache/nltk_data"))
    return env


def _airflow(env: dict[str, str], *args: str, check: bool = True) -> int:
    airflow = Path(sys.executable).with_name("airflow")
    cmd = [str(airflow) if airflow.exists() else "airflow", *args]
    print("+", " ".join(cmd), flush=True)
    rc = subprocess.run(cmd, env=env, cwd=REPO).returncode
    if check and rc != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed with exit code {rc}")
    return rc


def prepare(env: dict[str, str], nodes: list[str]) -> None:
    """Metadata DB and one single-slot pool per simulated GPU node (as a deployment would have them)."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    _airflow(env, "db", "migrate")
    pools = {f"{POOL_PREFIX}{n}": {"slots": 1, "description": f"the simulated GPU of node {n}",
                                   "include_deferred": False} for n in nodes}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(pools, f)
    try:
        _airflow(env, "pools", "import", f.name)
    finally:
        os.unlink(f.name)


def latest_run(artifacts: Path, since: float) -> tuple[str, Path] | None:
    """The DAG run this demo started: the run directory whose plan.json was written after `since`."""
    plans = [p for p in artifacts.glob("*/plan.json") if p.stat().st_mtime >= since]
    if not plans:
        return None
    plan = max(plans, key=lambda p: p.stat().st_mtime)
    return json.loads(plan.read_text())["run_id"], plan.parent


def import_reference(history_url: str, artifacts: Path, root: Path = REFERENCE_RUNS) -> list[Path]:
    """The committed GPU reference runs under `root` (one folder per configuration, or per tune.py sweep: an
    attempt per subfolder, the pipeline reads each as a single-node test): each rendered by the
    pipeline's report CLI and recorded in the demo's history, so the Benchmarks page shows real GPU figures.
    Runs that failed on the GPU are reported as failed (the CLI's exit status 1 is expected for them). A folder whose
    tests the history cannot keep apart (tune.py sweeps from before it named each attempt's node: every attempt
    says h200-0) is rendered but not recorded, and the demo prints why."""
    from include import cli, run_artifacts
    from include.history.store import validate_records

    reports = []
    # The reports lie under the demo's artefacts root: the history stores their paths relative to it.
    saved = os.environ.get("MLPERF_ARTIFACTS_DIR")
    os.environ["MLPERF_ARTIFACTS_DIR"] = str(artifacts)
    try:
        for run in sorted(p for p in root.iterdir() if p.is_dir()):
            out = artifacts / f"reference-{root.name}" / run.name
            out.mkdir(parents=True, exist_ok=True)
            record = ["--record", "--history-url", history_url, "--run-id", f"{root.name}-reference-{run.name}"]
            try:
                validate_records([run_artifacts.read_run(d, b) for b, d in run_artifacts.discover_runs(run)])
            except ValueError as refused:
                print(f"reference run {run.name}: rendered, not recorded in the history: {refused}")
                record = []
            cli.main(["report", str(run), "--out", str(out), "--model", str(REFERENCE_MODEL), *record])
            reports.append(out / "report.html")
    finally:
        if saved is None:
            os.environ.pop("MLPERF_ARTIFACTS_DIR", None)
        else:
            os.environ["MLPERF_ARTIFACTS_DIR"] = saved
    return reports


def report_paths(run_dir: Path) -> list[Path]:
    report_dir = run_dir / "report"
    return sorted(p for p in report_dir.rglob("*") if p.is_file()) if report_dir.is_dir() else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.demo", description=__doc__.splitlines()[0])
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
    logical_date = args.logical_date or datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    conf = {**DEMO_CONF, **json.loads(args.conf or "{}")}
    started = time.time() - 1
    rc = _airflow(env, "dags", "test", DAG_ID, logical_date, "--conf", json.dumps(conf), check=False)
    found = latest_run(artifacts, started)
    run_id, run_dir = found if found else ("(none: the plan task did not run)", artifacts)
    print(f"\nDAG run {run_id}: {'success' if rc == 0 else 'FAILED'}")
    print(f"artefacts: {run_dir}")
    paths = report_paths(run_dir) if found else []
    for path in paths:
        print(f"  {'chart ' if path.suffix in ('.png', '.svg') else 'report'}  {path}")
    if not paths:
        print("  no report was written")
    if not args.no_reference:
        for root in (REFERENCE_RUNS, REFERENCE_X2_RUNS):
            print(f"\nreference GPU runs ({root.relative_to(REPO)}/), recorded in the same history:")
            for path in import_reference(env["MLPERF_HISTORY_URL"], artifacts, root):
                print(f"  report  {path}")
    print("\nthe Benchmarks page on this history: make ui (prints the URL and the login)")
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
