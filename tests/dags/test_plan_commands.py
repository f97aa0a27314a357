"""`python -m include plan --commands`: the generated script runs what the DAG plans, one node per GPU.

The script is executed for real with a stand-in SUT interpreter: `run` records its arguments, GPU and time and
sleeps a little; `serve` answers /health on its port like vLLM's server. So these tests check the orchestration
(which command on which GPU, in which order, at the same time or not, servers up before the driver and gone after)
without an engine.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from include import cli, deployment, plan_commands
from include.plan import PlanError
from include.runners import local

REPO = Path(__file__).resolve().parents[2]

FAKE_SUT = textwrap.dedent("""
    import http.server, json, os, sys, time
    args = sys.argv[3:]          # after -m mlperf_sut
    def flag(name):
        return args[args.index(name) + 1] if name in args else None
    record = {"command": args[0], "args": args, "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
              "start": time.time(), "pid": os.getpid()}
    if args[0] == "serve":
        with open(os.path.join(os.environ["FAKE_LOG"], f"serve-{flag('--port')}.json"), "w") as f:
            json.dump(record, f)
        class Health(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200 if self.path == "/health" else 404); self.end_headers()
            def log_message(self, *a):
                pass
        time.sleep(float(os.environ.get("FAKE_SERVE_DELAY", "0.5")))
        if os.environ.get("FAKE_SERVE_FAIL"):
            sys.exit(3)
        http.server.HTTPServer(("127.0.0.1", int(flag("--port"))), Health).serve_forever()
    time.sleep(1.0)
    record["end"] = time.time()
    with open(os.path.join(flag("--output-dir"), "record.json"), "w") as f:
        json.dump(record, f)
    sys.exit(1 if flag("--node") == os.environ.get("FAKE_FAIL_NODE") else 0)
