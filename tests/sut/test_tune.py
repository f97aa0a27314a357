"""tools/gpu/tune.py on the tiny model (real vLLM on the CPU, real LoadGen): each attempt is the SUT's own
`run` with its engine flags, shortened to --samples; tune.json records every attempt and the best VALID one; bad
attempts files stop before any engine starts."""
import json
import re
import subprocess
import sys

import pytest

from conftest import REPO, sut_env

TUNE = REPO / "tools" / "gpu" / "tune.py"
SAMPLES = 16


def _tune(*args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TUNE), *map(str, args)], env=sut_env(), cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def _attempts_file(tmp_path, model, dataset, attempts) -> str:
    path = tmp_path / "attempts.json"
    # eager: no torch.compile, so each engine starts in seconds on this machine's two cores
    path.write_text(json.dumps({"base": {"model": str(model), "dataset": str(dataset),
                                         "flags": {"enforce_eager": True, "max_model_len": 1024}},
                                "attempts": attempts}))
    return path


@pytest.mark.slow
def test_each_attempt_runs_the_sut_with_its_flags_and_the_best_valid_one_is_named(tiny_model, tiny_dataset,
                                                                                    tmp_path):
    attempts = _attempts_file(tmp_path, tiny_model, tiny_dataset, [
        {"name": "baseline", "flags": {"max_num_seqs": 4}},
        {"name": "mns8", "flags": {"max_num_seqs": 8}, "engine_args": {"async_scheduling": False}}])
    out = tmp_path / "out"
    done = _tune(attempts, "--output-dir", out, "--samples", SAMPLES)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tune = json.loads((out / "tune.json").read_text())
    assert tune["samples"] == SAMPLES
    assert [a["name"] for a in tune["attempts"]] == ["baseline", "mns8"]
    for attempt, seqs in zip(tune["attempts"], (4, 8)):
        run = out / attempt["name"]
        assert attempt["output_dir"] == str(run)
        summary = (run / "mlperf_log_summary.txt").read_text()
        result = json.loads((run / "result.json").read_text())
        # the attempt's flags reached the engine, as vLLM resolved them
        assert result["engine"]["max_num_seqs"] == seqs and result["engine"]["enforce_eager"] is True
        assert result["engine"]["enable_prefix_caching"] is False
        assert result["node"] == f"local:{attempt['name']}"   # a report of the folder tells the attempts apart
        assert attempt["engine"] == result["engine"]
        # LoadGen's own figures: tokens/s and verdict from its summary, the shortened test's sample count
        tokens = float(re.search(r"Tokens per second\s*:\s*([0-9.]+)", summary).group(1))
        assert attempt["tokens_per_second"] == tokens > 0
        assert attempt["valid"] == ("Result is : VALID" in summary)
        assert attempt["samples"] == result["counts"]["samples_completed"] == SAMPLES
        assert attempt["duration_s"] == result["timing"]["duration_s"] > 0
        assert attempt["exit_code"] == 0 and attempt["status"] == "completed" and attempt["error"] is None
        assert attempt["engine_startup_s"] > 0
        assert f"tune: {attempt['name']}: {tokens:g} tokens/s" in done.stdout
    assert tune["attempts"][1]["engine"]["async_scheduling"] is False
    valid = [a for a in tune["attempts"] if a["valid"]]
    top = max(valid, key=lambda a: a["tokens_per_second"]) if valid else None
    assert tune["best"] == top
    baseline = tune["attempts"][0]["tokens_per_second"]
    assert done.stdout.strip().splitlines()[-1] == (
        f"tune_best={top['name']} tune_best_tok_s={top['tokens_per_second']:g} tune_baseline_tok_s={baseline:g}"
        if top else f"tune_best=none tune_best_tok_s=unknown tune_baseline_tok_s={baseline:g}")
    assert tune["confirmation"] is None


@pytest.mark.slow
def test_server_qps_sweeps_the_server_scenario_at_that_rate(tiny_model, tiny_dataset, tmp_path):
    """--server-qps: each attempt is a Server test at that target QPS over --samples queries, equal issue on; tune.json
    records LoadGen's verdict, the constraints not met and the TTFT/TPOT p99 of its summary for each attempt."""
    attempts = _attempts_file(tmp_path, tiny_model, tiny_dataset, [
        {"name": "baseline", "flags": {"max_num_seqs": 4}},
        {"name": "mnbt256", "flags": {"max_num_batched_tokens": 256}}])
    out = tmp_path / "out"
    done = _tune(attempts, "--output-dir", out, "--samples", SAMPLES, "--server-qps", 4)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tune = json.loads((out / "tune.json").read_text())
    assert (tune["scenario"], tune["target_qps"], tune["samples"]) == ("Server", 4.0, SAMPLES)
    for attempt in tune["attempts"]:
        run = out / attempt["name"]
        summary = (run / "mlperf_log_summary.txt").read_text()
        assert "Scenario : Server" in summary
        detail = (run / "mlperf_log_detail.txt").read_text()
        assert '"key": "effective_target_qps", "value": 4' in detail
        assert '"key": "effective_sample_concatenate_permutation", "value": true' in detail   # equal issue on

        def p99(name: str) -> float:
            return float(re.search(rf"99\.00 percentile {name} \(ns\)\s*:\s*([0-9]+)", summary).group(1)) / 1e6

        assert attempt["ttft_p99_ms"] == p99("first token latency")
        assert attempt["tpot_p99_ms"] == p99("time to output token")
        completed = float(re.search(r"Completed tokens per second\s*:\s*([0-9.]+)", summary).group(1))
        assert attempt["tokens_per_second"] == completed > 0
        assert attempt["valid"] == ("Result is : VALID" in summary)
        # the constraints LoadGen found unmet, by its own words ("Performance constraints satisfied : NO")
        assert bool(attempt["invalid_reasons"]) != attempt["valid"]
        assert all(re.search(rf"{re.escape(r)}\s*:\s*no", summary, re.IGNORECASE) for r in attempt["invalid_reasons"])
        assert attempt["samples"] == json.loads((run / "result.json").read_text())["counts"]["samples_completed"]
        assert f"tune: {attempt['name']}: {completed:g} tokens/s" in done.stdout
        assert f"TTFT p99 {attempt['ttft_p99_ms']:g} ms, TPOT p99 {attempt['tpot_p99_ms']:g} ms" in done.stdout
        # the printed line names what was unmet, never "... satisfied" (which reads as if it had been met)
        line = next(x for x in done.stdout.splitlines() if x.startswith(f"tune: {attempt['name']}: "))
        assert ("(unmet: " in line) != attempt["valid"] and "satisfied" not in line
    valid = [a for a in tune["attempts"] if a["valid"]]
    assert tune["best"] == (max(valid, key=lambda a: a["tokens_per_second"]) if valid else None)


