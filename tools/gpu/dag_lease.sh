#!/usr/bin/env bash
# The benchmark DAG on a lent GPU machine (the device tool: one GPU, no network, Python 3.12; 600 s a call, files kept
# while the machine stays warm, i.e. while the next call follows within 30 s). Tooling for the lease only: what runs
# there is the product, `python -m include.apps.host` (Airflow's `airflow dags test` of mlperf_llama31_8b with the local
# runner), as on any GPU host without Kubernetes. From the repository root there:
#   dag_lease.sh stash FILE...        bundle parts (carry them; at most 64 MiB with the working tree a call): kept in
#                                     /tmp/p/<their folder's name>/
#   dag_lease.sh check FILE...        stash the Airflow bundle's last parts, unpack it (/tmp/b/asite) and import the
#                                     Airflow side with the host's Python: a missing package shows before the GPU runs
#   dag_lease.sh start CONF_JSON [FILE...]  stash the last parts given, then unpack the vLLM bundle (/tmp/b/vsite) and the Airflow
#                                     bundle (/tmp/b/asite), build the synthetic data set, copy the checkout to
#                                     /tmp/b/repo and start the DAG run there, detached (setsid), a node per GPU
#                                     (<card>-<i>: h200-0 or h100-0, from nvidia-smi; h200-0,h200-1 on two) pinned
#                                     to GPU i
#   dag_lease.sh wait SECONDS         until the DAG run ends or SECONDS pass: the log's tail, the SUT's progress;
#                                     when it has ended, its artefacts (LoadGen logs, result.json, plan.json, the
#                                     report, the SUT logs, the Airflow task logs; not LoadGen's trace) and the
#                                     history database as $OUT/dag-run.tar.xz
# Bundles: tools/gpu/build_vllm_bundle.sh (.gpu-bundle) and build_airflow_bundle.sh (.gpu-bundle/airflow).
# Weights cannot be fetched there: dummy weights (param load_format) from tools/gpu/llama-3.1-8b/config.json,
# and synthetic prompts with CNN/DailyMail's lengths: performance is real, accuracy is not applicable.
set -uo pipefail
work=/tmp/b
case ${1:?usage: see the top of dag_lease.sh} in
  stash)
    shift
    for f in "$@"; do mkdir -p "/tmp/p/$(basename "$(dirname "$f")")" && cp "$f" "/tmp/p/$(basename "$(dirname "$f")")/"; done
    ls -lR /tmp/p ;;
  check)   # once the Airflow bundle's parts are here: unpack it and import the Airflow side with the host's Python
    shift; bash "$0" stash "$@" >/dev/null
    cp .gpu-bundle/airflow/unpack.sh .gpu-bundle/airflow/SHA256 /tmp/p/airflow/ || exit 1
    [ -d "$work/asite" ] || bash /tmp/p/airflow/unpack.sh "$work" || exit 1
    python3 --version; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    PYTHONPATH=$work/asite:. python3 -c "import airflow.sdk, pandas, matplotlib, scipy.stats, sqlalchemy, jinja2, \
transformers, nltk, rouge_score; from include import pipeline; from include.apps import host; from include.planning import plan; print('Airflow side imports: OK')" \
      && PYTHONPATH=$work/asite python3 -m airflow version ;;
  start)
    conf=${2:?usage: dag_lease.sh start CONF_JSON [FILE...]}
    shift 2; [ $# -gt 0 ] && bash "$0" stash "$@" >/dev/null
    mkdir -p "$work"
    cp .gpu-bundle/unpack.sh .gpu-bundle/SHA256 /tmp/p/.gpu-bundle/ 2>/dev/null
    [ -d "$work/vsite" ] || bash /tmp/p/.gpu-bundle/unpack.sh "$work" || exit 1
    [ -d "$work/asite" ] || bash /tmp/p/airflow/unpack.sh "$work" || exit 1
    rm -rf "$work/repo" && mkdir -p "$work/repo" && cp -a dags include plugins sut_image tools "$work/repo/" || exit 1
    card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
    count=$(nvidia-smi --query-gpu=name --format=csv,noheader | wc -l)
    case $card in *H200*) prefix=h200 ;; *H100*) prefix=h100 ;; *) prefix=gpu ;; esac
    nodes=$(seq -s, -f "$prefix-%g" 0 $((count - 1)))                  # a node per GPU: h200-0,h200-1
    gpus=$(for i in $(seq 0 $((count - 1))); do printf '%s-%s=%s,' "$prefix" "$i" "$i"; done); gpus=${gpus%,}
    echo "card: $card x $count -> nodes $nodes ($gpus)"
    data=$work/cnn_synthetic.json
    [ -f "$data" ] || PYTHONPATH=$work/repo/sut_image:$work/vsite python3 -m mlperf_sut build-dataset \
      --synthetic-token-ids --vocab-size 128256 --samples 13368 --output "$data" || exit 1
    (cd "$work/repo" && PYTHONPATH=$work/asite MLPERF_SUT_PYTHON=python3 MLPERF_SUT_PYTHONPATH=$work/vsite \
       VLLM_USE_FLASHINFER_SAMPLER=0 MLPERF_RETRIES=0 PYTHONUNBUFFERED=1 setsid nohup bash -c \
       'python3 -m include.apps.host "$@"; echo "exit $?" > '"$work"'/dag.done' host \
       --nodes "$nodes" --gpus "$gpus" --model tools/gpu/llama-3.1-8b --dataset "$data" \
       --airflow-home "$work/airflow" --artifacts "$work/artifacts" --conf "$conf" \
       > "$work/dag.log" 2>&1 < /dev/null &)
    sleep 20; tail -n 20 "$work/dag.log" ;;
  wait)
    end=$((SECONDS + ${2:?usage: dag_lease.sh wait SECONDS}))
    while [ ! -f "$work/dag.done" ] && [ $SECONDS -lt $end ]; do sleep 5; done
    grep -v '^\s*$' "$work/dag.log" | grep -E '^\+|DAG run|verdict|ERROR|Error|error:|Task.*(success|failed)|report|chart' | tail -n 40
    for log in $(find "$work/artifacts" -name '*.sut.log' 2>/dev/null | sort); do
      echo "$log: $(grep '^progress:' "$log" | tail -n 1)"
    done
    nvidia-smi --query-gpu=name,utilization.gpu,memory.used --format=csv,noheader
    if [ -f "$work/dag.done" ]; then
      cat "$work/dag.done"
      cp "$work/dag.log" "$work/artifacts/"
      mkdir -p "$work/artifacts/airflow-logs" && cp -a "$work/airflow/logs/." "$work/artifacts/airflow-logs/" 2>/dev/null
      tar -C "$work" --exclude=mlperf_log_trace.json -cJf "$OUT/dag-run.tar.xz" artifacts && ls -l "$OUT"
    else
      echo "DAG run still running"
    fi ;;
  *) echo "dag_lease.sh: unknown command $1"; exit 2 ;;
esac
