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
    ("*.*.min_durationn = 0", "'min_durationn' is not a LoadGen setting"),
    ("*.*.min_duration = -1", "must be a non-negative number"),
    ("*.*.target_qps = fast", "must be a non-negative number"),
    ("*.Interactive.target_qps = 3", "scenario 'Interactive' unknown"),
])
def test_bad_user_conf_names_file_and_line(tmp_path, line, expected):
    conf = tmp_path / "user.conf"
    conf.write_text(f"# comment\n*.Offline.target_qps = 2\n{line}\n")
    with pytest.raises(InputError) as error:
        check_user_conf(conf)
    assert f"{conf}:3" in str(error.value) and expected in str(error.value)


@pytest.mark.parametrize("text", ["min_duration", "=3", "bogus=1", "target_qps=-2"])
def test_bad_override(text):
    with pytest.raises(InputError, match="--override"):
        Override.parse(text)


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
    conf.write_text("*.Server.target_qps = 7\n*.*.min_duration = 1234\nllama3_1-8b-interactive.Server.min_query_count = 9\n")
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
