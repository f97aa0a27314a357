"""Mapping the pipeline's records onto the history's columns, and checking them before any write (pure functions)."""
from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from include.analysis.metrics import ROUGE_METRICS
from include.analysis.verdict import RunVerdict
from include.history.models import BRANCHES, MODES, RESULT_STATUSES, RUN_STATUSES, TRIGGERS
from include.history.rows import RunMeta
from include.records import Regression, RunRecord, ScalingResult

# ----------------------------------------------------------------------------------------------------------------
# Mapping records onto rows (pure functions)


def _finite(value: Any) -> float | None:
    """A float for the database; NaN and infinities (no JSON, no meaning as a figure) become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def parse_utc(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def verdict_columns(verdict: RunVerdict | None) -> dict[str, Any]:
    """The run's verdict as stored: exactly what the pipeline computed (None values for a run never judged)."""
    if verdict is None:
        return {}
    return {"state": verdict.state, "verdict": verdict.headline, "exit_code": verdict.exit_code,
            "log_path": verdict.log_path, "loadgen_errors": dict(verdict.loadgen_errors),
            "submission_grade": verdict.submission_grade, "compliance": verdict.compliance,
            "compliance_reasons": list(verdict.compliance_reasons), "plausibility": verdict.plausibility,
            "plausibility_bound": _finite(verdict.plausibility_bound),
            "plausibility_ratio": _finite(verdict.plausibility_ratio), "accuracy_verdict": verdict.accuracy,
            "comparability": json.loads(json.dumps(verdict.comparability, default=str)),
            "comparability_hash": verdict.comparability_hash}


def result_columns(record: RunRecord, verdict: RunVerdict | None = None) -> dict[str, Any]:
    """RunRecord (+ its verdict) -> benchmark_results columns (without the run foreign key).

    Percentiles come from LoadGen's own report (`record.loadgen`), counts, accelerator, versions, configuration hash
    and timing from the SUT's result.json (`record.sut`), ROUGE from `record.accuracy`.
    """
    sut = record.sut
    loadgen = record.loadgen
    accuracy = record.accuracy
    versions = dict(sut.versions) if sut else {}
    if loadgen is not None and loadgen.loadgen_version and not versions.get("loadgen"):
        versions["loadgen"] = loadgen.loadgen_version

    def pct(series: str, key: str) -> float | None:
        if loadgen is None:
            return None
        return _finite((getattr(loadgen, series) or {}).get(key))

    duration = sut.timing.duration_s if sut else None
    if duration is None and loadgen is not None:
        duration = loadgen.duration_s
    return {
        "branch": record.branch,
        "node": record.node,
        "scenario": record.scenario,
        "mode": record.mode,
        "status": record.status,
        "error": record.error,
        "valid": loadgen.valid if loadgen is not None else None,
        "invalid_reasons": list(loadgen.invalid_reasons) if loadgen is not None else [],
        "config_hash": sut.config_hash if sut else None,
        "accelerator": sut.accelerator.name if sut and sut.accelerator_known else None,
        "versions": versions,
        "samples_per_second": _finite(loadgen.samples_per_second) if loadgen else None,
        "tokens_per_second": _finite(loadgen.tokens_per_second) if loadgen else None,
        "ttft_p50_ns": pct("ttft_ns", "p50"),
        "ttft_p99_ns": pct("ttft_ns", "p99"),
        "tpot_p50_ns": pct("tpot_ns", "p50"),
        "tpot_p99_ns": pct("tpot_ns", "p99"),
        "latency_p50_ns": pct("latency_ns", "p50"),
        "latency_p99_ns": pct("latency_ns", "p99"),
        "duration_s": _finite(duration),
        "output_tokens": sut.counts.output_tokens if sut else None,
        "samples_completed": sut.counts.samples_completed if sut else None,
        "rouge1": _finite(accuracy.rouge1) if accuracy else None,
        "rouge2": _finite(accuracy.rouge2) if accuracy else None,
        "rougeL": _finite(accuracy.rougeL) if accuracy else None,
        "rougeLsum": _finite(accuracy.rougeLsum) if accuracy else None,
        "gen_len": _int(accuracy.gen_len) if accuracy else None,
        "gen_num": _int(accuracy.gen_num) if accuracy else None,
        "accuracy_passed": accuracy.passed if accuracy else None,
        "accuracy_meaningful": sut.accuracy_meaningful if sut else None,
        "start_utc": parse_utc(sut.timing.start_utc if sut else None),
        "end_utc": parse_utc(sut.timing.end_utc if sut else None),
        "run_dir": record.run_dir,
        **verdict_columns(verdict),
    }


