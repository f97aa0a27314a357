"""The submission check by MLCommons checker round (v5.1, v6.0, v6.1) on a real published v6.0 result: it passes its
own round's rules, and under the others' it fails on exactly what differs (the RNG seeds; v5.1's folders). The round
is the one whose seeds the logs carry unless asked; see tests/fixtures/mlperf-v6.0-hpe-dl145-rtx-pro-4500/README.md.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from include import mlperf_rules
from include.apps import cli
from include.results import loadgen_logs
from include.submission import checker, run
from tests.conftest import REPO

V60_TREE = REPO / "tests" / "fixtures" / "mlperf-v6.0-hpe-dl145-rtx-pro-4500"
SUBMITTER = "closed/HPE"
SYSTEM = "HPE_PROLIANT_DL145_RTX_PRO_4500_PCIE_32GBx1_TRT_DC_TRT"
RESULTS = f"{SUBMITTER}/results/{SYSTEM}/{mlperf_rules.BENCHMARK}"
PERF_LOGS = [f"{RESULTS}/{s}/performance/run_1/{loadgen_logs.DETAIL_LOG}" for s in ("Offline", "Server")]


def relative(problems: list[checker.Problem], root: Path) -> list[tuple[str, str, str]]:
    return [(p.rule, str(Path(p.path).relative_to(root)), p.message) for p in problems]


def copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(V60_TREE, root)
    return root


def set_seeds(log: Path, seeds: dict[str, int]) -> None:
    """Rewrite a copied detail log's effective seeds (the lines LoadGen wrote, values swapped)."""
    lines = []
    for line in log.read_text().splitlines(keepends=True):
        for key, value in seeds.items():
            if f'"key": "effective_{key}"' in line:
                old = mlperf_rules.CHECKER_ROUNDS["v6.0"].seeds[key]
                assert f'"value": {old},' in line
                line = line.replace(f'"value": {old},', f'"value": {value},')
        lines.append(line)
    log.write_text("".join(lines))


def test_the_rounds_seeds_are_the_checkers_and_ours_are_v61s(published_fixtures: Path) -> None:
    assert list(mlperf_rules.CHECKER_ROUNDS) == ["v5.1", "v6.0", "v6.1"]
    assert mlperf_rules.SEEDS == mlperf_rules.CHECKER_ROUNDS[mlperf_rules.CHECKER_VERSION].seeds
    assert mlperf_rules.CHECKER_VERSION == "v6.1"
    # Real logs of two rounds carry their round's seeds: the v6.0 tree here, the v5.1 logs in shared/fixtures.
    for log, round_name in ((V60_TREE / PERF_LOGS[0], "v6.0"),
                            (published_fixtures / "Offline/performance/run_1" / loadgen_logs.DETAIL_LOG, "v5.1")):
        values = {r["key"]: r.get("value") for r in loadgen_logs.read_detail(log)}
        assert mlperf_rules.round_of_seeds(checker.logged_seeds(values)) == round_name
    assert mlperf_rules.round_of_seeds({"qsl_rng_seed": 1}) is None


def test_a_published_v60_result_passes_v60s_rules() -> None:
    assert checker.check(V60_TREE, "v6.0") == []
    assert checker.choose_round(V60_TREE) == checker.RoundChoice(
        "v6.0", "the round whose seeds the logs carry: both performance logs")


