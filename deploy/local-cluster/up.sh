#!/bin/bash
# Starts a local two-node Kubernetes v1.20.2 cluster on 127.0.0.1 from the cached build (build.sh runs first if the
# cache is cold), and sets it up as deploy/ describes: namespace, RBAC (applied as is), and the three PVCs bound to
# local PersistentVolumes.
# usage: up.sh             (state: $MLPERF_CLUSTER_DIR, default <repo>/.cache/cluster; stop with down.sh)
#
# Topology, all on this machine: etcd, kube-apiserver (:6443), kube-controller-manager, kube-scheduler, kube-proxy
# (iptables mode: ClusterIP Services reach their pods), and per node one containerd and one kubelet (gpu-node-a
# :10250, gpu-node-b :10260). Each node runs in its own mount namespace
# (kubelet 1.20 hard-codes /var/log/pods and garbage-collects the log folders of pods it does not know, which would
# be the other node's), under its own cgroup root, CNI bridge and pod subnet. Each node is labelled as a GPU node and
# advertises nvidia.com/gpu: 1 (patched into its status, as the Kubernetes docs do for extended resources: there is
# no GPU and no device plugin here).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
C=${MLPERF_CLUSTER_CACHE:-/var/cache/mlperf-k8s}
D=${MLPERF_CLUSTER_DIR:-$REPO/.cache/cluster}
NODES=(gpu-node-a gpu-node-b)
NS=mlperf
TIMEOUT=${MLPERF_CLUSTER_TIMEOUT_S:-300}
DNS_IP=10.89.0.10             # the pods' nameserver (kubelet clusterDNS): outside the pod and Service ranges

fail() { echo "local cluster: $*" >&2; echo "logs: $D/logs (stop what was started with deploy/local-cluster/down.sh)" >&2; exit 1; }
wait_for() {   # wait_for WHAT CMD...: poll CMD until it succeeds, fail loudly after $TIMEOUT s
  local what=$1; shift; local t0=$SECONDS
  until "$@" >/dev/null 2>&1; do
    (( SECONDS - t0 < TIMEOUT )) || fail "$what not ready after ${TIMEOUT}s"
    sleep 0.5
  done
}
[ "$(id -u)" = 0 ] || { echo "up.sh: run as root (containers, cgroups, mounts)" >&2; exit 1; }
if [ -f "$D/pids/apiserver.pid" ] && kill -0 "$(cat $D/pids/apiserver.pid)" 2>/dev/null; then
  echo "local cluster: already running (kubeconfig $D/etc/admin.kubeconfig)"; exit 0
fi
for port in 2379 2380 6443 10249 10250 10256 10260; do
  ! ss -ltn "sport = :$port" | grep -q LISTEN || fail "port $port is in use (another cluster? run down.sh)"
