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
