"""include.analysis.plausibility / include.analysis.accelerators: results checked against the hardware's physics."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from include.analysis.accelerators import ACCELERATORS, lookup
from include.analysis.plausibility import (check_all, check_record, devices, model_parameters, params_from_config,
                                           precision)
from tests.analysis.analysis_factory import make_record

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


def test_published_h100_logs_are_not_flagged(published_fixtures: Path) -> None:
    from include.results import loadgen_logs

    for scenario in ("Offline", "Server"):
        parsed = loadgen_logs.parse(published_fixtures / scenario / "performance" / "run_1")
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


# --- issue #12: devices = engines x TP x PP, and the weights' own format ------------------------------------------
# MLPerf Inference v5.1 closed, llama3.1-8b Offline, published figures (output tokens/s of the whole system; every
# MLPerf sample returns its 128 tokens, so samples/s = tokens/s / 128 as the published H100 summary shows).
PUBLISHED_V5_1_OFFLINE = {
    "8x B200 FP4": dict(accelerator="NVIDIA B200", memory_gib=179.1, accel_count=8, tokens_per_second=143_300.0,
                        engine={"dtype": "bfloat16", "quantization": "modelopt_fp4", "kv_cache_dtype": "fp8",
                                "tensor_parallel_size": 1, "data_parallel_size": 8, "max_num_seqs": 2048}),
    "8x H200 FP8": dict(accelerator="NVIDIA H200", memory_gib=139.8, accel_count=8, tokens_per_second=58_300.0,
                        engine={"dtype": "bfloat16", "quantization": "fp8", "kv_cache_dtype": "fp8",
                                "tensor_parallel_size": 1, "data_parallel_size": 8, "max_num_seqs": 1024}),
    "1x H100 vLLM FP8": dict(accelerator="NVIDIA H100 80GB HBM3", memory_gib=79.6, accel_count=1,
                             tokens_per_second=5_777.08, samples_per_second=45.1334,
                             engine={"dtype": "bfloat16", "quantization": "fp8", "tensor_parallel_size": 1,
                                     "max_num_seqs": 1024}),
    "2x L40S FP8": dict(accelerator="NVIDIA L40S", memory_gib=44.4, accel_count=2, tokens_per_second=1_640.0,
                        engine={"dtype": "bfloat16", "quantization": "fp8", "tensor_parallel_size": 1,
                                "data_parallel_size": 2, "max_num_seqs": 512}),
}
REFERENCE = Path(__file__).resolve().parents[2] / "reference" / "h200"


@pytest.mark.parametrize("system", list(PUBLISHED_V5_1_OFFLINE))
def test_published_mlperf_v5_1_offline_results_are_plausible(system) -> None:
    spec = dict(PUBLISHED_V5_1_OFFLINE[system])
    spec.setdefault("samples_per_second", spec["tokens_per_second"] / 128)
    record = make_record("sut", samples=13368, **spec)
    check = check_record(record)
    assert check.compute_bound_tokens_per_second is not None, check.explanation
    assert not check.implausible, check.explanation
    assert check.explanation.startswith("plausible")


def test_eight_engine_b200_is_bounded_by_eight_fp4_gpus() -> None:
    spec = PUBLISHED_V5_1_OFFLINE["8x B200 FP4"]
    check = check_record(make_record("sut", samples=13368, samples_per_second=143_300 / 128, **spec))
    # 8 x 9 PFLOP/s dense FP4 (HGX B200 datasheet); ~907 tokens a sample -> ~2 x 8.03e9 x 907 FLOPs
    assert check.compute_bound_tokens_per_second == pytest.approx(8 * 9e15 / (2 * 8.03e9 * 907) * 128, rel=1e-6)
    assert "8 x NVIDIA B200 (8 engines x TP 1 x PP 1: data_parallel_size 8)" in check.explanation
    assert "72 PFLOP/s fp4 peak" in check.explanation
    assert "fp4 weights (quantization=modelopt_fp4), fp8 KV cache" in check.explanation


@pytest.mark.parametrize("engine, endpoints, expected", [
    ({"tensor_parallel_size": 1, "data_parallel_size": 8}, None, (8, 8)),          # vLLM data parallel
    ({"tensor_parallel_size": 2, "data_parallel_size": 4}, None, (8, 4)),
    ({"tensor_parallel_size": 2, "pipeline_parallel_size": 2}, None, (4, 1)),
    ({"tensor_parallel_size": 1}, None, (1, 1)),                                   # one TP-1 engine on 8 GPUs
    ({"tensor_parallel_size": 8, "data_parallel_size": 8}, None, (8, 8)),          # capped at the node's 8
    ({"tensor_parallel_size": 1}, [{"url": f"http://n{i // 4}:800{i % 4}", "node": f"n{i // 4}",
                                    "samples_completed": 1, "output_tokens": 128} for i in range(8)], (8, 8)),
    ({"tensor_parallel_size": 2}, [{"url": f"http://n{i}:8000", "node": f"n{i}",
                                    "samples_completed": 1, "output_tokens": 128} for i in range(2)], (4, 2)),
])
def test_devices_are_engines_times_tp_times_pp(engine, endpoints, expected) -> None:
    record = make_record(accel_count=8, engine={"dtype": "bfloat16", "max_num_seqs": 256, **engine},
                         endpoints=endpoints)
    used = devices(record)
    assert (used.count, used.engines) == expected


def test_another_harness_without_engine_count_uses_every_accelerator() -> None:
    record = make_record(accel_count=8, engine={"dtype": "bfloat16", "tensor_parallel_size": 2, "max_num_seqs": 256})
    record.result["backend"] = "trtllm"
    assert (devices(record).count, devices(record).engines) == (8, 4)


@pytest.mark.parametrize("engine, model, expected", [
    ({"dtype": "bfloat16"}, "Llama-3.1-8B-Instruct", ("bf16", 2.0, "bf16")),
    ({"dtype": "torch.float16"}, "llama", ("fp16", 2.0, "fp16")),
    ({"dtype": "float32"}, "llama", ("fp32", 4.0, "fp32")),
    ({"dtype": "bfloat16", "quantization": "fp8"}, "llama", ("fp8", 1.0, "fp8")),
    ({"dtype": "bfloat16", "quantization": "modelopt"}, "llama", ("fp8", 1.0, "fp8")),
    ({"dtype": "bfloat16", "quantization": "modelopt_fp4"}, "llama", ("fp4", 0.5, "fp4")),
    ({"dtype": "bfloat16", "quantization": "nvfp4"}, "llama", ("fp4", 0.5, "fp4")),
    ({"dtype": "bfloat16", "quantization": "mxfp4"}, "llama", ("fp4", 0.5, "fp4")),
    ({"dtype": "float16", "quantization": "awq"}, "llama", ("int4", 0.5, "bf16")),
    ({"dtype": "float16", "quantization": "gptq_marlin"}, "llama", ("int4", 0.5, "bf16")),
    ({"dtype": "bfloat16", "quantization": "w8a8"}, "llama", ("int8", 1.0, "int8")),
    ({"dtype": "bfloat16", "quantization": "int8"}, "llama", ("int8", 1.0, "int8")),
    ({"dtype": "bfloat16", "quantization": "compressed-tensors"}, "Llama-3.1-8B-Instruct-FP8-dynamic",
     ("fp8", 1.0, "fp8")),
    ({"dtype": "bfloat16", "quantization": "compressed-tensors"}, "llama", ("fp4", 0.5, "fastest")),
    ({"dtype": "bfloat16"}, "nvidia/Llama-3.1-8B-Instruct-NVFP4", ("fp4", 0.5, "fp4")),     # vLLM auto-detects
    ({"dtype": "auto", "quantization": None, "kv_cache_dtype": "fp8"}, "llama-3.1-8b", ("bf16", 2.0, "bf16")),
])
def test_weights_format_from_engine_arguments(engine, model, expected) -> None:
    p = precision(engine, model)
    assert (p.weights, p.bytes_per_weight, p.compute) == expected
    assert p.kv_cache == str(engine.get("kv_cache_dtype") or "auto")


@pytest.mark.parametrize("name, dtype, peak", [
    ("B200", "fp4", (9000e12, "fp4")), ("B200", "fp8", (4500e12, "fp8")), ("B200", "bf16", (2250e12, "bf16")),
    ("B200", "int4", (4500e12, "int8")),            # Blackwell: no int4 tensor cores
    ("H200", "fp4", (1979e12, "fp8")),              # Hopper: no fp4
    ("H100-SXM", "int8", (1979e12, "int8")), ("L40S", "int4", (733e12, "int4")),
    ("A30", "fp8", (165e12, "bf16")), ("A30", "int8", (330e12, "int8")), ("A30", "fastest", (661e12, "int4")),
])
def test_peaks_per_format_and_their_fallbacks(name, dtype, peak) -> None:
    rate, used = ACCELERATORS[name].peak_for(dtype)
    assert (rate, used) == (pytest.approx(peak[0]), peak[1])


@pytest.mark.parametrize("engine", [
    {"dtype": "bfloat16", "max_num_seqs": 256},
    {"dtype": "bfloat16", "quantization": "awq", "max_num_seqs": 256},            # 4-bit weights, bf16 math
    {"dtype": "bfloat16", "quantization": "nvfp4", "max_num_seqs": 256},          # no fp4 on Ampere
    {"dtype": "bfloat16", "quantization": "compressed-tensors", "max_num_seqs": 256},   # the loosest: int4 math
])
def test_seed_a30_figure_stays_implausible_whatever_the_weights(engine) -> None:
    # the seed's 106.55 samples/s (128 output tokens each) on one A30
    record = make_record("a30-node", accelerator="NVIDIA A30", memory_gib=24.0, samples_per_second=106.55,
                         tokens_per_second=106.55 * 128, samples=13368, engine=engine)
    check = check_record(record)
    assert check.implausible, check.explanation


def test_prefix_cache_reference_run_is_implausible_and_the_others_are_not() -> None:
    from include.results import run_artifacts

    verdicts = {}
    for run_dir in sorted(REFERENCE.glob("*/single/*/*/performance")):
        record = run_artifacts.read_run(run_dir, "single")
        check = check_record(record)
        verdicts[run_dir.parts[-5]] = check
    assert len(verdicts) >= 20
    flagged = {name for name, check in verdicts.items() if check.implausible}
    assert flagged == {"offline-fp8-prefix-cache"}
    check = verdicts["offline-fp8-prefix-cache"]
    assert check.measured_tokens_per_second == pytest.approx(21_101.6)
    assert "fp8 weights (quantization=fp8), fp8 KV cache" in check.explanation
    assert check.compute_bound_tokens_per_second < 21_101.6


REFERENCE_X2 = Path(__file__).resolve().parents[2] / "reference" / "h200x2" / "h200x2-offline-600s"


def _coordinated_600s(tmp_path: Path, servers_reported: bool):
    """The committed 2x H200 coordinated run (written before the servers reported their card), or the same run as
    the SUT now writes it: each endpoint with its server's accelerator, the top-level fields the servers'."""
    import shutil

    from include.results.run_artifacts import read_run

    source = REFERENCE_X2 / "distributed" / "coordinated" / "Offline" / "performance"
    run_dir = tmp_path / "coordinated" / "Offline" / "performance"
    shutil.copytree(source, run_dir)
    if servers_reported:
        result = json.loads((run_dir / "result.json").read_text())
        h200 = {"kind": "gpu", "name": "NVIDIA H200", "count": 1, "driver": "580.95.05", "memory_gib": 139.8}
        result["accelerator"] = h200
        result["engine"].update(quantization="fp8", kv_cache_dtype="fp8", max_num_seqs=1024, load_format="dummy")
        result["model"]["load_format"], result["accuracy_meaningful"] = "dummy", False
        for endpoint in result["endpoints"]:
            endpoint["accelerator"] = h200
        (run_dir / "result.json").write_text(json.dumps(result))
    return read_run(run_dir, "distributed", "coordinated")


def test_a_coordinated_run_is_bounded_by_its_servers_accelerator_never_the_coordinators(tmp_path) -> None:
    from include.analysis.verdict import comparability_key

    old = _coordinated_600s(tmp_path / "old", servers_reported=False)
    assert old.sut.accelerator.kind == "cpu"          # the coordinator's machine, which served no query
    check = check_record(old)
    assert check.accelerator == "unknown" and "did not report their accelerator" in check.explanation
    assert "CPU run" not in check.explanation
    assert comparability_key(old)["accelerator"] is None and comparability_key(old)["quantization"] is None

    new = _coordinated_600s(tmp_path / "new", servers_reported=True)
    check = check_record(new)
    assert check.accelerator == "NVIDIA H200" and not check.implausible
    assert "2 endpoints" in devices(new).why and devices(new).count == 2
    key = comparability_key(new)
    assert key["accelerator"] == "NVIDIA H200" and key["quantization"] == "fp8"



def test_a_coordinated_runs_compliance_is_unknown_until_its_servers_weights_are_on_record(tmp_path) -> None:
    from include.analysis.verdict import NOT_COMPLIANT, UNKNOWN, compliance_of

    # 600 s over all 13,368 samples, but nobody recorded the servers' weights: never 'compliant'
    old = _coordinated_600s(tmp_path / "old", servers_reported=False)
    assert old.sut.model.load_format == "remote"
    state, reasons = compliance_of(old)
    assert state == UNKNOWN and any("servers' weights not recorded" in r for r in reasons), reasons
    # as the SUT now writes it: the servers' load format (dummy weights on the 2x H200 machine) from their cards
    new = _coordinated_600s(tmp_path / "new", servers_reported=True)
    assert compliance_of(new) == (NOT_COMPLIANT, ["dummy (random) weights"])
