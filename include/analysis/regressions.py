"""Regression detection over the benchmark history: pure functions, no database, no Airflow.

A change is a regression only when it is BOTH
  1. larger than a threshold against the baseline, the median of comparable earlier runs (robust to one odd run),
     in the metric's bad direction, and
  2. outside the noise of those runs.

The noise test: a one-sided Student-t prediction-interval test. The question is "could this ONE new run have come
from the same distribution as the earlier runs?", so the statistic is

    t = (worse-direction difference from the history mean) / (s * sqrt(1 + 1/n)),   df = n - 1

where s is the history's sample standard deviation. A one-sample t-test of the history mean would ignore that the
current value is itself a single noisy draw and claim significance too readily; Mann-Whitney with one current value
can never reach p < 1/(n+1), i.e. needs 20+ earlier runs for alpha 0.05. With few runs the t distribution's heavy
tails keep the test conservative (df = 2 at the default minimum of 3 runs). History without any spread (e.g. ROUGE
of greedy decoding, which is deterministic) makes every difference significant: the threshold then decides alone.

Metrics and their good directions come from the catalogue (include/analysis/metrics.py, `regression_checked`). INVALID,
failed, missing and physically implausible runs are never a baseline and are never flagged (they are reported as
failures elsewhere); ROUGE of runs with meaningless accuracy (dummy weights) is
ignored; latency percentiles are not judged in the Offline scenario, where every query is issued at once and the
percentiles measure queue position, not service (throughput is Offline's figure).
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scipy import stats

from include.analysis.metrics import HIGHER, LATENCY_METRICS, METRICS as CATALOGUE, ROUGE_METRICS, change_pct
from include.records import Regression, RunRecord

# metric -> its good direction, for the metrics regressions judge (the catalogue's `regression_checked`)
METRICS: dict[str, str] = {m.name: m.better for m in CATALOGUE.values() if m.regression_checked}
TEST_NAME = "one-sided t prediction-interval test"


def _as_row(obj: Any) -> Any:
    """A RunRecord straight from the pipeline is judged on the columns the history store would keep of it."""
    if isinstance(obj, RunRecord):
        from include.history.store import result_columns

        return result_columns(obj)
    return obj


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def usable(row: Any) -> bool:
    """Completed, LoadGen-VALID (accuracy mode: completed; LoadGen judges no validity there) and not physically
    implausible: a figure above a physical limit is neither a baseline nor judged."""
    if _get(row, "status") != "completed" or _get(row, "plausibility") == "implausible":
        return False
    valid = _get(row, "valid")
    return valid is True or (_get(row, "mode") == "accuracy" and valid is None)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def worse_pct(metric: str, current: float, baseline: float) -> float:
    """How much worse, in percent, in the metric's bad direction (negative: better)."""
    change = change_pct(current, baseline)
    return -change if METRICS[metric] == HIGHER else change


def prediction_p_value(metric: str, current: float, history: Sequence[float]) -> float | None:
    """One-sided p-value that `current` is at least this much worse than a new draw from `history` would be."""
    n = len(history)
    if n < 2:
        return None
    mean = statistics.fmean(history)
    worse_delta = (mean - current) if METRICS[metric] == HIGHER else (current - mean)
    sd = statistics.stdev(history)
    if sd == 0.0:
        return 0.0 if worse_delta > 0 else 1.0
    t_stat = worse_delta / (sd * math.sqrt(1.0 + 1.0 / n))
    return float(stats.t.sf(t_stat, df=n - 1))


@dataclass(frozen=True)
class MetricVerdict:
    """What `assess` concluded about one metric, including why nothing was claimed."""

    metric: str
    verdict: str            # 'regression' | 'within noise' | 'below threshold' | 'improved' | 'insufficient history'
    current: float | None
    baseline: float | None
    change_pct: float | None
    p_value: float | None
    history_runs: int
    explanation: str


@dataclass(frozen=True)
class Assessment:
    regressions: list[Regression]
    verdicts: list[MetricVerdict] = field(default_factory=list)
    note: str | None = None          # why no metric was judged at all (current run unusable, ...)


