"""One verdict per run, computed once and carried unchanged into analysis.json, the report, the history, the UI,
the notification and the DAG's `verdict` task. No view re-derives it.

A `RunVerdict` judges one SUT run: how it ended (completed / failed / missing, with exit code and log where known),
LoadGen's validity and reasons, LoadGen's errors and warnings by key (any error makes a run not submission-grade),
MLPerf compliance (compliant / not compliant with reasons / unknown when nothing says), physical plausibility,
the accuracy judgement, and the comparability key: the settings that change performance. Runs are compared (trends,
regressions, compare view) only when their keys are equal.

A `Verdict` is the whole pipeline run's: every RunVerdict, the run's status, and one headline a person reads first.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from include import mlperf_rules as rules
from include.records import PlausibilityCheck, Regression, RunRecord
from include.results.loadgen_logs import QSL_TOTAL_COUNT_KEY

Compliance = Literal["compliant", "not compliant", "unknown"]
Plausibility = Literal["plausible", "implausible", "unknown"]
RunState = Literal["VALID", "INVALID", "COMPLETED", "FAILED", "MISSING"]
COMPLIANT, NOT_COMPLIANT, UNKNOWN = "compliant", "not compliant", "unknown"
FAILED_STATES = ("FAILED", "MISSING")
# the compliance reason of a run on random weights (load_format=dummy): the only one a lent GPU cannot avoid
DUMMY_WEIGHTS = "dummy (random) weights"


# ---------------------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class RunVerdict:
    """The verdict on one SUT run."""

    branch: str
    node: str
    scenario: str
    mode: str
    state: str                                  # VALID | INVALID | COMPLETED (accuracy mode) | FAILED | MISSING
    error: str | None                           # why it failed / is missing
    exit_code: int | None                       # the SUT's exit code where the runner recorded it
    log_path: str | None                        # the SUT's own log where the runner recorded it
    invalid_reasons: list[str]
    loadgen_errors: dict[str, str]              # LoadGen's is_error records by key
    loadgen_warnings: dict[str, str]
    submission_grade: bool | None               # False: LoadGen logged an error; None: no LoadGen log read
    compliance: str                             # compliant | not compliant | unknown
    compliance_reasons: list[str]
    plausibility: str                           # plausible | implausible | unknown
    plausibility_bound: float | None            # the tightest physical bound, output tokens/s
    plausibility_ratio: float | None            # measured / bound
    plausibility_explanation: str
    accuracy: str | None                        # accuracy runs: pass | fail | not applicable | meaningless | not scored
    accuracy_text: str | None
    comparability: dict[str, Any]
    comparability_hash: str

    @property
    def name(self) -> str:
        return f"{self.branch}/{self.node}/{self.scenario}/{self.mode}"

    @property
    def failed(self) -> bool:
        return self.state in FAILED_STATES

    @property
    def flags(self) -> list[str]:
        """Qualifiers shown beside the state wherever the run is shown."""
        out = []
        if self.plausibility == "implausible":
            out.append("IMPLAUSIBLE")
        if self.submission_grade is False:
            out.append("not submission-grade: " + "; ".join(f"{k}: {v}" for k, v in self.loadgen_errors.items()))
        if self.compliance == NOT_COMPLIANT:
            out.append("not compliant")
        elif self.compliance == UNKNOWN:
            out.append("compliance unknown")
        return out

    @property
    def headline(self) -> str:
        """The one line: state, then why. e.g. 'VALID · IMPLAUSIBLE · not compliant'."""
        first = self.state
        if self.state == "INVALID" and self.invalid_reasons:
            first += f" ({'; '.join(self.invalid_reasons)})"
        elif self.failed:
            first += f" ({self.cause})"
        elif self.accuracy:
            first += f" (accuracy {self.accuracy})"
        return " · ".join([first, *self.flags])

    @property
    def cause(self) -> str:
        """Why a run failed, with its exit code and log where known."""
        parts = [self.error or "no error recorded"]
        if self.exit_code is not None and f"exit code {self.exit_code}" not in parts[0]:
            parts.append(f"exit code {self.exit_code}")
        if self.log_path and self.log_path not in parts[0]:
            parts.append(f"log {self.log_path}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "name": self.name, "headline": self.headline, "flags": self.flags}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunVerdict":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Verdict:
    """The verdict on one pipeline run: every SUT run's, and what they add up to."""

    run_id: str
    runs: list[RunVerdict]
    regressions: list[str] = field(default_factory=list)      # "metric node scenario -12.3%"

    @property
    def status(self) -> str:
        """success: every planned run completed; partial: some did; failed: none did (or none was readable)."""
        if not self.runs:
            return "failed"
        failed = sum(r.failed for r in self.runs)
        return "success" if not failed else ("failed" if failed == len(self.runs) else "partial")

    @property
    def compliance(self) -> str:
        states = {r.compliance for r in self.runs}
        if NOT_COMPLIANT in states:
            return NOT_COMPLIANT
        return COMPLIANT if self.runs and states == {COMPLIANT} else UNKNOWN

    @property
    def compliance_reasons(self) -> list[str]:
        reasons = [f"{r.node} {r.scenario} {r.mode}: {why}" for r in self.runs for why in r.compliance_reasons]
        if not self.runs:
            reasons.append("no run was readable")
        return list(dict.fromkeys(reasons))

    @property
    def submission_grade(self) -> bool | None:
        grades = {r.submission_grade for r in self.runs}
        if False in grades:
            return False
        return True if self.runs and grades == {True} else None

    @property
    def failed(self) -> list[RunVerdict]:
        return [r for r in self.runs if r.failed]

    @property
    def invalid(self) -> list[RunVerdict]:
        return [r for r in self.runs if r.state == "INVALID"]

    @property
    def implausible(self) -> list[RunVerdict]:
        return [r for r in self.runs if r.plausibility == "implausible"]

    @property
    def loadgen_errors(self) -> dict[str, list[str]]:
        """LoadGen error key -> the runs that logged it."""
        out: dict[str, list[str]] = {}
        for r in self.runs:
            for key in r.loadgen_errors:
                out.setdefault(key, []).append(r.name)
        return out

    @property
    def state(self) -> str:
        """The headline's first word, for a badge: FAILED (a run failed or is missing, or none was readable), INVALID
        (a performance run is), VALID (every performance run is), COMPLETED (no performance run: accuracy only)."""
        if not self.runs or self.failed:
            return "FAILED"
        if self.invalid:
            return "INVALID"
        return "VALID" if any(r.mode == "performance" for r in self.runs) else "COMPLETED"

    @property
    def tone(self) -> str:
        """How the headline is shown: 'bad' (a run failed, is INVALID or implausible, or regressed), 'warn' (every
        figure stands, but the run is not submission-grade or not known to be compliant), 'good' (nothing to add)."""
        if self.status != "success" or self.invalid or self.implausible or self.regressions:
            return "bad"
        return "good" if self.compliance == COMPLIANT and self.submission_grade else "warn"

    @property
    def headline(self) -> str:
        """What a person reads first: FAILED / INVALID / VALID, and every reason not to trust the figures."""
        if not self.runs:
            return "FAILED: no run was readable"
        parts = []
        if self.failed:
            parts.append(f"FAILED: {len(self.failed)} of {len(self.runs)} runs failed or missing ("
                         + "; ".join(f"{r.name}: {r.cause}" for r in self.failed) + ")")
        perf = [r for r in self.runs if r.mode == "performance" and not r.failed]
        if self.invalid:
            parts.append(f"INVALID: {len(self.invalid)} of {len(perf)} performance runs")
        elif perf and not self.failed:
            parts.append("VALID: the performance run" if len(perf) == 1 else f"VALID: all {len(perf)} performance runs")
        if self.implausible:
            parts.append(f"IMPLAUSIBLE: {', '.join(r.name for r in self.implausible)}")
        if self.loadgen_errors:
            parts.append("not submission-grade: LoadGen errors " + ", ".join(
                f"{key} in {len(runs)} run(s)" for key, runs in self.loadgen_errors.items()))
        if self.regressions:
            parts.append(f"{len(self.regressions)} regression(s)")
        parts.append({COMPLIANT: "MLPerf-compliant", NOT_COMPLIANT: "not MLPerf-compliant",
                      UNKNOWN: "MLPerf compliance unknown"}[self.compliance])
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "runs": [r.to_dict() for r in self.runs], "regressions": list(self.regressions),
                "status": self.status, "compliance": self.compliance, "compliance_reasons": self.compliance_reasons,
                "submission_grade": self.submission_grade, "state": self.state, "tone": self.tone,
                "headline": self.headline}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Verdict":
        return cls(run_id=data["run_id"], runs=[RunVerdict.from_dict(r) for r in data.get("runs") or []],
                   regressions=list(data.get("regressions") or []))


