"""Scaling efficiency of the distributed runs, computed so that it cannot flatter.

The aggregate throughput is all the work the nodes completed together divided by the wall-clock window in which
they ran (first start to last end), never the sum of per-node rates: nodes that finish at different times did not
deliver their rates at once. The efficiency compares that with the sum of LoadGen's single-node tokens/s of the
same nodes and scenario. Runs LoadGen marked INVALID, failed or missing runs are left out of the figure and named;
an efficiency above 100% is flagged with its likely causes rather than reported as a success.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from include.mlperf_rules import SCENARIOS
from include.records import NodeShare, RunRecord, ScalingResult

SCENARIO_ORDER = list(SCENARIOS)
# Settings whose difference between single and distributed runs changes the throughput LoadGen measures.
_COMPARED_SETTINGS = ["min_duration", "min_duration_ms", "min_query_count", "max_query_count", "server_target_qps",
                      "target_qps", "offline_expected_qps", "performance_sample_count", "total_sample_count"]
_COMPARED_ENGINE = ["dtype", "quantization", "kv_cache_dtype", "tensor_parallel_size", "max_num_seqs",
                    "max_num_batched_tokens", "max_model_len", "gpu_memory_utilization"]


def scenario_key(scenario: str) -> int:
    return SCENARIO_ORDER.index(scenario) if scenario in SCENARIO_ORDER else len(SCENARIO_ORDER)


def parse_utc(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def exclusion_reason(record: RunRecord) -> str | None:
    """Why a run cannot enter a throughput figure, or None when it can (completed and LoadGen said VALID)."""
    if record.status == "missing":
        return "missing: no result.json" + (f" ({record.error})" if record.error else "")
    if record.status == "failed":
        return f"failed: {record.error or 'no error recorded'}"
    if record.loadgen is None:
        return "no LoadGen result" + (f" ({record.error})" if record.error else "")
    if record.loadgen.valid is False:
        reasons = "; ".join(record.loadgen.invalid_reasons) or "no reason given"
        return f"INVALID: {reasons}"
    if record.loadgen.valid is None:
        return "LoadGen gave no VALID/INVALID verdict"
    return None


def is_coordinated(record: RunRecord) -> bool:
    """One LoadGen over all nodes (http backend): node label 'coordinated', '+'-joined nodes or endpoints."""
    parts = record.run_dir.replace("\\", "/").split("/")
    return bool(record.sut and record.sut.endpoints) or "+" in record.node or "coordinated" in parts


def coordinated_nodes(record: RunRecord) -> list[str]:
    nodes = record.sut.endpoint_nodes if record.sut else []
    return nodes or [n for n in record.node.split("+") if n]


def _counts(record: RunRecord) -> tuple[int | None, int | None]:
    if record.sut is None:
        return None, None
    return record.sut.counts.samples_completed, record.sut.counts.output_tokens


def timed_window(record: RunRecord) -> tuple[datetime | None, datetime | None, float | None]:
    """Start, end and duration (s) of the run's timed test: result.json's timing, LoadGen's duration as fallback."""
    timing = record.sut.timing if record.sut else None
    start, end = (parse_utc(timing.start_utc), parse_utc(timing.end_utc)) if timing else (None, None)
    duration = timing.duration_s if timing else None
    if duration is None and start and end:
        duration = (end - start).total_seconds()
    if duration is None and record.loadgen is not None:
        duration = record.loadgen.duration_s
    return start, end, duration


def _settings(record: RunRecord) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    merged.update(record.sut.loadgen_settings if record.sut else {})
    if record.loadgen is not None:
        merged.update(record.loadgen.settings or {})
    return merged


def _engine(record: RunRecord) -> dict[str, Any]:
    return record.sut.engine if record.sut else {}


def single_tokens_per_second(record: RunRecord) -> float | None:
    """LoadGen's own tokens/s (Server/Interactive: completed tokens/s) of a single-node run."""
    return record.loadgen.tokens_per_second if record.loadgen is not None else None


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _differences(a: dict[str, Any], b: dict[str, Any], keys: list[str]) -> list[str]:
    return [f"{k} {a[k]} vs {b[k]}" for k in keys if k in a and k in b and a[k] != b[k]]


