"""`search-qps`: the highest Server (or Interactive) target QPS that LoadGen still finds VALID, on one engine.

Each probe is a complete LoadGen test with its own logs and result.json under OUTPUT_DIR/<scenario>/qps-<x>/;
the search bisects each --range LOW:HIGH (--probes tests per scenario) and writes OUTPUT_DIR/search.json.
A probe lasts about --probe-duration-s: it sets min_duration to that, min_query_count to target QPS x duration and
turns off sample_concatenate_permutation. llama3.1-8b's mlperf.conf asks 13,368 queries of every Server test, and
with that permutation ("equal issue") LoadGen pads the query count to a multiple of the 13,368 loaded samples, so a
probe would last about 4 minutes at 55 QPS whatever else it sets (measured on an H200, 2026-11-29). Probes are
therefore not MLPerf-compliant, and a short probe can pass where a full run fails: on the H200, a 40 s probe found
55.98 QPS VALID and a test of all 13,368 queries at that rate INVALID (TPOT p99 121 ms).

With --confirm-duration-s, each scenario's best probe is then confirmed by a test with mlperf.conf's own query
count and equal issue (every loaded sample issued alike, a whole pass at least) and that min_duration, into
OUTPUT_DIR/<scenario>/confirm-qps-<x>/; if LoadGen finds it INVALID, the next lower VALID probe is confirmed, and
so on. search.json's "confirmed" names the rate that held.

The engine starts once; later tests reuse it. Each test's LoadGen settings are loaded so that no test logs
error_invalid_config "Multiple conf files are used" (settings.build_settings says how).
"""
from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from mlperf_sut.errors import EXIT_OK, InputError
from mlperf_sut.settings import Scenario


@dataclass(frozen=True, slots=True)
class Probe:
    scenario: str
    target_qps: float
    valid: bool
    invalid_reasons: list[str]
    completed_tokens_per_second: float | None
    ttft_p99_ms: float | None
    tpot_p99_ms: float | None
    output_dir: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--range", action="append", required=True, metavar="SCENARIO=LOW:HIGH",
                        help="a latency scenario and the target QPS interval to search, e.g. Server=20:70; repeatable")
    parser.add_argument("--probes", type=int, default=5, help="LoadGen tests per scenario (default 5)")
    parser.add_argument("--probe-duration-s", type=float, default=60.0,
                        help="length of each probe in seconds (default 60; MLPerf's min_duration is 600)")
    parser.add_argument("--confirm-duration-s", type=float, metavar="SECONDS",
                        help="confirm the best probe with a full-query test of this min_duration (600 for MLPerf's); "
                             "if it fails, the next lower VALID probe (default: no confirmation)")


