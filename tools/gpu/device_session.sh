#!/usr/bin/env bash
# The H200 reference runs on a lent device machine, from the repository root (tools/gpu/device.sh starts it
# there, detached):
#   tools/gpu/device_session.sh STAGE ...   (work folder /tmp/b)
# Lab stages (engine tuning, QPS probes, the HTTP backend against the in-process one): the figures the project
# publishes come from the DAG itself (tools/gpu/dag_lease.sh), not from these.
# Needs /tmp/b/vsite: the bundle of tools/gpu/build_vllm_bundle.sh, unpacked (.gpu-bundle/unpack.sh /tmp/b).
# Stages on one GPU (nvidia-h200, or GPU 0 of nvidia-h200-x2):
#   cleanup  kill the servers a stage stopped by a timeout left running (servers.pids); GPU memory in use
#   check    vLLM's OpenAI server imports against the bundle (what `mlperf_sut serve` runs), the GPUs, versions
#   tune     (~3.5 min an attempt, 7 in all; then ~13 min) tune.py over tune_offline.json, each attempt its own
#            engine on 4,000 samples, then the best over 600 s, into run h200-tune (tune.json); TUNE_GPUS: the GPUs
#            attempts run on at once (default 0; 0,1 on an x2 lease: 4 rounds, ~27 min with the confirmation);
#            TUNE_ARGS adds tune.py arguments (e.g. "--only baseline --only mnbt64k"); TUNE_CONFIRM=0 leaves the
#            600 s confirmation out; TUNE_RUN names the run (default h200-tune; one per lane that tunes)
#   tune-server<X> (~6 min an attempt, 6 in all) tune.py over tune_server.json with --server-qps X: each attempt
#            its own engine, Server at X QPS over all 13,368 queries (equal issue), into run h200-tune-server<X>;
#            TUNE_GPUS (0,1 on an x2 lease: 3 rounds, ~18 min), TUNE_ARGS, TUNE_RUN as tune; the 600 s confirmation
#            of the best only with TUNE_CONFIRM=1 (~12 min more)
#   server-qps<X> (~5 min at 60) Server performance at X QPS over all 13,368 queries (min_duration 45 s, as
#            reference/h200's server-fp8-qps runs), the headline's engine settings; run h200-server-qps<X>;
#            SERVER_GPU: the GPU (default 0; 1 for a second lane on an x2 lease)
# Stages on two GPUs (nvidia-h200-x2):
#   http     (~8 min) the HTTP backend against the in-process one on the same GPU (issue 17, part 2), and the
#            Server search on the coordinated pair:
#            1. both GPUs at once: in-process Server at 50 QPS (3,000 queries, min_duration 0, equal issue off)
#            2. a `mlperf_sut serve` per GPU; on each, through its own LoadGen over HTTP, at once: Offline with the
#               offline stage's settings (4,000 queries), then Server at 50 QPS as in 1
#            3. search-qps over both servers (one LoadGen, HTTP): Server=100:116, 3 probes of 30 s (probes, not
#               confirming runs: equal issue off, 30 s instead of 600 s)
# Artefacts: /tmp/b/artifacts/<run id>/<branch>/<node>/<scenario>/<mode>/ (the pipeline's layout). Every stage ends
# with "=== <time> <stage> done". Engine settings as reference/h200's headline: FP8 weights and KV cache, async
# scheduling, CUDA graphs to 1,024, max_num_batched_tokens 32,768, max_num_seqs 1,024, prefix caching off; dummy
# weights and synthetic prompts with CNN/DailyMail's lengths: performance is real, accuracy is not measured.
set -uo pipefail
work=/tmp/b
repo=$(pwd)
# SUT_DIR: the SUT's source (default the checkout's sut_image; a committed snapshot keeps edits in flight out)
export PYTHONPATH=$work/vsite:${SUT_DIR:-$repo/sut_image} VLLM_USE_FLASHINFER_SAMPLER=0 PYTHONUNBUFFERED=1
model=tools/gpu/llama-3.1-8b
data=$work/cnn_synthetic.json
flags=(--load-format dummy --max-model-len 4096 --dtype bfloat16 --max-num-seqs 1024 --max-num-batched-tokens 32768
       --quantization fp8 --kv-cache-dtype fp8 --engine-arg async_scheduling=true
       --engine-arg 'compilation_config={"max_cudagraph_capture_size": 1024}')
server50=(--override target_qps=50 --override min_duration=0 --override min_query_count=3000
          --override sample_concatenate_permutation=0)
stage() { echo "=== $(date -u +%H:%M:%S) $*"; }
sut() { python3 -m mlperf_sut "$@"; }

mkdir -p "$work/artifacts"
stage "data set: 13,368 CNN/DailyMail-length token-id prompts"
# under a lock, written whole: lanes of device.sh start at once and read the same file
exec 9> "$work/cnn_synthetic.lock"
flock 9
[ -f "$data" ] || { sut build-dataset --synthetic-token-ids --vocab-size 128256 --samples 13368 --output "$data.part" \
  && mv "$data.part" "$data"; } || exit 1
flock -u 9

wait_health() {   # URL PID...: until every server answers /health, or one exits, or 600 s
  python3 - "$@" <<'PY'
import sys, time, urllib.request as u
deadline = time.monotonic() + 600
for url, pid in zip(sys.argv[1::2], sys.argv[2::2]):
    while True:
        try:
            if u.urlopen(url + "/health", timeout=2).status == 200:
                break
        except OSError:
            pass
        try:
            gone = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] in "ZX"
        except OSError:
            gone = True
        if gone or time.monotonic() > deadline:
            sys.exit(f"server {url} not ready ({'exited' if gone else 'timeout'})")
        time.sleep(2)
