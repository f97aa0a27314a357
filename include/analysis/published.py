"""Published MLPerf Inference results for llama3.1-8b: the reference a nightly run is seen against.

The data is `include/analysis/data/mlperf_published_llama3.1-8b.csv`, one row per (round, system, scenario) of
MLCommons' results table, each with its round and the URL of its LoadGen summary (include/analysis/data/README.md says
how the file was built, which rounds' figures were checked against those summaries, and how to refresh it). A run is
matched to published rows through its accelerator key (`include.analysis.accelerators.lookup(name).key`) and its
scenario.

The loader refuses a broken file with the row and the field, so a bad refresh fails the tests, not the page.
"""
from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from include import mlperf_rules as rules
from include.analysis import accelerators
from include.analysis.metrics import METRICS

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / f"mlperf_published_{rules.BENCHMARK}.csv"
SOURCE_PREFIX = "https://github.com/mlcommons/"
ROUND = re.compile(r"v\d+\.\d+")                          # MLCommons' round names: v5.1, v6.0, v6.1
# The per-accelerator figure is stored rounded to 0.1 tokens/s; a stored figure further than this from
# tokens_per_s / accelerator_count is an error in the file.
PER_ACCELERATOR_TOLERANCE = 0.051
TOKENS_UNIT = METRICS["tokens_per_second"].unit


@dataclass(frozen=True)
class PublishedResult:
    """One published result: a system in one scenario of one MLPerf round.

    `accelerator` is the key of include/analysis/accelerators.py where that table knows the chip ("H200", "B200"), else
    the name as MLCommons publishes it. CPU-only systems are not in the file: they have no accelerator to divide by.
    """

    round: str                          # "v5.1"
    division: str                       # one of include.mlperf_rules.DIVISIONS
    availability: str                   # one of include.mlperf_rules.AVAILABILITIES
    submitter: str
    system: str                         # the system name as the results table gives it
    accelerator: str
    accelerator_count: int              # accelerators in the whole system (all nodes)
    engine: str                         # TensorRT-LLM, vLLM, PyTorch...
    scenario: str                       # one of include.mlperf_rules.SCENARIOS
    tokens_per_s: float                 # the results table's figure (Offline: tokens/s; Server, Interactive:
    #                                     completed tokens/s)
    tokens_per_s_per_accelerator: float
    source_url: str                     # the result's mlperf_log_summary.txt (v5.1, v6.0: the figure was checked
    #                                     against it; v6.1's are the results table's: include/analysis/data/README.md)
    software: str = ""                  # the software stack as published, unchanged

    def label(self) -> str:
        return reference_label(self)


def reference_label(result) -> str:
    """The line a chart and the compare view print for a published result (a PublishedResult or the history's row):
    "MLPerf v5.1, 8x H200 TensorRT-LLM (Cisco): 7,288 tokens/s per GPU"."""
    return (f"MLPerf {result.round}, {result.accelerator_count}x {result.accelerator} {result.engine} "
            f"({result.submitter}): {result.tokens_per_s_per_accelerator:,.0f} {TOKENS_UNIT} per GPU")


class PublishedDataError(ValueError):
    """The published-results file is broken: the message names the file, the row and the field."""


COLUMNS = tuple(f.name for f in fields(PublishedResult))


def load_published(path: str | Path | None = None) -> list[PublishedResult]:
    """Every row of the published-results file (the committed one by default), validated."""
    path = Path(path) if path is not None else DEFAULT_PATH
    if not path.is_file():
        raise PublishedDataError(f"{path}: no such file; the committed one is {DEFAULT_PATH}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise PublishedDataError(f"{path}: missing column(s) {', '.join(missing)}; the header must be "
                                     f"{','.join(COLUMNS)}")
        # Row numbers as a spreadsheet or an editor shows them: the header is line 1.
        results = [_parse_row(path, line, row) for line, row in enumerate(reader, start=2)]
    # One row per result: a system name may appear twice in a round (HPE's v6.0 DL385 with two TensorRT versions),
    # a result file only once.
    seen: dict[str, int] = {}
    for line, r in enumerate(results, start=2):
        if r.source_url in seen:
            raise PublishedDataError(f"{path}, row {line}: the result {r.source_url} is already row "
                                     f"{seen[r.source_url]}; one row per result")
        seen[r.source_url] = line
    return results


