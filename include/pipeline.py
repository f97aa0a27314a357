"""The results pipeline, one orchestration for the DAG and the CLI alike.

    parse -> score -> analyse -> report -> record

* parse: every run's result.json (validated once, typed) and LoadGen logs; a run that never wrote anything is a
  `missing` record, one that died a `failed` record with its exit code and log where the runner recorded them.
* score: ROUGE of each completed accuracy run, exactly as MLCommons' evaluation.py.
* analyse: scaling, plausibility, the GPU time budget, regressions against comparable earlier runs (the history is
  read once, here), and the one `Verdict` of the run, computed here and nowhere else.
* report: charts, report.md/html and analysis.json, from the Analysis alone.
* record: the run, its results, scaling, regressions and verdicts into the history store, once per run,
  idempotently (a rerun of the same run id replaces its rows).

The DAG's task bodies are the `*_task` functions at the end: plain dicts in and out (XCom), each one call into the
stages above. No Airflow import here.
"""
from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from include.analysis import Analysis, plausibility
from include.analysis.gpu_time import gpu_time_budget
from include.analysis.scaling import scaling_efficiency
from include.analysis.verdict import Verdict, judge
from include.records import PlausibilityCheck, Regression, RunRecord
from include.reporting.report import ANALYSIS_JSON, ReportPaths, build_report
from include.results import run_artifacts

log = logging.getLogger(__name__)
DEFAULT_THRESHOLD_PCT = 5.0
# How much earlier than the plan a SUT process may seem to start and still be this run's: the plan's time is the
# Airflow worker's clock, the start the GPU node's, read from /proc to the second. An earlier run's process of the
# same run id started at least one whole plan -> SUT cycle (an engine start: minutes) before the plan of the rerun.
STALE_SLACK_S = 60.0


def _records(records: list[RunRecord | dict[str, Any]]) -> list[RunRecord]:
    return [r if isinstance(r, RunRecord) else RunRecord.from_dict(r) for r in records]


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# ------------------------------------------------------------------------------------------------------------------
# parse


def parse(runs: list[tuple[str, Path]], system: str | None = None) -> list[RunRecord]:
    """Each (branch, run directory) read and validated; problems become the record's status and error. `system`
    names the node of folders outside our layout (an MLPerf submission's system)."""
    records = [run_artifacts.read_run(Path(run_dir), branch,
                                      None if run_artifacts.in_our_layout(Path(run_dir)) else system)
               for branch, run_dir in runs]
    for r in records:
        log.info("%s %s %s %s: %s%s", r.branch, r.node, r.scenario, r.mode, r.status,
                 f" ({r.error})" if r.error else "")
    return records


def parse_folder(artifacts_dir: str | Path) -> list[RunRecord]:
    """Every run found under one pipeline run's folder (ours, or any folder of LoadGen logs)."""
    return parse(run_artifacts.discover_runs(Path(artifacts_dir)), system=Path(artifacts_dir).resolve().name)


def parse_plan(plan: dict[str, Any]) -> list[RunRecord]:
    """Every planned test of every SUT process, whether or not it wrote anything: a test that never ran is a result
    too; a result.json of an earlier run is failed, never read as this one's (`stale`). Compliance tests are no
    results of their own: the submission step verifies them (include/submission/)."""
    records = parse([(r["branch"], Path(t["output_dir"])) for r in plan["runs"] for t in r["tests"]
                     if not t["compliance_test"]])
    return [stale(r, plan["run_id"], plan.get("planned_utc")) or r for r in records]


def stale(record: RunRecord, run_id: str, planned_utc: str | None) -> RunRecord | None:
    """`record` failed as a stale result when its result.json names another run, or its SUT process started before
    this run was planned (a rerun of the same run id); None when it is this run's. Results without a run id (written
    before the SUT recorded it, or by another harness) are read as before."""
    sut = record.sut
    if sut is None or sut.run_id is None:
        return None
    started = sut.process.start_utc if sut.process else sut.timing.start_utc
    planned = _as_datetime(planned_utc)
    before_plan = bool(started and planned and _as_datetime(started) < planned - timedelta(seconds=STALE_SLACK_S))
    if sut.run_id == run_id and not before_plan:
        return None
    error = (f"stale result from an earlier run: result.json says run {sut.run_id} started {started}, this is run "
             f"{run_id} planned at {planned_utc}")
    log.warning("%s: %s", record.run_dir, error)
    return dataclasses.replace(record, status="failed", error=error, result=None, loadgen=None, accuracy=None)


# ------------------------------------------------------------------------------------------------------------------
# score


