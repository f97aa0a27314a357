"""Lay out one pipeline run as the submission tree MLCommons' checker of LoadGen 6.0.x's round (v6.1) reads.

    <out>/<division>/<submitter>/
        systems/<system>.json
        src/README.md
        results/<system>/llama3.1-8b/<scenario>/
            performance/run_1/   mlperf_log_summary.txt mlperf_log_detail.txt
            accuracy/            mlperf_log_summary.txt mlperf_log_detail.txt accuracy.txt mlperf_log_accuracy.json
            TEST06/              verify_accuracy.txt accuracy/mlperf_log_accuracy.json   (when the test was run)
            measurements.json  mlperf.conf  user.conf  README.md

Paths: submission_checker/constants.py (PERFORMANCE_LOG_PATH, ACCURACY_*_PATH, MEASUREMENTS_PATH, TEST06_ACC_PATH,
SYSTEM_PATH, SRC_PATH for v6.1, as for v6.0) and tools/submission/submission_structure.md. One system per node for its
single-GPU runs, and the coordinated distributed run as a system of its own; the sharded branch is no system (each
node's LoadGen saw only its shard). The accuracy log is truncated as truncate_accuracy_log.py does (4 KiB head and
tail); accuracy.txt keeps the full log's hash, written by our scorer (include/scoring/accuracy.py).
"""
from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from include import mlperf_rules
from include.records import RunRecord
from include.results.sut_result import SutResult
from include.submission import system_desc, test06
from include.submission.system_desc import DeployFields

COMPLIANCE_DIR = test06.TEST                   # <run>/<branch>/<node>/<scenario>/TEST06/: the SUT's compliance run
EFFECTIVE_CONF = ("user.conf", "mlperf.conf")  # written by the SUT beside LoadGen's logs
README = "README.md"
UNNAMED_SUBMITTER = "unnamed-submitter"        # folder name until MLPERF_SUBMITTER is set (the check says so)


@dataclass
class SystemTree:
    system_id: str
    description: system_desc.SystemDescription
    scenarios: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)          # what the tree lacks and why


@dataclass
class SubmissionTree:
    root: Path                     # <out>/<division>/<submitter>
    systems: list[SystemTree]
    skipped: list[str]             # runs that make no system, and why

    def to_dict(self) -> dict:
        return {"root": str(self.root), "skipped": self.skipped,
                "systems": [{"system_id": s.system_id, "scenarios": s.scenarios, "notes": s.notes,
                             "missing_fields": s.description.missing} for s in self.systems]}


def system_id(hardware: SutResult | None, name: str) -> str:
    """<accelerators>x<model>_<name>: a folder name (letters, digits, '.', '-', '_')."""
    if hardware is None:
        what = "unknown"
    else:
        used = int(hardware.engine.get("tensor_parallel_size") or 1) if hardware.accelerator.kind == "gpu" else 0
        what = f"{used}x{hardware.accelerator.name}" if used else "CPU"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{what}_{name}").strip("_")


def _hardware(runs: list[RunRecord], records: list[RunRecord]) -> SutResult | None:
    """The run that recorded the system's accelerator and host: a single-GPU run's own; for the coordinated run a
    completed single-GPU run on one of its servers' nodes (its LoadGen process saw only the coordinator)."""
    sut = runs[0].sut
    if sut.backend != "http":
        return sut
    nodes = set(sut.endpoint_nodes)
    return next((r.sut for r in records if r.branch == "single" and r.status == "completed" and r.sut is not None
                 and r.node in nodes), None)


def _systems(records: list[RunRecord]) -> tuple[dict[tuple[str, str], list[RunRecord]], list[str]]:
    """Completed runs grouped by (branch, node label); the runs left out, with the reason."""
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    skipped = []
    for r in records:
        where = f"{r.branch}/{r.node} {r.scenario} {r.mode}"
        if r.status != "completed" or r.sut is None:
            skipped.append(f"{where}: {r.status} ({r.error or 'no result.json'})")
        elif r.sut.shard is not None:
            skipped.append(f"{where}: a shard of the data set (sharded branch), no system's result")
        else:
            groups[(r.branch, Path(r.run_dir).parent.parent.name)].append(r)
    return groups, skipped


def truncate_accuracy_log(src: Path, dst: Path) -> None:
    """Copy; a log over the checker's size limit keeps its first and last 4 KiB (truncate_accuracy_log.py)."""
    size = src.stat().st_size
    if size <= mlperf_rules.MAX_ACCURACY_LOG_BYTES:
        shutil.copy2(src, dst)
        return
    keep = mlperf_rules.ACCURACY_LOG_VIEWABLE_BYTES
    with open(src, "rb") as f:
        head = f.read(keep)
        f.seek(size - keep)
        tail = f.read(keep)
    dst.write_bytes(head + b"\n\n...\n\n" + tail)


def _copy(src_dir: Path, names: tuple[str, ...], dst_dir: Path) -> list[str]:
    """Copy the named files that exist; the names of those that do not."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    missing = []
    for name in names:
        src = src_dir / name
        if not src.is_file():
            missing.append(name)
        elif name == test06.ACCURACY_LOG:
            truncate_accuracy_log(src, dst_dir / name)
        else:
            shutil.copy2(src, dst_dir / name)
    return missing


def measurements(record: RunRecord) -> dict[str, str]:
    """measurements.json (constants.py SYSTEM_IMP_REQUIRED_FILES) from the run's model and engine settings."""
    sut = record.sut
    dtype = str(sut.engine.get("dtype") or "")
    quant = sut.engine.get("quantization")
    weights = ("none: random weights (vLLM load_format=dummy)" if sut.model.dummy_weights
               else f"{sut.model.name} (Hugging Face weights)")
    return {"input_data_types": sut.generation["token_dtype"], "retraining": "No",
            "starting_weights_filename": weights, "weight_data_types": str(quant or dtype),
            "weight_transformations": f"quantization ({quant}) at load time by vLLM" if quant else "none"}


