"""Parse what LoadGen said about one run: mlperf_log_summary.txt and mlperf_log_detail.txt.

The headline figures (VALID/INVALID, samples/s, tokens/s) are read from the summary, because that is the text an
MLPerf submission publishes; everything else (effective settings, percentiles, version, warnings, errors, duration)
from the detail log's `:::MLLOG` JSON lines, which carry typed values. The two files must agree on scenario, mode
and validity. A file that is empty, truncated or not LoadGen's raises LoadGenLogError naming the file and what is
missing: a half-parsed log must never pass as a result.

The logs alone say what was run: a Server-mode run's latency limits are LoadGen's own (requested_server_ttft_latency,
requested_server_tpot_latency), and they tell MLPerf's Interactive scenario from Server (`mlperf_scenario`), so a
run folder of another harness, or a published submission, needs no result.json to be named right.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from include.mlperf_rules import latency_scenario
from include.records import LoadGenResult

SUMMARY_LOG = "mlperf_log_summary.txt"
QSL_TOTAL_COUNT_KEY = "qsl_reported_total_count"    # samples of the data set the run could draw from
DETAIL_LOG = "mlperf_log_detail.txt"
_MLLOG = ":::MLLOG "

# Percentile keys of LoadGenResult's *_ns dicts, and the spelling LoadGen uses in the detail log.
PERCENTILES = {"p50": "50.00", "p90": "90.00", "p95": "95.00", "p97": "97.00", "p99": "99.00", "p99.9": "99.90"}
_LATENCY_KEYS = {  # dict name -> (min/max/mean key pattern, percentile key pattern)
    "latency_ns": ("result_{}_latency_ns", "result_{}_percentile_latency_ns"),
    "ttft_ns": ("result_first_token_{}_latency_ns", "result_first_token_{}_percentile_latency_ns"),
    "tpot_ns": ("result_time_to_output_token_{}", "result_time_per_output_token_{}_percentile_ns"),
}
# Summary throughput lines by LoadGen scenario (an Interactive run is LoadGen's Server scenario with tighter latency
# limits). Server counts completed samples and tokens; in Server mode the detail log's result_token_throughput is not
# a throughput at all (3.9e-08 in the published Server log).
_THROUGHPUT = {
    "Offline": ("Samples per second", "Tokens per second"),
    "Server": ("Completed samples per second", "Completed tokens per second"),
    "SingleStream": ("QPS w/o loadgen overhead", "TPS w/o loadgen overhead"),
}
# LoadGen's validity checks (detail key) and how the summary words a failed one.
_CHECKS = {
    "result_min_duration_met": "min duration not satisfied",
    "result_min_queries_met": "min queries not satisfied",
    "result_perf_constraints_met": "performance constraints not satisfied (latency targets missed)",
    "early_stopping_met": "early stopping not satisfied",
}
_MODES = {"PerformanceOnly": "performance", "AccuracyOnly": "accuracy"}
# The p99 limits a Server-mode run is held to with use_token_latencies (LoadGen logs no effective_* twin of these).
TTFT_LIMIT_KEY = "requested_server_ttft_latency"
TPOT_LIMIT_KEY = "requested_server_tpot_latency"
# The summary's last line: "No errors encountered during test." or "<n> ERROR(S) encountered. See detailed log."
_SUMMARY_END = re.compile(r"^(No errors|\d+ ERRORS?) encountered", re.MULTILINE)
_SUMMARY_LINE = re.compile(r"^\s*([^:\n]+?)\s*:\s*(.*?)\s*$")


class LoadGenLogError(ValueError):
    """A LoadGen log that cannot be trusted: the message names the file and what is missing or wrong."""


def _read(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LoadGenLogError(f"{path}: missing") from None
    except UnicodeDecodeError as e:
        raise LoadGenLogError(f"{path}: not a LoadGen log (not UTF-8 text: {e.reason} at byte {e.start})") from None
    if not text.strip():
        raise LoadGenLogError(f"{path}: empty")
    return text


def read_summary(path: Path) -> dict[str, str]:
    """The summary's `key : value` lines (first occurrence wins), refusing files LoadGen did not finish.

    In accuracy mode LoadGen writes only the closing warnings/errors lines, so no header is required here.
    """
    text = _read(path)
    if not _SUMMARY_END.search(text):
        raise LoadGenLogError(f"{path}: no closing 'No errors encountered during test.' (or 'N ERRORS encountered')"
                              " line: truncated, or not a LoadGen summary")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _SUMMARY_LINE.match(line)
        if match:
            fields.setdefault(match.group(1), match.group(2))
    return fields


def read_detail(path: Path) -> list[dict[str, Any]]:
    """The detail log's `:::MLLOG` records in order; a line that is not whole JSON means the file is damaged."""
    records = []
    for number, line in enumerate(_read(path).splitlines(), 1):
        if not line.startswith(_MLLOG):
            if line.strip():
                raise LoadGenLogError(f"{path}: line {number} is not a ':::MLLOG' record; not a LoadGen detail log")
            continue
        try:
            record = json.loads(line[len(_MLLOG):])
        except json.JSONDecodeError as e:
            raise LoadGenLogError(f"{path}: line {number} is not whole JSON ({e.msg}); the log is truncated") from None
        if not isinstance(record, dict) or "key" not in record:
            raise LoadGenLogError(f"{path}: line {number} has no 'key'")
        records.append(record)
    return records


