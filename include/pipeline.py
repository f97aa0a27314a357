"""The high-level steps of the results pipeline, as the DAG and the CLI call them.

Each step takes plain values (paths, URLs, run ids, records) and returns dataclasses with to_dict()/from_dict(), so a
DAG task body is one call and XCom carries the dicts. No Airflow import here.

    collect_runs -> analyse -> record_history -> publish_report
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from include.records import PlausibilityCheck, Regression, RunRecord, ScalingResult
from include.report import ANALYSIS_JSON, ReportPaths, build_report, compliance
from include.scaling import scaling_efficiency, scaling_from_dict

log = logging.getLogger(__name__)
DEFAULT_THRESHOLD_PCT = 5.0


@dataclass(frozen=True)
class Analysis:
    """Everything the report and the history need about one pipeline run, beyond the records themselves."""

    run_id: str
    created_utc: str
    threshold_pct: float
    scaling: list[ScalingResult]
    plausibility: list[PlausibilityCheck]
    regressions: list[Regression]
    compliance: dict[str, Any]                  # {"mlperf_compliant": bool, "reasons": [...]}
    notes: list[str] = field(default_factory=list)          # why regressions were not (fully) judged, etc.
    history: list[dict[str, Any]] = field(default_factory=list)   # trend points: logical_date, node, scenario,
    #                                                                 branch, tokens_per_second, valid, run_id
    records: list[RunRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Analysis":
        data = dict(data)
        data["scaling"] = [scaling_from_dict(s) for s in data.get("scaling") or []]
        data["plausibility"] = [PlausibilityCheck(**p) for p in data.get("plausibility") or []]
        data["regressions"] = [Regression(**g) for g in data.get("regressions") or []]
        data["records"] = [RunRecord.from_dict(r) for r in data.get("records") or []]
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _records(records: list[RunRecord | dict[str, Any]]) -> list[RunRecord]:
    return [r if isinstance(r, RunRecord) else RunRecord.from_dict(r) for r in records]


# ------------------------------------------------------------------------------------------------------------------


def collect_runs(artifacts_dir: str, model_dir: str | None = None, dataset_path: str | None = None) -> list[RunRecord]:
    """Every run under <artifacts_root>/<run_id>, read and validated; accuracy-mode runs scored when the model
    directory (tokenizer) and data set are given. A run that cannot be scored keeps its record, with the reason."""
    from include import run_artifacts

    records = []
    for branch, run_dir in run_artifacts.discover_runs(Path(artifacts_dir)):
        record = run_artifacts.read_run(run_dir, branch)
        if record.mode == "accuracy" and record.status == "completed":
            record = _score(record, model_dir, dataset_path)
        records.append(record)
    return records


def _score(record: RunRecord, model_dir: str | None, dataset_path: str | None) -> RunRecord:
    if not model_dir or not dataset_path:
        return dataclasses.replace(record, error="accuracy not scored: no model directory or data set given")
    from include import accuracy

    try:
        result = accuracy.score_run(Path(record.run_dir), Path(model_dir), Path(dataset_path))
    except Exception as exc:  # noqa: BLE001 - one unscorable run must not lose the others; the reason is kept
        log.warning("accuracy of %s not scored: %s", record.run_dir, exc)
        return dataclasses.replace(record, error=f"accuracy not scored: {exc}")
    return dataclasses.replace(record, accuracy=result)


def _history_points(rows: list[Any]) -> list[dict[str, Any]]:
    return [{"run_id": r.run_id, "logical_date": r.logical_date.isoformat(), "node": r.node, "scenario": r.scenario,
             "branch": r.branch, "tokens_per_second": r.tokens_per_second,
             "valid": r.status == "completed" and r.valid is True} for r in rows if r.mode == "performance"]


def _current_points(records: list[RunRecord], run_id: str, when: datetime) -> list[dict[str, Any]]:
    return [{"run_id": run_id, "logical_date": when.isoformat(), "node": r.node, "scenario": r.scenario,
             "branch": r.branch, "tokens_per_second": r.loadgen.tokens_per_second if r.loadgen else None,
             "valid": r.valid} for r in records if r.mode == "performance"]


def analyse(records: list[RunRecord | dict[str, Any]], history_url: str | None, run_id: str,
            threshold_pct: float = DEFAULT_THRESHOLD_PCT, *, model_dir: str | None = None,
            dataset_path: str | None = None, logical_date: datetime | str | None = None) -> Analysis:
    """Scaling, plausibility and regressions against comparable earlier runs of the history store."""
    from include import plausibility

    records = _records(records)
    when = _as_datetime(logical_date) or datetime.now(timezone.utc)
    notes: list[str] = []
    regressions: list[Regression] = []
    history: list[dict[str, Any]] = []
    if history_url:
        try:
            regressions, history, more = _against_history(records, history_url, run_id, threshold_pct, when)
            notes.extend(more)
        except Exception as exc:  # noqa: BLE001 - an unreachable history must not cost the report
            notes.append(f"regressions not checked: history store unavailable ({exc})")
    else:
        notes.append("regressions not checked: no history store given")
    if not any(p.get("run_id") == run_id for p in history):
        history = history + _current_points(records, run_id, when)
    checks = plausibility.check_all(records, model_dir=model_dir,
                                    input_tokens_per_sample=plausibility.mean_input_tokens(dataset_path))
    return Analysis(run_id=run_id, created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    threshold_pct=float(threshold_pct), scaling=scaling_efficiency(records), plausibility=checks,
                    regressions=regressions, compliance=compliance(records), notes=notes, history=history,
                    records=records)


def _against_history(records: list[RunRecord], url: str, run_id: str, threshold_pct: float,
                     before: datetime) -> tuple[list[Regression], list[dict[str, Any]], list[str]]:
    from include import regressions as regression_rules
    from include.history import HistoryStore, result_columns

    store = HistoryStore(url, readonly=True)
    try:
        found: list[Regression] = []
        notes: list[str] = []
        judged = 0
        for record in records:
            current = {**result_columns(record), "run_id": run_id}
            earlier = store.comparable_history(record, before=before)
            assessment = regression_rules.assess(current, earlier, threshold_pct=threshold_pct)
            found.extend(assessment.regressions)
            if assessment.verdicts:
                judged += 1
            insufficient = [v for v in assessment.verdicts if v.verdict == "insufficient history"]
            if insufficient and len(insufficient) == len(assessment.verdicts):
                notes.append(f"{record.node} {record.branch} {record.scenario} {record.mode}: "
                             f"{insufficient[0].history_runs} comparable earlier run(s), too few to judge")
        notes.insert(0, f"{judged} of {len(records)} runs compared with comparable history (threshold "
                        f"{threshold_pct:g}%)")
        history = _history_points(store.results(mode="performance"))
        return found, history, notes
    finally:
        store.dispose()


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def record_history(history_url: str, run_meta: Any, records: list[RunRecord | dict[str, Any]],
                   analysis: Analysis | dict[str, Any]) -> dict[str, Any]:
    """Store the run, its SUT runs, scaling and regressions (schema migrated first); returns what was written."""
    from include.history import HistoryStore, RunMeta

    if isinstance(analysis, dict):
        analysis = Analysis.from_dict(analysis)
    if isinstance(run_meta, dict):
        meta = dict(run_meta)
        for key in ("logical_date", "started_at", "finished_at"):
            meta[key] = _as_datetime(meta.get(key))
        names = {f.name for f in dataclasses.fields(RunMeta)}
        run_meta = RunMeta(**{k: v for k, v in meta.items() if k in names})
    records = _records(records)
    store = HistoryStore(history_url)
    try:
        store.upgrade()
        store.record(run_meta, records, analysis.scaling, analysis.regressions)
    finally:
        store.dispose()
    return {"run_id": run_meta.run_id, "results": len(records), "scaling": len(analysis.scaling),
            "regressions": len(analysis.regressions)}


def publish_report(analysis: Analysis | dict[str, Any], records: list[RunRecord | dict[str, Any]] | None,
                   out_dir: str | Path) -> ReportPaths:
    """report.md, report.html, analysis.json and the charts into out_dir."""
    if isinstance(analysis, dict):
        analysis = Analysis.from_dict(analysis)
    if records is not None:
        analysis = dataclasses.replace(analysis, records=_records(records))
    return build_report(analysis, Path(out_dir))


def run_meta_for(run_id: str, records: list[RunRecord], analysis: Analysis, *, dag_id: str = "cli",
                 trigger: str = "cli", logical_date: datetime | None = None, params: dict[str, Any] | None = None,
                 report_path: str | None = None) -> Any:
    """A RunMeta for runs recorded outside Airflow (the CLI): status from how the SUT runs ended."""
    from include.history import RunMeta

    statuses = {r.status for r in records}
    status = "success" if statuses <= {"completed"} and records else (
        "failed" if "completed" not in statuses else "partial")
    return RunMeta(run_id=run_id, dag_id=dag_id, logical_date=logical_date or datetime.now(timezone.utc),
                   trigger=trigger, status=status, params=params or {},
                   mlperf_compliant=bool(analysis.compliance.get("mlperf_compliant")), report_path=report_path)


__all__ = ["Analysis", "ANALYSIS_JSON", "ReportPaths", "analyse", "collect_runs", "publish_report", "record_history",
           "run_meta_for", "scaling_from_dict"]
