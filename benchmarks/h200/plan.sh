#!/usr/bin/env bash
# The H200 reference runs' commands, generated from the DAG's plan (include/plan_commands.py), not hand-written
# (from the repository root, ~10 s each):
#   benchmarks/h200/plan.sh nightly 0 > benchmarks/h200/nightly_gpu0_commands.sh
#   benchmarks/h200/plan.sh nightly 1 > benchmarks/h200/nightly_gpu1_commands.sh
#   benchmarks/h200/plan.sh shortened > benchmarks/h200/x2_offline_commands.sh
#   benchmarks/h200/plan.sh 600s      > benchmarks/h200/x2_600s_commands.sh
#   benchmarks/h200/plan.sh sharded600 > benchmarks/h200/x2_sharded600_commands.sh
#   benchmarks/h200/plan.sh server    > benchmarks/h200/x2_server_commands.sh
#   benchmarks/h200/plan.sh sharded600-paired > benchmarks/h200/x2_sharded600_paired_commands.sh
# Deployment: the local runner on one host, nodes h200-0 and h200-1, one GPU each (MLPERF_LOCAL_GPUS; nightly: node
# h200-0 alone, on the GPU given), dummy weights,
# the synthetic data set that device_session.sh builds in /tmp/b, artefacts under /tmp/b/artifacts/<run id>.
# Engine: FP8 weights and KV cache, async scheduling, CUDA graphs to 1,024 tokens, max_num_batched_tokens 32,768,
# max_num_seqs 1,024, prefix caching off (the SUT's default): the reference/h200 headline settings. The DAG's params
# have no FP8 or vLLM engine-argument fields yet, so they travel as --engine-flags (named in the script's header).
# Runs:
#   nightly GPU (run h200-nightly, issue 17 part 6): the DAG's nightly plan for one node: Offline performance and
#     accuracy in one SUT process (one engine), Server performance in another, each over MLPerf's full duration.
#     offline_target_qps 57.5 (LoadGen issues 3 passes, 40,104 samples, ~650 s at the ~62 samples/s of one H200; the
#     user.conf's 40 would issue 2, ~430 s: INVALID); server_target_qps 55.62 (the highest VALID of one H200,
#     reference/h200); accuracy on Offline alone; no TEST06 (dummy weights). ~30 min of GPU time in all: more than a
#     30-minute lease holds with its transfers, so device_session.sh runs the two processes' shares (ONLY_RUNS) at once
#     on the two GPUs of an x2 lease (stage nightly-x2: the GPU 0 and GPU 1 scripts), or in two one-GPU leases.
#   shortened (run h200x2-offline, 2026-11-29, kept as it ran): Offline single on each GPU, coordinated, sharded;
#     SHORTENED, NOT MLPerf's 600 s: min_duration 0 and min_query_count 4,000 (8,000 for the coordinated run). Meant
#     as 4,000 queries per GPU, but LoadGen pads an Offline query to whole passes over the samples (mlperf.conf's
#     equal issue for llama3.1-8b): each single run issued 13,368 samples (219 s), the coordinated run 13,368 over
#     both GPUs and each shard 6,684, so the distributed runs did half a single run's work per GPU.
#   600s (run h200x2-offline-600s): coordinated over MLPerf's full 600 s (mlperf.conf's min_duration and query count;
#     target_qps 115 makes LoadGen issue 6 passes, 80,208 samples: 3 per GPU, as a 600 s single run on one H200
#     issues at ~62 samples/s, so it runs >= 600 s from ~101 samples/s up to 121.5) and, as its denominator, single on
#     each GPU at once, one pass each (13,368 samples, min_duration 0): two single runs of 600 s as well did not fit the
#     session's 30 minutes of device time.
#  sharded600 (run h200x2-sharded-600s, the distributed branch alone: --branch distributed): sharded over MLPerf's full
#    600 s; each shard (6,684 samples) at target_qps 57.5 is issued 6 passes (40,104 samples, ~650 s at the ~62
#    samples/s of one H200). Its denominator is h200x2-offline-600s's single runs (another lease of the same kind:
#    no device time was left for single runs in the same session).
#  sharded600-paired (run h200x2-sharded-600s-paired): single on each GPU at once, then sharded, all over MLPerf's full
#    600 s (offline_target_qps 57.5: each single run and each shard is issued 40,104 samples, ~650 s): the sharded
#    efficiency like for like, in one lease (~27 min of GPU time; h200x2-sharded-600s had no singles of its own lease).
#  server (run h200x2-server-coordinated, the distributed branch alone): coordinated Server at 108.5 QPS over MLPerf's
#    full 600 s (66,840 queries): 1.95 x the highest VALID Server QPS of one H200 (55.62, reference/h200), the
#    issue's goal, as one confirming run rather than a search (a search's probes are not MLPerf runs).
# All without the TEST06 compliance runs (param compliance_tests=[]): dummy weights, and no device time for them.
set -euo pipefail
gpus=h200-0=0,h200-1=1
nodes=h200-0,h200-1
case ${1:?usage: plan.sh nightly GPU|shortened|600s|sharded600|sharded600-paired|server} in
  nightly)
    nodes=h200-0 gpus=h200-0=${2:?usage: plan.sh nightly GPU (0 or 1)}
    run=(--run-id h200-nightly --distributed off --param 'scenarios=["Offline", "Server"]' --param mode=both
         --param 'accuracy_scenarios=["Offline"]' --param offline_target_qps=57.5 --param server_target_qps=55.62) ;;
  shortened)
    run=(--run-id h200x2-offline --distributed coordinated --distributed sharded
         --param 'user_conf_overrides={"min_duration": 0, "min_query_count": 4000}'
         --mode-param 'coordinated:user_conf_overrides={"min_duration": 0, "min_query_count": 8000}') ;;
  600s)
    run=(--run-id h200x2-offline-600s --distributed coordinated
         --param 'user_conf_overrides={"min_duration": 0}'
         --mode-param 'coordinated:user_conf_overrides={"target_qps": 115}') ;;
  sharded600)
    run=(--run-id h200x2-sharded-600s --distributed sharded --branch distributed
         --param 'user_conf_overrides={"target_qps": 57.5}') ;;
  sharded600-paired)
    run=(--run-id h200x2-sharded-600s-paired --distributed sharded --param offline_target_qps=57.5) ;;
  server)
    run=(--run-id h200x2-server-coordinated --distributed coordinated --branch distributed
         --param 'distributed_scenarios=["Server"]' --param server_target_qps=108.5) ;;
  *) echo "plan.sh: unknown run $1 (nightly, shortened, 600s, sharded600, sharded600-paired or server)" >&2; exit 2 ;;
