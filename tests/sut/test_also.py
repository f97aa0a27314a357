"""`run --also`: one engine runs every test of a scenario (the plan's one SUT process per node and scenario).

Real vLLM on the CPU with the tiny model: one process runs Offline performance, then accuracy, then TEST06, each
into its own directory; a bad --also is refused before the engine starts.
"""
import json
import time

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow

SAMPLES = 16
# vLLM logs this once per engine it builds (LLM and AsyncLLM alike).
ENGINE_START_LINE = "Initializing a V1 LLM engine"


@pytest.fixture(scope="module")
def three_tests(tiny_model, tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("also")
    outs = {name: root / "Offline" / name for name in ("performance", "accuracy", "TEST06")}
    done = run_cli("run", "--scenario", "Offline", "--mode", "performance", "--model", tiny_model,
                   "--dataset", tiny_dataset, "--total-sample-count", SAMPLES, "--node", "test-node",
                   "--output-dir", outs["performance"], "--also", f"accuracy={outs['accuracy']}",
                   "--also", f"TEST06={outs['TEST06']}",
                   "--override", "min_duration=0", "--override", f"min_query_count={SAMPLES}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return outs, done


def _result(out):
    return json.loads((out / "result.json").read_text())


def test_each_test_has_its_own_logs_and_result_from_one_process(three_tests):
    outs, _ = three_tests
    results = {name: _result(out) for name, out in outs.items()}
    assert {name: (r["scenario"], r["mode"], r["status"]) for name, r in results.items()} == {
        "performance": ("Offline", "performance", "completed"), "accuracy": ("Offline", "accuracy", "completed"),
        "TEST06": ("Offline", "performance", "completed")}
    for out in outs.values():
        assert (out / "mlperf_log_summary.txt").is_file() and (out / "mlperf_log_detail.txt").is_file()
        # the later tests of a process must not carry LoadGen's "Multiple conf files" error (error_invalid_config):
        # it makes a run not submission-grade
        assert "error_invalid_config" not in (out / "mlperf_log_detail.txt").read_text(), out
        if out.name != "accuracy":        # an accuracy run's summary has no "errors" line to read
            assert "No errors encountered" in (out / "mlperf_log_summary.txt").read_text(), out
    # one process, one engine: the same clock in every result.json, stopped after the last test
    clocks = [r["process"] for r in results.values()]
    assert len({c["id"] for c in clocks}) == 1 and len({c["engine_ready_utc"] for c in clocks}) == 1
    assert len({c["stopped_utc"] for c in clocks}) == 1 and clocks[0]["stopped_utc"] is not None
    timings = [results[name]["timing"] for name in ("performance", "accuracy", "TEST06")]
    assert clocks[0]["engine_ready_utc"] <= timings[0]["start_utc"]
    assert timings[0]["end_utc"] <= timings[1]["start_utc"] and timings[1]["end_utc"] <= timings[2]["start_utc"]
    assert timings[2]["end_utc"] <= clocks[0]["stopped_utc"]
    # the clock rewritten at the stop lists every test of the process, in order, with each result.json's timing:
    # the GPU time budget counts them from here (the pipeline reads the TEST06 folder's result.json no other way)
    listed = clocks[0]["tests"]
    assert [(t["name"], t["scenario"], t["output_dir"], t["status"]) for t in listed] == [
        (name, "Offline", str(outs[name]), "completed") for name in ("performance", "accuracy", "TEST06")]
    assert [{k: t[k] for k in ("start_utc", "end_utc", "duration_s")} for t in listed] == timings
    assert all(c["tests"] == listed for c in clocks)


def test_the_accuracy_test_logs_every_sample(three_tests):
    outs, _ = three_tests
    entries = json.loads((outs["accuracy"] / "mlperf_log_accuracy.json").read_text())
    assert sorted({e["qsl_idx"] for e in entries}) == list(range(SAMPLES))


def test_only_the_compliance_test_has_an_audit_config(three_tests):
    outs, _ = three_tests
    assert "accuracy_log_sampling_target" in (outs["TEST06"] / "audit.config").read_text()
    assert not (outs["performance"] / "audit.config").exists() and not (outs["accuracy"] / "audit.config").exists()
    # LoadGen applied it: the compliance run logged sampled responses, the plain performance run none
    assert json.loads((outs["TEST06"] / "mlperf_log_accuracy.json").read_text())
    assert json.loads((outs["performance"] / "mlperf_log_accuracy.json").read_text()) == []


def test_the_engine_started_once(three_tests):
    _, done = three_tests
    output = done.stdout + done.stderr
    assert output.count(ENGINE_START_LINE) == 1, output[-4000:]
    assert output.count("result: ") == 3


@pytest.mark.parametrize("also, expected", [
    (["TEST07=OUT"], "--also 'TEST07="),
    (["accuracy"], "expected TEST=OUTPUT_DIR"),
    (["accuracy=MAIN"], "already the output of --output-dir"),
    (["accuracy=OUT", "TEST06=OUT"], "already the output of --also accuracy="),
    (["accuracy=/proc/not-here"], "--also accuracy /proc/not-here: cannot write there"),
])
def test_a_bad_also_is_refused_before_the_engine(tiny_model, tiny_dataset, tmp_path, also, expected):
    main = tmp_path / "main"
    flags = [arg for text in also for arg in ("--also", text.replace("OUT", str(tmp_path / "other"))
                                              .replace("MAIN", str(main)))]
    started = time.monotonic()
    done = run_cli("run", "--scenario", "Offline", "--mode", "performance", "--model", tiny_model,
                   "--dataset", tiny_dataset, "--output-dir", main, *flags)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and expected in lines[0], done.stderr[-3000:]
    assert "--also" in lines[0] and ENGINE_START_LINE not in done.stdout + done.stderr
    assert time.monotonic() - started < 60       # no engine: an engine start alone takes 15-60 s here


def test_a_failed_test_ends_the_process_and_the_later_tests_are_not_run(tiny_model, tiny_dataset, tmp_path):
    """The first test fails at run time (its server is unreachable: the http backend, no engine here): exit 1, its
    result.json says failed and why, the --also tests are not run and the output says so."""
    main, accuracy = tmp_path / "performance", tmp_path / "accuracy"
    done = run_cli("run", "--scenario", "Offline", "--mode", "performance", "--model", tiny_model,
                   "--dataset", tiny_dataset, "--output-dir", main, "--also", f"accuracy={accuracy}",
                   "--backend", "http", "--endpoint", "gpu-7=http://127.0.0.1:9")
    assert done.returncode == 1, done.stderr[-3000:]
    result = _result(main)
    assert result["status"] == "failed" and "unreachable" in result["error"]
    assert result["process"]["stopped_utc"] is not None
    # the failed test is in the process's clock, without a duration: the GPU time budget names it as unknown
    [test] = result["process"]["tests"]
    assert (test["name"], test["status"], test["duration_s"]) == ("performance", "failed", None)
    assert not (accuracy / "result.json").exists()
    assert f"not run after performance failed: accuracy ({accuracy})" in done.stdout
