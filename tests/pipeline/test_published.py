"""The published MLPerf results file: it loads, its figures are the sources' figures, and a broken row is named."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from include.apps import published_refresh
from include.results.loadgen_logs import LoadGenLogError
from include.analysis.published import (
    COLUMNS,
    DEFAULT_PATH,
    PublishedDataError,
    best_published,
    load_published,
    normalise_accelerator,
)

SOURCE = re.compile(r"^https://github\.com/mlcommons/inference_results_(v[\d.]+)/blob/[0-9a-f]{40}/closed/[^/]+/"
                    r"results/[^/]+/llama3[._]1-8b/(\w+)/performance/run_1/mlperf_log_summary\.txt$")


@pytest.fixture(scope="module")
def results():
    return load_published()


def best_of(results, accelerator: str, scenario: str, round: str):
    """The reference best_published gives for one round (None: that round published nothing for it)."""
    return next((p for p in best_published(results, accelerator, scenario) if p.round == round), None)


def test_committed_file_is_small_and_covers_the_gpus_we_run(results) -> None:
    assert DEFAULT_PATH.stat().st_size < 100_000
    for accelerator in ("H200", "H100-SXM", "B200"):
        for scenario in ("Offline", "Server"):
            assert best_of(results, accelerator, scenario, "v5.1"), (accelerator, scenario)
    assert {r.round for r in results} == {"v5.1", "v6.0", "v6.1"}
    assert {r.division for r in results} == {"closed"}


def test_every_round_has_its_rows_each_with_round_and_source(results) -> None:
    by_round: dict[str, int] = {}
    for r in results:
        by_round[r.round] = by_round.get(r.round, 0) + 1
        assert r.round and r.source_url.startswith(f"https://github.com/mlcommons/inference_results_{r.round}/blob/")
    # Each round's closed datacenter llama3.1-8b rows on accelerators, from its summary file
    # (include/analysis/data/README.md)
    assert by_round == {"v5.1": 44, "v6.0": 56, "v6.1": 58}
    v61 = [r for r in results if r.round == "v6.1"]
    assert {r.source_url.split("/")[6] for r in v61} == {"7bf15fd8089655a71fb75c81a744d7ba5a632424"}
    assert {r.scenario for r in v61} == {"Offline", "Server", "Interactive"}


def test_every_row_cites_the_loadgen_summary_of_its_round_and_scenario(results) -> None:
    for r in results:
        match = SOURCE.match(r.source_url)
        assert match, r.source_url
        assert match.groups() == (r.round, r.scenario), r.source_url


def test_per_accelerator_figure_is_result_over_count(results) -> None:
    for r in results:
        assert r.tokens_per_s_per_accelerator == round(r.tokens_per_s / r.accelerator_count, 1), r


def test_best_v51_h200_offline_per_gpu_is_hpes_xd670(results) -> None:
    best = best_of(results, "H200", "Offline", "v5.1")
    # inference_results_v5.1 summary_results.json and the summary it points at: 66036.8 tokens/s on 8 H200-SXM.
    assert (best.submitter, best.accelerator_count, best.tokens_per_s) == ("HPE", 8, 66036.8)
    assert best.tokens_per_s_per_accelerator == 8254.6
    assert "/closed/HPE/results/HPE_Cray_XD670_H200_SXM_141GBx8_TRT/llama3.1-8b/Offline/" in best.source_url
    assert best.label() == "MLPerf v5.1, 8x H200 TensorRT-LLM (HPE): 8,255 tokens/s per GPU"
    assert best_published(results, "H200", "SingleStream") == []


def test_v61_bests_per_accelerator_are_the_tables(results) -> None:
    """inference_results_v6.1 summary.csv: the per-GPU bests FACTS.md lists, and the newest H200 figure."""
    h200 = best_of(results, "H200", "Offline", "v6.1")
    assert (h200.submitter, h200.availability, h200.accelerator_count, h200.engine) == (
        "Naeem Khoshnevis", "rdi", 1, "TensorRT-LLM")
    assert (h200.tokens_per_s_per_accelerator, best_of(results, "H200", "Server", "v6.1")
            .tokens_per_s_per_accelerator) == (7796.6, 7376.6)
    assert "/closed/Naeem%20Khoshnevis/results/H200/llama3.1-8b/Offline/" in h200.source_url
    b300 = best_of(results, "NVIDIA B300-SXM-270GB", "Offline", "v6.1")
    assert (b300.submitter, b300.tokens_per_s, b300.tokens_per_s_per_accelerator) == ("Cisco", 171114.0, 21389.2)
    mi355x = best_of(results, "AMD Instinct MI355X 288GB HBM3e", "Server", "v6.1")
    assert (mi355x.submitter, mi355x.tokens_per_s_per_accelerator, mi355x.engine) == ("MiTAC", 18889.5, "vLLM")
    # Cisco's H200 + MI350X system is no H200 reference: its name keeps both chips.
    mixed = [r for r in results if r.submitter == "Cisco" and "MI350X" in r.accelerator]
    assert len(mixed) == 3 and all(r.accelerator_count == 16 and "H200" != r.accelerator for r in mixed)


def test_v60_rows_of_the_fixture_tree_are_its_logs(results) -> None:
    """The v6.0 submission kept in tests/fixtures: each row's figure is what LoadGen printed there."""
    tree = Path(__file__).resolve().parents[1] / "fixtures" / "mlperf-v6.0-hpe-dl145-rtx-pro-4500"
    folder = tree / "closed/HPE/results/HPE_PROLIANT_DL145_RTX_PRO_4500_PCIE_32GBx1_TRT_DC_TRT/llama3.1-8b"
    for scenario in ("Offline", "Server"):
        [row] = [r for r in results if r.round == "v6.0" and r.submitter == "HPE" and r.scenario == scenario
                 and "DL145" in r.system]
        assert row.tokens_per_s == published_refresh.measured_tokens_per_s(
            folder / scenario / published_refresh.RUN_SUMMARY, scenario)
        assert row.source_url.endswith(f"/{folder.relative_to(tree)}/{scenario}/{published_refresh.RUN_SUMMARY}")


