"""Our check of a submission tree: the rules MLCommons' submission checker applies to llama3.1-8b in one round
(its `--version`: v5.1, v6.0 or v6.1, include/mlperf_rules.py CHECKER_ROUNDS), each failure printed with the rule
and the file. Our own trees are checked for v6.1 (LoadGen 6.0.17's round); another tree, by default, for the round
whose seeds its performance logs carry (`choose_round`).

Rules and where each comes from (mlcommons/inference tools/submission/submission_checker/):
  structure     required folders and files               constants.py REQUIRED_*_FILES, *_PATH[round]; loader.py
  scenarios     Offline and one of Server/Interactive    loader.py check_scenarios (closed and network only)
  validity      LoadGen said VALID                       mlperf_log_summary.txt "Result is : VALID" (ours: a
                                                         nightly wants INVALID named, the checker reads the detail)
  loadgen-errors no ERROR in a detail log                checks/performance_check.py, accuracy_check.py
  settings      the round's seeds, min duration 600 s,   checks/performance_check.py (seeds_check,
                query count, sample count, token         min_duration_check, min_query_count_check,
                latencies, latency limits, early stopping performance_sample_count_check, llm_check, latency_check)
  accuracy      targets, hash, log truncated, full data   checks/accuracy_check.py (targets: closed and network)
  compliance    TEST06 verified and passed               checks/compliance_check.py (closed and network)
  system        required fields, status, type, division,  checks/system_check.py
                submitter
  measurements  the measurements JSON's fields, user.conf checks/measurements_checks.py
                and README.md beside it, src/ (code/) exists
The figures are include/mlperf_rules.py's.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include import mlperf_rules
from include.results import loadgen_logs
from include.scoring.accuracy import AccuracyLogError, parse_accuracy_txt
from include.submission import test06

SCENARIOS = ("Offline", "Server", "Interactive", "SingleStream")


@dataclass(frozen=True)
class Problem:
    rule: str
    path: str
    message: str

    def line(self) -> str:
        return f"[{self.rule}] {self.path}: {self.message}"


@dataclass(frozen=True)
class RoundChoice:
    """The checker round whose rules are applied, and why that one (a line the CLI and the check's JSON carry)."""

    version: str
    why: str

    def line(self) -> str:
        return f"rules: MLCommons' submission checker {self.version} ({self.why})"


OUR_ROUND = RoundChoice(mlperf_rules.CHECKER_VERSION, "the round of LoadGen 6.0.17's seeds, which our runs log")
# <division>/<submitter>/results/<system>/<benchmark>/<scenario>/performance/run_1/: where every round keeps them
PERFORMANCE_DETAIL_LOGS = f"*/*/results/*/*/*/performance/run_1/{loadgen_logs.DETAIL_LOG}"


def logged_seeds(values: dict[str, Any]) -> dict[str, Any]:
    """The seeds a detail log's values say LoadGen used (its effective_* settings), by the checker's names."""
    return {key: values.get(f"effective_{key}") for key in mlperf_rules.SEEDS}


def _log_rounds(root: Path) -> dict[Path, str | None]:
    """Each performance detail log under the tree's divisions, with the round whose seeds it carries (None: no
    round's; unreadable logs are left out, the check names them)."""
    rounds: dict[Path, str | None] = {}
    for path in sorted(Path(root).glob(PERFORMANCE_DETAIL_LOGS)):
        if path.parts[len(Path(root).parts)] not in mlperf_rules.DIVISIONS:
            continue
        try:
            values = {r["key"]: r.get("value") for r in loadgen_logs.read_detail(path)}
        except loadgen_logs.LoadGenLogError:
            continue
        rounds[path] = mlperf_rules.round_of_seeds(logged_seeds(values))
    return rounds


def choose_round(root: Path, version: str | None = None) -> RoundChoice:
    """The round to check the tree under: `version` when given, else the round whose seeds its performance logs
    carry (the one most of them carry, the newer on a tie); the newest round when no log carries a known round's
    seeds, and the reason says so."""
    if version is not None:
        if version not in mlperf_rules.CHECKER_ROUNDS:
            raise ValueError(f"unknown checker round {version!r}; known: {', '.join(mlperf_rules.CHECKER_ROUNDS)}")
        return RoundChoice(version, "as asked")
    newest = list(mlperf_rules.CHECKER_ROUNDS)[-1]
    rounds = _log_rounds(root)
    if not rounds:
        return RoundChoice(newest, "no performance log to read the seeds from: the newest round's rules")
    counts: dict[str, int] = {}
    for name in rounds.values():
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    unknown = sum(1 for name in rounds.values() if name is None)
    logs = {1: "the one performance log", 2: "both performance logs"}.get(len(rounds),
                                                                         f"{len(rounds)} performance logs")
    if not counts:
        return RoundChoice(newest, f"the seeds of {logs} are no known round's "
                                   f"({', '.join(mlperf_rules.CHECKER_ROUNDS)}): the newest round's rules")
    order = list(mlperf_rules.CHECKER_ROUNDS)
    chosen = max(counts, key=lambda name: (counts[name], order.index(name)))
    if len(counts) == 1 and not unknown:
        return RoundChoice(chosen, f"the round whose seeds the logs carry: {logs}")
    others = [f"{n} {name}'s" for name, n in counts.items() if name != chosen]
    others += [f"{unknown} no known round's"] if unknown else []
    return RoundChoice(chosen, f"the round whose seeds most logs carry: {counts[chosen]} of {len(rounds)}; "
                               + ", ".join(others))


class _Checker:
    def __init__(self, root: Path, version: str) -> None:
        self.root = Path(root)
        self.rules = mlperf_rules.CHECKER_ROUNDS[version]
        self.problems: list[Problem] = []

    def fail(self, rule: str, path: Path, message: str) -> None:
        self.problems.append(Problem(rule, str(path), message))

    def need_files(self, folder: Path, names: tuple[str, ...]) -> bool:
        ok = True
        for name in names:
            path = folder / name
            if not path.is_file():
                self.fail("structure", path, "required file missing")
                ok = False
            elif path.stat().st_size == 0:
                self.fail("structure", path, "required file is empty")
                ok = False
        return ok

    # -- the tree -----------------------------------------------------------------------------------------------
    def run(self) -> list[Problem]:
        divisions = [d for d in sorted(self.root.iterdir()) if d.is_dir() and d.name in mlperf_rules.DIVISIONS] \
            if self.root.is_dir() else []
        if not divisions:
            self.fail("structure", self.root, f"no division folder ({', '.join(mlperf_rules.DIVISIONS)})")
        for division in divisions:
            for submitter in sorted(p for p in division.iterdir() if p.is_dir()):
                self.submitter(division.name, submitter)
        return self.problems

    def submitter(self, division: str, root: Path) -> None:
        from include.submission.layout import UNNAMED_SUBMITTER

        if root.name == UNNAMED_SUBMITTER:
            self.fail("system", root, "no submitter named: set MLPERF_SUBMITTER to the organisation's name")
        src = root / self.rules.src_dir
        if not src.is_dir():
            self.fail("measurements", src, f"the {self.rules.src_dir} folder is required "
                                           f"(constants.py SRC_PATH, {self.rules.name})")
        results = root / "results"
        systems = sorted(p for p in results.iterdir() if p.is_dir()) if results.is_dir() else []
        if not systems:
            self.fail("structure", results, "no system results")
        for system in systems:
            self.system(division, root.name, root / "systems" / f"{system.name}.json")
            for benchmark in sorted(p for p in system.iterdir() if p.is_dir()):
                if benchmark.name != mlperf_rules.BENCHMARK:
                    self.fail("structure", benchmark, f"not {mlperf_rules.BENCHMARK}, the benchmark checked here")
                    continue
                self.benchmark(division, root, system.name, benchmark)

    def system(self, division: str, submitter: str, path: Path) -> None:
        try:
            desc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            self.fail("system", path, f"system description missing or not JSON ({e})")
            return
        for name in mlperf_rules.SYSTEM_FIELDS:
            if name not in desc:
                self.fail("system", path, f"field {name} is missing")
            elif name in mlperf_rules.SYSTEM_MEANINGFUL_FIELDS and not desc[name]:
                self.fail("system", path, f"field {name} needs a meaningful value (it is empty)")
        if str(desc.get("status", "")).lower() not in mlperf_rules.AVAILABILITIES:
            self.fail("system", path, f"status {desc.get('status')!r} is not one of "
                                      f"{', '.join(mlperf_rules.AVAILABILITIES)} (MLPERF_SYSTEM_STATUS)")
        if desc.get("system_type") != mlperf_rules.SYSTEM_TYPE:
            self.fail("system", path, f"system_type {desc.get('system_type')!r}: llama3.1-8b is in the "
                                      f"{mlperf_rules.SYSTEM_TYPE} suite")
        if str(desc.get("division", "")).lower() != division:
            self.fail("system", path, f"division {desc.get('division')!r} but the folder is {division}")
        if str(desc.get("submitter", "")).lower() != submitter.lower():
            self.fail("system", path, f"submitter {desc.get('submitter')!r} but the folder is {submitter}")

    def benchmark(self, division: str, submitter: Path, system: str, folder: Path) -> None:
        scenarios = sorted(p.name for p in folder.iterdir() if p.is_dir())
        for name in scenarios:
            if name not in SCENARIOS:
                self.fail("scenarios", folder / name, f"not a scenario of {mlperf_rules.BENCHMARK}")
        if division in ("closed", "network"):
            for name in mlperf_rules.REQUIRED_SCENARIOS:
                if name not in scenarios:
                    self.fail("scenarios", folder, f"required scenario {name} missing")
            if not set(mlperf_rules.ONE_OF_SCENARIOS) & set(scenarios):
                self.fail("scenarios", folder, f"one of {' or '.join(mlperf_rules.ONE_OF_SCENARIOS)} is required")
        for name in scenarios:
            if name in SCENARIOS:
                self.scenario(division, submitter, system, name)

    def where(self, template: str, submitter: Path, system: str, scenario: str) -> Path:
        """A folder of the round's layout (CheckerRound's *_dir templates) for one system and scenario."""
        return submitter / template.format(system=system, benchmark=mlperf_rules.BENCHMARK, scenario=scenario)

    def measurements_json(self, folder: Path, system: str, scenario: str) -> Path:
        """The round's measurements JSON in `folder`: its fixed name, or (v5.1) the file named after the system,
        "<system>..._<scenario>.json" preferred (loader.py get_measurement_path)."""
        if self.rules.measurements_file is not None:
            return folder / self.rules.measurements_file
        named = sorted(p for p in folder.glob(f"{system}*.json") if p.is_file()) if folder.is_dir() else []
        scenario_named = [p for p in named if p.name.endswith(f"_{scenario}.json")]
        return (scenario_named or named or [folder / f"{system}_{scenario}.json"])[0]

    def scenario(self, division: str, submitter: Path, system: str, scenario: str) -> None:
        folder = self.where("results/{system}/{benchmark}/{scenario}", submitter, system, scenario)
        measured = self.where(self.rules.measurements_dir, submitter, system, scenario)
        measurements = self.measurements_json(measured, system, scenario)
        self.need_files(measured, (measurements.name, *mlperf_rules.MEASURE_FILES))
        self.measurements(measurements)
        perf = folder / "performance" / "run_1"
        if self.need_files(perf, mlperf_rules.PERFORMANCE_FILES):
            self.performance(division, perf, scenario)
        acc = folder / "accuracy"
        if self.need_files(acc, mlperf_rules.ACCURACY_FILES):
            self.accuracy(division, acc)
        if division in ("closed", "network"):      # compliance_check.py skips the open division
            self.compliance(self.where(self.rules.compliance_dir, submitter, system, scenario) / test06.TEST)

    def measurements(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return                                   # reported as a missing file already, or:
        for name in mlperf_rules.MEASUREMENTS_FIELDS:
            if not data.get(name):
                self.fail("measurements", path, f"field {name} is missing or empty")

    # -- LoadGen's logs -----------------------------------------------------------------------------------------
    def detail(self, folder: Path) -> dict[str, Any] | None:
        path = folder / loadgen_logs.DETAIL_LOG
        try:
            records = loadgen_logs.read_detail(path)
        except loadgen_logs.LoadGenLogError as e:
            self.fail("structure", path, str(e))
            return None
        errors = [f"{r['key']}: {r.get('value')}" for r in records if (r.get("metadata") or {}).get("is_error")]
        for error in errors:
            self.fail("loadgen-errors", path, f"LoadGen logged an error: {error}")
        return {r["key"]: r.get("value") for r in records}

    def performance(self, division: str, folder: Path, scenario: str) -> None:
        values = self.detail(folder)
        summary_path = folder / loadgen_logs.SUMMARY_LOG
        try:
            summary = loadgen_logs.read_summary(summary_path)
        except loadgen_logs.LoadGenLogError as e:
            self.fail("structure", summary_path, str(e))
            summary = {}
        if summary and summary.get("Result is") != "VALID":
            self.fail("validity", summary_path, f"LoadGen's result is {summary.get('Result is') or 'not stated'}")
        if values is None:
            return
        path = folder / loadgen_logs.DETAIL_LOG

        def number(key: str) -> float | None:
            value = values.get(key)
            if value is None:
                self.fail("settings", path, f"{key} not in the log")
                return None
            return float(value)

        seeds = logged_seeds(values)
        carried = mlperf_rules.round_of_seeds(seeds)
        whose = (f" (the log carries {carried}'s seeds: check with --version {carried})" if carried
                 else " (the log carries no known round's seeds)")
        for key, expected in self.rules.seeds.items():
            if seeds[key] != expected:
                self.fail("settings", path, f"{key} is {seeds[key]}, {self.rules.name}'s is {expected}{whose}")
        duration = number("effective_min_duration_ms")
        if duration is not None and duration < mlperf_rules.MIN_DURATION_S * 1000:
            self.fail("settings", path, f"min_duration {duration / 1000:g} s, below MLPerf's "
                                        f"{mlperf_rules.MIN_DURATION_S} s")
        samples = number("effective_performance_sample_count")
        if samples is not None and samples < mlperf_rules.DATASET_SAMPLES:
            self.fail("settings", path, f"performance_sample_count {samples:g}, below the data set's "
                                        f"{mlperf_rules.DATASET_SAMPLES:,}")
        if not values.get("requested_use_token_latencies"):
            self.fail("settings", path, "use_token_latencies is off; an LLM benchmark needs it")
        if scenario in mlperf_rules.MIN_QUERY_COUNT:
            queries = number("effective_min_query_count")
            if queries is not None and queries < mlperf_rules.MIN_QUERY_COUNT[scenario]:
                self.fail("settings", path, f"min_query_count {queries:g}, below "
                                            f"{mlperf_rules.MIN_QUERY_COUNT[scenario]}")
            per_query = number("effective_samples_per_query") if division == "closed" else None
            if per_query is not None and per_query < mlperf_rules.OFFLINE_MIN_QUERY_COUNT:
                self.fail("settings", path, f"samples_per_query {per_query:g}, below "
                                            f"{mlperf_rules.OFFLINE_MIN_QUERY_COUNT:,} (closed division)")
        loadgen_scenario = mlperf_rules.LOADGEN_SCENARIO.get(scenario, scenario)
        if loadgen_scenario in mlperf_rules.EARLY_STOPPING_SCENARIOS and not values.get("early_stopping_met"):
            keys = ("early_stopping_result", "early_stopping_ttft_result", "early_stopping_tpot_result")
            why = "; ".join(" ".join(str(values[k]).split()) for k in keys if str(values.get(k) or "").strip())
            self.fail("settings", path, f"early stopping not met ({why or 'LoadGen gave no reason'})")
        if loadgen_scenario == "Server":
            target = number("effective_target_latency_ns")
            if target is not None and target > mlperf_rules.SERVER_TARGET_LATENCY_LIMIT_NS:
                self.fail("settings", path, f"target latency {target / 1e9:g} s above "
                                            f"{mlperf_rules.SERVER_TARGET_LATENCY_LIMIT_NS / 1e9:g} s")
            limits = mlperf_rules.LATENCY_LIMITS[scenario]
            for key, limit_ms, name in ((mlperf_rules.DETAIL_TTFT_P99_KEY, limits.ttft_ms, "TTFT"),
                                        (mlperf_rules.DETAIL_TPOT_P99_KEY, limits.tpot_ms, "TPOT")):
                value = number(key)
                if value is not None and value >= limit_ms * 1e6:
                    self.fail("settings", path, f"{name} p99 {value / 1e6:.1f} ms, {scenario}'s limit is "
                                                f"{limit_ms:g} ms")

    def accuracy(self, division: str, folder: Path) -> None:
        values = self.detail(folder)
        txt = folder / "accuracy.txt"
        try:
            parsed = parse_accuracy_txt(txt)
        except AccuracyLogError as e:
            self.fail("accuracy", txt, str(e))
            parsed = None
        log = folder / test06.ACCURACY_LOG
        if log.is_file() and log.stat().st_size > mlperf_rules.MAX_ACCURACY_LOG_BYTES:
            self.fail("accuracy", log, f"not truncated ({log.stat().st_size:,} bytes, the limit is "
                                       f"{mlperf_rules.MAX_ACCURACY_LOG_BYTES:,})")
        if values is not None:
            count = values.get(loadgen_logs.QSL_TOTAL_COUNT_KEY)
            if count != mlperf_rules.DATASET_SAMPLES:
                self.fail("accuracy", folder / loadgen_logs.DETAIL_LOG,
                          f"the accuracy run covers {count} samples, not the full data set's "
                          f"{mlperf_rules.DATASET_SAMPLES:,}")
        if parsed is None or division == "open":    # accuracy_check.py: hash and targets bind closed and network
            return
        if not parsed.log_sha256:
            self.fail("accuracy", txt, "no hash= line (the accuracy log's sha256)")
        targets = mlperf_rules.ACCURACY_TARGETS["datacenter"]
        for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
            need = getattr(targets, key) * mlperf_rules.ROUGE_FRACTION
            if parsed.scores[key] < need:
                self.fail("accuracy", txt, f"{key} {parsed.scores[key]:.4f} below the target {need:.4f}")
        low, high = (targets.gen_len * f for f in mlperf_rules.GEN_LEN_RANGE)
        if not low <= parsed.scores["gen_len"] <= high:
            self.fail("accuracy", txt, f"gen_len {parsed.scores['gen_len']:,} outside {low:,.0f}-{high:,.0f}")

    def compliance(self, folder: Path) -> None:
        verify = folder / test06.VERIFY_FILE
        if not verify.is_file():
            self.fail("compliance", verify, f"{test06.TEST} missing: llama3.1-8b requires it (param "
                                            "compliance_tests)")
            return
        for criterion, passed in test06.read_verification(verify).items():
            if not passed:
                self.fail("compliance", verify, f"{test06.TEST} {criterion.replace('_', ' ')} check failed")
        self.need_files(folder, ("accuracy/" + test06.ACCURACY_LOG,))


def check(root: Path, version: str = mlperf_rules.CHECKER_VERSION) -> list[Problem]:
    """Every problem of the tree under root (<root>/<division>/<submitter>/...) under the rules of checker round
    `version` (default: the round our trees are made for); empty when it passes."""
    return _Checker(Path(root), version).run()


def summary_line(problems: list[Problem]) -> str:
    """The report's line."""
    return "submission check: passed" if not problems else f"submission check: {len(problems)} problems"