def test_under_v61s_rules_it_fails_on_exactly_the_seeds() -> None:
    problems = relative(checker.check(V60_TREE, "v6.1"), V60_TREE)
    v60, v61 = (mlperf_rules.CHECKER_ROUNDS[r].seeds for r in ("v6.0", "v6.1"))
    assert problems == [
        ("settings", log, f"{key} is {v60[key]}, v6.1's is {v61[key]} (the log carries v6.0's seeds: check with "
                          "--version v6.0)")
        for log in PERF_LOGS for key in ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed")]


def test_v51_keeps_measurements_compliance_and_code_in_folders_of_their_own(tmp_path: Path) -> None:
    """The same tree laid out as v5.1 wanted it passes v5.1's rules but for the seeds (its logs are v6.0's); the
    v6.0 layout under v5.1's rules misses exactly those folders."""
    v60_under_v51 = {(rule, path) for rule, path, _ in relative(checker.check(V60_TREE, "v5.1"), V60_TREE)}
    expected = {("measurements", f"{SUBMITTER}/code")}
    for scenario in ("Offline", "Server"):
        where = f"{SYSTEM}/{mlperf_rules.BENCHMARK}/{scenario}"
        expected |= {("structure", f"{SUBMITTER}/measurements/{where}/{name}")
                     for name in (f"{SYSTEM}_{scenario}.json", "user.conf", "README.md")}
        expected.add(("compliance", f"{SUBMITTER}/compliance/{where}/TEST06/verify_accuracy.txt"))
    expected |= {("settings", log) for log in PERF_LOGS}
    assert v60_under_v51 == expected

    root = copy_tree(tmp_path)
    sub = root / SUBMITTER
    (sub / "src").rename(sub / "code")
    for scenario in ("Offline", "Server"):
        results = sub / "results" / SYSTEM / mlperf_rules.BENCHMARK / scenario
        measured = sub / "measurements" / SYSTEM / mlperf_rules.BENCHMARK / scenario
        compliance = sub / "compliance" / SYSTEM / mlperf_rules.BENCHMARK / scenario
        measured.mkdir(parents=True)
        compliance.mkdir(parents=True)
        (results / "measurements.json").rename(measured / f"{SYSTEM}_TRT_{scenario}.json")
        for name in mlperf_rules.MEASURE_FILES:
            (results / name).rename(measured / name)
        (results / "TEST06").rename(compliance / "TEST06")
    problems = relative(checker.check(root, "v5.1"), root)
    assert {(rule, path) for rule, path, _ in problems} == {("settings", log) for log in PERF_LOGS}
    assert len(problems) == 6 and all("v5.1's is" in message for *_, message in problems)
    assert {rule for rule, *_ in relative(checker.check(root, "v6.0"), root)} == {"structure", "measurements",
                                                                                  "compliance"}


def test_the_default_round_is_the_one_most_logs_seeds_name(tmp_path: Path) -> None:
    root = copy_tree(tmp_path)
    offline, server = (root / log for log in PERF_LOGS)
    set_seeds(server, mlperf_rules.CHECKER_ROUNDS["v6.1"].seeds)
    assert checker.choose_round(root) == checker.RoundChoice(
        "v6.1", "the round whose seeds most logs carry: 1 of 2; 1 v6.0's")              # a tie: the newer round
    set_seeds(offline, {"qsl_rng_seed": 7})
    assert checker.choose_round(root) == checker.RoundChoice(
        "v6.1", "the round whose seeds most logs carry: 1 of 2; 1 no known round's")


def test_no_round_matches_and_no_log_are_said(tmp_path: Path) -> None:
    root = copy_tree(tmp_path)
    for log in PERF_LOGS:
        set_seeds(root / log, {"qsl_rng_seed": 7})
    assert checker.choose_round(root) == checker.RoundChoice(
        "v6.1", "the seeds of both performance logs are no known round's (v5.1, v6.0, v6.1): the newest round's rules")
    problems = relative(checker.check(root, "v6.1"), root)
    assert len(problems) == 6 and all(m.endswith("(the log carries no known round's seeds)") for *_, m in problems)
    empty = tmp_path / "empty"
    (empty / "closed").mkdir(parents=True)
    assert checker.choose_round(empty) == checker.RoundChoice(
        "v6.1", "no performance log to read the seeds from: the newest round's rules")
    assert checker.choose_round(root, "v5.1") == checker.RoundChoice("v5.1", "as asked")
    with pytest.raises(ValueError, match="unknown checker round 'v4.0'"):
        checker.choose_round(root, "v4.0")


def test_cli_says_the_round_and_takes_version(capsys) -> None:
    assert cli.main(["submission", "--check", str(V60_TREE)]) == cli.EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out == ["rules: MLCommons' submission checker v6.0 (the round whose seeds the logs carry: both "
                   "performance logs)", "submission check: passed"]
    assert cli.main(["submission", "--check", str(V60_TREE), "--version", "v6.1"]) == cli.EXIT_RUN_FAILED
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "rules: MLCommons' submission checker v6.1 (as asked)"
    assert len([line for line in out if line.startswith("FAIL [settings]")]) == 6
    assert out[-1] == "submission check: 6 problems"
    with pytest.raises(SystemExit):
        cli.main(["submission", "--check", str(V60_TREE), "--version", "v6.2"])
    assert cli.main(["submission", "somewhere", "--out", "x", "--version", "v6.0"]) == cli.EXIT_USAGE
    assert "--version goes with --check" in capsys.readouterr().err


def test_the_checks_json_names_its_round() -> None:
    rules = checker.choose_round(V60_TREE)
    result = run.check_result(V60_TREE, checker.check(V60_TREE, rules.version), rules=rules)
    assert (result["passed"], result["version"], result["version_why"]) == (True, "v6.0", rules.why)
    assert run.check_result(V60_TREE, [])["version"] == mlperf_rules.CHECKER_VERSION   # our own trees: v6.1