def score(records: list[RunRecord], model_dir: str | None, dataset_path: str | None) -> list[RunRecord]:
    """ROUGE of every completed accuracy run; one that cannot be scored keeps its record, with the reason.

    Our runs (result.json beside the logs) are scored from mlperf_log_accuracy.json exactly as evaluation.py does,
    and get an accuracy.txt in MLPerf's format. Another harness's run (LoadGen's logs alone) is judged from its own
    accuracy.txt where it has one; that file is read, never overwritten.
    """
    return [_score(r, model_dir, dataset_path) if r.mode == "accuracy" and r.status == "completed" else r
            for r in records]


def _score(record: RunRecord, model_dir: str | None, dataset_path: str | None) -> RunRecord:
    from include.scoring import accuracy

    run_dir = Path(record.run_dir)
    theirs = run_dir / accuracy.ACCURACY_TXT
    try:
        if record.sut is None and theirs.is_file():
            return dataclasses.replace(record, accuracy=accuracy.read_accuracy_txt(theirs))
        if not model_dir or not dataset_path:
            return dataclasses.replace(record, error="accuracy not scored: no model directory or data set given")
        result = accuracy.score_run(run_dir, Path(model_dir), Path(dataset_path))
    except Exception as exc:  # noqa: BLE001 - one unscorable run must not lose the others; the reason is kept
        log.warning("accuracy of %s not scored: %s", record.run_dir, exc)
        return dataclasses.replace(record, error=f"accuracy not scored: {exc}")
    if record.sut is not None:
        try:
            accuracy.write_accuracy_txt(run_dir, result)
        except OSError as exc:       # a read-only copy of the artefacts: the score stands, the file is not written
            log.warning("accuracy.txt not written into %s: %s", run_dir, exc)
    return dataclasses.replace(record, accuracy=result)


# ------------------------------------------------------------------------------------------------------------------
# analyse


def plausibility_checks(records: list[RunRecord], model_dir: str | None,
                        dataset_path: str | None) -> dict[str, PlausibilityCheck | None]:
    """The physics check of each run, by run directory (None where there is no throughput to check)."""
    params, source = plausibility.model_parameters(None, model_dir) if model_dir else (None, "")
    mean_input = plausibility.mean_input_tokens(dataset_path)
    return {r.run_dir: plausibility.check_record(r, model_params=params, params_source=source if params else "",
                                                 input_tokens_per_sample=mean_input) for r in records}


def analyse(records: list[RunRecord], *, run_id: str, history_url: str | None,
            threshold_pct: float = DEFAULT_THRESHOLD_PCT, model_dir: str | None = None,
            dataset_path: str | None = None, profile: str | None = None, notes: list[str] | None = None,
            logical_date: datetime | str | None = None) -> Analysis:
    """Scaling, plausibility, the GPU time budget, regressions against comparable earlier runs, and the run's one
    Verdict."""
    when = _as_datetime(logical_date) or own_start(records) or datetime.now(timezone.utc)
    checks = plausibility_checks(records, model_dir, dataset_path)
    # The comparability keys come from the verdict; regressions need them, and the verdict counts regressions.
    keys = judge(run_id, records, checks, profile=profile)
    notes = list(notes or [])
    regressions: list[Regression] = []
    history: list[dict[str, Any]] = []
    if history_url:
        try:
            regressions, history, more = _against_history(records, keys, history_url, run_id, threshold_pct, when)
            notes.extend(more)
        except Exception as exc:  # noqa: BLE001 - an unreachable history must not cost the report
            notes.append(f"regressions not checked: history store unavailable ({exc})")
    else:
        notes.append("regressions not checked: no history store given")
    history = [p for p in history if p["run_id"] != run_id] + _current_points(records, keys, run_id, when)
    verdict = dataclasses.replace(keys, regressions=[f"{g.metric} {g.node} {g.scenario} {g.change_pct:+.1f}%"
                                                     for g in regressions])
    return Analysis(run_id=run_id, created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    threshold_pct=float(threshold_pct), scaling=scaling_efficiency(records),
                    plausibility=[c for c in checks.values() if c is not None],
                    gpu_time=gpu_time_budget(records), regressions=regressions,
                    verdict=verdict, notes=notes, history=history, records=records)


def own_start(records: list[RunRecord]) -> datetime | None:
    """When the runs themselves started (the earliest result.json start): an imported run's date, not the import's."""
    return min((s for s in (_as_datetime(r.sut.timing.start_utc) for r in records if r.sut) if s), default=None)


