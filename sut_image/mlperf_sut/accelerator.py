"""What the SUT ran on, for result.json: the GPU (name, count, driver, memory) or else the CPU model; and the host
(CPU, sockets, cores, memory, OS), which a submission's system description needs."""
from __future__ import annotations

import os
import platform
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


def host() -> dict:
    """The machine the SUT process saw (in a container: the host's CPU, memory and kernel, the image's OS)."""
    cpus = _cpuinfo()
    sockets = len({c.get("physical id") for c in cpus if c.get("physical id") is not None}) or None
    cores = next((int(c["cpu cores"]) for c in cpus if c.get("cpu cores", "").isdigit()), None)
    try:
        os_name = platform.freedesktop_os_release().get("PRETTY_NAME")
    except OSError:
        os_name = None
    return {"cpu_model": _cpu_model(), "sockets": sockets, "cores_per_socket": cores, "logical_cpus": os.cpu_count(),
            "memory_gib": _memory_gib(), "os": os_name, "kernel": platform.release() or None}


def _cpuinfo() -> list[dict[str, str]]:
    """/proc/cpuinfo's blocks (one per logical CPU) as dicts; empty where the file is absent."""
    path = Path("/proc/cpuinfo")
    if not path.is_file():
        return []
    blocks = []
    for block in path.read_text().split("\n\n"):
        fields = dict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in block.splitlines()))
        if fields:
            blocks.append(fields)
    return blocks


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


def device_problem(device_type: str, visible: int, tensor_parallel_size: int,
                   cuda_visible_devices: str | None) -> str | None:
    """Why this engine cannot start on the devices this process sees, or None. A device problem is bad input (exit
    2): retrying on the same node fails the same way."""
    if tensor_parallel_size < 1:
        return f"--tensor-parallel-size {tensor_parallel_size}: must be at least 1"
    if device_type != "cuda":
        return None           # a CPU build runs on the cores it has
    where = (f"CUDA_VISIBLE_DEVICES={cuda_visible_devices!r}" if cuda_visible_devices is not None
             else "CUDA_VISIBLE_DEVICES unset")
    if visible == 0:
        return (f"no GPU visible to this process ({where}): check the node has one, its driver works (nvidia-smi) "
                "and the pod requests nvidia.com/gpu")
    if visible < tensor_parallel_size:
        return (f"--tensor-parallel-size {tensor_parallel_size}: only {visible} GPU(s) visible ({where}); "
                "lower it or give the process more GPUs")
    return None


def check_devices(tensor_parallel_size: int, gpu_memory_utilization: float | None) -> None:
    """Raise InputError (exit 2, one line) when the vLLM engine cannot start on this process's devices."""
    from mlperf_sut.errors import InputError

    if gpu_memory_utilization is not None and not 0 < gpu_memory_utilization <= 1:
        raise InputError(f"--gpu-memory-utilization {gpu_memory_utilization}: a fraction of the GPU's memory, "
                         "0 < f <= 1 (e.g. 0.9)")
    device_type, visible = "cpu", 0
    if tensor_parallel_size >= 1:
        from vllm.platforms import current_platform

        device_type = current_platform.device_type
        if device_type == "cuda":
            import torch

            visible = torch.cuda.device_count()
    problem = device_problem(device_type, visible, tensor_parallel_size, os.environ.get("CUDA_VISIBLE_DEVICES"))
    if problem:
        raise InputError(problem)
