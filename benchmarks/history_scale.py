"""Time the Benchmarks page, the regression check and the report's trend chart on a history of 50,000 results.

A year of nightly runs on a 16-node cluster is ~25,000 results; this seeds twice that into a private PostgreSQL
database (created on 127.0.0.1:5432 and dropped afterwards): two years of nightly runs of 66 SUT runs each (16
nodes x Offline and Server x performance and accuracy, two coordinated distributed runs), a change of settings
every ~4 months (bf16 -> FP8 -> FP8 KV -> 32k batched tokens -> vLLM 0.27...), ~2% INVALID, ~1% failed, ~0.3%
implausible, ~1% with LoadGen errors and a regression in a quarter of the runs: realistic keys and verdicts. Rows
are written with bulk inserts (the write path is not timed).

Timed (wall clock, warm, after one untimed pass):
- the page: what each request of the overview asks of the store and builds (queries.overview: trend window,
  series and figures, one page of runs, regressions, published references) for typical filters; p95 in ms (on
  stderr: each filter's median, and the whole page with its HTML rendered);
- the regression check of one new run: its 25 SUT runs against their comparable history (store + assess);
- a report's trend chart: this run's series read from the store, drawn to a PNG.

The last line:

    history_results=50000 page_p95_ms=... regressions_ms=... trend_chart_ms=...
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert

from include import pipeline
from include.analysis import regressions
from include.analysis.published import load_published
from include.analysis.verdict import key_hash
from include.history import HistoryStore
from include.history.models import BenchmarkResult, BenchmarkRun, RegressionRecord
from include.reporting.charts import TREND_POINTS, trend

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))   # as Airflow puts its plugins folder

from mlperf_benchmarks import queries, rendering  # noqa: E402
from mlperf_benchmarks.filters import Filters  # noqa: E402

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
NODES = [f"gpu-node-{i:02d}" for i in range(16)]
SETTINGS = [   # one epoch each, ~60 days
    {"dtype": "bfloat16", "quantization": None, "kv_cache_dtype": None, "max_num_batched_tokens": 8192},
    {"dtype": "bfloat16", "quantization": "fp8", "kv_cache_dtype": None, "max_num_batched_tokens": 8192},
    {"dtype": "bfloat16", "quantization": "fp8", "kv_cache_dtype": "fp8", "max_num_batched_tokens": 8192},
    {"dtype": "bfloat16", "quantization": "fp8", "kv_cache_dtype": "fp8", "max_num_batched_tokens": 32768},
    {"dtype": "bfloat16", "quantization": "fp8", "kv_cache_dtype": "fp8", "max_num_batched_tokens": 32768,
     "vllm_version": "0.27.0"},
    {"dtype": "bfloat16", "quantization": "fp8", "kv_cache_dtype": "fp8", "max_num_batched_tokens": 65536,
     "vllm_version": "0.27.0"},
]
BASE_TPS = {"Offline": 7800.0, "Server": 6100.0}


def key(scenario: str, branch: str, node: str, epoch: int) -> dict:
    settings = {"vllm_version": "0.26.0", **SETTINGS[epoch]}
    return {"scenario": scenario, "branch": branch, "node": node, "profile": "production", "model": "llama3.1-8b",
            "load_format": "auto", "prefix_caching": False, "max_num_seqs": 1024, "tensor_parallel_size": 1,
            "pipeline_parallel_size": 1, "engines": 1 if branch == "single" else 2, "engine_args": {},
            "backend": "vllm", "accelerator": "NVIDIA H200", "accelerator_count": 1 if branch == "single" else 16,
            "server_target_qps": 50.0 if scenario == "Server" else None, "sut_version": "0.1.0",
            "loadgen_version": "6.0.17", **settings}


def result_row(rng: random.Random, run_pk: int, when: datetime, scenario: str, branch: str, node: str,
               mode: str, epoch: int) -> dict:
    k = key(scenario, branch, node, epoch)
    roll = rng.random()
    status = "failed" if roll < 0.01 else "completed"
    valid = None if status == "failed" else roll > 0.03
    implausible = status == "completed" and 0.03 < roll < 0.033
    grade = not (0.033 < roll < 0.043)
    tps = BASE_TPS[scenario] * (1 + 0.15 * epoch) * (16 if branch == "distributed" else 1) * rng.gauss(1, 0.01)
    if implausible:
        tps *= 3
    accuracy = mode == "accuracy"
    if accuracy and status == "completed":
        valid, implausible = None, False
    state = "FAILED" if status == "failed" else ("COMPLETED" if accuracy else ("VALID" if valid else "INVALID"))
    flags = (["IMPLAUSIBLE"] if implausible else []) + ([] if grade else ["not submission-grade"])
    return {
        "run_pk": run_pk, "branch": branch, "node": node, "scenario": scenario, "mode": mode,
        "status": status, "error": "pod exited 137" if status == "failed" else None, "valid": valid,
        "invalid_reasons": [] if valid is not False else ["min duration not satisfied"],
        "config_hash": key_hash(k)[:32], "accelerator": "NVIDIA H200",
        "versions": {"vllm": k["vllm_version"], "loadgen": "6.0.17"},
        "samples_per_second": None if status == "failed" or accuracy else tps / 128,
        "tokens_per_second": None if status == "failed" or accuracy else tps,
        "rouge1": 38.8 if accuracy else None, "rouge2": 15.9 if accuracy else None,
        "rougeL": rng.gauss(24.5, 0.05) if accuracy else None, "rougeLsum": 35.8 if accuracy else None,
        "accuracy_passed": True if accuracy else None, "accuracy_meaningful": True if accuracy else None,
        "ttft_p50_ns": 60e6, "ttft_p99_ns": 180e6 * rng.gauss(1, 0.02), "tpot_p50_ns": 17e6,
        "tpot_p99_ns": 40e6 * rng.gauss(1, 0.02), "latency_p50_ns": 2.2e9, "latency_p99_ns": 4.8e9,
        "duration_s": 612.0, "output_tokens": int(tps * 612), "samples_completed": 13368,
        "start_utc": when, "end_utc": when + timedelta(seconds=612), "run_dir": f"/artifacts/{run_pk}/{node}",
        "state": state, "verdict": " · ".join([state, *flags, "not compliant"]), "submission_grade": grade,
        "compliance": "not compliant", "compliance_reasons": ["min_duration shortened"],
        "plausibility": "implausible" if implausible else "plausible", "comparability": k,
        "comparability_hash": key_hash(k), "loadgen_errors": {} if grade else {"error_invalid_config": "x"},
    }


def seed(store: HistoryStore, results: int, seed_value: int = 14) -> datetime:
    rng = random.Random(seed_value)
    places = ([(s, "single", n, m) for s in ("Offline", "Server") for m in ("performance", "accuracy")
               for n in NODES] + [(s, "distributed", "coordinated", "performance") for s in ("Offline", "Server")])
    runs = -(-results // len(places))                                  # the last run holds the remainder
    step = timedelta(days=1)                                           # nightly
    start = datetime(2026, 11, 29, 2, 0, tzinfo=timezone.utc) - runs * step
    with store.engine.begin() as conn:
        for i in range(runs):
            when = start + i * step
            epoch = min(int(i * len(SETTINGS) / runs), len(SETTINGS) - 1)
            run_pk = conn.execute(insert(BenchmarkRun).returning(BenchmarkRun.id), {
                "run_id": f"scheduled__{when.isoformat()}", "dag_id": "mlperf_llama31_8b", "logical_date": when,
                "run_at": when + timedelta(minutes=2), "trigger": "scheduled", "status": "success", "params": {},
                "mlperf_compliant": False, "compliance": "not compliant", "verdict": "VALID · not compliant",
                "state": "VALID", "tone": "warn",
                "report_path": f"{i}/report/report.html", "started_at": when, "finished_at": when,
                "created_at": when}).scalar_one()
            rows = [result_row(rng, run_pk, when + timedelta(minutes=2), s, b, n, m, epoch)
                    for s, b, n, m in places[:results - i * len(places)]]
            conn.execute(insert(BenchmarkResult), rows)
            if rng.random() < 0.25:
                r = rows[rng.randrange(len(NODES))]
                conn.execute(insert(RegressionRecord), {
                    "run_pk": run_pk, "metric": "tokens_per_second", "node": r["node"], "scenario": r["scenario"],
                    "branch": r["branch"], "current": 7000.0, "baseline": 7800.0, "change_pct": -10.3,
                    "threshold_pct": 5.0, "p_value": 0.01, "baseline_runs": [], "explanation": "synthetic"})
    store.replace_published(load_published())
    return start + runs * step


class _Request:
    """What the page's template reads of a request: where the app is mounted."""
    scope = {"root_path": ""}


