"""RunRecords with realistic numbers (H200 bf16 figures from FACTS.md) for the analysis tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from include.records import AccuracyResult, LoadGenResult, RunRecord

T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
LAT_KEYS = ["min", "max", "mean", "p50", "p90", "p95", "p97", "p99", "p99.9"]


def _lat(p50_ms: float, p99_ms: float) -> dict[str, float]:
    values = {"min": p50_ms * 0.2, "max": p99_ms * 1.2, "mean": p50_ms * 1.1, "p50": p50_ms,
              "p90": (p50_ms + p99_ms) / 2, "p95": p99_ms * 0.9, "p97": p99_ms * 0.95, "p99": p99_ms,
              "p99.9": p99_ms * 1.1}
    return {k: v * 1e6 for k, v in values.items()}


def make_record(node: str = "gpu-a", scenario: str = "Offline", branch: str = "single", *,
                mode: str = "performance", tokens_per_second: float | None = 5019.0,
                samples_per_second: float | None = 39.2, samples: int = 3000, output_tokens: int | None = None,
                start_offset_s: float = 0.0, duration_s: float | None = None, valid: bool | None = True,
                invalid_reasons: list[str] | None = None, status: str = "completed", error: str | None = None,
                accelerator: str = "NVIDIA H200", accel_kind: str = "gpu", accel_count: int = 1,
                memory_gib: float | None = 140.0, engine: dict[str, Any] | None = None,
                endpoints: list[dict[str, Any]] | None = None, model_name: str = "Llama-3.1-8B-Instruct",
                load_format: str = "auto", total_sample_count: int = 13368, dataset_size: int = 13368,
                loadgen_settings: dict[str, Any] | None = None, shard: dict | None = None,
                ttft_ms: tuple[float, float] = (220.0, 1900.0), tpot_ms: tuple[float, float] = (23.0, 25.0),
                accuracy: AccuracyResult | None = None, run_id: str = "run-1", label: str | None = None,
                config_hash: str = "a" * 64, process: dict[str, Any] | None = None,
                test_dir: str | None = None) -> RunRecord:
    if output_tokens is None:
        output_tokens = samples * 128
    if duration_s is None:
        duration_s = output_tokens / tokens_per_second if tokens_per_second else 600.0
    start = T0 + timedelta(seconds=start_offset_s)
    end = start + timedelta(seconds=duration_s)
    label = label or node
    run_dir = f"/artifacts/{run_id}/{branch}/{label}/{scenario}/{test_dir or mode}"
    settings = {"min_duration": 600000, "min_query_count": 13368, **(loadgen_settings or {})}
    result = {
        "schema_version": 1, "status": status, "error": error, "scenario": scenario, "mode": mode, "node": node,
        "backend": "http" if endpoints else "vllm",
        "model": {"path": "/models/llama", "name": model_name, "load_format": load_format},
        "dataset": {"path": "/data/cnn_eval.json", "total_sample_count": total_sample_count,
                    "dataset_size": dataset_size, "sha256": "0" * 64},
        "versions": {"mlperf_sut": "0.1.0", "vllm": "0.26.0", "torch": "2.11.0", "loadgen": "6.0.17",
                     "python": "3.12.3"},
        "accelerator": {"kind": accel_kind, "name": accelerator, "count": accel_count, "driver": "580.65",
                        "memory_gib": memory_gib},
        "engine": engine or {"dtype": "bfloat16", "tensor_parallel_size": 1, "max_num_seqs": 256,
                             "max_num_batched_tokens": 8192, "gpu_memory_utilization": 0.9, "max_model_len": 2668,
                             "enable_prefix_caching": False},
        "generation": {"max_tokens": 128, "min_tokens": 1, "temperature": 0.0, "top_k": 1, "seed": 42,
                       "token_dtype": "int32"},
        "loadgen_settings": settings, "config_hash": config_hash,
        "timing": {"start_utc": start.isoformat().replace("+00:00", "Z"),
                   "end_utc": end.isoformat().replace("+00:00", "Z"), "duration_s": duration_s},
        "counts": {"queries_issued": samples, "samples_completed": samples, "output_tokens": output_tokens},
        "endpoints": endpoints or [], "shard": shard, "accuracy_meaningful": load_format != "dummy",
        "files": ["mlperf_log_summary.txt", "mlperf_log_detail.txt", "result.json"],
        **({"process": process} if process else {}),
    }
    loadgen = None
    if status == "completed":
        loadgen = LoadGenResult(
            scenario=scenario, mode="PerformanceOnly" if mode == "performance" else "AccuracyOnly",
            valid=valid if mode == "performance" else None,
            invalid_reasons=invalid_reasons or ([] if valid or valid is None else ["min duration not satisfied"]),
            samples_per_second=samples_per_second if mode == "performance" else None,
            tokens_per_second=tokens_per_second if mode == "performance" else None,
            ttft_ns=_lat(*ttft_ms), tpot_ns=_lat(*tpot_ms), latency_ns=_lat(3000.0, 5000.0),
            settings=settings, duration_s=duration_s, result_samples=samples, loadgen_version="6.0.17",
            warnings=[], errors=[])
    return RunRecord(run_dir=run_dir, branch=branch, node=node, scenario=scenario, mode=mode, status=status,
                     error=error, result=result, loadgen=loadgen, accuracy=accuracy)
