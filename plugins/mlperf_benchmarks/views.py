"""What the Benchmarks page shows, as pure functions of the history store's rows.

Nothing here touches the database, Airflow or the web framework: the functions take the store's frozen dataclasses
(`RunRow`, `ResultRow`, `RegressionRow`) and return plain dicts and lists, so the figures, the run table's headline
figures and the run comparison are unit-tested without a server.

Plotly figures are built as plain JSON dicts (plotly.js's figure format) rather than with `plotly.graph_objects`:
the page needs a handful of scatter traces, and the JSON is what the browser receives either way.
"""
from __future__ import annotations

import html
import math
from collections import defaultdict
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

from include.metrics import METRICS, ROUGE_METRICS, Metric
from include.verdict import differences

# The four trend charts the issue asks for, in page order.
TREND_CHARTS: tuple[str, ...] = ("tokens_per_second", "ttft_p99_ns", "tpot_p99_ns", "rougeL")

# Colour-blind-safe palette (Okabe-Ito without black/yellow), one colour per series on every chart.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#7F7F7F", "#1B9E77", "#6A3D9A")
INVALID_COLOR = "#B42318"
IMPLAUSIBLE_COLOR = "#7A2E0E"
REGRESSION_COLOR = "#D92D20"


def esc(value: Any) -> str:
    """Text for Plotly labels: Plotly renders a subset of HTML in hover text, so user data is escaped first."""
    return html.escape("" if value is None else str(value), quote=False)


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def series_key(row) -> tuple[str, str, str]:
    return (row.scenario, row.branch, row.node)


def series_label(key: tuple[str, str, str]) -> str:
    scenario, branch, node = key
    return f"{scenario} · {branch} · {node}"


def versions_text(versions: dict[str, Any] | None) -> str:
    if not versions:
        return "—"
    return ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))


def short_hash(value: str | None, n: int = 12) -> str:
    return (value or "—")[:n]


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


# ----------------------------------------------------------------------------------------------------------------
# Trend figures


def _point_state(row, metric: Metric) -> str:
    """How a point is drawn: 'valid', 'invalid' (LoadGen INVALID / accuracy targets failed), 'implausible' (above a
    physical limit, as the pipeline's verdict says) or 'neutral'."""
    if row.plausibility == "implausible":
        return "implausible"
    if metric.mode == "accuracy":
        if row.accuracy_passed is False:
            return "invalid"
        return "valid" if row.accuracy_passed else "neutral"
    if row.valid is False:
        return "invalid"
    return "valid" if row.valid else "neutral"


def _validity_text(row, metric: Metric) -> str:
    if row.verdict:                 # the verdict as the pipeline computed it, never re-derived here
        return f"verdict: {row.verdict}"
    if metric.mode == "accuracy":
        if row.accuracy_passed is True:
            return "accuracy targets: PASSED"
        if row.accuracy_passed is False:
            return "accuracy targets: FAILED"
        return "accuracy targets: not applicable"
    if row.valid is True:
        return "LoadGen: VALID"
    if row.valid is False:
        reasons = "; ".join(row.invalid_reasons or []) or "no reason logged"
        return f"LoadGen: INVALID ({reasons})"
    return "LoadGen: no verdict"


def _hover(row, metric: Metric, value: float) -> str:
    unit = f" {metric.unit}" if metric.unit else ""
    lines = [
        f"<b>{esc(metric.label)}: {esc(fmt(value, metric.digits))}{esc(unit)}</b>",
        f"run: {esc(row.run_id)}",
        f"date: {esc(row.logical_date.strftime('%Y-%m-%d %H:%M UTC'))}",
        f"{esc(series_label(series_key(row)))}",
        esc(_validity_text(row, metric)),
        f"config: {esc(short_hash(row.config_hash))} · {esc(row.accelerator or '—')}",
        f"versions: {esc(versions_text(row.versions))}",
    ]
    if metric.mode == "accuracy":
        lines.insert(1, "ROUGE-1/2/L/Lsum: " + " / ".join(
            esc(fmt(getattr(row, m), 2)) for m in ROUGE_METRICS))
    return "<br>".join(lines)


def _regression_hover(reg, metric: Metric) -> str:
    reg_metric = METRICS.get(reg.metric)
    label = reg_metric.label if reg_metric else reg.metric
    p = "—" if reg.p_value is None else f"{reg.p_value:.3g}"
    return "<br>".join([
        f"<b>Regression: {esc(label)} {esc(f'{reg.change_pct:+.1f}')}%</b>",
        f"run: {esc(reg.run_id)}",
        f"current {esc(fmt(reg_metric.display(reg.current) if reg_metric else reg.current, 2))}"
        f" vs baseline {esc(fmt(reg_metric.display(reg.baseline) if reg_metric else reg.baseline, 2))}"
        f" (threshold {esc(f'{reg.threshold_pct:.1f}')}%, p={esc(p)})",
        esc(reg.explanation),
    ])


