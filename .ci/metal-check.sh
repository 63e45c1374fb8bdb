#!/usr/bin/env bash
# Checks ggml's Metal backend without a Mac, for the GATED_DELTA_NET op:
#  1. compiles every ggml-metal/*.cpp of the tree (C++17; ggml-metal.cpp, the backend interface
#     over the Objective-C context, with -fsyntax-only, the others into metal-emu), and the tree's
#     ggml_metal_device_supports_op cut from ggml-metal-device.m as C (gnu11, the language CMake
#     gives that Objective-C file), so that C++-only syntax there is caught;
#  2. builds ggml for the CPU from the tree (the reference, and ggml itself);
#  3. builds and runs metal-emu (.ci/metal/): each GDN case graph goes through the tree's own Metal
#     host code (supports_op, graph optimizer, fusion table, ggml_metal_op_encode and the pipeline
#     lookup of ggml-metal-device.cpp) onto our CPU implementation of the device API, which runs
#     the tree's kernels/gated_delta_net.metal compiled as C++ through an MSL shim, one OS thread
#     per Metal thread with real SIMD-group rendezvous; the results must match the CPU backend's
#     (NMSE <= 1e-10; observed about 1e-14, see .ci/metal/main.cpp).
# What it cannot see: no MSL compiler runs, and the shim accepts C++, so MSL-only errors (and
# what only Apple's compiler rejects) pass; Objective-C code is not compiled (only supports_op's
# text, which is plain C); threadgroups run one after another, so races between threadgroups
# cannot show (concurrent dispatches run in reverse order, which does expose a missing barrier);
# GPU float math (fast-math exp, FMA contraction) differs from the CPU's within the threshold.
# The in-place state and q/k L2 norm forms of the patched API are built and compared where the
# tree's ggml.h has them; the Metal supports_op may reject them (REJECTED, not run), which
# --require-supported turns into a failure.
#   usage: metal-check.sh [--upstream] [--tree DIR] [--require-supported]
#          (from the workspace root; builds in target/metal-check/<patched|upstream|tree-NAME>)
set -euo pipefail
cd "$(dirname "$0")/.."

variant=patched tree= emu_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --upstream) variant=upstream ;;
    --tree) tree=$(realpath "$2"); shift ;;
    --require-supported) emu_args+=(--require-supported) ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

root=$PWD/target/metal-check
if [ -n "$tree" ]; then
  # an existing tree, left untouched; reached through a link so that the CPU build's paths look
  # like those of the other variants and ccache (base_dir below) reuses their objects
  variant=tree-$(basename "$tree" | tr -c 'A-Za-z0-9_.\n-' _)
  out=$root/$variant
  mkdir -p "$out"
  ln -sfn "$tree" "$out/src"
else
  out=$root/$variant
  tree_args=(--force)
  [ "$variant" = upstream ] && tree_args+=(--upstream)
  mkdir -p "$out/src"
  cargo patches tree "${tree_args[@]}" "$out/src" >/dev/null
fi
src=$out/src
metal=$src/ggml/src/ggml-metal
[ -f "$metal/kernels/gated_delta_net.metal" ] || { echo "no ggml-metal GDN kernel in $src" >&2; exit 1; }
failed=0

echo "== host compile check ($variant)"
# the one host file metal-emu does not link (the others are compiled into it below)
inc=(-I"$src/ggml/include" -I"$src/ggml/src" -I"$metal")
# ggml-metal.cpp uses std::unique_ptr without <memory>: Apple's libc++ pulls it in through
# another header, libstdc++ does not
if g++ -std=c++17 -fsyntax-only "${inc[@]}" -include memory "$metal/ggml-metal.cpp" 2>"$out/syntax.log"; then
  echo "  ok    ggml-metal.cpp"
else
  echo "  FAIL  ggml-metal.cpp"; sed 's/^/        /' "$out/syntax.log"; failed=1
fi

echo "== ggml CPU build ($variant)"
export CCACHE_BASEDIR=$root
cmake -S "$src" -B "$out/ggml-build" -Wno-dev -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF -DGGML_METAL=OFF -DGGML_CCACHE=ON -DGGML_BACKEND_DL=OFF \
  -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF >"$out/cmake.log" 2>&1 \
  || { tail -30 "$out/cmake.log"; exit 1; }
cmake --build "$out/ggml-build" --target ggml-base ggml-cpu -j"$(nproc)" >"$out/ggml-build.log" 2>&1 \
  || { tail -30 "$out/ggml-build.log"; exit 1; }
libs="$out/ggml-build/ggml/src/libggml-cpu.a $out/ggml-build/ggml/src/libggml-base.a"
echo "  ok"

echo "== metal-emu build ($variant)"
# the patched GDN API, where this tree's ggml.h has it; the cases that need it compile only then
defs=
for fn in set_bcast:GDN_HAS_BCAST state_inplace:GDN_HAS_STATE_INPLACE set_qk_l2_norm:GDN_HAS_QK_L2_NORM; do
  # a declaration, not a mention (upstream's ggml.h names set_bcast in a TODO)
  grep -Eq "^ *GGML_API .*ggml_gated_delta_net_${fn%%:*}\(" "$src/ggml/include/ggml.h" && defs+=" -D${fn##*:}"
done
echo "  API:${defs:- none of the patched GDN functions}"
# rewritten only on change, so that make rebuilds the cases only then
printf '%s\n' "$defs" | cmp -s - "$out/defs" 2>/dev/null || printf '%s\n' "$defs" >"$out/defs"
make -s -f .ci/metal/emu.mk -j"$(nproc)" TREE="$src" OUT="$out" GGML_LIBS="$libs" DEFS_FILE="$out/defs" \
  >"$out/emu-build.log" 2>&1 || { tail -40 "$out/emu-build.log"; exit 1; }
echo "  ok: $(cd "$metal" && ls *.cpp | grep -vx ggml-metal.cpp | tr '\n' ' ')(C++17), supports_op of ggml-metal-device.m (C11)"
echo "  ok: $(grep -c '^void ' "$out/emu/stubs.c") aborting stubs for device functions the GDN path does not use"

echo "== GDN cases: Metal host path + emulated kernel vs CPU backend ($variant)"
timeout 300 "$out/metal-emu" "${emu_args[@]}" || failed=1

if [ $failed = 0 ]; then echo "Metal GDN emulation check ($variant): ok"; else echo "Metal GDN emulation check ($variant): FAILED"; fi
exit $failed
