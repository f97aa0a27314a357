"""Trend series and charts of the Benchmarks page, as pure functions of the history store's rows.

A series is one comparability key (include/analysis/verdict.py): the same settings, hardware, place and scenario. A
change of settings starts a new series, so bf16, FP8 and prefix-cache runs are three lines, never one line with a jump.
Series are grouped by scenario and accelerator; each says its settings in words, and what changed from the series
before it. Every point is drawn with its stored verdict (colour and shape, with a legend key); failed runs are
marks on their date. Published MLPerf results for the same accelerator and scenario are dashed reference lines.

Plotly figures are plain JSON dicts (plotly.js's figure format): the browser receives that JSON either way.
"""
from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from datetime import datetime, timedelta
from typing import Any, Sequence

from include.analysis import accelerators
from include.analysis.metrics import METRICS, ROUGE_METRICS, Metric
from include.analysis.published import best_published
from include.analysis.verdict import differences

# The charts of each (scenario, accelerator) group, in page order; ROUGE-L only where accuracy runs exist.
PERFORMANCE_CHARTS: tuple[str, ...] = ("tokens_per_second", "ttft_p99_ns", "tpot_p99_ns")
ACCURACY_CHART = "rougeL"
# Reference lines per chart: the best published system (per accelerator) of each of the newest rounds that published
# the accelerator and scenario, the newest round's first.
PUBLISHED_ROUNDS_SHOWN = 2

# Colour-blind-safe palette (Okabe-Ito without black/yellow), one colour per series.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#7F7F7F", "#1B9E77", "#6A3D9A")
KEY_COLOR = "#667085"
REGRESSION_COLOR = "#D92D20"
REFERENCE_COLOR = "#475467"
DTYPE_WORDS = {"bfloat16": "BF16", "float16": "FP16", "half": "FP16", "float32": "FP32", "auto": "default dtype"}
PLACE_KEYS = ("scenario", "branch", "node")      # where a series ran: not a change of settings


def esc(value: Any) -> str:
    """Text for Plotly labels: Plotly renders a subset of HTML in hover text, so user data is escaped first."""
    return html.escape("" if value is None else str(value), quote=False)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def when(row) -> datetime:
    """A SUT run's own time: its start in result.json, else its run's own time (never an import's time)."""
    return row.at or row.logical_date


# ----------------------------------------------------------------------------------------------------------------
# Point verdicts: how each stored verdict is drawn


@dataclass(frozen=True)
class PointStyle:
    key: str
    label: str             # the legend's words
    symbol: str            # plotly marker symbol
    color: str | None      # None: the series' colour
    on_line: bool          # joined by the series line (its figure stands) or drawn apart


STYLES = {s.key: s for s in (
    PointStyle("valid", "VALID, MLPerf-compliant", "circle", None, True),
    PointStyle("not-compliant", "VALID, not MLPerf-compliant or compliance unknown (why: hover)", "circle-open",
               None, True),
    PointStyle("not-grade", "not submission-grade: LoadGen logged errors", "diamond-open", "#B54708", True),
    PointStyle("invalid", "INVALID (LoadGen) or accuracy targets failed", "x-thin-open", "#B42318", False),
    PointStyle("implausible", "physically implausible: above a hardware limit", "triangle-up-open", "#7A2E0E",
               False),
    PointStyle("failed", "failed or missing run (on its date, at zero)", "x", "#B42318", False),
)}


def point_style(row, metric: Metric) -> str:
    """The stored verdict of one SUT run as one of STYLES (the verdict itself is never re-derived here)."""
    if row.status != "completed":
        return "failed"
    if row.plausibility == "implausible":
        return "implausible"
    if metric.mode == "accuracy":
        if row.accuracy_passed is False:
            return "invalid"
        return "valid" if row.accuracy_passed and row.accuracy_meaningful is not False else "not-compliant"
    if row.valid is False or row.state == "INVALID":
        return "invalid"
    if row.submission_grade is False:
        return "not-grade"
    return "valid" if row.compliance == "compliant" else "not-compliant"


