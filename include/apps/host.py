"""`python -m include.apps.host`: the benchmark DAG on one host without Kubernetes, run by Airflow itself.

For a machine with GPUs and no cluster (and for `make demo`, which is this on the CPU with the embedded profile):
the local runner starts the SUT as processes, each configured node pinned to its GPUs through CUDA_VISIBLE_DEVICES
(`--gpus h200-0=0,h200-1=1`), and `airflow dags test` runs the whole DAG (plan, SUT runs, parse, score, analyse,
submission, report, history, notify, verdict) with its metadata in SQLite under `--airflow-home`.

    python -m include.apps.host --nodes h200-0 --gpus h200-0=0 --model /models/Llama-3.1-8B-Instruct \\
        --dataset /data/cnn_eval.json --conf '{"engine_preset": "h200-fp8", "scenarios": ["Offline"]}'

Every other deploy-time setting (MLPERF_RETRIES, MLPERF_SUT_PYTHONPATH, MLPERF_HISTORY_URL, ...) is taken from the
environment as include/deployment.py documents. Exit status: 0 when the DAG run succeeded, 1 when it failed (the
report's paths are printed whenever it was written).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from include.deployment import NLTK_DATA, POOL_PREFIX, PROFILES

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "mlperf_llama31_8b"


def airflow_env(*, airflow_home: Path, artifacts: Path, nodes: str, profile: str, sut_python: str | None,
                deployment: dict[str, str] | None = None, defaults: dict[str, str] | None = None) -> dict[str, str]:
    """Airflow's and the deployment's environment for a DAG run on this host (local runner, SQLite metadata), for
    the `airflow` child processes: `deployment` is set, `defaults` apply where this process's environment has no
    value. The history URL is left to include/deployment.py (MLPERF_HISTORY_URL, else one in the artefacts)."""
    # The child's environment starts as a copy of this one (PATH, proxies, the user's MLPERF_* settings).
    env = dict(os.environ)
    sut_default = next((str(p) for p in (REPO / ".venv-sut/bin/python", Path("/tmp/venv-sut/bin/python"))
                        if p.exists()), str(REPO / ".venv-sut/bin/python"))
    for name, value in {"MLPERF_SCHEDULE": "none", "MLPERF_SUT_PYTHON": sut_default, **(defaults or {})}.items():
        env.setdefault(name, value)
    if NLTK_DATA.is_dir():
        env.setdefault("NLTK_DATA", str(NLTK_DATA))
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        "MLPERF_RUNNER": "local",
        "MLPERF_NODES": nodes,
        "MLPERF_PROFILE": profile,
        "MLPERF_ARTIFACTS_DIR": str(artifacts),
        **({"MLPERF_SUT_PYTHON": sut_python} if sut_python else {}),
        **(deployment or {}),
    })
    return env


def airflow(env: dict[str, str], *args: str, check: bool = True, log: Path | None = None) -> int:
    """An `airflow` command of this interpreter's environment (`python -m airflow`: an offline bundle on a GPU
    host has no console script); its output appended to `log` when given."""
    cmd = [sys.executable, "-m", "airflow", *args]
    print("+ airflow", " ".join(args), flush=True)
    if log is None:
        rc = subprocess.run(cmd, env=env, cwd=REPO).returncode
    else:
        with open(log, "a", encoding="utf-8") as out:
            rc = subprocess.run(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT).returncode
    if check and rc != 0:
        raise SystemExit(f"airflow {' '.join(args[:2])} failed with exit code {rc}" + (f"; log {log}" if log else ""))
    return rc


def prepare(env: dict[str, str], nodes: list[str]) -> None:
    """Metadata DB and one single-slot pool per GPU node (as a deployment would have them); Airflow's output in
    <AIRFLOW_HOME>/prepare.log."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    log = Path(env["AIRFLOW_HOME"]) / "prepare.log"
    log.write_text("")
    airflow(env, "db", "migrate", log=log)
    pools = {f"{POOL_PREFIX}{n}": {"slots": 1, "description": f"the GPU(s) of node {n}",
                                   "include_deferred": False} for n in nodes}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(pools, f)
    try:
        airflow(env, "pools", "import", f.name, log=log)
    finally:
        os.unlink(f.name)


