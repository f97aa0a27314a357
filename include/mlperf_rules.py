"""MLPerf Inference's rules for llama3.1-8b, defined once.

LoadGen owns its settings and logs the effective values (read them from the log where a run exists); this module
holds what must be known before a run or without a log: the data set's size, the minimum duration and query count,
the latency limits per scenario, the accuracy targets, and the LoadGen keys the results are read from. Nothing
outside this module spells these figures.

Sources: MLCommons inference v5.1 `mlperf.conf` (compiled into the mlcommons-loadgen wheel), the llama3.1-8b
reference `evaluation.py` and the submission rules.
"""
from __future__ import annotations

from dataclasses import dataclass

BENCHMARK = "llama3.1-8b"
LOADGEN_MODEL = "llama3_1-8b"                 # LoadGen's model name in mlperf.conf / user.conf
LOADGEN_MODEL_INTERACTIVE = "llama3_1-8b-interactive"

DATASET_SAMPLES = 13_368                      # cnn_eval.json, CNN/DailyMail 3.0.0 validation (datacenter)
EDGE_DATASET_SAMPLES = 5_000
MIN_DURATION_S = 600                          # every scenario's min_duration
OFFLINE_MIN_QUERY_COUNT = DATASET_SAMPLES     # llama3_1-8b.Offline.min_query_count
OUTPUT_MAX_TOKENS = 128                       # the reference generation's max_tokens

SCENARIOS = ("Offline", "Server", "Interactive", "SingleStream")
# Interactive is LoadGen's Server scenario run under the model name llama3_1-8b-interactive (tighter limits).
LOADGEN_SCENARIO = {"Interactive": "Server"}


@dataclass(frozen=True)
class LatencyLimits:
    """p99 limits of a latency-bound scenario (use_token_latencies=1), in ms."""

    ttft_ms: float
    tpot_ms: float


LATENCY_LIMITS = {"Server": LatencyLimits(ttft_ms=2000.0, tpot_ms=100.0),
                  "Interactive": LatencyLimits(ttft_ms=500.0, tpot_ms=30.0)}


def latency_scenario(ttft_ms: float | None, tpot_ms: float | None) -> str | None:
    """Which latency-bound scenario a Server-mode LoadGen run was, from the limits it was asked to meet.

    LoadGen logs the requested limits (`requested_server_ttft_latency`, `requested_server_tpot_latency`); a run
    whose limits are Interactive's (or tighter) is Interactive, any other is Server. None when neither is known.
    """
    if ttft_ms is None and tpot_ms is None:
        return None
    interactive = LATENCY_LIMITS["Interactive"]
    tighter = [(value, limit) for value, limit in ((ttft_ms, interactive.ttft_ms), (tpot_ms, interactive.tpot_ms))
               if value is not None]
    return "Interactive" if all(value <= limit for value, limit in tighter) else "Server"


@dataclass(frozen=True)
class AccuracyTargets:
    """Accuracy targets of one data set: each ROUGE must reach ROUGE_FRACTION of its target, gen_len lie in
    GEN_LEN_RANGE of its target, and every sample be scored (gen_num)."""

    rouge1: float
    rouge2: float
    rougeL: float
    rougeLsum: float
    gen_len: int
    gen_num: int


ACCURACY_TARGETS = {
    "datacenter": AccuracyTargets(38.7792, 15.9075, 24.4957, 35.793, gen_len=8_167_644, gen_num=DATASET_SAMPLES),
    "edge": AccuracyTargets(39.06, 16.1147, 24.6375, 36.124, gen_len=3_051_113, gen_num=EDGE_DATASET_SAMPLES),
}
ROUGE_FRACTION = 0.99
GEN_LEN_RANGE = (0.9, 1.1)

# Equal issue: MLPerf's llama3.1-8b rules set sample_concatenate_permutation=1 (whole passes over the data set).
EQUAL_ISSUE_SETTING = "sample_concatenate_permutation"

