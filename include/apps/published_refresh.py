"""Rebuild the published-results file from a checkout of an MLCommons results repository, for a new round.

    git clone --depth 1 https://github.com/mlcommons/inference_results_v6.1 /tmp/v6.1
    PYTHONPATH=. python -m include.apps.published_refresh /tmp/v6.1 --round v6.1 --commit $(git -C /tmp/v6.1 rev-parse
    HEAD)

Reads the round's results table (`summary_results.json` up to v6.0, `summary.csv` from v6.1), keeps the
closed-division datacenter llama3.1-8b rows of systems with accelerators (a CPU-only system has no per-accelerator
figure to set a run against), checks each figure against the LoadGen summary it came from (the figure, and that
LoadGen called the run VALID), and replaces that round's rows in the CSV; other rounds' rows are kept. Any
disagreement stops the refresh. `--table-only` takes a checkout that has the table but not the logs (the figures are
then the table's, unchecked; include/analysis/data/README.md must say which round's rows are).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from urllib.parse import quote

from include import mlperf_rules as rules
from include.analysis.published import COLUMNS, DEFAULT_PATH, PublishedResult, load_published, normalise_accelerator
from include.results import loadgen_logs

SUMMARY_TABLE = "summary_results.json"          # v5.1, v6.0
SUMMARY_CSV = "summary.csv"                      # v6.1
RUN_SUMMARY = "performance/run_1/mlperf_log_summary.txt"
# The table's figures carry six significant digits, the LoadGen summary two decimals: a figure agrees when it is
# within both roundings.
RELATIVE_TOLERANCE = 1e-5
SUMMARY_ROUNDING = 0.005
# The engine a software string names. NVIDIA's table entries say "TensorRT x.y", but their llama3.1-8b harness runs
# TensorRT-LLM (closed/NVIDIA/README.md: "Using TRTLLM serve (used for Deepseek-R1 and Llama3.1-8b)"). The engine
# named first wins, PyTorch only where no other is named (the framework under an engine): "vLLM 0.9.0, PyTorch 2.7.0"
# and Intel's "PyTorch vLLM" are vLLM, and "TensorRT 10.14, ..., TensorRT-LLM ..., vLLM CentML:mlperf-inf-mm-q3vl"
# (one stack listed for all of a submitter's benchmarks, vLLM for the vision model) TensorRT-LLM.
ENGINES = (("sglang", "SGLang"), ("vllm", "vLLM"), ("tensorrt", "TensorRT-LLM"))
FRAMEWORK = ("pytorch", "PyTorch")


def engine_of(software: str) -> str:
    lowered = software.lower()
    named = [(lowered.find(needle), engine) for needle, engine in ENGINES if needle in lowered]
    if named:
        return min(named)[1]
    return FRAMEWORK[1] if FRAMEWORK[0] in lowered else software


def table_entries(checkout: Path) -> list[dict]:
    """The round's results table as rows of one shape (summary_results.json's names), whichever file the round
    published: summary_results.json (v5.1, v6.0) or summary.csv (v6.1: Organization, Division, SystemType,
    SystemName, MlperfModel, Result, accelerator_model_name, total_accelerators, framework, ...)."""
    if (checkout / SUMMARY_TABLE).is_file():
        return json.loads((checkout / SUMMARY_TABLE).read_text(encoding="utf-8"))
    if not (checkout / SUMMARY_CSV).is_file():
        raise ValueError(f"{checkout}: neither {SUMMARY_TABLE} nor {SUMMARY_CSV}")
    with (checkout / SUMMARY_CSV).open(newline="", encoding="utf-8") as handle:
        return [{"Model": row["MlperfModel"], "Category": row["Division"], "Suite": row["SystemType"],
                 "Scenario": row["Scenario"], "Submitter": row["Organization"], "Availability": row["Availability"],
                 "System": row["SystemName"], "Accelerator": row["accelerator_model_name"],
                 "Total Accelerators": int(row["total_accelerators"] or 0), "a#": None, "Nodes": None,
                 "Location": row["Location"], "Software": row["framework"],
                 "Performance_Result": row["Result"]} for row in csv.DictReader(handle)]


def measured_tokens_per_s(summary: Path, scenario: str) -> float:
    """The tokens/s LoadGen printed in a run's summary; refuses a run LoadGen did not call VALID."""
    fields = loadgen_logs.read_summary(summary)
    if fields.get("Result is") != "VALID":
        raise ValueError(f"{summary}: 'Result is' is {fields.get('Result is')!r}, not VALID")
    key = rules.SUMMARY_TOKENS_KEY[rules.LOADGEN_SCENARIO.get(scenario, scenario)]
    return float(fields[key])


