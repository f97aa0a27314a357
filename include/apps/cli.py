"""Command line of the results library: rebuild a report from a folder of run artefacts, without Airflow.

    python -m include report ARTIFACTS_DIR --out DIR [--model DIR] [--dataset FILE] [--history-url URL]
                             [--run-id ID] [--record] [--threshold-pct PCT]

ARTIFACTS_DIR is one pipeline run's folder (<branch>/<node>/<scenario>/<mode>/) or any folder of LoadGen logs (an
MLPerf submission's <scenario>/performance/run_1/, another harness's output). The same pipeline as the DAG's.

    python -m include submission RUN_DIR --out DIR [--model DIR --dataset FILE]   (the MLPerf submission tree)
    python -m include submission --check DIR [--version v5.1|v6.0|v6.1]           (our check of a tree)

Exit status of `report`: 0 every run completed (VALID or INVALID: LoadGen's verdict is in the report),
1 a run failed or is missing, 2 bad usage, 3 no run was readable, 4 the report was written but `--record` did not
record the run (the history could not be written, or the run id is the DAG's; it takes precedence over 1 and 3).
The report is written in cases 0, 1, 3 and 4, and then its paths and the verdict are printed.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from include import mlperf_rules, pipeline
from include.deployment import Deployment
from include.history import HistoryUnavailable, RunIdentityConflict


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m include", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="analyse the runs of one pipeline run and write the report and charts",
                            description="Exit status: 0 every run completed, 1 a run failed or is missing, "
                                        "2 bad usage, 3 no run was readable, 4 the report was written but the run "
                                        "was not recorded (--record).")
    report.add_argument("artifacts_dir", type=Path,
                        help="one pipeline run's artefacts: <artifacts_root>/<run_id> holding <branch>/<node>/...")
    report.add_argument("--out", type=Path, required=True, help="folder for report.md, report.html and the charts")
    report.add_argument("--model", help="model directory (tokenizer for accuracy scoring; config.json for the "
                                        "parameter count of the plausibility bound)")
    report.add_argument("--dataset", help="the data set JSON (references for accuracy; prompt lengths)")
    report.add_argument("--history-url", help="SQLAlchemy URL of the history store (regressions, trend chart)")
    report.add_argument("--run-id", help="run id (default: a DAG run's own, from its plan.json, else the artefacts "
                                         "folder's name)")
    report.add_argument("--threshold-pct", type=float, default=pipeline.DEFAULT_THRESHOLD_PCT,
                        help="smallest change counted as a regression, in percent (default %(default)s)")
    report.add_argument("--record", action="store_true", help="also record the run in the history store")
    submission = sub.add_parser(
        "submission", help="lay out one pipeline run as an MLPerf submission tree, or check a tree",
        description="Deploy-time fields (division, submitter, status, system description file) come from "
                    "MLPERF_SUBMISSION_DIVISION, MLPERF_SUBMITTER, MLPERF_SYSTEM_STATUS and MLPERF_SYSTEM_DESCRIPTION. "
                    "Exit status: 0 the tree passes the check, 1 it has problems (each printed with the rule and "
                    "the file), 2 bad usage, 3 no completed run to lay out.")
    submission.add_argument("artifacts_dir", type=Path, nargs="?", help="one pipeline run's artefacts folder")
    submission.add_argument("--out", type=Path, help="folder to write the tree into (<out>/<division>/<submitter>/)")
    submission.add_argument("--check", type=Path, metavar="DIR", help="only check the tree under DIR")
    submission.add_argument("--version", choices=list(mlperf_rules.CHECKER_ROUNDS),
                            help="with --check: the MLCommons checker round whose rules apply (its --version; "
                                 "default: the round whose seeds the tree's performance logs carry)")
    submission.add_argument("--model", help="model directory: scores unscored accuracy runs, TEST06's EOS token")
    submission.add_argument("--dataset", help="the data set JSON (references for scoring accuracy runs)")
    from include.apps import plan_cli
    plan_cli.add_parser(sub)           # python -m include plan: the DAG's plan as JSON
    return parser


EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_NOTHING_READABLE, EXIT_NOT_RECORDED = 0, 1, 2, 3, 4


def _out_dir_problem(out: Path) -> str | None:
    """Why --out cannot be the report's folder, or None (it exists now)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
        return f"{blocker} is a file, not a folder" if blocker else exc.strerror or str(exc)
    return None