# ----------------------------------------------------------------------------------------------------------------
# Series: one comparability key each


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def settings_words(key: dict[str, Any] | None) -> str:
    """The settings of a comparability key in words: 'FP8 weights + FP8 KV, max_num_batched_tokens 32,768, vLLM
    0.26.0, 1x H200'."""
    if not key:
        return "settings not recorded (run stored before verdicts)"
    if not any(key.get(k) for k in ("model", "accelerator", "dtype", "quantization")):
        return "settings unknown: the run wrote no result.json"
    weights = f"{key['quantization'].upper()} weights" if key.get("quantization") else (
        f"{DTYPE_WORDS.get(str(key.get('dtype')), str(key.get('dtype') or 'default dtype'))} weights")
    if str(key.get("load_format") or "").lower() == "dummy":
        weights = "dummy " + weights
    parts = [weights + (f" + {str(key['kv_cache_dtype']).upper()} KV"
                        if key.get("kv_cache_dtype") not in (None, "auto") else "")]
    if key.get("prefix_caching"):
        parts.append("prefix caching ON")
    for name in ("max_num_seqs", "max_num_batched_tokens"):
        if key.get(name) is not None:
            parts.append(f"{name} {_n(key[name])}")
    for name, word in (("tensor_parallel_size", "TP"), ("pipeline_parallel_size", "PP")):
        if key.get(name) not in (None, 1):
            parts.append(f"{word} {key[name]}")
    if key.get("server_target_qps") is not None:
        parts.append(f"target {key['server_target_qps']:g} QPS")
    if key.get("backend") not in (None, "vllm"):
        parts.append(f"backend {key['backend']}")
    if key.get("vllm_version"):
        parts.append(f"vLLM {key['vllm_version']}")
    if key.get("accelerator"):
        parts.append(f"{key.get('accelerator_count') or 1}x {accelerator_key(key['accelerator'])}")
    return ", ".join(parts)


def engine_args_words(key: dict[str, Any] | None) -> str:
    """The other engine arguments of a key (memory share, model length, compilation...), for the small print."""
    return ", ".join(f"{k} {v}" for k, v in sorted(((key or {}).get("engine_args") or {}).items()))


def accelerator_key(name: str | None) -> str:
    """Our key for an accelerator name ("NVIDIA H200" -> "H200"), as the published results are keyed."""
    if not name:
        return "unknown accelerator"
    known = accelerators.lookup(name)
    return known.key if known else name


@dataclass
class Series:
    key_hash: str
    key: dict[str, Any] | None
    scenario: str
    branch: str
    node: str
    mode: str
    accelerator: str
    rows: list = field(default_factory=list)     # oldest first
    color: str = PALETTE[0]
    number: int = 0                              # S1, S2... in page order
    changed: list[str] = field(default_factory=list)   # settings changed from the series before it, same place
    previous: str | None = None                  # that series' name

    @property
    def name(self) -> str:
        return f"S{self.number}"

    @cached_property
    def settings(self) -> str:
        return settings_words(self.key)

    @cached_property
    def engine_args(self) -> str:
        return engine_args_words(self.key)

    @property
    def label(self) -> str:
        """The legend's name; the settings are in the series table beside the chart and in every point's hover."""
        return f"{self.name} · {self.node}"

    @property
    def first(self) -> datetime:
        return when(self.rows[0])

    @property
    def last(self) -> datetime:
        return when(self.rows[-1])


@dataclass
class Group:
    scenario: str
    accelerator: str
    series: list[Series]
    failed: list                                  # failed / missing SUT runs of this scenario, on their dates
    figures: list[dict[str, Any]] = field(default_factory=list)
    hover: dict[int, str] = field(default_factory=dict)   # each row's chart-independent hover lines
    references: list[str] = field(default_factory=list)   # the published results drawn as reference lines

    @property
    def title(self) -> str:
        return f"{self.scenario} · {self.accelerator}"


def _series_id(row) -> str:
    """The comparability key (which leaves the mode out: a performance and an accuracy run are two series)."""
    key = row.comparability_hash or f"{row.scenario}/{row.branch}/{row.node}/{row.config_hash or 'unknown'}"
    return f"{key}/{row.mode}"