def _require(values: dict[str, Any], keys: list[str], path: Path, why: str) -> None:
    missing = [key for key in keys if key not in values]
    if missing:
        raise LoadGenLogError(f"{path}: missing {', '.join(missing)} ({why})")


def _number(fields: dict[str, str], key: str, path: Path) -> float:
    try:
        return float(fields[key])
    except KeyError:
        raise LoadGenLogError(f"{path}: missing '{key}'") from None
    except ValueError:
        raise LoadGenLogError(f"{path}: '{key}' is {fields[key]!r}, not a number") from None


def _stats(values: dict[str, Any], name: str) -> dict[str, float]:
    plain, percentile = _LATENCY_KEYS[name]
    keys = {stat: plain.format(stat) for stat in ("min", "max", "mean")}
    keys |= {label: percentile.format(spelled) for label, spelled in PERCENTILES.items()}
    return {label: float(values[key]) for label, key in keys.items() if key in values}


def _power_window_s(values: dict[str, Any]) -> float | None:
    """Seconds between LoadGen's power_begin and power_end stamps: the test window LoadGen timed."""
    try:
        begin, end = (datetime.strptime(values[key], "%m-%d-%Y %H:%M:%S.%f") for key in ("power_begin", "power_end"))
    except (KeyError, TypeError, ValueError):
        return None
    return (end - begin).total_seconds()