def test_a_server_qps_of_zero_exits_2_naming_the_flag(tiny_model, tiny_dataset, tmp_path):
    done = _tune(_attempts_file(tmp_path, tiny_model, tiny_dataset, [{"name": "baseline"}]), "--output-dir",
                 tmp_path / "out", "--server-qps", 0, timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == "error: --server-qps 0: give a target QPS above 0, e.g. 60"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("attempt", [
    {"name": "cached", "flags": {"enable_prefix_caching": True}},
    {"name": "cached", "engine_args": {"enable_prefix_caching": True}}], ids=["flag", "engine_arg"])
def test_prefix_caching_is_refused_naming_the_attempt(tiny_model, tiny_dataset, tmp_path, attempt):
    attempts = _attempts_file(tmp_path, tiny_model, tiny_dataset, [{"name": "baseline"}, attempt])
    done = _tune(attempts, "--output-dir", tmp_path / "out", timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("error: attempt 'cached':") and "enable_prefix_caching" in line and "remove it" in line
    assert not (tmp_path / "out").exists()   # stopped before any engine started


@pytest.mark.parametrize("attempts, field", [
    ([{"name": "baseline", "flags": {"max_num_seq": 8}}], "flags.max_num_seq"),
    ([{"name": "baseline", "flags": {"max_num_seqs": "many"}}], "flags.max_num_seqs"),
    ([{"name": "baseline", "engine_args": {"async_scheduler": True}}], "engine_args.async_scheduler"),
    ([{"name": "baseline"}, {"name": "baseline"}], "used twice"),
    ([{"name": "baseline", "seqs": 8}], "unknown key 'seqs'"),
    ([{"name": "other"}], "no attempt is named 'baseline'")])
def test_bad_attempts_exit_2_naming_the_field(tiny_model, tiny_dataset, tmp_path, attempts, field):
    done = _tune(_attempts_file(tmp_path, tiny_model, tiny_dataset, attempts), "--output-dir", tmp_path / "out",
                 timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    assert field in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_a_missing_attempts_file_exits_2_naming_it(tmp_path):
    done = _tune(tmp_path / "nope.json", "--output-dir", tmp_path / "out", timeout=120)
    assert done.returncode == 2 and "nope.json: No such file" in done.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_gpus_run_attempts_at_once_each_on_its_own_gpu(tiny_model, tiny_dataset, tmp_path):
    """--gpus 0,1: two engines at once (here on the CPU: CUDA_VISIBLE_DEVICES is recorded, not used), file order
    kept in tune.json."""
    attempts = _attempts_file(tmp_path, tiny_model, tiny_dataset, [
        {"name": "baseline", "flags": {"max_num_seqs": 4}}, {"name": "mns8", "flags": {"max_num_seqs": 8}}])
    out = tmp_path / "out"
    done = _tune(attempts, "--output-dir", out, "--samples", SAMPLES, "--gpus", "0,1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tune = json.loads((out / "tune.json").read_text())
    assert [a["name"] for a in tune["attempts"]] == ["baseline", "mns8"]
    assert sorted(a["gpu"] for a in tune["attempts"]) == ["0", "1"]
    for attempt in tune["attempts"]:
        assert f"tune: {attempt['name']} (GPU {attempt['gpu']}):" in done.stdout
    # the two SUT processes overlapped: each started before the other stopped
    clocks = [json.loads((out / a["name"] / "result.json").read_text())["process"] for a in tune["attempts"]]
    assert clocks[0]["start_utc"] < clocks[1]["stopped_utc"] and clocks[1]["start_utc"] < clocks[0]["stopped_utc"]


@pytest.mark.parametrize("gpus", ["0,0", "a", "0,,1"])
def test_bad_gpus_exit_2_naming_the_flag(tiny_model, tiny_dataset, tmp_path, gpus):
    done = _tune(_attempts_file(tmp_path, tiny_model, tiny_dataset, [{"name": "baseline"}]), "--output-dir",
                 tmp_path / "out", "--gpus", gpus, timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: --gpus {gpus}: give distinct GPU ids")
    assert not (tmp_path / "out").exists()


def test_the_printed_verdict_names_the_unmet_constraints(monkeypatch):
    """tune.json keeps LoadGen's own line names ("Early stopping satisfied"); the printed line must not read as if
    those constraints had been met."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tune", TUNE)
    tune = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "tune", tune)   # its dataclasses look their module up there
    spec.loader.exec_module(tune)
    assert tune.unmet(["Performance constraints satisfied", "Early stopping satisfied"]) == (
        "Performance constraints, Early stopping")