""")


@pytest.fixture
def env(tmp_path, monkeypatch):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    data = tmp_path / "cnn_eval.json"
    data.write_text(json.dumps([{"tok_input": [1, 2, 3]}] * 40))
    fake = tmp_path / "fake_sut.py"
    fake.write_text(FAKE_SUT)
    python = tmp_path / "python"          # the SUT interpreter: `-c` runs Python, `-m mlperf_sut` the stand-in
    python.write_text(f'#!/bin/sh\n[ "$1" = -c ] && exec {sys.executable} "$@"\nexec {sys.executable} {fake} "$@"\n')
    python.chmod(0o755)
    logs = tmp_path / "logs"
    logs.mkdir()
    values = {"MLPERF_RUNNER": "local", "MLPERF_NODES": "gpu-a,gpu-b", "MLPERF_PROFILE": "embedded",
              "MLPERF_ARTIFACTS_DIR": str(tmp_path / "artifacts"), "MLPERF_MODEL_DIR": str(model),
              "MLPERF_DATASET": str(data), "MLPERF_SUT_PYTHON": str(python), "MLPERF_LOCAL_GPUS": "gpu-a=0,gpu-b=1",
              "MLPERF_SERVER_START_TIMEOUT_S": "60", "FAKE_LOG": str(logs)}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    for key in ("MLPERF_DATASET_SIZE", "MLPERF_LOAD_FORMAT", "FAKE_FAIL_NODE", "FAKE_SERVE_FAIL"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def _free_base_port() -> int:
    """Two consecutive free ports on 127.0.0.1 (another test run on this machine may hold the default's)."""
    import socket

    for _ in range(50):
        base = random.randint(20000, 60000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", base))
                b.bind(("127.0.0.1", base + 1))
            return base
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


def _generate(env: Path, *extra: str, base_port: int | None = None) -> Path:
    out = env / "cmds.sh"
    code = cli.main(["plan", "--commands", "--run-id", "r1", "--distributed", "coordinated", "--distributed",
                     "sharded", "--param", 'scenarios=["Offline"]', "--param", "mode=performance",
                     "--mode-param", 'coordinated:user_conf_overrides={"min_duration": 0, "min_query_count": 32}',
                     "--engine-flags", "--quantization fp8 --engine-arg async_scheduling=true",
                     "--base-port", str(base_port or _free_base_port()), "--out", str(out), *extra])
    assert code == 0
    return out


def _run(script: Path, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **extra_env})


def _records(env: Path) -> dict[str, dict]:
    root = env / "artifacts" / "r1"
    return {str(p.parent.relative_to(root)): json.loads(p.read_text()) for p in root.rglob("record.json")}


def test_script_runs_every_planned_run_on_its_gpu_in_the_dags_order(env):
    port = _free_base_port()
    script = _generate(env, base_port=port)
    proc = _run(script)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = _records(env)
    assert set(runs) == {"single/gpu-a/Offline/performance", "single/gpu-b/Offline/performance",
                         "distributed/coordinated/Offline/performance", "distributed/gpu-a/Offline/performance",
                         "distributed/gpu-b/Offline/performance"}
    # one node per GPU; the LoadGen driver of the coordinated run holds none
    assert runs["single/gpu-a/Offline/performance"]["gpu"] == "0"
    assert runs["single/gpu-b/Offline/performance"]["gpu"] == "1"
    assert runs["distributed/gpu-b/Offline/performance"]["gpu"] == "1"
    coordinated = runs["distributed/coordinated/Offline/performance"]
    assert coordinated["gpu"] == ""
    servers = {p.name: json.loads(p.read_text()) for p in (env / "logs").glob("serve-*.json")}
    assert {name: s["gpu"] for name, s in servers.items()} == {f"serve-{port}.json": "0", f"serve-{port + 1}.json": "1"}
    assert all(s["start"] < coordinated["start"] for s in servers.values())
    # the driver talks to both servers, which were started with the engine flags; the driver gets none
    args = coordinated["args"]
    assert args[args.index("--backend") + 1] == "http"
    endpoints = [args[i + 1] for i, a in enumerate(args) if a == "--endpoint"]
    assert endpoints == [f"gpu-a=http://127.0.0.1:{port}", f"gpu-b=http://127.0.0.1:{port + 1}"]
    assert "--quantization" not in args and "min_query_count=32" in args
    for path in (env / "logs").glob("serve-*.json"):
        assert "--quantization" in json.loads(path.read_text())["args"]
    single = runs["single/gpu-a/Offline/performance"]["args"]
    assert single[single.index("--quantization") + 1] == "fp8" and "min_query_count=32" not in single
    shard = runs["distributed/gpu-b/Offline/performance"]["args"]
    assert shard[shard.index("--shard-index") + 1] == "1" and shard[shard.index("--shard-count") + 1] == "2"
    # the two nodes' single runs overlap (parallel, as the DAG's per-node tasks); the distributed runs start after
    a, b = runs["single/gpu-a/Offline/performance"], runs["single/gpu-b/Offline/performance"]
    assert a["start"] < b["end"] and b["start"] < a["end"]
    assert coordinated["start"] > max(a["end"], b["end"])
    assert runs["distributed/gpu-a/Offline/performance"]["start"] > coordinated["end"]
    # servers were stopped: their processes are gone
    for path in (env / "logs").glob("serve-*.json"):
        pid = json.loads(path.read_text())["pid"]
        assert not local.group_alive(pid)
    plan = json.loads((env / "artifacts" / "r1" / "plan.json").read_text())
    assert plan["distributed"] == "coordinated+sharded" and len(plan["runs"]) == 5
    # the run's log is where the local runner puts it
    assert (env / "artifacts" / "r1" / "single" / "gpu-a" / "Offline" / "performance.sut.log").exists()


def test_a_failed_run_fails_the_script_but_not_the_other_runs(env):
    proc = _run(_generate(env), FAKE_FAIL_NODE="gpu-a")
    assert proc.returncode == 1
    assert "end single/gpu-a/Offline/performance rc=1" in proc.stdout
    assert set(_records(env)) >= {"single/gpu-b/Offline/performance", "distributed/coordinated/Offline/performance",
                                  "distributed/gpu-b/Offline/performance"}


def test_a_server_that_dies_fails_the_coordinated_run_at_once(env):
    t0 = time.monotonic()
    proc = _run(_generate(env), FAKE_SERVE_FAIL="1")
    assert proc.returncode == 1
    assert time.monotonic() - t0 < 40           # not the 60 s server start timeout
    assert "exited before it was ready" in proc.stderr + proc.stdout
    assert "distributed/coordinated/Offline/performance" not in _records(env)
    assert "distributed/gpu-a/Offline/performance" in _records(env)


def test_bad_input_is_refused_naming_the_field(env, capsys):
    assert cli.main(["plan", "--commands", "--gpus", "gpu-a=0"]) == 2
    assert "nodes: gpu-b have no GPU in MLPERF_LOCAL_GPUS" in capsys.readouterr().err
    assert cli.main(["plan", "--commands", "--param", "scenario=Offline"]) == 2
    assert "scenario: not a param of the DAG" in capsys.readouterr().err
    assert cli.main(["plan", "--commands", "--gpus", "gpu-a=zero"]) == 2
    assert "MLPERF_LOCAL_GPUS: 'gpu-a=zero' is not NODE=GPU" in capsys.readouterr().err
    assert cli.main(["plan", "--commands", "--base-port", "80"]) == 2
    assert "--base-port 80: needs 1024.." in capsys.readouterr().err
    assert cli.main(["plan", "--commands", "--mode-param", "sharded:mode=performance"]) == 2
    assert "--mode-param: sharded is not among the planned modes" in capsys.readouterr().err


def test_plan_without_commands_prints_the_plan(env, capsys):
    assert cli.main(["plan", "--param", "distributed=sharded"]) == 0
    plans = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in plans[0]["runs"]][-2:] == ["distributed/gpu-a/Offline/performance",
                                                          "distributed/gpu-b/Offline/performance"]


