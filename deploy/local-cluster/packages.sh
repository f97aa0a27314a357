#!/bin/bash
# Debian packages the local cluster needs (idempotent; only missing ones are installed).
set -euo pipefail
PKGS="golang-go etcd-server containerd runc containernetworking-plugins debootstrap iptables conntrack busybox-static
  golang-github-modern-go-reflect2-dev gcc libc6-dev util-linux iproute2 curl openssl dpkg-dev"
missing=$(for p in $PKGS; do dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q 'ok installed' || echo $p; done)
[ -z "$missing" ] && exit 0
[ "$(id -u)" = 0 ] || { echo "install as root: $missing" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
nice -n 19 apt-get install -y -q --no-install-recommends $missing >/dev/null
