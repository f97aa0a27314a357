"""Figures of the committed 2x H200 reference runs (reference/h200x2/) and of one H200 (reference/h200/).
(The runs below were made by bash generated from the DAG's plan (since removed); the DAG's own runs replace them.)

Read with the pipeline's own code (run_artifacts, scaling), so the figures are the report's:
- h200x2-offline-600s/ (x2_600s_commands.sh, generated from the DAG's plan by plan.sh 600s): Offline coordinated
  (one LoadGen over a vLLM server per GPU, HTTP) over MLPerf's full 600 s, 80,208 samples; single on each GPU at
  once, one pass of 13,368 samples each (two 600 s single runs did not fit the session's device time).
  x2_single_tok_s is the sum of the two single runs' LoadGen tokens/s (the efficiency's denominator),
  x2_coordinated_tok_s the aggregate over the whole wall-clock window, x2_coordinated_eff aggregate / that sum.
- h200x2-sharded-600s-paired/ (x2_sharded600_paired_commands.sh, plan.sh sharded600-paired): single on each GPU
  at once, then sharded, every test over MLPerf's full 600 s in one lease. x2_sharded_tok_s and x2_sharded_eff come
  from it, against its own single runs (their sum is printed above the last line, beside x2_single_tok_s).
- h200x2-offline/ (x2_offline_commands.sh): the same modes SHORTENED (min_duration 0; 13,368 samples per single
  run, 13,368 for the coordinated pair, 6,684 per shard), before the HTTP fix: printed, not in the last line.
- h200x2-sharded-600s/ (x2_sharded600_commands.sh): sharded over MLPerf's 600 s, the distributed branch alone (a
  later lease, no single runs in it): its aggregate and per-shard tokens/s, printed next to one H200's best 600 s run
  (another machine), not as an efficiency: dividing by another lease's single runs gave more than 100%.
- h200x2-server-coordinated/ (x2_server_commands.sh): coordinated Server at 108.5 QPS over 600 s, 1.95 x one H200's
  highest VALID Server QPS: x2_coordinated_server_valid_qps, printed above the last line.
- h200_http_vs_inproc: in h200x2-offline-600s, each GPU's share of the coordinated run (its server's output tokens
  over the whole window, HTTP) over the in-process single run on that GPU, the lower of the two. Server at 50 QPS,
  HTTP against in-process (h200x2-http-server/: in-process on GPU 0 and a `serve` on GPU 1 at the same time, 3,000
  queries each) is printed above it, with TTFT p99.
- h200_offline_fp8_tok_s and h200_server_max_valid_qps: benchmarks/h200_reference.py's headline (reference/h200).
A figure that cannot be computed from the committed logs prints as None.
Second to last line (the runs above, made outside Airflow): `x2_single_tok_s=.. x2_coordinated_tok_s=..
x2_sharded_tok_s=.. x2_coordinated_eff=.. x2_sharded_eff=.. h200_http_vs_inproc=.. h200_offline_fp8_tok_s=..
h200_server_max_valid_qps=..`
The published figures come from DAG runs alone (a folder of reference/h200x2/ with the plan.json of an Airflow DAG run
over two or more nodes, `python -m include.apps.host`): the scaling efficiency the DAG's own report computed
(report/analysis.json) for its coordinated and its sharded Offline run, and the coordinated Server run's VALID QPS
over one H200's (the single branch of the same DAG run where it ran Server, else benchmarks/h200_reference.py's DAG
figure). Last line, from DAG runs on H200s alone: `dag_x2_run=<run ids> dag_x2_coordinated_eff=..
dag_x2_sharded_eff=.. dag_x2_server_qps_ratio=..` (None where no such run exists).

    PYTHONPATH=. .venv/bin/python benchmarks/h200x2_reference.py
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import h200_reference  # noqa: E402  (the sibling script)

from include.analysis.scaling import is_coordinated, scaling_efficiency  # noqa: E402
from include.records import RunRecord, ScalingResult  # noqa: E402
from include.results import run_artifacts  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "h200x2"


def _records(run: str) -> list[RunRecord]:
    root = REFERENCE / run
    if not root.is_dir():
        return []
    return [run_artifacts.read_run(d, branch) for branch, d in run_artifacts.discover_runs(root)]


def _find(records: list[RunRecord], branch: str, node: str, scenario: str) -> RunRecord | None:
    found = [r for r in records if r.branch == branch and r.node == node and r.scenario == scenario
             and r.mode == "performance"]
    return found[0] if found else None


def _tps(record: RunRecord | None) -> float | None:
    """LoadGen's tokens/s of a completed, VALID run; None otherwise (never a figure of a failed run)."""
    if record is None or not record.valid or record.loadgen is None:
        return None
    return record.loadgen.tokens_per_second


