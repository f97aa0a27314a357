#!/bin/bash
# Stops the local cluster that up.sh started and leaves nothing running or mounted: every process it started (by pid
# file), every process in a node's mount namespace (containerd, its shims, the pods' containers), the CNI bridges,
# the netns files, the nodes' cgroups, the DNS stand-in's address and the KUBE-* iptables chains (kube-proxy's and the
# kubelets'); IP forwarding is set back to what up.sh found. The state folder stays for its logs; up.sh starts from
# a clean one.
# usage: down.sh           (state: $MLPERF_CLUSTER_DIR, default <repo>/.cache/cluster)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
D=${MLPERF_CLUSTER_DIR:-$REPO/.cache/cluster}
[ -d "$D/pids" ] || { echo "local cluster: not started from $D"; exit 0; }
NODES=(gpu-node-a gpu-node-b)

stop_pid() {   # stop_pid PID: TERM, then KILL after 10 s
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null; sleep 0.2
}
in_namespace() {   # in_namespace NS: pids of the processes in mount namespace NS (never this script's own)
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" != $$ ] && [ "$(readlink $p/ns/mnt 2>/dev/null)" = "$1" ] && echo ${p#/proc/}
  done
}
for name in "${NODES[@]/#/kubelet-}" kube-proxy service-dns scheduler controller-manager apiserver; do
  [ -f $D/pids/$name.pid ] && stop_pid "$(cat $D/pids/$name.pid)"
done
for n in "${NODES[@]}"; do
  sock=$D/nodes/$n/containerd.sock
  if [ -S "$sock" ] && ctr -a "$sock" version >/dev/null 2>&1; then
    C="ctr -a $sock -n k8s.io"
    for t in $($C tasks ls -q 2>/dev/null); do $C tasks kill -s SIGKILL $t >/dev/null 2>&1; done
    for t in $($C tasks ls -q 2>/dev/null); do $C tasks rm -f $t >/dev/null 2>&1; done
    for c in $($C containers ls -q 2>/dev/null); do $C containers rm $c >/dev/null 2>&1; done
  fi
  [ -f $D/pids/containerd-$n.pid ] && stop_pid "$(cat $D/pids/containerd-$n.pid)"
  ns=$(cat $D/pids/mntns-$n 2>/dev/null || true)
  # Never this machine's own namespace (everything else runs there): only a node's private one, made by up.sh.
  # And only while one of its processes is still this cluster's (a namespace's number is reused once it is gone).
  ours=$(for pid in $(in_namespace "$ns"); do tr '\0' ' ' 2>/dev/null < /proc/$pid/cmdline | grep -F -q -- "$D/" && echo $pid; done)
  if [ -n "$ns" ] && [ -n "$ours" ] && [ "$ns" != "$(readlink /proc/self/ns/mnt)" ] && [ "$ns" != "$(readlink /proc/1/ns/mnt)" ]; then
    for pid in $(in_namespace "$ns"); do kill -9 $pid 2>/dev/null; done
    for _ in $(seq 50); do [ -z "$(in_namespace "$ns")" ] && break; sleep 0.1; done
  fi
done
[ -f $D/pids/etcd.pid ] && stop_pid "$(cat $D/pids/etcd.pid)"
# The iptables chains of kube-proxy and of the kubelets (KUBE-*), and the rules that jump to them (`kube-proxy
# --cleanup` stops at the first ipset it cannot remove and leaves the kubelets' chains).
for ipt in iptables ip6tables; do
  for table in nat filter mangle; do
    $ipt -t $table -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j KUBE-' | sed 's/^-A /-D /' |
      while read -r rule; do eval "$ipt -t $table $rule"; done
    chains=$($ipt -t $table -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}')
    for chain in $chains; do $ipt -t $table -F $chain; done
    for chain in $chains; do $ipt -t $table -X $chain; done
  done
done
ip addr del 10.89.0.10/32 dev lo 2>/dev/null     # up.sh's DNS_IP
[ -f $D/etc/ip_forward.before ] && cat $D/etc/ip_forward.before > /proc/sys/net/ipv4/ip_forward && rm -f $D/etc/ip_forward.before
# Mounts live in the nodes' private namespaces and vanish with them; anything that leaked to this one goes too.
grep -o " $D/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
for f in /var/run/netns/cni-*; do [ -e "$f" ] && ! mountpoint -q "$f" && rm -f "$f"; done
for i in "${!NODES[@]}"; do ip link del mlperfbr$i 2>/dev/null; done
for n in "${NODES[@]}"; do
  for ctl in $(awk '$3 == "cgroup" {print $2}' /proc/mounts); do
    [ -d $ctl/mlperf-$n ] && find $ctl/mlperf-$n -depth -type d -exec rmdir {} + 2>/dev/null
  done
done
rm -f $D/pids/*.pid $D/pids/mntns-*
echo "local cluster: stopped"