@dataclass(frozen=True)
class HostRun:
    succeeded: bool
    run_id: str | None            # None: the plan task did not run
    run_dir: Path | None

    def report_paths(self) -> list[Path]:
        report = self.run_dir / "report" if self.run_dir else None
        return sorted(p for p in report.rglob("*") if p.is_file()) if report and report.is_dir() else []

    def verdict(self) -> str | None:
        """The pipeline's verdict, as the report states it (None when no report was written)."""
        try:
            return json.loads((self.run_dir / "report" / "analysis.json").read_text())["verdict"]["headline"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def print_summary(self) -> None:
        print(f"\nDAG run {self.run_id or '(none: the plan task did not run)'}: "
              f"{'success' if self.succeeded else 'FAILED'}")
        if self.run_dir:
            print(f"artefacts: {self.run_dir}")
        if verdict := self.verdict():
            print(f"verdict: {verdict}")
        paths = self.report_paths()
        for path in paths:
            print(f"  {'chart ' if path.suffix in ('.png', '.svg') else 'report'}  {path}")
        if not paths:
            print("  no report was written")


def latest_run(artifacts: Path, since: float) -> tuple[str, Path] | None:
    """The DAG run started here: the run directory whose plan.json was written after `since`."""
    plans = [p for p in artifacts.glob("*/plan.json") if p.stat().st_mtime >= since]
    if not plans:
        return None
    plan = max(plans, key=lambda p: p.stat().st_mtime)
    return json.loads(plan.read_text())["run_id"], plan.parent


# `airflow dags test`'s own lines about each task instance: where it starts, its new state, where it ends.
TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+) map_index=(-?\d+)")
TASK_STATE = re.compile(r"Task instance state updated .*new_state=(\w+)")
TASK_END = re.compile(r"\[DAG TEST\] end task task_id=(\S+) map_index=(-?\d+)")
MAP_NAME = re.compile(r"rendered_map_index='([^']+)'")


class TaskLines:
    """Turns Airflow's log into one line per task instance as it ends: its name, state and seconds."""

    def __init__(self, echo=print) -> None:
        self.echo, self.started, self.state, self.name = echo, 0.0, "?", ""

    def feed(self, line: str) -> None:
        if m := TASK_START.search(line):
            self.started, self.state, self.name = time.monotonic(), "?", ""
        elif m := TASK_STATE.search(line):
            self.state = m.group(1)
        elif m := MAP_NAME.search(line):
            self.name = m.group(1)
        elif m := TASK_END.search(line):
            task = m.group(1) + (f"[{self.name or m.group(2)}]" if m.group(2) != "-1" else "")
            self.echo(f"  {task:60s} {self.state:8s} {time.monotonic() - self.started:6.1f} s", flush=True)


def run_dag(env: dict[str, str], conf: dict, logical_date: str | None = None, log_path: Path | None = None) -> HostRun:
    """`airflow dags test` of the benchmark DAG with `conf`; the run it made and whether it succeeded. With
    `log_path`, Airflow's own output goes there and one line per task is printed as it ends."""
    logical_date = logical_date or datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    started = time.time() - 1
    args = ["dags", "test", DAG_ID, logical_date, "--conf", json.dumps(conf)]
    if log_path is None:
        rc = airflow(env, *args, check=False)
    else:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        print(f"+ airflow dags test {DAG_ID} {logical_date}  (Airflow's log: {log_path})", flush=True)
        lines = TaskLines()
        with open(log_path, "w", encoding="utf-8") as log, subprocess.Popen(
                [sys.executable, "-m", "airflow", *args], env=env, cwd=REPO, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
            for line in proc.stdout:      # type: ignore[union-attr]
                log.write(line)
                lines.feed(line)
        rc = proc.returncode
    found = latest_run(Path(env["MLPERF_ARTIFACTS_DIR"]), started)
    return HostRun(rc == 0, *(found or (None, None)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.apps.host", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--nodes", required=True, help="node names, comma-separated (e.g. h200-0,h200-1)")
    parser.add_argument("--gpus", default="", help="NODE=GPU[:GPU...],... (MLPERF_LOCAL_GPUS); empty: no pinning")
    parser.add_argument("--model", required=True, help="model directory (MLPERF_MODEL_DIR)")
    parser.add_argument("--dataset", required=True, help="cnn_eval.json (MLPERF_DATASET)")
    parser.add_argument("--profile", choices=PROFILES, default="full")
    parser.add_argument("--airflow-home", type=Path, default=REPO / ".airflow-host")
    parser.add_argument("--artifacts", type=Path, default=REPO / ".artifacts")
    parser.add_argument("--sut-python", default=None, help="the SUT's interpreter (MLPERF_SUT_PYTHON)")
    parser.add_argument("--conf", default="{}", help="the DAG run's params as JSON (the trigger form's values)")
    parser.add_argument("--logical-date", default=None, help="ISO date of the DAG run (default: now)")
    args = parser.parse_args(argv)
    try:
        conf = json.loads(args.conf)
    except json.JSONDecodeError as error:
        parser.error(f"--conf: not JSON ({error})")
    nodes = [n.strip() for n in args.nodes.split(",") if n.strip()]
    env = airflow_env(airflow_home=args.airflow_home.resolve(), artifacts=args.artifacts.resolve(),
                      nodes=",".join(nodes), profile=args.profile, sut_python=args.sut_python,
                      deployment={"MLPERF_LOCAL_GPUS": args.gpus, "MLPERF_MODEL_DIR": str(Path(args.model).resolve()),
                                  "MLPERF_DATASET": str(Path(args.dataset).resolve())})
    prepare(env, nodes)
    run = run_dag(env, conf, args.logical_date, log_path=args.airflow_home.resolve() / "dags-test.log")
    run.print_summary()
    return 0 if run.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
