"""Builders of RunRecords and RunMetas shaped like the pipeline's (result.json per schema_version 1)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from include.analysis.verdict import Verdict, judge
from include.history import RunMeta
from include.records import AccuracyResult, LoadGenResult, Regression, RunRecord, ScalingResult

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=timezone.utc)
CONFIG_A = "a" * 64
CONFIG_B = "b" * 64


def meta(run_id: str, day: int = 0, **overrides: Any) -> RunMeta:
    values: dict[str, Any] = dict(
        run_id=run_id, dag_id="mlperf_llama31_8b", logical_date=T0 + timedelta(days=day), trigger="scheduled",
        status="success", params={"scenarios": ["Offline"], "total_sample_count": 13368},
        verdict="VALID: the performance run · MLPerf-compliant", compliance="compliant", state="VALID", tone="good",
        report_path=f"/reports/{run_id}/index.html", started_at=T0 + timedelta(days=day, minutes=1),
        finished_at=T0 + timedelta(days=day, minutes=50))
    values.update(overrides)
    return RunMeta(**values)


def percentiles(p50: float, p99: float) -> dict[str, float]:
    return {"min": p50 / 2, "mean": p50, "p50": p50, "p90": p99 * 0.9, "p99": p99, "max": p99 * 1.2}


def result_json(*, node: str, scenario: str, mode: str, status: str = "completed", config_hash: str = CONFIG_A,
                accelerator: str = "NVIDIA H200", output_tokens: int = 1_711_104,
                samples_completed: int = 13_368, start_utc: datetime | None = None) -> dict[str, Any]:
    """result.json; without `start_utc` the run's own time is its RunMeta's (started_at, else logical date)."""
    end = start_utc + timedelta(seconds=641.5) if start_utc else None
    return {
        "schema_version": 1, "status": status, "error": None if status == "completed" else "EngineDeadError",
        "scenario": scenario, "mode": mode, "node": node, "backend": "vllm",
        "model": {"path": "/models/llama3.1-8b", "name": "llama3.1-8b", "load_format": "auto"},
        "dataset": {"path": "/data/cnn_eval.json", "total_sample_count": 13368, "dataset_size": 13368,
                    "sha256": "0" * 64},
        "versions": {"mlperf_sut": "0.1.0", "vllm": "0.26.0", "torch": "2.11.0+cu130", "loadgen": "6.0.17",
                     "python": "3.12.3"},
        "accelerator": {"kind": "gpu", "name": accelerator, "count": 1, "driver": "580.65", "memory_gib": 139.8},
        "engine": {"dtype": "bfloat16", "tensor_parallel_size": 1,
                   "max_num_seqs": 256 if config_hash == CONFIG_A else 512,
                   "max_num_batched_tokens": 8192, "gpu_memory_utilization": 0.9, "max_model_len": 2668},
        "generation": {"max_tokens": 128, "min_tokens": 1, "temperature": 0.0, "top_k": 1, "seed": 42,
                       "token_dtype": "int32"},
        "loadgen_settings": {"min_duration_ms": 600000},
        "config_hash": config_hash,
        "timing": {"start_utc": start_utc.isoformat() if start_utc else None,
                   "end_utc": end.isoformat() if end else None, "duration_s": 641.5},
        "counts": {"queries_issued": 13368, "samples_completed": samples_completed, "output_tokens": output_tokens},
        "endpoints": [], "shard": None, "accuracy_meaningful": True,
        "files": ["mlperf_log_summary.txt", "mlperf_log_detail.txt", "result.json"],
    }


def record(*, node: str = "gpu-node-0", scenario: str = "Offline", mode: str = "performance",
           branch: str = "single", status: str = "completed", valid: bool | None = True,
           tokens_per_second: float = 5000.0, ttft_p99_ns: float = 1.5e9, config_hash: str = CONFIG_A,
           accelerator: str = "NVIDIA H200", rougeL: float | None = None, run_dir: str | None = None,
           start_utc: datetime | None = None) -> RunRecord:
    lg_mode = "PerformanceOnly" if mode == "performance" else "AccuracyOnly"
    if mode == "accuracy":
        valid = None
    loadgen = None if status == "missing" else LoadGenResult(
        scenario=scenario, mode=lg_mode, valid=valid,
        invalid_reasons=[] if valid is not False else ["min duration not satisfied"],
        samples_per_second=tokens_per_second / 128, tokens_per_second=tokens_per_second,
        ttft_ns=percentiles(ttft_p99_ns / 3, ttft_p99_ns), tpot_ns=percentiles(2.0e7, 4.5e7),
        latency_ns=percentiles(3.0e9, 9.0e9), settings={"min_duration_ms": 600000}, duration_s=640.0,
        result_samples=13368, loadgen_version="6.0.17", warnings=[], errors=[])
    accuracy = None
    if rougeL is not None:
        accuracy = AccuracyResult(rouge1=38.9, rouge2=16.0, rougeL=rougeL, rougeLsum=35.9, gen_len=8_100_000,
                                  gen_num=13368, full_dataset=True, target_set="datacenter", passed=True,
                                  verdict="passed")
    return RunRecord(
        run_dir=run_dir or f"/artifacts/run/{branch}/{node}/{scenario}/{mode}", branch=branch, node=node,
        scenario=scenario, mode=mode, status=status, error=None if status == "completed" else "pod failed",
        result=None if status == "missing" else result_json(node=node, scenario=scenario, mode=mode,
                                                            status="completed" if status == "completed" else "failed",
                                                            config_hash=config_hash, accelerator=accelerator,
                                                            start_utc=start_utc),
        loadgen=loadgen, accuracy=accuracy)


def scaling(efficiency: float = 0.97) -> ScalingResult:
    return ScalingResult(
        scenario="Offline", nodes=["gpu-node-0", "gpu-node-1"], excluded={"gpu-node-2": "INVALID"},
        aggregate_tokens_per_second=9700.0, aggregate_samples_per_second=75.8, window_s=650.0,
        single_sum_tokens_per_second=10000.0, efficiency=efficiency, balance=[], flags=[])


def regression(node: str = "gpu-node-0", metric: str = "tokens_per_second") -> Regression:
    return Regression(metric=metric, node=node, scenario="Offline", branch="single", current=4500.0,
                      baseline=5000.0, change_pct=-10.0, threshold_pct=5.0, p_value=0.001,
                      baseline_runs=["r1", "r2", "r3"], explanation="regression: tokens_per_second -10%")


def verdict(records: list[RunRecord], run_id: str = "r") -> Verdict:
    """The pipeline's verdict of these records (no plausibility checks: 'unknown')."""
    return judge(run_id, records, {})