done
"$HERE/build.sh" "$C"
"$HERE/packages.sh"
T0=$SECONDS
# Only ever delete a folder this script made (MLPERF_CLUSTER_DIR could name anything).
[ ! -e "$D" ] || [ -f "$D/.mlperf-local-cluster" ] || fail "$D exists and was not made by up.sh: choose another MLPERF_CLUSTER_DIR"
rm -rf "$D"; mkdir -p "$D"; touch "$D/.mlperf-local-cluster"; mkdir -p $D/{bin,etc,pki,logs,pids,volumes/{model,dataset,artifacts}}
chmod 0777 $D/volumes/*            # the SUT image runs as uid 10001 (sut_image/Dockerfile)
ln -s $C/bin/kubectl $D/bin/kubectl
KUBECTL="$C/bin/kubectl --kubeconfig=$D/etc/admin.kubeconfig"

# --- credentials: static tokens for admin and each kubelet; the service-account key pair ---------------------------
openssl genrsa -out $D/pki/sa.key 2048 2>/dev/null
openssl rsa -in $D/pki/sa.key -pubout -out $D/pki/sa.pub 2>/dev/null
token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
kubeconfig() {   # kubeconfig FILE TOKEN
  cat > $1 <<KC
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: $2}}]
contexts: [{name: local, context: {cluster: local, user: u, namespace: $NS}}]
current-context: local
KC
}
ADMIN_TOKEN=$(token)
echo "$ADMIN_TOKEN,admin,admin,system:masters" > $D/pki/tokens.csv
kubeconfig $D/etc/admin.kubeconfig $ADMIN_TOKEN
for n in "${NODES[@]}"; do
  t=$(token); echo "$t,system:node:$n,kubelet-$n,system:nodes" >> $D/pki/tokens.csv; kubeconfig $D/etc/$n.kubeconfig $t
done
t=$(token); echo "$t,system:kube-proxy,kube-proxy" >> $D/pki/tokens.csv; kubeconfig $D/etc/kube-proxy.kubeconfig $t
chmod 0600 $D/pki/tokens.csv $D/etc/*.kubeconfig

# --- control plane ---------------------------------------------------------------------------------------------------
start() {   # start NAME CMD...: background process, logs/NAME.log, pids/NAME.pid
  local name=$1; shift
  nohup nice -n 10 "$@" > $D/logs/$name.log 2>&1 < /dev/null & echo $! > $D/pids/$name.pid
}
start etcd etcd --name local --data-dir $D/etcd-data --listen-client-urls http://127.0.0.1:2379 \
  --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
  --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster local=http://127.0.0.1:2380 \
  --listen-metrics-urls http://127.0.0.1:2381
wait_for etcd sh -c 'curl -s http://127.0.0.1:2379/health | grep -q true'
start apiserver $C/bin/kube-apiserver --etcd-servers=http://127.0.0.1:2379 --bind-address=127.0.0.1 --secure-port=6443 \
  --advertise-address=127.0.0.1 --cert-dir=$D/pki/apiserver --token-auth-file=$D/pki/tokens.csv \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
  --service-account-key-file=$D/pki/sa.pub --service-account-signing-key-file=$D/pki/sa.key \
  --service-account-issuer=https://kubernetes.default.svc --api-audiences=https://kubernetes.default.svc \
  --service-cluster-ip-range=10.0.0.0/24 --insecure-port=0 --endpoint-reconciler-type=none \
  --kubelet-preferred-address-types=InternalIP
wait_for apiserver sh -c "curl -sk -H 'Authorization: Bearer $ADMIN_TOKEN' https://127.0.0.1:6443/readyz | grep -q '^ok'"
# No nodeipam/route/cloud/service controllers: no cloud and no kube-proxy here (see the README).
start controller-manager $C/bin/kube-controller-manager --kubeconfig=$D/etc/admin.kubeconfig --bind-address=127.0.0.1 \
  --port=0 --leader-elect=false --service-account-private-key-file=$D/pki/sa.key --use-service-account-credentials=false \
  --controllers='*,-nodeipam,-cloud-node-lifecycle,-route,-service'
start scheduler $C/bin/kube-scheduler --kubeconfig=$D/etc/admin.kubeconfig --bind-address=127.0.0.1 --port=0 \
  --leader-elect=false --authentication-kubeconfig=$D/etc/admin.kubeconfig --authorization-kubeconfig=$D/etc/admin.kubeconfig
# One kube-proxy for both nodes (they share this machine's network namespace), as user system:kube-proxy (the built-in
# system:node-proxier binding). masqueradeAll: a pod calling a Service whose pod is on its own bridge gets the reply
# back through the host (no hairpin mode on the CNI bridges). Packets between the nodes' bridges are routed by this
# host: IP forwarding is switched on (down.sh restores the value it found).
cat /proc/sys/net/ipv4/ip_forward > $D/etc/ip_forward.before
echo 1 > /proc/sys/net/ipv4/ip_forward
cat > $D/etc/kube-proxy.yaml <<KP
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $D/etc/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: 10.88.0.0/16
hostnameOverride: ${NODES[0]}
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
iptables: {masqueradeAll: true}
conntrack: {maxPerCore: 0}      # never resize this machine's conntrack table
KP
start kube-proxy $C/bin/kube-proxy --config=$D/etc/kube-proxy.yaml
# Service names: the DNS add-on's stand-in (service-dns.py says why), on an address of this machine that the pods
# reach through their bridge's gateway; it reads Services with kube-proxy's credentials.
ip addr replace $DNS_IP/32 dev lo
start service-dns python3 $HERE/service-dns.py $DNS_IP 53 $D/etc/kube-proxy.kubeconfig

# --- nodes -------------------------------------------------------------------------------------------------------------
CGROUP_CONTROLLERS=$(awk '$3 == "cgroup" {print $2}' /proc/mounts)
i=0
for n in "${NODES[@]}"; do
  N=$D/nodes/$n; mkdir -p $N/{cni/net.d,cni/ipam,pod-logs,container-logs,kubelet}
  port=$((10250 + 10 * i)); subnet="10.88.$i.0/24"; bridge="mlperfbr$i"
  # Own cgroup root: each kubelet removes pod cgroups it does not know under its root (the other node's pods).
  for ctl in $CGROUP_CONTROLLERS; do
    mkdir -p $ctl/mlperf-$n
    [ -f $ctl/cpuset.cpus ] && { cat $ctl/cpuset.cpus > $ctl/mlperf-$n/cpuset.cpus; cat $ctl/cpuset.mems > $ctl/mlperf-$n/cpuset.mems; }
  done
  cat > $N/containerd.toml <<CT
version = 2
root = "$N/containerd/root"
state = "$N/containerd/state"
[grpc]
  address = "$N/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.4.1"
  # The node runs inside this machine's container: no CAP_SYS_RESOURCE, so runc cannot set oom_score_adj=-998.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      # Every container starts from this spec: the SUT environment's read-only mounts and the node's CPU (below).
      base_runtime_spec = "$N/base-spec.json"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$N/cni/net.d"
CT
  cat > $N/cni/net.d/10-mlperf.conflist <<CN
{"cniVersion": "0.4.0", "name": "mlperf-$n", "plugins": [{"type": "bridge", "bridge": "$bridge", "isGateway": true,
  "ipMasq": false, "ipam": {"type": "host-local", "ranges": [[{"subnet": "$subnet"}]], "routes": [{"dst": "0.0.0.0/0"}],
  "dataDir": "$N/cni/ipam"}}]}
CN
  cat > $N/kubelet.yaml <<KY
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $((port - 2))
cgroupRoot: /mlperf-$n
cgroupDriver: cgroupfs
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
failSwapOn: false
# A shared development machine: never evict pods for its disk or memory use, never collect the imported images.
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
KY
  # containerd and kubelet share one private mount namespace where /var/log/pods and /var/log/containers are the
  # node's own folders; everything mounted there (volumes, overlays, netns) disappears with its processes.
  cat > $N/run.sh <<RS
#!/bin/bash
set -e
mount --make-rprivate /
mount --bind $N/pod-logs /var/log/pods
mount --bind $N/container-logs /var/log/containers
# No registry is reachable from these machines and none may be tried: every pull goes to a closed loopback port
# and fails at once (ErrImagePull), so a missing image is a fast, local failure. The images are imported instead.
HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY= https_proxy= http_proxy= no_proxy= \\
  nice -n 10 containerd --config $N/containerd.toml > $D/logs/containerd-$n.log 2>&1 < /dev/null &
echo \$! > $D/pids/containerd-$n.pid
for _ in \$(seq 600); do ctr -a $N/containerd.sock version >/dev/null 2>&1 && break; sleep 0.1; done
for image in $C/images/pause.tar $C/images/busybox.tar $D/images/*.tar; do   # the SUT image holds its base
  [ -f "\$image" ] && ctr -a $N/containerd.sock -n k8s.io images import "\$image" >/dev/null
done
echo ready > $N/images-imported
exec $N/kubelet.sh
RS
  # The kubelet alone (node.sh stops it and starts it again in the node's namespace: a node failure and repair).
  cat > $N/kubelet.sh <<KS
#!/bin/bash
exec nice -n 10 $C/bin/kubelet --kubeconfig=$D/etc/$n.kubeconfig --config=$N/kubelet.yaml --container-runtime=remote \
  --container-runtime-endpoint=unix://$N/containerd.sock --root-dir=$N/kubelet --cert-dir=$N/pki \
  --hostname-override=$n --node-ip=127.0.0.1 \
  --node-labels=nvidia.com/gpu.present=true,nvidia.com/gpu.product=Local-Emulated-GPU,nvidia.com/gpu.count=1
KS
  chmod +x $N/run.sh $N/kubelet.sh
  i=$((i + 1))
done
mkdir -p /var/log/pods /var/log/containers $D/images
"$HERE/sut-image.sh" "$C" "$D/images" "$REPO"
# The base OCI spec of every container on a node: containerd's default, plus the SUT image's contents that are bound
# in from this machine (sut-image.sh says why) and the node's CPU for vLLM's CPU build (its KV cache size, and one
# core of its own per node, as two machines would have; vLLM's default binds every engine to core 0). Set by the node,
# like a GPU node's device plugin hands a container its devices: the pods' specs are exactly the DAG's.
i=0
for n in "${NODES[@]}"; do
  ctr oci spec | python3 -c '
import json, sys
spec, mounts, core = json.load(sys.stdin), json.load(open(sys.argv[1])), sys.argv[2]
spec["mounts"] += [{"destination": m["mount_path"], "source": m["host_path"], "type": "bind",
                    "options": ["rbind", "ro"]} for m in mounts]
spec["process"]["env"] = spec["process"].get("env") or []
spec["process"]["env"] += ["VLLM_CPU_KVCACHE_SPACE=1", "VLLM_CPU_OMP_THREADS_BIND=" + core]
# No rlimits: containerd'"'"'s default spec caps open files at 1024, fewer than the coordinator'"'"'s HTTP client needs;
# without them a container has the node'"'"'s own limit, as containers on a production node commonly do.
spec["process"].pop("rlimits", None)
json.dump(spec, sys.stdout, indent=1)' "$D/images/sut-mounts.json" $((i % $(nproc))) > $D/nodes/$n/base-spec.json
  i=$((i + 1))
done
for n in "${NODES[@]}"; do
  nohup unshare --mount $D/nodes/$n/run.sh > $D/logs/kubelet-$n.log 2>&1 < /dev/null & pid=$!
  echo $pid > $D/pids/kubelet-$n.pid
  # The node's mount namespace: down.sh ends every process in it (containerd's shims and containers included).
  host_ns=$(readlink /proc/self/ns/mnt); node_ns=$host_ns; t0=$SECONDS
  while [ "$node_ns" = "$host_ns" ] || [ -z "$node_ns" ]; do
    (( SECONDS - t0 < 60 )) || fail "$n did not get its own mount namespace"
    sleep 0.1; node_ns=$(readlink /proc/$pid/ns/mnt 2>/dev/null || true)
  done
  echo "$node_ns" > $D/pids/mntns-$n
done

# --- node status: addresses and the (emulated) GPU ---------------------------------------------------------------------
for n in "${NODES[@]}"; do
  wait_for "node $n" sh -c "$KUBECTL get node $n | grep -qw Ready"
  # kubelet refuses a loopback --node-ip, so InternalIP (which `kubectl logs` goes through) is set here; the kubelet
  # port in the node's status tells the API server which of the two kubelets on 127.0.0.1 to call.
  curl -sfk -o /dev/null -X PATCH -H "Authorization: Bearer $ADMIN_TOKEN" -H "Content-Type: application/merge-patch+json" \
    https://127.0.0.1:6443/api/v1/nodes/$n/status \
    -d '{"status":{"addresses":[{"type":"InternalIP","address":"127.0.0.1"},{"type":"Hostname","address":"'$n'"}],"capacity":{"nvidia.com/gpu":"1"}}}'
  wait_for "nvidia.com/gpu on $n" sh -c "$KUBECTL get node $n -o jsonpath='{.status.allocatable.nvidia\.com/gpu}' | grep -qx 1"
done

# --- the project's manifests -----------------------------------------------------------------------------------------
wait_for "namespace default's service account" $KUBECTL -n default get serviceaccount default
$KUBECTL apply -k "$REPO/deploy" >/dev/null
# Local PersistentVolumes for deploy/storage.yaml's claims. `local` volumes need node affinity: both nodes, since
# both are this machine (on a real cluster these are ReadWriteMany network volumes, reachable from every node).
# claimRef pre-binds each volume to its claim; no storage class, as the claims name none.
for v in model:mlperf-model:64Gi dataset:mlperf-dataset:4Gi artifacts:mlperf-artifacts:500Gi; do
  IFS=: read dir claim size <<<"$v"
  cat <<PV
apiVersion: v1
kind: PersistentVolume
metadata:
  name: local-$claim
  labels: {app.kubernetes.io/name: mlperf-llama31-8b, app.kubernetes.io/component: local-cluster}
spec:
  capacity: {storage: $size}
  accessModes: [ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {namespace: $NS, name: $claim}
  local: {path: $D/volumes/$dir}
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [${NODES[0]}, ${NODES[1]}]}]
---
PV
done | $KUBECTL apply -f - >/dev/null
for claim in mlperf-model mlperf-dataset mlperf-artifacts; do
  wait_for "claim $claim bound" sh -c "$KUBECTL -n $NS get pvc $claim -o jsonpath='{.status.phase}' | grep -qx Bound"
done
wait_for "service account $NS/airflow" $KUBECTL -n $NS get serviceaccount airflow
echo "local cluster: ready in $((SECONDS - T0)) s; nodes ${NODES[*]}; namespace $NS"
echo "  export KUBECONFIG=$D/etc/admin.kubeconfig; $D/bin/kubectl get nodes"
