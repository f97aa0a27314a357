"""Bad trigger input is refused before anything runs, with a message that names the param.

Schema checks go through the serialized DAG's params exactly as a trigger does (`create_dagrun` deep-merges the
conf into the params and validates); cross-field checks are the plan task's (`include.planning.plan.make_plan`).
"""
from __future__ import annotations

import pytest

from tests.dags.conftest import NODES


@pytest.fixture
def serialized_params(dag):
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)).params


def validate(params, conf):
    return params.deep_merge(conf).validate()


def test_defaults_are_valid(serialized_params):
    values = validate(serialized_params, {})
    assert values["nodes"] == list(NODES)
    assert values["total_sample_count"] == 16          # embedded profile


@pytest.mark.parametrize("conf, param", [
    ({"scenarios": ["Offline", "Batch"]}, "scenarios"),
    ({"scenarios": []}, "scenarios"),
    ({"total_sample_count": -1}, "total_sample_count"),
    ({"total_sample_count": 0}, "total_sample_count"),
    ({"nodes": ["local-0", "gpu-9"]}, "nodes"),
    ({"mode": "fast"}, "mode"),
    ({"distributed": "mesh"}, "distributed"),
    ({"tensor_parallel_size": 0}, "tensor_parallel_size"),
    ({"max_num_seqs": -4}, "max_num_seqs"),
    ({"server_target_qps": 0}, "server_target_qps"),
    ({"user_conf_overrides": {"min_durration": 0}}, "user_conf_overrides"),
    ({"regression_threshold_pct": -1}, "regression_threshold_pct"),
])
def test_bad_input_is_refused_naming_the_param(serialized_params, conf, param):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match=f"param {param}:"):
        validate(serialized_params, conf)


def test_trigger_is_refused_before_a_run_exists(dag, tmp_path, monkeypatch):
    """The path a trigger takes: creating the DAG run validates the conf (no task, no pod starts)."""
    from airflow.sdk.exceptions import ParamValidationError
    from airflow.serialization.serialized_objects import DagSerialization

    sdag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    with pytest.raises(ParamValidationError, match="param total_sample_count:"):
        sdag.params.deep_merge({"total_sample_count": -5}).validate()


def _plan(deploy_env, **conf):
    from include import deployment
    from include.planning import plan
    from airflow.sdk.definitions.param import ParamsDict

    dep = deployment.load()
    params = ParamsDict(plan.trigger_params(dep))
    for key, value in conf.items():
        params[key] = value
    values = params.validate()
    return plan.make_plan(values, dep, "manual__2026-11-29T02:00:00+00:00")


@pytest.mark.parametrize("conf, message", [
    ({"total_sample_count": 100000}, r"^total_sample_count: 100000 exceeds the 64 samples"),
    ({"nodes": ["local-0"]}, r"^distributed: 'coordinated' needs at least two nodes"),
    ({"model_path": "/nonexistent"}, r"^model_path: /nonexistent has no config.json"),
    ({"dataset_path": "/nonexistent.json"}, r"^dataset_path: "),
    ({"node_overrides": {"gpu-9": {"model_path": "/m"}}}, r"^node_overrides: gpu-9"),
    ({"user_conf_overrides": {"target_qps": 3}}, r"^user_conf_overrides: target_qps is also set by server_target_qps"),
    ({"server_target_qps": None, "offline_target_qps": 60, "user_conf_overrides": {"target_qps": 3}},
     r"^user_conf_overrides: target_qps is also set by offline_target_qps"),
])
def test_cross_field_checks_name_the_param(deploy_env, conf, message):
    from include.planning.plan import PlanError

    with pytest.raises(PlanError, match=message):
        _plan(deploy_env, **conf)


def test_plan_layout_and_arguments(deploy_env):
    plan = _plan(deploy_env)
    names = [r.name for r in plan.runs]
    # one SUT process (one engine) per node and scenario, running that scenario's tests in turn
    assert names == [
        "single/local-0/Offline/performance+accuracy", "single/local-0/Server/performance",
        "single/local-1/Offline/performance+accuracy", "single/local-1/Server/performance",
        "distributed/coordinated/Offline/performance"]
    offline = plan.runs[0]
    base = offline.output_dir.removesuffix("/performance")
    assert base.endswith("/single/local-0/Offline")
    assert [(t.mode, t.compliance_test, t.output_dir) for t in offline.tests] == [
        ("performance", None, f"{base}/performance"), ("accuracy", None, f"{base}/accuracy")]
    args = offline.arguments
    assert args[:5] == ["run", "--scenario", "Offline", "--mode", "performance"]
    assert args[args.index("--output-dir") + 1] == f"{base}/performance"
    assert args[args.index("--also") + 1] == f"accuracy={base}/accuracy" and args.count("--also") == 1
    dep_timeout = plan.runs[1].timeout_s
    assert offline.timeout_s == 2 * dep_timeout       # the deployment's run timeout per test
    run = plan.runs[1]
    assert run.output_dir.endswith("/manual__2026-11-29T02_00_00_00_00/single/local-0/Server/performance")
    assert run.output_dir.startswith(deploy_env["MLPERF_ARTIFACTS_DIR"])
    args = run.arguments
    assert args[:5] == ["run", "--scenario", "Server", "--mode", "performance"]
    assert "target_qps=20" in args and "min_duration=0" in args and "min_query_count=500" in args
    assert not plan.compliant and "NOT MLPerf-compliant" in plan.notes[0]