def _comparable(current: Any, row: Any) -> bool:
    """The same comparability key (include/analysis/verdict.py); rows without one are compared on what they do hold."""
    names = ("comparability_hash", "mode") if _get(current, "comparability_hash") else (
        "config_hash", "accelerator", "node", "branch", "scenario", "mode")
    for name in names:
        a, b = _get(current, name), _get(row, name)
        if a is not None and b is not None and a != b:
            return False
    current_run = _get(current, "run_id")
    return current_run is None or _get(row, "run_id") != current_run


def _fmt(metric: str, value: float) -> str:
    if metric.endswith("_ns"):
        return f"{value / 1e6:,.1f} ms"
    return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"


def assess(current: Any, history: Iterable[Any], threshold_pct: float = 5.0, alpha: float = 0.05,
           min_history: int = 3, metrics: Iterable[str] | None = None) -> Assessment:
    """Judge every metric of `current` against comparable earlier runs; say why where nothing can be claimed."""
    if min_history < 2:
        raise ValueError("min_history must be at least 2: the noise of one run cannot be estimated")
    current = _as_row(current)
    history = [_as_row(row) for row in history]
    node, scenario, branch = _get(current, "node"), _get(current, "scenario"), _get(current, "branch")
    if not usable(current):
        return Assessment([], [], note=(
            f"current run is {_get(current, 'status')}, valid={_get(current, 'valid')}: not judged for regressions "
            "(failed and INVALID runs are reported as failures)"))
    baseline_rows = [row for row in history if usable(row) and _comparable(current, row)]
    names = list(metrics) if metrics is not None else list(METRICS)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {sorted(METRICS)}")

    regressions: list[Regression] = []
    verdicts: list[MetricVerdict] = []
    for metric in names:
        value = _number(_get(current, metric))
        if value is None:
            continue
        if metric in LATENCY_METRICS and scenario == "Offline":
            continue
        rows = baseline_rows
        if metric in ROUGE_METRICS:
            if _get(current, "accuracy_meaningful") is False:
                continue
            rows = [r for r in rows if _get(r, "accuracy_meaningful") is not False]
        pairs = [(v, _get(r, "run_id")) for r in rows if (v := _number(_get(r, metric))) is not None]
        values = [v for v, _ in pairs]
        run_ids = [str(r) for _, r in pairs if r is not None]
        if len(values) < min_history:
            verdicts.append(MetricVerdict(metric, "insufficient history", value, None, None, None, len(values),
                                          f"{metric}: {len(values)} comparable earlier valid run(s), need "
                                          f"{min_history}: no regression claimed"))
            continue
        baseline = statistics.median(values)
        if baseline == 0:
            verdicts.append(MetricVerdict(metric, "insufficient history", value, baseline, None, None, len(values),
                                          f"{metric}: baseline is 0, no relative change can be computed"))
            continue
        change = change_pct(value, baseline)
        worse = worse_pct(metric, value, baseline)
        p_value = prediction_p_value(metric, value, values)
        text = (f"{metric} {_fmt(metric, value)} vs median {_fmt(metric, baseline)} of {len(values)} comparable "
                f"earlier runs: {change:+.1f}% ({'higher' if METRICS[metric] == HIGHER else 'lower'} is better; "
                f"threshold {threshold_pct:g}%), p={p_value:.3g} ({TEST_NAME}, alpha {alpha:g})")
        if worse <= 0:
            verdict = "improved" if -worse > threshold_pct else "below threshold"
        elif worse <= threshold_pct:
            verdict = "below threshold"
        elif p_value is None or p_value >= alpha:
            verdict = "within noise"
        else:
            verdict = "regression"
            regressions.append(Regression(
                metric=metric, node=node, scenario=scenario, branch=branch, current=value, baseline=baseline,
                change_pct=change, threshold_pct=threshold_pct, p_value=p_value, baseline_runs=run_ids,
                explanation=f"regression: {text}"))
        verdicts.append(MetricVerdict(metric, verdict, value, baseline, change, p_value, len(values),
                                      f"{verdict}: {text}"))
    return Assessment(regressions, verdicts)
