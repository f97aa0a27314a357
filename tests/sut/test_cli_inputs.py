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
