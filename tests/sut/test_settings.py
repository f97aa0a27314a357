"""LoadGen settings: mlperf.conf, then user.conf, then overrides; mistakes are named, not crashes."""
import pytest

from mlperf_sut.errors import InputError
from mlperf_sut.settings import Mode, Override, Scenario, build_settings, check_user_conf, default_user_conf

MS = 1_000_000


def _settings(tmp_path, scenario, conf_text=None, overrides=(), samples=64):
    conf = default_user_conf()
    if conf_text is not None:
        conf = tmp_path / "user.conf"
        conf.write_text(conf_text)
    return build_settings(scenario, Mode.PERFORMANCE, conf, [Override.parse(o) for o in overrides], samples,
                          tmp_path / "merged.conf")


def test_mlperf_conf_is_applied_for_every_scenario(tmp_path):
    for scenario in Scenario:
        effective = _settings(tmp_path, scenario).effective()
        assert effective["min_duration_ms"] == 600_000, scenario
        assert effective["use_token_latencies"] is True, scenario


def test_server_and_interactive_latency_limits(tmp_path):
    server = _settings(tmp_path, Scenario.SERVER).test_settings
    interactive = _settings(tmp_path, Scenario.INTERACTIVE).test_settings
    assert (server.ttft_latency, server.tpot_latency) == (2000 * MS, 100 * MS)
    assert (interactive.ttft_latency, interactive.tpot_latency) == (500 * MS, 30 * MS)
    assert interactive.server_target_qps == 10  # the shipped user.conf's interactive line


def test_user_conf_then_override(tmp_path):
    settings = _settings(tmp_path, Scenario.OFFLINE, "llama3_1-8b.Offline.min_query_count = 50\n*.*.min_duration = 7\n",
                         overrides=["min_query_count=16"])
    assert settings.test_settings.min_query_count == 16
    assert settings.test_settings.min_duration_ms == 7


def test_performance_sample_count_fits_the_subset(tmp_path):
    settings = _settings(tmp_path, Scenario.OFFLINE, samples=16)
    assert settings.test_settings.performance_sample_count_override == 16
    assert "lowered" in settings.notes[0]


@pytest.mark.parametrize("line, expected", [
    ("min_duration 0", "is not a setting"),
    ("*.*.min_durationn = 0", "'min_durationn' is not a LoadGen user.conf setting; did you mean 'min_duration'?"),
    ("*.*.min_duration = -1", "must be a whole number without sign"),
    ("*.*.min_query_count = 1e3", "must be a whole number"),        # LoadGen's strtoull would read 1
    ("*.*.min_query_count = 010", "must be a whole number"),        # ... and 8
    ("*.*.min_query_count = 12.5", "must be a whole number"),
    ("*.*.target_qps = fast", "must be a non-negative decimal number"),
    ("*.Server.target_qps = 1e12", "target_qps = 1e12 is above the maximum 15,000 (LoadGen builds its whole schedule"),
    ("*.*.min_duration = 100000000000", "is above the maximum 86,400,000"),
    ("*.*.sample_concatenate_permutation = 2", "must be one of [0, 1]"),
    ("*.*.target_latency_percentile = 0.9", "is below the minimum 50 (A percent, not a fraction"),
    ("*.*.qsl_rng_seed = 1", "'qsl_rng_seed' cannot be set here: LoadGen reads it only from its compiled-in mlperf"),
    ("*.Interactive.target_qps = 3", "scenario 'Interactive' unknown"),
])
def test_bad_user_conf_names_file_and_line(tmp_path, line, expected):
    conf = tmp_path / "user.conf"
    conf.write_text(f"# comment\n*.Offline.target_qps = 2\n{line}\n")
    with pytest.raises(InputError) as error:
        check_user_conf(conf)
    assert f"{conf}:3" in str(error.value) and expected in str(error.value)


@pytest.mark.parametrize("text", ["min_duration", "=3", "bogus=1", "target_qps=-2",
                                  "min_duration=0\n*.Offline.target_qps = 1", "min_query_count=1e300",
                                  "target_qps=inf", "target_qps=nan"])
def test_bad_override(text):
    with pytest.raises(InputError, match="--override"):
        Override.parse(text)


def test_a_huge_value_is_refused_without_flooding_the_log():
    with pytest.raises(InputError) as error:
        Override.parse("min_duration=" + "9" * 5_000_000)
    assert len(str(error.value)) < 1000 and "5,000,013 characters" in str(error.value)
    assert "longer than any LoadGen number" in str(error.value)


