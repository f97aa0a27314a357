"""The report's charts (matplotlib, Agg backend: no display needed).

Every bar carries its value; INVALID runs are drawn hatched and grey with "INVALID", failed or missing runs as an
empty hatched outline with "FAILED"/"MISSING": neither ever looks like a normal result. Every chart renders from
empty input (a "no data" panel) and from a single node.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from include.analysis.scaling import scenario_key  # noqa: E402
from include.analysis.verdict import loadgen_setting, state_of  # noqa: E402
from include.mlperf_rules import LATENCY_LIMITS  # noqa: E402
from include.records import RunRecord, ScalingResult  # noqa: E402

COLOURS = {"single": "#1f77b4", "distributed": "#ff7f0e", "ideal": "#9ecae1", "measured": "#2ca02c",
           "warn": "#d62728", "p50": "#6baed6", "p99": "#08519c"}
INVALID_STYLE = {"facecolor": "#bdbdbd", "hatch": "///", "edgecolor": "#636363"}
FAILED_STYLE = {"fill": False, "hatch": "xx", "edgecolor": "#d62728"}
CHART_FILES = {"performance": "performance_analysis.png", "scaling": "scaling_analysis.png",
               "throughput": "throughput_comparison.png", "latency": "latency.png", "trend": "trend.png"}

plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3, "axes.axisbelow": True,
                     "font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold"})


def latency_limits_ms(record: RunRecord) -> dict[str, float] | None:
    """The run's p99 TTFT/TPOT limits in ms: as LoadGen logged them where it did, else mlperf.conf's values.

    LoadGen logs them in ns (requested_server_ttft_latency); user.conf/mlperf.conf write ms, so an unsuffixed value
    above 100,000 is taken as ns (no limit of this benchmark is anywhere near 100 s).
    """
    if record.scenario not in LATENCY_LIMITS:   # Offline and SingleStream have no token-latency limits
        return None
    rule = LATENCY_LIMITS[record.scenario]
    limits = {"ttft": rule.ttft_ms, "tpot": rule.tpot_ms}
    for metric in ("ttft", "tpot"):
        logged = getattr(record.loadgen, f"{metric}_limit_ns", None) if record.loadgen else None
        if logged:
            limits[metric] = float(logged) / 1e6
            continue
        value = loadgen_setting(record, f"{metric}_latency_ns")
        if value is not None:
            limits[metric] = float(value) / 1e6
            continue
        value = loadgen_setting(record, f"{metric}_latency")
        if value is not None and float(value) > 0:
            limits[metric] = float(value) / 1e6 if float(value) > 100_000 else float(value)
    return limits


run_state = state_of     # VALID, INVALID, FAILED or MISSING (accuracy-mode runs: COMPLETED): the verdict's own rule


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def _no_data(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11, color="#636363")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _perf(records: Iterable[RunRecord]) -> list[RunRecord]:
    return sorted((r for r in records if r.mode == "performance"),
                  key=lambda r: (scenario_key(r.scenario), r.branch != "single", r.node))


def _label(record: RunRecord) -> str:
    return f"{record.node}\n{record.scenario}\n{'distributed' if record.branch == 'distributed' else 'single'}"


def _bars(ax, labels: list[str], values: list[float | None], states: list[str], colours: list[str],
          unit: str) -> None:
    """Bars with value labels; INVALID hatched grey, FAILED/MISSING an outline at 4% of the axis."""
    known = [v for v in values if v is not None]
    top = max(known) if known else 1.0
    xs = range(len(labels))
    for x, value, state, colour in zip(xs, values, states, colours, strict=True):
        if state in ("FAILED", "MISSING") or value is None:
            height = 0.04 * top
            ax.bar(x, height, **FAILED_STYLE)
            ax.text(x, height, state if state in ("FAILED", "MISSING") else "n/a", ha="center", va="bottom",
                    color=COLOURS["warn"], fontsize=8, fontweight="bold")
            continue
        style = INVALID_STYLE if state == "INVALID" else {"color": colour}
        ax.bar(x, value, **style)
        text = _fmt(value) + ("\nINVALID" if state == "INVALID" else "")
        ax.text(x, value, text, ha="center", va="bottom", fontsize=8,
                color="#636363" if state == "INVALID" else "black")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel(unit)
    ax.set_ylim(0, top * 1.45)   # head room for the value labels and the legend


def _legend_states(ax, extra: list[Patch] | None = None) -> None:
    handles = list(extra or []) + [Patch(label="INVALID (LoadGen)", **INVALID_STYLE),
                                   Patch(label="failed / missing", **FAILED_STYLE)]
    ax.legend(handles=handles, fontsize=7, loc="upper left", ncol=2, framealpha=0.9)


def performance_analysis(records: list[RunRecord], scaling: list[ScalingResult], path: Path) -> Path:
    """Four panels: tokens/s single vs distributed, samples processed, duration, per-accelerator comparison."""
    perf = _perf(records)
    fig, axes = plt.subplots(2, 2, figsize=(max(13.0, 1.3 * len(perf) + 2), 9))
    fig.suptitle("Performance analysis (performance-mode runs)", fontsize=13, fontweight="bold")
    (ax1, ax2), (ax3, ax4) = axes
    branch_patches = [Patch(color=COLOURS["single"], label="single node"),
                      Patch(color=COLOURS["distributed"], label="distributed (aggregate over window)")]

    # 1: tokens/s: each single run, each distributed aggregate
    labels, values, states, colours = [], [], [], []
    for r in perf:
        if r.branch == "single":
            labels.append(_label(r))
            values.append(r.loadgen.tokens_per_second if r.loadgen else None)
            states.append(run_state(r))
            colours.append(COLOURS["single"])
    for s in sorted(scaling, key=lambda s: scenario_key(s.scenario)):
        labels.append(f"{'+'.join(s.nodes) or 'distributed'}\n{s.scenario}\ndistributed")
        values.append(s.aggregate_tokens_per_second)
        states.append("VALID" if s.aggregate_tokens_per_second is not None else "INVALID")
        colours.append(COLOURS["distributed"])
    if labels:
        _bars(ax1, labels, values, states, colours, "output tokens/s")
        _legend_states(ax1, branch_patches)
    else:
        _no_data(ax1, "no performance runs")
    ax1.set_title("Throughput: single node vs distributed")

    # 2 and 3: samples and duration per run
    def samples(r: RunRecord) -> int | None:
        return r.sut.counts.samples_completed if r.sut else (r.loadgen.result_samples if r.loadgen else None)

    def duration(r: RunRecord) -> float | None:
        return r.sut.timing.duration_s if r.sut else (r.loadgen.duration_s if r.loadgen else None)

    for ax, title, unit, getter in ((ax2, "Samples processed", "samples", samples),
                                    (ax3, "Duration of the timed run", "seconds", duration)):
        if perf:
            _bars(ax, [_label(r) for r in perf], [getter(r) for r in perf], [run_state(r) for r in perf],
                  [COLOURS[r.branch] for r in perf], unit)
            _legend_states(ax, branch_patches)
        else:
            _no_data(ax, "no performance runs")
        ax.set_title(title)

    # 4: per accelerator (valid single-node runs, mean tokens/s per accelerator and scenario)
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in perf:
        if r.branch == "single" and run_state(r) == "VALID" and r.loadgen and r.loadgen.tokens_per_second:
            acc = r.sut.accelerator.name if r.sut else "unknown"
            groups[(acc, r.scenario)].append(r.loadgen.tokens_per_second)
    if groups:
        keys = sorted(groups, key=lambda k: (scenario_key(k[1]), k[0]))
        vals = [sum(groups[k]) / len(groups[k]) for k in keys]
        lbls = [f"{a}\n{s} (n={len(groups[(a, s)])})" for a, s in keys]
        _bars(ax4, lbls, vals, ["VALID"] * len(keys), ["#756bb1"] * len(keys), "output tokens/s per node (mean)")
    else:
        _no_data(ax4, "no valid single-node runs")
    ax4.set_title("Per accelerator (valid single-node runs)")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path)
    plt.close(fig)
    return path


def scaling_analysis(scaling: list[ScalingResult], path: Path) -> Path:
    """Ideal linear (sum of single-node tokens/s) vs measured aggregate, and the efficiency with 100% marked."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5))
    fig.suptitle("Scaling: distributed aggregate vs ideal linear", fontsize=13, fontweight="bold")
    results = sorted(scaling, key=lambda s: scenario_key(s.scenario))
    if not results:
        _no_data(ax1, "no distributed runs")
        _no_data(ax2, "no distributed runs")
    else:
        labels = [f"{s.scenario}\n{len(s.nodes)} node(s)" for s in results]
        xs = list(range(len(results)))
        width = 0.38
        top = max([v for s in results for v in (s.single_sum_tokens_per_second, s.aggregate_tokens_per_second)
                   if v] or [1.0])
        for offset, key, colour in ((-width / 2, "single_sum_tokens_per_second", COLOURS["ideal"]),
                                    (width / 2, "aggregate_tokens_per_second", COLOURS["measured"])):
            for x, s in zip(xs, results, strict=True):
                value = getattr(s, key)
                if value is None:
                    ax1.bar(x + offset, 0.04 * top, width, **FAILED_STYLE)
                    ax1.text(x + offset, 0.04 * top, "n/a", ha="center", va="bottom", fontsize=8,
                             color=COLOURS["warn"])
                else:
                    ax1.bar(x + offset, value, width, color=colour)
                    ax1.text(x + offset, value, _fmt(value), ha="center", va="bottom", fontsize=8)
        ax1.legend(handles=[Patch(color=COLOURS["ideal"], label="ideal linear (sum of single-node tokens/s)"),
                            Patch(color=COLOURS["measured"], label="measured aggregate (tokens / window)"),
                            Patch(label="not computable (excluded runs)", **FAILED_STYLE)], fontsize=7,
                   loc="upper left")
        ax1.set_xticks(xs)
        ax1.set_xticklabels(labels)
        ax1.set_ylabel("output tokens/s")
        ax1.set_ylim(0, top * 1.3)
        ax1.set_title("Throughput")

        effs = [s.efficiency for s in results]
        etop = max([e * 100 for e in effs if e is not None] + [100.0])
        for x, s in zip(xs, results, strict=True):
            if s.efficiency is None:
                ax2.bar(x, 0.04 * etop, **FAILED_STYLE)
                why = "n/a, excluded:\n" + "\n".join(s.excluded) if s.excluded else "n/a"
                ax2.text(x, 0.06 * etop, why, ha="center", va="bottom", fontsize=7, color=COLOURS["warn"])
                continue
            pct = s.efficiency * 100
            over = s.efficiency > 1.0
            ax2.bar(x, pct, color=COLOURS["warn"] if over else COLOURS["measured"],
                    hatch="\\\\" if over else None, edgecolor="black" if over else None)
            ax2.text(x, pct, f"{pct:.1f}%" + ("\nabove 100%: check flags" if over else ""), ha="center",
                     va="bottom", fontsize=8, color=COLOURS["warn"] if over else "black")
        ax2.axhline(100, color="black", linestyle="--", linewidth=1, label="ideal (100%)")
        ax2.legend(fontsize=7, loc="upper left")
        ax2.set_xticks(xs)
        ax2.set_xticklabels(labels)
        ax2.set_ylabel("scaling efficiency (%)")
        ax2.set_ylim(0, etop * 1.3)
        ax2.set_title("Efficiency = aggregate / sum of single-node tokens/s")
        if len(results) == 1:   # keep a lone group from stretching over the whole axis
            ax1.set_xlim(-1.2, 1.2)
            ax2.set_xlim(-1.2, 1.2)
        excluded = [f"{s.scenario}: {name} ({why})" for s in results for name, why in sorted(s.excluded.items())]
        if excluded:
            text = "Left out of the figures: " + "; ".join(excluded)
            fig.text(0.01, 0.01, text[:400] + ("..." if len(text) > 400 else ""), fontsize=7,
                     color=COLOURS["warn"], wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 0.93))
    fig.savefig(path)
    plt.close(fig)
    return path


