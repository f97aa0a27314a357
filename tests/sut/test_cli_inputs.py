"""Bad input exits with code 2 before any engine starts, and the message names the file, field or flag."""
import pytest

from conftest import run_cli


@pytest.fixture()
def run_args(tiny_model, tiny_dataset, tmp_path):
    return ["run", "--scenario", "Offline", "--mode", "performance", "--model", tiny_model,
            "--dataset", tiny_dataset, "--output-dir", tmp_path / "out"]


def _replace(args, flag, value):
    args = list(args)
    args[args.index(flag) + 1] = value
    return args


def test_unknown_scenario(run_args):
    done = run_cli(*_replace(run_args, "--scenario", "Batch"))
    assert done.returncode == 2 and "--scenario" in done.stderr and "Batch" in done.stderr


def test_missing_dataset(run_args, tmp_path):
    missing = tmp_path / "nowhere.json"
    done = run_cli(*_replace(run_args, "--dataset", missing))
    assert done.returncode == 2 and str(missing) in done.stderr and "no such file" in done.stderr


def test_dataset_without_tok_input(run_args, tmp_path):
    bad = tmp_path / "cnn_eval.json"
    bad.write_text('[{"input": "article", "output": "summary"}]')
    done = run_cli(*_replace(run_args, "--dataset", bad))
    assert done.returncode == 2 and str(bad) in done.stderr and "'tok_input'" in done.stderr


def test_bad_user_conf(run_args, tmp_path):
    conf = tmp_path / "user.conf"
    conf.write_text("*.Offline.target_qps = lots\n")
    done = run_cli(*run_args, "--user-conf", conf)
    assert done.returncode == 2 and f"{conf}:1" in done.stderr and "target_qps" in done.stderr


def test_bad_override(run_args):
    done = run_cli(*run_args, "--override", "min_duraton=0")
    assert done.returncode == 2 and "--override" in done.stderr and "min_duraton" in done.stderr


def test_model_dir_without_config(run_args, tmp_path):
    done = run_cli(*_replace(run_args, "--model", tmp_path))
    assert done.returncode == 2 and "config.json" in done.stderr and str(tmp_path) in done.stderr