def _limit_ns(values: dict[str, Any], key: str, path: Path) -> float | None:
    if key not in values:
        return None
    value = values[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise LoadGenLogError(f"{path}: {key} is {value!r}, not a latency limit in ns")
    return float(value)


def latency_limits(values: dict[str, Any], scenario: str, path: Path) -> tuple[float | None, float | None, str]:
    """(TTFT limit ns, TPOT limit ns, MLPerf's scenario name) from the detail log's values.

    Interactive is LoadGen's Server scenario under tighter limits, so the limits LoadGen was asked to hold a
    Server-mode run to decide which of the two it was (mlperf_rules.latency_scenario); other scenarios keep
    LoadGen's name and have no such limits. A run with use_token_latencies off is held to neither.
    """
    if scenario != "Server" or values.get("requested_use_token_latencies") is False:
        return None, None, scenario
    ttft, tpot = _limit_ns(values, TTFT_LIMIT_KEY, path), _limit_ns(values, TPOT_LIMIT_KEY, path)
    named = latency_scenario(None if ttft is None else ttft / 1e6, None if tpot is None else tpot / 1e6)
    return ttft, tpot, named or scenario


def parse(run_dir: Path) -> LoadGenResult:
    """LoadGen's verdict on the run in `run_dir`, from its summary and detail logs."""
    run_dir = Path(run_dir)
    summary_path, detail_path = run_dir / SUMMARY_LOG, run_dir / DETAIL_LOG
    summary = read_summary(summary_path)
    records = read_detail(detail_path)
    values = {record["key"]: record.get("value") for record in records}

    _require(values, ["loadgen_version", "effective_scenario", "effective_test_mode"], detail_path,
             "the test settings were never logged")
    scenario, test_mode = values["effective_scenario"], values["effective_test_mode"]
    if test_mode not in _MODES:
        raise LoadGenLogError(f"{detail_path}: effective_test_mode is {test_mode!r}; only PerformanceOnly and"
                              " AccuracyOnly runs are results")
    # The accuracy-mode summary is only the warnings/errors footer; the performance one names scenario and mode.
    for key, expected in (("Scenario", scenario), ("Mode", test_mode)):
        if key in summary and summary[key] != expected:
            raise LoadGenLogError(f"{summary_path}: {key} is {summary[key]!r} but {detail_path.name} says"
                                  f" {expected!r}; the two files come from different runs")
    if "power_end" not in values:
        raise LoadGenLogError(f"{detail_path}: missing power_end; LoadGen did not finish writing the log (truncated)")

    valid: bool | None = None
    invalid_reasons: list[str] = []
    samples_per_second = tokens_per_second = None
    result_samples = None
    if test_mode == "PerformanceOnly":
        if scenario not in _THROUGHPUT:
            raise LoadGenLogError(f"{detail_path}: unknown scenario {scenario!r}")
        samples_key, tokens_key = _THROUGHPUT[scenario]
        _require(summary, ["Scenario", "Mode", "Result is", samples_key], summary_path,
                 "a performance-mode summary states these")
        _require(values, ["result_validity", "result_query_count", "generated_samples_per_query"], detail_path,
                 "LoadGen logs the results after the test; the log is truncated")
        if summary["Result is"] not in ("VALID", "INVALID") or summary["Result is"] != values["result_validity"]:
            raise LoadGenLogError(f"{summary_path}: 'Result is' is {summary['Result is']!r} but {detail_path.name}"
                                  f" says {values['result_validity']!r}")
        valid = summary["Result is"] == "VALID"
        invalid_reasons = [reason for key, reason in _CHECKS.items() if values.get(key) is False]
        invalid_reasons += [f"{kind} early stopping: {' '.join(values[key].split())}" for kind, key in
                            (("TTFT", "early_stopping_ttft_result"), ("TPOT", "early_stopping_tpot_result"))
                            if not valid and values.get(key, "").strip() not in ("", "* Run successful.")]
        if not valid and not invalid_reasons:
            invalid_reasons = ["LoadGen said INVALID without naming a failed check"]
        samples_per_second = _number(summary, samples_key, summary_path)
        if tokens_key in summary:
            tokens_per_second = _number(summary, tokens_key, summary_path)
        result_samples = int(values["result_query_count"]) * int(values["generated_samples_per_query"])
    ttft_limit_ns, tpot_limit_ns, mlperf_scenario = latency_limits(values, scenario, detail_path)

    return LoadGenResult(
        scenario=scenario,
        mode=test_mode,
        valid=valid,
        invalid_reasons=invalid_reasons,
        samples_per_second=samples_per_second,
        tokens_per_second=tokens_per_second,
        ttft_ns=_stats(values, "ttft_ns"),
        tpot_ns=_stats(values, "tpot_ns"),
        latency_ns=_stats(values, "latency_ns"),
        settings={**{key.removeprefix("effective_"): value for key, value in values.items()
                     if key.startswith("effective_")},
                  **({QSL_TOTAL_COUNT_KEY: values[QSL_TOTAL_COUNT_KEY]} if QSL_TOTAL_COUNT_KEY in values else {})},
        duration_s=_power_window_s(values),
        result_samples=result_samples,
        loadgen_version=values["loadgen_version"],
        warnings=[f"{r['key']}: {r.get('value')}" for r in records if r.get("metadata", {}).get("is_warning")],
        errors=[f"{r['key']}: {r.get('value')}" for r in records if r.get("metadata", {}).get("is_error")],
        ttft_limit_ns=ttft_limit_ns,
        tpot_limit_ns=tpot_limit_ns,
        mlperf_scenario=mlperf_scenario,
    )


def mode_name(loadgen_mode: str) -> str:
    """LoadGen's mode word as result.json spells it ("PerformanceOnly" -> "performance")."""
    return _MODES[loadgen_mode]
