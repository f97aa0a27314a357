"""Analysis and the verdict: scaling, plausibility, the GPU time budget, regressions against earlier runs, the one
`Verdict`, the metric catalogue and MLPerf's published results (data/).

`Analysis`: what the analyse step hands on about one pipeline run (scaling, plausibility, the GPU time budget,
regressions, the one `Verdict`), the record the report, the history and the notification read. Beside the records
rather than in the pipeline, so that the report takes it without importing the pipeline that calls the report."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from include.analysis.gpu_time import GpuTimeBudget
from include.analysis.scaling import scaling_from_dict
from include.analysis.verdict import Verdict
from include.records import PlausibilityCheck, Regression, RunRecord, ScalingResult


@dataclass(frozen=True)
class Analysis:
    """Everything the report, the history and the notification need about one pipeline run."""

    run_id: str
    created_utc: str
    threshold_pct: float
    scaling: list[ScalingResult]
    plausibility: list[PlausibilityCheck]
    gpu_time: GpuTimeBudget
    regressions: list[Regression]
    verdict: Verdict
    notes: list[str] = field(default_factory=list)          # why regressions were not (fully) judged, etc.
    history: list[dict[str, Any]] = field(default_factory=list)   # trend points (see _history_points)
    records: list[RunRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "verdict"}
        data = json.loads(json.dumps({k: _plain(v) for k, v in data.items()}, default=str))
        return {**data, "verdict": self.verdict.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Analysis":
        data = dict(data)
        data["scaling"] = [scaling_from_dict(s) for s in data.get("scaling") or []]
        data["plausibility"] = [PlausibilityCheck(**p) for p in data.get("plausibility") or []]
        data["gpu_time"] = GpuTimeBudget.from_dict(data["gpu_time"])
        data["regressions"] = [Regression(**g) for g in data.get("regressions") or []]
        data["records"] = [RunRecord.from_dict(r) for r in data.get("records") or []]
        data["verdict"] = Verdict.from_dict(data["verdict"])
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