PY
}

for name in "$@"; do
  stage "$name"
  case $name in
    cleanup)   # servers a stage killed by a timeout left running (their process groups, from servers.pids)
      for f in "$work"/artifacts/*/servers.pids "$work"/artifacts/*/distributed/servers.pids; do
        [ -f "$f" ] || continue
        while read -r pid; do kill -KILL -- "-$pid" 2>/dev/null && echo "killed server group $pid"; done < "$f"
        rm -f "$f"
      done
      nvidia-smi --query-gpu=index,memory.used --format=csv ;;
    check)
      nvidia-smi --query-gpu=index,name,memory.total,clocks.sm,clocks.max.sm --format=csv
      python3 -c "import torch, vllm, mlperf_loadgen; print('torch', torch.__version__, 'gpus', torch.cuda.device_count(), 'vllm', vllm.__version__)"
      python3 -c "import vllm.entrypoints.openai.api_server, uvicorn, fastapi; print('api_server imports: OK')" \
        || echo "api_server imports: FAILED" ;;
    http)
      run=$work/artifacts/h200x2-http
      mkdir -p "$run"
      for gpu in 0 1; do   # 1. in-process Server on each GPU at once
        CUDA_VISIBLE_DEVICES=$gpu sut run --scenario Server --mode performance --model "$model" --dataset "$data" \
          "${flags[@]}" --node h200-$gpu "${server50[@]}" --output-dir "$run/single/h200-$gpu/Server/performance" \
          > "$run/inproc-server-$gpu.log" 2>&1 &
      done
      wait
      tail -n 3 "$run"/inproc-server-*.log
      pids=()   # 2. one server per GPU
      for gpu in 0 1; do
        CUDA_VISIBLE_DEVICES=$gpu setsid python3 -m mlperf_sut serve --model "$model" "${flags[@]}" \
          --host 127.0.0.1 --port 810$gpu > "$run/server-$gpu.log" 2>&1 &
        pids+=($!)
        echo $! >> "$run/servers.pids"
      done
      trap 'for p in "${pids[@]}"; do kill -TERM -- -$p 2>/dev/null; done' EXIT
      if wait_health http://127.0.0.1:8100 "${pids[0]}" http://127.0.0.1:8101 "${pids[1]}"; then
        stage "servers ready"
        clients=()
        for gpu in 0 1; do
          ( CUDA_VISIBLE_DEVICES= sut run --scenario Offline --mode performance --model "$model" --dataset "$data" \
              --backend http --endpoint h200-$gpu=http://127.0.0.1:810$gpu --node h200-$gpu-http \
              --override min_duration=0 --override min_query_count=4000 \
              --output-dir "$run/single/h200-$gpu-http/Offline/performance"
            CUDA_VISIBLE_DEVICES= sut run --scenario Server --mode performance --model "$model" --dataset "$data" \
              --backend http --endpoint h200-$gpu=http://127.0.0.1:810$gpu --node h200-$gpu-http "${server50[@]}" \
              --output-dir "$run/single/h200-$gpu-http/Server/performance" ) > "$run/http-$gpu.log" 2>&1 &
          clients+=($!)
        done
        wait "${clients[@]}"
        tail -n 3 "$run"/http-*.log
        stage "search-qps on the coordinated pair"   # 3.
        CUDA_VISIBLE_DEVICES= sut search-qps --model "$model" --dataset "$data" --backend http --node coordinator \
          --endpoint h200-0=http://127.0.0.1:8100 --endpoint h200-1=http://127.0.0.1:8101 \
          --range Server=100:116 --probes 3 --probe-duration-s 30 --output-dir "$work/artifacts/h200x2-search" \
          2>&1 | grep -v "^INFO\|^WARNING"
      else
        tail -n 40 "$run"/server-*.log
      fi
      for p in "${pids[@]}"; do kill -TERM -- -$p 2>/dev/null; done; sleep 5
      for p in "${pids[@]}"; do kill -KILL -- -$p 2>/dev/null; done
      trap - EXIT ;;
    tune|tune-server*)   # TUNE_ARGS: word-split on purpose (several --only NAME)
      file=tune_offline.json; server=(); confirm_default=1
      if [ "$name" != tune ]; then
        file=tune_server.json; server=(--server-qps "${name#tune-server}" --samples 13368); confirm_default=0
      fi
      out=$work/artifacts/${TUNE_RUN:-h200-$name}
      confirm=--confirm-600s; [ "${TUNE_CONFIRM:-$confirm_default}" = 0 ] && confirm=
      # shellcheck disable=SC2086
      python3 tools/gpu/tune.py "tools/gpu/$file" "${server[@]}" --gpus "${TUNE_GPUS:-0}" \
        --dataset "$data" --node h200-0 --output-dir "$out" $confirm ${TUNE_ARGS:-}
      touch "$out/.done" ;;
    server-qps*)
      qps=${name#server-qps}; out=$work/artifacts/h200-server-qps$qps
      mkdir -p "$out"
      CUDA_VISIBLE_DEVICES=${SERVER_GPU:-0} sut run --scenario Server --mode performance --model "$model" --dataset "$data" \
        "${flags[@]}" --node h200-0 --override "target_qps=$qps" --override min_duration=45000 \
        --output-dir "$out/single/h200-0/Server/performance" > "$out/single-h200-0-Server.sut.log" 2>&1
      tail -n 3 "$out/single-h200-0-Server.sut.log"
      touch "$out/.done" ;;
    *) echo "unknown stage $name (see the usage at the top of device_session.sh)"; exit 2 ;;
  esac
  stage "$name done"
done