# LoadGen's result keys. Summary (mlperf_log_summary.txt) and detail log (:::MLLOG JSON lines).
SUMMARY_TOKENS_KEY = {"Offline": "Tokens per second", "Server": "Completed tokens per second"}
DETAIL_TOKENS_KEY = {"Offline": "result_tokens_per_second", "Server": "result_completed_tokens_per_second"}
DETAIL_TTFT_P99_KEY = "result_first_token_99.00_percentile_latency_ns"
DETAIL_TPOT_P99_KEY = "result_time_per_output_token_99.00_percentile_ns"
# LoadGen's error when a process loads settings from more than one conf file: no official submission may carry it.
MULTIPLE_CONF_ERROR = "Multiple conf files are used"

COMPLIANCE_TESTS = ("TEST06",)                # the only compliance test llama3.1-8b requires

# -- The submission: what MLCommons' checker (mlcommons/inference tools/submission/submission_checker) requires of a
# llama3.1-8b result tree. Each value cites the file it was read from. The checker takes the round as `--version`;
# for llama3.1-8b its rounds v5.1, v6.0 and v6.1 differ only in the RNG seeds a run must have used (constants.py
# MODEL_CONFIG[round]["seeds"]) and, before v6.0, in where the measurements, compliance and code folders live
# (constants.py MEASUREMENTS_PATH, COMPLIANCE_PATH, SRC_PATH by round). Scenarios, sample counts, latency limits,
# accuracy targets and the file lists are the same in the three rounds.


@dataclass(frozen=True)
class CheckerRound:
    """One round of MLCommons' submission checker (its `--version`), as far as it differs for llama3.1-8b."""

    name: str                       # "v6.1"
    seeds: dict[str, int]           # constants.py MODEL_CONFIG[name]["seeds"]: the effective_* values a run must log
    # The folders under <division>/<submitter>/ (constants.py *_PATH[name]); {system}, {benchmark}, {scenario} are
    # filled in. v6.0 moved measurements and compliance into the results folder and renamed code/ to src/.
    measurements_dir: str           # MEASUREMENTS_PATH: user.conf, README.md and the measurements JSON
    compliance_dir: str             # COMPLIANCE_PATH: TEST06/ lies in it
    src_dir: str                    # SRC_PATH
    # The measurements JSON: a fixed name, or None where the checker takes the file that starts with the system's
    # name and ends in .json, "_<scenario>.json" preferred (loader.py get_measurement_path, v5.1's "{file}").
    measurements_file: str | None


_RESULTS = "results/{system}/{benchmark}/{scenario}"
MEASUREMENTS_JSON = "measurements.json"       # MEASUREMENTS_PATH v6.0 and v6.1
CHECKER_ROUNDS: dict[str, CheckerRound] = {r.name: r for r in (
    CheckerRound("v5.1", {"qsl_rng_seed": 1780908523862526354, "sample_index_rng_seed": 14771362308971278857,
                          "schedule_rng_seed": 18209322760996052031},
                 measurements_dir="measurements/{system}/{benchmark}/{scenario}",
                 compliance_dir="compliance/{system}/{benchmark}/{scenario}", src_dir="code", measurements_file=None),
    CheckerRound("v6.0", {"qsl_rng_seed": 2465351861681999779, "sample_index_rng_seed": 14276810075590677512,
                          "schedule_rng_seed": 3936089224930324775},
                 measurements_dir=_RESULTS, compliance_dir=_RESULTS, src_dir="src",
                 measurements_file=MEASUREMENTS_JSON),
    # LoadGen 6.0.17's mlperf.conf sets these: every log our SUT writes carries them.
    CheckerRound("v6.1", {"qsl_rng_seed": 2085463073848966840, "sample_index_rng_seed": 2747215439041700203,
                          "schedule_rng_seed": 16159082839903944936},
                 measurements_dir=_RESULTS, compliance_dir=_RESULTS, src_dir="src",
                 measurements_file=MEASUREMENTS_JSON),
)}
# The round our trees are laid out and checked for (`--version v6.1` of submission_checker/main.py): the round of
# LoadGen 6.0.17's seeds. Checking someone else's tree, the default is the round whose seeds its logs carry.
CHECKER_VERSION = "v6.1"
SEEDS = CHECKER_ROUNDS[CHECKER_VERSION].seeds   # the seeds our runs log (the tree's mlperf.conf sets them)


