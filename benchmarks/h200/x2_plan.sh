#!/usr/bin/env bash
# The 2x H200 reference run's commands, generated from the DAG's plan (include/plan_commands.py), not hand-written:
#   benchmarks/h200/x2_plan.sh > benchmarks/h200/x2_offline_commands.sh      (from the repository root, ~10 s)
# Deployment: the local runner on one host, nodes h200-0 and h200-1, one GPU each (MLPERF_LOCAL_GPUS), dummy weights,
# the synthetic data set that x2_session.sh builds in /tmp/b, artefacts under /tmp/b/artifacts/<run id>.
# Params: Offline performance runs, single on each GPU, then coordinated (a vLLM server per GPU, one LoadGen over
# HTTP), then sharded (each GPU on half the samples at once). SHORTENED, NOT MLPerf's 600 s: min_duration 0 and
# min_query_count 4,000 (8,000 for the coordinated run). Meant as 4,000 queries per GPU in every mode, but LoadGen's
# Offline query is padded to a whole number of passes over the samples (mlperf.conf's equal issue for llama3.1-8b):
# as run on 2026-11-29, each single run issued 13,368 samples (219 s), the coordinated run 13,368 over both GPUs and
# each shard 6,684 (its half), so the distributed runs did half a single run's work per GPU. The next run should add
# sample_concatenate_permutation=0 (equal issue off) or size min_query_count in passes; x2_offline_commands.sh is
# kept as it ran.
# Engine: FP8 weights and KV cache, async scheduling, CUDA graphs to 1,024 tokens, max_num_batched_tokens 32,768,
# max_num_seqs 1,024, prefix caching off (the SUT's default): the reference/h200 headline settings. The DAG's params
# have no FP8 or vLLM engine-argument fields yet, so they travel as --engine-flags (named in the script's header).
set -euo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
MLPERF_RUNNER=local MLPERF_NODES=h200-0,h200-1 MLPERF_LOCAL_GPUS=h200-0=0,h200-1=1 \
MLPERF_MODEL_DIR=benchmarks/h200/llama-3.1-8b MLPERF_DATASET=/tmp/b/cnn_synthetic.json MLPERF_DATASET_SIZE=13368 \
MLPERF_LOAD_FORMAT=dummy MLPERF_ARTIFACTS_DIR=/tmp/b/artifacts MLPERF_SUT_PYTHON=python3 \
MLPERF_RUN_TIMEOUT_S=900 MLPERF_SERVER_START_TIMEOUT_S=600 PYTHONPATH=. \
  "${PYTHON:-.venv/bin/python}" -m include plan --commands --run-id h200x2-offline \
  --distributed coordinated --distributed sharded \
  --param 'scenarios=["Offline"]' --param mode=performance --param dtype=bfloat16 \
  --param max_num_seqs=1024 --param max_num_batched_tokens=32768 \
  --param 'user_conf_overrides={"min_duration": 0, "min_query_count": 4000}' \
  --mode-param 'coordinated:user_conf_overrides={"min_duration": 0, "min_query_count": 8000}' \
  --engine-flags "--quantization fp8 --kv-cache-dtype fp8 --engine-arg async_scheduling=true \
--engine-arg 'compilation_config={\"max_cudagraph_capture_size\": 1024}' --max-model-len 4096" \
  --out "$out" >/dev/null
cat "$out"