def _axis_title(metric: Metric) -> str:
    return f"{metric.label} ({metric.unit})" if metric.unit else metric.label


INVALID_MARKER = {"color": INVALID_COLOR, "size": 11, "symbol": "x-thin-open",
                  "line": {"color": INVALID_COLOR, "width": 2.5}}
IMPLAUSIBLE_MARKER = {"color": IMPLAUSIBLE_COLOR, "size": 13, "symbol": "triangle-up-open",
                      "line": {"color": IMPLAUSIBLE_COLOR, "width": 2.5}}


def _off_line(label: str, state: str, rows: Sequence, metric: Metric, marker: dict[str, Any]) -> dict[str, Any]:
    """Points drawn apart from their series' line, so a run that cannot be trusted never reads as a normal point."""
    return {
        "type": "scatter", "mode": "markers", "name": esc(f"{label} — {state}"), "legendgroup": esc(label),
        "showlegend": False, "x": [iso(r.logical_date) for r in rows],
        "y": [metric.display(getattr(r, metric.name)) for r in rows],
        "text": [_hover(r, metric, metric.display(getattr(r, metric.name))) for r in rows],
        "customdata": [r.run_id for r in rows], "hovertemplate": f"%{{text}}<extra>{state}</extra>", "marker": marker,
    }


def trend_figure(metric_name: str, results: Sequence, regressions: Sequence,
                 colors: dict[tuple[str, str, str], str]) -> dict[str, Any]:
    """One Plotly figure: the metric over logical date, one line per (scenario, branch, node).

    VALID points are filled circles joined by the series line; INVALID points (LoadGen said INVALID, or accuracy
    targets failed) are drawn apart as crosses, off the line, so a bad run never reads as a normal point.
    Regressions the pipeline recorded are ringed in red.
    """
    metric = METRICS[metric_name]
    by_series: dict[tuple[str, str, str], list] = defaultdict(list)
    for row in results:
        if row.mode != metric.mode or row.status != "completed":
            continue
        if metric.display(getattr(row, metric.name)) is None:
            continue
        by_series[series_key(row)].append(row)

    traces: list[dict[str, Any]] = []
    point_at: dict[tuple[str, tuple[str, str, str]], tuple[str, float]] = {}
    any_invalid = any_implausible = False
    for key in sorted(by_series):
        rows = sorted(by_series[key], key=lambda r: (r.logical_date, r.run_id))
        color = colors.get(key, PALETTE[0])
        good = [r for r in rows if _point_state(r, metric) not in ("invalid", "implausible")]
        bad = [r for r in rows if _point_state(r, metric) == "invalid"]
        implausible = [r for r in rows if _point_state(r, metric) == "implausible"]
        for r in rows:
            point_at[(r.run_id, key)] = (iso(r.logical_date), metric.display(getattr(r, metric.name)))
        label = series_label(key)
        traces.append({
            "type": "scatter", "mode": "lines+markers", "name": esc(label), "legendgroup": esc(label),
            "x": [iso(r.logical_date) for r in good],
            "y": [metric.display(getattr(r, metric.name)) for r in good],
            "text": [_hover(r, metric, metric.display(getattr(r, metric.name))) for r in good],
            "customdata": [r.run_id for r in good],
            "hovertemplate": "%{text}<extra></extra>",
            "line": {"color": color, "width": 2},
            "marker": {"color": color, "size": 8,
                       "symbol": ["circle" if _point_state(r, metric) == "valid" else "circle-open" for r in good],
                       "line": {"color": color, "width": 1.5}},
        })
        if bad:
            any_invalid = True
            traces.append(_off_line(label, "INVALID", bad, metric, INVALID_MARKER))
        if implausible:
            any_implausible = True
            traces.append(_off_line(label, "IMPLAUSIBLE", implausible, metric, IMPLAUSIBLE_MARKER))

    # Regressions: ring the point of the run and series the regression names.
    rx, ry, rtext = [], [], []
    for reg in regressions:
        # A ROUGE chart shows ROUGE-L, but a regression of any accuracy figure belongs to that point.
        same_chart = reg.metric == metric.name or (
            metric.name in ROUGE_METRICS and reg.metric in ROUGE_METRICS + ("gen_len", "gen_num"))
        if not same_chart:
            continue
        where = point_at.get((reg.run_id, (reg.scenario, reg.branch, reg.node)))
        if where is None:
            continue
        rx.append(where[0])
        ry.append(where[1])
        rtext.append(_regression_hover(reg, metric))
    if rx:
        traces.append({
            "type": "scatter", "mode": "markers", "name": "Regression detected",
            "x": rx, "y": ry, "text": rtext, "hovertemplate": "%{text}<extra></extra>",
            "marker": {"color": REGRESSION_COLOR, "size": 20, "symbol": "circle-open",
                       "line": {"color": REGRESSION_COLOR, "width": 3}},
        })
    if any_invalid:
        # Legend key for the INVALID crosses (the crosses themselves carry no legend entry per series).
        traces.append({
            "type": "scatter", "mode": "markers", "name": "INVALID run" if metric.mode == "performance"
            else "accuracy targets failed", "x": [None], "y": [None], "hoverinfo": "skip", "marker": INVALID_MARKER,
        })

    if any_implausible:
        traces.append({"type": "scatter", "mode": "markers", "name": "physically implausible (above a hardware limit)",
                       "x": [None], "y": [None], "hoverinfo": "skip", "marker": IMPLAUSIBLE_MARKER})

    return {
        "data": traces,
        "layout": {
            "title": {"text": esc(metric.label), "x": 0.01, "xanchor": "left", "font": {"size": 15}},
            "xaxis": {"type": "date", "gridcolor": "#EEF0F3", "hoverformat": "%Y-%m-%d %H:%M UTC"},
            "yaxis": {"title": {"text": esc(_axis_title(metric))}, "rangemode": "tozero"
                      if metric.mode == "performance" else "normal", "gridcolor": "#EEF0F3",
                      "zerolinecolor": "#D0D5DD"},
            "hovermode": "closest", "hoverlabel": {"align": "left", "bgcolor": "#FFFFFF", "font": {"size": 12}},
            "margin": {"l": 64, "r": 16, "t": 44, "b": 24},
            "legend": {"orientation": "h", "y": -0.14, "yanchor": "top", "font": {"size": 11}},
            "paper_bgcolor": "#FFFFFF", "plot_bgcolor": "#FFFFFF",
            "font": {"family": "Inter, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif", "color": "#344054"},
        },
        "empty": not by_series,
        "metric": metric.name,
    }


