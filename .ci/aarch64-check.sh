#!/usr/bin/env bash
# The op tests on aarch64 (issue 26, item 3): cross-builds llamacpp-ops' tests for
# aarch64-unknown-linux-gnu with ggml's NEON kernels for dot-product and int8 matrix-multiply
# CPUs compiled in (armv8.2-a+dotprod+i8mm), and runs them under qemu-user emulating a CPU
# that has both. This checks correctness on ARM (the repacked Q4_0 layouts ARM picks, the
# grouped expert matmuls, GDN, conv, concat, binary ops); emulated time says nothing of speed.
#
#   bash .ci/aarch64-check.sh [--upstream] [cargo test filter args...]
# (from the workspace root; builds in target/aarch64)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --upstream ]; then export LLAMACPP_SYS_PATCHES=none; shift; fi
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
need=()
command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
target=aarch64-unknown-linux-gnu
rustup target list --installed | grep -qx "$target" || rustup target add "$target"

export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# -cpu max: every extension qemu emulates, dot product and int8 matrix multiply among them
# (ggml reads them from the auxiliary vector at run time, as on a real CPU). sve=off: on a CPU
# with 256-bit SVE ggml picks its SVE Q4_0 layout, whose kernel this non-SVE build lacks (a
# generic C loop would run instead of the NEON kernels this check is for).
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu max,sve=off -L /usr/aarch64-linux-gnu"
export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--sysroot=/usr/aarch64-linux-gnu"
export LLAMACPP_SYS_CMAKE_ARGS="-DGGML_CPU_ARM_ARCH=armv8.2-a+dotprod+i8mm"
export CARGO_TARGET_DIR=target/aarch64
cargo test -p llamacpp-ops --target "$target" "$@"