def _ttft_p99_ms(record: RunRecord | None) -> float | None:
    if record is None or record.loadgen is None or "p99" not in (record.loadgen.ttft_ns or {}):
        return None
    return round(record.loadgen.ttft_ns["p99"] / 1e6, 1)


def _r(x: float | None, digits: int = 2) -> float | None:
    return None if x is None else round(x, digits)


def offline_scaling(run: str) -> dict[str, ScalingResult]:
    """Print the run's Offline performance runs; its scaling results by kind ("coordinated", "sharded")."""
    records = _records(run)
    singles = [r for r in records if r.branch == "single"]
    for r in records:
        lg = r.loadgen
        samples = ((r.result or {}).get("counts") or {}).get("samples_completed")
        print(f"{run} {r.branch:11s} {r.node:12s} {r.scenario:8s} "
              f"{'VALID' if r.valid else 'not valid':9s} "
              f"{(lg.tokens_per_second or 0) if lg else 0:>9,.1f} tokens/s  "
              f"({(lg.duration_s or 0) if lg else 0:,.1f} s, {samples} samples)")
    found: dict[str, ScalingResult] = {}
    for name, coordinated in (("coordinated", True), ("sharded", False)):
        dist = [r for r in records if r.branch == "distributed" and is_coordinated(r) == coordinated]
        for result in scaling_efficiency(singles + dist) if dist else []:
            if result.scenario == "Offline":
                found[name] = result
                print(f"  {name}: {_r(result.aggregate_tokens_per_second)} tokens/s over {_r(result.window_s, 1)} s, "
                      f"efficiency {_r(result.efficiency, 4)}; " + "; ".join(result.flags))
    return found


def single_sum(run: str) -> float | None:
    """Sum of the two single-GPU runs' LoadGen tokens/s; None unless both are VALID."""
    per_gpu = [_tps(r) for r in _records(run) if r.branch == "single" and r.scenario == "Offline"]
    return _r(sum(per_gpu)) if len(per_gpu) == 2 and None not in per_gpu else None


def http_vs_inproc(coordinated: ScalingResult | None) -> float | None:
    """Each GPU's HTTP share of the coordinated 600 s run over its in-process single run; the lower ratio."""
    server = _records("h200x2-http-server")
    s_in, s_http = _find(server, "single", "h200-0", "Server"), _find(server, "single", "h200-1-http", "Server")
    ratio = _r(_tps(s_http) / _tps(s_in), 4) if _tps(s_http) and _tps(s_in) else None
    print(f"Server 50 QPS, 3,000 queries: HTTP (GPU 1) {_tps(s_http)} tokens/s, TTFT p99 {_ttft_p99_ms(s_http)} ms "
          f"({'VALID' if s_http and s_http.valid else 'not valid'}) / in-process (GPU 0) {_tps(s_in)} tokens/s, "
          f"TTFT p99 {_ttft_p99_ms(s_in)} ms ({'VALID' if s_in and s_in.valid else 'not valid'}) = {ratio}")
    if coordinated is None:
        return None
    singles = {r.node: _tps(r) for r in _records("h200x2-offline-600s") if r.branch == "single"}
    ratios = []
    for share in coordinated.balance:
        inproc = singles.get(share.node)
        ratio = _r(share.tokens_per_second / inproc, 4) if share.tokens_per_second and inproc else None
        print(f"{share.node}: Offline HTTP share {_r(share.tokens_per_second, 1)} / in-process {inproc} tokens/s "
              f"= {ratio}")
        ratios.append(ratio)
    return min(ratios) if ratios and None not in ratios else None


