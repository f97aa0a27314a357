"""LoadGen test settings: the embedded mlperf.conf for llama3.1-8b, then a user.conf, then single overrides.

Settings stay in LoadGen's own user.conf format (`model.scenario.key = value`). LoadGen accepts unknown keys
silently and wraps negative numbers, so the user.conf and overrides are checked here first and a mistake is
reported with the file, line and key instead of a silently different run.
"""
from __future__ import annotations

import difflib
import enum
import functools
import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mlperf_sut.errors import InputError

SCHEMA_FILE = "user_conf.schema.json"
_LINE = re.compile(r"^(?P<model>[\w.*-]+?)\.(?P<scenario>[\w*]+)\.(?P<key>\w+)\s*=\s*(?P<value>\S+)$")
# Plain decimals only: LoadGen parses integers with strtoull(base 0), so "010" is 8 and "1e3" or "1.5" is 1.
_INTEGER = re.compile(r"0|[1-9][0-9]*")
_NUMBER = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_MAX_VALUE_CHARS = 32


@functools.cache
def user_conf_schema() -> dict:
    """The accepted user.conf keys, types and ranges (user_conf.schema.json, shared with the Airflow side)."""
    return json.loads((resources.files("mlperf_sut") / SCHEMA_FILE).read_text())


def known_keys() -> list[str]:
    return sorted(user_conf_schema()["properties"])


def shown(text: str, limit: int = 60) -> str:
    """`text` for an error message: repr, cut to `limit` characters (a 5 MB value must not flood the log)."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text):,} characters)"


class Scenario(enum.Enum):
    """The benchmark's scenarios and how each is expressed to LoadGen (model name in mlperf.conf, LoadGen scenario).

    Interactive is LoadGen's Server scenario under the model name `llama3_1-8b-interactive`, whose mlperf.conf
    entries carry the tighter latency limits (TTFT 500 ms, TPOT 30 ms).
    """

    OFFLINE = ("Offline", "llama3_1-8b", "Offline")
    SERVER = ("Server", "llama3_1-8b", "Server")
    INTERACTIVE = ("Interactive", "llama3_1-8b-interactive", "Server")
    SINGLE_STREAM = ("SingleStream", "llama3_1-8b", "SingleStream")

    def __init__(self, label: str, loadgen_model: str, loadgen_scenario: str) -> None:
        self.label = label
        self.loadgen_model = loadgen_model
        self.loadgen_scenario = loadgen_scenario

    @classmethod
    def parse(cls, label: str) -> Scenario:
        return _by_label(cls, label, "--scenario")

    @property
    def streaming(self) -> bool:
        """Latency scenarios: queries arrive one by one and the first token is reported (TTFT)."""
        return self is not Scenario.OFFLINE


class Mode(enum.Enum):
    PERFORMANCE = ("performance", "PerformanceOnly")
    ACCURACY = ("accuracy", "AccuracyOnly")

    def __init__(self, label: str, loadgen_mode: str) -> None:
        self.label = label
        self.loadgen_mode = loadgen_mode

    @classmethod
    def parse(cls, label: str) -> Mode:
        return _by_label(cls, label, "--mode")


def _by_label(members, label: str, flag: str):
    """The enum member with this label, or an error naming the flag and the choices."""
    for member in members:
        if member.label == label:
            return member
    raise InputError(f"{flag} {label}: unknown; choose one of {', '.join(m.label for m in members)}")


@dataclass(frozen=True, slots=True)
class Override:
    """One `--override KEY=VALUE`: applied to the run's exact model and scenario, so it beats any user.conf line."""

    key: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Override:
        key, sep, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise InputError(f"--override {shown(text)}: expected KEY=VALUE, e.g. --override min_duration=0")
        _check_key_value(key, value, f"--override {shown(text)}")
        return cls(key, value)


def default_user_conf() -> Path:
    """The user.conf shipped in the package (production defaults for an H200)."""
    return Path(str(resources.files("mlperf_sut") / "user.conf"))


def check_user_conf(path: Path) -> list[str]:
    """The file's setting lines, after checking each one; raises InputError naming file, line and problem."""
    if not path.is_file():
        raise InputError(f"--user-conf {path}: no such file")
    lines = []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"--user-conf {path}: cannot read it ({getattr(error, 'strerror', None) or error})") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{number}"
        match = _LINE.match(line)
        if not match:
            raise InputError(f"{where}: {shown(raw.strip())} is not a setting; expected 'model.scenario.key = value', "
                             "e.g. '*.Server.target_qps = 10'")
        if match["scenario"] not in {"*", "Offline", "Server", "SingleStream", "MultiStream"}:
            raise InputError(f"{where}: scenario {match['scenario']!r} unknown to LoadGen; use *, Offline, Server "
                             "or SingleStream (Interactive is model 'llama3_1-8b-interactive', scenario Server)")
        _check_key_value(match["key"], match["value"], where)
        lines.append(line)
    return lines