def test_sharded_plan_gives_each_node_its_shard(deploy_env):
    plan = _plan(deploy_env, distributed="sharded", mode="performance", scenarios=["Offline"])
    sharded = [r for r in plan.runs if r.branch == "distributed"]
    assert [(r.label, r.arguments[r.arguments.index("--shard-index") + 1]) for r in sharded] == [
        ("local-0", "0"), ("local-1", "1")]
    assert all(r.arguments[r.arguments.index("--shard-count") + 1] == "2" for r in sharded)


def test_full_profile_defaults_are_mlperf_compliant(deploy_env, monkeypatch):
    monkeypatch.setenv("MLPERF_PROFILE", "full")
    monkeypatch.setenv("MLPERF_RUNNER", "kubernetes")
    monkeypatch.setenv("MLPERF_DATASET", "/data/cnn_eval.json")
    from include import deployment
    from include.planning import plan as planning

    dep = deployment.load()
    params = {k: p.value for k, p in planning.trigger_params(dep).items()}
    assert params["total_sample_count"] == 13368 and params["user_conf_overrides"] == {}
    assert params["server_target_qps"] is None and params["fail_on_regression"] is True
    plan = planning.make_plan(params, dep, "scheduled__2026-11-29T02:00:00+00:00")
    assert plan.compliant and not plan.notes
    assert not any(a.startswith("min_duration") for r in plan.runs for a in r.arguments)


def test_no_secret_in_the_plan(deploy_env, monkeypatch):
    monkeypatch.setenv("MLPERF_HISTORY_URL", "postgresql://bench:s3cret@db/history")
    monkeypatch.setenv("MLPERF_NOTIFY_WEBHOOK", "https://hooks.example/T0/s3cret")
    from include import deployment

    dep = deployment.load()
    assert "s3cret" not in repr(dep) and "s3cret" not in str(dep.public())
    out = _plan(deploy_env).xcom(dep.nodes)
    assert "s3cret" not in str(out)


def test_deployment_errors_name_the_variable(monkeypatch):
    from include import deployment

    with pytest.raises(deployment.DeploymentError, match="MLPERF_RUNNER"):
        deployment.load({"MLPERF_RUNNER": "slurm"})
    with pytest.raises(deployment.DeploymentError, match="MLPERF_NODES"):
        deployment.load({"MLPERF_NODES": "a,a"})
    with pytest.raises(deployment.DeploymentError, match="MLPERF_RUN_TIMEOUT_S"):
        deployment.load({"MLPERF_RUN_TIMEOUT_S": "soon"})


def test_one_definition_of_the_loadgen_keys_on_both_sides():
    """The trigger form checks user_conf_overrides with the file the SUT ships and checks against: no second list."""
    from pathlib import Path

    from include.planning import plan

    shipped = Path(__file__).parents[2] / "sut_image" / "mlperf_sut" / "user_conf.schema.json"
    assert plan.USER_CONF_SCHEMA_PATH == shipped
    assert "LOADGEN_KEYS" not in vars(plan) and "KNOWN_KEYS" not in shipped.with_name("settings.py").read_text()
    assert 'SCHEMA_FILE = "user_conf.schema.json"' in shipped.with_name("settings.py").read_text()
    assert "user_conf.schema.json" in (shipped.parents[1] / "pyproject.toml").read_text()   # shipped in the wheel


@pytest.mark.parametrize("conf, message", [
    ({"user_conf_overrides": {"min_duration": -100}}, "-100 is less than the minimum of 0"),
    ({"user_conf_overrides": {"min_query_count": 1e300}}, "is greater than the maximum of 10000000"),
    ({"user_conf_overrides": {"min_duration": "0\n*.Offline.target_qps = 1"}}, "is not of type 'integer'"),
    ({"user_conf_overrides": {"min_duration": "9" * 5_000_000}}, "is not of type 'integer'"),
    ({"user_conf_overrides": {"target_latency_percentile": 0.9}}, "0.9 is less than the minimum of 50"),
    ({"user_conf_overrides": {"qsl_rng_seed": 1}}, "Additional properties are not allowed"),
    ({"server_target_qps": 1e12}, "1000000000000.0 is greater than the maximum of 15000"),
    ({"model_path": "/models/x\n/other"}, "does not match"),
    ({"model_path": "/models/x\n"}, "does not match"),        # Python's `$` matches before a final newline
    ({"model_path": "/m" * 3000}, "is too long"),
    ({"sut_image": "registry/sut:" + "x" * 600}, "is too long"),
    ({"max_num_seqs": 10**9}, "is greater than the maximum of 65536"),
])
def test_values_are_checked_with_the_suts_bounds(serialized_params, conf, message):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError) as error:
        validate(serialized_params, conf)
    assert message in str(error.value)


