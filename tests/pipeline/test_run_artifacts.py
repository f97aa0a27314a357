"""include.results.run_artifacts: result.json against the shared schema, run records, and the artefact layout."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from include.results import run_artifacts
from include.results.loadgen_logs import DETAIL_LOG
from include.results.run_artifacts import RESULT_FILE, ArtifactError

REPO = Path(__file__).resolve().parents[2]


def _copy(run_dir: Path, dest: Path) -> Path:
    shutil.copytree(run_dir, dest)
    return dest


def _rewrite_result(run_dir: Path, change) -> None:
    path = run_dir / RESULT_FILE
    result = json.loads(path.read_text())
    change(result)
    path.write_text(json.dumps(result))


def test_schema_path_is_the_sut_contract() -> None:
    assert run_artifacts.SCHEMA_PATH == REPO / "sut_image" / "mlperf_sut" / "result.schema.json"
    assert run_artifacts.SCHEMA_PATH.is_file()


def test_load_result_of_real_run(sut_runs: dict) -> None:
    result = run_artifacts.load_result(sut_runs[("Offline", "performance")])
    assert result["schema_version"] == 1
    assert (result["scenario"], result["mode"], result["status"]) == ("Offline", "performance", "completed")


def test_bad_field_names_file_and_json_path(sut_runs: dict, tmp_path: Path) -> None:
    run = _copy(sut_runs[("Offline", "performance")], tmp_path / "run")
    _rewrite_result(run, lambda r: r["counts"].update(output_tokens=-5))
    with pytest.raises(ArtifactError, match=r"result\.json: \$\.counts\.output_tokens: -5 is less than"):
        run_artifacts.load_result(run)


def test_unknown_schema_version_refused(sut_runs: dict, tmp_path: Path) -> None:
    run = _copy(sut_runs[("Offline", "performance")], tmp_path / "run")
    _rewrite_result(run, lambda r: r.update(schema_version=2, new_field="from a newer SUT"))
    with pytest.raises(ArtifactError, match=r"result\.json: \$\.schema_version: 2 is not a version this reader"
                                            r" knows \(1\)"):
        run_artifacts.load_result(run)


def test_result_not_json(sut_runs: dict, tmp_path: Path) -> None:
    run = _copy(sut_runs[("Offline", "performance")], tmp_path / "run")
    text = (run / RESULT_FILE).read_text()
    (run / RESULT_FILE).write_text(text[: len(text) // 2])
    with pytest.raises(ArtifactError, match=r"result\.json: not JSON"):
        run_artifacts.load_result(run)


def test_read_completed_run(sut_runs: dict) -> None:
    run = sut_runs[("Server", "performance")]
    record = run_artifacts.read_run(run, "single")
    assert (record.status, record.error) == ("completed", None)
    assert (record.scenario, record.mode, record.node, record.branch) == ("Server", "performance", "local-0", "single")
    assert record.loadgen.tokens_per_second > 0
    assert record.result["counts"]["samples_completed"] >= 16
    assert record.valid == record.loadgen.valid
    assert type(record).from_dict(record.to_dict()) == record   # XCom round trip


def test_missing_result_is_recorded(tmp_path: Path) -> None:
    run = tmp_path / "single" / "node-a" / "Offline" / "performance"
    run.mkdir(parents=True)
    record = run_artifacts.read_run(run, "single")
    assert (record.status, record.node, record.scenario, record.mode) == ("missing", "node-a", "Offline",
                                                                          "performance")
    assert record.result is None and record.loadgen is None


def test_failed_result_is_recorded(sut_runs: dict, tmp_path: Path) -> None:
    run = _copy(sut_runs[("Offline", "performance")], tmp_path / "run")
    _rewrite_result(run, lambda r: r.update(status="failed", error="EngineDeadError: engine core died"))
    record = run_artifacts.read_run(run, "single")
    assert (record.status, record.error) == ("failed", "EngineDeadError: engine core died")
    assert record.valid is False


def test_unreadable_loadgen_log_fails_the_run(sut_runs: dict, tmp_path: Path) -> None:
    run = _copy(sut_runs[("Offline", "performance")], tmp_path / "run")
    text = (run / DETAIL_LOG).read_text()
    (run / DETAIL_LOG).write_text(text[: len(text) // 2])
    record = run_artifacts.read_run(run, "single")
    assert record.status == "failed"
    assert record.error.startswith("LoadGen logs unreadable: ") and DETAIL_LOG in record.error
    assert record.result is not None and record.loadgen is None


def test_invalid_result_fails_the_run(sut_runs: dict, tmp_path: Path) -> None:
    run = _copy(sut_runs[("Offline", "performance")], tmp_path / "run")
    _rewrite_result(run, lambda r: r.update(backend="tensorrt"))
    record = run_artifacts.read_run(run, "single")
    assert record.status == "failed" and "$.backend" in record.error


def test_discover_runs_follows_the_layout(sut_runs: dict, tmp_path: Path) -> None:
    root = tmp_path / "run-42"
    expected = [
        ("single", root / "single" / "node-a" / "Offline" / "accuracy"),
        ("single", root / "single" / "node-a" / "Offline" / "performance"),
        ("single", root / "single" / "node-b" / "Server" / "performance"),
        ("distributed", root / "distributed" / "coordinated" / "Server" / "performance"),
    ]
    for _, path in expected:
        path.mkdir(parents=True)
    (root / "single" / "node-a" / "Offline" / "scratch").mkdir()      # not a mode
    (root / "single" / "node-a" / "notes" / "performance").mkdir(parents=True)   # not a scenario
    (root / "elsewhere" / "node-a" / "Offline" / "performance").mkdir(parents=True)   # not a branch
    assert run_artifacts.discover_runs(root) == expected


def test_interactive_is_loadgen_server(sut_runs: dict, tmp_path: Path) -> None:
    run = _copy(sut_runs[("Server", "performance")], tmp_path / "run")
    _rewrite_result(run, lambda r: r.update(scenario="Interactive"))
    record = run_artifacts.read_run(run, "single")
    assert (record.status, record.scenario, record.loadgen.scenario) == ("completed", "Interactive", "Server")


def test_logs_of_another_run_fail_the_run(sut_runs: dict, tmp_path: Path) -> None:
    run = _copy(sut_runs[("Offline", "performance")], tmp_path / "run")
    _rewrite_result(run, lambda r: r.update(mode="accuracy"))
    record = run_artifacts.read_run(run, "single")
    assert record.status == "failed"
    assert record.error.endswith("LoadGen ran Offline performance but result.json says Offline accuracy")
