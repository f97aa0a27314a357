"""The metric catalogue: each figure's label, unit, scale and direction, defined once.

Regression detection (include/analysis/regressions.py) and the Benchmarks page (plugins/) both read this table, so a
metric's direction is never written twice; both compute a change in percent with `change_pct`. Stored values keep LoadGen's units (latencies in ns); `display` converts
to what people read (ms).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

HIGHER, LOWER, NONE = "higher", "lower", "none"      # which direction is better
NS_PER_MS = 1e6


@dataclass(frozen=True)
class Metric:
    name: str                 # the history store's column
    label: str
    unit: str
    scale: float              # displayed = stored / scale
    better: str               # HIGHER | LOWER | NONE
    mode: str                 # "performance" | "accuracy"
    digits: int = 1
    regression_checked: bool = False   # judged by include/analysis/regressions.py against comparable earlier runs

    def display(self, value: float | None) -> float | None:
        if value is None:
            return None
        value = float(value)
        return value / self.scale if math.isfinite(value) else None


def change_pct(current: float | None, baseline: float | None) -> float | None:
    """(current - baseline) / |baseline| in percent: the metric's own change (negative: it went down), as regressions
    and the compare view report it; None where it has no meaning (a missing or non-finite figure, a zero baseline)."""
    if current is None or baseline is None:
        return None
    if not (math.isfinite(current) and math.isfinite(baseline)) or baseline == 0:
        return None
    return (current - baseline) / abs(baseline) * 100.0


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("tokens_per_second", "Output throughput", "tokens/s", 1.0, HIGHER, "performance", 1, True),
    Metric("samples_per_second", "Samples/s", "samples/s", 1.0, HIGHER, "performance", 2, True),
    Metric("ttft_p50_ns", "TTFT p50", "ms", NS_PER_MS, LOWER, "performance"),
    Metric("ttft_p99_ns", "TTFT p99", "ms", NS_PER_MS, LOWER, "performance", 1, True),
    Metric("tpot_p50_ns", "TPOT p50", "ms", NS_PER_MS, LOWER, "performance", 2),
    Metric("tpot_p99_ns", "TPOT p99", "ms", NS_PER_MS, LOWER, "performance", 2, True),
    Metric("latency_p50_ns", "Latency p50", "ms", NS_PER_MS, LOWER, "performance"),
    Metric("latency_p99_ns", "Latency p99", "ms", NS_PER_MS, LOWER, "performance", 1, True),
    Metric("duration_s", "Duration", "s", 1.0, NONE, "performance"),
    Metric("output_tokens", "Output tokens", "tokens", 1.0, NONE, "performance", 0),
    Metric("rouge1", "ROUGE-1", "", 1.0, HIGHER, "accuracy", 3, True),
    Metric("rouge2", "ROUGE-2", "", 1.0, HIGHER, "accuracy", 3, True),
    Metric("rougeL", "ROUGE-L", "", 1.0, HIGHER, "accuracy", 3, True),
    Metric("rougeLsum", "ROUGE-Lsum", "", 1.0, HIGHER, "accuracy", 3, True),
    Metric("gen_len", "gen_len", "chars", 1.0, NONE, "accuracy", 0),
    Metric("gen_num", "gen_num", "samples", 1.0, NONE, "accuracy", 0),
)}
ROUGE_METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
LATENCY_METRICS = tuple(m.name for m in METRICS.values() if m.regression_checked and m.unit == "ms")
