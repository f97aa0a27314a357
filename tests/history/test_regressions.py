"""include/analysis/regressions.py on synthetic data: threshold AND noise, each metric in its direction, step
detection."""
from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, replace

import pytest
from scipy import stats

from include.analysis.regressions import METRICS, assess, prediction_p_value


@dataclass(frozen=True)
class Row:
    """A ResultRow-like object with just what detect() reads."""

    run_id: str = "current"
    node: str = "gpu-node-0"
    scenario: str = "Server"
    branch: str = "single"
    mode: str = "performance"
    status: str = "completed"
    valid: bool | None = True
    config_hash: str = "a" * 64
    accelerator: str = "NVIDIA H200"
    accuracy_meaningful: bool | None = True
    tokens_per_second: float | None = None
    samples_per_second: float | None = None
    ttft_p99_ns: float | None = None
    tpot_p99_ns: float | None = None
    latency_p99_ns: float | None = None
    rouge1: float | None = None
    rouge2: float | None = None
    rougeL: float | None = None
    rougeLsum: float | None = None
    comparability_hash: str | None = None
    plausibility: str | None = None


def detect(current, history, **options):
    return assess(current, history, **options).regressions


def history(metric: str, values: list[float], **overrides) -> list[Row]:
    return [Row(run_id=f"h{i}", **{metric: v}, **overrides) for i, v in enumerate(values)]


TIGHT = [5000, 5020, 4990, 5010, 4985, 5005]          # ~0.3% noise
NOISY = [5000, 4300, 5600, 4700, 5400, 4500, 5800]    # ~11% noise


def test_throughput_drop_beyond_threshold_and_noise_is_a_regression():
    [found] = detect(Row(tokens_per_second=4500), history("tokens_per_second", TIGHT))
    assert found.metric == "tokens_per_second" and found.current == 4500
    assert found.baseline == statistics.median(TIGHT)
    assert found.change_pct == pytest.approx((4500 - 5002.5) / 5002.5 * 100)
    assert found.change_pct < -5 and found.p_value < 0.001
    assert found.baseline_runs == [f"h{i}" for i in range(6)]
    assert (found.node, found.scenario, found.branch, found.threshold_pct) == ("gpu-node-0", "Server", "single", 5.0)
    assert "tokens_per_second" in found.explanation and "-10.0%" in found.explanation


def test_drop_within_the_noise_of_earlier_runs_is_not_claimed():
    result = assess(Row(tokens_per_second=4400), history("tokens_per_second", NOISY))
    assert result.regressions == []
    [verdict] = result.verdicts
    assert verdict.verdict == "within noise" and verdict.change_pct < -5 and verdict.p_value > 0.05


def test_drop_below_the_threshold_is_not_claimed_even_when_significant():
    result = assess(Row(tokens_per_second=4900), history("tokens_per_second", TIGHT))
    assert result.regressions == [] and result.verdicts[0].verdict == "below threshold"
    assert result.verdicts[0].p_value < 0.05   # significant, but only -2%


def test_improvements_are_not_regressions():
    earlier = [replace(r, ttft_p99_ns=1.5e9 + i * 1e6) for i, r in enumerate(history("tokens_per_second", TIGHT))]
    result = assess(Row(tokens_per_second=6000, ttft_p99_ns=1.0e9), earlier)
    assert result.regressions == []
    assert {v.metric: v.verdict for v in result.verdicts} == {"tokens_per_second": "improved",
                                                              "ttft_p99_ns": "improved"}


@pytest.mark.parametrize("metric", ["ttft_p99_ns", "tpot_p99_ns", "latency_p99_ns"])
def test_latency_is_worse_when_higher(metric):
    base = [1.50e9, 1.51e9, 1.49e9, 1.505e9, 1.495e9]
    [found] = detect(Row(**{metric: 1.8e9}), history(metric, base))
    assert found.metric == metric and found.change_pct == pytest.approx(20.0)
    assert detect(Row(**{metric: 1.2e9}), history(metric, base)) == []


@pytest.mark.parametrize("metric", ["rouge1", "rouge2", "rougeL", "rougeLsum"])
def test_rouge_is_worse_when_lower(metric):
    # greedy decoding is deterministic: no spread at all, the threshold decides alone
    base = [24.5] * 4
    [found] = detect(Row(mode="accuracy", valid=None, **{metric: 22.0}), history(metric, base, mode="accuracy",
                                                                                   valid=None))
    assert found.metric == metric and found.p_value == 0.0 and found.change_pct == pytest.approx(-10.204, abs=1e-3)
    assert detect(Row(mode="accuracy", valid=None, **{metric: 24.5}),
                  history(metric, base, mode="accuracy", valid=None)) == []


def test_every_metric_has_a_direction():
    assert {m for m, d in METRICS.items() if d == "higher"} == {
        "tokens_per_second", "samples_per_second", "rouge1", "rouge2", "rougeL", "rougeLsum"}
    assert {m for m, d in METRICS.items() if d == "lower"} == {"ttft_p99_ns", "tpot_p99_ns", "latency_p99_ns"}


def test_too_little_history_claims_nothing_and_says_so():
    result = assess(Row(tokens_per_second=1000), history("tokens_per_second", [5000, 5001]))
    assert result.regressions == []
    [verdict] = result.verdicts
    assert verdict.verdict == "insufficient history" and verdict.history_runs == 2
    assert "need 3" in verdict.explanation and "no regression claimed" in verdict.explanation
    assert detect(Row(tokens_per_second=1000), history("tokens_per_second", [5000, 5001]), min_history=2)


