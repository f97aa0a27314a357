#!/bin/bash
# The SUT image from sut_image/Dockerfile itself, CPU flavour, built with Debian's docker.io engine and no registry:
#   1. the base: the Debian bookworm + Python 3.11 image build.sh debootstraps (CACHE_DIR/images/debian-python.tar),
#      loaded into the engine as localhost/debian-python:bookworm;
#   2. the wheelhouse sut_image/wheels/ (git-ignored): requirements.txt's wheels (pip download, from the registry
#      this machine reaches or pip's cache) and Python's headers (libpython3.11-dev, which torch's inductor needs),
#      so the build itself runs with --network none;
#   3. docker build --build-arg FLAVOUR=cpu --build-arg BASE=localhost/debian-python:bookworm -t mlperf-sut:cpu;
#   4. with --import, `docker save` and `ctr -n k8s.io images import` into every node of the running local cluster
#      (make cluster), where a pod can then name the image docker.io/library/mlperf-sut:cpu.
# A private engine (data root /var/lib/docker-mlperf, no bridge, no iptables) is started when none answers and
# stopped at the end. Measured here (2 cores, busy): build 1 min 47 s warm wheel cache, image 4.8 GB; the SUT ran
# Offline from it on the tiny model (VALID). Not used by `make test-cluster`: see the README for why.
# usage: sut-image-docker.sh [--import] [CACHE_DIR]      (as root)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
IMPORT=; [ "${1:-}" = --import ] && { IMPORT=1; shift; }
C=${1:-${MLPERF_CLUSTER_CACHE:-/var/cache/mlperf-k8s}}
D=${MLPERF_CLUSTER_DIR:-$REPO/.cache/cluster}
[ "$(id -u)" = 0 ] || { echo "sut-image-docker.sh: run as root (dockerd)" >&2; exit 1; }
[ -f "$C/images/debian-python.tar" ] || { echo "no base image in $C: run deploy/local-cluster/build.sh" >&2; exit 1; }
command -v dockerd >/dev/null || { echo "install Debian's docker.io (dockerd)" >&2; exit 1; }
started=
if ! docker info >/dev/null 2>&1; then
  dockerd --data-root /var/lib/docker-mlperf --bridge=none --iptables=false >"$C/logs/dockerd.log" 2>&1 &
  started=$!
  trap '[ -n "$started" ] && kill $started' EXIT
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
docker image inspect localhost/debian-python:bookworm >/dev/null 2>&1 || docker load -i "$C/images/debian-python.tar"
W=$REPO/sut_image/wheels
mkdir -p "$W"
grep -v '^pytest' "$REPO/sut_image/requirements.txt" >"$W/.requirements"
"$REPO/.venv-sut/bin/pip" download -q --only-binary=:all: -d "$W" -r "$W/.requirements" \
  -c "$REPO/sut_image/constraints.txt" pip setuptools
rm -f "$W/.requirements"
ls "$W"/libpython3.11-dev_*.deb >/dev/null 2>&1 || (cd "$W" && apt-get download -q libpython3.11-dev 2>/dev/null)
T0=$(date +%s)
DOCKER_BUILDKIT=0 docker build --network none -q --build-arg FLAVOUR=cpu \
  --build-arg BASE=localhost/debian-python:bookworm -t mlperf-sut:cpu "$REPO/sut_image"
echo "sut image: mlperf-sut:cpu built in $(( $(date +%s) - T0 )) s, $(docker image inspect -f '{{.Size}}' mlperf-sut:cpu | awk '{printf "%.1f GB", $1/1e9}')"
if [ -n "$IMPORT" ]; then
  socks=$(ls "$D"/nodes/*/containerd.sock 2>/dev/null) || { echo "no local cluster running in $D: make cluster" >&2; exit 1; }
  T0=$(date +%s); tar=/var/tmp/mlperf-sut-cpu.tar     # outside the clone: up.sh imports every tar of $D/images
  docker save -o $tar mlperf-sut:cpu
  for sock in $socks; do ctr -a "$sock" -n k8s.io images import $tar >/dev/null; done
  rm -f $tar
  echo "sut image: docker.io/library/mlperf-sut:cpu imported into $(echo "$socks" | wc -l) nodes in $(( $(date +%s) - T0 )) s"
fi
