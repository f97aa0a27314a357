"""LoadGen test settings: the embedded mlperf.conf for llama3.1-8b, then a user.conf, then single overrides.

Settings stay in LoadGen's own user.conf format (`model.scenario.key = value`). LoadGen accepts unknown keys
silently and wraps negative numbers, so the user.conf and overrides are checked here first and a mistake is
reported with the file, line and key instead of a silently different run.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mlperf_sut.errors import InputError

# Keys LoadGen 6.0.17 reads from a user.conf (checked against the wheel: each changes a TestSettings field).
KNOWN_KEYS = frozenset({
    "qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed", "accuracy_log_rng_seed",
    "accuracy_log_probability", "accuracy_log_sampling_target", "test05", "test05_qsl_rng_seed",
    "test05_sample_index_rng_seed", "test05_schedule_rng_seed", "target_latency_percentile", "target_latency",
    "target_qps", "min_duration", "max_duration", "min_query_count", "max_query_count",
    "performance_sample_count_override", "accuracy_sample_count_override", "sample_concatenate_permutation",
    "print_timestamps", "performance_issue_unique", "performance_issue_same", "performance_issue_same_index",
    "samples_per_query", "max_async_queries", "coalesce_queries", "server_num_issue_query_threads",
    "use_token_latencies", "ttft_latency", "tpot_latency", "infer_token_latencies", "token_latency_scaling_factor",
})
_LINE = re.compile(r"^(?P<model>[\w.*-]+?)\.(?P<scenario>[\w*]+)\.(?P<key>\w+)\s*=\s*(?P<value>\S+)$")
_NUMBER = re.compile(r"^\d+(\.\d+)?$")


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
            raise InputError(f"--override {text!r}: expected KEY=VALUE, e.g. --override min_duration=0")
        _check_key_value(key, value, f"--override {text!r}")
        return cls(key, value)


def default_user_conf() -> Path:
    """The user.conf shipped in the package (production defaults for an H200)."""
    return Path(str(resources.files("mlperf_sut") / "user.conf"))


def check_user_conf(path: Path) -> list[str]:
    """The file's setting lines, after checking each one; raises InputError naming file, line and problem."""
    if not path.is_file():
        raise InputError(f"--user-conf {path}: no such file")
    lines = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{number}"
        match = _LINE.match(line)
        if not match:
            raise InputError(f"{where}: {raw.strip()!r} is not a setting; expected 'model.scenario.key = value', "
                             "e.g. '*.Server.target_qps = 10'")
        if match["scenario"] not in {"*", "Offline", "Server", "SingleStream", "MultiStream"}:
            raise InputError(f"{where}: scenario {match['scenario']!r} unknown to LoadGen; use *, Offline, Server "
                             "or SingleStream (Interactive is model 'llama3_1-8b-interactive', scenario Server)")
        _check_key_value(match["key"], match["value"], where)
        lines.append(line)
    return lines


def _check_key_value(key: str, value: str, where: str) -> None:
    if key not in KNOWN_KEYS:
        raise InputError(f"{where}: key {key!r} is not a LoadGen setting; known keys: {', '.join(sorted(KNOWN_KEYS))}")
    if not _NUMBER.match(value):
        raise InputError(f"{where}: value {value!r} of {key!r} must be a non-negative number")


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
    notes = []
    # mlperf.conf asks for the full data set's 13,368 samples; a subset can only offer what it has.
    if settings.performance_sample_count_override > sample_count:
        notes.append(f"performance_sample_count_override {settings.performance_sample_count_override} lowered to "
                     f"the {sample_count} samples available")
        settings.performance_sample_count_override = sample_count
    return LoadGenSettings(settings, text, tuple(notes))
