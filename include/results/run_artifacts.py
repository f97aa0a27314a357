"""Read one SUT run's output directory: result.json validated against the shared schema, plus LoadGen's verdict.

The SUT and this library meet only through files (ARCHITECTURE.md), so everything read here is checked against
sut_image/mlperf_sut/result.schema.json, the same file the SUT validates what it writes against. A run that cannot
be read is recorded as failed with the reason, never dropped: a missing or broken run is a result too.
"""
from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import jsonschema

from include.deployment import SUT_PACKAGE
from include.mlperf_rules import LOADGEN_SCENARIO, SCENARIOS
from include.records import Branch, RunRecord
from include.results import loadgen_logs
from include.results.sut_result import SutResult

RESULT_FILE = "result.json"
RUNNER_EXIT_FILE = "runner_exit.json"   # written by the runner when the SUT process ended badly
SCHEMA_PATH = SUT_PACKAGE / "result.schema.json"
BRANCHES: tuple[Branch, ...] = ("single", "distributed")
MODES = ("performance", "accuracy")
COORDINATED = "coordinated"   # node label of the distributed run one LoadGen drives across every node


class ArtifactError(ValueError):
    """A run's result.json that cannot be trusted; the message names the file and the JSON path of the field."""


def _load_schema(schema_path: Path) -> tuple[int, dict[str, Any]]:
    """The schema and the one schema_version it describes. A missing schema is a deployment fault, not a run's."""
    try:
        schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"result schema not found at {schema_path}: it ships with the SUT; mount or copy "
                                "sut_image/mlperf_sut/ there") from None
    return schema["properties"]["schema_version"]["const"], schema


def load_result(run_dir: Path, schema_path: Path | None = None) -> dict[str, Any]:
    """result.json of `run_dir`, validated; ArtifactError names the file and the first bad field's JSON path."""
    path = Path(run_dir) / RESULT_FILE
    known_version, schema = _load_schema(schema_path or SCHEMA_PATH)
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing (the SUT wrote no result)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{path}: not JSON ({e})") from None
    if not isinstance(result, dict):
        raise ArtifactError(f"{path}: $: expected a JSON object, got {type(result).__name__}")
    # The version is checked first: a newer SUT's file fails validation field by field, which would hide the cause.
    if "schema_version" not in result:
        raise ArtifactError(f"{path}: $.schema_version: missing; cannot tell which result format this is")
    if result["schema_version"] != known_version:
        raise ArtifactError(f"{path}: $.schema_version: {result['schema_version']!r} is not a version this reader"
                            f" knows ({known_version}); update the results pipeline to read it")
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(result))
    if error is not None:
        raise ArtifactError(f"{path}: {error.json_path}: {error.message}")
    return result


def _node(sut: SutResult, node_label: str) -> str:
    """The node that ran it; for the coordinated distributed run, every endpoint's node joined with '+'."""
    if node_label == COORDINATED and sut.endpoints:
        return "+".join(sut.endpoint_nodes)
    return sut.node


def write_runner_exit(run_dir: Path, *, exit_code: int | None, log_path: str, reason: str) -> Path:
    """What the runner knows of a SUT run that ended badly (exit code, log): the report names them."""
    path = Path(run_dir) / RUNNER_EXIT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"exit_code": exit_code, "log_path": log_path, "reason": reason}), encoding="utf-8")
    return path