@pytest.mark.parametrize("conf, message", [
    ({"total_samples_count": 5}, r"^total_samples_count: not a param of this DAG; did you mean 'total_sample_count'\?"),
    ({"foo": 1}, r"^foo: not a param of this DAG \(params: scenarios, mode, "),
    ({"user_conf_overrides": {"min_durration": 0}},
     r"^user_conf_overrides: 'min_durration' is not a LoadGen user.conf key; did you mean 'min_duration'\?"),
    ({"user_conf_overrides": {"schedule_rng_seed": 1}},
     r"^user_conf_overrides: 'schedule_rng_seed' cannot be set: LoadGen reads it only from its compiled-in"),
    ({"server_target_qps": 1e12, "user_conf_overrides": {}},      # MLPerf's 600 s (the embedded default has 0)
     r"^server_target_qps: Server: server_target_qps 1e\+12/s x min_duration 600 s = 600,000,000,000,000 queries, "
     r"which LoadGen schedules in memory before the first query \(~276,000,000.0 GB at 460 bytes each\); the limit "
     r"is 10,000,000"),
    ({"server_target_qps": 10_000, "user_conf_overrides": {"min_duration": 3_600_000}},
     r"^server_target_qps: Server: server_target_qps 10000/s x min_duration 3600 s = 36,000,000 queries"),
    ({"scenarios": ["Offline"], "user_conf_overrides": {"target_qps": 10_000, "min_duration": 1_000_000}},
     r"^user_conf_overrides: Offline: target_qps 10000/s x 1.1 x min_duration 1000 s = 11,000,000 queries"),
    ({"scenarios": ["Offline"], "offline_target_qps": 10_000, "user_conf_overrides": {"min_duration": 1_000_000}},
     r"^offline_target_qps: Offline: offline_target_qps 10000/s x 1.1 x min_duration 1000 s = 11,000,000 queries"),
])
def test_door_checks_name_the_key_and_the_fix(deploy_env, conf, message):
    from include import deployment
    from include.planning import plan

    with pytest.raises(plan.PlanError, match=message):
        plan.check_at_the_door(conf, deployment.load())


def test_door_checks_pass_a_good_conf_and_leave_type_errors_to_airflow(deploy_env):
    from include import deployment
    from include.planning import plan

    dep = deployment.load()
    plan.check_at_the_door({}, dep)
    plan.check_at_the_door({"server_target_qps": 15_000, "user_conf_overrides": {"min_duration": 600_000}}, dep)
    plan.check_at_the_door({"mode": "accuracy", "server_target_qps": 15_000,
                            "user_conf_overrides": {"min_duration": 86_400_000}}, dep)   # no schedule in accuracy
    plan.check_at_the_door({"server_target_qps": "fast"}, dep)


def test_the_plan_task_refuses_an_unknown_param_too(deploy_env):
    """Triggers that bypass the API (airflow dags trigger/test) reach the plan task, which checks the same."""
    from include import deployment
    from include.planning import plan
    from airflow.sdk.definitions.param import ParamsDict

    dep = deployment.load()
    values = ParamsDict(plan.trigger_params(dep)).validate() | {"total_samples_count": 5}
    with pytest.raises(plan.PlanError, match="did you mean 'total_sample_count'"):
        plan.make_plan(values, dep, "manual__2026-11-29T02:00:00+00:00")


def test_each_scenario_gets_its_own_target_qps(deploy_env):
    """A faster engine needs a higher Offline target_qps (else LoadGen issues too few samples to last min_duration)
    while Server keeps its own rate: both in one plan."""
    plan = _plan(deploy_env, offline_target_qps=57.5, server_target_qps=55.62)
    rates = {run.scenario: [a for a in run.arguments if a.startswith("target_qps=")] for run in plan.runs
             if run.branch == "single"}          # a coordinated run offers the rate per GPU x its GPUs
    assert rates == {"Offline": ["target_qps=57.5"], "Server": ["target_qps=55.62"]}
    plan = _plan(deploy_env, server_target_qps=55.62)
    offline = next(run for run in plan.runs if run.scenario == "Offline")
    assert not any(a.startswith("target_qps=") for a in offline.arguments)      # the SUT's user.conf decides


def test_integer_overrides_reach_the_sut_as_digits(deploy_env):
    plan = _plan(deploy_env, user_conf_overrides={"min_duration": 0.0, "min_query_count": 16.0, "target_qps": 2.5},
                 server_target_qps=None)
    args = plan.runs[0].arguments
    assert "min_duration=0" in args and "min_query_count=16" in args and "target_qps=2.5" in args