def _check_key_value(key: str, value: str, where: str) -> None:
    """The key is one LoadGen reads from a user.conf and the value a number of its type within its schema bounds."""
    schema = user_conf_schema()
    spec = schema["properties"].get(key)
    if spec is None:
        ignored = schema["x-ignored"].get(key)
        if ignored:
            raise InputError(f"{where}: key {shown(key)} cannot be set here: {ignored}")
        nearest = difflib.get_close_matches(key, known_keys(), n=1)
        hint = f"did you mean {nearest[0]!r}? " if nearest else ""
        raise InputError(f"{where}: key {shown(key)} is not a LoadGen user.conf setting; {hint}"
                         f"known keys: {', '.join(known_keys())}")
    if len(value) > _MAX_VALUE_CHARS:
        raise InputError(f"{where}: value {shown(value)} of {key!r} is longer than any LoadGen number "
                         f"({_MAX_VALUE_CHARS} characters: the largest, an unsigned 64-bit integer, has 20 digits)")
    integer = spec["type"] == "integer"
    if not (_INTEGER if integer else _NUMBER).fullmatch(value):
        kind = "a whole number without sign, point or exponent" if integer else "a non-negative decimal number"
        how = "it with strtoull: 1.5 and 1e3 would be 1, 010 would be 8" if integer else "it with strtod"
        raise InputError(f"{where}: value {shown(value)} of {key!r} must be {kind} (LoadGen reads {how})")
    number = int(value) if integer else float(value)
    problem = _out_of_bounds(spec, number)
    if problem:
        raise InputError(f"{where}: {key} = {value} {problem} ({spec['x-reason']})")


def _out_of_bounds(spec: dict, number: float) -> str | None:
    """What is wrong with `number` under the schema's bounds, or None (the JSON-schema keywords the file uses)."""
    if not math.isfinite(number):
        return "is not a finite number"
    if "enum" in spec and number not in spec["enum"]:
        return f"must be one of {spec['enum']}"
    if "minimum" in spec and number < spec["minimum"]:
        return f"is below the minimum {spec['minimum']:,}"
    if "exclusiveMinimum" in spec and number <= spec["exclusiveMinimum"]:
        return f"must be greater than {spec['exclusiveMinimum']:,}"
    if "maximum" in spec and number > spec["maximum"]:
        return f"is above the maximum {spec['maximum']:,}"
    return None


def scheduled_samples(settings, scenario: Scenario) -> int:
    """Samples LoadGen schedules in memory before a performance test's first query (user_conf.schema.json's
    x-schedule says why this is bounded)."""
    limits = user_conf_schema()["x-schedule"]
    duration_s = settings.min_duration_ms / 1000
    if scenario is Scenario.OFFLINE:
        if settings.performance_issue_unique or settings.performance_issue_same:
            return int(settings.performance_sample_count_override)
        wanted = limits["offline_slack"] * settings.offline_expected_qps * duration_s
    elif scenario is Scenario.SINGLE_STREAM:
        wanted = duration_s / (settings.single_stream_expected_latency_ns / 1e9)
    else:
        wanted = settings.server_target_qps * duration_s
    count = max(int(settings.min_query_count), math.ceil(wanted))
    return min(count, int(settings.max_query_count)) if settings.max_query_count else count


def check_schedule(settings, scenario: Scenario, mode: Mode) -> None:
    """Refuse (exit 2) a performance test whose schedule LoadGen could not build in memory, with the figure."""
    if mode is not Mode.PERFORMANCE:
        return
    limits = user_conf_schema()["x-schedule"]
    count = scheduled_samples(settings, scenario)
    if count > limits["max_samples"]:
        rate = {Scenario.OFFLINE: f"target_qps {settings.offline_expected_qps:g}/s x 1.1",
                Scenario.SINGLE_STREAM: f"1 / target_latency {settings.single_stream_expected_latency_ns / 1e6:g} ms"
                }.get(scenario, f"target_qps {settings.server_target_qps:g}/s")
        raise InputError(
            f"{scenario.label}: {rate} x min_duration {settings.min_duration_ms / 1000:g} s = {count:,} samples, "
            "which LoadGen schedules in memory before the first query "
            f"(~{count * limits['bytes_per_sample'] / 1e9:,.1f} GB at {limits['bytes_per_sample']} bytes each); "
            f"the limit is {limits['max_samples']:,}: lower target_qps or min_duration")