def series_colors(results: Iterable) -> dict[tuple[str, str, str], str]:
    """The same series gets the same colour on every chart."""
    keys = sorted({series_key(r) for r in results})
    return {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(keys)}


def trend_figures(results: Sequence, regressions: Sequence) -> list[dict[str, Any]]:
    colors = series_colors(results)
    return [trend_figure(name, results, regressions, colors) for name in TREND_CHARTS]


# ----------------------------------------------------------------------------------------------------------------
# The run table's headline figures


def run_headline(results: Sequence) -> dict[str, Any]:
    """Best throughput (with where it was measured), worst TTFT/TPOT p99, best ROUGE-L of one run's SUT runs."""
    perf = [r for r in results if r.mode == "performance" and r.status == "completed"]
    acc = [r for r in results if r.mode == "accuracy" and r.status == "completed"]

    def best(rows, name, pick: Callable = max):
        rows = [r for r in rows if getattr(r, name) is not None]
        return pick(rows, key=lambda r: getattr(r, name)) if rows else None

    trusted = [r for r in perf if r.valid is not False and r.plausibility != "implausible"]
    top = best(trusted, "tokens_per_second") or best(perf, "tokens_per_second")
    ttft = best(perf, "ttft_p99_ns")
    tpot = best(perf, "tpot_p99_ns")
    rouge = best(acc, "rougeL")
    return {
        "tokens_per_second": top.tokens_per_second if top else None,
        "tokens_per_second_where": series_label(series_key(top)) if top else None,
        "tokens_per_second_valid": top.valid if top else None,
        "tokens_per_second_implausible": top.plausibility == "implausible" if top else None,
        "ttft_p99_ms": METRICS["ttft_p99_ns"].display(ttft.ttft_p99_ns) if ttft else None,
        "tpot_p99_ms": METRICS["tpot_p99_ns"].display(tpot.tpot_p99_ns) if tpot else None,
        "rougeL": rouge.rougeL if rouge else None,
        "accuracy_passed": rouge.accuracy_passed if rouge else None,
        "versions": versions_text(next((r.versions for r in results if r.versions), None)),
        "config_hashes": sorted({short_hash(r.config_hash) for r in results if r.config_hash}),
    }


