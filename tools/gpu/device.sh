#!/usr/bin/env bash
# The device calls of a GPU session longer than one call (600 s at most; nvidia-h200 or nvidia-h200-x2), from the
# repository root there:
#   device.sh stash .gpu-bundle/part_aa            one bundle part per call (carry it), kept in /tmp/p
#   device.sh start [--lane NAME] STAGE...         after the last part (carry it with unpack.sh and SHA256):
#                                                     unpack the bundle into /tmp/b/vsite (once), copy tools/
#                                                     and sut_image/ to /tmp/b/repo-NAME and start device_session.sh
#                                                     STAGE... there, detached (setsid): it outlives the call while
#                                                     the machine is held, i.e. while the next call follows within
#                                                     30 s. A lane (default "main") is one such session; lanes run at
#                                                     once, e.g. one per GPU of an x2 lease (start one lane a call;
#                                                     the stages' variables, NIGHTLY_GPU, TUNE_GPUS, ..., per call)
#   device.sh wait SECONDS RUN_ID...               until every lane has ended, a listed run's stage ends or SECONDS
#                                                     pass: each lane log's tail, each SUT run's last progress line;
#                                                     each run finished since the last call (its folder: LoadGen
#                                                     logs, result.json, SUT and server logs; not LoadGen's trace) as
#                                                     $OUT/RUN_ID.tar.xz, and each lane's log as $OUT/session-NAME.log
# The copy in /tmp/b/repo-NAME keeps a lane's running scripts apart from the working tree each call re-sends and from
# the other lanes' copies.
set -uo pipefail
work=/tmp/b
lanes_done() {   # every lane started has written its session-NAME.done
  local log
  for log in "$work"/session-*.log; do [ -f "${log%.log}.done" ] || return 1; done
}
case ${1:?usage: see the top of device.sh} in
  stash)
    shift; mkdir -p /tmp/p; cp "$@" /tmp/p/ && ls -l /tmp/p ;;
  start)
    shift
    lane=main
    if [ "${1:-}" = --lane ]; then lane=${2:?usage: device.sh start --lane NAME STAGE...}; shift 2; fi
    cp .gpu-bundle/part_* .gpu-bundle/unpack.sh .gpu-bundle/SHA256 /tmp/p/ 2>/dev/null
    [ -d "$work/vsite" ] || bash /tmp/p/unpack.sh "$work" || exit 1
    repo=$work/repo-$lane
    rm -rf "$repo" && mkdir -p "$repo" && cp -a tools sut_image "$repo/" || exit 1
    rm -f "$work/session-$lane.done"
    (cd "$repo" && DONE=$work/session-$lane.done setsid nohup bash -c \
       'bash tools/gpu/device_session.sh "$@"; echo "exit $?" > "$DONE"' \
       device_session "$@" > "$work/session-$lane.log" 2>&1 < /dev/null &)
    sleep 5; cat "$work/session-$lane.log" ;;
  wait)
    shift; seconds=$1; shift
    end=$((SECONDS + seconds))
    ready() {   # a listed run whose stage is done (its .done) and not yet packed
      for run in "$@"; do [ -f "$work/artifacts/$run/.done" ] && [ ! -f "$work/artifacts/$run/.packed" ] && return 0; done
      return 1
    }
    while ! lanes_done && [ $SECONDS -lt $end ] && ! ready "$@"; do sleep 5; done
    for log in "$work"/session-*.log; do
      echo "--- $(basename "$log")"; tail -n 12 "$log"; cp "$log" "$OUT/"
    done
    for log in $(find "$work/artifacts" -name '*.sut.log' 2>/dev/null | sort); do
      echo "$log: $(grep '^progress:' "$log" | tail -n 1)"
    done
    nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader
    for run in "$@"; do   # each finished run once, in the call that sees it finish
      if [ -f "$work/artifacts/$run/.done" ] || lanes_done; then
        [ -d "$work/artifacts/$run" ] && [ ! -f "$work/artifacts/$run/.packed" ] || continue
        tar -C "$work/artifacts" --exclude=mlperf_log_trace.json --exclude=.done -cJf "$OUT/$run.tar.xz" "$run" \
          && touch "$work/artifacts/$run/.packed" && ls -l "$OUT/$run.tar.xz"
      fi
    done
    if lanes_done; then grep . "$work"/session-*.done; else echo "session still running"; fi ;;
  *) echo "device.sh: unknown command $1"; exit 2 ;;
esac