def build_groups(results: Sequence, regressions: Sequence = (), published: Sequence = ()) -> list[Group]:
    """The page's trend groups: series by comparability key, grouped by (scenario, accelerator), with figures.
    A key is read from any row that carries it (the store's trend rows carry it on one row per key)."""
    keys = {r.comparability_hash: r.comparability for r in results if r.comparability is not None}
    by_id: dict[str, Series] = {}
    failed: dict[str, list] = defaultdict(list)
    for row in sorted(results, key=lambda r: (when(r), r.run_id)):
        if row.status != "completed":
            failed[row.scenario].append(row)
            continue
        sid = _series_id(row)
        if sid not in by_id:
            key = row.comparability if row.comparability is not None else keys.get(row.comparability_hash)
            by_id[sid] = Series(row.comparability_hash or sid, key, row.scenario, row.branch, row.node,
                                row.mode, accelerator_key(row.accelerator))
        by_id[sid].rows.append(row)

    grouped: dict[tuple[str, str], list[Series]] = defaultdict(list)
    for series in by_id.values():
        grouped[(series.scenario, series.accelerator)].append(series)
    groups: list[Group] = []
    number = 0
    for (scenario, accel) in sorted(grouped):
        # One place after the other (performance first), each place's series in time order: a change of settings
        # is the series after the one before it at the same place.
        members = sorted(grouped[(scenario, accel)], key=lambda s: (s.mode != "performance", s.branch != "single",
                                                                     s.node, s.first))
        for i, series in enumerate(members):
            number += 1
            series.number, series.color = number, PALETTE[(number - 1) % len(PALETTE)]
            before = members[i - 1] if i else None
            if before and (before.branch, before.node, before.mode) == (series.branch, series.node, series.mode):
                series.previous = before.name
                if series.key and before.key:
                    series.changed = [d for d in differences(before.key, series.key)
                                      if d.split(":")[0] not in PLACE_KEYS]
        groups.append(Group(scenario, accel, members, []))
    # A failed run has no settings of its own to match (no result.json): it is shown in every group of its scenario.
    for group in groups:
        group.failed = failed.get(group.scenario, [])
        names = PERFORMANCE_CHARTS + ((ACCURACY_CHART,) if any(
            r.mode == "accuracy" for s in group.series for r in s.rows) else ())
        refs = best_published(published, group.accelerator, group.scenario, PUBLISHED_ROUNDS_SHOWN)
        group.references = [p.label for p in refs]
        group.figures = [trend_figure(name, group, regressions, refs) for name in names]
    return groups


# ----------------------------------------------------------------------------------------------------------------
# Figures


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if digits == 0 else f"{value:,.{digits}f}"


def _hover_base(row, series: Series | None) -> str:
    """The lines of a point's hover that do not depend on the chart (one per row and build, shared by its charts)."""
    lines = [f"run: {esc(row.run_id)}", f"ran: {esc(when(row).strftime('%Y-%m-%d %H:%M UTC'))}",
             f"{esc(row.scenario)} · {esc(row.branch)} · {esc(row.node)}"]
    if series is not None:
        lines.append(f"{esc(series.name)}: {esc(series.settings)}")
    lines.append(f"verdict: {esc(row.verdict or row.error or 'not recorded')}")
    return "<br>".join(lines)


@lru_cache(maxsize=None)
def _metric_words(metric: Metric) -> tuple[str, str]:
    """A metric's label and unit, escaped once per chart rather than once per point."""
    return esc(metric.label), esc(f" {metric.unit}" if metric.unit else "")


def _hover(row, series: Series | None, metric: Metric, value: float | None, base: dict[int, str]) -> str:
    # fmt() writes only digits, separators and a dash: nothing to escape in a figure.
    if value is not None:
        label, unit = _metric_words(metric)
        head = f"<b>{label}: {fmt(value, metric.digits)}{unit}</b>"
    else:
        head = f"<b>{esc(row.status.upper())}</b>"
    if metric.mode == "accuracy" and value is not None:
        head += "<br>ROUGE-1/2/L/Lsum: " + " / ".join(fmt(getattr(row, m), 2) for m in ROUGE_METRICS)
    if id(row) not in base:
        base[id(row)] = _hover_base(row, series)
    return f"{head}<br>{base[id(row)]}"


def _marker(style: PointStyle, color: str, size: int = 9) -> dict[str, Any]:
    color = style.color or color
    return {"color": color, "size": size, "symbol": style.symbol, "line": {"color": color, "width": 2}}