def sharded_600s(single_h200_tok_s: float | None) -> None:
    """The sharded branch over MLPerf's 600 s (h200x2-sharded-600s): its aggregate and each shard's tokens/s, next
    to one H200's best 600 s run. Not an efficiency: no single runs were made in that lease."""
    records = _records("h200x2-sharded-600s")
    for result in scaling_efficiency(records) if records else []:
        per_gpu = ", ".join(f"{s.node} {_r(s.tokens_per_second, 1)}" for s in result.balance)
        vs = ", ".join(f"{_r(s.tokens_per_second / single_h200_tok_s, 4)}" for s in result.balance
                       if s.tokens_per_second and single_h200_tok_s)
        print(f"sharded 600 s: {_r(result.aggregate_tokens_per_second)} tokens/s over {_r(result.window_s, 1)} s "
              f"({per_gpu} tokens/s per shard = {vs} x one H200's best 600 s run, {single_h200_tok_s}, on another "
              "machine); efficiency not computed (no single runs in that lease)")


def coordinated_server(single_qps: float | None) -> float | None:
    """The coordinated Server run (h200x2-server-coordinated): its target QPS if VALID, else None."""
    run = next((r for r in _records("h200x2-server-coordinated") if r.scenario == "Server"), None)
    if run is None or run.loadgen is None:
        return None
    qps = float(run.loadgen.settings["target_qps"])
    split = ", ".join(f"{e.node} {e.samples_completed}" for e in (run.sut.endpoints if run.sut else []))
    print(f"coordinated Server {qps:g} QPS over {_r(run.loadgen.duration_s, 1)} s: "
          f"{'VALID' if run.valid else 'not valid'}, {_r(run.loadgen.tokens_per_second, 1)} tokens/s, TTFT p99 "
          f"{_ttft_p99_ms(run)} ms, queries per server {split}; "
          f"{_r(qps / single_qps, 3) if single_qps else None} x one H200's highest VALID Server QPS ({single_qps})")
    return qps if run.valid else None


@dataclass(frozen=True)
class DagX2Run:
    """A DAG run over several nodes (plan.json of an Airflow run), with the figures its own report computed."""
    run_id: str
    card: str
    mode: str                                  # the DAG param `distributed`: coordinated or sharded
    offline_eff: float | None                  # report/analysis.json's Offline scaling efficiency
    server_qps: float | None                   # the coordinated Server run's target QPS where it was VALID
    single_server_qps: float | None            # the same DAG run's single-GPU Server QPS, VALID
    full_length: bool                          # h200_reference.full_length: a headline needs it


def dag_x2_runs(root: Path = REFERENCE) -> list[DagX2Run]:
    out = []
    for folder, plan, records in h200_reference.dag_run_folders(root):
        mode = plan["params"].get("distributed", "off")
        if mode == "off" or len({r.node for r in records if r.branch == "single"}) < 2:
            continue
        analysis = folder / "report" / "analysis.json"
        scaling = json.loads(analysis.read_text()).get("scaling", []) if analysis.is_file() else []
        eff = next((s["efficiency"] for s in scaling if s["scenario"] == "Offline"), None)
        usable = [r for r in records if h200_reference.usable(r) and r.scenario == "Server"]
        qps = [float(r.sut.loadgen_settings.get("server_target_qps") or 0) for r in usable if is_coordinated(r)]
        single = [float(r.sut.loadgen_settings.get("server_target_qps") or 0) for r in usable if r.branch == "single"]
        out.append(DagX2Run(plan["run_id"], h200_reference.card_of(records), mode, eff,
                            max(qps, default=None), min(single, default=None), h200_reference.full_length(records)))
    return out


