"""Command line of the results library: rebuild a report from a folder of run artefacts, without Airflow.

    python -m include report ARTIFACTS_DIR --out DIR [--model DIR] [--dataset FILE] [--history-url URL]
                             [--run-id ID] [--record] [--threshold-pct PCT]

ARTIFACTS_DIR is one pipeline run's folder (<branch>/<node>/<scenario>/<mode>/) or any folder of LoadGen logs (an
MLPerf submission's <scenario>/performance/run_1/, another harness's output). The same pipeline as the DAG's.

Exit status of `report`: 0 every run completed (VALID or INVALID: LoadGen's verdict is in the report),
1 a run failed or is missing, 2 bad usage, 3 no run was readable. The report is written in cases 0, 1 and 3.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from include import pipeline


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m include", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="analyse the runs of one pipeline run and write the report and charts",
                            description="Exit status: 0 every run completed, 1 a run failed or is missing, "
                                        "2 bad usage, 3 no run was readable.")
    report.add_argument("artifacts_dir", type=Path,
                        help="one pipeline run's artefacts: <artifacts_root>/<run_id> holding <branch>/<node>/...")
    report.add_argument("--out", type=Path, required=True, help="folder for report.md, report.html and the charts")
    report.add_argument("--model", help="model directory (tokenizer for accuracy scoring; config.json for the "
                                        "parameter count of the plausibility bound)")
    report.add_argument("--dataset", help="the data set JSON (references for accuracy; prompt lengths)")
    report.add_argument("--history-url", help="SQLAlchemy URL of the history store (regressions, trend chart)")
    report.add_argument("--run-id", help="run id (default: the artefacts folder's name)")
    report.add_argument("--threshold-pct", type=float, default=pipeline.DEFAULT_THRESHOLD_PCT,
                        help="smallest change counted as a regression, in percent (default %(default)s)")
    report.add_argument("--record", action="store_true", help="also record the run in the history store")
    from include import plan_commands
    plan_commands.add_parser(sub)      # python -m include plan [--commands]: the DAG's plan, or its commands
    return parser


EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_NOTHING_READABLE = 0, 1, 2, 3


def report(args: argparse.Namespace) -> int:
    if not args.artifacts_dir.is_dir():
        print(f"error: {args.artifacts_dir} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    if args.record and not args.history_url:
        print("error: --record needs --history-url", file=sys.stderr)
        return EXIT_USAGE
    run_id = args.run_id or args.artifacts_dir.resolve().name
    analysis, paths = pipeline.run(args.artifacts_dir, args.out, run_id=run_id, history_url=args.history_url,
                                   threshold_pct=args.threshold_pct, model_dir=args.model,
                                   dataset_path=args.dataset, record_run=args.record)
    if args.record:
        print(f"recorded: {run_id} in {args.history_url.split('@')[-1]}")
    print(f"report: {paths.markdown}")
    print(f"report: {paths.html}")
    for name, path in paths.charts.items():
        print(f"chart {name}: {path}")
    for note in analysis.notes:
        print(f"note: {note}", file=sys.stderr)
    verdict = analysis.verdict
    print(f"verdict: {verdict.headline}")
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "report":
        return report(args)
    if args.command == "plan":
        from include import plan_commands
        return plan_commands.main(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