def test_local_runner_pins_each_node_to_its_gpus(monkeypatch):
    gpus = local.gpu_map("h200-0=0, h200-1=1:2")
    assert gpus == {"h200-0": "0", "h200-1": "1,2"}
    spec = {"label": "h200-1", "nodes": ["h200-1"]}
    assert local.gpu_env(spec, gpus) == {"CUDA_VISIBLE_DEVICES": "1,2"}
    assert local.gpu_env({"label": "coordinated", "nodes": ["h200-0", "h200-1"]}, gpus) == \
        {"CUDA_VISIBLE_DEVICES": ""}
    assert local.gpu_env(None, gpus, "h200-0") == {"CUDA_VISIBLE_DEVICES": "0"}
    assert local.gpu_env(spec, {}) == {}
    with pytest.raises(ValueError, match="no GPU given for node"):
        local.gpu_env({"label": "x", "nodes": ["x"]}, gpus)
    with pytest.raises(ValueError, match="given twice"):
        local.gpu_map("a=0,a=1")


def test_deployment_is_read_from_the_environment(env):
    dep = deployment.load()
    cmds = plan_commands.build(dep, {"distributed": "sharded"}, "r2")
    assert cmds.gpus == {"gpu-a": "0", "gpu-b": "1"}
    with pytest.raises(PlanError, match="distributed: 'coordinated' needs at least two nodes"):
        plan_commands.build(dep, {"nodes": ["gpu-a"]}, "r3", distributed=["coordinated"])


def test_one_process_runs_a_nodes_tests_of_a_scenario_into_emptied_folders(env):
    out = env / "cmds.sh"
    assert cli.main(["plan", "--commands", "--run-id", "r1", "--distributed", "off", "--param", "nodes=[\"gpu-a\"]",
                     "--param", 'scenarios=["Offline"]', "--param", "mode=both", "--out", str(out)]) == 0
    offline = env / "artifacts" / "r1" / "single" / "gpu-a" / "Offline"
    for name in ("performance", "accuracy"):          # a previous run's leftovers
        (offline / name).mkdir(parents=True)
        (offline / name / "result.json").write_text("{}")
    proc = _run(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(_records(env)) == ["single/gpu-a/Offline/performance"]       # one SUT process
    args = _records(env)["single/gpu-a/Offline/performance"]["args"]
    assert args[args.index("--also") + 1] == f"accuracy={offline / 'accuracy'}"
    assert not (offline / "performance" / "result.json").exists() and not (offline / "accuracy" / "result.json").exists()
    assert (offline / "accuracy").is_dir() and (offline / "performance+accuracy.sut.log").exists()


def test_only_runs_runs_the_named_runs_and_keeps_the_whole_plan(env):
    """One plan split over two sittings (or GPUs): each runs its share, plan.json always lists every run."""
    script = _generate(env)
    proc = _run(script, ONLY_RUNS="single/gpu-b,distributed/gpu-a/Offline/performance")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(_records(env)) == {"single/gpu-b/Offline/performance", "distributed/gpu-a/Offline/performance"}
    assert not list((env / "logs").glob("serve-*.json"))          # the coordinated run is left out: no servers
    assert "skip single/gpu-a/Offline/performance (not in ONLY_RUNS)" in proc.stdout
    assert len(json.loads((env / "artifacts" / "r1" / "plan.json").read_text())["runs"]) == 5
    proc = _run(script, ONLY_RUNS="distributed/coordinated")       # the second sitting keeps the first's results
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(_records(env)) == {"single/gpu-b/Offline/performance", "distributed/gpu-a/Offline/performance",
                                  "distributed/coordinated/Offline/performance"}


def test_only_runs_that_matches_nothing_is_refused_with_the_run_names(env):
    proc = _run(_generate(env), ONLY_RUNS="single/gpu-c")
    assert proc.returncode == 2
    assert "ONLY_RUNS=single/gpu-c matches no run of this plan; runs: single/gpu-a/Offline/performance" in proc.stderr
    assert not _records(env)