_SECRET_KEY = re.compile(r"passw|secret|credential|api[_-]?key|private[_-]?key|(^|_)token$|^auth", re.IGNORECASE)


def redact_params(params: Any) -> Any:
    """Params as JSON, with the values of secret-looking keys replaced: the history is readable by every UI user."""
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): ("***" if _SECRET_KEY.search(str(k)) else walk(v)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value
    return json.loads(json.dumps(walk(params or {}), default=str))


def mode_of_metric(metric: str) -> str:
    return "accuracy" if metric in ROUGE_METRICS or metric in ("gen_len", "gen_num") else "performance"


def check_aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.tzinfo.utcoffset(value) is None):
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


def unstorable(value: Any) -> bool:
    """Text with a NUL byte: PostgreSQL cannot store it, so no backend may (and no stored row can match it)."""
    return isinstance(value, str) and "\x00" in value


def validate_meta(run: RunMeta) -> None:
    if not run.run_id:
        raise ValueError("run_id is empty")
    if unstorable(run.run_id) or unstorable(run.dag_id):
        raise ValueError(f"run_id/dag_id contain a NUL byte: {run.run_id!r}")
    if run.trigger not in TRIGGERS:
        raise ValueError(f"trigger {run.trigger!r} is not one of {TRIGGERS}")
    if run.status not in RUN_STATUSES:
        raise ValueError(f"status {run.status!r} is not one of {RUN_STATUSES}")
    check_aware("logical_date", run.logical_date)
    check_aware("started_at", run.started_at)
    check_aware("finished_at", run.finished_at)


def validate_records(records: Sequence[RunRecord]) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for record in records:
        key = (record.branch, record.node, record.scenario, record.mode)
        if record.branch not in BRANCHES or record.mode not in MODES or record.status not in RESULT_STATUSES:
            raise ValueError(f"record {key} has branch/mode/status outside {BRANCHES}/{MODES}/{RESULT_STATUSES}: "
                             f"{record.status!r}")
        if any(unstorable(part) for part in key):
            raise ValueError(f"record {key!r} contains a NUL byte")
        if key in seen:
            raise ValueError(f"two records for branch/node/scenario/mode {key}: one SUT run each")
        seen.add(key)


def scaling_columns(item: ScalingResult | dict[str, Any]) -> dict[str, Any]:
    data = item.to_dict() if hasattr(item, "to_dict") else dict(item)
    return {
        "scenario": data["scenario"],
        "efficiency": _finite(data.get("efficiency")),
        "aggregate_tokens_per_second": _finite(data.get("aggregate_tokens_per_second")),
        "aggregate_samples_per_second": _finite(data.get("aggregate_samples_per_second")),
        "single_sum_tokens_per_second": _finite(data.get("single_sum_tokens_per_second")),
        "window_s": _finite(data.get("window_s")),
        "nodes": list(data.get("nodes") or []),
        "balance": json.loads(json.dumps(data.get("balance") or [], default=str)),
        "flags": list(data.get("flags") or []),
        "excluded": dict(data.get("excluded") or {}),
    }


def regression_columns(item: Regression | dict[str, Any]) -> dict[str, Any]:
    data = item.to_dict() if hasattr(item, "to_dict") else dict(item)
    return {
        "metric": data["metric"],
        "node": data["node"],
        "scenario": data["scenario"],
        "branch": data["branch"],
        "current": float(data["current"]),
        "baseline": float(data["baseline"]),
        "change_pct": float(data["change_pct"]),
        "threshold_pct": float(data["threshold_pct"]),
        "p_value": _finite(data.get("p_value")),
        "baseline_runs": [str(r) for r in data.get("baseline_runs") or []],
        "explanation": data.get("explanation") or "",
    }