esac
out=$(mktemp)
trap 'rm -f "$out"' EXIT
MLPERF_RUNNER=local MLPERF_NODES=$nodes MLPERF_LOCAL_GPUS=$gpus \
MLPERF_MODEL_DIR=benchmarks/h200/llama-3.1-8b MLPERF_DATASET=/tmp/b/cnn_synthetic.json MLPERF_DATASET_SIZE=13368 \
MLPERF_LOAD_FORMAT=dummy MLPERF_ARTIFACTS_DIR=/tmp/b/artifacts MLPERF_SUT_PYTHON=python3 \
MLPERF_RUN_TIMEOUT_S=900 MLPERF_SERVER_START_TIMEOUT_S=600 PYTHONPATH=. \
  "${PYTHON:-.venv/bin/python}" -m include plan --commands \
  --param 'scenarios=["Offline"]' --param mode=performance --param dtype=bfloat16 \
  --param max_num_seqs=1024 --param max_num_batched_tokens=32768 --param 'compliance_tests=[]' "${run[@]}" \
  --engine-flags "--quantization fp8 --kv-cache-dtype fp8 --engine-arg async_scheduling=true \
--engine-arg 'compilation_config={\"max_cudagraph_capture_size\": 1024}' --max-model-len 4096" \
  --out "$out" >/dev/null
cat "$out"