def _regression_hover(reg) -> str:
    metric = METRICS.get(reg.metric)
    label = metric.label if metric else reg.metric
    p = "—" if reg.p_value is None else f"{reg.p_value:.3g}"
    return "<br>".join([
        f"<b>Regression: {esc(label)} {esc(f'{reg.change_pct:+.1f}')}%</b>", f"run: {esc(reg.run_id)}",
        f"current {esc(fmt(metric.display(reg.current) if metric else reg.current, 2))} vs baseline "
        f"{esc(fmt(metric.display(reg.baseline) if metric else reg.baseline, 2))} (threshold "
        f"{esc(f'{reg.threshold_pct:.1f}')}%, p={esc(p)})", esc(reg.explanation)])


def _x_range(moments: list[datetime]) -> list[str] | None:
    """A padded range when the points span less than two days: Plotly would otherwise tick in sub-seconds."""
    if not moments:
        return None
    first, last = min(moments), max(moments)
    if last - first >= timedelta(days=2):
        return None
    middle = first + (last - first) / 2
    return [iso(middle - timedelta(days=1)), iso(middle + timedelta(days=1))]


def _y_range(values: list[float], metric: Metric, floor_zero: bool) -> list[float] | None:
    if floor_zero or not values:
        return None
    low, high = min(values), max(values)
    pad = max((high - low) * 0.15, abs(high) * 0.05, 0.5)
    return [low - pad, high + pad]


