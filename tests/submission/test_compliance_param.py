"""The param `compliance_tests`: TEST06 by default on the full profile, off on the embedded one; validated by its
schema like every param (the same Param the trigger form, Airflow and the trigger guard read); each node runs the
test per scenario into <scenario>/TEST06/, and those runs are no results of their own."""
from __future__ import annotations

import pytest


def plan_for(monkeypatch, profile: str, **conf):
    from airflow.sdk.definitions.param import ParamsDict

    from include import deployment
    from include.planning import plan

    monkeypatch.setenv("MLPERF_PROFILE", profile)
    dep = deployment.load()
    params = ParamsDict(plan.trigger_params(dep))
    for key, value in conf.items():
        params[key] = value
    return plan.make_plan(params.validate(), dep, "manual__2026-11-29T02:00:00+00:00")


def _compliance_tests(plan):
    return [(r, t) for r in plan.runs for t in r.tests if t.compliance_test]


def test_embedded_default_runs_no_compliance_test(deploy_env, monkeypatch):
    plan = plan_for(monkeypatch, "embedded")
    assert plan.params["compliance_tests"] == []
    assert not _compliance_tests(plan) and not any("--compliance-test" in r.arguments for r in plan.runs)


def test_full_profile_runs_test06_per_node_and_scenario(deploy_env, monkeypatch):
    plan = plan_for(monkeypatch, "full", total_sample_count=16)
    # TEST06 is the last test of each node's process per scenario, on the engine of its performance and accuracy runs
    assert [r.name for r in plan.runs if r.branch == "single"] == [
        f"single/{n}/{s}/performance+accuracy+TEST06" for n in ("local-0", "local-1") for s in ("Offline", "Server")]
    run, test = _compliance_tests(plan)[1]
    assert test.output_dir.endswith("/single/local-0/Server/TEST06") and test.mode == "performance"
    assert run.arguments[:5] == ["run", "--scenario", "Server", "--mode", "performance"]
    assert run.arguments[run.arguments.index("--also", run.arguments.index("--also") + 1) + 1] == \
        f"TEST06={test.output_dir}"
    assert "--compliance-test" not in run.arguments         # only for a process whose first test is compliance
    from include import pipeline

    parsed = pipeline.parse_plan(plan.to_dict())
    assert sorted(r.run_dir for r in parsed) == sorted(t.output_dir for r in plan.runs for t in r.tests
                                                       if not t.compliance_test)
    assert not any(r.run_dir.endswith("TEST06") for r in parsed)


def test_a_compliance_test_alone_is_its_processs_main_test(deploy_env, monkeypatch):
    plan = plan_for(monkeypatch, "full", total_sample_count=16, mode="accuracy", accuracy_scenarios=["Offline"])
    server = next(r for r in plan.runs if r.name == "single/local-0/Server/TEST06")
    assert server.arguments[server.arguments.index("--compliance-test") + 1] == "TEST06"
    assert server.output_dir.endswith("/single/local-0/Server/TEST06") and "--also" not in server.arguments


def test_full_profile_without_test06_says_it_is_not_submittable(deploy_env, monkeypatch):
    plan = plan_for(monkeypatch, "full", total_sample_count=16, compliance_tests=[])
    assert any("TEST06 not run (param compliance_tests)" in note for note in plan.notes)


def test_an_unknown_compliance_test_is_refused_naming_the_param(dag):
    from airflow.sdk.exceptions import ParamValidationError
    from airflow.serialization.serialized_objects import DagSerialization

    params = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)).params
    with pytest.raises(ParamValidationError, match="param compliance_tests:"):
        params.deep_merge({"compliance_tests": ["TEST01"]}).validate()
