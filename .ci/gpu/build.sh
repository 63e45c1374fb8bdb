#!/usr/bin/env bash
# Builds, on a machine without a GPU, what .ci/gpu/run.sh runs on a CUDA machine without Rust: the
# patched and upstream llama.cpp as shared libraries with ggml-cuda for sm_90 (H100/H200), compiled by
# the wheel-based nvcc of cuda-toolkit.sh, plus llama-bench, the op tests and gpu_logits built with the
# `cuda` features; then packs them into .gpu/ (git-ignored).
# The two CUDA builds take about 45 minutes on 2 cores (ccache shares nothing between the variants:
# the series changes ggml.h, which every ggml-cuda file includes).
#   usage: .ci/gpu/build.sh   (from the workspace root)   then carry .gpu to the GPU machine and run
#          `bash .gpu/run.sh` there
set -euo pipefail
cd "$(dirname "$0")/../.."
tk=$(bash .ci/cuda-toolkit.sh "${CUDA_TOOLKIT_PREFIX:-$HOME/.cache/cuda-toolkit}" | tail -n1)
export CARGO_TARGET_DIR=target/cuda CMAKE_CUDA_ARCHITECTURES=${CMAKE_CUDA_ARCHITECTURES:-90-real}
export CUDA_PATH=$tk LLAMACPP_SYS_CMAKE_ARGS="-DCMAKE_CUDA_COMPILER=$tk/bin/nvcc -DCUDAToolkit_ROOT=$tk"
# libggml-cuda.so names only libcudart (the cuBLAS and driver stubs have no symbols), so its cuBLAS
# and driver symbols stay undefined until run.sh preloads the real libraries.
export RUSTFLAGS="-C link-arg=-Wl,--allow-shlib-undefined"
features=llamacpp-sys/cuda,llamacpp/cuda,llamacpp-ops/cuda
cargo test --release --no-run -p llamacpp-bench -p llamacpp-ops -p llamacpp --no-default-features --features "$features"
cargo build --release -p llamacpp-bench --no-default-features --features llamacpp-sys/cuda

t=$CARGO_TARGET_DIR/release
newest() { find "$t/deps" -maxdepth 1 -type f -executable -name "$1-*" -printf '%T@ %p\n' | sort -n | tail -n1 | cut -d' ' -f2; }
rm -rf .gpu/bin && mkdir -p .gpu/bin
cp "$t/llama-bench" .gpu/bin/
for test in gated_delta_net unary_views mul_mat_id sum_rows concat; do cp "$(newest "$test")" ".gpu/bin/ops-$test"; done
cp "$(newest gpu_logits)" .gpu/bin/gpu_logits
strip .gpu/bin/*
cp .ci/gpu/run.sh .gpu/
# The binaries find the libraries at the absolute paths they were built at: run.sh unpacks them there.
for v in patched upstream; do ls -d "$PWD/$t"/build/llamacpp-sys-*/out/$v/lib; done >.gpu/libdirs
tar -cJf .gpu/bundle.tar.xz $(cat .gpu/libdirs)
du -sh .gpu