# MLCommons' compliance/TEST06/audit.config (mlcommons/inference): the settings LoadGen applies over the run's own
# when it finds this file at StartTest (loadgen.cc), for llama3.1-8b's one compliance test: a performance run of
# 100 queries whose responses are logged for run_verification.py's three checks.
COMPLIANCE_TESTS = ("TEST06",)
AUDIT_CONFIG = "audit.config"
TEST06_AUDIT_CONFIG = """# TEST06 (mlcommons/inference compliance/TEST06/audit.config)
*.*.mode = 2
*.*.accuracy_log_rng_seed = 720381539243781796
*.*.accuracy_log_sampling_target = 100
*.*.min_query_count = 100
*.*.min_duration = 0
*.*.sample_concatenate_permutation = 0
"""
MLPERF_CONF = "mlperf.conf"
_MLPERF_CONF_START = b"# The format of this config file is 'key = value'."


def embedded_mlperf_conf() -> str:
    """The mlperf.conf compiled into this LoadGen (setup.py embeds it as the C string `mlperf_conf`): the file a
    submission keeps beside user.conf. Read from the extension module's bytes, as LoadGen offers no call for it."""
    import mlperf_loadgen as lg

    data = Path(lg.__file__).read_bytes()
    start = data.find(_MLPERF_CONF_START)
    if start < 0:
        raise RuntimeError(f"{lg.__file__}: no embedded mlperf.conf found")
    return data[start:data.index(b"\0", start)].decode("utf-8")


@dataclass(frozen=True, slots=True)
class LoadGenSettings:
    """The TestSettings LoadGen will run with, and the merged user.conf that produced them (kept with the logs)."""

    test_settings: object  # mlperf_loadgen.TestSettings (imported lazily: `--help` must work without LoadGen)
    user_conf_text: str
    notes: tuple[str, ...]

    def effective(self) -> dict:
        """Every TestSettings field, for result.json (enums by name)."""
        values = {}
        for name in dir(self.test_settings):
            if name.startswith("_") or name == "FromConfig":
                continue
            value = getattr(self.test_settings, name)
            values[name] = value.name if hasattr(value, "name") else value
        return values


def build_settings(scenario: Scenario, mode: Mode, user_conf: Path, overrides: list[Override],
                   sample_count: int, merged_conf: Path) -> LoadGenSettings:
    """mlperf.conf (embedded in LoadGen), then `user_conf`, then overrides; written to `merged_conf` for LoadGen."""
    import mlperf_loadgen as lg

    lines = check_user_conf(user_conf)
    lines += [f"{scenario.loadgen_model}.{scenario.loadgen_scenario}.{o.key} = {o.value}" for o in overrides]
    text = f"# merged from {user_conf} and --override flags\n" + "\n".join(lines) + "\n"
    merged_conf.write_text(text)
    settings = lg.TestSettings()
    # LoadGen 6.0.17's FromConfig(path, model, scenario, conf_type): type 0 reads the mlperf.conf compiled into the
    # wheel (and the keys only it may set: seeds, accuracy_log_probability, test05); any other type reads `path`
    # as a user.conf. Type 1, the default, also counts calls in a process-wide static: the first applies mlperf.conf
    # itself, every later one logs error_invalid_config "Multiple conf files are used" into that test's detail log
    # and leaves mlperf.conf out. So a process with several tests (search-qps, the GPU benchmarks' prepare/measure)
    # marked every test after the first as not submittable. Each test here loads mlperf.conf explicitly (type 0),
    # then its one user.conf as type 2, the user.conf path without the counter, which LoadGen itself uses to apply
    # audit.config over the settings (loadgen.cc). The settings are those of type 1 in a fresh process (tested).
    if settings.FromConfig("", scenario.loadgen_model, scenario.loadgen_scenario, 0) != 0:
        raise RuntimeError(f"LoadGen could not read its embedded mlperf.conf for {scenario.loadgen_model}")
    if settings.FromConfig(str(merged_conf), scenario.loadgen_model, scenario.loadgen_scenario, 2) != 0:
        raise InputError(f"{user_conf}: LoadGen rejected the settings (merged file: {merged_conf})")
    settings.scenario = getattr(lg.TestScenario, scenario.loadgen_scenario)
    settings.mode = getattr(lg.TestMode, mode.loadgen_mode)
    check_schedule(settings, scenario, mode)
    notes = []
    # mlperf.conf asks for the full data set's 13,368 samples; a subset can only offer what it has.
    if settings.performance_sample_count_override > sample_count:
        notes.append(f"performance_sample_count_override {settings.performance_sample_count_override} lowered to "
                     f"the {sample_count} samples available")
        settings.performance_sample_count_override = sample_count
    return LoadGenSettings(settings, text, tuple(notes))


def also_tests() -> list[str]:
    """What `run --also` accepts: a mode, or a compliance test (a performance run with LoadGen's audit.config)."""
    return [*(m.label for m in Mode), *COMPLIANCE_TESTS]
