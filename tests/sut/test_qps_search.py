"""`search-qps` end to end on the tiny model (real vLLM on the CPU, real LoadGen): probes bisect the interval, each
lasts about --probe-duration-s whatever mlperf.conf asks, and search.json names the highest VALID rate; with
--confirm-duration-s the best probe is retested with equal issue on, stepping down until one holds."""
import json
import math
import re

import jsonschema
import pytest

from conftest import REPO, run_cli

pytestmark = pytest.mark.slow

PROBE_S = 3
SAMPLES = 64


def _logged(out, key):
    match = re.search(r'"key": "%s", "value": ([0-9.]+|true|false)' % key, (out / "mlperf_log_detail.txt").read_text())
    assert match, f"{key} not in {out}/mlperf_log_detail.txt"
    return float({"true": 1, "false": 0}.get(match.group(1), match.group(1)))


def test_search_bisects_with_short_probes_and_reports_the_best_valid_rate(tiny_model, tiny_dataset, tmp_path):
    done = run_cli("search-qps", "--model", tiny_model, "--dataset", tiny_dataset, "--total-sample-count", SAMPLES,
                   "--output-dir", tmp_path, "--node", "test-node", "--range", "Server=1:8", "--probes", 2,
                   "--probe-duration-s", PROBE_S, "--confirm-duration-s", PROBE_S,
                   # mlperf.conf asks 100 queries at least; 1 keeps a confirmation to one pass over the 64 samples
                   "--override", "min_query_count=1",
                   # LoadGen's early stopping needs ~460 queries to vouch for a 99th percentile: no test of a few
                   # seconds could be VALID; at the 90th it needs a few dozen (LoadGen's unit is percent)
                   "--override", "target_latency_percentile=90")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    search = json.loads((tmp_path / "search.json").read_text())
    first, second = search["probes"]
    assert first["target_qps"] == 4.5  # the middle of 1:8; VALID raises the floor, INVALID lowers the ceiling
    assert second["target_qps"] == (6.25 if first["valid"] else 2.75)
    schema = json.loads((REPO / "sut_image" / "mlperf_sut" / "result.schema.json").read_text())
    clocks = []
    for probe in search["probes"]:
        out = tmp_path / "Server" / f"qps-{probe['target_qps']:g}"
        assert probe["output_dir"] == str(out)
        result = json.loads((out / "result.json").read_text())
        jsonschema.validate(result, schema)
        clocks.append(result["process"])
        # mlperf.conf asks 13,368 queries of every llama3.1-8b Server test; a probe asks rate x duration
        assert _logged(out, "effective_min_query_count") == math.ceil(probe["target_qps"] * PROBE_S)
        # ... and LoadGen issues about that many (Poisson arrivals within the duration may add a few), not a
        # multiple of the 64 loaded samples as mlperf.conf's sample_concatenate_permutation would pad it to
        asked = math.ceil(probe["target_qps"] * PROBE_S)
        assert asked <= _logged(out, "result_query_count") <= 2 * asked < SAMPLES
        assert _logged(out, "effective_min_duration_ms") == PROBE_S * 1000
        assert _logged(out, "effective_target_qps") == probe["target_qps"]
        assert _logged(out, "effective_sample_concatenate_permutation") == 0
        summary = (out / "mlperf_log_summary.txt").read_text()
        assert ("Result is : VALID" in summary) == probe["valid"]
        # one engine, several LoadGen tests in one process: none may carry LoadGen's error_invalid_config
        assert "No errors encountered" in summary, out
        assert "error_invalid_config" not in (out / "mlperf_log_detail.txt").read_text(), out
        assert probe["valid"] or probe["invalid_reasons"]
    # one process, one engine: every probe carries the same clock, its stop stamped after the last probe
    assert all(c == clocks[0] for c in clocks) and clocks[0]["stopped_utc"] is not None
    valid = [p for p in search["probes"] if p["valid"]]
    assert search["best"]["Server"] == (max(valid, key=lambda p: p["target_qps"]) if valid else None)
    best = search["best"]["Server"]["target_qps"] if valid else "none in the interval"
    assert f"highest VALID Server target QPS: {best}" in done.stdout

    # confirmations: the VALID probes from the best down, stopping at the first that holds; each one issues whole
    # passes over the loaded samples (equal issue, as MLPerf's llama3.1-8b rules ask), unlike the probes
    confirmations = search["confirmations"]
    assert [c["target_qps"] for c in confirmations] == sorted((p["target_qps"] for p in valid), reverse=True)[
        :len(confirmations)]
    assert all(not c["valid"] for c in confirmations[:-1])
    for confirmation in confirmations:
        out = tmp_path / "Server" / f"confirm-qps-{confirmation['target_qps']:g}"
        assert confirmation["output_dir"] == str(out)
        assert _logged(out, "effective_sample_concatenate_permutation") == 1
        assert "No errors encountered" in (out / "mlperf_log_summary.txt").read_text(), out
        issued = _logged(out, "result_query_count")
        assert issued >= SAMPLES and issued % SAMPLES == 0
    held = [c for c in confirmations if c["valid"]]
    assert search["confirmed"] == {"Server": held[0] if held else None}
    assert f"confirmed by a full-query test: {held[0]['target_qps'] if held else 'none'}" in done.stdout


def test_a_confirmation_that_fails_steps_down_to_the_next_valid_probe(tmp_path, monkeypatch):
    """The step-down rule, with LoadGen's verdicts scripted: on the H200 a 40 s probe passed at 55.98 QPS and the
    full-query test at that rate failed. No engine starts: `measure` writes the summary LoadGen would."""
    import argparse

    from mlperf_sut import qps_search, runner

    verdicts = {("qps", 4.5): True, ("qps", 6.25): True, ("qps", 7.12): False, ("confirm-qps", 6.25): False,
                ("confirm-qps", 4.5): True}
    issued = []

    class Backend:
        def stop(self):
            issued.append("stopped")

    def measure(job, out, scenario, overrides):
        kind, qps = out.name.rpartition("-")[0], float(out.name.rpartition("-")[2])
        issued.append((kind, qps, tuple(overrides)))
        out.mkdir(parents=True)
        (out / "mlperf_log_summary.txt").write_text(
            f"Result is : {'VALID' if verdicts[kind, qps] else 'INVALID'}\n"
            f"  Performance constraints satisfied : {'Yes' if verdicts[kind, qps] else 'NO'}\n"
            "Completed tokens per second: 100.0\n")
        return 0

    monkeypatch.setattr(runner, "prepare",
                        lambda args: argparse.Namespace(backend=Backend(), clock=runner.ProcessClock(), written=[]))
    monkeypatch.setattr(runner, "measure", measure)
    args = argparse.Namespace(range=["Server=1:8"], probes=3, probe_duration_s=3.0, confirm_duration_s=600.0,
                              output_dir=tmp_path)
    assert qps_search.search(args) == 0
    assert [(kind, qps) for kind, qps, _ in issued[:-1]] == [
        ("qps", 4.5), ("qps", 6.25), ("qps", 7.12), ("confirm-qps", 6.25), ("confirm-qps", 4.5)]
    assert issued[-1] == "stopped"
    # a confirmation keeps mlperf.conf's query count and equal issue: it sets the rate and min_duration only
    assert issued[3][2] == ("target_qps=6.25", "min_duration=600000")
    search = json.loads((tmp_path / "search.json").read_text())
    assert search["best"]["Server"]["target_qps"] == 6.25
    assert search["confirmed"]["Server"]["target_qps"] == 4.5
    assert search["confirmations"][0]["invalid_reasons"] == ["Performance constraints satisfied"]
