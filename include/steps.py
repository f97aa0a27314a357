"""The DAG's result steps, one function per task, in the benchmark's own words.

parse_logs -> score_accuracy -> scaling_efficiency -> record_history -> regressions -> report -> (notify, verdict)

Thin adapters over the results library (run_artifacts, accuracy, scaling, pipeline, history): they take the plan
(a dict from include.plan) and XCom-able dicts, never the Airflow context. The list of runs comes from the plan,
not from what happens to be on disk, so a run whose pod never wrote anything still appears, as `missing`.
"""
from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from include.records import RunRecord

log = logging.getLogger(__name__)


def _records(items: list[dict[str, Any]]) -> list[RunRecord]:
    return [RunRecord.from_dict(r) for r in items]


def _dicts(items) -> list[dict[str, Any]]:
    return [i.to_dict() for i in items]


def parse_logs(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every planned run's result.json and LoadGen logs; absent or broken ones become missing / failed records."""
    from include import run_artifacts

    records = [run_artifacts.read_run(Path(r["output_dir"]), r["branch"]) for r in plan["runs"]]
    for r in records:
        log.info("%s %s %s %s: %s%s", r.branch, r.node, r.scenario, r.mode, r.status,
                 f" ({r.error})" if r.error else "")
    return _dicts(records)


def score_accuracy(plan: dict[str, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ROUGE of each completed accuracy run (MLCommons evaluation.py); an unscorable run keeps the reason."""
    from include import accuracy

    out = []
    for record in _records(records):
        if record.mode == "accuracy" and record.status == "completed":
            model = (record.result or {}).get("model", {}).get("path") or plan["model_path"]
            try:
                record = dataclasses.replace(record, accuracy=accuracy.score_run(
                    Path(record.run_dir), Path(model), Path(plan["dataset_path"])))
                log.info("%s %s: %s", record.node, record.scenario, record.accuracy.verdict)
            except Exception as exc:  # noqa: BLE001 - one unscorable run must not lose the others
                record = dataclasses.replace(record, error=f"accuracy not scored: {exc}")
        out.append(record)
    return _dicts(out)


def scaling_efficiency(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Distributed aggregate throughput over the sum of the single-GPU throughputs (see include/scaling.py)."""
    from include.scaling import scaling_efficiency as compute

    return _dicts(compute(_records(records)))


def _run_status(records: list[RunRecord]) -> str:
    statuses = {r.status for r in records}
    if records and statuses <= {"completed"}:
        return "success"
    return "partial" if "completed" in statuses else "failed"


def _when(logical_date: Any) -> datetime:
    if isinstance(logical_date, datetime):
        return logical_date
    if logical_date:
        return datetime.fromisoformat(str(logical_date).replace("Z", "+00:00"))
    return datetime.now(timezone.utc)


def record_history(history_url: str, plan: dict[str, Any], records: list[dict[str, Any]],
                   scaling: list[dict[str, Any]], *, dag_id: str, run_type: str, logical_date: Any) -> dict[str, Any]:
    """One immutable history entry per DAG run: a rerun of the same run id replaces its rows, never duplicates."""
    from include.history import HistoryStore, RunMeta
    from include.report import compliance
    from include.scaling import scaling_from_dict

    recs = _records(records)
    meta = RunMeta(run_id=plan["run_id"], dag_id=dag_id, logical_date=_when(logical_date),
                   trigger="scheduled" if "scheduled" in str(run_type) else "manual", status=_run_status(recs),
                   params=plan["params"], mlperf_compliant=bool(compliance(recs)["mlperf_compliant"]),
                   report_path=None, finished_at=datetime.now(timezone.utc))
    store = HistoryStore(history_url)
    try:
        store.upgrade()
        store.record(meta, recs, [scaling_from_dict(s) for s in scaling])
    finally:
        store.dispose()
    return {"run_id": meta.run_id, "status": meta.status, "results": len(recs), "scaling": len(scaling)}


def regressions(history_url: str, plan: dict[str, Any], records: list[dict[str, Any]], *,
                logical_date: Any) -> dict[str, Any]:
    """Regressions against comparable earlier runs (threshold and significance), stored with this run."""
    from include import pipeline
    from include.history import HistoryStore

    analysis = pipeline.analyse(records, history_url, plan["run_id"], plan["regression_threshold_pct"],
                                model_dir=plan["model_path"], dataset_path=plan["dataset_path"],
                                logical_date=_when(logical_date))
    analysis = dataclasses.replace(analysis, notes=[*plan["notes"], *analysis.notes])
    store = HistoryStore(history_url)
    try:
        store.set_regressions(plan["run_id"], analysis.regressions)
    finally:
        store.dispose()
    for g in analysis.regressions:
        log.warning("regression: %s", g.explanation)
    return analysis.to_dict()


def report(history_url: str, plan: dict[str, Any], analysis: dict[str, Any]) -> dict[str, Any]:
    """Charts, report.md and report.html into <run_dir>/report/; the history entry points at the report."""
    from include import pipeline
    from include.history import HistoryStore

    paths = pipeline.publish_report(analysis, None, Path(plan["run_dir"]) / "report")
    store = HistoryStore(history_url)
    try:
        store.set_report(plan["run_id"], str(paths.html))
    finally:
        store.dispose()
    log.info("report: %s", paths.html)
    return paths.to_dict()
