"""The history's records: what callers pass in (`RunMeta`) and what the read side returns (frozen rows, never ORM
objects, so that callers such as the UI plugin cannot write through them and need no session)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from include.analysis.published import reference_label

# ----------------------------------------------------------------------------------------------------------------
# What callers pass in


@dataclass(frozen=True)
class RunMeta:
    """One DAG run as the store records it (the parent of its SUT runs' results)."""

    run_id: str                        # Airflow's dag_run.run_id (unique)
    dag_id: str
    logical_date: datetime             # timezone-aware
    trigger: str                       # 'scheduled' | 'manual' | 'cli' | 'import'
    status: str                        # 'success' | 'failed' | 'partial'
    params: dict[str, Any]             # trigger-time params; secret-looking keys are redacted on write
    verdict: str                       # the Verdict's headline, as the pipeline computed it
    compliance: str                    # compliant | not compliant | unknown
    state: str                         # the Verdict's state: VALID | INVALID | FAILED | COMPLETED
    tone: str                          # the Verdict's tone: good | warn | bad
    report_path: str | None
    report_url: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes as ISO 8601) for XCom."""
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunMeta:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for name in ("logical_date", "started_at", "finished_at"):
            if isinstance(values.get(name), str):
                values[name] = datetime.fromisoformat(values[name].replace("Z", "+00:00"))
        return cls(**values)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class _Row:
    """Read-side rows: `to_dict()` gives JSON-ready values (datetimes as ISO 8601) for the UI's API."""

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))


# ----------------------------------------------------------------------------------------------------------------
# What the read side returns


@dataclass(frozen=True)
class RunRow(_Row):
    run_id: str
    dag_id: str
    logical_date: datetime
    trigger: str
    status: str
    params: dict[str, Any]
    mlperf_compliant: bool
    compliance: str                    # compliant | not compliant | unknown (runs recorded before verdicts: unknown)
    verdict: str | None                # the Verdict's headline; None for a run recorded before verdicts were stored
    state: str                         # the Verdict's state (VALID | INVALID | FAILED | COMPLETED), else unknown
    tone: str                          # the Verdict's tone (good | warn | bad), else unknown
    report_path: str | None
    report_url: str | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    # headline: how this run's SUT runs ended
    results_total: int = 0
    results_valid: int = 0             # completed and LoadGen VALID
    results_invalid: int = 0           # completed but LoadGen INVALID
    results_failed: int = 0            # failed or missing
    regressions_total: int = 0
    results_implausible: int = 0       # the verdict found the figure above a physical limit
    results_not_submission_grade: int = 0   # LoadGen logged an error
    run_at: datetime | None = None     # when the run itself started (never an import's time)


@dataclass(frozen=True)
class ResultRow(_Row):
    id: int
    run_id: str
    dag_id: str
    logical_date: datetime
    mlperf_compliant: bool
    branch: str
    node: str
    scenario: str
    mode: str
    status: str
    error: str | None
    valid: bool | None
    invalid_reasons: list[str]
    config_hash: str | None
    accelerator: str | None
    versions: dict[str, Any]
    samples_per_second: float | None
    tokens_per_second: float | None
    ttft_p50_ns: float | None
    ttft_p99_ns: float | None
    tpot_p50_ns: float | None
    tpot_p99_ns: float | None
    latency_p50_ns: float | None
    latency_p99_ns: float | None
    duration_s: float | None
    output_tokens: int | None
    samples_completed: int | None
    rouge1: float | None
    rouge2: float | None
    rougeL: float | None
    rougeLsum: float | None
    gen_len: int | None
    gen_num: int | None
    accuracy_passed: bool | None
    accuracy_meaningful: bool | None
    start_utc: datetime | None
    end_utc: datetime | None
    run_dir: str | None
    state: str | None = None
    verdict: str | None = None
    exit_code: int | None = None
    log_path: str | None = None
    loadgen_errors: dict[str, Any] | None = None
    submission_grade: bool | None = None
    compliance: str | None = None
    compliance_reasons: list[str] | None = None
    plausibility: str | None = None
    plausibility_bound: float | None = None
    plausibility_ratio: float | None = None
    accuracy_verdict: str | None = None
    comparability: dict[str, Any] | None = None
    comparability_hash: str | None = None
    at: datetime | None = None         # when this SUT run started (result.json), else its run's own time

    @property
    def usable_as_baseline(self) -> bool:
        return is_baseline_worthy(self.status, self.mode, self.valid)


class TrendRow(NamedTuple):
    """One SUT run as the Benchmarks page's trend charts draw it (plugins/mlperf_benchmarks/trends.py): its place,
    verdict and charted figures only, read by `HistoryStore.trend_rows` as plain tuples (a trend window holds
    thousands). `comparability` is the key on the first row of each key in the window, None on the others."""

    id: int
    run_id: str
    logical_date: datetime
    at: datetime | None                # when this SUT run started (result.json), else its run's own time
    branch: str
    node: str
    scenario: str
    mode: str
    status: str
    error: str | None
    valid: bool | None
    config_hash: str | None
    accelerator: str | None
    tokens_per_second: float | None
    ttft_p99_ns: float | None
    tpot_p99_ns: float | None
    rouge1: float | None
    rouge2: float | None
    rougeL: float | None
    rougeLsum: float | None
    accuracy_passed: bool | None
    accuracy_meaningful: bool | None
    state: str | None
    verdict: str | None
    submission_grade: bool | None
    compliance: str | None
    plausibility: str | None
    comparability_hash: str | None
    comparability: dict[str, Any] | None


@dataclass(frozen=True)
class RegressionRow(_Row):
    id: int
    run_id: str
    logical_date: datetime
    result_id: int | None
    metric: str
    node: str
    scenario: str
    branch: str
    current: float
    baseline: float
    change_pct: float
    threshold_pct: float
    p_value: float | None
    baseline_runs: list[str]
    explanation: str
    run_at: datetime | None = None     # the run's own time


@dataclass(frozen=True)
class ScalingRow(_Row):
    id: int
    run_id: str
    logical_date: datetime
    scenario: str
    efficiency: float | None
    aggregate_tokens_per_second: float | None
    aggregate_samples_per_second: float | None
    single_sum_tokens_per_second: float | None
    window_s: float | None
    nodes: list[str]
    balance: list[dict[str, Any]]
    flags: list[str]
    excluded: dict[str, str]


@dataclass(frozen=True)
class PublishedRow(_Row):
    """A published MLPerf result, as include/analysis/published.py's PublishedResult, read back from the history."""

    round: str
    division: str
    submitter: str
    system: str
    accelerator: str
    accelerator_count: int
    engine: str
    scenario: str
    tokens_per_s: float
    tokens_per_s_per_accelerator: float
    source_url: str

    @property
    def label(self) -> str:
        return reference_label(self)


def is_baseline_worthy(status: str, mode: str, valid: bool | None) -> bool:
    """Completed and LoadGen-VALID; in accuracy mode LoadGen judges no validity, so completed is enough."""
    if status != "completed":
        return False
    return valid is True or (mode == "accuracy" and valid is None)
