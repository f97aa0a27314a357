#!/usr/bin/env bash
# Builds an offline bundle of the Airflow side (requirements.txt at constraints.txt's versions: Airflow, the
# providers, the results pipeline) for a GPU host with Python 3.12 and no network, so that Airflow itself runs the
# benchmark DAG there (python -m include.apps.host; README "One GPU host without Kubernetes").
#   usage: tools/gpu/build_airflow_bundle.sh [OUTDIR]   (default .gpu-bundle/airflow, git-ignored; ~2 min)
# Needs Python 3.12 here (pip installs the wheels into the bundle's folder as that Python would): PYTHON312, default
# python3.12.
# Left out, because the GPU host's image has them (/work/.library/device/KINDS.md's package list) and the bundle
# must fit few device transfers: numpy, scipy, transformers, tokenizers, safetensors, huggingface-hub, hf-xet, pillow.
# rouge-score is published as a source archive only: built here as a (pure Python) wheel.
# xz-compressed, split into parts of at most PART_MB MiB (default 48: a part plus the working tree stays under the
# 64 MiB a device call carries); writes SHA256 and unpack.sh beside them.
# On the GPU host, with the parts gathered in one folder DIR:  bash DIR/unpack.sh DEST   ->   DEST/asite, then
#   PYTHONPATH=DEST/asite python3 -m include.apps.host ...
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-.gpu-bundle/airflow}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
plat=(--only-binary=:all: --python-version 3.12 --implementation cp)
for p in manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_24_x86_64 manylinux_2_26_x86_64 \
         manylinux_2_27_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64 manylinux1_x86_64 manylinux_2_5_x86_64; do
  plat+=(--platform "$p")
done
grep -v '^rouge-score' requirements.txt > "$work/requirements.txt"
python3 -m pip download -q "${plat[@]}" -r "$work/requirements.txt" -c constraints.txt -d "$work/wheels"
python3 -m pip wheel -q --no-deps -c constraints.txt -w "$work/wheels" rouge-score
for name in numpy scipy transformers tokenizers safetensors huggingface_hub hf_xet pillow; do
  rm -f "$work"/wheels/"$name"-[0-9]*.whl
done
"${PYTHON312:-python3.12}" -m pip install -q --no-index --no-deps --no-compile --target "$work/asite" "$work"/wheels/*.whl
bash "$(dirname "$0")/pack_bundle.sh" "$work" asite "$out"
