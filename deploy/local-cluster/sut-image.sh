#!/bin/bash
# The SUT image of the local cluster: `mlperf-sut:latest` (KubernetesSettings' default MLPERF_SUT_IMAGE), made from
# the Debian bookworm + Python 3.11 base that build.sh debootstraps, plus one layer: the mount points and the
# non-root user of sut_image/Dockerfile. The SUT itself (vLLM's CPU build, LoadGen, mlperf_sut) is NOT copied in:
# each node binds this machine's .venv-sut, its Python and sut_image/ read-only into every container (its base
# runtime spec, made by up.sh from OUTDIR/sut-mounts.json), so the pods' specs stay exactly the DAG's. Why: that venv is ~3.5 GB (torch + vLLM); packing it and importing it into both nodes'
# containerd costs ~14 GB of disk and minutes on every cold CI run, for bytes the host already has (see the README).
# usage: sut-image.sh CACHE_DIR OUTDIR REPO
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
C=$1; OUT=$2; REPO=$3
VENV=$REPO/.venv-sut
[ -f "$VENV/pyvenv.cfg" ] || { echo "sut-image.sh: no SUT environment in $VENV: run \`make venvs\` first" >&2; exit 1; }
HOME_BIN=$(awk -F' = ' '$1 == "home" {print $2}' "$VENV/pyvenv.cfg")
PY_PREFIX=$(cd "$HOME_BIN/.." && pwd -P)   # the interpreter the venv's bin/python links to lives under it
mkdir -p "$OUT"; L=$(mktemp -d "$OUT/.layer.XXXXXX"); trap 'rm -rf "$L"' EXIT
mkdir -p $L/opt/mlperf-sut/venv $L/opt/mlperf-sut/src $L/work $L/etc "$L$PY_PREFIX"
chmod 0755 $L/opt $L/opt/mlperf-sut "$L$PY_PREFIX"
d=$PY_PREFIX; while [ "$d" != / ]; do chmod 0755 "$L$d"; d=$(dirname "$d"); done   # e.g. /root: traversable by uid 10001
chown 10001:10001 $L/work
python3 - "$C/images/debian-python.tar" "$L/etc" <<'PY'
import json, sys, tarfile
base, etc = sys.argv[1:]
with tarfile.open(base) as t:
    (m,) = json.load(t.extractfile("manifest.json"))
    with tarfile.open(fileobj=t.extractfile(m["Layers"][-1])) as layer:
        for name in ("etc/passwd", "etc/group"):
            text = layer.extractfile(name).read().decode()
            line = "mlperf:x:10001:10001::/work:/bin/sh\n" if name.endswith("passwd") else "mlperf:x:10001:\n"
            open(f"{etc}/{name.split('/')[1]}", "w").write(text + line)
PY
python3 "$HERE/mkimage.py" --base "$C/images/debian-python.tar" --user 10001:10001 --workdir /work \
  --env PYTHONPATH=/opt/mlperf-sut/src --env PYTHONUNBUFFERED=1 --env HOME=/work \
  "$L" mlperf-sut:latest "$OUT/mlperf-sut.tar" -- /opt/mlperf-sut/venv/bin/python -m mlperf_sut >/dev/null
cat > "$OUT/sut-mounts.json" <<JS
[{"name": "sut-venv", "host_path": "$VENV", "mount_path": "/opt/mlperf-sut/venv"},
 {"name": "sut-python", "host_path": "$PY_PREFIX", "mount_path": "$PY_PREFIX"},
 {"name": "sut-src", "host_path": "$REPO/sut_image", "mount_path": "/opt/mlperf-sut/src"}]
JS
echo "local cluster: SUT image mlperf-sut:latest in $OUT/mlperf-sut.tar"
