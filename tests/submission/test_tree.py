"""The submission tree of a real run (tiny model on the CPU, embedded-size): the files MLCommons' checker
requires, the system description from what the SUT recorded, and our check naming each problem with its rule and
file. The rules' lists are include/mlperf_rules.py's; the tree must hold exactly those files."""
from __future__ import annotations

import hashlib
import json

import pytest

from include import mlperf_rules
from include.submission import checker, run as submission, system_desc
from tests.submission.conftest import NODE, REPO, TINY

pytestmark = pytest.mark.slow
OPEN = system_desc.DeployFields("open", "Example Org", "available", None)


def make(run_folder, tmp_path, deploy=OPEN):
    from include import pipeline

    records = pipeline.parse_folder(run_folder)
    return submission.make(records, tmp_path / "tree", deploy, str(TINY)), records


def files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_the_tree_holds_exactly_the_files_the_rules_require(run_folder, tmp_path):
    result, _ = make(run_folder, tmp_path)
    [system] = result["systems"]
    assert system["system_id"] == f"CPU_{NODE}" and system["scenarios"] == ["Offline"]
    root = tmp_path / "tree" / "open" / "Example Org"
    scenario = f"results/{system['system_id']}/{mlperf_rules.BENCHMARK}/Offline"
    expected = sorted([f"systems/{system['system_id']}.json", "src/README.md",
                       *(f"{scenario}/performance/run_1/{f}" for f in mlperf_rules.PERFORMANCE_FILES),
                       *(f"{scenario}/accuracy/{f}" for f in mlperf_rules.ACCURACY_FILES),
                       *(f"{scenario}/{f}" for f in mlperf_rules.SCENARIO_FILES),
                       f"{scenario}/mlperf.conf",
                       *(f"{scenario}/TEST06/{f}" for f in mlperf_rules.TEST06_FILES)])
    assert files(root) == expected
    # mlperf.conf is the one compiled into the run's LoadGen: it sets the seeds the checker's round expects
    conf = (root / scenario / "mlperf.conf").read_text()
    assert all(f"*.*.{key} = {value}" in conf for key, value in mlperf_rules.SEEDS.items())


def test_the_system_description_comes_from_the_run_and_names_what_nobody_recorded(run_folder, tmp_path):
    result, records = make(run_folder, tmp_path)
    sut = records[0].sut
    root = tmp_path / "tree" / "open" / "Example Org"
    desc = json.loads((root / "systems" / f"CPU_{NODE}.json").read_text())
    assert set(desc) == set(mlperf_rules.SYSTEM_FIELDS)
    assert desc["host_processor_model_name"] == sut.accelerator.name == sut.host.cpu_model   # it ran on this CPU
    assert desc["operating_system"] == f"{sut.host.os} (kernel {sut.host.kernel})"
    assert desc["host_processor_core_count"] == sut.host.cores_per_socket and sut.host.logical_cpus >= 1
    assert desc["framework"] == f"vLLM {sut.versions['vllm']}, PyTorch {sut.versions['torch']}"
    assert f"MLPerf LoadGen {sut.versions['loadgen']}" in desc["other_software_stack"]
    assert (desc["division"], desc["submitter"], desc["status"]) == ("open", "Example Org", "available")
    missing = result["systems"][0]["missing_fields"]
    assert "cooling" in missing and "host_storage_capacity" in missing and "system_name" in missing
    assert all(desc[name] == "" for name in missing)                      # never guessed


def test_hand_written_fields_fill_the_description_and_a_wrong_name_is_refused(run_folder, tmp_path):
    extra = tmp_path / "system.json"
    extra.write_text(json.dumps({"host_storage_type": "NVMe", "cooling": "air"}))
    result, _ = make(run_folder, tmp_path, system_desc.DeployFields("open", "Example Org", "available", str(extra)))
    missing = result["systems"][0]["missing_fields"]
    assert "host_storage_type" not in missing and "cooling" not in missing
    extra.write_text(json.dumps({"coolling": "air"}))
    with pytest.raises(ValueError, match="coolling not a system field"):
        make(run_folder, tmp_path / "again", system_desc.DeployFields("open", "X", None, str(extra)))


def test_the_accuracy_log_is_truncated_and_accuracy_txt_keeps_the_full_logs_hash(run_folder, tmp_path):
    make(run_folder, tmp_path)
    [acc] = (tmp_path / "tree").rglob("accuracy/accuracy.txt")
    full = run_folder / "single" / NODE / "Offline" / "accuracy" / "mlperf_log_accuracy.json"
    assert f"hash={hashlib.sha256(full.read_bytes()).hexdigest()}" in acc.read_text()
    kept = acc.parent / "mlperf_log_accuracy.json"
    assert kept.stat().st_size <= mlperf_rules.MAX_ACCURACY_LOG_BYTES
    if full.stat().st_size > mlperf_rules.MAX_ACCURACY_LOG_BYTES:
        assert kept.read_bytes().startswith(full.read_bytes()[:4096])


