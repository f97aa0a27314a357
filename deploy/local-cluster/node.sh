#!/bin/bash
# A node failure and its repair on the local cluster: `stop` ends a node's kubelet (its containerd and the pods'
# containers keep running, as on a machine whose kubelet died; the control plane marks the node NotReady after its
# 40 s grace period), `start` runs the same kubelet again inside the node's mount namespace (up.sh's kubelet.sh).
# usage: node.sh stop|start NODE      (state: $MLPERF_CLUSTER_DIR, default <repo>/.cache/cluster)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
D=${MLPERF_CLUSTER_DIR:-$REPO/.cache/cluster}
action=${1:-}; n=${2:-}
[ -f "$D/nodes/$n/kubelet.sh" ] || { echo "node.sh: no node '$n' in $D (usage: node.sh stop|start NODE)" >&2; exit 2; }
pidfile=$D/pids/kubelet-$n.pid
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
case $action in
  stop)
    running || { echo "node.sh: the kubelet of $n is not running"; exit 0; }
    pid=$(cat "$pidfile"); kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "node.sh: kubelet of $n stopped" ;;
  start)
    running && { echo "node.sh: the kubelet of $n is already running"; exit 0; }
    containerd=$(cat "$D/pids/containerd-$n.pid")
    kill -0 "$containerd" 2>/dev/null || { echo "node.sh: containerd of $n is not running (restart the cluster)" >&2; exit 1; }
    nohup nsenter -t "$containerd" -m "$D/nodes/$n/kubelet.sh" >> "$D/logs/kubelet-$n.log" 2>&1 < /dev/null &
    echo $! > "$pidfile"
    echo "node.sh: kubelet of $n started" ;;
  *) echo "usage: node.sh stop|start NODE" >&2; exit 2 ;;
esac