def results_from_checkout(checkout: Path, round_name: str, commit: str,
                          table_only: bool = False) -> list[PublishedResult]:
    out = []
    for entry in table_entries(checkout):
        if (entry["Model"], entry["Category"], entry["Suite"]) != (rules.BENCHMARK, "closed", "datacenter"):
            continue
        # "Total Accelerators" since v6.0; before, a# is per node. Empty for a CPU-only system.
        count = entry.get("Total Accelerators") or (entry["a#"] and int(entry["a#"]) * int(entry["Nodes"]))
        if not count:
            continue
        scenario, published = entry["Scenario"], float(entry["Performance_Result"])
        # v5.1 locates a result by its scenario folder, v6.0 and v6.1 by "./<scenario folder>/performance/run_1".
        scenario_dir = entry["Location"].removeprefix("./").removesuffix("/" + str(Path(RUN_SUMMARY).parent))
        summary_path = f"{scenario_dir}/{RUN_SUMMARY}"
        if not table_only:
            measured = measured_tokens_per_s(checkout / summary_path, scenario)
            if abs(measured - published) > RELATIVE_TOLERANCE * measured + SUMMARY_ROUNDING:
                raise ValueError(f"{summary_path}: LoadGen printed {measured} tokens/s, the results table "
                                 f"{published}")
        out.append(PublishedResult(
            round=round_name, division=entry["Category"], availability=entry["Availability"],
            submitter=entry["Submitter"], system=entry["System"],
            accelerator=normalise_accelerator(entry["Accelerator"]), accelerator_count=int(count),
            engine=engine_of(entry["Software"]), scenario=scenario, tokens_per_s=published,
            tokens_per_s_per_accelerator=round(published / int(count), 1),
            source_url=f"https://github.com/mlcommons/inference_results_{round_name}/blob/{commit}/"
                       f"{quote(summary_path)}",           # v6.1's "closed/Naeem Khoshnevis/...": %20
            software=entry["Software"]))
    return out


def write(path: Path, results: list[PublishedResult]) -> None:
    results = sorted(results, key=lambda r: (r.round, r.accelerator, r.scenario, -r.tokens_per_s, r.submitter))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in results:
            writer.writerow([getattr(r, c) for c in COLUMNS])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a checkout of mlcommons/inference_results_<round>")
    parser.add_argument("--round", required=True, help="the round as MLCommons names it, e.g. v6.0")
    parser.add_argument("--commit", required=True, help="the checkout's commit, pinned in every source URL")
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--table-only", action="store_true",
                        help="the checkout holds the results table but not the LoadGen summaries: take the table's "
                             "figures unchecked (say so in include/analysis/data/README.md)")
    args = parser.parse_args(argv)
    new = results_from_checkout(args.checkout, args.round, args.commit, table_only=args.table_only)
    kept = [r for r in load_published(args.out) if r.round != args.round] if args.out.exists() else []
    write(args.out, kept + new)
    load_published(args.out)
    print(f"{args.out}: {len(new)} {args.round} rows, {len(kept)} rows of other rounds kept"
          + ("; the new rows' figures are the table's, not checked against LoadGen's summaries" if args.table_only
             else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
