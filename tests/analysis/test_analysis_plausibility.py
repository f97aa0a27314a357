"""include.plausibility / include.accelerators: results checked against the hardware's physics."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from include.accelerators import ACCELERATORS, lookup
from include.plausibility import check_all, check_record, model_parameters, params_from_config
from tests.analysis.analysis_factory import make_record

FIXTURES = Path("/work/shared/fixtures/mlperf-v5.1-redhat-xe8640-h100-vllm")
LLAMA_3_1_8B_CONFIG = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                       "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
                       "tie_word_embeddings": False, "head_dim": 128}


def test_the_issues_a30_example_is_flagged_with_its_numbers() -> None:
    # 106 samples/s of Llama-3.1-8B, ~780 input and 128 output tokens each, on one A30
    record = make_record("a30-node", accelerator="NVIDIA A30", memory_gib=24.0, samples_per_second=106.0,
                         tokens_per_second=106.0 * 128, samples=13368)
    check = check_record(record, input_tokens_per_sample=780)
    assert check.implausible
    text = check.explanation
    needed = float(re.search(r"needs ~([\d.]+) PFLOP/s", text).group(1))
    assert needed == pytest.approx(1.5, abs=0.06)                         # ~1.5 PFLOP/s
    times_peak = float(re.search(r"([\d.]+) times the 165 TFLOP/s bf16 peak", text).group(1))
    assert 9.0 <= times_peak < 10.0                                       # about 9 times the A30's peak
    times_bandwidth = float(re.search(r"it would need ([\d,]+) times the decode rate its 933 GB/s",
                                      text).group(1).replace(",", ""))
    assert times_bandwidth > 200                                          # over 200 x at batch size 1
    # bound = 165e12 / (2 * 8.03e9 * 908) * 128 output tokens/s
    assert check.compute_bound_tokens_per_second == pytest.approx(165e12 / (2 * 8.03e9 * 908) * 128, rel=1e-6)
    assert check.measured_tokens_per_second == pytest.approx(13568.0)


def test_singlestream_a30_bandwidth_bound_is_batch_one_decode_rate() -> None:
    record = make_record("a30-node", scenario="SingleStream", accelerator="NVIDIA A30", memory_gib=24.0,
                         samples_per_second=0.6, tokens_per_second=80.0)
    check = check_record(record)
    assert check.bandwidth_bound_tokens_per_second == pytest.approx(933e9 / (8.03e9 * 2), rel=1e-6)   # ~58
    assert check.implausible and "memory-bandwidth bound" in check.explanation


@pytest.mark.parametrize("engine, tps, sps", [
    ({"dtype": "bfloat16", "max_num_seqs": 512}, 5019.0, 39.2),                       # FACTS: H200 bf16
    ({"dtype": "bfloat16", "quantization": "fp8", "kv_cache_dtype": "fp8", "max_num_seqs": 512}, 6937.0, 54.2),
])
def test_real_h200_figures_are_not_flagged(engine, tps, sps) -> None:
    record = make_record("h200-node", accelerator="NVIDIA H200", engine=engine, tokens_per_second=tps,
                         samples_per_second=sps)
    check = check_record(record, input_tokens_per_sample=779)
    assert not check.implausible, check.explanation
    assert check.explanation.startswith("plausible")
    assert check.compute_bound_tokens_per_second > tps


def test_published_h100_logs_are_not_flagged() -> None:
    loadgen_logs = pytest.importorskip("include.loadgen_logs")
    for scenario in ("Offline", "Server"):
        parsed = loadgen_logs.parse(FIXTURES / scenario / "performance" / "run_1")
        base = make_record("xe8640", scenario=scenario, accelerator="NVIDIA H100 80GB HBM3", memory_gib=79.6,
                           engine={"dtype": "bfloat16", "quantization": "fp8", "max_num_seqs": 1024})
        record = type(base)(**{**base.__dict__, "loadgen": parsed})
        check = check_record(record)
        assert check.measured_tokens_per_second == pytest.approx(parsed.tokens_per_second)
        assert not check.implausible, check.explanation


def test_unknown_accelerator_says_no_bound_known() -> None:
    check = check_record(make_record(accelerator="Contoso Tensor Engine 9000", tokens_per_second=1e9))
    assert not check.implausible
    assert check.compute_bound_tokens_per_second is None and check.bandwidth_bound_tokens_per_second is None
    assert check.explanation == "no bound known for accelerator 'Contoso Tensor Engine 9000'"


def test_cpu_run_is_not_called_nonsense() -> None:
    check = check_record(make_record(accelerator="Intel(R) Xeon(R) Platinum 8480+", accel_kind="cpu",
                                     memory_gib=None, tokens_per_second=4500.0, model_name="tiny-llama"))
    assert not check.implausible
    assert check.explanation.startswith("CPU run")


def test_unknown_model_size_gives_no_bound(tmp_path: Path) -> None:
    record = make_record(model_name="tiny-llama", tokens_per_second=1e7)
    check = check_record(record)
    assert not check.implausible and "parameter count is unknown" in check.explanation
    # with its config.json the size is known and the figure is checked
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_3_1_8B_CONFIG))
    [check] = check_all([record], model_dir=tmp_path)
    assert check.implausible


def test_parameter_count_from_config() -> None:
    assert params_from_config(LLAMA_3_1_8B_CONFIG) == pytest.approx(8.03e9, rel=0.002)
    tiny = {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
            "vocab_size": 1000, "tie_word_embeddings": True}
    assert params_from_config(tiny) == 2 * (4 * 256 * 256 + 3 * 256 * 512 + 2 * 256) + 1000 * 256 + 256
    assert params_from_config({"hidden_size": 1}) is None
    assert model_parameters("Meta-Llama-3.1-8B-Instruct")[0] == 8.03e9
    assert model_parameters("mystery-model") == (None, "unknown")


@pytest.mark.parametrize("name, memory_gib, key", [
    ("NVIDIA H200", 140.4, "H200"), ("NVIDIA H200 NVL", 140.0, "H200-NVL"),
    ("NVIDIA H100 80GB HBM3", 79.6, "H100-SXM"), ("NVIDIA H100-SXM-80GB", None, "H100-SXM"),
    ("NVIDIA H100 PCIe", 79.6, "H100-PCIE"), ("NVIDIA H100 NVL", 93.0, "H100-NVL"),
    ("NVIDIA A30", 24.0, "A30"), ("NVIDIA A100-SXM4-40GB", 39.4, "A100-40GB"),
    ("NVIDIA A100-SXM4-80GB", 79.2, "A100-80GB"), ("NVIDIA A100 80GB PCIe", 79.2, "A100-80GB"),
    ("NVIDIA A100-PCIE-40GB", 39.4, "A100-40GB"), ("NVIDIA A100", 39.4, "A100-40GB"),
    ("NVIDIA L40S", 44.4, "L40S"), ("NVIDIA B200", 179.0, "B200"), ("NVIDIA L4", 22.0, "L4"),
    ("NVIDIA A10", 22.0, "A10"),
])
def test_accelerator_names_as_nvidia_smi_reports_them(name, memory_gib, key) -> None:
    assert lookup(name, "gpu", memory_gib) is ACCELERATORS[key]


def test_table_has_sources_and_unknowns_are_none() -> None:
    for key in ("A30", "A100-40GB", "A100-80GB", "L40S", "H100-SXM", "H200", "B200"):
        acc = ACCELERATORS[key]
        assert acc.bf16_flops and acc.memory_bandwidth_bytes_s and acc.memory_bytes and "datasheet" in acc.source
    assert ACCELERATORS["H200"].fp8_flops == pytest.approx(2 * ACCELERATORS["H200"].bf16_flops)
    assert ACCELERATORS["A30"].fp8_flops is None           # Ampere: no fp8; fp8 weights run at the bf16 rate
    assert lookup("AMD Instinct MI300X") is None and lookup(None) is None
    assert lookup("anything", "cpu").kind == "cpu"


def test_devices_follow_the_engine_not_the_node() -> None:
    # 8 GPUs in the node, one engine with TP 1: the bound is one H200's, and 12k tokens/s cannot be
    record = make_record(accelerator="NVIDIA H200", accel_count=8, tokens_per_second=12000.0, samples_per_second=93.75)
    assert check_record(record).implausible
    tp8 = make_record(accelerator="NVIDIA H200", accel_count=8, tokens_per_second=12000.0, samples_per_second=93.75,
                      engine={"dtype": "torch.bfloat16", "tensor_parallel_size": 8, "max_num_seqs": 256})
    check = check_record(tp8)
    assert not check.implausible and "8 x NVIDIA H200 SXM" in check.explanation
