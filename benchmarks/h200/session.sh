#!/usr/bin/env bash
# The reference GPU run on one NVIDIA H200 (the lent device machine: Python 3.12, torch 2.11 + CUDA 13, no network).
#   usage: benchmarks/h200/session.sh WORKDIR [STAGE ...]     (from the repository root)
#   stages (default: search offline-bf16 offline-fp8-600s):
#     search (~9 min)                Server and Interactive bisection with 40 s probes
#     server-qps<X>, interactive-qps<X>  one full-query run at X QPS: all 13,368 samples, to confirm a probe
#                                        (~5 min at 56 QPS; ~9 min at 30 QPS)
#     offline-bf16, offline-fp8-cg1024, offline-fp8-cg1024-mnbt32k (~4 min each)  raw vs SUT on 2,000 prompts
#     offline-fp8-600s, offline-fp8-cg1024-mnbt32k-600s (~13 min each)            MLPerf's full 600 s
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
# CUDA graphs captured up to 1,024 tokens (vLLM's default stops at 512, below max_num_seqs) ...
cg1024=(--engine-arg 'compilation_config={"max_cudagraph_capture_size": 1024}')
# ... and larger prefill batches: 7,827 output tokens/s on FP8 against 7,477 with 16,384 (2,000 prompts, 2026-11-29)
mnbt32k=(--max-num-batched-tokens 32768)
# MLPerf's full 600 s over the whole data set (LoadGen issues 1.1 x 600 s x target QPS samples, padded to a
# multiple of 13,368: 40,104 at 56)
full=(--full-duration --target-qps 56)
# raw LLM.generate, then the SUT, on one engine: 2,000 prompts each, or the SUT over 600 s with "${full[@]}"
offline() { python3 benchmarks/h200/offline_vs_raw.py "${common[@]}" --dtype bfloat16 --samples 2000 \
              --output-dir "$runs/$name" "$@"; }

stage() { echo "=== $(date -u +%H:%M:%S) $*"; }
stage "data set: 13,368 CNN/DailyMail-length token-id prompts"
[ -f "$data" ] || sut build-dataset --synthetic-token-ids --vocab-size 128256 --samples 13368 --output "$data" \
  || exit 1

for name in "${stages[@]}"; do
  stage "$name"
  case $name in
    search)  # highest target QPS LoadGen finds VALID, bisection; 40 s probes (confirm with server-qps<X>)
      sut search-qps "${common[@]}" --dtype bfloat16 "${fp8[@]}" --output-dir "$runs/search" \
        --range Server=55.62:57.5 --range Interactive=8:48 --probes 4 --probe-duration-s 40 ;;
    offline-bf16)  # raw LLM.generate vs the SUT on the same 2,000-prompt pool, one engine
      offline ;;
    offline-fp8-600s)  # raw on 2,000 prompts, then the SUT for MLPerf's full 600 s over the whole data set
      offline "${fp8[@]}" "${full[@]}" ;;
    offline-fp8-cg1024)
      offline "${fp8[@]}" "${cg1024[@]}" ;;
    offline-fp8-cg1024-mnbt32k)
      offline "${fp8[@]}" "${cg1024[@]}" "${mnbt32k[@]}" ;;
    offline-fp8-cg1024-mnbt32k-600s)  # 40,104 samples again: 646.5 s, 7,940 tokens/s (2026-11-29)
      offline "${fp8[@]}" "${cg1024[@]}" "${mnbt32k[@]}" "${full[@]}" ;;
    server-qps*|interactive-qps*)  # mlperf.conf's query count (13,368, equal issue on); min_duration 45 s
      scenario=Server; [[ $name == interactive-* ]] && scenario=Interactive
      sut run --scenario "$scenario" --mode performance "${common[@]}" --dtype bfloat16 "${fp8[@]}" \
        --override "target_qps=${name#*-qps}" --override min_duration=45000 --output-dir "$runs/$name" ;;
    *) echo "unknown stage $name (see the usage at the top of session.sh)"; exit 2 ;;
  esac
  stage "$name done"
done