# ---------------------------------------------------------------------------------------------------------------
# Judging


def loadgen_setting(record: RunRecord, *names: str) -> Any:
    """A LoadGen setting by any of its spellings: what LoadGen logged first, then what result.json says was set."""
    sources = [(record.loadgen.settings if record.loadgen else None) or {},
               record.sut.loadgen_settings if record.sut else {}]
    for source in sources:
        for name in names:
            for key in (name, f"effective_{name}"):
                if source.get(key) is not None:
                    return source[key]
    return None


def min_duration_ms(record: RunRecord) -> float | None:
    """The run's LoadGen min_duration in ms (LoadGen logs min_duration_ms; result.json's settings say min_duration, in
    ms too); None when neither recorded it."""
    value = loadgen_setting(record, "min_duration_ms", "min_duration")
    return float(value) if value is not None else None


def _off(value: Any) -> bool:
    return str(value).strip().lower() in ("0", "false", "0.0")


def compliance_of(record: RunRecord) -> tuple[str, list[str]]:
    """(compliant | not compliant | unknown, reasons) of one run against MLPerf's llama3.1-8b rules.

    Unknown when a fact the rules need is not on record (no result.json and no LoadGen log, or a LoadGen-only run
    whose weights and data set nobody stated); never 'compliant' by default.
    """
    sut, lg = record.sut, record.loadgen
    if sut is None and lg is None:
        return UNKNOWN, ["nothing readable: no result.json and no LoadGen log"]
    reasons: list[str] = []
    unknown: list[str] = []
    total = sut.dataset.total_sample_count if sut else None
    if total is None and lg is not None:
        total = lg.settings.get(QSL_TOTAL_COUNT_KEY)
    if total is None:
        unknown.append("data set size not recorded")
    elif int(total) < rules.DATASET_SAMPLES:
        reasons.append(f"sample subset, {int(total):,} of {rules.DATASET_SAMPLES:,} samples")
    if sut is None:
        unknown.append("weights and engine not recorded (no result.json)")
    elif sut.model.dummy_weights:
        reasons.append(DUMMY_WEIGHTS)
    elif sut.model.weights_unknown:
        unknown.append("the servers' weights not recorded (a coordinated run written before its servers reported "
                       "their settings)")
    if record.mode == "performance":
        if sut is not None and sut.prefix_caching:
            reasons.append("prompt prefix caching on (LoadGen repeats samples, and a prompt seen before skips its "
                           "prefill: throughput is overstated)")
        min_duration = min_duration_ms(record)
        if min_duration is None:
            unknown.append("min_duration not recorded")
        elif min_duration < rules.MIN_DURATION_S * 1000:
            reasons.append(f"min_duration shortened to {min_duration / 1000:,.0f} s "
                           f"(MLPerf: {rules.MIN_DURATION_S:,} s)")
        equal_issue = loadgen_setting(record, rules.EQUAL_ISSUE_SETTING)
        if equal_issue is not None and _off(equal_issue):
            reasons.append(f"equal issue off ({rules.EQUAL_ISSUE_SETTING}=0; MLPerf's llama3.1-8b rules turn it on, "
                           "so every test issues whole passes over the data set)")
        if record.scenario == "Offline":
            counts = [loadgen_setting(record, "min_query_count"), loadgen_setting(record, "samples_per_query")]
            known = [float(c) for c in counts if c is not None]
            if known and max(known) < rules.OFFLINE_MIN_QUERY_COUNT:
                reasons.append(f"min_query_count / samples per query {max(known):,.0f} "
                               f"(MLPerf: {rules.OFFLINE_MIN_QUERY_COUNT:,})")
    if reasons:
        return NOT_COMPLIANT, list(dict.fromkeys(reasons))
    if unknown or record.status != "completed":
        return UNKNOWN, unknown or [f"run {record.status}"]
    return COMPLIANT, []