def throughput_comparison(records: list[RunRecord], scaling: list[ScalingResult], path: Path) -> Path:
    """Each node's tokens/s alone vs its rate inside the distributed run, per scenario."""
    perf = _perf(records)
    singles = {(r.node, r.scenario): r for r in perf if r.branch == "single"}
    shares = {(b.node, s.scenario): b.tokens_per_second for s in scaling for b in s.balance}
    keys = sorted(set(singles) | set(shares), key=lambda k: (scenario_key(k[1]), k[0]))
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(keys) + 3), 5))
    if not keys:
        _no_data(ax, "no performance runs")
    else:
        width = 0.38
        top = max([v for v in (list(shares.values()) + [r.loadgen.tokens_per_second for r in singles.values()
                                                       if r.loadgen]) if v] or [1.0])
        for x, key in enumerate(keys):
            single = singles.get(key)
            state = run_state(single) if single else "MISSING"
            value = single.loadgen.tokens_per_second if single and single.loadgen else None
            if value is None or state in ("FAILED", "MISSING"):
                ax.bar(x - width / 2, 0.04 * top, width, **FAILED_STYLE)
                ax.text(x - width / 2, 0.04 * top, state if state != "VALID" else "n/a", ha="center",
                        va="bottom", fontsize=7, color=COLOURS["warn"], fontweight="bold")
            else:
                style = INVALID_STYLE if state == "INVALID" else {"color": COLOURS["single"]}
                ax.bar(x - width / 2, value, width, **style)
                ax.text(x - width / 2, value, _fmt(value) + ("\nINVALID" if state == "INVALID" else ""),
                        ha="center", va="bottom", fontsize=8)
            dist = shares.get(key)
            if dist is None:   # no distributed share: say so, draw nothing that looks like a result
                ax.text(x + width / 2, 0.01 * top, "not in a\ndistributed\nrun", ha="center", va="bottom",
                        fontsize=7, color="#636363", style="italic")
            else:
                ax.bar(x + width / 2, dist, width, color=COLOURS["distributed"])
                ax.text(x + width / 2, dist, _fmt(dist), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([f"{n}\n{s}" for n, s in keys])
        ax.set_ylabel("output tokens/s")
        ax.set_ylim(0, top * 1.3)
        _legend_states(ax, [Patch(color=COLOURS["single"], label="alone (LoadGen tokens/s)"),
                            Patch(color=COLOURS["distributed"], label="in the distributed run (its tokens / time)")])
    ax.set_title("Per-node throughput: single vs distributed")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def latency(records: list[RunRecord], path: Path) -> Path:
    """TTFT and TPOT p50/p99 of Server and Interactive runs against the scenario's p99 limits."""
    runs = [r for r in _perf(records) if latency_limits_ms(r)]
    fig, axes = plt.subplots(1, 2, figsize=(max(10, 1.8 * len(runs) + 6), 5))
    fig.suptitle("Token latencies against the scenario limits (p99 must stay under the dashed line)",
                 fontsize=12, fontweight="bold")
    for ax, metric, name in ((axes[0], "ttft", "Time to first token"), (axes[1], "tpot", "Time per output token")):
        ax.set_title(name)
        if not runs:
            _no_data(ax, "no Server or Interactive runs")
            continue
        width = 0.38
        top = 0.0
        for x, r in enumerate(runs):
            state = run_state(r)
            lat = (getattr(r.loadgen, f"{metric}_ns") if r.loadgen else {}) or {}
            limit = latency_limits_ms(r)[metric]
            top = max(top, limit)
            ax.hlines(limit, x - 0.45, x + 0.45, colors=COLOURS["warn"], linestyles="--", linewidth=1.5)
            ax.text(x - 0.45, limit, f"{r.scenario} limit {limit:,.0f} ms", fontsize=6, color=COLOURS["warn"],
                    va="bottom", ha="left")
            if state in ("FAILED", "MISSING") or not lat:
                ax.bar(x, 0.04 * limit, 2 * width, **FAILED_STYLE)
                ax.text(x, 0.04 * limit, state if state != "VALID" else "no data", ha="center", va="bottom",
                        fontsize=8, color=COLOURS["warn"], fontweight="bold")
                continue
            for offset, pct, colour in ((-width / 2, "p50", COLOURS["p50"]), (width / 2, "p99", COLOURS["p99"])):
                value = lat.get(pct)
                if value is None:
                    continue
                ms = value / 1e6
                top = max(top, ms)
                over = pct == "p99" and ms > limit
                style = INVALID_STYLE if state == "INVALID" else {"color": colour}
                ax.bar(x + offset, ms, width, **style)
                ax.text(x + offset, ms / 2, f"{pct}\n{_fmt(ms)}", ha="center", va="center", fontsize=7,
                        color=COLOURS["warn"] if over else "black", fontweight="bold" if over else None,
                        bbox={"facecolor": "white", "alpha": 0.8, "pad": 1, "edgecolor": "none"})
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels([_label(r) + ("\nINVALID" if run_state(r) == "INVALID" else "") for r in runs],
                           fontsize=7)
        ax.set_ylabel("milliseconds")
        ax.set_ylim(0, top * 1.3)
        ax.legend(handles=[Patch(color=COLOURS["p50"], label="p50"), Patch(color=COLOURS["p99"], label="p99"),
                           Patch(label="INVALID run", **INVALID_STYLE)], fontsize=7, loc="upper left")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path)
    plt.close(fig)
    return path


