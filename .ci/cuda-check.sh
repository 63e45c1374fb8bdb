#!/usr/bin/env bash
# Compile-checks the CUDA sources the patch series touches, for sm_90 (H100), without a GPU: writes the
# patched tree, configures ggml-cuda with CMake and the wheel-based compiler of cuda-toolkit.sh, and builds
# the object file of every ggml-cuda .cu a patch changes (a changed .cuh brings every .cu including it),
# plus ggml-cuda.cu, where the supports_op answers live. Nothing is linked and nothing runs.
#   usage: cuda-check.sh [--upstream] [--arch 90-real]   (from the workspace root; build in target/cuda-check)
set -euo pipefail
cd "$(dirname "$0")/.."
variant=patched arch=90-real
while [ $# -gt 0 ]; do
  case "$1" in
    --upstream) variant=upstream ;;
    --arch) arch=$2; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
toolkit=$($SUDO bash .ci/cuda-toolkit.sh "${CUDA_TOOLKIT_PREFIX:-$HOME/.cache/cuda-toolkit}" | tail -n1)

out=target/cuda-check/$variant
src=$out/src
build=$out/build
tree_args=(--force)
[ "$variant" = upstream ] && tree_args+=(--upstream)
mkdir -p "$src"
cargo patches tree "${tree_args[@]}" "$src" >/dev/null

cmake -S "$src" -B "$build" -Wno-dev -DCMAKE_BUILD_TYPE=Release \
  -DGGML_CUDA=ON -DCMAKE_CUDA_COMPILER="$toolkit/bin/nvcc" -DCUDAToolkit_ROOT="$toolkit" \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" -DGGML_NATIVE=OFF -DGGML_CCACHE=ON -DGGML_BACKEND_DL=OFF \
  -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF >"$out/cmake.log"

# The ggml-cuda files the series touches (the same list for both variants, so that a failure in the
# patched build can be told from one upstream already has).
cuda=ggml/src/ggml-cuda
mapfile -t touched < <(grep -v '^#' llamacpp-sys/patches/series | sed '/^$/d' | sed 's|^|llamacpp-sys/patches/|' | xargs cat \
  | sed -n "s|^+++ b/$cuda/||p" | sort -u)
files=(ggml-cuda.cu)
for f in "${touched[@]}"; do
  case "$f" in
    *.cu) files+=("$f") ;;
    *.cuh) while IFS= read -r g; do files+=("${g#"$src/$cuda/"}"); done \
             < <(grep -rl --include='*.cu' "$(basename "$f")" "$src/$cuda") ;;
  esac
done
mapfile -t files < <(printf '%s\n' "${files[@]}" | sort -u)
targets=()
for f in "${files[@]}"; do targets+=("${f%.cu}.o"); done
echo "compile-checking ${#targets[@]} ggml-cuda source(s) of the $variant tree for sm_${arch%-*}: ${files[*]}"
make -s -C "$build/$cuda" -j"$(nproc)" "${targets[@]}"
echo "CUDA compile check ($variant): ok"