def _by_key(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(": ")
        out[key] = value
    return out


def comparability_key(record: RunRecord, profile: str | None = None) -> dict[str, Any]:
    """The settings that change performance. Two runs are compared only when these are equal."""
    sut, lg = record.sut, record.loadgen
    # a coordinated run whose servers did not report their card: its engine fields are the coordinator's flags
    engine = dict(sut.engine) if sut and sut.accelerator_known else {}
    qps = loadgen_setting(record, "server_target_qps", "target_qps") if record.scenario != "Offline" else None
    return {
        "scenario": record.scenario, "branch": record.branch, "node": record.node, "profile": profile,
        "model": sut.model.name if sut else None, "load_format": sut.model.load_format if sut else None,
        "dtype": engine.pop("dtype", None), "quantization": engine.pop("quantization", None),
        "kv_cache_dtype": engine.pop("kv_cache_dtype", None),
        "prefix_caching": sut.prefix_caching if sut else None,
        "max_num_seqs": engine.pop("max_num_seqs", None),
        "max_num_batched_tokens": engine.pop("max_num_batched_tokens", None),
        "tensor_parallel_size": engine.pop("tensor_parallel_size", None),
        "pipeline_parallel_size": engine.pop("pipeline_parallel_size", None),
        "engines": sut.engines if sut else None,
        "engine_args": {k: v for k, v in sorted(engine.items()) if k != "enable_prefix_caching"},
        "backend": sut.backend if sut else None,
        "accelerator": sut.accelerator.name if sut and sut.accelerator_known else None,
        "accelerator_count": sut.accelerator.count if sut and sut.accelerator_known else None,
        "server_target_qps": float(qps) if qps is not None else None,
        "sut_version": sut.versions.get("mlperf_sut") if sut else None,
        "vllm_version": sut.versions.get("vllm") if sut else None,
        "loadgen_version": (sut.versions.get("loadgen") if sut else None) or (lg.loadgen_version if lg else None),
        # Only where a preset was used, so the keys (and series) of runs without one stay as they were: a preset
        # change starts a new series even where the settings it resolves to are equal.
        **({"engine_preset": sut.engine_preset.name} if sut and sut.engine_preset else {}),
    }


def key_hash(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The settings two comparability keys differ in, in words: 'dtype: bfloat16 -> fp8'."""
    return [f"{k}: {a.get(k)} -> {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def state_of(record: RunRecord) -> str:
    if record.status == "failed":
        return "FAILED"
    if record.status == "missing":
        return "MISSING"
    if record.mode == "accuracy":
        return "COMPLETED"
    lg = record.loadgen
    return "VALID" if lg is not None and lg.valid is True else "INVALID"


def _invalid_reasons(record: RunRecord) -> list[str]:
    lg = record.loadgen
    if record.mode != "performance" or record.status != "completed":
        return []
    if lg is None:
        return ["no LoadGen result"]
    if lg.valid is None:
        return ["LoadGen gave no VALID/INVALID verdict"]
    return list(lg.invalid_reasons) if lg.valid is False else []


def _accuracy(record: RunRecord) -> tuple[str | None, str | None]:
    if record.mode != "accuracy":
        return None, None
    acc = record.accuracy
    if record.status != "completed":
        return "not scored", f"run {record.status}"
    if record.sut is not None and not record.sut.accuracy_meaningful:
        return "meaningless", DUMMY_WEIGHTS + (f": {acc.verdict}" if acc else "")
    if acc is None:
        return "not scored", record.error or "no model directory or data set given"
    if acc.passed is None:
        return "not applicable", acc.verdict
    text = acc.verdict + (f" ({'; '.join(acc.failures)})" if acc.failures else "")
    return ("pass" if acc.passed else "fail"), text


def _plausibility(check: PlausibilityCheck | None) -> tuple[str, float | None, float | None, str]:
    if check is None:
        return UNKNOWN, None, None, "no throughput figure to check"
    bounds = [b for b in (check.compute_bound_tokens_per_second, check.bandwidth_bound_tokens_per_second) if b]
    bound = min(bounds) if bounds else None
    ratio = check.measured_tokens_per_second / bound if bound else None
    if check.implausible:
        return "implausible", bound, ratio, check.explanation
    return ("plausible" if bound else UNKNOWN), bound, ratio, check.explanation


def judge_run(record: RunRecord, check: PlausibilityCheck | None, profile: str | None = None) -> RunVerdict:
    lg = record.loadgen
    errors = _by_key(lg.errors) if lg else {}
    compliance, reasons = compliance_of(record)
    plausible, bound, ratio, explanation = _plausibility(check)
    accuracy, accuracy_text = _accuracy(record)
    key = comparability_key(record, profile)
    return RunVerdict(
        branch=record.branch, node=record.node, scenario=record.scenario, mode=record.mode, state=state_of(record),
        error=record.error if record.status != "completed" else None,
        exit_code=record.exit_code, log_path=record.log_path,
        invalid_reasons=_invalid_reasons(record), loadgen_errors=errors,
        loadgen_warnings=_by_key(lg.warnings) if lg else {},
        submission_grade=(not errors) if lg is not None else None,
        compliance=compliance, compliance_reasons=reasons,
        plausibility=plausible, plausibility_bound=bound, plausibility_ratio=ratio,
        plausibility_explanation=explanation, accuracy=accuracy, accuracy_text=accuracy_text,
        comparability=key, comparability_hash=key_hash(key))


def judge(run_id: str, records: list[RunRecord], checks: dict[str, PlausibilityCheck | None],
          regressions: list[Regression] | None = None, profile: str | None = None) -> Verdict:
    """The verdict of every run, computed once; `checks` maps a run's run_dir to its plausibility check."""
    runs = [judge_run(r, checks.get(r.run_dir), profile) for r in records]
    regs = [f"{g.metric} {g.node} {g.scenario} {g.change_pct:+.1f}%" for g in regressions or []]
    return Verdict(run_id=run_id, runs=runs, regressions=regs)
