"""The run's last two steps: tell people (notify) and decide the run's colour (verdict), from the one Verdict.

`verdict` exists because the steps after the SUT runs use trigger_rule all_done (a failed node must still get a
report), and Airflow derives a DAG run's state from its leaf tasks: without a final task that fails, a run whose
node failed would end green. `verdict` raises when any planned run failed or is missing, when the results pipeline
itself failed before it could judge the runs, or when fail_on_regression is set and regressions were found.

Both work when an upstream task failed (its XCom is then None): they say what is missing instead of crashing.
"""
from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

log = logging.getLogger(__name__)


class BenchmarkFailed(RuntimeError):
    """The benchmark ran, and the run must still be red; the message says why."""


def summary(plan: dict[str, Any], analysis: dict[str, Any] | None, report: dict[str, Any] | None,
            recorded: dict[str, Any] | None = None) -> dict[str, Any]:
    """A short, secret-free summary of the run (what notify sends and the task log shows): the verdict as the
    pipeline computed it, never re-derived here; and whether the history holds the run (`recorded`: what the
    record step returned, None when it failed)."""
    text: dict[str, Any] = {"run_id": plan["run_id"], "profile": plan["profile"], "notes": plan["notes"],
                            "planned_runs": [r["name"] for r in plan["runs"]]}
    if analysis is None:
        text.update(verdict="UNKNOWN: the results pipeline failed before it judged the runs (see the analyse task's "
                            "log); no figure of this run can be trusted", status="failed", runs=[], failed=[],
                    regressions=[], compliance="unknown", submission_grade=None, pipeline_failed=True)
    else:
        verdict = analysis["verdict"]
        text.update(
            verdict=verdict["headline"], status=verdict["status"], compliance=verdict["compliance"],
            submission_grade=verdict["submission_grade"], regressions=verdict["regressions"], pipeline_failed=False,
            runs=[{"run": r["name"], "verdict": r["headline"]} for r in verdict["runs"]],
            failed=[f"{r['name']}: {r['headline']}" for r in verdict["runs"] if r["state"] in ("FAILED", "MISSING")])
    text["report"] = ({k: v for k, v in report.items() if isinstance(v, str)} if report
                      else "no report: the report task failed (see its log)")
    text["history_failed"] = recorded is None
    text["history"] = (f"recorded as {recorded['run_id']}" if recorded else
                       "NOT recorded: the record_history task failed (see its log); this run is missing from the "
                       "history, its trends and the Benchmarks page")
    return text


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


def verdict(text: dict[str, Any] | None, plan: dict[str, Any], analysis: dict[str, Any] | None = None,
            recorded: dict[str, Any] | None = None) -> str:
    """Raise BenchmarkFailed when a run failed or is missing, when the pipeline could not judge the runs, when the
    run is not in the history, or on regressions with fail_on_regression. Works without the notify task's summary
    (it is rebuilt from the plan)."""
    if text is None:
        text = summary(plan, analysis, None, recorded)
    problems = []
    if text["pipeline_failed"]:
        problems.append(text["verdict"])
    if text.get("history_failed", recorded is None):
        problems.append("the run is " + text.get("history", "NOT recorded in the history").replace("NOT", "not", 1))
    if text["failed"]:
        problems.append(f"{len(text['failed'])} run(s) failed or missing: " + "; ".join(text["failed"]))
    if plan["fail_on_regression"] and text["regressions"]:
        problems.append(f"{len(text['regressions'])} regression(s): {'; '.join(text['regressions'])}")
    if problems:
        raise BenchmarkFailed(" and ".join(problems) + f". Report: {text['report']}")
    return text["verdict"]
