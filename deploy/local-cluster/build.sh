#!/bin/bash
# Builds (once) everything the local cluster needs into a cache that outlives the clone:
#   Kubernetes v1.20.2 from Debian's `kubernetes` source package (kube-apiserver, -controller-manager, -scheduler,
#   kubelet, kubectl, kube-proxy), and three images packed without a registry (mkimage.py): the sandbox `pause`, a
#   busybox image for helper pods, and a Debian bookworm base with Python 3.11 (debootstrap) for the SUT.
# usage: build.sh [CACHE_DIR]      (default: $MLPERF_CLUSTER_CACHE or /var/cache/mlperf-k8s)
# Why this version: it is the newest Kubernetes whose complete source (vendor/ included) a Debian registry serves;
# 1.2x/1.3x need the Go module proxy, which these machines do not reach. Cold: ~7-25 min on 2 cores (-p 1, nice 19,
# depending on the other load); warm: a no-op. Delete CACHE_DIR to rebuild.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
C=${1:-${MLPERF_CLUSTER_CACHE:-/var/cache/mlperf-k8s}}
K8S_VERSION=v1.20.2
STAMP=$C/.built-$K8S_VERSION-3            # bump the suffix when this script's outputs change
BINARIES="kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy"
# A binary added to the list after a cache was made is built into that cache (only it: the others are kept).
cached() { [ -f "$STAMP" ] && for b in $BINARIES; do [ -x $C/bin/$b ] || return 1; done; }
cached && { echo "local cluster: cached build in $C"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "build.sh: run as root (apt-get, debootstrap)" >&2; exit 1; }
mkdir -p $C/{bin,images,logs,src,gopath/src/k8s.io,apt/lists/partial,apt/cache/archives/partial}
T0=$(date +%s); tp() { echo "local cluster build: $1 at $(( $(date +%s) - T0 )) s" | tee -a $C/logs/timings.txt; }
export DEBIAN_FRONTEND=noninteractive
"$HERE/packages.sh"
tp packages
# Source: Debian's `kubernetes` source package through a private deb-src list built from the machine's own mirrors.
MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
SEC=$(awk '/^URIs:/{u=$2} END{print u}' /etc/apt/sources.list.d/debian.sources)
printf 'deb-src %s bookworm main\ndeb-src %s bookworm-security main\n' "$MIRROR" "$SEC" > $C/apt/sources.list
APTO="-o Dir::Etc::SourceList=$C/apt/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$C/apt/lists -o Dir::Cache=$C/apt/cache"
if ! ls -d $C/src/kubernetes-1.*/ >/dev/null 2>&1; then
  nice -n 19 apt-get $APTO update -q >/dev/null
  (cd $C/src && nice -n 19 apt-get $APTO source --download-only kubernetes >/dev/null)
  nice -n 19 tar xzf $C/src/kubernetes_*.orig.tar.gz -C $C/src
fi
K8S=$(ls -d $C/src/kubernetes-1.*/ | head -1); K8S=${K8S%/}
# Vendored reflect2 v1.0.1 crashes under Go >= 1.18 (apiserver 'fatal error: fault' in JSON encoding): Debian's 1.0.2.
rm -rf $K8S/vendor/github.com/modern-go/reflect2 && mkdir $K8S/vendor/github.com/modern-go/reflect2
cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.{go,s} $K8S/vendor/github.com/modern-go/reflect2/
ln -sfn $K8S $C/gopath/src/k8s.io/kubernetes
tp source
# GOPATH mode: 1.20 predates module builds; vendor/ has every dependency, nothing is fetched.
export GOCACHE=$C/gocache GOPATH=$C/gopath GO111MODULE=off CGO_ENABLED=0 GOPROXY=off GOFLAGS=
P=${BUILD_P:-1}
cd $C/gopath/src/k8s.io/kubernetes
if [ ! -f pkg/generated/openapi/zz_generated.openapi.go ]; then
  # The generated OpenAPI definitions are not in the tarball: run the vendored generator over the tagged packages.
  nice -n 19 go build -p $P -o $C/bin/openapi-gen k8s.io/kubernetes/vendor/k8s.io/kube-openapi/cmd/openapi-gen
  stg=$(for l in vendor/k8s.io/*; do if [ -L $l ]; then echo $l; fi; done | grep -v -e code-generator -e sample-apiserver)
  dirs=$( { find . \( -path ./vendor -o -path ./staging -o -path './_*' -o -path './.*' -o -name testdata \) -prune -o -name '*.go' -print; find -L $stg -name testdata -prune -o -name '*.go' -print; } | { xargs grep -l '^// *+k8s:openapi-gen=' || true; } | xargs -n1 dirname | sed 's#^\./##' | LC_ALL=C sort -u )
  nice -n 19 $C/bin/openapi-gen -i "$(echo "$dirs" | sed 's#^#k8s.io/kubernetes/#' | paste -sd,)" -p k8s.io/kubernetes/pkg/generated/openapi \
    -O zz_generated.openapi -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -r $C/logs/openapi-violations.report >$C/logs/openapi-gen.log 2>&1
  tp openapi-generated
fi
V=k8s.io/kubernetes/vendor/k8s.io
LDF="-s -w -X $V/component-base/version.gitVersion=$K8S_VERSION -X $V/component-base/version.gitMajor=1 -X $V/component-base/version.gitMinor=20 -X $V/client-go/pkg/version.gitVersion=$K8S_VERSION"
for c in $BINARIES; do
  [ -x $C/bin/$c ] || { nice -n 19 go build -p $P -ldflags "$LDF" -o $C/bin/$c.tmp k8s.io/kubernetes/cmd/$c && mv $C/bin/$c.tmp $C/bin/$c; tp "built $c"; }
done
cd $C
# Images, packed as docker-archive tarballs without a registry or an engine (mkimage.py), imported by `ctr`.
rm -rf images/pause-root images/bb && mkdir -p images/pause-root images/bb/bin images/bb/tmp
nice -n 19 gcc -Os -static -DVERSION=v3.4.1 -o images/pause-root/pause $K8S/build/pause/linux/pause.c && strip images/pause-root/pause
cp /bin/busybox images/bb/bin/
for a in sh echo cat ls sleep env date true printf kill test mkdir; do ln -sf busybox images/bb/bin/$a; done
python3 $HERE/mkimage.py images/pause-root registry.k8s.io/pause:3.4.1 images/pause.tar /pause >/dev/null
python3 $HERE/mkimage.py images/bb localhost/busybox:mlperf images/busybox.tar >/dev/null
tp images-pause-busybox
# The SUT's base: Debian bookworm (the same release and Python 3.11 as the hosts that build .venv-sut) plus the
# libraries vLLM's CPU build loads, lscpu (procps, util-linux) and g++ (torch's inductor compiles vLLM's CPU graph when
# the engine starts). The SUT image is made from it by sut-image.sh.
if [ ! -f images/debian-python.tar ]; then
  rm -rf rootfs
  nice -n 19 debootstrap --variant=minbase --include=python3.11,libgomp1,libnuma1,ca-certificates,procps,g++ \
    bookworm rootfs "$MIRROR" >logs/debootstrap.log 2>&1
  rm -rf rootfs/var/cache/apt/archives/*.deb rootfs/var/lib/apt/lists/*_Packages
  nice -n 19 python3 $HERE/mkimage.py rootfs localhost/debian-python:bookworm images/debian-python.tar >/dev/null
  rm -rf rootfs
  tp image-debian-python
fi
rm -rf $C/gocache $C/gopath/pkg      # 1.6 GB of Go build cache: the binaries are what is kept
touch "$STAMP"
tp done