def _run_id(args: argparse.Namespace) -> str:
    """--run-id, else a DAG run's id from the plan.json in its folder (the folder's name is the id made file-safe,
    plan.run_slug: recording under it made a second copy of the DAG's run), else the folder's name."""
    if args.run_id:
        return args.run_id
    try:
        planned = json.loads((args.artifacts_dir / "plan.json").read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        planned = None
    return planned if isinstance(planned, str) and planned else args.artifacts_dir.resolve().name


def report(args: argparse.Namespace, dep: Deployment | None = None) -> int:
    if not args.artifacts_dir.is_dir():
        print(f"error: {args.artifacts_dir} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    if args.record and not args.history_url:
        print("error: --record needs --history-url", file=sys.stderr)
        return EXIT_USAGE
    if not math.isfinite(args.threshold_pct) or args.threshold_pct < 0:
        print(f"error: --threshold-pct must be a finite percentage >= 0, not {args.threshold_pct:g}",
              file=sys.stderr)
        return EXIT_USAGE
    problem = _out_dir_problem(args.out)
    if problem:
        print(f"error: --out {args.out}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    run_id = _run_id(args)
    try:
        analysis, paths = pipeline.run(args.artifacts_dir, args.out, run_id=run_id, history_url=args.history_url,
                                       threshold_pct=args.threshold_pct, model_dir=args.model,
                                       dataset_path=args.dataset)
    except OSError as exc:
        print(f"error: --out {args.out}: the report could not be written: {exc}", file=sys.stderr)
        return EXIT_USAGE
    not_recorded = None
    if args.record:
        try:
            pipeline.record_report(args.history_url, analysis, paths, dep.artifacts_dir if dep else None)
        except (RunIdentityConflict, HistoryUnavailable, SQLAlchemyError) as exc:
            # The report stands; the history stays as it was (the write is one transaction, or never began).
            not_recorded = str(exc).splitlines()[0]
        else:
            print(f"recorded: {run_id} in {args.history_url.split('@')[-1]}")
    print(f"report: {paths.markdown}")
    print(f"report: {paths.html}")
    for name, path in paths.charts.items():
        print(f"chart {name}: {path}")
    for note in analysis.notes:
        print(f"note: {note}", file=sys.stderr)
    verdict = analysis.verdict
    print(f"verdict: {verdict.headline}")
    if not_recorded:
        print(f"error: not recorded: {not_recorded}", file=sys.stderr)
        return EXIT_NOT_RECORDED
    if not analysis.records:
        print(f"error: no run directories under {args.artifacts_dir} (expected <branch>/<node>/<scenario>/<mode>/ "
              "or folders of LoadGen logs)", file=sys.stderr)
        return EXIT_NOTHING_READABLE
    if all(r.result is None and r.loadgen is None for r in analysis.records):
        print(f"error: no run under {args.artifacts_dir} was readable: " + "; ".join(
            f"{v.name}: {v.cause}" for v in verdict.runs), file=sys.stderr)
        return EXIT_NOTHING_READABLE
    if verdict.failed:
        print(f"error: {len(verdict.failed)} run(s) failed or missing", file=sys.stderr)
        return EXIT_RUN_FAILED
    return EXIT_OK


def submission(args: argparse.Namespace, dep: Deployment | None = None) -> int:
    from include import deployment
    from include.submission import checker, run

    if args.check is not None:
        if args.artifacts_dir is not None or args.out is not None:
            print("error: --check DIR takes no run folder and no --out", file=sys.stderr)
            return EXIT_USAGE
        if not args.check.is_dir():
            print(f"error: --check {args.check}: not a directory", file=sys.stderr)
            return EXIT_USAGE
        rules = checker.choose_round(args.check, args.version)
        print(rules.line())
        result = run.check_result(args.check, checker.check(args.check, rules.version), rules=rules)
    else:
        if args.version is not None:
            print(f"error: --version goes with --check: a tree laid out here is for {mlperf_rules.CHECKER_VERSION} "
                  "(the round of the seeds our runs log)", file=sys.stderr)
            return EXIT_USAGE
        if args.artifacts_dir is None or args.out is None:
            print("error: give a run folder and --out DIR, or --check DIR", file=sys.stderr)
            return EXIT_USAGE
        if not args.artifacts_dir.is_dir():
            print(f"error: {args.artifacts_dir} is not a directory", file=sys.stderr)
            return EXIT_USAGE
        records = pipeline.parse_folder(args.artifacts_dir)
        if args.model and args.dataset:
            records = pipeline.score(records, args.model, args.dataset)
        if not any(r.status == "completed" and r.sut is not None for r in records):
            print(f"error: no completed run with result.json under {args.artifacts_dir}", file=sys.stderr)
            return EXIT_NOTHING_READABLE
        try:
            result = run.make(records, args.out, run.deploy_fields(dep or deployment.load()), args.model)
        except (deployment.DeploymentError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_USAGE
        for system in result["systems"]:
            print(f"system {system['system_id']}: {', '.join(system['scenarios'])}"
                  + (f"; fields nobody recorded: {', '.join(system['missing_fields'])}" if system["missing_fields"]
                     else ""))
        for line in result["skipped"]:
            print(f"not laid out: {line}")
        print(f"tree: {args.out}")
    for line in result["problems"]:
        print(f"FAIL {line}")
    print(result["line"])
    return EXIT_OK if result["passed"] else EXIT_RUN_FAILED


def main(argv: list[str] | None = None, dep: Deployment | None = None) -> int:
    """`dep`: the deployment whose settings apply (default: this process's environment; `make demo` passes its own)."""
    args = _parser().parse_args(argv)
    if args.command == "report":
        return report(args, dep)
    if args.command == "submission":
        return submission(args, dep)
    if args.command == "plan":
        from include.apps import plan_cli
        return plan_cli.main(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
