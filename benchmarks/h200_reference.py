"""Figures of the committed H200 reference run (reference/h200/), read with the pipeline's own parser.

Each folder of reference/h200/ is one run of the GPU session scripts (session.sh, since removed, then
tools/gpu/device_session.sh) or of tools/gpu/offline_vs_raw.py on one NVIDIA H200 with dummy weights, or one sweep
of tools/gpu/tune.py (tune-*/: an attempt per folder, named by its
settings, and `<best>-600s`, the best attempt again over MLPerf's 600 s): the same rules hold for every test.
A headline figure comes only from a run that LoadGen found VALID, that the plausibility check passes, whose engine
cached no prompt prefixes (LoadGen repeats samples: a cached prompt skips prefill) and whose detail log holds no
LoadGen error (e.g. "Multiple conf files are used": not valid for a submission).
- Offline: the fastest run of MLPerf's full 600 s where there is one, else the fastest. SUT/raw is the lowest ratio
  of the like-for-like comparisons (offline_vs_raw.py without --full-duration: one prompt pool through both, one
  engine). The fastest run on a prompt pool is printed beside it (`..._pool_tok_s`): shorter, so not the headline.
- Server and Interactive: the highest VALID target QPS below the lowest INVALID one (LoadGen's verdict should not
  improve with load; where two runs disagree, the failing one wins). The headline counts only runs that issued the
  whole data set (13,368 queries or more); `search-qps` probes (40 s, a few thousand queries) are printed apart as
  `..._probe_max_valid_qps`: a probe found 55.98 QPS VALID that the full run at that rate found INVALID.
The runs the DAG itself made on the GPU host (`python -m include.apps.host`, a folder with the plan.json of an Airflow
DAG run) are the published figures: the last line takes them from DAG runs on an H200 alone (same rules), whose
every test is of MLPerf's full length on the whole data set (a smoke run, shortened by `user_conf_overrides` or
`total_sample_count`, is listed and marked, never taken):
`dag_run=<run id> dag_offline_tok_s=.. dag_server_qps=.. dag_gpu_time_budget_pct=..` (None where no such run exists).
The line before it, `h200_offline_fp8_tok_s=.. h200_offline_bf16_tok_s=.. h200_sut_vs_raw=..
h200_server_max_valid_qps=..`, sums up the earlier runs made outside Airflow.

    PYTHONPATH=. .venv/bin/python benchmarks/h200_reference.py
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from include import mlperf_rules
from include.analysis import gpu_time, plausibility, verdict
from include.records import RunRecord
from include.results import run_artifacts

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "h200"


@dataclass(frozen=True)
class Offline:
    tokens_per_second: float
    full_duration: bool
    sut_vs_raw: float | None       # only where raw and SUT ran the same prompt pool


@dataclass(frozen=True)
class Latency:
    scenario: str                  # Server or Interactive
    target_qps: float
    valid: bool
    probe: bool                    # fewer queries than the data set: a search-qps probe, not a confirming run


@dataclass(frozen=True)
class DagRun:
    """A run folder that the DAG itself made (plan.json of an Airflow run: its run id and params), on one card."""
    run_id: str
    card: str                          # the accelerator result.json names, e.g. "NVIDIA H200"
    offline_tok_s: float | None        # VALID, plausible, no LoadGen error, no prefix cache
    server_qps: float | None           # the Server run's target QPS, where it was VALID (same rules)
    gpu_time_budget_pct: float | None
    full_length: bool                  # every test as MLPerf runs it (see `full_length`): a headline needs it


def dag_run_folders(root: Path) -> list[tuple[Path, dict, list[RunRecord]]]:
    """The DAG-produced run folders under `root` (those whose plan.json names an Airflow DAG run, manual__ or
    scheduled__, with its params): (folder, plan, the records of its runs)."""
    out = []
    for plan_file in sorted(root.glob("*/plan.json")):
        plan = json.loads(plan_file.read_text())
        if not str(plan.get("run_id", "")).startswith(("manual__", "scheduled__")) or "params" not in plan:
            continue
        run = plan_file.parent
        out.append((run, plan, [run_artifacts.read_run(d, branch) for branch, d in run_artifacts.discover_runs(run)]))
    return out


def usable(record: RunRecord) -> bool:
    """A performance run a figure may come from: VALID, no LoadGen error, no prefix cache, physically plausible."""
    return (record.mode == "performance" and record.sut is not None and record.loadgen is not None
            and record.loadgen.valid and not record.loadgen.errors and not record.sut.prefix_caching
            and not plausibility.check_record(record).implausible)


def full_length(records: list[RunRecord]) -> bool:
    """Every performance test of the run is of MLPerf's length on the whole data set (min_duration, min_query_count,
    13,368 samples, equal issue, no prefix cache; the verdict's compliance check says so): the one departure allowed
    is the dummy weights every lent GPU runs with. A shortened run (a smoke run: `user_conf_overrides`,
    `total_sample_count`) is LoadGen-VALID at its own settings and is listed, but never a headline."""
    perf = [r for r in records if r.mode == "performance"]
    return bool(perf) and all(set(verdict.compliance_of(r)[1]) <= {verdict.DUMMY_WEIGHTS} for r in perf)


def card_of(records: list[RunRecord]) -> str:
    return ", ".join(sorted({r.sut.accelerator.name for r in records if r.sut})) or "unknown"


def dag_runs(root: Path = REFERENCE) -> list[DagRun]:
    """The DAG-produced runs under `root`, one line of figures each (single-GPU runs: the single branch)."""
    out = []
    for _, plan, records in dag_run_folders(root):
        single = [r for r in records if r.branch == "single" and usable(r)]
        offline = max((r.loadgen.tokens_per_second for r in single if r.scenario == "Offline"), default=None)
        server = max((float(r.sut.loadgen_settings.get("server_target_qps") or 0) for r in single
                      if r.scenario == "Server"), default=None)
        budget = gpu_time.gpu_time_budget(records)
        out.append(DagRun(plan["run_id"], card_of(records), offline, server,
                          round(100 * budget.share, 1) if budget.share is not None else None, full_length(records)))
    return out


def dag_figures(runs: list[DagRun]) -> dict[str, object]:
    """The headline: from full-length DAG runs on an H200 alone (Offline: the fastest; Server: the highest VALID
    QPS)."""
    h200 = [r for r in runs if "H200" in r.card and r.full_length]
    best_offline = max((r for r in h200 if r.offline_tok_s), key=lambda r: r.offline_tok_s, default=None)
    best_server = max((r for r in h200 if r.server_qps), key=lambda r: r.server_qps, default=None)
    chosen = list(dict.fromkeys(r.run_id for r in (best_offline, best_server) if r))
    budgets = [r.gpu_time_budget_pct for r in h200 if r.run_id in chosen and r.gpu_time_budget_pct is not None]
    return {"dag_run": ",".join(chosen) or None,
            "dag_offline_tok_s": best_offline.offline_tok_s if best_offline else None,
            "dag_server_qps": best_server.server_qps if best_server else None,
            "dag_gpu_time_budget_pct": min(budgets) if budgets else None}


def main() -> None:
    figures(verbose=True)
    runs = dag_runs()
    print("\nDAG runs (python -m include.apps.host on the GPU host; the published figures come from these):")
    for r in runs:
        print(f"  {r.run_id}  {r.card}  Offline {r.offline_tok_s or 'n/a'} tokens/s  Server {r.server_qps or 'n/a'} "
              f"QPS  GPU time budget {r.gpu_time_budget_pct if r.gpu_time_budget_pct is not None else 'unknown'}%"
              + ("" if r.full_length else "  (shortened: not a headline)"))
    if not runs:
        print("  none")
    print(" ".join(f"{k}={v}" for k, v in dag_figures(runs).items()))


def figures(verbose: bool = False) -> dict[str, float | None]:
    """The headline figures of reference/h200 (the last line's names); with `verbose`, the table and both lines."""
    offline: dict[str, list[Offline]] = {"fp8": [], "bf16": []}
    latency: list[Latency] = []
    budgets: dict[str, gpu_time.GpuTimeBudget] = {}
    for run in sorted(p for p in REFERENCE.iterdir() if p.is_dir()):
        records = [run_artifacts.read_run(run_dir, "single") for _, run_dir in run_artifacts.discover_runs(run)]
        tune = not (run / "single").is_dir()   # tune.py's layout: <run>/<attempt>/, one test each
        if any(r.sut and r.sut.process for r in records):   # the SUT recorded its clock: a GPU time budget
            budgets[run.name] = gpu_time.gpu_time_budget(records)
        for record in records:
            if record.mode != "performance":   # an accuracy run (dummy weights here: no ROUGE to speak of)
                continue
            run_dir = Path(record.run_dir)
            lg, sut = record.loadgen, record.sut
            implausible, cached = plausibility.check_record(record).implausible, sut.prefix_caching
            label = "fp8" if sut.engine.get("quantization") == "fp8" else "bf16"
            qps = sut.loadgen_settings.get("server_target_qps")
            min_duration_ms = float(verdict.loadgen_setting(record, "min_duration_ms", "min_duration") or 0)
            full = min_duration_ms >= mlperf_rules.MIN_DURATION_S * 1000
            probe = sut.counts.queries_issued < sut.dataset.dataset_size
            errored = bool(lg.errors) and not probe   # a probe is never a headline: its errors do not matter here
            notes = (["IMPLAUSIBLE"] * implausible + ["prefix cache on"] * cached + ["LoadGen error"] * errored
                     + ["probe"] * (probe and record.scenario != "Offline") + [f"{lg.duration_s or 0:,.0f} s"])
            if verbose:
                name = f"{run.name}/{run_dir.name}" if tune else run.name
                print(f"{name:48s} {record.scenario:11s} {label:5s} {'VALID' if lg.valid else 'INVALID':8s} "
                      f"{lg.tokens_per_second:>9,.1f} tokens/s"
                      + (f"  target {qps:g} QPS" if record.scenario != "Offline" else "") + f"  ({', '.join(notes)})")
            if implausible or cached or errored:
                continue
            if record.scenario != "Offline":
                latency.append(Latency(record.scenario, qps, lg.valid, probe))
            elif lg.valid:
                comparison = run_dir / "raw_vs_sut.json"
                raw = json.loads(comparison.read_text()) if comparison.exists() else {}
                offline[label].append(Offline(lg.tokens_per_second, full,
                                              None if raw.get("full_duration", True) else raw.get("sut_vs_raw")))

    def headline(runs: list[Offline]) -> float | None:   # the full-duration run first, then the fastest
        return max(runs, key=lambda o: (o.full_duration, o.tokens_per_second)).tokens_per_second if runs else None

    def max_valid(scenario: str, probes: bool) -> float | None:
        runs = [r for r in latency if r.scenario == scenario and r.probe == probes]
        ceiling = min((r.target_qps for r in runs if not r.valid), default=float("inf"))
        valid = [r.target_qps for r in runs if r.valid and r.target_qps < ceiling]
        return max(valid) if valid else None

    ratios = [o.sut_vs_raw for runs in offline.values() for o in runs if o.sut_vs_raw is not None]
    pool = [o.tokens_per_second for o in offline["fp8"] if not o.full_duration]
    out = {"h200_offline_fp8_pool_tok_s": max(pool) if pool else None,
           "h200_server_probe_max_valid_qps": max_valid("Server", True),
           "h200_interactive_probe_max_valid_qps": max_valid("Interactive", True),
           "h200_interactive_max_valid_qps": max_valid("Interactive", False),
           "h200_offline_fp8_tok_s": headline(offline["fp8"]), "h200_offline_bf16_tok_s": headline(offline["bf16"]),
           "h200_sut_vs_raw": min(ratios) if ratios else None,
           "h200_server_max_valid_qps": max_valid("Server", False)}
    if verbose:
        for name, budget in budgets.items():
            short = " (shortened tests: the 80% goal is for full-length ones)" if budget.shortened else ""
            print(f"{name}: GPU time budget {budget.share:.1%} of {budget.wall_s:,.0f} s inside LoadGen's timed tests"
                  f"{short}" if budget.share is not None else f"{name}: GPU time budget unknown")
        names = list(out)
        print(" ".join(f"{k}={out[k]}" for k in names[:4]))
        print(" ".join(f"{k}={out[k]}" for k in names[4:]))
    return out


if __name__ == "__main__":
    main()
