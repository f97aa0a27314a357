"""`python -m include plan`: the DAG's plan as JSON, from the same code as the plan task; and the local runner's GPU
pinning (`MLPERF_LOCAL_GPUS`), which maps a host's GPUs to the configured nodes."""
from __future__ import annotations

import json

import pytest

from include import deployment
from include.apps import cli
from include.runners import local


@pytest.fixture
def env(tmp_path, monkeypatch):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    data = tmp_path / "cnn_eval.json"
    data.write_text(json.dumps([{"tok_input": [1, 2, 3]}] * 40))
    values = {"MLPERF_RUNNER": "local", "MLPERF_NODES": "gpu-a,gpu-b", "MLPERF_PROFILE": "embedded",
              "MLPERF_ARTIFACTS_DIR": str(tmp_path / "artifacts"), "MLPERF_MODEL_DIR": str(model),
              "MLPERF_DATASET": str(data)}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    for key in ("MLPERF_DATASET_SIZE", "MLPERF_LOAD_FORMAT"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def test_plan_prints_the_dags_plan(env, capsys):
    assert cli.main(["plan", "--param", "distributed=sharded", "--param", "engine_preset=h200-fp8",
                     "--run-id", "r1"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["run_id"] == "r1"
    assert [r["name"] for r in plan["runs"]][-2:] == ["distributed/gpu-a/Offline/performance",
                                                      "distributed/gpu-b/Offline/performance"]
    assert all("h200-fp8" in r["arguments"] for r in plan["runs"])


def test_bad_input_is_refused_naming_the_param(env, capsys):
    assert cli.main(["plan", "--param", "scenario=Offline"]) == 2
    assert "scenario: not a param of the DAG" in capsys.readouterr().err
    assert cli.main(["plan", "--param", "nodes=[\"gpu-a\"]", "--param", "distributed=coordinated"]) == 2
    assert "distributed: 'coordinated' needs at least two nodes" in capsys.readouterr().err
    assert cli.main(["plan", "--param", "engine_args={\"asyn_scheduling\": true}"]) == 2
    assert "did you mean 'async_scheduling'?" in capsys.readouterr().err


def test_local_runner_pins_each_node_to_its_gpus():
    gpus = deployment.load({"MLPERF_LOCAL_GPUS": "h200-0=0, h200-1=1:2"}).local_gpus
    assert gpus == {"h200-0": "0", "h200-1": "1,2"}
    spec = {"label": "h200-1", "nodes": ["h200-1"]}
    assert local.gpu_env(spec, gpus) == {"CUDA_VISIBLE_DEVICES": "1,2"}
    assert local.gpu_env({"label": "coordinated", "nodes": ["h200-0", "h200-1"]}, gpus) == \
        {"CUDA_VISIBLE_DEVICES": ""}
    assert local.gpu_env(None, gpus, "h200-0") == {"CUDA_VISIBLE_DEVICES": "0"}
    assert local.gpu_env(spec, {}) == {}
    with pytest.raises(ValueError, match="no GPU given for node"):
        local.gpu_env({"label": "x", "nodes": ["x"]}, gpus)
    with pytest.raises(deployment.DeploymentError, match="MLPERF_LOCAL_GPUS: node 'a' given twice"):
        deployment.load({"MLPERF_LOCAL_GPUS": "a=0,a=1"})
    with pytest.raises(deployment.DeploymentError, match=r"MLPERF_LOCAL_GPUS: 'a=x' is not NODE=GPU\[:GPU...\]"):
        deployment.load({"MLPERF_LOCAL_GPUS": "a=x"})
