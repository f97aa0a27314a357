"""Engine settings as params: a preset, quantization, KV cache dtype, load format and further vLLM engine arguments
become the SUT's flags; what the SUT would refuse is refused at the door, naming the param and the nearest key."""
from __future__ import annotations

import json

import pytest

from tests.dags.test_params import _plan, serialized_params, validate  # noqa: F401  (fixture)


def flag_values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_a_preset_is_passed_by_name_with_its_rates(deploy_env):
    plan = _plan(deploy_env, engine_preset="h200-fp8", scenarios=["Offline", "Server"], server_target_qps=None,
                 distributed="off")
    offline, server = plan.runs[0].arguments, plan.runs[1].arguments
    assert flag_values(offline, "--engine-preset") == ["h200-fp8"]
    # left at their defaults, the engine params leave the preset's values alone (the SUT resolves the preset)
    assert "--max-num-seqs" not in offline and "--quantization" not in offline and "--dtype" not in offline
    assert flag_values(offline, "--tensor-parallel-size") == ["1"]        # the GPUs given: always passed
    # the LoadGen rates the preset was measured at (engine_presets.json)
    assert "target_qps=57.5" in flag_values(offline, "--override")
    assert "target_qps=55.62" in flag_values(server, "--override")


def test_explicit_params_override_the_preset(deploy_env):
    plan = _plan(deploy_env, engine_preset="h200-fp8", max_num_seqs=512, kv_cache_dtype="auto",
                 offline_target_qps=40, scenarios=["Offline"], distributed="off",
                 engine_args={"async_scheduling": False})
    args = plan.runs[0].arguments
    assert flag_values(args, "--max-num-seqs") == ["512"]
    assert flag_values(args, "--kv-cache-dtype") == ["auto"]
    assert flag_values(args, "--engine-arg") == ["async_scheduling=false"]
    assert "target_qps=40" in flag_values(args, "--override")


def test_without_a_preset_every_engine_param_becomes_a_flag(deploy_env):
    plan = _plan(deploy_env, quantization="fp8", kv_cache_dtype="fp8", load_format="dummy", scenarios=["Offline"],
                 distributed="off", engine_args={"compilation_config": {"max_cudagraph_capture_size": 1024}})
    args = plan.runs[0].arguments
    assert "--engine-preset" not in args
    assert flag_values(args, "--quantization") == ["fp8"] and flag_values(args, "--kv-cache-dtype") == ["fp8"]
    assert flag_values(args, "--load-format") == ["dummy"]
    assert flag_values(args, "--engine-arg") == ['compilation_config={"max_cudagraph_capture_size":1024}']
    # random weights: performance only; the report must never call it compliant
    assert not plan.compliant and any("load_format=dummy" in note for note in plan.notes)


def test_node_overrides_give_one_node_its_own_engine(deploy_env):
    plan = _plan(deploy_env, engine_preset="h200-fp8", scenarios=["Offline"], distributed="sharded",
                 mode="performance", node_overrides={"local-1": {"max_num_seqs": 256, "engine_args": {
                     "async_scheduling": False}}}, engine_args={"max_model_len": 2048})
    by_node = {r.name: r.arguments for r in plan.runs}
    first, second = by_node["single/local-0/Offline/performance"], by_node["single/local-1/Offline/performance"]
    assert "--max-num-seqs" not in first and flag_values(second, "--max-num-seqs") == ["256"]
    # an engine argument the SUT has a flag for reaches it as that flag
    assert flag_values(first, "--max-model-len") == ["2048"] and "--engine-arg" not in first
    assert flag_values(second, "--engine-arg") == ["async_scheduling=false"]
    assert flag_values(second, "--max-model-len") == ["2048"]
    assert flag_values(by_node["distributed/local-1/Offline/performance"], "--max-num-seqs") == ["256"]


@pytest.mark.parametrize("conf, message", [
    ({"engine_args": {"asyn_scheduling": True}}, r"^engine_args: 'asyn_scheduling' is not a vLLM .*did you mean "
                                                  r"'async_scheduling'\?"),
    ({"engine_args": {"enable_prefix_caching": True}}, r"^engine_args: 'enable_prefix_caching' is refused: LoadGen"),
    ({"engine_args": {"max_num_seqs": 8}}, r"^engine_args: 'max_num_seqs' has its own setting: use the param"),
    ({"node_overrides": {"local-1": {"engine_args": {"bogus_arg": 1}}}},
     r"^node_overrides.local-1.engine_args: 'bogus_arg' is not a vLLM"),
])
def test_engine_args_the_sut_would_refuse_are_refused_at_the_door(deploy_env, conf, message):
    from include import deployment
    from include.planning.plan import PlanError, check_at_the_door

    with pytest.raises(PlanError, match=message):
        check_at_the_door(conf, deployment.load())


