"""include.analysis.scaling: aggregate over the common window, flagged efficiencies above 100%, invalid runs named."""
from __future__ import annotations

import pytest

from include.analysis.scaling import scaling_efficiency
from tests.analysis.analysis_factory import make_record


def _pair_of_singles(tps_a: float = 5019.0, tps_b: float = 4950.0):
    return [make_record("gpu-a", tokens_per_second=tps_a), make_record("gpu-b", tokens_per_second=tps_b)]


def test_aggregate_is_tokens_over_window_not_sum_of_rates() -> None:
    # Each node ran its 1,500 samples at its own rate, but node b started 30 s after node a.
    dist = [make_record("gpu-a", branch="distributed", samples=1500, tokens_per_second=5019.0),
            make_record("gpu-b", branch="distributed", samples=1500, tokens_per_second=4950.0, start_offset_s=30.0)]
    [result] = scaling_efficiency(_pair_of_singles() + dist)

    duration_b = 1500 * 128 / 4950.0
    window = 30.0 + duration_b                      # first start (a, t=0) to last end (b)
    tokens = 2 * 1500 * 128
    assert result.window_s == pytest.approx(window, rel=1e-6)
    assert result.aggregate_tokens_per_second == pytest.approx(tokens / window, rel=1e-6)
    assert result.aggregate_samples_per_second == pytest.approx(3000 / window, rel=1e-6)
    sum_of_rates = 5019.0 + 4950.0
    assert result.aggregate_tokens_per_second < 0.8 * sum_of_rates
    assert result.single_sum_tokens_per_second == pytest.approx(9969.0)
    assert result.efficiency == pytest.approx(tokens / window / 9969.0, rel=1e-6)
    assert any("would overstate the aggregate" in f for f in result.flags)
    assert [b.node for b in result.balance] == ["gpu-a", "gpu-b"]
    assert [b.share_of_tokens for b in result.balance] == [0.5, 0.5]
    assert result.balance[1].tokens_per_second == pytest.approx(4950.0, rel=1e-6)


def test_simultaneous_nodes_scale_close_to_linear() -> None:
    dist = [make_record("gpu-a", branch="distributed", samples=3000, tokens_per_second=4968.0),
            make_record("gpu-b", branch="distributed", samples=3000, tokens_per_second=4968.0)]
    [result] = scaling_efficiency(_pair_of_singles() + dist)
    assert result.efficiency == pytest.approx(2 * 4968.0 / 9969.0, rel=1e-6)    # 99.7%
    assert not any("above 100%" in f for f in result.flags)


def test_efficiency_above_100_percent_is_flagged_with_causes() -> None:
    singles = _pair_of_singles(2500.0, 2500.0)
    # distributed runs: half the samples each, much shorter, all at once: looks like 200%
    dist = [make_record("gpu-a", branch="distributed", samples=1500, tokens_per_second=5019.0,
                        loadgen_settings={"min_duration": 60000}),
            make_record("gpu-b", branch="distributed", samples=1500, tokens_per_second=5019.0,
                        loadgen_settings={"min_duration": 60000})]
    [result] = scaling_efficiency(singles + dist)
    assert result.efficiency == pytest.approx(2.0076, rel=1e-3)
    [flag] = [f for f in result.flags if "above 100%" in f]
    assert "efficiency 200.8% above 100%" in flag
    assert "different sample counts: gpu-a completed 1,500 samples in the distributed run vs 3,000 alone" in flag
    assert "different durations" in flag
    assert "min_duration 60000 vs 600000" in flag


def test_invalid_and_failed_runs_are_excluded_and_named() -> None:
    singles = _pair_of_singles() + [make_record("gpu-c"), make_record("gpu-d")]
    dist = [make_record("gpu-a", branch="distributed", samples=1000),
            make_record("gpu-b", branch="distributed", samples=1000),
            make_record("gpu-c", branch="distributed", samples=1000, valid=False,
                        invalid_reasons=["min duration not satisfied"]),
            make_record("gpu-d", branch="distributed", status="failed", error="CUDA error: out of memory")]
    [result] = scaling_efficiency(singles + dist)
    assert result.nodes == ["gpu-a", "gpu-b"]
    assert result.excluded == {"gpu-c": "INVALID: min duration not satisfied",
                               "gpu-d": "failed: CUDA error: out of memory"}
    assert result.aggregate_tokens_per_second is not None
    assert result.single_sum_tokens_per_second == pytest.approx(9969.0)      # c and d are not in the sum
    assert "partial: 2 of 4 shards entered the figure" in result.flags