def _runner_exit(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / RUNNER_EXIT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _exit_text(code: int | None) -> str:
    if code is None:
        return "no exit code (timed out and killed)"
    if code < 0:
        try:
            return f"exit code {code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"exit code {code}"
    return f"exit code {code}"


def _loadgen_only(run_dir: Path, branch: Branch, node: str) -> RunRecord:
    """A run folder with LoadGen's logs and no result.json (another harness, a published submission)."""
    try:
        lg = loadgen_logs.parse(run_dir)
    except loadgen_logs.LoadGenLogError as e:
        return RunRecord(run_dir=str(run_dir), branch=branch, node=node, scenario=run_dir.parent.name,
                         mode=run_dir.name, status="failed", error=f"LoadGen logs unreadable: {e}", result=None,
                         loadgen=None)
    scenario = getattr(lg, "mlperf_scenario", None) or lg.scenario
    return RunRecord(run_dir=str(run_dir), branch=branch, node=node, scenario=scenario,
                     mode=loadgen_logs.mode_name(lg.mode), status="completed", error=None, result=None, loadgen=lg)


def read_run(run_dir: Path, branch: Branch, node: str | None = None) -> RunRecord:
    """What the pipeline knows of one run; problems become status and error, not exceptions.

    missing: nothing at all was written; failed: the SUT or its runner said so (exit code and log where the runner
    recorded them), result.json is invalid, or a completed run's LoadGen logs cannot be parsed. A folder with
    LoadGen's logs and no result.json is read from LoadGen alone (infrastructure unknown). Where result.json is
    absent, node, scenario and mode come from the layout <node_label>/<scenario>/<mode> (`node` names the system
    of a folder in another layout).
    """
    run_dir = Path(run_dir)
    from_layout = dict(run_dir=str(run_dir), branch=branch, node=node or run_dir.parent.parent.name,
                       scenario=run_dir.parent.name, mode=run_dir.name)
    runner = _runner_exit(run_dir)
    known = dict(exit_code=runner.get("exit_code"), log_path=runner.get("log_path"))
    if not (run_dir / RESULT_FILE).exists():
        if runner:
            reason = runner.get("reason") or "the SUT ended without writing result.json"
            return RunRecord(**from_layout, **known, status="failed", result=None, loadgen=None,
                             error=f"{reason} ({_exit_text(runner.get('exit_code'))}); no result.json")
        if (run_dir / loadgen_logs.DETAIL_LOG).exists():
            return _loadgen_only(run_dir, branch, from_layout["node"])
        return RunRecord(**from_layout, status="missing", error=f"{run_dir / RESULT_FILE}: missing (nothing was "
                         "written: the run never started or its output was lost)", result=None, loadgen=None)
    try:
        result = load_result(run_dir)
    except ArtifactError as e:
        return RunRecord(**from_layout, **known, status="failed", error=str(e), result=None, loadgen=None)
    sut = SutResult.from_json(result)
    fields = dict(run_dir=str(run_dir), branch=branch, node=_node(sut, run_dir.parent.parent.name),
                  scenario=sut.scenario, mode=sut.mode, result=result, **known)
    try:
        loadgen = loadgen_logs.parse(run_dir)
    except loadgen_logs.LoadGenLogError as e:
        if sut.status == "failed":   # the SUT's own error says more than its partial logs
            return RunRecord(**fields, status="failed", error=sut.error, loadgen=None)
        return RunRecord(**fields, status="failed", error=f"LoadGen logs unreadable: {e}", loadgen=None)
    if sut.status == "failed":
        return RunRecord(**fields, status="failed", error=sut.error, loadgen=loadgen)
    ran = (loadgen.scenario, loadgen_logs.mode_name(loadgen.mode))
    if ran != (LOADGEN_SCENARIO.get(sut.scenario, sut.scenario), sut.mode):
        return RunRecord(**fields, status="failed", loadgen=loadgen,
                         error=f"{run_dir}: LoadGen ran {' '.join(ran)} but {RESULT_FILE} says "
                               f"{sut.scenario} {sut.mode}")
    return RunRecord(**fields, status="completed", error=None, loadgen=loadgen)


def in_our_layout(run_dir: Path) -> bool:
    return run_dir.parent.name in SCENARIOS and run_dir.name in MODES and run_dir.parent.parent.parent.name in BRANCHES


def discover_runs(root: Path) -> list[tuple[Branch, Path]]:
    """Every run directory of one pipeline run, `root` = <artifacts_root>/<run_id>, sorted.

    Layout: <root>/<branch>/<node_label>/<scenario>/<mode>/. Directories are listed whether or not they hold a
    result.json, so that a pod which never wrote one shows up as missing. A folder in none of our layout (an MLPerf
    submission's <scenario>/performance/run_1/, another harness's output) is searched for LoadGen's detail logs.
    Hidden folders are never runs: the SUT moves an earlier run's files into <scenario>/.earlier/.
    """
    runs = []
    for branch in BRANCHES:
        for run_dir in sorted(Path(root).glob(f"{branch}/*/*/*")):
            if run_dir.is_dir() and run_dir.parent.name in SCENARIOS and run_dir.name in MODES:
                runs.append((branch, run_dir))
    if not runs:
        runs = [("single", detail.parent) for detail in sorted(Path(root).rglob(loadgen_logs.DETAIL_LOG))
                if not any(part.startswith(".") for part in detail.relative_to(root).parts)]
    return runs