def _point(run_id: str, when: str, node: str, scenario: str, branch: str, tokens_per_second: float | None,
           state: str, key_hash: str | None) -> dict[str, Any]:
    return {"run_id": run_id, "logical_date": when, "node": node, "scenario": scenario, "branch": branch,
            "tokens_per_second": tokens_per_second, "valid": state == "VALID", "state": state,
            "comparability_hash": key_hash}


def trend_points(rows: list[Any]) -> list[dict[str, Any]]:
    return [_point(r.run_id, (r.at or r.logical_date).isoformat(), r.node, r.scenario, r.branch, r.tokens_per_second,
                   r.state or ("VALID" if r.status == "completed" and r.valid else "INVALID"), r.comparability_hash)
            for r in rows if r.mode == "performance"]


def _current_points(records: list[RunRecord], verdict: Verdict, run_id: str, when: datetime) -> list[dict[str, Any]]:
    return [_point(run_id, when.isoformat(), r.node, r.scenario, r.branch,
                   r.loadgen.tokens_per_second if r.loadgen else None, v.state, v.comparability_hash)
            for r, v in zip(records, verdict.runs) if r.mode == "performance"]


def _against_history(records: list[RunRecord], verdict: Verdict, url: str, run_id: str, threshold_pct: float,
                     before: datetime) -> tuple[list[Regression], list[dict[str, Any]], list[str]]:
    """Regressions of every run against earlier runs of the same comparability key; the trend points."""
    from include.analysis import regressions as regression_rules
    from include.history import HistoryStore, result_columns
    from include.reporting.charts import TREND_POINTS

    store = HistoryStore(url, readonly=True)
    try:
        found: list[Regression] = []
        notes: list[str] = []
        judged = 0
        for record, run_verdict in zip(records, verdict.runs):
            current = {**result_columns(record, run_verdict), "run_id": run_id}
            earlier = store.comparable_history(run_verdict.comparability_hash, record.mode, before=before,
                                               exclude_run_id=run_id)
            assessment = regression_rules.assess(current, earlier, threshold_pct=threshold_pct)
            found.extend(assessment.regressions)
            if assessment.verdicts:
                judged += 1
            insufficient = [v for v in assessment.verdicts if v.verdict == "insufficient history"]
            if insufficient and len(insufficient) == len(assessment.verdicts):
                notes.append(f"{record.node} {record.branch} {record.scenario} {record.mode}: "
                             f"{insufficient[0].history_runs} comparable earlier run(s), too few to judge")
        notes.insert(0, f"{judged} of {len(records)} runs compared with earlier runs of the same settings "
                        f"(threshold {threshold_pct:g}%)")
        # The report's trend: this run's own series (the same comparability keys), their latest runs only.
        keys = sorted({v.comparability_hash for v in verdict.runs})
        history = trend_points(store.results(mode="performance", key_hashes=keys,
                                             latest=TREND_POINTS * len(keys)))
        return found, history, notes
    finally:
        store.dispose()


# ------------------------------------------------------------------------------------------------------------------
# report and record


def publish_report(analysis: Analysis, out_dir: str | Path,
                   submission: dict[str, Any] | None = None) -> ReportPaths:
    """report.md, report.html, analysis.json and the charts into out_dir (with the submission check where made)."""
    return build_report(analysis, Path(out_dir), submission)


def run_meta(analysis: Analysis, *, dag_id: str = "cli", trigger: str = "cli",
             logical_date: datetime | str | None = None, params: dict[str, Any] | None = None,
             report_path: str | Path | None = None, artifacts_root: str | Path | None = None) -> Any:
    """The history's record of the pipeline run: status, headline, compliance, state and tone from the verdict,
    nothing re-derived.

    Started / finished are the SUT runs' own times (result.json), so an imported run keeps its date; the report's
    path is stored relative to the artefacts root, so the history still finds it when the root moves.
    """
    from include.history import RunMeta

    ends = [e for e in (_as_datetime(r.sut.timing.end_utc) for r in analysis.records if r.sut) if e]
    return RunMeta(run_id=analysis.run_id, dag_id=dag_id,
                   logical_date=_as_datetime(logical_date) or datetime.now(timezone.utc), trigger=trigger,
                   status=analysis.verdict.status, params=params or {}, verdict=analysis.verdict.headline,
                   compliance=analysis.verdict.compliance, state=analysis.verdict.state, tone=analysis.verdict.tone,
                   report_path=stored_report_path(report_path, artifacts_root),
                   started_at=own_start(analysis.records), finished_at=max(ends, default=None))


def stored_report_path(report_path: str | Path | None, artifacts_root: str | Path | None) -> str | None:
    """The report's path relative to the artefacts root (as the Benchmarks page resolves it); a report outside the
    root keeps its absolute path (the page refuses to serve it, and says why)."""
    if report_path is None:
        return None
    path = Path(report_path).resolve()
    if artifacts_root is not None and path.is_relative_to(Path(artifacts_root).resolve()):
        return path.relative_to(Path(artifacts_root).resolve()).as_posix()
    return str(path)