def validity_summary(run) -> dict[str, Any]:
    """'valid' when every SUT run completed VALID, 'invalid' when any is INVALID, 'failed' when any failed; the
    flags (implausible, LoadGen errors, compliance) and the headline exactly as the pipeline's verdict stored them."""
    if run.results_total == 0:
        verdict = "empty"
    elif run.results_failed:
        verdict = "failed"
    elif run.results_invalid:
        verdict = "invalid"
    else:
        verdict = "valid"
    return {"verdict": verdict, "valid": run.results_valid, "invalid": run.results_invalid,
            "failed": run.results_failed, "total": run.results_total, "implausible": run.results_implausible,
            "not_submission_grade": run.results_not_submission_grade, "compliance": run.compliance,
            "headline": run.verdict or "verdict unknown (recorded before verdicts were stored)"}


# ----------------------------------------------------------------------------------------------------------------
# Comparing two runs


COMPARED_METRICS = ("tokens_per_second", "samples_per_second", "ttft_p50_ns", "ttft_p99_ns", "tpot_p50_ns",
                    "tpot_p99_ns", "latency_p99_ns", "duration_s", "output_tokens", "rouge1", "rouge2", "rougeL",
                    "rougeLsum", "gen_len", "gen_num")


def change_pct(baseline: float | None, current: float | None) -> float | None:
    """(current - baseline) / baseline in percent; None where it has no meaning (missing or zero baseline)."""
    if baseline is None or current is None:
        return None
    if not (math.isfinite(baseline) and math.isfinite(current)) or baseline == 0:
        return None
    return (current - baseline) / abs(baseline) * 100.0


def judge(metric: Metric, pct: float | None, tolerance_pct: float = 0.5) -> str:
    """'better', 'worse' or 'same' in the metric's own direction; 'neutral' for metrics with no direction."""
    if pct is None or metric.better == "none":
        return "neutral"
    if abs(pct) < tolerance_pct:
        return "same"
    improved = pct > 0 if metric.better == "higher" else pct < 0
    return "better" if improved else "worse"


def _state(row) -> str:
    if row is None:
        return "absent"
    if row.verdict:
        return row.verdict
    if row.status != "completed":
        return row.status
    if row.mode == "performance":
        return {True: "VALID", False: "INVALID"}.get(row.valid, "no verdict")
    return {True: "targets passed", False: "targets failed"}.get(row.accuracy_passed, "targets n/a")


def compare_runs(a_results: Sequence, b_results: Sequence) -> list[dict[str, Any]]:
    """Run B against run A (the baseline), SUT run by SUT run (branch, node, scenario, mode), metric by metric."""
    def index(rows):
        return {(r.branch, r.node, r.scenario, r.mode): r for r in rows}

    a_by, b_by = index(a_results), index(b_results)
    groups = []
    # Page order: scenario, then single before distributed, then node, performance before accuracy.
    for key in sorted(set(a_by) | set(b_by), key=lambda k: (k[2], k[0] != "single", k[1], k[3] != "performance")):
        a, b = a_by.get(key), b_by.get(key)
        mode = key[3]
        # Different settings make a difference no improvement and no regression: say what differs instead.
        comparable = bool(a and b and a.comparability_hash and a.comparability_hash == b.comparability_hash)
        trusted = comparable and all(r.plausibility != "implausible" for r in (a, b))
        rows = []
        for name in COMPARED_METRICS:
            metric = METRICS[name]
            if metric.mode != mode:
                continue
            av = metric.display(getattr(a, name)) if a is not None else None
            bv = metric.display(getattr(b, name)) if b is not None else None
            if av is None and bv is None:
                continue
            pct = change_pct(av, bv)
            rows.append({"metric": name, "label": metric.label, "unit": metric.unit, "digits": metric.digits,
                         "a": av, "b": bv, "change_pct": pct,
                         "judgement": judge(metric, pct) if trusted else "not-comparable"})
        groups.append({
            "branch": key[0], "node": key[1], "scenario": key[2], "mode": mode,
            "a_state": _state(a), "b_state": _state(b),
            "a_config": a.config_hash if a else None, "b_config": b.config_hash if b else None,
            "same_config": comparable,
            "differences": differences(a.comparability or {}, b.comparability or {}) if a and b else [],
            "implausible": [side for side, r in (("A", a), ("B", b)) if r and r.plausibility == "implausible"],
            "metrics": rows,
        })
    return groups
