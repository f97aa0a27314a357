"""A small benchmark history written through the real store's write API (`HistoryStore.record`).

Seven daily runs of two single nodes and one coordinated distributed run, Offline and Server, plus accuracy runs;
one Server run INVALID, one SUT run missing, one recorded throughput regression, and two hostile values (a run id
and a node name that are HTML/SQL injection strings) that the page must show as text. For the trends (issue 14):
node-a's Offline runs switch from bf16 to FP8 weights on day FP8_FROM (two series for two settings), node-b runs
Offline with prefix caching on day PREFIX_CACHE_DAY, judged physically implausible, and the published MLPerf
results (include/analysis/published.py) are loaded as reference.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from include.analysis.published import load_published
from include.analysis.verdict import judge
from include.history import HistoryStore, RunMeta
from include.records import AccuracyResult, LoadGenResult, PlausibilityCheck, Regression, RunRecord, ScalingResult
from tests.history.factory import result_json

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=timezone.utc)
XSS = "<script>alert(1)</script>"
SQLI = "' OR 1=1 --"
VERSIONS = {"vllm": "0.26.0", "torch": "2.11.0", "loadgen": "6.0.17"}
CONFIG = "3f9a1c0d5e7b2a4c6e8f0a1b2c3d4e5f"
FP8_FROM = 4                     # node-a Offline runs FP8 weights from this day on: a second series
PREFIX_CACHE_DAY = 5             # node-b Offline runs with prefix caching this day: implausibly fast
FP8 = {"quantization": "fp8", "kv_cache_dtype": "fp8"}


@dataclass(frozen=True)
class Seeded:
    run_ids: list[str]            # oldest first
    latest: str
    invalid_run: str              # has an INVALID Server result
    implausible_run: str          # node-b Offline with prefix caching, above the physical bound
    regression_run: str
    xss_run: str
    report_file: Path
    outside_run: str              # report_path outside the artefacts root
    traversal_run: str            # report_path with ../ escaping the root


def _percentiles(p50: float, p99: float) -> dict[str, float]:
    return {"min": p50 * 0.5, "max": p99 * 1.2, "mean": p50 * 1.05, "p50": p50, "p90": p99 * 0.8, "p95": p99 * 0.9,
            "p97": p99 * 0.95, "p99": p99, "p99.9": p99 * 1.1}


def perf_record(root: Path, run_id: str, node: str, scenario: str, tps: float, *, branch: str = "single",
                valid: bool = True, status: str = "completed", engine: dict | None = None,
                start: datetime | None = None) -> RunRecord:
    run_dir = str(root / run_id / branch / node / scenario / "performance")
    if status != "completed":
        return RunRecord(run_dir=run_dir, branch=branch, node=node, scenario=scenario, mode="performance",
                         status=status, error="pod exited before writing result.json", result=None, loadgen=None)
    # A little run-to-run noise per node, as real runs have.
    noise = 1 + ((sum(map(ord, run_id + node)) % 9) - 4) / 100
    ttft = (180e6 if scenario == "Offline" else 420e6) * noise
    loadgen = LoadGenResult(
        scenario=scenario, mode="PerformanceOnly", valid=valid,
        invalid_reasons=[] if valid else ["performance constraints not satisfied"],
        samples_per_second=tps / 128, tokens_per_second=tps, ttft_ns=_percentiles(ttft * 0.4, ttft),
        tpot_ns=_percentiles(18e6 * noise, (41e6 if valid else 131e6) * noise),
        latency_ns=_percentiles(2.2e9, 4.8e9), settings={},
        duration_s=612.0, result_samples=13368, loadgen_version="6.0.17", warnings=[], errors=[])
    result = {**result_json(node=node, scenario=scenario, mode="performance", config_hash=CONFIG,
                            output_tokens=int(tps * 612)), "versions": VERSIONS, "accuracy_meaningful": False,
              "timing": {"start_utc": start.isoformat() if start else None, "end_utc": None, "duration_s": 612.0}}
    result["engine"] = {**result["engine"], "enable_prefix_caching": False, **(engine or {})}
    return RunRecord(run_dir=run_dir, branch=branch, node=node, scenario=scenario, mode="performance",
                     status="completed", error=None, result=result, loadgen=loadgen)


def accuracy_record(root: Path, run_id: str, node: str, rouge_l: float) -> RunRecord:
    acc = AccuracyResult(rouge1=38.9 + rouge_l - 24.5, rouge2=15.95, rougeL=rouge_l, rougeLsum=35.8,
                         gen_len=8_100_000, gen_num=13368, full_dataset=True, target_set="datacenter",
                         passed=rouge_l >= 24.2506, verdict="compared with datacenter targets")
    result = {**result_json(node=node, scenario="Offline", mode="accuracy", config_hash=CONFIG,
                            output_tokens=1_700_000), "versions": VERSIONS}
    return RunRecord(run_dir=str(root / run_id / "single" / node / "Offline" / "accuracy"), branch="single",
                     node=node, scenario="Offline", mode="accuracy", status="completed", error=None, result=result,
                     loadgen=None, accuracy=acc)


def seed_history(url: str, artifacts: Path, days: int = 7) -> Seeded:
    store = HistoryStore(url)
    store.upgrade()
    run_ids = []
    artifacts.mkdir(parents=True, exist_ok=True)
    report_file = None
    invalid_run = regression_run = xss_run = outside_run = traversal_run = implausible_run = ""
    for day in range(days):
        logical = T0 + timedelta(days=day)
        last = day == days - 1
        run_id = f"scheduled__{logical.isoformat()}"
        if last:   # triggered by hand, as a manual Airflow DAG run id (the browser test creates that DAG run)
            run_id = f"manual__{logical.isoformat()}"
        if day == 2:
            run_id = f"manual__{XSS}"
            xss_run = run_id
        drift = 1 + 0.01 * ((day * 7) % 5 - 2)
        offline_b = 4985 * drift * (0.86 if last else 1.0)        # the last run regresses on node-b Offline
        start = logical + timedelta(minutes=3)          # the runs' own time: a few minutes after the logical date
        fp8 = day >= FP8_FROM
        prefix_cache = day == PREFIX_CACHE_DAY
        records = [
            perf_record(artifacts, run_id, "node-a", "Offline", 5020 * drift * (1.6 if fp8 else 1.0),
                        engine=FP8 if fp8 else None, start=start),
            perf_record(artifacts, run_id, "node-b", "Offline", offline_b * (3.2 if prefix_cache else 1.0),
                        engine={"enable_prefix_caching": True} if prefix_cache else None, start=start),
            perf_record(artifacts, run_id, "node-a", "Server", 4480 * drift),
            perf_record(artifacts, run_id, "node-b", "Server", 4300 * drift, valid=day != 4),
            perf_record(artifacts, run_id, "node-a+node-b", "Offline", 9830 * drift, branch="distributed"),
            accuracy_record(artifacts, run_id, "node-a", 24.49 - (0.4 if day == 5 else 0.0)),
        ]
        if day == 3:
            records.append(perf_record(artifacts, run_id, SQLI, "Offline", 0, status="missing"))
        if day == 4:
            invalid_run = run_id
        scaling = [ScalingResult(scenario="Offline", nodes=["node-a", "node-b"], excluded={},
                                 aggregate_tokens_per_second=9830 * drift, aggregate_samples_per_second=76.8,
                                 window_s=612.0, single_sum_tokens_per_second=10005 * drift,
                                 efficiency=9830 / 10005, balance=[], flags=[])]
        regressions = []
        if last:
            regression_run = run_id
            regressions = [Regression(metric="tokens_per_second", node="node-b", scenario="Offline",
                                      branch="single", current=offline_b, baseline=4985.0,
                                      change_pct=(offline_b - 4985) / 4985 * 100, threshold_pct=5.0, p_value=0.002,
                                      baseline_runs=run_ids[-5:],
                                      explanation="throughput 14% below the median of 5 comparable runs")]
        report_path = None
        if last:
            folder = artifacts / run_id
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "charts").mkdir(exist_ok=True)
            report_file = folder / "report.html"
            report_file.write_text("<!doctype html><html><body><h1>MLPerf run report</h1>"
                                   "<img src='charts/tps.svg'></body></html>")
            (folder / "charts" / "tps.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
            report_path = f"{run_id}/report.html"      # relative to the artefacts root, as the pipeline stores it
        if day == 0:
            outside_run = run_id
            report_path = "/etc/passwd"
        if day == 1:
            traversal_run = run_id
            report_path = str(artifacts / ".." / ".." / "etc" / "passwd")
        status = "partial" if day in (3, 4) else "success"
        # The pipeline's verdict: no plausibility bound (unknown), but for the prefix-cache run, above its bound.
        checks = {}
        if prefix_cache:
            implausible_run = run_id
            fast = records[1]
            checks[fast.run_dir] = PlausibilityCheck(
                node="node-b", scenario="Offline", accelerator="NVIDIA H200",
                measured_tokens_per_second=fast.loadgen.tokens_per_second, compute_bound_tokens_per_second=14_000.0,
                bandwidth_bound_tokens_per_second=None, implausible=True,
                explanation="measured 15,952 tokens/s is above the compute bound of 14,000 tokens/s")
        verdict = judge(run_id, records, checks, regressions)
        store.record(RunMeta(run_id=run_id, dag_id="mlperf_llama31_8b", logical_date=logical, trigger="scheduled",
                             status=status, params={"scenarios": ["Offline", "Server"]}, verdict=verdict.headline,
                             compliance=verdict.compliance, state=verdict.state, tone=verdict.tone,
                             report_path=report_path, started_at=logical,
                             finished_at=logical + timedelta(hours=1)),
                     records, scaling, regressions, verdict)
        run_ids.append(run_id)
    store.replace_published(load_published())
    store.dispose()
    return Seeded(run_ids=run_ids, latest=run_ids[-1], invalid_run=invalid_run, implausible_run=implausible_run,
                  regression_run=regression_run,
                  xss_run=xss_run, report_file=report_file, outside_run=outside_run, traversal_run=traversal_run)
