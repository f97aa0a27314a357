"""Is a throughput figure physically possible on the hardware that reported it?

Two upper bounds on output tokens/s, both deliberately loose (a bound too tight would accuse an honest run):

* compute: a transformer forward pass costs about 2 x parameters FLOPs per token, prefill and decode alike, so
  one sample costs ~2 * P * (input + output tokens). The attention term (~4 * layers * hidden * context per
  token, a few % at the MLPerf lengths) is left out by default, which makes the bound looser, not tighter;
  `include_attention=True` adds it. max samples/s = devices * peak FLOP/s / FLOPs per sample, and the output
  tokens/s bound is that times the output tokens per sample. The peak is the one of the format the engine
  multiplies in (`precision`: bf16, fp8, int8, int4 or fp4/NVFP4/MXFP4; a chip without that format's tensor
  cores falls back as `include.analysis.accelerators.FALLBACK` says).
* memory bandwidth: each decode step reads every weight once and yields at most one token per sequence in the
  batch, so tokens/s <= batch * devices * bandwidth / weight bytes, the weights costed at their format's bytes.
  Applied only where the batch is known: SingleStream (1) or the engine's max_num_seqs (a loose ceiling).

devices = engines x tensor parallel x pipeline parallel (`devices` gives the rule for the number of engines),
so a data-parallel system of eight single-GPU engines is bounded by eight GPUs, not one.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.analysis.accelerators import FASTEST, Accelerator, lookup
from include.mlperf_rules import OUTPUT_MAX_TOKENS
from include.records import PlausibilityCheck, RunRecord

LLAMA_3_1_8B_PARAMETERS = 8.03e9
# Mean prompt length of MLPerf's cnn_eval.json (Llama-3 tokens). result.json carries no input lengths, so this
# is used when the data set's own figure is not passed in; the explanation says so.
MLPERF_MEAN_INPUT_TOKENS = 779
# The reference generation's max_tokens: used only when result.json's counts give no output tokens per sample.
MLPERF_OUTPUT_TOKENS = OUTPUT_MAX_TOKENS

_KNOWN_MODELS = [(re.compile(r"llama[-_ ]?3(\.1)?[-_ ]?8b", re.I), LLAMA_3_1_8B_PARAMETERS)]


def params_from_config(config: dict[str, Any]) -> float | None:
    """Parameter count of a Llama-style decoder from its Hugging Face config.json (None if fields are missing)."""
    try:
        hidden = int(config["hidden_size"])
        inter = int(config["intermediate_size"])
        layers = int(config["num_hidden_layers"])
        vocab = int(config["vocab_size"])
        heads = int(config["num_attention_heads"])
    except (KeyError, TypeError, ValueError):
        return None
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2     # q, o ; k, v
    mlp = 3 * hidden * inter                                                         # gate, up, down
    per_layer = attention + mlp + 2 * hidden                                         # + two RMSNorms
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings") else 2)   # embed (+ lm_head)
    return float(layers * per_layer + embeddings + hidden)


def model_parameters(model_name: str | None, model_dir: str | Path | None = None) -> tuple[float | None, str]:
    """(parameter count, where it came from): config.json when given, else a known model name, else unknown."""
    if model_dir:
        cfg = Path(model_dir) / "config.json"
        if cfg.is_file():
            try:
                params = params_from_config(json.loads(cfg.read_text()))
            except (OSError, ValueError):
                params = None
            if params:
                return params, f"{cfg}"
    for pattern, params in _KNOWN_MODELS:
        if model_name and pattern.search(model_name):
            return params, f"known size of {model_name}"
    return None, "unknown"


@dataclass(frozen=True)
class Precision:
    """The numeric formats a run's engine used: its weights (what each decode step reads) and its matrix
    multiplications (which tensor-core peak applies). W4A16 schemes (AWQ, GPTQ) read 4-bit weights but multiply in
    bf16; W8A8, FP8 and NVFP4/MXFP4 multiply in their own format."""

    weights: str                   # bf16 | fp16 | fp32 | fp8 | int8 | int4 | fp4
    bytes_per_weight: float
    compute: str                   # the matmuls' format (Accelerator.peak_for); "fastest" when it cannot be told
    kv_cache: str                  # the KV cache's dtype ("auto": the model's); shown, not used in the bounds
    source: str                    # which engine argument or model-name hint decided it


# Bytes per weight are the bare format's: block scales (NVFP4 one byte per 16 weights, MXFP4 per 32, int4 group
# scales) are left out, which makes the weights look smaller and the bandwidth bound looser, never tighter.
_FORMATS = {"bf16": 2.0, "fp16": 2.0, "fp32": 4.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5, "fp4": 0.5}
# vLLM `quantization` names (and hints in a checkpoint's name) -> (weight format, matmul format). Matched in order,
# as substrings of the lower-cased name, so the more specific come first.
_QUANTIZATION: list[tuple[str, str, str]] = [
    ("nvfp4", "fp4", "fp4"), ("mxfp4", "fp4", "fp4"), ("modelopt_fp4", "fp4", "fp4"), ("fp4", "fp4", "fp4"),
    ("w4a8", "int4", "int8"), ("w4a16", "int4", "bf16"), ("awq", "int4", "bf16"), ("gptq", "int4", "bf16"),
    ("marlin", "int4", "bf16"), ("int4", "int4", "bf16"), ("bitsandbytes", "int4", "bf16"),
    ("w8a16", "int8", "bf16"), ("w8a8", "int8", "int8"), ("smoothquant", "int8", "int8"),
    ("int8", "int8", "int8"), ("fp8", "fp8", "fp8"), ("modelopt", "fp8", "fp8"),   # ModelOpt's default: FP8
]
# Quantizations whose scheme lives in the checkpoint (compressed-tensors: FP8, INT8, W4A16 or NVFP4; gguf: any
# bit width), and any name not known above: costed as the smallest weights and fastest arithmetic there is.
_LOOSEST = ("fp4", FASTEST)


def _match_quantization(text: str) -> tuple[str, str] | None:
    for needle, weights, compute in _QUANTIZATION:
        if needle in text:
            return weights, compute
    return None


def precision(engine: dict[str, Any], model_name: str | None = None) -> Precision:
    """The run's weight and arithmetic formats from its vLLM engine arguments (and its checkpoint's name).

    `quantization` decides (fp8, modelopt, modelopt_fp4, nvfp4, mxfp4, awq, gptq, w8a8/int8, compressed-tensors,
    ...). vLLM also reads a pre-quantized checkpoint's scheme from its config without any `quantization` argument,
    so with none given a format named in the model (e.g. "Llama-3.1-8B-Instruct-FP8", "...-NVFP4", "...-w4a16")
    is taken; a scheme that cannot be told (compressed-tensors, gguf, an unknown name) is costed as the loosest:
    4-bit weights at the fastest arithmetic the chip has. Otherwise the weights are `dtype`'s (bf16 by default).
    """
    quant = str(engine.get("quantization") or "").lower().strip()
    dtype = str(engine.get("dtype") or "auto").lower().removeprefix("torch.")
    kv_cache = str(engine.get("kv_cache_dtype") or "auto").lower()
    hint = _match_quantization(str(model_name or "").lower())
    if quant:
        known = _match_quantization(quant)
        if known:
            weights, compute, source = *known, f"quantization={quant}"
        elif hint:
            weights, compute, source = *hint, f"quantization={quant}, scheme named in the model '{model_name}'"
        else:
            weights, compute = _LOOSEST
            source = f"quantization={quant}: scheme not told, costed as the loosest (4-bit weights, fastest math)"
    elif hint:
        weights, compute, source = *hint, f"pre-quantized model '{model_name}'"
    elif dtype in {"float32", "fp32"}:
        weights, compute, source = "fp32", "fp32", f"dtype={dtype}"
    elif dtype in {"float16", "fp16", "half"}:
        weights, compute, source = "fp16", "fp16", f"dtype={dtype}"
    else:
        weights, compute, source = "bf16", "bf16", f"dtype={dtype}"
    return Precision(weights, _FORMATS[weights], compute, kv_cache, source)


def weight_dtype(engine: dict[str, Any], model_name: str | None = None) -> tuple[str, float]:
    """(weight format, bytes per weight) from the vLLM engine arguments in result.json (see `precision`)."""
    p = precision(engine, model_name)
    return p.weights, p.bytes_per_weight


def _fmt_flops(x: float) -> str:
    for unit, scale in (("PFLOP/s", 1e15), ("TFLOP/s", 1e12), ("GFLOP/s", 1e9)):
        if x >= scale:
            return f"{x / scale:,.{2 if x / scale < 10 else 1}f} {unit}".replace(".0 ", " ")
    return f"{x:,.0f} FLOP/s"


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


@dataclass(frozen=True)
class Devices:
    """How many accelerators served a run: engines x tensor parallel x pipeline parallel."""

    count: int
    engines: int
    tensor_parallel: int
    pipeline_parallel: int
    why: str                       # where the number of engines came from


def devices(record: RunRecord) -> Devices:
    """Accelerators a run used: engines x tensor_parallel_size x pipeline_parallel_size.

    The number of engines, first rule that applies:
    1. a coordinated run (result.json's `endpoints`): one vLLM server per distinct endpoint URL, times the engine
       arguments' `data_parallel_size` (each server may itself be data-parallel);
    2. our SUT (backend "vllm", in process): one engine, or `data_parallel_size` engines where the
       engine arguments give it. accelerator.count is the node's, not the run's: a TP-1 engine on an 8-GPU node
       uses one GPU;
    3. any other source (another harness's result, backend unknown) that gives no data_parallel_size: every
       accelerator of the node busy, accelerator.count // (TP x PP) engines, the loosest reading.
    Without endpoints the count is capped at the node's accelerator.count (no run uses GPUs it does not have).
    """
    sut = record.sut
    engine = sut.engine if sut else {}
    per_node = sut.accelerator.count if sut else 1
    tp = max(1, int(engine.get("tensor_parallel_size") or 1))
    pp = max(1, int(engine.get("pipeline_parallel_size") or 1))
    dp = int(engine.get("data_parallel_size") or 0)
    urls = {e.url for e in sut.endpoints} if sut else set()
    if urls:
        engines = len(urls) * max(1, dp)
        why = f"{len(urls)} endpoint{'s' if len(urls) > 1 else ''}" + (f" x data_parallel_size {dp}" if dp > 1 else "")
        return Devices(engines * tp * pp, engines, tp, pp, why)
    if dp:
        engines, why = dp, f"data_parallel_size {dp}"
    elif sut is None or sut.backend in ("vllm", "http"):
        engines, why = 1, "one in-process engine"
    else:
        engines = max(1, per_node // (tp * pp))
        why = f"{per_node} accelerators / (TP {tp} x PP {pp})"
    count = min(per_node, engines * tp * pp)
    return Devices(max(1, count), engines, tp, pp, why)


def _devices(record: RunRecord) -> int:
    return devices(record).count


def _batch(record: RunRecord) -> tuple[int | None, str]:
    if record.scenario == "SingleStream":
        return 1, "SingleStream: one query at a time"
    mns = record.sut.engine.get("max_num_seqs") if record.sut else None
    if mns:
        return int(mns), "the engine's max_num_seqs, a ceiling on each engine's batch"
    return None, ""


def measured_rates(record: RunRecord) -> tuple[float | None, float | None, float | None]:
    """(output tokens/s, samples/s, output tokens per sample) of a performance run, LoadGen's figures first."""
    lg = record.loadgen
    sut = record.sut
    duration = (sut.timing.duration_s if sut else None) or (lg.duration_s if lg else None)
    tps = lg.tokens_per_second if lg and lg.tokens_per_second is not None else None
    sps = lg.samples_per_second if lg and lg.samples_per_second is not None else None
    samples, tokens = (sut.counts.samples_completed, sut.counts.output_tokens) if sut else (None, None)
    if tps is None and tokens and duration:
        tps = tokens / duration
    if sps is None and samples and duration:
        sps = samples / duration
    out_per_sample = tokens / samples if samples and tokens else None
    if out_per_sample is None and tps and sps:
        out_per_sample = tps / sps
    return tps, sps, out_per_sample


def check_record(record: RunRecord, *, model_params: float | None = None, params_source: str = "",
                 input_tokens_per_sample: float | None = None, include_attention: bool = False,
                 model_config: dict[str, Any] | None = None) -> PlausibilityCheck | None:
    """The physics check of one performance-mode run; None for runs with no throughput figure (failed, accuracy)."""
    if record.mode != "performance" or record.status != "completed":
        return None
    tps, sps, out_per_sample = measured_rates(record)
    if not tps:
        return None
    sut = record.sut
    acc_name = sut.accelerator.name if sut and sut.accelerator_known else "unknown"
    acc = lookup(sut.accelerator.name, sut.accelerator.kind, sut.accelerator.memory_gib) if sut else None

    def make(compute, bandwidth, implausible, explanation):
        node = record.node if record.branch == "single" or "+" in record.node else f"{record.node} (distributed)"
        return PlausibilityCheck(node, record.scenario, acc_name, float(tps), compute, bandwidth,
                                 implausible, explanation)

    if sut is not None and not sut.accelerator_known:
        return make(None, None, False, "no bound: the servers of this coordinated run did not report their "
                                       "accelerator (result.json written before the server card), so it is unknown")
    if acc is None:
        return make(None, None, False, f"no bound known for accelerator '{acc_name}'")
    if acc.kind == "cpu":
        return make(None, None, False, f"CPU run ({acc_name}): not checked, {acc.source}")
    model_name = sut.model.name if sut else None
    if model_params is None:
        model_params, params_source = model_parameters(model_name)
    if model_params is None:
        return make(None, None, False, "no bound known: the model's parameter count is unknown "
                                       "(pass the model directory with its config.json)")
    prec = precision(sut.engine if sut else {}, model_name)
    dtype, bytes_per_weight = prec.weights, prec.bytes_per_weight
    used = devices(record)
    n_devices = used.count
    assumed = input_tokens_per_sample is None
    n_in = float(MLPERF_MEAN_INPUT_TOKENS if assumed else input_tokens_per_sample)
    n_out = float(out_per_sample or MLPERF_OUTPUT_TOKENS)
    flops_per_sample = 2.0 * model_params * (n_in + n_out)
    if include_attention and model_config:
        layers, hidden = model_config.get("num_hidden_layers"), model_config.get("hidden_size")
        if layers and hidden:    # QK^T and AV: 4 * hidden FLOPs per earlier token, per layer; summed over C
            context = n_in + n_out   # positions that is 4 * L * H * C^2 / 2
            flops_per_sample += 2.0 * layers * hidden * context * context
    peak, peak_dtype = acc.peak_for(prec.compute)
    dev_text = (f"{n_devices} x {acc.name}" if n_devices > 1 else f"one {acc.name}") + (
        f" ({used.engines} engine{'s' if used.engines > 1 else ''} x TP {used.tensor_parallel} x PP "
        f"{used.pipeline_parallel}: {used.why})" if n_devices > 1 or used.engines > 1 else "")
    precision_text = (f"{prec.weights} weights ({prec.source})"
                      + (f", {prec.compute} arithmetic" if prec.compute != prec.weights else "")
                      + (f", {prec.kv_cache} KV cache" if prec.kv_cache != "auto" else ""))
    fallback_text = (f" (the chip has no {prec.compute} tensor cores)" if peak_dtype != prec.compute
                     and prec.compute not in ("fp16", "fp32", FASTEST) else "")
    findings: list[str] = []
    compute_bound = bandwidth_bound = None
    sps_eff = sps if sps else tps / n_out
    if peak:
        compute_bound = n_devices * peak / flops_per_sample * n_out
        needed = sps_eff * flops_per_sample
        ratio = needed / (n_devices * peak)
        findings.append(
            f"{sps_eff:,.1f} samples/s of a model of {model_params / 1e9:.2f}e9 parameters (~{n_in:,.0f} input"
            f"{' (assumed MLPerf mean)' if assumed else ''} and {n_out:,.0f} output tokens each) needs "
            f"~{_fmt_flops(needed)}, {ratio:,.1f} times the {_fmt_flops(n_devices * peak)} {peak_dtype} peak"
            f"{fallback_text} of {dev_text} ({acc.source}); {precision_text}; compute bound "
            f"{_fmt_rate(compute_bound)} output tokens/s")
    weight_bytes = model_params * bytes_per_weight
    batch, batch_why = _batch(record)
    bw = acc.memory_bandwidth_bytes_s
    batch1_text = ""
    if bw:
        per_step = n_devices * bw / weight_bytes       # decode steps/s = tokens/s at batch size 1
        batch1_text = (f"at batch size 1 it would need {tps / per_step:,.0f} times the decode rate its "
                       f"{bw / 1e9:,.0f} GB/s allows ({_fmt_rate(per_step)} tokens/s for "
                       f"{weight_bytes / 1e9:,.2f} GB of {dtype} weights)")
        if batch is not None:
            bandwidth_bound = batch * per_step
            findings.append(f"memory-bandwidth bound at batch {batch} ({batch_why}): "
                            f"{_fmt_rate(bandwidth_bound)} output tokens/s")
    over_compute = compute_bound is not None and tps > compute_bound
    over_bw = bandwidth_bound is not None and tps > bandwidth_bound
    implausible = over_compute or over_bw
    if implausible:
        what = " and ".join(w for w, o in (("compute", over_compute), ("memory-bandwidth", over_bw)) if o)
        text = (f"physically implausible: {_fmt_rate(tps)} output tokens/s exceeds the {what} bound. "
                + "; ".join(findings) + (f"; {batch1_text}" if batch1_text else "") + ".")
    else:
        bounds = [b for b in (compute_bound, bandwidth_bound) if b]
        tightest = min(bounds) if bounds else None
        text = (f"plausible: {_fmt_rate(tps)} output tokens/s"
                + (f" is {100 * tps / tightest:.0f}% of the tightest bound" if tightest else "")
                + ". " + "; ".join(findings) + ".")
    return make(compute_bound, bandwidth_bound, implausible, text)


def check_all(records: list[RunRecord], *, model_dir: str | Path | None = None,
              input_tokens_per_sample: float | None = None) -> list[PlausibilityCheck]:
    """Checks of every completed performance-mode run (the model size from model_dir's config.json if given)."""
    params, source = (None, "")
    if model_dir:
        params, source = model_parameters(None, model_dir)
        if params is None:
            source = ""
    checks = []
    for record in records:
        check = check_record(record, model_params=params, params_source=source,
                             input_tokens_per_sample=input_tokens_per_sample)
        if check is not None:
            checks.append(check)
    return checks


def mean_input_tokens(dataset_path: str | Path | None) -> float | None:
    """Mean prompt length (tokens) of an MLPerf-format data set (`tok_input` lists), None when unreadable."""
    if not dataset_path:
        return None
    try:
        rows = json.loads(Path(dataset_path).read_text())
        lengths = [len(r["tok_input"]) for r in rows if isinstance(r, dict) and r.get("tok_input")]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return sum(lengths) / len(lengths) if lengths else None


__all__ = ["Accelerator", "Devices", "Precision", "check_record", "check_all", "devices", "model_parameters",
           "params_from_config", "mean_input_tokens", "precision", "weight_dtype", "measured_rates",
           "LLAMA_3_1_8B_PARAMETERS"]
