"""The published MLPerf results file: it loads, its figures are the sources' figures, and a broken row is named."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from include import published_refresh
from include.published import (
    COLUMNS,
    DEFAULT_PATH,
    PublishedDataError,
    best_per_accelerator,
    load_published,
    normalise_accelerator,
)

SOURCE = re.compile(r"^https://github\.com/mlcommons/inference_results_(v[\d.]+)/blob/[0-9a-f]{40}/closed/[^/]+/"
                    r"results/[^/]+/llama3[._]1-8b/(\w+)/performance/run_1/mlperf_log_summary\.txt$")


@pytest.fixture(scope="module")
def results():
    return load_published()


def test_committed_file_is_small_and_covers_the_gpus_we_run(results) -> None:
    assert DEFAULT_PATH.stat().st_size < 100_000
    for accelerator in ("H200", "H100-SXM", "B200"):
        for scenario in ("Offline", "Server"):
            assert best_per_accelerator(results, accelerator, scenario, round="v5.1"), (accelerator, scenario)
    assert {r.round for r in results} == {"v5.1", "v6.0"}
    assert {r.division for r in results} == {"closed"}


def test_every_row_cites_the_loadgen_summary_of_its_round_and_scenario(results) -> None:
    for r in results:
        match = SOURCE.match(r.source_url)
        assert match, r.source_url
        assert match.groups() == (r.round, r.scenario), r.source_url


def test_per_accelerator_figure_is_result_over_count(results) -> None:
    for r in results:
        assert r.tokens_per_s_per_accelerator == round(r.tokens_per_s / r.accelerator_count, 1), r


def test_best_v51_h200_offline_per_gpu_is_hpes_xd670(results) -> None:
    best = best_per_accelerator(results, "H200", "Offline", round="v5.1")
    # inference_results_v5.1 summary_results.json and the summary it points at: 66036.8 tokens/s on 8 H200-SXM.
    assert (best.submitter, best.accelerator_count, best.tokens_per_s) == ("HPE", 8, 66036.8)
    assert best.tokens_per_s_per_accelerator == 8254.6
    assert "/closed/HPE/results/HPE_Cray_XD670_H200_SXM_141GBx8_TRT/llama3.1-8b/Offline/" in best.source_url
    assert best.label() == "MLPerf v5.1, 8x H200 TensorRT-LLM (HPE): 8,255 tokens/s per GPU"
    assert best_per_accelerator(results, "H200", "SingleStream") is None


def test_h100_rows_are_the_logs_in_shared_fixtures(results, published_fixtures: Path) -> None:
    """The one submission whose logs are kept here: each row's figure is what LoadGen printed."""
    for scenario in ("Offline", "Server"):
        [row] = [r for r in results if r.accelerator == "H100-SXM" and r.scenario == scenario]
        summary = published_fixtures / scenario / published_refresh.RUN_SUMMARY
        assert row.tokens_per_s == published_refresh.measured_tokens_per_s(summary, scenario)
        assert (row.submitter, row.accelerator_count, row.engine) == ("RedHat", 1, "vLLM")


def test_published_names_map_to_our_accelerator_keys() -> None:
    assert normalise_accelerator("NVIDIA H200-SXM-141GB") == "H200"
    assert normalise_accelerator("NVIDIA H200-NVL-141GB") == "H200-NVL"
    assert normalise_accelerator("NVIDIA H100-SXM-80GB") == "H100-SXM"
    assert normalise_accelerator("NVIDIA B200-SXM-180GB") == "B200"
    assert normalise_accelerator("NVIDIA B300-SXM-270GB") == "NVIDIA B300-SXM-270GB"


def _copy_with(tmp_path: Path, field: str, value: str, row_index: int = 3) -> Path:
    with DEFAULT_PATH.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows[row_index][field] = value
    out = tmp_path / "published.csv"
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return out