def round_of_seeds(values: dict[str, object]) -> str | None:
    """The checker round whose seeds these are ({"qsl_rng_seed": ..., ...}, as a log's effective_* values), or None
    when they are no round's."""
    return next((r.name for r in CHECKER_ROUNDS.values()
                 if all(values.get(key) == seed for key, seed in r.seeds.items())), None)


DIVISIONS = ("closed", "open", "network")     # constants.py VALID_DIVISIONS
AVAILABILITIES = ("available", "preview", "rdi")   # constants.py VALID_AVAILABILITIES (system json "status")
SYSTEM_TYPE = "datacenter"                    # llama3.1-8b (not -edge) is in the datacenter suite (constants.py)
# constants.py "required-scenarios-datacenter" / "optional-scenarios-datacenter"; loader.py check_scenarios also
# wants one of the optional pair in closed and network divisions.
REQUIRED_SCENARIOS = ("Offline",)
ONE_OF_SCENARIOS = ("Interactive", "Server")
# constants.py REQUIRED_PERF_FILES, REQUIRED_ACC_FILES, REQUIRED_MEASURE_FILES; PERFORMANCE_LOG_PATH etc. for where
PERFORMANCE_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")
ACCURACY_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "accuracy.txt", "mlperf_log_accuracy.json")
MEASURE_FILES = ("user.conf", "README.md")    # beside the measurements JSON, in CheckerRound.measurements_dir
SCENARIO_FILES = (MEASUREMENTS_JSON, *MEASURE_FILES)   # our tree's scenario folder (v6.1's layout)
TEST06_FILES = ("verify_accuracy.txt", "accuracy/mlperf_log_accuracy.json")   # compliance/TEST06/run_verification.py
# constants.py SYSTEM_IMP_REQUIRED_FILES: the fields of measurements.json (each must be non-empty)
MEASUREMENTS_FIELDS = ("input_data_types", "retraining", "starting_weights_filename", "weight_data_types",
                       "weight_transformations")
# constants.py SYSTEM_DESC_REQUIRED_FIELDS (present) and SYSTEM_DESC_MEANINGFUL_RESPONSE_REQUIRED_FIELDS (non-empty)
SYSTEM_FIELDS = (
    "division", "submitter", "status", "system_name", "number_of_nodes", "host_processor_model_name",
    "host_processors_per_node", "host_processor_core_count", "host_memory_capacity", "host_storage_capacity",
    "host_storage_type", "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
    "framework", "operating_system", "system_type", "other_software_stack", "host_processor_frequency",
    "host_processor_caches", "host_memory_configuration", "host_processor_interconnect", "host_networking",
    "host_networking_topology", "accelerator_frequency", "accelerator_host_interconnect", "accelerator_interconnect",
    "accelerator_interconnect_topology", "accelerator_memory_configuration", "accelerator_on-chip_memories",
    "cooling", "hw_notes", "sw_notes", "host_network_card_count", "system_type_detail")
SYSTEM_MEANINGFUL_FIELDS = (
    "division", "submitter", "system_type", "status", "system_name", "number_of_nodes", "host_processor_model_name",
    "host_processors_per_node", "host_processor_core_count", "host_memory_capacity", "host_memory_configuration",
    "host_storage_capacity", "host_storage_type", "host_networking", "host_network_card_count",
    "host_networking_topology", "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
    "accelerator_host_interconnect", "accelerator_memory_configuration", "accelerator_interconnect", "cooling",
    "framework", "operating_system", "other_software_stack")
MAX_ACCURACY_LOG_BYTES = 10 * 1024            # constants.py MAX_ACCURACY_LOG_SIZE: larger is "not truncated"
ACCURACY_LOG_VIEWABLE_BYTES = 4096            # truncate_accuracy_log.py VIEWABLE_SIZE: head and tail kept
# performance_check.py: Server and SingleStream are judged by early stopping (min query count not checked there);
# Server's early-stopping target latency must not exceed constants.py "latency-constraint" (20 s)
EARLY_STOPPING_SCENARIOS = ("Server", "SingleStream")
SERVER_TARGET_LATENCY_LIMIT_NS = 20_000_000_000
MIN_QUERY_COUNT = {"Offline": 1}              # constants.py "min-queries" for the scenarios without early stopping