@pytest.mark.parametrize("conf, param", [
    ({"engine_preset": "h300-fp4"}, "engine_preset"),
    ({"quantization": "fp3"}, "quantization"),
    ({"kv_cache_dtype": "int3"}, "kv_cache_dtype"),
    ({"load_format": "safetensors-please"}, "load_format"),
    ({"engine_args": {"async_scheduling": "yes"}}, "engine_args"),
    ({"node_overrides": {"local-0": {"tensor_parallel_size": 2}}}, "node_overrides"),
])
def test_bad_engine_values_are_refused_by_the_params_schema(serialized_params, conf, param):  # noqa: F811
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match=f"param {param}:"):
        validate(serialized_params, conf)


def test_the_params_offer_what_the_pinned_vllm_accepts(serialized_params):  # noqa: F811
    from include.planning.plan import SUT_PACKAGE

    schema = json.loads((SUT_PACKAGE / "engine_args.schema.json").read_text())
    presets = json.loads((SUT_PACKAGE / "engine_presets.json").read_text())["presets"]
    assert "fp8" in serialized_params.get_param("quantization").schema["enum"]
    assert "fp8" in serialized_params.get_param("kv_cache_dtype").schema["enum"]
    assert set(serialized_params.get_param("engine_preset").schema["enum"]) == {None, *presets}
    offered = serialized_params.get_param("engine_args").schema["properties"]
    assert "async_scheduling" in offered and "compilation_config" in offered
    assert not set(offered) & set(schema["x-refused"])
    assert not set(offered) & {"dtype", "quantization", "kv_cache_dtype", "max_num_seqs", "load_format", "model"}


def test_a_coordinated_run_offers_the_per_gpu_rate_times_its_gpus(deploy_env):
    """The rates (params and a preset's) are per GPU: one LoadGen over two GPUs at one GPU's Offline rate would
    issue half the samples 600 s need (INVALID) and drive Server at half the load the pair can take."""
    plan = _plan(deploy_env, engine_preset="h200-fp8", scenarios=["Offline", "Server"], server_target_qps=None,
                 distributed="coordinated", distributed_scenarios=["Offline", "Server"])
    rates = {(run.branch, run.label, run.scenario): [v for v in flag_values(run.arguments, "--override")
                                                     if v.startswith("target_qps=")] for run in plan.runs}
    nodes = plan.nodes
    assert len(nodes) == 2
    for node in nodes:
        assert rates[("single", node, "Offline")] == ["target_qps=57.5"]
        assert rates[("single", node, "Server")] == ["target_qps=55.62"]
    assert rates[("distributed", "coordinated", "Offline")] == ["target_qps=115"]
    assert rates[("distributed", "coordinated", "Server")] == ["target_qps=111.24"]
    # sharded: each node's LoadGen runs its own shard on its own GPU, at one GPU's rate
    plan = _plan(deploy_env, server_target_qps=50, scenarios=["Server"], distributed="sharded",
                 distributed_scenarios=["Server"])
    assert {tuple(v for v in flag_values(run.arguments, "--override") if v.startswith("target_qps="))
            for run in plan.runs} == {("target_qps=50",)}
    # user_conf_overrides' target_qps is LoadGen's own setting: as given, for every run
    plan = _plan(deploy_env, user_conf_overrides={"target_qps": 30}, server_target_qps=None, scenarios=["Server"],
                 distributed="coordinated", distributed_scenarios=["Server"])
    assert {tuple(v for v in flag_values(run.arguments, "--override") if v.startswith("target_qps="))
            for run in plan.runs} == {("target_qps=30",)}


def test_a_coordinated_rate_beyond_loadgens_limits_is_refused_at_the_door(deploy_env):
    from include.planning import plan as plan_module

    # 9,000 queries/s on each GPU fits LoadGen; one LoadGen offering 2 x 9,000 does not (the SUT would refuse it)
    _plan(deploy_env, server_target_qps=9000, scenarios=["Server"], distributed="off")
    with pytest.raises(plan_module.PlanError, match=r"server_target_qps.*coordinated run over 2 GPUs offers "
                                                    r"2 x 9000/s = 18000/s"):
        _plan(deploy_env, server_target_qps=9000, scenarios=["Server"], distributed="coordinated",
              distributed_scenarios=["Server"])
    # and the schedule counts the pair's queries: 2 x 7,000/s x 1.1 x 600 s fits, 2 x 7,500/s x 1.1 x 1,000 s not
    _plan(deploy_env, offline_target_qps=7000, scenarios=["Offline"], distributed="coordinated")
    with pytest.raises(plan_module.PlanError, match=r"offline_target_qps 7500/s x 2 GPUs x 1.1 x min_duration"):
        _plan(deploy_env, offline_target_qps=7500, scenarios=["Offline"], distributed="coordinated",
              user_conf_overrides={"min_duration": 1_000_000})