def test_the_embedded_run_is_not_compliant_and_each_reason_names_rule_and_file(run_folder, tmp_path):
    result, _ = make(run_folder, tmp_path)
    assert not result["passed"] and result["line"] == f"submission check: {len(result['problems'])} problems"
    problems = "\n".join(result["problems"])
    assert "[settings]" in problems and "performance/run_1/mlperf_log_detail.txt: min_duration 0 s" in problems
    assert "performance_sample_count 16, below the data set's 13,368" in problems
    assert "accuracy/mlperf_log_detail.txt: the accuracy run covers 16 samples" in problems
    assert "[system]" in problems and "field cooling" in problems
    assert "[structure]" not in problems and "[loadgen-errors]" not in problems and "[validity]" not in problems
    readme = next((tmp_path / "tree").rglob("Offline/README.md")).read_text()
    assert "Submission check: not compliant" in readme and "min_duration 0 s" in readme
    assert json.loads((tmp_path / submission.CHECK_FILE).read_text())["problems"] == result["problems"]


def test_closed_division_requires_a_passed_test06(run_folder, tmp_path):
    closed = system_desc.DeployFields("closed", "Example Org", "available", None)
    result, _ = make(run_folder, tmp_path, closed)
    assert not any("[compliance]" in p for p in result["problems"])      # the SUT's TEST06 run passed
    [verify] = (tmp_path / "tree").rglob("TEST06/verify_accuracy.txt")
    assert verify.read_text().endswith("TEST06 verification complete\n")
    verify.write_text(verify.read_text().replace("EOS check pass: True", "EOS check pass: False"))
    problems = [p.line() for p in checker.check(tmp_path / "tree")]
    assert f"[compliance] {verify}: TEST06 eos check failed" in problems
    verify.unlink()
    assert any(p.startswith(f"[compliance] {verify}: TEST06 missing") for p in
               (q.line() for q in checker.check(tmp_path / "tree")))


def test_the_cli_lays_out_and_checks_with_a_non_zero_exit(run_folder, tmp_path):
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "MLPERF_SUBMITTER": "Example Org",
           "MLPERF_SYSTEM_STATUS": "available"}
    out = tmp_path / "cli"
    made = subprocess.run([sys.executable, "-m", "include", "submission", str(run_folder), "--out", str(out),
                           "--model", str(TINY)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert made.returncode == 1, made.stderr
    assert f"system CPU_{NODE}: Offline; fields nobody recorded: " in made.stdout
    checked = subprocess.run([sys.executable, "-m", "include", "submission", "--check", str(out)], cwd=REPO,
                             env=env, capture_output=True, text=True, timeout=300)
    assert checked.returncode == 1
    lines = checked.stdout.splitlines()
    assert lines[-1].startswith("submission check: ") and lines[-1].endswith(" problems")
    assert any(line.startswith("FAIL [settings] ") and "min_duration" in line for line in lines)
    bad = subprocess.run([sys.executable, "-m", "include", "submission", "--check", str(out / "nope")], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "not a directory" in bad.stderr


def test_the_coordinated_system_takes_its_hardware_from_its_servers_nodes_not_the_coordinator(run_folder, tmp_path):
    import dataclasses

    from include import pipeline
    from include.submission import layout

    single = next(r for r in pipeline.parse_folder(run_folder) if r.mode == "performance")
    coordinator = {**single.result, "backend": "http", "node": "coordinator",
                   "accelerator": {**single.result["accelerator"], "kind": "cpu", "name": "the coordinator's CPU"},
                   "host": {**single.result["host"], "cpu_model": "the coordinator's CPU"},
                   "endpoints": [{"url": "http://10.0.0.1:8000", "node": NODE, "samples_completed": 16,
                                  "output_tokens": 2048}]}
    coordinated = dataclasses.replace(single, branch="distributed", result=coordinator)
    tree = layout.build([single, coordinated], tmp_path / "tree", OPEN)
    [system] = [s for s in tree.systems if "_1nodes" in s.system_id]
    assert system.description.fields["host_processor_model_name"] == single.sut.host.cpu_model
    assert system.description.fields["number_of_nodes"] == 1
    alone = layout.build([coordinated], tmp_path / "alone", OPEN)      # no single run of its nodes: not guessed
    [system] = alone.systems
    assert system.system_id.startswith("unknown_")
    assert {"host_processor_model_name", "accelerator_model_name"} <= set(system.description.missing)