def eos_token_id(model_dir: str | None) -> int | None:
    """The model's EOS token (config.json; the first where it lists several), for TEST06's EOS criterion."""
    if not model_dir:
        return None
    try:
        eos = json.loads((Path(model_dir) / "config.json").read_text()).get("eos_token_id")
    except (OSError, ValueError):
        return None
    return eos[0] if isinstance(eos, list) and eos else eos if isinstance(eos, int) else None


def _readme(system: str, scenario: str, perf: RunRecord | None, acc: RunRecord | None, notes: list[str]) -> str:
    lines = [f"# {mlperf_rules.BENCHMARK} {scenario} on {system}", "",
             "Produced by the MLPerf-on-Airflow pipeline (`python -m include submission`): LoadGen's logs of the",
             "runs below, copied unchanged; vLLM through `python -m mlperf_sut run` (sut_image/).", ""]
    for label, r in (("performance", perf), ("accuracy", acc)):
        if r is not None:
            lines.append(f"- {label}: {r.run_dir} (node {r.node}, backend {r.sut.backend}, "
                         f"model {r.sut.model.name}, load_format {r.sut.model.load_format})")
    if notes:
        lines += ["", "## Not in this tree", "", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


def _scenario(out: Path, system: str, scenario: str, runs: dict[str, RunRecord], model_dir: str | None) -> list[str]:
    """One results/<system>/llama3.1-8b/<scenario>/ folder; returns what it lacks."""
    notes: list[str] = []
    perf, acc = runs.get("performance"), runs.get("accuracy")
    if perf is not None:
        lacking = _copy(Path(perf.run_dir), mlperf_rules.PERFORMANCE_FILES, out / "performance" / "run_1")
        notes += [f"performance/run_1/{n}: not written by the run" for n in lacking]
    else:
        notes.append("performance/run_1: no completed performance run")
    if acc is not None:
        lacking = _copy(Path(acc.run_dir), mlperf_rules.ACCURACY_FILES, out / "accuracy")
        notes += [f"accuracy/{n}: not written by the run" + (" (not scored)" if n == "accuracy.txt" else "")
                  for n in lacking]
    else:
        notes.append("accuracy: no completed accuracy run")
    source = perf or acc
    lacking = _copy(Path(source.run_dir), EFFECTIVE_CONF, out)
    notes += [f"{n}: the SUT did not write it" for n in lacking]
    (out / mlperf_rules.MEASUREMENTS_JSON).write_text(json.dumps(measurements(source), indent=2) + "\n")
    compliance = Path(source.run_dir).parent / COMPLIANCE_DIR
    eos = eos_token_id(model_dir or source.sut.model.path)
    if not (compliance / test06.ACCURACY_LOG).is_file():
        notes.append(f"{test06.TEST}: the compliance run was not made (param compliance_tests)")
    elif eos is None:
        notes.append(f"{test06.TEST}: not verified: the model's EOS token is unknown (no config.json here)")
    else:
        test06.write_verification(compliance, out, scenario, eos)
    (out / README).write_text(_readme(system, scenario, perf, acc, notes))
    return notes


def build(records: list[RunRecord], out_dir: Path, deploy: DeployFields,
          model_dir: str | None = None) -> SubmissionTree:
    """Write the tree under out_dir/<division>/<submitter>/ from the run's records (parsed, accuracy scored)."""
    root = Path(out_dir) / deploy.division / (deploy.submitter or UNNAMED_SUBMITTER)
    groups, skipped = _systems(records)
    systems = []
    for (branch, label), runs in sorted(groups.items()):
        sut = runs[0].sut
        nodes = len(sut.endpoint_nodes) or 1
        hardware = _hardware(runs, records)
        sid = system_id(hardware, label if branch == "single" else f"{label}_{nodes}nodes")
        tree = SystemTree(sid, system_desc.describe(sid, sut, nodes, deploy, hardware))
        by_scenario: dict[str, dict[str, RunRecord]] = defaultdict(dict)
        for r in runs:
            by_scenario[r.scenario][r.mode] = r
        for scenario, modes in sorted(by_scenario.items()):
            folder = root / "results" / sid / mlperf_rules.BENCHMARK / scenario
            tree.notes += [f"{scenario}: {n}" for n in _scenario(folder, sid, scenario, modes, model_dir)]
            tree.scenarios.append(scenario)
        (root / "systems").mkdir(parents=True, exist_ok=True)
        (root / "systems" / f"{sid}.json").write_text(json.dumps(tree.description.fields, indent=2) + "\n")
        systems.append(tree)
    src = root / mlperf_rules.CHECKER_ROUNDS[mlperf_rules.CHECKER_VERSION].src_dir
    src.mkdir(parents=True, exist_ok=True)
    (src / README).write_text(f"# Source of the {mlperf_rules.BENCHMARK} results\n\nThe system under test is "
                              "`sut_image/` of the MLPerf-on-Airflow project (`python -m mlperf_sut run`); the "
                              "pipeline that made this tree is its `include/`.\n")
    return SubmissionTree(root, systems, skipped)