def test_every_schema_key_changes_loadgens_settings(tmp_path):
    """The schema lists only keys LoadGen reads from a user.conf: each one, set in a user.conf, changes a field."""
    from mlperf_sut.settings import known_keys, user_conf_schema

    base = {s: _settings(tmp_path, s, "").effective() for s in (Scenario.OFFLINE, Scenario.SERVER)}
    for key in known_keys():
        spec = user_conf_schema()["properties"][key]
        values = spec.get("enum") or [spec.get("minimum", 1) or 1, spec.get("maximum", 2)]
        changed = False
        for value in values:
            # the scaling factor is read only when latencies are inferred: compare beside that switch alone
            prefix = "*.*.infer_token_latencies = 1\n" if key == "token_latency_scaling_factor" else ""
            for scenario in base:
                before = _settings(tmp_path, scenario, prefix).effective() if prefix else base[scenario]
                got = _settings(tmp_path, scenario, f"{prefix}*.*.{key} = {value}\n").effective()
                changed |= got != before
        assert changed, key


def test_a_schedule_loadgen_cannot_hold_is_refused_with_the_figure(tmp_path):
    """LoadGen builds a performance test's whole schedule up front; rate x duration beyond the schema's limit is
    refused before LoadGen starts, naming the count and the memory it would take."""
    with pytest.raises(InputError) as error:
        _settings(tmp_path, Scenario.SERVER, overrides=["target_qps=10000", "min_duration=3600000"])
    message = str(error.value)
    assert "Server: target_qps 10000/s x min_duration 3600 s = 36,000,000 samples" in message
    assert "~16.6 GB" in message and "the limit is 10,000,000" in message
    with pytest.raises(InputError, match=r"Offline: target_qps 10000/s x 1.1 x min_duration 1000 s = 11,000,000"):
        _settings(tmp_path, Scenario.OFFLINE, overrides=["target_qps=10000", "min_duration=1000000"])
    # the same rate over MLPerf's 600 s fits; an accuracy test schedules only the data set
    assert _settings(tmp_path, Scenario.SERVER, overrides=["target_qps=10000"]).test_settings.server_target_qps == 10000
    build_settings(Scenario.SERVER, Mode.ACCURACY, default_user_conf(),
                   [Override.parse("target_qps=10000"), Override.parse("min_duration=3600000")], 64,
                   tmp_path / "merged.conf")


def test_unknown_scenario():
    with pytest.raises(InputError, match="--scenario MultiStream: unknown"):
        Scenario.parse("MultiStream")


def test_settings_equal_loadgens_own_user_conf_load_in_a_fresh_process(tmp_path):
    """build_settings loads mlperf.conf and the user.conf without LoadGen's conf counter (so a second test in a
    process stays clean); the result must be what LoadGen's default FromConfig gives in a new process."""
    import json
    import subprocess
    import sys

    conf = tmp_path / "user.conf"
    conf.write_text("*.Server.target_qps = 7\n*.*.min_duration = 1234\n"
                    "llama3_1-8b-interactive.Server.min_query_count = 9\n")
    ours = {}
    for scenario in (Scenario.OFFLINE, Scenario.SERVER, Scenario.INTERACTIVE):
        ours[scenario.label] = {k: v for k, v in _settings(tmp_path, scenario, conf.read_text()).effective().items()
                                if k not in ("mode", "scenario", "performance_sample_count_override")}
    script = (
        "import json, sys, mlperf_loadgen as lg\n"
        "s = lg.TestSettings()\n"
        "assert s.FromConfig(sys.argv[1], sys.argv[2], sys.argv[3]) == 0\n"
        "print(json.dumps({n: getattr(s, n) for n in dir(s) if not n.startswith('_') and n not in "
        "('FromConfig', 'mode', 'scenario', 'performance_sample_count_override')}))\n")
    for scenario in (Scenario.OFFLINE, Scenario.SERVER, Scenario.INTERACTIVE):
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "merged.conf"), scenario.loadgen_model,
                               scenario.loadgen_scenario], capture_output=True, text=True, timeout=60, check=True)
        fresh = json.loads(done.stdout.strip().splitlines()[-1])
        assert json.loads(json.dumps(ours[scenario.label])) == fresh, scenario
    assert ours["Server"]["server_target_qps"] == 7 and ours["Offline"]["min_duration_ms"] == 1234
    assert ours["Interactive"]["min_query_count"] == 9 and ours["Server"]["min_query_count"] != 9
