"""The run's last two steps: tell people (notify) and decide the run's colour (verdict).

`verdict` exists because the steps after the SUT runs use trigger_rule all_done (a failed node must still get a
report), and Airflow derives a DAG run's state from its leaf tasks: without a final task that fails, a run whose
node failed would end green. `verdict` raises when any planned run failed or is missing, or when
fail_on_regression is set and regressions were found; it is a leaf, so its failure fails the DAG run.
"""
from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

log = logging.getLogger(__name__)


class BenchmarkFailed(RuntimeError):
    """The benchmark ran, the report exists, and the run must still be red; the message says why."""


def _status(run: dict[str, Any]) -> str:
    return run.get("status") or "missing"


def summary(plan: dict[str, Any], analysis: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """A short, secret-free summary of the run (what notify sends and the task log shows)."""
    seen = {r["run_dir"]: r for r in analysis["records"]}
    regressions = analysis["regressions"]
    runs = []
    for spec in plan["runs"]:
        rec = seen.get(spec["output_dir"]) or {}
        lg = rec.get("loadgen") or {}
        runs.append({"run": spec["name"], "status": _status(rec), "error": rec.get("error"),
                     "valid": lg.get("valid"), "tokens_per_second": lg.get("tokens_per_second")})
    failed = [r for r in runs if r["status"] != "completed"]
    return {
        "run_id": plan["run_id"], "profile": plan["profile"], "compliant": plan["compliant"], "notes": plan["notes"],
        "runs": runs, "failed": [r["run"] for r in failed],
        "failed_nodes": sorted({r["run"].split("/")[1] for r in failed}),
        "regressions": [f"{g['metric']} {g['node']} {g['scenario']} {g['change_pct']:+.1f}%" for g in regressions],
        "mlperf_compliant": (analysis.get("compliance") or {}).get("mlperf_compliant"),
        "report": {k: v for k, v in report.items() if isinstance(v, str)},
    }


def notify(text: dict[str, Any], webhook: str | None) -> dict[str, Any]:
    """Log the summary; POST it as JSON to the webhook if one is configured (its URL is a secret: never logged)."""
    log.info("benchmark summary:\n%s", json.dumps(text, indent=2))
    if not webhook:
        return text
    req = urllib.request.Request(webhook, data=json.dumps(text).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            log.info("notification sent (HTTP %s)", resp.status)
    except OSError as exc:     # a notification failing must not hide the benchmark's own outcome
        log.warning("notification not sent: %s", type(exc).__name__)
    return text


def verdict(text: dict[str, Any], fail_on_regression: bool) -> str:
    """Raise BenchmarkFailed when a run failed or is missing, or on regressions with fail_on_regression."""
    problems = []
    if text["failed"]:
        problems.append(f"{len(text['failed'])} run(s) failed or missing on node(s) {', '.join(text['failed_nodes'])}"
                        f": {', '.join(text['failed'])}")
    if fail_on_regression and text["regressions"]:
        problems.append(f"{len(text['regressions'])} regression(s): {'; '.join(text['regressions'])}")
    if problems:
        raise BenchmarkFailed(" and ".join(problems) + f". Report: {text['report'].get('html', text['report'])}")
    return f"all {len(text['runs'])} runs completed" + ("" if text["compliant"] else " (NOT MLPerf-compliant profile)")
