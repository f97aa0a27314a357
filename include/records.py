"""Typed records at the seams of the results pipeline.

Data flows one way: params -> plan -> SUT runs -> artefacts -> parse -> score -> record -> present. Each step takes
and returns these plain dataclasses (never the Airflow context), so every step is unit-tested without Airflow and
can be passed through XCom as `to_dict()` / `from_dict()`.

Units are in the field names: *_ns nanoseconds, *_s seconds, *_utc ISO-8601 UTC strings.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from include.results.sut_result import SutResult

Branch = Literal["single", "distributed"]
RunStatus = Literal["completed", "failed", "missing"]
Scenario = Literal["Offline", "Server", "Interactive", "SingleStream"]
Mode = Literal["performance", "accuracy"]


def _from_dict(cls, data: dict[str, Any]):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class LoadGenResult:
    """What LoadGen itself said about one run (mlperf_log_summary.txt + mlperf_log_detail.txt)."""

    scenario: str
    mode: str                      # LoadGen's words: "PerformanceOnly" or "AccuracyOnly"
    valid: bool | None             # None in accuracy mode (LoadGen judges no validity there)
    invalid_reasons: list[str]     # e.g. "min duration not satisfied", "performance constraints not satisfied"
    samples_per_second: float | None
    tokens_per_second: float | None   # Offline: tokens/s; Server/Interactive: completed tokens/s
    ttft_ns: dict[str, float]      # {"min","max","mean","p50","p90","p95","p97","p99","p99.9"}
    tpot_ns: dict[str, float]      # same keys
    latency_ns: dict[str, float]   # same keys
    settings: dict[str, Any]       # effective test parameters as LoadGen logged them
    duration_s: float | None       # LoadGen's measured duration of the performance run
    result_samples: int | None     # samples LoadGen counted in the timed window (perf mode)
    loadgen_version: str | None
    warnings: list[str]            # "key: value" of each record LoadGen flagged is_warning
    errors: list[str]              # "key: value" of each record LoadGen flagged is_error
    # LoadGen's requested_server_ttft_latency / requested_server_tpot_latency: the p99 limits a Server-mode run was
    # held to (None for other scenarios, or a log without them)
    ttft_limit_ns: float | None = None
    tpot_limit_ns: float | None = None
    # MLPerf's scenario name: "Interactive" for a Server-mode run held to Interactive's limits, else `scenario`
    mlperf_scenario: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LoadGenResult":
        return _from_dict(cls, data)


@dataclass(frozen=True)
class AccuracyResult:
    """ROUGE as MLCommons' evaluation.py computes it, and the verdict against the targets."""

    rouge1: float
    rouge2: float
    rougeL: float
    rougeLsum: float
    gen_len: int                   # total characters of the predictions
    gen_num: int                   # number of predictions (after dedup by qsl_idx)
    full_dataset: bool             # targets apply only to the full data set
    target_set: str | None         # "datacenter" / "edge" when compared, None when not applicable
    passed: bool | None            # None: targets not applicable (subset) or meaningless (dummy weights)
    verdict: str                   # human sentence, e.g. "targets not applicable: 64 of the data set's samples"
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AccuracyResult":
        return _from_dict(cls, data)


@dataclass(frozen=True)
class RunRecord:
    """One SUT run as the pipeline knows it: where it ran, what result.json and LoadGen said, its accuracy."""

    run_dir: str
    branch: Branch
    node: str                      # the node name; for a coordinated distributed run, "+"-joined node names
    scenario: str
    mode: Mode
    status: RunStatus              # missing: nothing was written; failed: the SUT or the runner said so
    error: str | None
    result: dict[str, Any] | None  # result.json as the SUT wrote it, validated against the schema (None: absent)
    loadgen: LoadGenResult | None
    accuracy: AccuracyResult | None = None
    exit_code: int | None = None   # the SUT's exit code, where the runner recorded it (runner_exit.json)
    log_path: str | None = None    # the SUT's own log, where the runner recorded it

    @cached_property
    def sut(self) -> SutResult | None:
        """result.json as a typed record: what every reader downstream uses."""
        return SutResult.from_json(self.result) if self.result is not None else None

    @property
    def valid(self) -> bool:
        """MLPerf-valid: completed, LoadGen said VALID (performance mode)."""
        return self.status == "completed" and self.loadgen is not None and self.loadgen.valid is True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunRecord":
        data = dict(data)
        if data.get("loadgen") is not None:
            data["loadgen"] = LoadGenResult.from_dict(data["loadgen"])
        if data.get("accuracy") is not None:
            data["accuracy"] = AccuracyResult.from_dict(data["accuracy"])
        return _from_dict(cls, data)


@dataclass(frozen=True)
class NodeShare:
    node: str
    samples: int
    output_tokens: int
    share_of_tokens: float         # 0..1
    tokens_per_second: float | None


@dataclass(frozen=True)
class ScalingResult:
    """Distributed aggregate vs the sum of single-node throughputs of the same configuration."""

    scenario: str
    nodes: list[str]               # nodes whose runs entered the figure
    excluded: dict[str, str]       # node or run -> why it was excluded (INVALID, failed, missing)
    aggregate_tokens_per_second: float | None   # all tokens / (last end - first start)
    aggregate_samples_per_second: float | None
    window_s: float | None
    single_sum_tokens_per_second: float | None
    efficiency: float | None       # aggregate / single sum; None when it cannot be computed honestly
    balance: list[NodeShare]
    flags: list[str]               # e.g. "efficiency 112% above 100%: ... likely causes ..."

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PlausibilityCheck:
    node: str
    scenario: str
    accelerator: str
    measured_tokens_per_second: float
    compute_bound_tokens_per_second: float | None
    bandwidth_bound_tokens_per_second: float | None   # only where the batch size is known
    implausible: bool
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Regression:
    metric: str                    # e.g. "tokens_per_second", "ttft_p99_ns", "rougeL"
    node: str
    scenario: str
    branch: str
    current: float
    baseline: float                # median of the comparable earlier runs
    change_pct: float              # signed, in the metric's own direction (negative = worse for throughput)
    threshold_pct: float
    p_value: float | None
    baseline_runs: list[str]       # run ids compared with
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