def timed(fn, repeat: int = 1) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=50_000)
    parser.add_argument("--admin-url", default=os.environ.get("MLPERF_SCALE_PG_ADMIN", PG_ADMIN))
    args = parser.parse_args(argv)
    from sqlalchemy import create_engine, text

    database = f"history_scale_{os.getpid()}"
    admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    url = args.admin_url.rsplit("/", 1)[0] + f"/{database}"
    try:
        writer = HistoryStore(url)
        writer.upgrade()
        t0 = time.perf_counter()
        end = seed(writer, args.results)
        with writer.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        print(f"seeded in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        writer.dispose()
        store = HistoryStore(url, readonly=True)
        total = store.engine.connect().execute(text("SELECT count(*) FROM benchmark_results")).scalar_one()

        requests = [Filters(), Filters(scenario="Server"), Filters(node="gpu-node-07"),
                    Filters(branch="distributed"), Filters(since=(end - timedelta(days=30)).date())]
        for f in requests:                       # warm: connections, plans, imports
            queries.overview(store, f, 1)
        page = []
        for f in requests:
            for number in (1, 2, 9):
                page += timed(lambda: queries.overview(store, f, number), repeat=2)
        page_p95 = statistics.quantiles(page, n=20)[-1]
        for f, label in zip(requests, ("all", "Server", "one node", "distributed", "30 days")):
            one = timed(lambda: queries.overview(store, f, 1), repeat=3)
            print(f"page {label}: median {statistics.median(one):.0f} ms", file=sys.stderr)
        html = timed(lambda: rendering.render(_Request(), "index.html", schema_missing=None, filters=requests[-1],
                                              **queries.overview(store, requests[-1], 1)), repeat=3)
        print(f"page 30 days with its HTML: median {statistics.median(html):.0f} ms", file=sys.stderr)

        # One new run: its 25 SUT runs judged against their comparable history.
        new = store.results(run_id=store.runs(limit=1)[0].run_id)

        def check() -> None:
            for row in new:
                earlier = store.comparable_history(row.comparability_hash, row.mode, before=row.at + timedelta(
                    seconds=1), exclude_run_id=row.run_id)
                regressions.assess(row, earlier, threshold_pct=5.0)
        check()
        regressions_ms = statistics.median(timed(check, repeat=5))

        with tempfile.TemporaryDirectory() as tmp:
            def chart() -> None:
                keys = sorted({r.comparability_hash for r in new})      # as pipeline.analyse reads them
                rows = store.results(mode="performance", key_hashes=keys, latest=TREND_POINTS * len(keys))
                trend(pipeline.trend_points(rows), Path(tmp) / "trend.png")
            chart()
            trend_ms = statistics.median(timed(chart, repeat=3))
        store.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
    print(f"history_results={total} page_p95_ms={page_p95:.0f} regressions_ms={regressions_ms:.0f} "
          f"trend_chart_ms={trend_ms:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