def search(args: argparse.Namespace) -> int:
    from mlperf_sut.runner import finish, measure, prepare

    ranges = [_parse_range(text) for text in args.range]
    if args.probes < 1 or args.probe_duration_s <= 0:
        raise InputError("--probes must be >= 1 and --probe-duration-s > 0")
    if args.confirm_duration_s is not None and args.confirm_duration_s <= 0:
        raise InputError("--confirm-duration-s must be > 0 (600 is MLPerf's min_duration)")
    args.scenario = ranges[0][0].label
    job = prepare(args)
    probes: list[Probe] = []
    confirmations: list[Probe] = []

    def test(scenario: Scenario, qps: float, kind: str, overrides: list[str]) -> Probe:
        out = args.output_dir / scenario.label / f"{'qps' if kind == 'probe' else 'confirm-qps'}-{qps:g}"
        code = measure(job, out, scenario, overrides)
        probe = read_probe(scenario, qps, out) if code == EXIT_OK else Probe(
            scenario.label, qps, False, ["the run failed (see result.json)"], None, None, None, str(out))
        print(f"search-qps: {scenario.label} target {qps:g}/s ({kind}) -> {'VALID' if probe.valid else 'INVALID'} "
              f"({probe.completed_tokens_per_second} completed tokens/s, TTFT p99 {probe.ttft_p99_ms} ms, "
              f"TPOT p99 {probe.tpot_p99_ms} ms)", flush=True)
        return probe

    try:
        for scenario, low, high in ranges:
            for _ in range(args.probes):
                qps = round((low + high) / 2, 2)  # bisection: VALID raises the floor, INVALID lowers the ceiling
                probe = test(scenario, qps, "probe", probe_overrides(qps, args.probe_duration_s))
                probes.append(probe)
                if probe.valid:
                    low = qps
                else:
                    high = qps
            if args.confirm_duration_s is None:
                continue
            for qps in sorted((p.target_qps for p in probes if p.scenario == scenario.label and p.valid),
                              reverse=True):   # the best first; a failure steps down to the next VALID probe
                confirmation = test(scenario, qps, "confirmation", confirm_overrides(qps, args.confirm_duration_s))
                confirmations.append(confirmation)
                if confirmation.valid:
                    break
    finally:
        finish(job)
    summary = {"probe_duration_s": args.probe_duration_s, "probes": [asdict(p) for p in probes],
               "best": {s.label: _best(probes, s.label) for s, _, _ in ranges},
               "confirm_duration_s": args.confirm_duration_s, "confirmations": [asdict(p) for p in confirmations],
               "confirmed": {s.label: _best(confirmations, s.label) for s, _, _ in ranges}
               if args.confirm_duration_s is not None else None}
    (args.output_dir / "search.json").write_text(json.dumps(summary, indent=2) + "\n")
    for scenario, best in summary["best"].items():
        line = (f"search-qps: highest VALID {scenario} target QPS: "
                f"{best['target_qps'] if best else 'none in the interval'}")
        if summary["confirmed"] is not None:
            held = summary["confirmed"][scenario]
            line += f"; confirmed by a full-query test: {held['target_qps'] if held else 'none'}"
        print(line, flush=True)
    return EXIT_OK


def confirm_overrides(qps: float, duration_s: float) -> list[str]:
    """LoadGen settings of a confirming test: this rate and min_duration; mlperf.conf's query count and equal issue."""
    return [f"target_qps={qps}", f"min_duration={int(duration_s * 1000)}"]


def probe_overrides(qps: float, duration_s: float) -> list[str]:
    """A confirming test cut to about this long (whichever of the two minimums is later ends it): rate x duration
    queries, equal issue off."""
    return [*confirm_overrides(qps, duration_s), f"min_query_count={max(1, math.ceil(qps * duration_s))}",
            "sample_concatenate_permutation=0"]


def _best(probes: list[Probe], scenario: str) -> dict | None:
    valid = [p for p in probes if p.scenario == scenario and p.valid]
    return asdict(max(valid, key=lambda p: p.target_qps)) if valid else None


def _parse_range(text: str) -> tuple[Scenario, float, float]:
    name, _, interval = text.partition("=")
    low, _, high = interval.partition(":")
    try:
        scenario, low_qps, high_qps = Scenario.parse(name), float(low), float(high)
    except (InputError, ValueError):
        raise InputError(f"--range {text!r}: expected SCENARIO=LOW:HIGH, e.g. Server=20:70") from None
    if not scenario.streaming or scenario is Scenario.SINGLE_STREAM or not 0 < low_qps < high_qps:
        raise InputError(f"--range {text!r}: Server or Interactive with 0 < LOW < HIGH")
    return scenario, low_qps, high_qps


def read_probe(scenario: Scenario, qps: float, out: Path) -> Probe:
    """The few summary lines a search (and tools/gpu/tune.py's Server sweep) needs; the pipeline's parser reads
    everything else later."""
    summary = (out / "mlperf_log_summary.txt").read_text()

    def number(pattern: str) -> float | None:
        match = re.search(pattern + r"\s*:\s*([0-9.]+)", summary)
        return float(match.group(1)) if match else None

    ttft, tpot = number(r"99\.00 percentile first token latency \(ns\)"), number(
        r"99\.00 percentile time to output token \(ns\)")
    reasons = [line.split(":")[0].strip() for line in summary.splitlines()
               if re.search(r"satisfied\s*:\s*no\b", line, re.IGNORECASE)]  # LoadGen writes "No" and "NO"
    return Probe(scenario.label, qps, re.search(r"Result is\s*:\s*VALID", summary) is not None, reasons,
                 number(r"Completed tokens per second"), ttft / 1e6 if ttft else None,
                 tpot / 1e6 if tpot else None, str(out))