TREND_POINTS = 40     # runs per series in the report's trend: enough to see a drift, few enough to read


def trend(points: list[dict[str, Any]], path: Path) -> Path:
    """Tokens/s over each run's own time, one line per series (node/scenario/branch and comparability key: a change
    of settings starts a new line, never a jump in one); INVALID points as red crosses.

    `points`: dicts with logical_date (the run's own time, ISO string or datetime), node, scenario, branch,
    tokens_per_second, valid and comparability_hash.
    """
    import pandas as pd

    fig, ax = plt.subplots(figsize=(11, 5))
    ax.set_title(f"Throughput history of this run's settings (output tokens/s by run date, last {TREND_POINTS} "
                 "runs per series)")
    usable = [p for p in points or [] if p.get("tokens_per_second") is not None and p.get("logical_date")]
    if not usable:
        _no_data(ax, "no history yet")
    else:
        frame = pd.DataFrame(usable)
        frame["logical_date"] = pd.to_datetime(frame["logical_date"], utc=True, format="mixed")
        frame["branch"] = frame.get("branch", "single")
        frame["valid"] = frame["valid"].fillna(False).astype(bool) if "valid" in frame else True
        frame["key"] = frame["comparability_hash"].fillna("") if "comparability_hash" in frame else ""
        keys_per_place = frame.groupby(["node", "scenario", "branch"])["key"].nunique()
        for (node, scenario, branch, key), group in frame.sort_values("logical_date").groupby(
                ["node", "scenario", "branch", "key"], sort=True):
            group = group.tail(TREND_POINTS)
            label = f"{node} {scenario} ({branch})"
            if keys_per_place[(node, scenario, branch)] > 1:
                label += f" settings {key[:8] or 'unknown'}"
            good = group[group["valid"]]
            line, = ax.plot(good["logical_date"], good["tokens_per_second"], marker="o", label=label)
            bad = group[~group["valid"]]
            if len(bad):
                ax.scatter(bad["logical_date"], bad["tokens_per_second"], marker="x", s=70,
                           color=COLOURS["warn"], zorder=3)
                for _, row in bad.iterrows():
                    ax.annotate("INVALID", (row["logical_date"], row["tokens_per_second"]),
                                textcoords="offset points", xytext=(4, 6), fontsize=7, color=COLOURS["warn"])
            if len(good):
                last = good.iloc[-1]
                ax.annotate(_fmt(last["tokens_per_second"]), (last["logical_date"], last["tokens_per_second"]),
                            textcoords="offset points", xytext=(4, -10), fontsize=7, color=line.get_color())
        ax.scatter([], [], marker="x", color=COLOURS["warn"], label="INVALID / failed run")
        ax.legend(fontsize=7, loc="best")
        lo, hi = frame["tokens_per_second"].min(), frame["tokens_per_second"].max()
        if lo > 0.5 * hi:   # zoom in on the variation, and say that the axis does not start at zero
            pad = max(0.05 * hi, (hi - lo) * 0.3)
            ax.set_ylim(lo - pad, hi + pad)
            ax.set_ylabel("output tokens/s (axis not from 0)")
        else:
            ax.set_ylim(bottom=0)
            ax.set_ylabel("output tokens/s")
        ax.set_xlabel("run date (UTC)")
        fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def render_all(records: list[RunRecord], scaling: list[ScalingResult], history_points: list[dict[str, Any]],
               out_dir: Path) -> dict[str, Path]:
    """Every chart into out_dir; returns {name: path} with the names of CHART_FILES."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "performance": performance_analysis(records, scaling, out_dir / CHART_FILES["performance"]),
        "scaling": scaling_analysis(scaling, out_dir / CHART_FILES["scaling"]),
        "throughput": throughput_comparison(records, scaling, out_dir / CHART_FILES["throughput"]),
        "latency": latency(records, out_dir / CHART_FILES["latency"]),
        "trend": trend(history_points, out_dir / CHART_FILES["trend"]),
    }