def test_engine_is_the_one_named_first_pytorch_only_alone(results) -> None:
    assert published_refresh.engine_of("vLLM 0.9.0, PyTorch 2.7.0") == "vLLM"
    assert published_refresh.engine_of("PyTorch vLLM") == "vLLM"
    assert published_refresh.engine_of("Pytorch 2.10, ROCm 7.2.2") == "PyTorch"
    assert published_refresh.engine_of("TensorRT 10.14, CUDA 13.1, cuDNN 9.17, TensorRT-LLM feat/1.2-mlpinf, NVIDIA "
                                       "Dynamo mlperf-v6.0-dynamo-v0.8.0, vLLM CentML:mlperf-inf-mm-q3vl-v6.0") == \
        "TensorRT-LLM"
    assert all(r.engine == published_refresh.engine_of(r.software) for r in results)


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
    mixed = "NVIDIA H200-SXM-141GB + AMD Instinct MI350X 288GB HBM3e"
    assert normalise_accelerator(mixed) == mixed


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


def test_refresh_reads_v61s_summary_csv(tmp_path: Path) -> None:
    """From v6.1 a round publishes summary.csv: the same rows come out of it (here table-only, as the committed v6.1
    rows were made); CPU-only systems and other models are left out, a space in a path is URL-encoded."""
    header = ("Organization,Availability,Division,SystemType,SystemName,Platform,Model,MlperfModel,Scenario,Result,"
              "accelerator_model_name,accelerators_per_node,total_accelerators,Location,framework")
    rows = [
        "Naeem Khoshnevis,rdi,closed,datacenter,H200-1xGPU,H200,llama3.1-8b,llama3.1-8b,Offline,7796.585132594509,"
        "NVIDIA H200-SXM-141GB,1,1,./closed/Naeem Khoshnevis/results/H200/llama3.1-8b/Offline/performance/run_1,"
        "\"TensorRT-LLM 1.0.0 (FP8 W8A8 engine built with trtllm-build, served by trtllm-serve); MLCommons endpoints "
        "(LoadGen++) client; CUDA 12.9\"",
        "Oracle,available,closed,datacenter,BM.Standard4.Ax.120,1-node-1S-GNR_120C,llama3_1-8b,llama3.1-8b,Offline,"
        "853.14,N/A,0,0,./closed/Oracle/results/1-node-1S-GNR_120C/llama3_1-8b/Offline/performance/run_1,PyTorch",
        "AMD,available,closed,datacenter,x,x,gpt-oss-120b,gpt-oss-120b,Offline,1.0,AMD Instinct MI355X 288GB HBM3e,8,8,"
        "./closed/AMD/results/x/gpt-oss-120b/Offline/performance/run_1,vLLM",
    ]
    (tmp_path / published_refresh.SUMMARY_CSV).write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    commit = "7bf15fd8089655a71fb75c81a744d7ba5a632424"
    [rebuilt] = published_refresh.results_from_checkout(tmp_path, "v6.1", commit, table_only=True)
    [committed] = [r for r in load_published() if r.round == "v6.1" and r.accelerator == "H200"
                   and r.scenario == "Offline"]
    assert rebuilt == committed
    with pytest.raises(LoadGenLogError, match="Naeem Khoshnevis/.*/mlperf_log_summary.txt: missing"):
        published_refresh.results_from_checkout(tmp_path, "v6.1", commit)        # not table-only: the log is read
