#!/usr/bin/env bash
# The reference GPU run on one NVIDIA H200 (the lent device machine: Python 3.12, torch 2.11 + CUDA 13, no network).
#   usage: benchmarks/h200/session.sh WORKDIR [STAGE ...]     (from the repository root)
#   stages, in this order by default: search (~9 min), offline-bf16 (~4 min), offline-fp8-600s (~15 min)
# Needs, already in WORKDIR: vsite/ (the offline vLLM 0.26.0 + LoadGen bundle of ../shared/gpu/build_vllm_bundle.sh)
# and site/ (jsonschema and its dependencies, which the host's image lacks). Writes WORKDIR/runs/<stage>/; each stage
# ends with a line "=== <time> <stage> done", so a caller can collect it while the next one runs.
# Model: Llama-3.1-8B's config.json only (load_format=dummy, random weights: performance is real, accuracy is
# meaningless and every run says so). Data set: CNN/DailyMail-length prompts of random token ids.
# The SUT keeps vLLM's prompt prefix cache off (LoadGen repeats samples; measured on 2026-11-29: 21,102 "tokens/s"
# on FP8 with it on, above the H200's compute bound).
set -uo pipefail
work=${1:?usage: session.sh WORKDIR [STAGE ...]}
shift
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(search offline-bf16 offline-fp8-600s)
repo=$(pwd)
export PYTHONPATH=$work/vsite:$work/site:$repo/sut_image VLLM_USE_FLASHINFER_SAMPLER=0 PYTHONUNBUFFERED=1
model=$repo/benchmarks/h200/llama-3.1-8b
data=$work/cnn_synthetic.json
runs=$work/runs
mkdir -p "$runs"
sut() { python3 -m mlperf_sut "$@"; }
common=(--model "$model" --dataset "$data" --node h200-0 --load-format dummy --max-model-len 4096
        --max-num-seqs 1024 --max-num-batched-tokens 16384 --progress-interval 30)
fp8=(--quantization fp8 --kv-cache-dtype fp8 --engine-arg async_scheduling=true)

stage() { echo "=== $(date -u +%H:%M:%S) $*"; }
stage "data set: 13,368 CNN/DailyMail-length token-id prompts"
[ -f "$data" ] || sut build-dataset --synthetic-token-ids --vocab-size 128256 --samples 13368 --output "$data" \
  || exit 1

for name in "${stages[@]}"; do
  stage "$name"
  case $name in
    search)  # highest target QPS LoadGen finds VALID, bisection; probes of 40 s (not compliant: confirm with `run`)
      sut search-qps "${common[@]}" --dtype bfloat16 "${fp8[@]}" --output-dir "$runs/search" \
        --range Server=55:58 --range Interactive=8:48 --probes 4 --probe-duration-s 40 ;;
    offline-bf16)  # raw LLM.generate vs the SUT on the same 2,000-prompt pool, one engine
      python3 benchmarks/h200/offline_vs_raw.py "${common[@]}" --dtype bfloat16 --samples 2000 \
        --output-dir "$runs/offline-bf16" ;;
    offline-fp8-600s)  # raw on 2,000 prompts, then the SUT for MLPerf's full 600 s over the whole data set
      # (LoadGen issues 1.1 x 600 s x target QPS samples, padded to a multiple of 13,368: 40,104 at 56)
      python3 benchmarks/h200/offline_vs_raw.py "${common[@]}" --dtype bfloat16 "${fp8[@]}" --samples 2000 \
        --output-dir "$runs/offline-fp8-600s" --full-duration --target-qps 56 ;;
    *) echo "unknown stage $name (search, offline-bf16, offline-fp8-600s)"; exit 2 ;;
  esac
  stage "$name done"
done
