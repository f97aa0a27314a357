"""Is a throughput figure physically possible on the hardware that reported it?

Two upper bounds on output tokens/s, both deliberately loose (a bound too tight would accuse an honest run):

* compute: a transformer forward pass costs about 2 x parameters FLOPs per token, prefill and decode alike, so
  one sample costs ~2 * P * (input + output tokens). The attention term (~4 * layers * hidden * context per
  token, a few % at the MLPerf lengths) is left out by default, which makes the bound looser, not tighter;
  `include_attention=True` adds it. max samples/s = devices * peak FLOP/s / FLOPs per sample, and the output
  tokens/s bound is that times the output tokens per sample.
* memory bandwidth: each decode step reads every weight once and yields at most one token per sequence in the
  batch, so tokens/s <= batch * devices * bandwidth / weight bytes. Applied only where the batch is known:
  SingleStream (1) or the engine's max_num_seqs (a loose ceiling on the batch).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from include.accelerators import Accelerator, lookup
from include.records import PlausibilityCheck, RunRecord

LLAMA_3_1_8B_PARAMETERS = 8.03e9
# Mean prompt length of MLPerf's cnn_eval.json (Llama-3 tokens). result.json carries no input lengths, so this
# is used when the data set's own figure is not passed in; the explanation says so.
MLPERF_MEAN_INPUT_TOKENS = 779
# The reference generation's max_tokens: used only when result.json's counts give no output tokens per sample.
MLPERF_OUTPUT_TOKENS = 128

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


def weight_dtype(engine: dict[str, Any]) -> tuple[str, float]:
    """(dtype label, bytes per weight) from the vLLM engine arguments in result.json."""
    quant = str(engine.get("quantization") or "").lower()
    dtype = str(engine.get("dtype") or "auto").lower().removeprefix("torch.")
    if "fp8" in quant or "fp8" in dtype or quant in {"modelopt", "compressed-tensors-fp8"}:
        return "fp8", 1.0
    if dtype in {"float32", "fp32"}:
        return "fp32", 4.0
    return "bf16", 2.0


def _fmt_flops(x: float) -> str:
    for unit, scale in (("PFLOP/s", 1e15), ("TFLOP/s", 1e12), ("GFLOP/s", 1e9)):
        if x >= scale:
            return f"{x / scale:,.{2 if x / scale < 10 else 1}f} {unit}".replace(".0 ", " ")
    return f"{x:,.0f} FLOP/s"


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def _devices(record: RunRecord) -> int:
    """Accelerators one run could use: the engine's tensor x pipeline parallel size (one vLLM engine per node),
    at most the node's count; the node's count where the engine does not say; times the nodes of a coordinated run."""
    result = record.result or {}
    per_node = int((result.get("accelerator") or {}).get("count") or 1)
    engine = result.get("engine") or {}
    if engine.get("tensor_parallel_size"):
        used = int(engine["tensor_parallel_size"]) * int(engine.get("pipeline_parallel_size") or 1)
        per_node = max(1, min(per_node, used))
    nodes = {e.get("node") for e in result.get("endpoints") or []} - {None}
    return per_node * max(1, len(nodes))


def _batch(record: RunRecord) -> tuple[int | None, str]:
    if record.scenario == "SingleStream":
        return 1, "SingleStream: one query at a time"
    mns = ((record.result or {}).get("engine") or {}).get("max_num_seqs")
    if mns:
        return int(mns), "the engine's max_num_seqs, a ceiling on the batch"
    return None, ""


def measured_rates(record: RunRecord) -> tuple[float | None, float | None, float | None]:
    """(output tokens/s, samples/s, output tokens per sample) of a performance run, LoadGen's figures first."""
    lg = record.loadgen
    result = record.result or {}
    counts = result.get("counts") or {}
    duration = (result.get("timing") or {}).get("duration_s") or (lg.duration_s if lg else None)
    tps = lg.tokens_per_second if lg and lg.tokens_per_second is not None else None
    sps = lg.samples_per_second if lg and lg.samples_per_second is not None else None
    samples, tokens = counts.get("samples_completed"), counts.get("output_tokens")
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
    result = record.result or {}
    acc_info = result.get("accelerator") or {}
    acc_name = str(acc_info.get("name") or "unknown")
    acc = lookup(acc_name, acc_info.get("kind"), acc_info.get("memory_gib"))

    def make(compute, bandwidth, implausible, explanation):
        node = record.node if record.branch == "single" or "+" in record.node else f"{record.node} (distributed)"
        return PlausibilityCheck(node, record.scenario, acc_name, float(tps), compute, bandwidth,
                                 implausible, explanation)

    if acc is None:
        return make(None, None, False, f"no bound known for accelerator '{acc_name}'")
    if acc.kind == "cpu":
        return make(None, None, False, f"CPU run ({acc_name}): not checked, {acc.source}")
    if model_params is None:
        model_params, params_source = model_parameters((result.get("model") or {}).get("name"))
    if model_params is None:
        return make(None, None, False, "no bound known: the model's parameter count is unknown "
                                       "(pass the model directory with its config.json)")
    dtype, bytes_per_weight = weight_dtype(result.get("engine") or {})
    devices = _devices(record)
    assumed = input_tokens_per_sample is None
    n_in = float(MLPERF_MEAN_INPUT_TOKENS if assumed else input_tokens_per_sample)
    n_out = float(out_per_sample or MLPERF_OUTPUT_TOKENS)
    flops_per_sample = 2.0 * model_params * (n_in + n_out)
    if include_attention and model_config:
        layers, hidden = model_config.get("num_hidden_layers"), model_config.get("hidden_size")
        if layers and hidden:    # QK^T and AV: 4 * hidden FLOPs per earlier token, per layer; summed over C
            context = n_in + n_out   # positions that is 4 * L * H * C^2 / 2
            flops_per_sample += 2.0 * layers * hidden * context * context
    peak = acc.peak_flops(dtype)
    dev_text = f"{devices} x {acc.name}" if devices > 1 else f"one {acc.name}"
    findings: list[str] = []
    compute_bound = bandwidth_bound = None
    sps_eff = sps if sps else tps / n_out
    if peak:
        compute_bound = devices * peak / flops_per_sample * n_out
        needed = sps_eff * flops_per_sample
        ratio = needed / (devices * peak)
        findings.append(
            f"{sps_eff:,.1f} samples/s of a model of {model_params / 1e9:.2f}e9 parameters (~{n_in:,.0f} input"
            f"{' (assumed MLPerf mean)' if assumed else ''} and {n_out:,.0f} output tokens each) needs "
            f"~{_fmt_flops(needed)}, {ratio:,.1f} times the {_fmt_flops(devices * peak)} {dtype} peak of "
            f"{dev_text} ({acc.source}); compute bound {_fmt_rate(compute_bound)} output tokens/s")
    weight_bytes = model_params * bytes_per_weight
    batch, batch_why = _batch(record)
    bw = acc.memory_bandwidth_bytes_s
    batch1_text = ""
    if bw:
        per_step = devices * bw / weight_bytes       # decode steps/s = tokens/s at batch size 1
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


__all__ = ["Accelerator", "check_record", "check_all", "model_parameters", "params_from_config",
           "mean_input_tokens", "weight_dtype", "measured_rates", "LLAMA_3_1_8B_PARAMETERS"]