def trend_figure(metric_name: str, group: Group, regressions: Sequence = (),
                 references: Sequence = ()) -> dict[str, Any]:
    """One chart of one (scenario, accelerator) group: a line per series, every point in its verdict's style, and
    the published `references` (include/analysis/published.py's best_published) as dashed lines on the throughput
    chart."""
    metric = METRICS[metric_name]
    traces: list[dict[str, Any]] = []
    styles_seen: set[str] = set()
    point_at: dict[tuple[str, str, str, str], tuple[str, float]] = {}
    moments: list[datetime] = []
    values: list[float] = []
    for series in group.series:
        # Each point once: (row, its verdict's style, its displayed value, its time).
        points = []
        for r in series.rows:
            value = metric.display(getattr(r, metric.name)) if r.mode == metric.mode else None
            if value is not None:
                points.append((r, STYLES[point_style(r, metric)], value, when(r)))
        if not points:
            continue
        on_line = [p for p in points if p[1].on_line]
        apart: dict[str, list] = defaultdict(list)
        for point in points:
            r, style, value, moment = point
            styles_seen.add(style.key)
            if not style.on_line:
                apart[style.key].append(point)
            point_at[(r.run_id, r.branch, r.node, r.scenario)] = (iso(moment), value)
            moments.append(moment)
            values.append(value)
        colors = [style.color or series.color for _, style, _, _ in on_line]
        traces.append({
            "type": "scatter", "mode": "lines+markers", "name": esc(series.label), "legendgroup": series.name,
            "x": [iso(moment) for *_, moment in on_line], "y": [value for _, _, value, _ in on_line],
            "text": [_hover(r, series, metric, value, group.hover) for r, _, value, _ in on_line],
            "customdata": [r.run_id for r, *_ in on_line], "hovertemplate": "%{text}<extra></extra>",
            "line": {"color": series.color, "width": 2},
            "marker": {"size": 9, "symbol": [style.symbol for _, style, _, _ in on_line], "color": colors,
                       "line": {"color": list(colors), "width": 2}},
        })
        for style, marked in apart.items():
            traces.append({
                "type": "scatter", "mode": "markers", "name": esc(f"{series.name} {STYLES[style].label}"),
                "legendgroup": series.name, "showlegend": False, "x": [iso(moment) for *_, moment in marked],
                "y": [value for _, _, value, _ in marked],
                "text": [_hover(r, series, metric, value, group.hover) for r, _, value, _ in marked],
                "customdata": [r.run_id for r, *_ in marked], "hovertemplate": "%{text}<extra></extra>",
                "marker": _marker(STYLES[style], series.color, 12), "meta": style,
            })
    failed = [r for r in group.failed if r.mode == metric.mode] if metric.mode == "performance" else []
    if failed and traces:
        styles_seen.add("failed")
        moments.extend(when(r) for r in failed)
        traces.append({
            "type": "scatter", "mode": "markers", "name": "failed runs", "showlegend": False,
            "x": [iso(when(r)) for r in failed], "y": [0] * len(failed),
            "text": [_hover(r, None, metric, None, group.hover) for r in failed],
            "customdata": [r.run_id for r in failed],
            "hovertemplate": "%{text}<extra></extra>", "marker": _marker(STYLES["failed"], KEY_COLOR, 11),
            "meta": "failed",
        })
    rx, ry, rtext = [], [], []
    for reg in regressions:
        same_chart = reg.metric == metric.name or (
            metric.name == ACCURACY_CHART and reg.metric in ROUGE_METRICS + ("gen_len", "gen_num"))
        where = point_at.get((reg.run_id, reg.branch, reg.node, reg.scenario)) if same_chart else None
        if where is not None:
            rx.append(where[0])
            ry.append(where[1])
            rtext.append(_regression_hover(reg))
    if rx:
        traces.append({"type": "scatter", "mode": "markers", "name": "regression detected", "x": rx, "y": ry,
                       "text": rtext, "hovertemplate": "%{text}<extra></extra>",
                       "marker": {"color": REGRESSION_COLOR, "size": 22, "symbol": "circle-open",
                                  "line": {"color": REGRESSION_COLOR, "width": 3}}})
    x_range = _x_range(moments)
    if metric.name == "tokens_per_second" and traces:
        traces.extend(_reference_lines(references, moments, x_range))
    # Legend keys for the verdicts present (grey: the shape is the verdict, the colour is the series).
    for key in STYLES:
        if key in styles_seen and key != "valid":
            traces.append({"type": "scatter", "mode": "markers", "name": STYLES[key].label, "x": [None],
                           "y": [None], "hoverinfo": "skip", "marker": _marker(STYLES[key], KEY_COLOR),
                           "meta": f"key:{key}"})
    performance = metric.mode == "performance"
    xaxis: dict[str, Any] = {"type": "date", "gridcolor": "#EEF0F3", "hoverformat": "%Y-%m-%d %H:%M UTC",
                             "tickformat": "%b %-d\n%H:%M" if x_range else "%b %-d"}
    if x_range:
        xaxis["range"] = x_range
    yaxis: dict[str, Any] = {"title": {"text": esc(f"{metric.label} ({metric.unit})" if metric.unit else metric.label)},
                             "rangemode": "tozero" if performance else "normal", "gridcolor": "#EEF0F3",
                             "zerolinecolor": "#D0D5DD"}
    y_range = _y_range(values, metric, performance)
    if y_range:
        yaxis["range"] = y_range
    return {
        "data": traces,
        "layout": {
            "title": {"text": esc(metric.label), "x": 0.01, "xanchor": "left", "font": {"size": 14}},
            "xaxis": xaxis, "yaxis": yaxis, "hovermode": "closest",
            "hoverlabel": {"align": "left", "bgcolor": "#FFFFFF", "font": {"size": 12}},
            "margin": {"l": 64, "r": 16, "t": 40, "b": 24},
            "legend": {"orientation": "h", "y": -0.18, "yanchor": "top", "font": {"size": 11}},
            "paper_bgcolor": "#FFFFFF", "plot_bgcolor": "#FFFFFF",
            "font": {"family": "Inter, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif", "color": "#344054"},
        },
        "empty": not values,
        "metric": metric.name,
    }


def _reference_lines(references: Sequence, moments: list[datetime], x_range: list[str] | None) -> list[dict]:
    if not moments:
        return []
    x = x_range or [iso(min(moments)), iso(max(moments))]
    return [{
        "type": "scatter", "mode": "lines", "name": esc(p.label), "x": x, "y": [p.tokens_per_s_per_accelerator] * 2,
        "line": {"color": REFERENCE_COLOR, "width": 1.5, "dash": "dash"}, "hovertemplate": esc(
            f"{p.label}<br>{p.submitter}: {p.system}<br>source: {p.source_url}") + "<extra>published</extra>",
        "meta": "published",
    } for p in references]