def dag_x2_figures(runs: list[DagX2Run], single_h200_qps: float | None) -> dict[str, object]:
    """The issue's last line, from DAG runs on H200s alone: the best coordinated and sharded Offline efficiency and
    the best coordinated Server QPS over one H200's VALID Server QPS."""
    h200 = [r for r in runs if "H200" in r.card and r.full_length]
    coordinated = max((r for r in h200 if r.mode == "coordinated" and r.offline_eff), key=lambda r: r.offline_eff,
                      default=None)
    sharded = max((r for r in h200 if r.mode == "sharded" and r.offline_eff), key=lambda r: r.offline_eff,
                  default=None)
    server = max((r for r in h200 if r.server_qps), key=lambda r: r.server_qps, default=None)
    base = (server.single_server_qps or single_h200_qps) if server else None
    chosen = list(dict.fromkeys(r.run_id for r in (coordinated, sharded, server) if r))
    return {"dag_x2_run": ",".join(chosen) or None,
            "dag_x2_coordinated_eff": _r(coordinated.offline_eff, 4) if coordinated else None,
            "dag_x2_sharded_eff": _r(sharded.offline_eff, 4) if sharded else None,
            "dag_x2_server_qps_ratio": _r(server.server_qps / base, 3) if server and base else None}


def main() -> None:
    full = offline_scaling("h200x2-offline-600s")
    offline_scaling("h200x2-offline")
    coordinated, sharded = full.get("coordinated"), offline_scaling("h200x2-sharded-600s-paired").get("sharded")
    figures: dict[str, float | None] = {
        "x2_single_tok_s": single_sum("h200x2-offline-600s"),
        "x2_coordinated_tok_s": _r(coordinated.aggregate_tokens_per_second) if coordinated else None,
        "x2_sharded_tok_s": _r(sharded.aggregate_tokens_per_second) if sharded else None,
        "x2_coordinated_eff": _r(coordinated.efficiency, 4) if coordinated else None,
        "x2_sharded_eff": _r(sharded.efficiency, 4) if sharded else None,
        "h200_http_vs_inproc": http_vs_inproc(coordinated),
    }
    h200 = h200_reference.figures()
    single_qps = h200["h200_server_max_valid_qps"]
    sharded_600s(h200["h200_offline_fp8_tok_s"])
    server_qps = coordinated_server(single_qps)
    print(f"x2_coordinated_server_valid_qps={server_qps} (goal: 1.95 x {single_qps} = "
          f"{_r(1.95 * single_qps) if single_qps else None})")
    print(f"x2_sharded_* are h200x2-sharded-600s-paired's (600 s, against its own single runs: "
          f"{single_sum('h200x2-sharded-600s-paired')} tokens/s); x2_single_tok_s and x2_coordinated_* "
          "h200x2-offline-600s's (coordinated over 600 s, its single runs one pass of 13,368 samples)")
    figures["h200_offline_fp8_tok_s"] = h200["h200_offline_fp8_tok_s"]
    figures["h200_server_max_valid_qps"] = single_qps
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    runs = dag_x2_runs()
    print("\nDAG runs over two GPUs (python -m include.apps.host; the published figures come from these):")
    for r in runs:
        print(f"  {r.run_id}  {r.card}  {r.mode}: Offline efficiency {r.offline_eff if r.offline_eff is not None else 'n/a'}"
              f"  coordinated Server {r.server_qps or 'n/a'} QPS"
              + ("" if r.full_length else "  (shortened: not a headline)"))
    if not runs:
        print("  none")
    dag_single_qps = h200_reference.dag_figures(h200_reference.dag_runs())["dag_server_qps"]
    print(" ".join(f"{k}={v}" for k, v in dag_x2_figures(runs, dag_single_qps).items()))


if __name__ == "__main__":
    main()