def test_invalid_single_run_leaves_efficiency_uncomputed() -> None:
    singles = [make_record("gpu-a"), make_record("gpu-b", valid=False, invalid_reasons=["early stopping not met"])]
    dist = [make_record("gpu-a", branch="distributed"), make_record("gpu-b", branch="distributed")]
    [result] = scaling_efficiency(singles + dist)
    assert result.efficiency is None
    assert result.single_sum_tokens_per_second is None
    assert result.excluded == {"gpu-b (single)": "INVALID: early stopping not met"}
    assert "efficiency not computed: no valid single-node result for gpu-b" in result.flags


def _coordinated(tokens_a: int, tokens_b: int, **kwargs):
    endpoints = [{"url": "http://gpu-a:8000/v1", "node": "gpu-a", "samples_completed": tokens_a // 128,
                  "output_tokens": tokens_a},
                 {"url": "http://gpu-b:8000/v1", "node": "gpu-b", "samples_completed": tokens_b // 128,
                  "output_tokens": tokens_b}]
    total = tokens_a + tokens_b
    return make_record("gpu-a+gpu-b", scenario="Server", branch="distributed", label="coordinated",
                       samples=total // 128, output_tokens=total, tokens_per_second=9100.0, endpoints=endpoints,
                       **kwargs)


def test_coordinated_run_balance_from_endpoints() -> None:
    singles = [make_record("gpu-a", scenario="Server", tokens_per_second=4650.0),
               make_record("gpu-b", scenario="Server", tokens_per_second=4600.0)]
    run = _coordinated(3100 * 128, 2900 * 128)
    [result] = scaling_efficiency(singles + [run])
    window = 6000 * 128 / 9100.0
    assert result.nodes == ["gpu-a", "gpu-b"]
    assert result.window_s == pytest.approx(window, rel=1e-6)
    assert result.aggregate_tokens_per_second == pytest.approx(9100.0, rel=1e-6)
    assert result.efficiency == pytest.approx(9100.0 / 9250.0, rel=1e-6)
    shares = {b.node: b for b in result.balance}
    assert shares["gpu-a"].share_of_tokens == pytest.approx(3100 / 6000)
    assert shares["gpu-a"].samples == 3100
    assert shares["gpu-b"].tokens_per_second == pytest.approx(2900 * 128 / window, rel=1e-6)
    assert not any(f.startswith("imbalance") for f in result.flags)


def test_coordinated_imbalance_is_flagged() -> None:
    singles = [make_record("gpu-a", scenario="Server"), make_record("gpu-b", scenario="Server")]
    [result] = scaling_efficiency(singles + [_coordinated(4200 * 128, 1800 * 128)])
    assert "imbalance: gpu-a did 70.0% of the tokens (an even split is 50.0%)" in result.flags


def test_invalid_coordinated_run_gives_no_figure() -> None:
    singles = [make_record("gpu-a", scenario="Server"), make_record("gpu-b", scenario="Server")]
    run = _coordinated(3000 * 128, 3000 * 128, valid=False, invalid_reasons=["performance constraints not satisfied"])
    [result] = scaling_efficiency(singles + [run])
    assert result.efficiency is None and result.aggregate_tokens_per_second is None
    assert result.excluded == {"gpu-a+gpu-b": "INVALID: performance constraints not satisfied"}


def test_no_distributed_runs_and_accuracy_runs_ignored() -> None:
    assert scaling_efficiency([]) == []
    assert scaling_efficiency(_pair_of_singles()) == []
    accuracy_only = [make_record("gpu-a", branch="distributed", mode="accuracy")]
    assert scaling_efficiency(accuracy_only) == []
