"""Offline on one GPU: raw `LLM.generate` and the SUT's Offline path (LoadGen + harness) on ONE engine.

1. raw: the first --samples prompts of the data set through `LLM.generate`, timed (after a short warm-up);
2. SUT: a LoadGen Offline test through the SUT's harness with the same engine, into --output-dir (LoadGen's logs
   and result.json, exactly as `python -m mlperf_sut run` writes them). Without --full-duration the test is the
   same --samples prompt pool with min_duration 0; with it, MLPerf's own minimums apply (600 s, 13,368 queries)
   over the whole data set, LoadGen sizing the query from --target-qps.
Writes OUTPUT_DIR/raw_vs_sut.json and prints `raw_tokens_per_second=... sut_tokens_per_second=... sut_vs_raw=...`.

    PYTHONPATH=<vllm>:sut_image python3 tools/gpu/offline_vs_raw.py --model M --dataset D --samples 3000 \
        --output-dir OUT [engine flags of `mlperf_sut run`]
"""
from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from pathlib import Path


def main() -> int:
    from mlperf_sut.backends.vllm_offline import VllmOfflineBackend, shutdown_llm
    from mlperf_sut.cli import build_parser
    from mlperf_sut.generation import BENCHMARK_GENERATION
    from mlperf_sut.runner import measure, prepare

    own = {"--samples": int, "--target-qps": float}
    argv, values, full = sys.argv[1:], {}, "--full-duration" in sys.argv
    argv = [a for a in argv if a != "--full-duration"]
    for flag, kind in own.items():
        if flag in argv:
            i = argv.index(flag)
            values[flag], argv = kind(argv[i + 1]), argv[:i] + argv[i + 2:]
    samples = values.get("--samples", 3000)
    args = build_parser().parse_args(["run", "--scenario", "Offline", "--mode", "performance", *argv])
    if not full:
        args.total_sample_count = samples
    job = prepare(args)

    from vllm import LLM

    started = time.perf_counter()
    llm = LLM(**job.options.vllm_kwargs())
    print(f"engine ready in {time.perf_counter() - started:.0f} s", flush=True)
    from vllm.inputs import TokensPrompt

    params = BENCHMARK_GENERATION.sampling_params(streaming=False)
    prompts = [TokensPrompt(prompt_token_ids=list(p)) for p in job.qsl.prompts[:samples]]
    llm.generate(prompts[:256], params, use_tqdm=False)  # warm-up: the first batches compile kernels
    started = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    raw_s = time.perf_counter() - started
    raw_tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    raw = {"samples": len(prompts), "output_tokens": raw_tokens, "seconds": round(raw_s, 3),
           "tokens_per_second": round(raw_tokens / raw_s, 2),
           "input_tokens_mean": round(sum(len(p["prompt_token_ids"]) for p in prompts) / len(prompts), 1)}
    print(f"raw LLM.generate: {raw}", flush=True)

    job = dataclasses.replace(job, backend=VllmOfflineBackend(job.options, BENCHMARK_GENERATION, llm=llm))
    overrides = [f"target_qps={values['--target-qps']}"] if "--target-qps" in values else []
    if not full:
        overrides += ["min_duration=0", f"min_query_count={samples}"]
    try:
        code = measure(job, args.output_dir, extra_overrides=overrides)
    finally:
        job.backend.stop()
        shutdown_llm(llm)
    summary = (args.output_dir / "mlperf_log_summary.txt").read_text()
    match = re.search(r"Tokens per second\s*:\s*([0-9.]+)", summary)
    sut = float(match.group(1)) if match else None
    record = {"raw": raw, "sut_tokens_per_second": sut, "sut_vs_raw": round(sut / raw["tokens_per_second"], 4)
              if sut else None, "full_duration": full, "sut_exit_code": code}
    (args.output_dir / "raw_vs_sut.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"raw_tokens_per_second={raw['tokens_per_second']} sut_tokens_per_second={sut} "
          f"sut_vs_raw={record['sut_vs_raw']}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