def artifacts_root() -> Path | None:
    """The deployment's artefacts root; None where the deployment's settings do not load (a bare CLI call)."""
    from include import deployment

    try:
        return deployment.load().artifacts_dir
    except deployment.DeploymentError:
        return None


def record(history_url: str, analysis: Analysis, meta: Any) -> dict[str, Any]:
    """Write the run once (schema migrated first); a rerun of the same run id replaces its rows. A CLI record of a
    run id the DAG recorded is refused (history.RunIdentityConflict, naming the run and what to do). The published
    MLPerf results (include/analysis/published.py) are refreshed beside it: the page draws them as reference lines."""
    from include.analysis.published import load_published
    from include.history import HistoryStore

    store = HistoryStore(history_url)
    try:
        store.upgrade()
        store.record(meta, analysis.records, analysis.scaling, analysis.regressions, analysis.verdict)
        published = store.replace_published(load_published())
    finally:
        store.dispose()
    return {"run_id": meta.run_id, "status": meta.status, "results": len(analysis.records),
            "scaling": len(analysis.scaling), "regressions": len(analysis.regressions), "published": published}


def run(artifacts_dir: str | Path, out_dir: str | Path, *, run_id: str, history_url: str | None = None,
        threshold_pct: float = DEFAULT_THRESHOLD_PCT, model_dir: str | None = None, dataset_path: str | None = None,
        record_run: bool = False) -> tuple[Analysis, ReportPaths]:
    """The whole pipeline over one folder of run artefacts (the CLI)."""
    records = score(parse_folder(artifacts_dir), model_dir, dataset_path)
    analysis = analyse(records, run_id=run_id, history_url=history_url, threshold_pct=threshold_pct,
                       model_dir=model_dir, dataset_path=dataset_path)
    paths = publish_report(analysis, out_dir)
    if record_run:
        record_report(history_url, analysis, paths)
    return analysis, paths


def record_report(history_url: str, analysis: Analysis, paths: ReportPaths,
                  root: Path | None = None) -> dict[str, Any]:
    """The CLI's record of a run it reported: trigger "cli", the report's path as the artefacts root sees it
    (`root`, default the deployment's)."""
    return record(history_url, analysis, run_meta(analysis, report_path=paths.html,
                                                  artifacts_root=root or artifacts_root()))


# ------------------------------------------------------------------------------------------------------------------
# The DAG's task bodies: XCom dicts in and out, one call each into the stages above.


def parse_task(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in parse_plan(plan)]


def score_task(plan: dict[str, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in score(_records(records), plan["model_path"], plan["dataset_path"])]


def analyse_task(history_url: str, plan: dict[str, Any], records: list[dict[str, Any]], *,
                 logical_date: Any) -> dict[str, Any]:
    analysis = analyse(_records(records), run_id=plan["run_id"], history_url=history_url,
                       threshold_pct=plan["regression_threshold_pct"], model_dir=plan["model_path"],
                       dataset_path=plan["dataset_path"], profile=plan["profile"], notes=plan["notes"],
                       logical_date=logical_date)
    for g in analysis.regressions:
        log.warning("regression: %s", g.explanation)
    log.info("verdict: %s", analysis.verdict.headline)
    return analysis.to_dict()


def report_task(plan: dict[str, Any], analysis: dict[str, Any],
                submission: dict[str, Any] | None = None) -> dict[str, Any]:
    paths = publish_report(Analysis.from_dict(analysis), Path(plan["run_dir"]) / "report", submission)
    log.info("report: %s", paths.html)
    return paths.to_dict()


def record_task(history_url: str, plan: dict[str, Any], analysis: dict[str, Any], paths: dict[str, Any] | None, *,
                dag_id: str, run_type: str, logical_date: Any) -> dict[str, Any]:
    result = Analysis.from_dict(analysis)
    meta = run_meta(result, dag_id=dag_id, trigger="scheduled" if "scheduled" in str(run_type) else "manual",
                    logical_date=logical_date, params=plan["params"], report_path=(paths or {}).get("html"),
                    artifacts_root=Path(plan["run_dir"]).parent)   # <artifacts_root>/<run_id>
    return record(history_url, result, meta)


__all__ = ["Analysis", "ANALYSIS_JSON", "ReportPaths", "analyse", "parse", "parse_folder", "parse_plan", "score",
           "publish_report", "record", "record_report", "run", "run_meta"]
