#!/usr/bin/env bash
# Unpacks a CUDA 13.0 compiler into PREFIX from NVIDIA's Python wheels (the Python package registry is
# reachable where the distribution's CUDA is not): nvcc, cicc, ptxas and the headers ggml-cuda includes.
# cuBLAS comes as headers only: its libraries and the driver library are symbol-less stubs with the real
# sonames, so that CMake's FindCUDAToolkit configures ggml-cuda and a shared libggml-cuda links (its
# cuBLAS and driver symbols stay undefined; .ci/gpu/run.sh preloads the real libraries on the GPU
# machine). Enough to compile-check ggml-cuda's sources for an architecture (sm_90 here), and to build
# the shared libraries a GPU machine then runs (.ci/gpu/build.sh).
#   usage: cuda-toolkit.sh [PREFIX]   (default: $HOME/.cache/cuda-toolkit; idempotent; prints PREFIX)
set -euo pipefail
prefix=${1:-$HOME/.cache/cuda-toolkit}
if [ -x "$prefix/bin/nvcc" ] && [ -x "$prefix/nvvm/bin/cicc" ] && [ -f "$prefix/include/cublas_v2.h" ]; then
  echo "$prefix"; exit 0
fi
command -v unzip >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unzip >/dev/null; }
python3 -m pip --version >/dev/null 2>&1 || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
}
# One release, pinned: the wheels split the toolkit the way the CUDA installer's components do.
wheels=(
  nvidia-cuda-nvcc==13.0.88    # nvcc, ptxas, fatbinary, cudafe++
  nvidia-nvvm==13.0.88         # cicc (the device front end) and libdevice
  nvidia-cuda-crt==13.0.88     # crt/ headers nvcc includes
  nvidia-cuda-runtime==13.0.96 # cuda_runtime.h, cuda_fp16.h, cuda.h, libcudart
  nvidia-cuda-cccl==13.0.85    # cub, thrust, libcu++
  nvidia-cublas==13.0.2.14     # cublas_v2.h (only the headers are unpacked)
)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: -d "$work" "${wheels[@]}"
mkdir -p "$work/x"
for w in "$work"/*.whl; do
  case "$w" in
    *cublas*) unzip -q -o "$w" 'nvidia/cu13/include/*' -d "$work/x" ;;
    *) unzip -q -o "$w" -d "$work/x" ;;
  esac
done
rm -rf "$prefix"
mkdir -p "$(dirname "$prefix")"
mv "$work/x/nvidia/cu13" "$prefix"
# nvcc.profile links against lib64; FindCUDAToolkit wants unversioned names and the driver stub.
ln -sfn lib "$prefix/lib64"
ln -sf libcudart.so.13 "$prefix/lib/libcudart.so"
mkdir -p "$prefix/lib/stubs"
echo 'void llama_rs_link_stub(void) {}' >"$work/stub.c"
for stub in lib/libcublas.so:libcublas.so.13 lib/libcublasLt.so:libcublasLt.so.13 \
            lib/stubs/libcuda.so:libcuda.so.1; do
  cc -shared -fPIC -o "$prefix/${stub%%:*}" -Wl,-soname,"${stub#*:}" "$work/stub.c"
done
"$prefix/bin/nvcc" --version | tail -n 2 >&2
echo "$prefix"
