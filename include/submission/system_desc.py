"""systems/<system>.json: the system description MLCommons' checker requires, filled from what the SUT recorded.

What the runs recorded (result.json: accelerator, count, memory, driver, software versions, and the host's
CPU, sockets, cores, memory and OS) and what the deployment says (division, submitter, status, and a JSON file of
the fields only a person knows: cooling, storage, networking, ...) fill the document. A required field nobody
recorded is left empty and listed by name: never guessed. The field lists are include/mlperf_rules.py's (the
checker's constants.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include import mlperf_rules
from include.results.sut_result import SutResult


@dataclass(frozen=True)
class SystemDescription:
    system_id: str                 # the folder name under results/ and the file name under systems/
    fields: dict[str, Any]
    missing: list[str]             # required fields with no meaningful value, by name


@dataclass(frozen=True)
class DeployFields:
    """The deploy-time part (include/deployment.py): what a person states about the installation."""

    division: str
    submitter: str | None
    status: str | None
    description_file: str | None   # JSON object of further fields (e.g. {"cooling": "air", ...})

    def hand_written(self) -> dict[str, Any]:
        if not self.description_file:
            return {}
        path = Path(self.description_file)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"MLPERF_SYSTEM_DESCRIPTION={path}: not a readable JSON file ({e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"MLPERF_SYSTEM_DESCRIPTION={path}: expected a JSON object of system fields")
        unknown = sorted(set(data) - set(mlperf_rules.SYSTEM_FIELDS))
        if unknown:
            raise ValueError(f"MLPERF_SYSTEM_DESCRIPTION={path}: {', '.join(unknown)} not a system field "
                             f"(known: {', '.join(mlperf_rules.SYSTEM_FIELDS)})")
        return data


def _software(sut: SutResult) -> tuple[str, str]:
    """(framework, other_software_stack) from the versions the SUT recorded; unknown versions are left out."""
    v = sut.versions
    framework = ", ".join(f"{name} {v[key]}" for name, key in (("vLLM", "vllm"), ("PyTorch", "torch")) if v.get(key))
    other = [f"{name} {v[key]}" for name, key in (("mlperf_sut", "mlperf_sut"), ("MLPerf LoadGen", "loadgen"),
                                                  ("Python", "python")) if v.get(key)]
    if sut.accelerator.driver:
        other.append(f"driver {sut.accelerator.driver}")
    return framework, ", ".join(other)


def describe(system_id: str, sut: SutResult, nodes: int, deploy: DeployFields,
             hardware: SutResult | None) -> SystemDescription:
    """The system description of one system (a node's single-GPU runs, or the coordinated nodes as one).

    `hardware`: the run that recorded the system's accelerator and host: the run itself, or for the coordinated
    run (whose LoadGen process saw only its own machine) a single-GPU run on one of its servers' nodes; None leaves
    those fields empty, listed as missing."""
    fields: dict[str, Any] = {name: "" for name in mlperf_rules.SYSTEM_FIELDS}
    framework, other = _software(sut)
    fields.update({
        "division": deploy.division, "submitter": deploy.submitter or "", "status": deploy.status or "",
        "system_type": mlperf_rules.SYSTEM_TYPE, "number_of_nodes": nodes, "framework": framework,
        "other_software_stack": other,
    })
    if hardware is not None:
        fields.update(_hardware(hardware))
    fields.update(deploy.hand_written())
    missing = [name for name in mlperf_rules.SYSTEM_MEANINGFUL_FIELDS if fields.get(name) in ("", None)]
    return SystemDescription(system_id, fields, missing)


def _hardware(sut: SutResult) -> dict[str, Any]:
    """The accelerator and host fields one run recorded."""
    fields: dict[str, Any] = {}
    acc = sut.accelerator
    used = int(sut.engine.get("tensor_parallel_size") or 1) * int(sut.engine.get("pipeline_parallel_size") or 1)
    if acc.kind == "gpu":
        fields.update({"accelerators_per_node": used, "accelerator_model_name": acc.name,
                       "accelerator_memory_capacity": f"{acc.memory_gib:g} GiB" if acc.memory_gib else ""})
    else:       # the SUT ran on the CPU: no accelerator, and the CPU model is the host's
        fields.update({"accelerators_per_node": 0, "accelerator_model_name": "N/A",
                       "accelerator_memory_capacity": "N/A", "accelerator_host_interconnect": "N/A",
                       "accelerator_memory_configuration": "N/A", "accelerator_interconnect": "N/A",
                       "host_processor_model_name": acc.name})
    if sut.host is not None:
        h = sut.host
        fields.update({key: value for key, value in (
            ("host_processor_model_name", h.cpu_model), ("host_processors_per_node", h.sockets),
            ("host_processor_core_count", h.cores_per_socket),
            ("host_memory_capacity", f"{h.memory_gib:g} GiB" if h.memory_gib else None),
            ("operating_system", f"{h.os} (kernel {h.kernel})" if h.os and h.kernel else h.os)) if value})
    return fields