def _above_100_causes(dist_runs: list[RunRecord], singles: dict[str, RunRecord], shares: list[NodeShare],
                      window_s: float | None, excluded: dict[str, str]) -> list[str]:
    """Concrete differences between the distributed and the single-node runs that can inflate the ratio."""
    causes: list[str] = []
    for share in shares:
        single = singles.get(share.node)
        s_samples, _ = _counts(single) if single else (None, None)
        if s_samples and share.samples and abs(share.samples - s_samples) / s_samples > 0.05:
            causes.append(f"different sample counts: {share.node} completed {share.samples:,} samples in the "
                          f"distributed run vs {s_samples:,} alone")
    single_durations = {n: timed_window(r)[2] for n, r in singles.items() if timed_window(r)[2]}
    if window_s and single_durations:
        longest = max(single_durations.values())
        shortest = min(single_durations.values())
        if window_s < 0.9 * shortest or window_s > 1.1 * longest:
            causes.append(f"different durations: distributed window {window_s:,.0f} s vs single-node runs "
                          f"{shortest:,.0f}-{longest:,.0f} s (ramp-up and tail weigh differently)")
    for run in dist_runs:
        d_set, d_eng = _settings(run), _engine(run)
        for node, single in singles.items():
            diff = _differences(d_set, _settings(single), _COMPARED_SETTINGS)
            diff += _differences(d_eng, _engine(single), _COMPARED_ENGINE)
            if diff:
                causes.append(f"different configuration vs {node}'s single run: " + ", ".join(diff))
    if excluded:
        causes.append("runs left out as invalid or failed: " + ", ".join(sorted(excluded)))
    if not causes:
        causes.append("no difference found in sample counts, durations or settings: suspect the single-node "
                      "runs (slowed by a neighbour or throttling) or the timing in result.json")
    return causes


def _result(scenario: str, nodes: list[str], excluded: dict[str, str], tokens: int | None, samples: int | None,
            window_s: float | None, shares: list[NodeShare], singles: dict[str, RunRecord],
            dist_runs: list[RunRecord], flags: list[str], sum_of_rates: float | None) -> ScalingResult:
    agg_tps = tokens / window_s if tokens is not None and window_s else None
    agg_sps = samples / window_s if samples is not None and window_s else None
    single_sum: float | None = None
    efficiency: float | None = None
    missing_single = []
    for node in nodes:
        single = singles.get(node)
        reason = exclusion_reason(single) if single else "no single-node run"
        if reason is None and single_tokens_per_second(single) is None:
            reason = "single-node run has no tokens/s"
        if reason:
            missing_single.append(node)
            excluded[f"{node} (single)"] = reason
    if nodes and not missing_single:
        single_sum = sum(single_tokens_per_second(singles[n]) for n in nodes)
        for node in nodes:   # the two sides of the ratio come from different sources: say when they disagree
            _, tokens_n = _counts(singles[node])
            duration_n = timed_window(singles[node])[2]
            lg_rate = single_tokens_per_second(singles[node])
            if tokens_n and duration_n and lg_rate and abs(tokens_n / duration_n - lg_rate) > 0.1 * lg_rate:
                flags.append(f"{node}'s single run: result.json counts give {tokens_n / duration_n:,.1f} tokens/s "
                             f"but LoadGen reported {lg_rate:,.1f}; the efficiency mixes the two")
    if missing_single:
        flags.append("efficiency not computed: no valid single-node result for " + ", ".join(missing_single))
    elif agg_tps is not None and single_sum:
        efficiency = agg_tps / single_sum
        if efficiency > 1.0:
            causes = _above_100_causes(dist_runs, singles, shares, window_s, excluded)
            flags.append(f"efficiency {_pct(efficiency)} above 100% is not credible as measured; likely causes: "
                         + "; ".join(causes))
    if agg_tps and sum_of_rates and sum_of_rates > 1.05 * agg_tps:
        flags.append(f"the sum of per-node rates ({sum_of_rates:,.1f} tokens/s) would overstate the aggregate "
                     f"by {_pct(sum_of_rates / agg_tps - 1)}: the nodes did not all run over the whole window")
    if len(shares) > 1:
        fair = 1.0 / len(shares)
        for share in shares:
            if abs(share.share_of_tokens - fair) > 0.2 * fair:
                flags.append(f"imbalance: {share.node} did {_pct(share.share_of_tokens)} of the tokens "
                             f"(an even split is {_pct(fair)})")
    return ScalingResult(scenario=scenario, nodes=nodes, excluded=excluded, aggregate_tokens_per_second=agg_tps,
                         aggregate_samples_per_second=agg_sps, window_s=window_s,
                         single_sum_tokens_per_second=single_sum, efficiency=efficiency, balance=shares,
                         flags=flags)