@pytest.mark.parametrize(("field", "value", "says"), [
    ("tokens_per_s_per_accelerator", "99999.0", "tokens_per_s / accelerator_count ="),
    ("scenario", "Offline ", None),                        # surrounding blanks are tolerated
    ("scenario", "offline", "expected one of Offline, Server"),
    ("tokens_per_s", "fast", "not a number"),
    ("tokens_per_s", "-3", "greater than 0"),
    ("accelerator_count", "", "is empty"),
    ("accelerator_count", "8.5", "not a whole number"),
    ("source_url", "https://example.com/x", "MLCommons' results"),
    ("division", "", "is empty"),
    ("round", "5.1", "like v5.1"),
])
def test_a_broken_row_is_named_with_its_field(tmp_path: Path, field: str, value: str, says: str | None) -> None:
    path = _copy_with(tmp_path, field, value)
    if says is None:
        assert len(load_published(path)) == len(load_published())
        return
    with pytest.raises(PublishedDataError) as error:
        load_published(path)
    # Row 5 of the file: the header is row 1, and rows[3] the fourth data row.
    assert f"{path}, row 5 (" in str(error.value)
    assert f"field {field!r}" in str(error.value) and says in str(error.value)


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "published.csv"
    path.write_text(",".join(c for c in COLUMNS if c != "source_url") + "\n", encoding="utf-8")
    with pytest.raises(PublishedDataError, match="missing column.s. source_url"):
        load_published(path)


def test_a_duplicate_row_and_a_missing_file_are_named(tmp_path: Path) -> None:
    lines = DEFAULT_PATH.read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path / "published.csv"
    path.write_text("".join(lines[:3] + [lines[2]]), encoding="utf-8")
    with pytest.raises(PublishedDataError, match=r", row 4: the result https://.* is already row 3; one row per"):
        load_published(path)
    with pytest.raises(PublishedDataError, match="no such file"):
        load_published(tmp_path / "absent.csv")


def _checkout(tmp_path: Path, published_fixtures: Path, figure: float) -> Path:
    """A results checkout of one row (the v5.1 Red Hat H100 Offline result) on the real LoadGen summary."""
    location = "closed/RedHat/results/XE8640_4xH100_vLLM/llama3.1-8b/Offline"
    run = tmp_path / location / "performance" / "run_1"
    run.mkdir(parents=True)
    (run / "mlperf_log_summary.txt").write_bytes(
        (published_fixtures / "Offline" / published_refresh.RUN_SUMMARY).read_bytes())
    (tmp_path / published_refresh.SUMMARY_TABLE).write_text(json.dumps([{
        "Model": "llama3.1-8b", "Category": "closed", "Suite": "datacenter", "Scenario": "Offline",
        "Submitter": "RedHat", "Availability": "available", "System": "Dell PowerEdge XE8640 (1xH100-SXM-80GB, vLLM)",
        "Accelerator": "NVIDIA H100-SXM-80GB", "a#": 1, "Nodes": 1, "Location": location,
        "Software": "vLLM 0.10.0, RHEL 9.6", "Performance_Result": figure, "Performance_Units": "Tokens/s"}]))
    return tmp_path


def test_refresh_rebuilds_a_committed_row_from_its_log(tmp_path: Path, published_fixtures: Path, results) -> None:
    checkout = _checkout(tmp_path, published_fixtures, 5777.08)
    commit = "965182b03376a00fcae415c54e560e1c83937932"
    [rebuilt] = published_refresh.results_from_checkout(checkout, "v5.1", commit)
    [committed] = [r for r in results if r.accelerator == "H100-SXM" and r.scenario == "Offline"]
    assert rebuilt == committed


def test_refresh_refuses_a_table_figure_its_log_does_not_show(tmp_path: Path, published_fixtures: Path) -> None:
    checkout = _checkout(tmp_path, published_fixtures, 5877.08)
    with pytest.raises(ValueError, match="LoadGen printed 5777.08 tokens/s, the results table 5877.08"):
        published_refresh.results_from_checkout(checkout, "v5.1", "0" * 40)
