"""include.reporting.charts: every chart renders to a real PNG, from full, single-node and empty input."""
from __future__ import annotations

from pathlib import Path

import pytest

from include.analysis.scaling import scaling_efficiency
from include.reporting import charts
from tests.analysis.analysis_factory import make_record

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _mixed_records():
    return [
        make_record("gpu-a"), make_record("gpu-b", tokens_per_second=4950.0, samples_per_second=38.7),
        make_record("gpu-c", accelerator="NVIDIA A30", memory_gib=24.0, tokens_per_second=350.0,
                    samples_per_second=2.7, samples=500, valid=False, invalid_reasons=["min duration not satisfied"]),
        make_record("gpu-d", status="failed", error="CUDA error: out of memory"),
        make_record("gpu-a", branch="distributed", samples=1500),
        make_record("gpu-b", branch="distributed", samples=1500, start_offset_s=12.0, tokens_per_second=4950.0),
        make_record("gpu-a", scenario="Server", tokens_per_second=4600.0, samples_per_second=36.0),
        make_record("gpu-b", scenario="Server", tokens_per_second=4500.0, ttft_ms=(300.0, 2300.0), valid=False,
                    invalid_reasons=["performance constraints not satisfied"]),
        make_record("gpu-a", scenario="Interactive", tokens_per_second=3100.0, ttft_ms=(120.0, 450.0),
                    tpot_ms=(12.0, 28.0)),
    ]


def _history():
    return [{"logical_date": f"2026-11-{day:02d}T06:00:00+00:00", "node": node, "scenario": "Offline",
             "branch": "single", "tokens_per_second": base + 7 * day, "valid": day != 20, "run_id": f"r{day}"}
            for day in range(15, 29) for node, base in (("gpu-a", 4900.0), ("gpu-b", 4800.0))]


def _assert_pngs(paths: dict[str, Path], min_bytes: int) -> None:
    assert set(paths) == set(charts.CHART_FILES)
    for name, path in paths.items():
        assert path.name == charts.CHART_FILES[name]
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > min_bytes, (name, len(data))


def test_all_charts_render(tmp_path: Path) -> None:
    records = _mixed_records()
    paths = charts.render_all(records, scaling_efficiency(records), _history(), tmp_path)
    _assert_pngs(paths, 20_000)


def test_charts_render_from_empty_input(tmp_path: Path) -> None:
    _assert_pngs(charts.render_all([], [], [], tmp_path), 5_000)


def test_charts_render_for_a_single_node(tmp_path: Path) -> None:
    records = [make_record("only-node", scenario="Server", tokens_per_second=4600.0)]
    history = [{"logical_date": "2026-11-28T00:00:00Z", "node": "only-node", "scenario": "Server",
                "branch": "single", "tokens_per_second": 4600.0, "valid": True}]
    _assert_pngs(charts.render_all(records, scaling_efficiency(records), history, tmp_path), 5_000)


def test_only_failed_runs_render(tmp_path: Path) -> None:
    records = [make_record("gpu-d", status="failed", error="boom"),
               make_record("gpu-e", branch="distributed", status="failed", error="boom")]
    _assert_pngs(charts.render_all(records, scaling_efficiency(records), [], tmp_path), 5_000)


@pytest.mark.parametrize("record, state", [
    (make_record(), "VALID"), (make_record(valid=False), "INVALID"),
    (make_record(status="failed", error="x"), "FAILED"), (make_record(mode="accuracy"), "COMPLETED"),
])
def test_run_state(record, state) -> None:
    assert charts.run_state(record) == state


def test_latency_limits_come_from_loadgen_where_logged() -> None:
    assert charts.latency_limits_ms(make_record(scenario="Server")) == {"ttft": 2000.0, "tpot": 100.0}
    assert charts.latency_limits_ms(make_record(scenario="Interactive")) == {"ttft": 500.0, "tpot": 30.0}
    logged = make_record(scenario="Server", loadgen_settings={"ttft_latency": 1_500_000_000, "tpot_latency": 80})
    assert charts.latency_limits_ms(logged) == {"ttft": 1500.0, "tpot": 80.0}
    assert charts.latency_limits_ms(make_record(scenario="Offline")) is None
