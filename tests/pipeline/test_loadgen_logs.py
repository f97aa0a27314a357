"""include.results.loadgen_logs on the published MLPerf v5.1 logs, on real SUT runs, and on damaged copies of both."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from include.results import loadgen_logs
from include.results.loadgen_logs import DETAIL_LOG, SUMMARY_LOG, LoadGenLogError


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    for path in copy.iterdir():   # the published fixtures are read-only
        path.chmod(0o644)
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_published_offline_headline(published_fixtures: Path) -> None:
    result = loadgen_logs.parse(published_fixtures / "Offline" / "performance" / "run_1")
    assert (result.scenario, result.mode, result.valid) == ("Offline", "PerformanceOnly", True)
    assert result.tokens_per_second == 5777.08
    assert result.samples_per_second == 45.1334
    assert result.invalid_reasons == []
    assert result.latency_ns["p99"] == 888551265173
    assert result.ttft_ns == {} and result.tpot_ns == {}   # Offline has no token latencies
    assert result.settings["min_duration_ms"] == 600_000
    assert result.settings["performance_sample_count"] == 13_368
    assert result.result_samples == 40_104
    assert result.duration_s == pytest.approx(888.565)
    assert result.loadgen_version == "5.1.0 @ a61df8bff1"
    assert result.warnings == [] and result.errors == []


def test_published_server_headline(published_fixtures: Path) -> None:
    result = loadgen_logs.parse(published_fixtures / "Server" / "performance" / "run_1")
    assert (result.scenario, result.mode, result.valid) == ("Server", "PerformanceOnly", True)
    # completed tokens/s, not the detail log's meaningless result_token_throughput (3.88811e-08)
    assert result.tokens_per_second == 5103.99
    assert result.samples_per_second == 39.56
    assert result.ttft_ns["p99"] == 1_911_170_364
    assert set(result.ttft_ns) == {"min", "max", "mean", "p50", "p90", "p95", "p97", "p99", "p99.9"}
    assert result.tpot_ns["p99"] == 25_128_964
    assert result.latency_ns["mean"] == 3_317_798_521
    assert result.settings["target_qps"] == 39.5
    assert result.result_samples == 26_736


@pytest.mark.parametrize("scenario", ["Offline", "Server"])
def test_published_accuracy_mode(published_fixtures: Path, scenario: str) -> None:
    result = loadgen_logs.parse(published_fixtures / scenario / "accuracy")
    assert (result.scenario, result.mode) == (scenario, "AccuracyOnly")
    assert result.valid is None and result.invalid_reasons == []
    assert result.samples_per_second is None and result.tokens_per_second is None


def test_invalid_run_reasons(published_fixtures: Path, tmp_path: Path) -> None:
    run = _copy(published_fixtures / "Server" / "performance" / "run_1", tmp_path)
    _edit(run / SUMMARY_LOG, "Result is : VALID", "Result is : INVALID")
    _edit(run / SUMMARY_LOG, "Min duration satisfied : Yes", "Min duration satisfied : NO")
    _edit(run / DETAIL_LOG, '"result_validity", "value": "VALID"', '"result_validity", "value": "INVALID"')
    _edit(run / DETAIL_LOG, '"result_min_duration_met", "value": true', '"result_min_duration_met", "value": false')
    _edit(run / DETAIL_LOG, '"result_perf_constraints_met", "value": true',
          '"result_perf_constraints_met", "value": false')
    result = loadgen_logs.parse(run)
    assert result.valid is False
    assert result.invalid_reasons == ["min duration not satisfied",
                                      "performance constraints not satisfied (latency targets missed)"]
    assert result.tokens_per_second == 5103.99   # an INVALID run still reports what it measured


def test_sut_offline_performance(sut_runs: dict) -> None:
    result = loadgen_logs.parse(sut_runs[("Offline", "performance")])
    assert (result.scenario, result.mode) == ("Offline", "PerformanceOnly")
    assert result.valid is True, result.invalid_reasons
    assert result.tokens_per_second > 0 and result.samples_per_second > 0
    assert result.settings["min_duration_ms"] == 0
    assert result.result_samples >= 16
    assert result.duration_s > 0
    assert result.errors == []


def test_sut_server_performance(sut_runs: dict) -> None:
    result = loadgen_logs.parse(sut_runs[("Server", "performance")])
    assert (result.scenario, result.mode) == ("Server", "PerformanceOnly")
    assert result.valid in (True, False)
    assert result.valid or result.invalid_reasons
    assert result.tokens_per_second > 0
    assert result.settings["target_qps"] == 4
    assert 0 < result.ttft_ns["p99"] <= result.latency_ns["max"]
    assert result.tpot_ns["p50"] > 0


def test_sut_accuracy_mode(sut_runs: dict) -> None:
    result = loadgen_logs.parse(sut_runs[("Offline", "accuracy")])
    assert (result.scenario, result.mode, result.valid) == ("Offline", "AccuracyOnly", None)


def test_detail_log_cut_mid_line(sut_runs: dict, tmp_path: Path) -> None:
    run = _copy(sut_runs[("Offline", "performance")], tmp_path)
    text = (run / DETAIL_LOG).read_text()
    (run / DETAIL_LOG).write_text(text[: len(text) * 2 // 3])
    with pytest.raises(LoadGenLogError, match=rf"{DETAIL_LOG}: line \d+ is not whole JSON.*truncated"):
        loadgen_logs.parse(run)


def test_detail_log_cut_between_lines(sut_runs: dict, tmp_path: Path) -> None:
    run = _copy(sut_runs[("Offline", "performance")], tmp_path)
    lines = (run / DETAIL_LOG).read_text().splitlines(keepends=True)
    first_result = next(i for i, line in enumerate(lines) if '"key": "power_end"' in line)
    (run / DETAIL_LOG).write_text("".join(lines[:first_result]))
    with pytest.raises(LoadGenLogError, match=rf"{DETAIL_LOG}: missing power_end"):
        loadgen_logs.parse(run)


def test_results_missing_from_detail(published_fixtures: Path, tmp_path: Path) -> None:
    run = _copy(published_fixtures / "Offline" / "performance" / "run_1", tmp_path)
    lines = (run / DETAIL_LOG).read_text().splitlines(keepends=True)
    (run / DETAIL_LOG).write_text("".join(line for line in lines if '"key": "result_' not in line))
    with pytest.raises(LoadGenLogError, match=rf"{DETAIL_LOG}: missing result_validity"):
        loadgen_logs.parse(run)


def test_empty_summary(sut_runs: dict, tmp_path: Path) -> None:
    run = _copy(sut_runs[("Server", "performance")], tmp_path)
    (run / SUMMARY_LOG).write_text("")
    with pytest.raises(LoadGenLogError, match=rf"{SUMMARY_LOG}: empty"):
        loadgen_logs.parse(run)


def test_truncated_summary(sut_runs: dict, tmp_path: Path) -> None:
    run = _copy(sut_runs[("Server", "performance")], tmp_path)
    text = (run / SUMMARY_LOG).read_text()
    (run / SUMMARY_LOG).write_text(text[: len(text) // 2])
    with pytest.raises(LoadGenLogError, match=rf"{SUMMARY_LOG}: no closing"):
        loadgen_logs.parse(run)


def test_foreign_files(sut_runs: dict, tmp_path: Path) -> None:
    run = _copy(sut_runs[("Offline", "performance")], tmp_path)
    shutil.copy(run / "result.json", run / DETAIL_LOG)
    with pytest.raises(LoadGenLogError, match=rf"{DETAIL_LOG}: line 1 is not a ':::MLLOG' record"):
        loadgen_logs.parse(run)
    (run / SUMMARY_LOG).write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(LoadGenLogError, match=rf"{SUMMARY_LOG}: not a LoadGen log"):
        loadgen_logs.parse(run)


def test_missing_summary(sut_runs: dict, tmp_path: Path) -> None:
    run = _copy(sut_runs[("Offline", "performance")], tmp_path)
    (run / SUMMARY_LOG).unlink()
    with pytest.raises(LoadGenLogError, match=rf"{SUMMARY_LOG}: missing"):
        loadgen_logs.parse(run)


def test_files_of_different_runs(published_fixtures: Path, tmp_path: Path) -> None:
    run = _copy(published_fixtures / "Offline" / "performance" / "run_1", tmp_path)
    shutil.copy(published_fixtures / "Server" / "performance" / "run_1" / SUMMARY_LOG, run / SUMMARY_LOG)
    with pytest.raises(LoadGenLogError, match="Scenario is 'Server' but .* says 'Offline'"):
        loadgen_logs.parse(run)


# --- issue #12: Interactive recognised, and the latency limits taken from LoadGen's own log -----------------------
REFERENCE = Path(__file__).resolve().parents[2] / "reference" / "h200"


def test_interactive_recognised_from_the_limits_in_the_log() -> None:
    # A Server-mode LoadGen run (LoadGen calls it "Server") held to 500 ms TTFT / 30 ms TPOT: MLPerf's Interactive
    result = loadgen_logs.parse(REFERENCE / "interactive-fp8-qps30.5" / "single" / "h200-0" / "Interactive"
                                / "performance")
    assert result.scenario == "Server"
    assert result.mlperf_scenario == "Interactive"
    assert (result.ttft_limit_ns, result.tpot_limit_ns) == (500_000_000, 30_000_000)


def test_interactive_limits_come_from_the_log_not_a_table(tmp_path: Path) -> None:
    run = _copy(REFERENCE / "interactive-fp8-qps30.5" / "single" / "h200-0" / "Interactive" / "performance", tmp_path)
    _edit(run / DETAIL_LOG, '"key": "requested_server_ttft_latency", "value": 500000000',
          '"key": "requested_server_ttft_latency", "value": 450000000')
    result = loadgen_logs.parse(run)
    assert result.ttft_limit_ns == 450_000_000 and result.mlperf_scenario == "Interactive"


@pytest.mark.parametrize("phase", [("performance", "run_1"), ("accuracy",)])
def test_published_server_stays_server_with_its_limits(published_fixtures: Path, phase: tuple[str, ...]) -> None:
    result = loadgen_logs.parse(published_fixtures.joinpath("Server", *phase))
    assert (result.scenario, result.mlperf_scenario) == ("Server", "Server")
    assert (result.ttft_limit_ns, result.tpot_limit_ns) == (2_000_000_000, 100_000_000)


def test_reference_server_run_is_server() -> None:
    result = loadgen_logs.parse(REFERENCE / "server-fp8-qps55.62" / "single" / "h200-0" / "Server" / "performance")
    assert (result.mlperf_scenario, result.ttft_limit_ns, result.tpot_limit_ns) == ("Server", 2e9, 1e8)


def test_offline_has_no_latency_limits(published_fixtures: Path) -> None:
    result = loadgen_logs.parse(published_fixtures / "Offline" / "performance" / "run_1")
    assert (result.mlperf_scenario, result.ttft_limit_ns, result.tpot_limit_ns) == ("Offline", None, None)


def test_nonsense_latency_limit_is_refused(published_fixtures: Path, tmp_path: Path) -> None:
    run = _copy(published_fixtures / "Server" / "performance" / "run_1", tmp_path)
    _edit(run / DETAIL_LOG, '"key": "requested_server_tpot_latency", "value": 100000000',
          '"key": "requested_server_tpot_latency", "value": "fast"')
    with pytest.raises(LoadGenLogError, match="requested_server_tpot_latency is 'fast', not a latency limit in ns"):
        loadgen_logs.parse(run)


def test_reference_multiple_conf_error_is_kept(published_fixtures: Path) -> None:
    result = loadgen_logs.parse(REFERENCE / "server-fp8-qps55.62" / "single" / "h200-0" / "Server" / "performance")
    assert any(error.startswith("error_invalid_config: Multiple conf files are used") for error in result.errors)