def _coordinated(scenario: str, run: RunRecord, singles: dict[str, RunRecord]) -> ScalingResult:
    excluded: dict[str, str] = {}
    flags = [f"coordinated run: one LoadGen over {len(coordinated_nodes(run))} nodes"]
    reason = exclusion_reason(run)
    if reason:
        excluded[run.node] = reason
        return ScalingResult(scenario, [], excluded, None, None, None, None, None, [],
                             flags + [f"no scaling figure: the distributed run is excluded ({reason})"])
    samples, tokens = _counts(run)
    start, end, duration = timed_window(run)
    window_s = (end - start).total_seconds() if start and end else duration
    per_node: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for ep in (run.sut.endpoints if run.sut else []):
        per_node[ep.node][0] += ep.samples_completed
        per_node[ep.node][1] += ep.output_tokens
    ep_tokens = sum(v[1] for v in per_node.values())
    shares = [NodeShare(node, s, t, t / ep_tokens if ep_tokens else 0.0, t / window_s if window_s else None)
              for node, (s, t) in per_node.items()]
    if tokens is not None and ep_tokens and abs(ep_tokens - tokens) > 0.01 * max(tokens, 1):
        flags.append(f"endpoint shares add up to {ep_tokens:,} tokens but the run counted {tokens:,}")
    if not per_node:
        flags.append("no per-endpoint shares in result.json: balance unknown")
    return _result(scenario, coordinated_nodes(run), excluded, tokens, samples, window_s, shares, singles, [run],
                   flags, None)


def _sharded(scenario: str, runs: list[RunRecord], singles: dict[str, RunRecord]) -> ScalingResult:
    excluded: dict[str, str] = {}
    flags: list[str] = []
    kept: list[RunRecord] = []
    for run in runs:
        reason = exclusion_reason(run)
        if reason:
            excluded[run.node] = reason
        else:
            kept.append(run)
    if excluded and kept:
        flags.append(f"partial: {len(kept)} of {len(runs)} shards entered the figure")
    if not kept:
        return ScalingResult(scenario, [], excluded, None, None, None, None, None, [],
                             ["no scaling figure: every shard was excluded"])
    windows = [timed_window(r) for r in kept]
    starts, ends = [w[0] for w in windows], [w[1] for w in windows]
    window_s = None
    if all(starts) and all(ends):
        window_s = (max(ends) - min(starts)).total_seconds()
    else:
        flags.append("no aggregate: some shards lack start/end times, so the common window is unknown")
    tokens = sum(_counts(r)[1] or 0 for r in kept)
    samples = sum(_counts(r)[0] or 0 for r in kept)
    shares = []
    rates = []
    for run, (_, _, duration) in zip(kept, windows, strict=True):
        s, t = _counts(run)
        rate = (t or 0) / duration if duration else None
        if rate is not None:
            rates.append(rate)
        shares.append(NodeShare(run.node, s or 0, t or 0, (t or 0) / tokens if tokens else 0.0, rate))
    sum_of_rates = sum(rates) if rates else None
    return _result(scenario, [r.node for r in kept], excluded, tokens, samples, window_s, shares, singles, kept,
                   flags, sum_of_rates)


def scaling_efficiency(records: list[RunRecord]) -> list[ScalingResult]:
    """One ScalingResult per scenario (and per kind of distributed run) of the performance-mode runs."""
    perf = [r for r in records if r.mode == "performance"]
    results: list[ScalingResult] = []
    for scenario in sorted({r.scenario for r in perf if r.branch == "distributed"}, key=scenario_key):
        singles: dict[str, RunRecord] = {}
        for r in perf:
            if r.branch == "single" and r.scenario == scenario:
                # several single runs of one node: prefer a valid one
                if r.node not in singles or exclusion_reason(singles[r.node]) is not None:
                    singles[r.node] = r
        dist = [r for r in perf if r.branch == "distributed" and r.scenario == scenario]
        for run in (r for r in dist if is_coordinated(r)):
            results.append(_coordinated(scenario, run, singles))
        sharded = [r for r in dist if not is_coordinated(r)]
        if sharded:
            results.append(_sharded(scenario, sharded, singles))
    return results


def scaling_from_dict(data: dict[str, Any]) -> ScalingResult:
    data = dict(data)
    data["balance"] = [NodeShare(**b) for b in data.get("balance") or []]
    return ScalingResult(**data)
