"""What the SUT ran on, for result.json: the GPU (name, count, driver, memory) or else the CPU model."""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Accelerator:
    kind: str
    name: str
    count: int
    driver: str | None
    memory_gib: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def detect() -> Accelerator:
    import torch

    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        return Accelerator("gpu", properties.name, torch.cuda.device_count(), _nvidia_driver(),
                           round(properties.total_memory / 2**30, 1))
    return Accelerator("cpu", _cpu_model(), os.cpu_count() or 1, None, _memory_gib())


def _nvidia_driver() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    return out.splitlines()[0].strip() if out.strip() else None


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def _memory_gib() -> float | None:
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None
