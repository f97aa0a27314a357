#!/usr/bin/env bash
# Builds an offline bundle of vLLM 0.26.0 + MLPerf LoadGen for the lent GPU host (Python 3.12, torch 2.11.0 + CUDA 13,
# no network; vLLM 0.26.0 is the last release that pins torch 2.11.0), in parts that fit the device tool's transfers.
#   usage: tools/gpu/build_vllm_bundle.sh [OUTDIR]     (default .gpu-bundle, git-ignored; ~5 min, ~2 GB of /tmp)
# It holds the vLLM tree without the kernels Hopper does not use (FA2: Hopper runs FA3; SM100 attention; DeepGEMM's
# headers and its builds for other Pythons; the Rust router) and the packages the host's image lacks for
#   - the offline path (LLM, AsyncLLM): pyzmq, msgspec, cbor2, pybase64, pydantic, openai, compressed-tensors, ...
#   - `mlperf_sut serve` (vllm.entrypoints.openai.api_server): uvicorn, prometheus-fastapi-instrumentator,
#     model-hosting-container-standards (+ jmespath, supervisor), watchfiles, python-multipart; found by following
#     the module-level imports from api_server through vLLM's tree and comparing with the image's package list
#     (/work/.library/device/KINDS.md); fastapi and starlette were in the bundle already
#   - the SUT's result.json check: jsonschema and its dependencies
#   - LoadGen (mlcommons-loadgen)
# xz-compressed and split into parts of at most PART_MB MiB (default 48: a part plus the working tree, ~9 MiB with
# reference/ on 2026-11-30, stays under the 64 MiB a device call carries; at 56 it no longer did). Also writes
# SHA256 of the whole archive and unpack.sh.
# On the GPU host, with the parts gathered in one folder DIR:  bash DIR/unpack.sh DEST   ->   DEST/vsite, then run with
#   PYTHONPATH=DEST/vsite VLLM_USE_FLASHINFER_SAMPLER=0 (flashinfer is not in the bundle).
set -euo pipefail
out=${1:-.gpu-bundle}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
plat=(--no-deps --only-binary=:all: --python-version 3.12 --implementation cp)
for p in manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_24_x86_64 \
         manylinux_2_26_x86_64 manylinux_2_27_x86_64 manylinux_2_31_x86_64 manylinux1_x86_64 manylinux_2_5_x86_64; do
  plat+=(--platform "$p")
done
offline=(vllm==0.26.0 pyzmq==27.3.0 msgspec==0.22.0 cbor2==6.3.0 pybase64==1.5.1 cachetools==8.0.2
         pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
         typing-extensions==4.16.0 openai==2.54.0 distro==1.9.0 sniffio==1.3.1 openai-harmony==0.0.8
         fastapi==0.136.3 starlette==1.10.0 partial-json-parser==0.2.1.1.post7 llguidance==1.7.6 xgrammar==0.2.7
         apache-tvm-ffi==0.1.10 compressed-tensors==0.17.0 loguru==0.7.3 mlcommons-loadgen==6.0.17)
serve=(uvicorn==0.54.0 prometheus-fastapi-instrumentator==8.1.0 model-hosting-container-standards==0.1.16
       jmespath==1.1.0 supervisor==4.3.0 watchfiles==1.3.0 python-multipart==0.0.34)
schema=(jsonschema==4.25.1 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==0.30.0)
python3 -m pip download -q "${plat[@]}" -d "$work/wheels" "${offline[@]}" "${serve[@]}" "${schema[@]}"
mkdir -p "$work/vsite"
for w in "$work"/wheels/*.whl; do
  python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$w" "$work/vsite"
done
rm -rf "$work/vsite/vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so" "$work/vsite/vllm/vllm-rs" \
       "$work/vsite/vllm/third_party/fmha_sm100" "$work/vsite/vllm/third_party/deep_gemm/include" \
       "$work"/vsite/vllm/third_party/deep_gemm/_C.cpython-3{10,11,13,14}-*.so
bash "$(dirname "$0")/pack_bundle.sh" "$work" vsite "$out"