def best_published(results: Iterable, accelerator: str, scenario: str, rounds: int | None = None) -> list:
    """The published reference for one accelerator key and scenario: in each round, the system with the most tokens/s
    per accelerator, the newest round first (only the `rounds` newest, when given); empty when nothing was published
    for it. Takes PublishedResults or the history's rows of them alike."""
    best: dict[str, Any] = {}
    for r in results:
        if r.accelerator == accelerator and r.scenario == scenario and (
                r.round not in best or r.tokens_per_s_per_accelerator > best[r.round].tokens_per_s_per_accelerator):
            best[r.round] = r
    newest_first = sorted(best, key=lambda name: tuple(int(x) for x in name[1:].split(".")), reverse=True)
    return [best[name] for name in newest_first][:rounds]


# A system of two kinds of chips (v6.1's "NVIDIA H200-SXM-141GB + AMD Instinct MI350X 288GB HBM3e"): its
# per-accelerator figure is no one chip's.
MIXED_ACCELERATORS = re.compile(r"\s\+\s|\sand\s")


def normalise_accelerator(published_name: str) -> str:
    """Our accelerator key for a name as MLCommons publishes it ("NVIDIA H200-SXM-141GB" -> "H200"); a chip
    include/analysis/accelerators.py does not know, or a system of several kinds of chips, keeps its published name."""
    known = None if MIXED_ACCELERATORS.search(published_name) else accelerators.lookup(published_name)
    return known.key if known else published_name.strip()


def _parse_row(path: Path, line: int, row: dict[str, str]) -> PublishedResult:
    def fail(field: str, problem: str) -> PublishedDataError:
        return PublishedDataError(f"{path}, row {line} ({row.get('submitter', '?')} {row.get('system', '?')} "
                                  f"{row.get('scenario', '?')}): field {field!r} {problem}")

    def text(field: str, allowed: tuple[str, ...] | None = None) -> str:
        value = (row.get(field) or "").strip()
        if not value:
            raise fail(field, "is empty")
        if allowed is not None and value not in allowed:
            raise fail(field, f"is {value!r}; expected one of {', '.join(allowed)}")
        return value

    def number(field: str, cast: type) -> float | int:
        value = (row.get(field) or "").strip()
        if not value:
            raise fail(field, "is empty")
        try:
            parsed = cast(value)
        except ValueError:
            raise fail(field, f"is {value!r}, not a {'whole ' if cast is int else ''}number") from None
        if not (math.isfinite(parsed) and parsed > 0):
            raise fail(field, f"is {value!r}; it must be greater than 0")
        return parsed

    accelerator = text("accelerator")
    count = number("accelerator_count", int)
    tokens = number("tokens_per_s", float)
    per_accelerator = number("tokens_per_s_per_accelerator", float)
    if abs(per_accelerator - tokens / count) > PER_ACCELERATOR_TOLERANCE:
        raise fail("tokens_per_s_per_accelerator", f"is {row.get('tokens_per_s_per_accelerator')!r}; "
                                                   f"tokens_per_s / accelerator_count = {tokens / count:.1f}")
    source = text("source_url")
    if not source.startswith(SOURCE_PREFIX):
        raise fail("source_url", f"is {source!r}; it must be a file of MLCommons' results ({SOURCE_PREFIX}...)")
    round_name = text("round")
    if not ROUND.fullmatch(round_name):
        raise fail("round", f"is {round_name!r}; MLCommons names rounds like v5.1")
    return PublishedResult(
        round=round_name, division=text("division", rules.DIVISIONS),
        availability=text("availability", rules.AVAILABILITIES),
        submitter=text("submitter"), system=text("system"), accelerator=accelerator, accelerator_count=count,
        engine=text("engine"), scenario=text("scenario", rules.SCENARIOS), tokens_per_s=tokens,
        tokens_per_s_per_accelerator=per_accelerator, source_url=source, software=(row.get("software") or "").strip())
