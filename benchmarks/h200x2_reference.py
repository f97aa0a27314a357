"""Figures of the committed 2x H200 reference run (reference/h200x2/) and of one H200 (reference/h200/).

Read with the pipeline's own code (run_artifacts, scaling), so the figures are the report's:
- h200x2-offline/ (benchmarks/h200/x2_offline_commands.sh, generated from the DAG's plan): Offline single on each
  GPU, coordinated (one LoadGen over a vLLM server per GPU, HTTP) and sharded; SHORTENED (min_duration 0; LoadGen
  issued 13,368 samples per single run, 13,368 for the coordinated pair and 6,684 per shard), not MLPerf's 600 s.
  x2_single_tok_s is the sum of the two single-GPU runs' LoadGen tokens/s (the efficiency's denominator; each
  GPU's own figure is printed above), x2_coordinated_tok_s and
  x2_sharded_tok_s the aggregate over the common wall-clock window, the efficiencies aggregate / that sum.
- h200x2-http/ (x2_session.sh http): the HTTP backend (a `mlperf_sut serve` per GPU, one LoadGen each) against the
  in-process engine on the same GPU and settings. h200_http_vs_inproc is HTTP Offline tokens/s over the in-process
  single run of h200x2-offline on that GPU, the lower of the two GPUs; Server at 50 QPS is compared too (TTFT p99).
- h200x2-search/ (search-qps on the coordinated pair): 30 s probes, printed apart (probes, not confirming runs).
- h200_offline_fp8_tok_s and h200_server_max_valid_qps: benchmarks/h200_reference.py's headline (reference/h200).
A figure that cannot be computed from the committed logs prints as None.
Last line: `x2_single_tok_s=.. x2_coordinated_tok_s=.. x2_sharded_tok_s=.. x2_coordinated_eff=.. x2_sharded_eff=..
h200_http_vs_inproc=.. h200_offline_fp8_tok_s=.. h200_server_max_valid_qps=..`

    PYTHONPATH=. .venv/bin/python benchmarks/h200x2_reference.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import h200_reference  # noqa: E402  (the sibling script)

from include import run_artifacts  # noqa: E402
from include.records import RunRecord  # noqa: E402
from include.scaling import is_coordinated, scaling_efficiency  # noqa: E402

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


def offline_scaling() -> dict[str, float | None]:
    records = _records("h200x2-offline")
    singles = [r for r in records if r.branch == "single"]
    coordinated = [r for r in records if r.branch == "distributed" and is_coordinated(r)]
    sharded = [r for r in records if r.branch == "distributed" and not is_coordinated(r)]
    for r in records:
        lg = r.loadgen
        samples = ((r.result or {}).get("counts") or {}).get("samples_completed")
        print(f"h200x2-offline {r.branch:11s} {r.node:12s} {r.scenario:8s} "
              f"{'VALID' if r.valid else 'not valid':9s} "
              f"{(lg.tokens_per_second or 0) if lg else 0:>9,.1f} tokens/s  "
              f"({(lg.duration_s or 0) if lg else 0:,.1f} s, {samples} samples)")
    out: dict[str, float | None] = {"x2_single_tok_s": None, "x2_coordinated_tok_s": None, "x2_sharded_tok_s": None,
                                    "x2_coordinated_eff": None, "x2_sharded_eff": None}
    per_gpu = [_tps(r) for r in sorted(singles, key=lambda r: r.node)]
    if len(per_gpu) == 2 and None not in per_gpu:
        out["x2_single_tok_s"] = _r(sum(per_gpu))
    for name, dist in (("coordinated", coordinated), ("sharded", sharded)):
        if not dist:
            continue
        for result in scaling_efficiency(singles + dist):
            if result.scenario != "Offline":
                continue
            out[f"x2_{name}_tok_s"] = _r(result.aggregate_tokens_per_second)
            out[f"x2_{name}_eff"] = _r(result.efficiency, 4)
            for flag in result.flags:
                print(f"  {name}: {flag}")
    return out


def http_vs_inproc() -> float | None:
    inproc = _records("h200x2-offline")
    http = _records("h200x2-http")
    ratios = []
    for gpu in ("h200-0", "h200-1"):
        a, b = _tps(_find(http, "single", f"{gpu}-http", "Offline")), _tps(_find(inproc, "single", gpu, "Offline"))
        ratio = _r(a / b, 4) if a and b else None
        s_http, s_in = _find(http, "single", f"{gpu}-http", "Server"), _find(http, "single", gpu, "Server")
        print(f"{gpu}: Offline http {a} / in-process {b} tokens/s = {ratio}; Server 50 QPS: http "
              f"{_tps(s_http)} tokens/s, TTFT p99 {_ttft_p99_ms(s_http)} ms "
              f"({'VALID' if s_http and s_http.valid else 'not valid'}) vs in-process {_tps(s_in)}, "
              f"TTFT p99 {_ttft_p99_ms(s_in)} ms ({'VALID' if s_in and s_in.valid else 'not valid'})")
        if ratio is not None:
            ratios.append(ratio)
    return min(ratios) if ratios else None


def coordinated_search() -> float | None:
    path = REFERENCE / "h200x2-search" / "search.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    probes = [p for p in data.get("probes", []) if p.get("scenario") == "Server"]
    for p in probes:
        print(f"coordinated Server probe {p['target_qps']:g} QPS: {'VALID' if p['valid'] else 'INVALID'} "
              f"({p.get('completed_tokens_per_second')} tokens/s, TTFT p99 {p.get('ttft_p99_ms')} ms, "
              f"TPOT p99 {p.get('tpot_p99_ms')} ms)")
    ceiling = min((p["target_qps"] for p in probes if not p["valid"]), default=float("inf"))
    valid = [p["target_qps"] for p in probes if p["valid"] and p["target_qps"] < ceiling]
    return max(valid) if valid else None


def main() -> None:
    figures = offline_scaling()
    figures["h200_http_vs_inproc"] = http_vs_inproc()
    probe = coordinated_search()
    h200 = h200_reference.figures()
    single_qps = h200["h200_server_max_valid_qps"]
    print(f"x2_coordinated_server_probe_max_valid_qps={probe} (30 s probes) "
          f"vs 1.95 x the single H200's {single_qps} = {_r(1.95 * single_qps) if single_qps else None}")
    figures["h200_offline_fp8_tok_s"] = h200["h200_offline_fp8_tok_s"]
    figures["h200_server_max_valid_qps"] = single_qps
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