def _one_line(done, code=2) -> str:
    """Bad input and failures: exit `code`, exactly one line on stderr, no traceback."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize("where", ["file", "proc", "sys"])
def test_unusable_output_dir_is_bad_input(run_args, tmp_path, where):
    """A path under a file, a path the kernel will not create, a path without permission: exit 2 (not retryable)."""
    afile = tmp_path / "afile"
    afile.write_text("")
    out = {"file": afile / "sub", "proc": "/proc/self/newdir", "sys": "/sys/kernel/mlperf"}[where]
    line = _one_line(run_cli(*_replace(run_args, "--output-dir", out)))
    assert line.startswith(f"error: --output-dir {out}: cannot write there (") and "writable directory" in line


def test_dataset_that_is_a_directory_is_bad_input(run_args, tmp_path):
    line = _one_line(run_cli(*_replace(run_args, "--dataset", tmp_path)))
    assert f"--dataset {tmp_path}" in line


@pytest.mark.parametrize("flags, expected", [
    (["--tensor-parallel-size", "0"], "--tensor-parallel-size 0: must be at least 1"),
    (["--gpu-memory-utilization", "1.5"], "--gpu-memory-utilization 1.5: a fraction"),
])
def test_device_settings_are_bad_input(run_args, flags, expected):
    assert expected in _one_line(run_cli(*run_args, *flags))


@pytest.mark.parametrize("overrides, expected", [
    (["min_duration=0\n*.Offline.target_qps = 1"], "must be a whole number"),
    (["min_query_count=1e300"], "must be a whole number"),
    (["target_qps=1e12"], "target_qps = 1e12 is above the maximum 15,000 (LoadGen builds its whole schedule"),
    (["target_qps=10000", "min_duration=3600000"],
     "Offline: target_qps 10000/s x 1.1 x min_duration 3600 s = 39,600,000 samples, which LoadGen schedules in "
     "memory before the first query (~18.2 GB at 460 bytes each); the limit is 10,000,000"),
    (["min_duration=" + "9" * 100_000], "longer than any LoadGen number"),
])
def test_bad_override_values_are_one_line(run_args, overrides, expected):
    line = _one_line(run_cli(*run_args, *[arg for o in overrides for arg in ("--override", o)]))
    assert expected in line and len(line) < 2000, line[:3000]


@pytest.mark.parametrize("flags, expected", [
    (["--engine-arg", "asyn_scheduling=true"],
     "--engine-arg asyn_scheduling=true: not a vLLM engine argument; did you mean 'async_scheduling'?"),
    (["--engine-arg", "enable_prefix_caching=true"],
     "--engine-arg enable_prefix_caching=true: refused: LoadGen repeats samples"),
    (["--engine-arg", "max_num_seqs=8"], "--engine-arg max_num_seqs=8: set through the SUT's flag --max-num-seqs"),
    (["--engine-arg", 'async_scheduling="yes"'],
     "--engine-arg async_scheduling=\"yes\": 'yes' is not of type 'boolean'"),
    (["--engine-arg", "compilation_config=3"], "--engine-arg compilation_config=3: 3 is not of type 'object'"),
    (["--max-num-seqs", "0"], "--max-num-seqs 0: must be at least 1"),
    (["--max-num-batched-tokens", "-1"], "--max-num-batched-tokens -1: must be at least 1"),
    (["--quantization", "bogus"], "--quantization bogus: 'bogus' is not one of ['awq', 'auto_awq', 'fp8', "),
    (["--kv-cache-dtype", "fp9"], "--kv-cache-dtype fp9: 'fp9' is not one of ['auto', 'float16', 'bfloat16', 'fp8', "),
])
def test_engine_settings_are_refused_at_the_door(run_args, tmp_path, flags, expected):
    """Checked against engine_args.schema.json before vLLM is imported: one line, no engine, no result.json."""
    line = _one_line(run_cli(*run_args, *flags))
    assert line.startswith(f"error: {expected}"), line
    assert not (tmp_path / "out" / "result.json").exists()


def test_serve_refuses_bad_engine_settings_before_starting_vllm(tiny_model):
    line = _one_line(run_cli("serve", "--model", tiny_model, "--engine-arg", "asyn_scheduling=true"))
    assert "did you mean 'async_scheduling'?" in line


def test_unknown_engine_preset_names_the_presets(run_args):
    done = run_cli(*run_args, "--engine-preset", "nope")
    assert done.returncode == 2 and "--engine-preset: invalid choice: 'nope'" in done.stderr
    assert "h200-fp8" in done.stderr.strip().splitlines()[-1]


def test_unreachable_endpoint_is_one_line_with_where_to_look(run_args, tmp_path):
    """Exit 1 (worth retrying: the server may come up); the line names the endpoint and where its log is; the
    traceback only with --debug."""
    args = [*run_args, "--backend", "http", "--endpoint", "gpu-7=http://127.0.0.1:9"]
    line = _one_line(run_cli(*args), code=1)
    assert line.startswith("error: run failed: endpoint check failed: http://127.0.0.1:9: unreachable")
    assert "vLLM server log of gpu-7 (http://127.0.0.1:9)" in line and str(tmp_path / "out" / "result.json") in line
    debug = run_cli(*args, "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("error: run failed: endpoint check failed")


def test_help_documents_the_exit_codes():
    for command in ([], ["run"], ["search-qps"]):
        done = run_cli(*command, "--help")
        assert done.returncode == 0
        assert "exit codes:" in done.stdout and "2  bad input, not retryable" in done.stdout, command
        assert "1  runtime failure, worth retrying" in done.stdout


@pytest.mark.parametrize("device_type, visible, tp, problem", [
    ("cuda", 0, 1, "no GPU visible to this process (CUDA_VISIBLE_DEVICES='')"),
    ("cuda", 1, 2, "--tensor-parallel-size 2: only 1 GPU(s) visible"),
    ("cuda", 2, 2, None),
    ("cpu", 0, 1, None),
])
def test_device_problems_are_named(device_type, visible, tp, problem):
    from mlperf_sut.accelerator import device_problem

    found = device_problem(device_type, visible, tp, "")
    assert (problem is None and found is None) or problem in found