def test_invalid_and_failed_runs_are_never_a_baseline():
    low_but_unusable = (history("tokens_per_second", [3000, 3000, 3000], valid=False)
                        + history("tokens_per_second", [3000, 3000], status="failed")
                        + history("tokens_per_second", [3000], status="missing"))
    good = history("tokens_per_second", [5000, 5010])
    result = assess(Row(tokens_per_second=4000), low_but_unusable + good)
    assert result.regressions == [] and result.verdicts[0].history_runs == 2


@pytest.mark.parametrize("current", [Row(tokens_per_second=100, valid=False), Row(tokens_per_second=100,
                                     status="failed"), Row(tokens_per_second=100, status="missing")])
def test_invalid_or_failed_current_run_is_not_flagged(current):
    result = assess(current, history("tokens_per_second", TIGHT))
    assert result.regressions == [] and result.verdicts == []
    assert "not judged" in result.note


def test_only_comparable_history_counts():
    other = (history("tokens_per_second", [9000] * 5, config_hash="b" * 64)
             + history("tokens_per_second", [9000] * 5, accelerator="NVIDIA A30")
             + history("tokens_per_second", [9000] * 5, node="gpu-node-1")
             + [Row(run_id="current", tokens_per_second=9000)] * 5)
    assert assess(Row(tokens_per_second=5000), other).verdicts[0].verdict == "insufficient history"


def test_offline_latency_percentiles_are_not_judged():
    rows = [Row(scenario="Offline", tokens_per_second=5000 + i, ttft_p99_ns=6.0e11 + i) for i in range(5)]
    result = assess(Row(scenario="Offline", tokens_per_second=5000, ttft_p99_ns=9.0e11), rows)
    assert [v.metric for v in result.verdicts] == ["tokens_per_second"] and result.regressions == []


def test_meaningless_rouge_is_ignored():
    rows = history("rougeL", [24.5] * 4, mode="accuracy", valid=None)
    assert detect(Row(mode="accuracy", valid=None, rougeL=1.0, accuracy_meaningful=False), rows) == []
    dummy_history = history("rougeL", [1.0] * 4, mode="accuracy", valid=None, accuracy_meaningful=False)
    assert assess(Row(mode="accuracy", valid=None, rougeL=0.5), dummy_history).verdicts[0].verdict == \
        "insufficient history"


def test_dicts_work_as_rows():
    rows = [{"run_id": f"h{i}", "status": "completed", "valid": True, "mode": "performance",
             "tokens_per_second": v} for i, v in enumerate(TIGHT)]
    current = {"node": "n", "scenario": "Server", "branch": "single", "status": "completed", "valid": True,
               "mode": "performance", "tokens_per_second": 4000.0}
    assert [r.metric for r in detect(current, rows)] == ["tokens_per_second"]


def test_run_records_from_the_pipeline_are_judged_too():
    from tests.history.factory import record

    earlier = [record(tokens_per_second=v) for v in TIGHT]
    found = detect(record(tokens_per_second=4000), earlier)
    assert {r.metric for r in found} == {"tokens_per_second", "samples_per_second"}   # Offline: no latency
    assert detect(record(tokens_per_second=4000, valid=False), earlier) == []


def test_prediction_p_value_is_the_t_prediction_interval():
    values = [100.0, 102.0, 98.0, 101.0, 99.0]
    mean, sd, n = statistics.fmean(values), statistics.stdev(values), len(values)
    t_stat = (mean - 95.0) / (sd * (1 + 1 / n) ** 0.5)
    assert prediction_p_value("tokens_per_second", 95.0, values) == pytest.approx(stats.t.sf(t_stat, n - 1))
    assert prediction_p_value("ttft_p99_ns", 95.0, values) == pytest.approx(stats.t.sf(-t_stat, n - 1))
    assert prediction_p_value("tokens_per_second", 95.0, [100.0]) is None


@pytest.mark.parametrize(("noise_pct", "max_rate"), [(1.0, 0.0), (3.0, 0.07), (10.0, 0.07)])
def test_false_alarm_rate_on_noise(noise_pct, max_rate):
    """Runs drawn from the history's own distribution. Quiet benchmarks (1%): the threshold alone already holds;
    noisy ones (3%, 10%): the threshold alone would flag 5% and 31% of runs, the noise test keeps it near alpha."""
    rng = random.Random(7)
    alarms = 0
    for _ in range(300):
        values = [rng.gauss(5000, 50 * noise_pct) for _ in range(8)]
        alarms += bool(detect(Row(tokens_per_second=rng.gauss(5000, 50 * noise_pct)),
                              [Row(run_id=f"h{i}", tokens_per_second=v) for i, v in enumerate(values)]))
    assert alarms / 300 <= max_rate


def test_physically_implausible_runs_are_neither_baseline_nor_judged():
    base = history("tokens_per_second", TIGHT)
    implausible = [replace(r, plausibility="implausible", tokens_per_second=21000) for r in base]
    assert detect(Row(tokens_per_second=4500), implausible) == []     # no baseline left: nothing claimed
    assert detect(Row(tokens_per_second=100, plausibility="implausible"), base) == []


def test_history_of_other_settings_is_not_a_baseline():
    """Runs of another comparability key (say bf16 against FP8) never judge each other."""
    fp8 = Row(tokens_per_second=4500, comparability_hash="fp8")
    assert detect(fp8, history("tokens_per_second", TIGHT, comparability_hash="bf16")) == []
    assert [g.metric for g in detect(fp8, history("tokens_per_second", TIGHT, comparability_hash="fp8"))] == [
        "tokens_per_second"]
