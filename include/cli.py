"""Command line of the results library: rebuild a report from a folder of run artefacts, without Airflow.

    python -m include report ARTIFACTS_DIR --out DIR [--model DIR] [--dataset FILE] [--history-url URL]
                             [--run-id ID] [--record] [--threshold-pct PCT]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from include import pipeline


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m include", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="analyse the runs of one pipeline run and write the report and charts")
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
    return parser


def report(args: argparse.Namespace) -> int:
    if not args.artifacts_dir.is_dir():
        print(f"error: {args.artifacts_dir} is not a directory", file=sys.stderr)
        return 2
    if args.record and not args.history_url:
        print("error: --record needs --history-url", file=sys.stderr)
        return 2
    run_id = args.run_id or args.artifacts_dir.resolve().name
    records = pipeline.collect_runs(str(args.artifacts_dir), args.model, args.dataset)
    if not records:
        print(f"warning: no run directories under {args.artifacts_dir} "
              "(expected <branch>/<node>/<scenario>/<mode>/)", file=sys.stderr)
    analysis = pipeline.analyse(records, args.history_url, run_id, args.threshold_pct, model_dir=args.model,
                                dataset_path=args.dataset)
    paths = pipeline.publish_report(analysis, records, args.out)
    if args.record:
        meta = pipeline.run_meta_for(run_id, records, analysis, report_path=str(paths.html))
        pipeline.record_history(args.history_url, meta, records, analysis)
        print(f"recorded: {run_id} in {args.history_url.split('@')[-1]}")
    print(f"report: {paths.markdown}")
    print(f"report: {paths.html}")
    for name, path in paths.charts.items():
        print(f"chart {name}: {path}")
    for note in analysis.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "report":
        return report(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
