#!/usr/bin/env bash
# Cross-checks the Windows (x86_64-w64-mingw32, MinGW-w64 GCC with posix threads) side of
# llamacpp-sys from Linux, without a Rust Windows target:
#  1. writes the patched (or --upstream) tree and builds llama.cpp's `llama` target (static, the
#     options build/cmake_build.rs passes, GGML_NATIVE=OFF) with a MinGW toolchain file;
#  2. compiles the crate's C++ shim as build/shim.rs does (shim/*.cpp and the tree's JSON-schema
#     converter from common/, -DLLAMACPP_SYS_JSON_SCHEMA) into libllama_sys_shim.a;
#  3. links a small C program the way rustc links for x86_64-pc-windows-gnu (-nodefaultlibs,
#     rustc's MinGW libraries, no advapi32 of its own), with the link lines build/link_plan.rs
#     emits for this install, compiled here by the host rustc: a missing system library or an
#     archive name -l cannot find (ggml.a) fails here;
#  4. runs it under Wine when Wine is installed (--run installs it): backend init, system info,
#     one JSON schema converted and one C++ exception caught inside the shim.
# The x86 baseline is the one a build on Windows gets (AVX2, FMA, F16C, BMI2; see below).
# Debian 12's mingw-w64 10 headers lack THREAD_POWER_THROTTLING_STATE (ggml-cpu.c); for headers
# older than 11 a forced-include header supplies it (C only), and the verdict says so.
# Not covered: MSVC (cl.exe, link.exe, the /MD-/MT choice), Rust code itself, dynamic builds.
#   usage: windows-cross-check.sh [--upstream] [--tree DIR] [--run]
#          (from anywhere; builds in target/windows-cross-check/<patched|upstream|tree-NAME>)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

variant=patched tree= run=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --upstream) variant=upstream ;;
    --tree) tree=$(realpath "$2"); shift ;;
    --run) run=yes ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

stage=setup
verdict() { echo "windows-cross-check: $1 ($variant${notes:+; $notes}) in $((SECONDS - start))s"; }
trap 'rc=$?; [ $rc = 0 ] || verdict "FAIL at $stage"; exit $rc' EXIT
show() { echo "--- last lines of $1"; tail -n "${2:-30}" "$1"; }
notes=

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
apt_install() {
  echo "== installing $*"
  $SUDO apt-get install -y --no-install-recommends "$@" >/dev/null \
    || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends "$@" >/dev/null; }
}
command -v x86_64-w64-mingw32-g++-posix >/dev/null || apt_install g++-mingw-w64-x86-64-posix
CC=x86_64-w64-mingw32-gcc-posix CXX=x86_64-w64-mingw32-g++-posix
wine=$(command -v wine64 || command -v wine || { [ -x /usr/lib/wine/wine64 ] && echo /usr/lib/wine/wine64; } || true)
if [ "$run" = yes ] && [ -z "$wine" ]; then
  apt_install wine64
  wine=$(command -v wine64 || command -v wine || echo /usr/lib/wine/wine64)
fi
ccache=$(command -v ccache || true)

root=$PWD/target/windows-cross-check
stage=tree
if [ -n "$tree" ]; then
  variant=tree-$(basename "$tree" | tr -c 'A-Za-z0-9_.\n-' _)
  out=$root/$variant src=$tree
  mkdir -p "$out"
else
  out=$root/$variant src=$root/$variant/src
  tree_args=(--force)
  [ "$variant" = upstream ] && tree_args+=(--upstream)
  mkdir -p "$src"
  cargo patches tree "${tree_args[@]}" "$src" >/dev/null
fi

# mingw-w64 < 11 lacks the thread power-throttling declarations ggml-cpu.c uses.
mingw_major=$(echo __MINGW64_VERSION_MAJOR | $CC -x c -E -P -include _mingw.h - | tail -n1)
cflags=
if [ "$mingw_major" -lt 11 ]; then
  cat >"$out/mingw-compat.h" <<'EOF'
#include <_mingw.h>
#if __MINGW64_VERSION_MAJOR < 11 && !defined(THREAD_POWER_THROTTLING_CURRENT_VERSION)
#define THREAD_POWER_THROTTLING_CURRENT_VERSION 1
#define THREAD_POWER_THROTTLING_EXECUTION_SPEED 0x1
#define THREAD_POWER_THROTTLING_VALID_FLAGS THREAD_POWER_THROTTLING_EXECUTION_SPEED
typedef struct _THREAD_POWER_THROTTLING_STATE {
    unsigned long Version, ControlMask, StateMask;
} THREAD_POWER_THROTTLING_STATE;
#endif
EOF
  cflags="-include $out/mingw-compat.h"
  notes="mingw-w64 $mingw_major headers, THREAD_POWER_THROTTLING_STATE supplied"
fi
cat >"$out/toolchain.cmake" <<EOF
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER $CC)
set(CMAKE_CXX_COMPILER $CXX)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
EOF

stage=configure
# With GGML_NATIVE=OFF ggml enables SSE4.2/AVX/AVX2/BMI2/FMA/F16C unless CMake cross-compiles
# (or SOURCE_DATE_EPOCH is set): turn them on so that the code a build on Windows compiles is
# what is compiled here.
isa=()
for i in SSE42 AVX AVX2 BMI2 FMA F16C; do isa+=("-DGGML_$i=ON"); done
echo "== llama.cpp for x86_64-w64-mingw32 ($variant, $($CXX -dumpversion), mingw-w64 $mingw_major)"
export CCACHE_BASEDIR=$root
build=$out/build prefix=$out/install
cmake -S "$src" -B "$build" -Wno-dev -DCMAKE_TOOLCHAIN_FILE="$out/toolchain.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="$cflags" -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DCMAKE_INSTALL_LIBDIR=lib -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF \
  "${isa[@]}" \
  -DGGML_BACKEND_DL=OFF -DGGML_CCACHE=ON -DGIT_EXE=OFF -DLLAMA_BUILD_COMMON=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF \
  >"$out/cmake.log" 2>&1 || { show "$out/cmake.log"; exit 1; }
stage=build
jobs=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
t0=$SECONDS
cmake --build "$build" --target llama -j"$jobs" >"$out/build.log" 2>&1 \
  || { grep -m20 -A5 'error' "$out/build.log" || show "$out/build.log"; exit 1; }
cmake --install "$build" >"$out/install.log" 2>&1 || { show "$out/install.log"; exit 1; }
echo "   ok, $((SECONDS - t0))s; $(grep -c 'warning:' "$out/build.log" || true) compiler warnings; lib/: $(cd "$prefix/lib" && ls -- *.a | tr '\n' ' ')"

stage=rpc
# the RPC backend (patches 0026-0029 touch its sockets) is not in the library above, whose link
# plan is the default features': compile its two files for Windows on their own
for f in ggml-rpc.cpp transport.cpp; do
  $CXX -std=c++17 -O1 -c -I"$src/ggml/include" -I"$src/ggml/src" "$src/ggml/src/ggml-rpc/$f" \
    -o "$out/rpc-${f%.cpp}.o" 2>"$out/rpc.log" || { show "$out/rpc.log" 20; exit 1; }
done
echo "   ggml-rpc compiles"

stage=shim
echo "== shim (build/shim.rs's files)"
shim=llamacpp-sys/shim common=$src/common
files=("$shim/shim.cpp" "$shim/boundary.cpp" "$shim/json_schema.cpp" "$shim/common_strings.cpp")
for f in json-schema-to-grammar json-schema json trie unicode; do files+=("$common/$f.cpp"); done
mkdir -p "$out/shim"
objs=()
for f in "${files[@]}"; do
  o=$out/shim/$(basename "$f" .cpp).o
  ${ccache:+$ccache} $CXX -std=c++17 -O2 -w -m64 -ffunction-sections -fdata-sections \
    -DLLAMACPP_SYS_JSON_SCHEMA -I"$src/include" -I"$src/ggml/include" -I"$common" -I"$src/vendor" \
    -c "$f" -o "$o" 2>"$o.log" || { echo "   FAIL $f"; cat "$o.log"; exit 1; }
  objs+=("$o")
done
rm -f "$out/libllama_sys_shim.a"
x86_64-w64-mingw32-ar rcs "$out/libllama_sys_shim.a" "${objs[@]}"
echo "   ok, ${#files[@]} files"

stage=link
echo "== link as rustc does for x86_64-pc-windows-gnu, with link_plan.rs's lines"
cat >"$out/plan.rs" <<EOF
#[path = "$PWD/llamacpp-sys/build/link_plan.rs"]
mod link_plan;
fn main() {
    let lib_dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap());
    let files = std::fs::read_dir(&lib_dir).unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let t = link_plan::Target { os: "windows".into(), env: "gnu".into(), arch: "x86_64".into(),
        vendor: "pc".into(), ..Default::default() };
    let inst = link_plan::Installed { lib_dir, files, dynamic: false };
    for l in link_plan::link_lines(&t, &Default::default(), &inst).unwrap() { println!("{l}"); }
}
EOF
rustc --edition 2024 -A warnings -o "$out/plan" "$out/plan.rs"
"$out/plan" "$prefix/lib" >"$out/plan.txt"
plan_args=()
while read -r line; do
  case "$line" in
    cargo:rustc-link-search=native=*) plan_args+=("-L${line#cargo:rustc-link-search=native=}") ;;
    cargo:rustc-link-lib=*)
      v=${line#cargo:rustc-link-lib=}
      case "$v" in
        *+verbatim=*) plan_args+=("-l:${v#*=}") ;;
        *=*) plan_args+=("-l${v#*=}") ;;
        *) plan_args+=("-l$v") ;;
      esac ;;
  esac
done <"$out/plan.txt"
cat >"$out/main.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include "llama.h"
#include "shim.h"
int main(void) {
    llama_backend_init();
    const char * info = llama_print_system_info();
    char * out = NULL;
    const char * schema = "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}}}";
    int ok = llama_sys_json_schema_to_grammar(schema, strlen(schema), &out) == 0 && strstr(out, "root");
    llama_sys_string_free(out);
    /* invalid JSON: the converter throws, the shim catches and returns -1 with the message */
    int caught = llama_sys_json_schema_to_grammar("{", 1, &out) == -1 && out && *out;
    llama_sys_string_free(out);
    printf("system info: %s\nschema: %s, exception: %s\n", info, ok ? "ok" : "FAIL", caught ? "caught" : "FAIL");
    llama_backend_free();
    return ok && caught && strstr(info, "CPU") ? 0 : 1;
}
EOF
$CC -O2 -I"$src/include" -I"$src/ggml/include" -I"$shim" -c "$out/main.c" -o "$out/main.o"
# rustc: -nodefaultlibs, the cc crate's lines (shim, stdc++), this crate's, then its MinGW libraries.
$CC -fno-use-linker-plugin -Wl,--dynamicbase -Wl,--disable-auto-image-base -nodefaultlibs \
  "$out/main.o" -L"$out" -lllama_sys_shim -lstdc++ "${plan_args[@]}" -lkernel32 \
  -lmsvcrt -lmingwex -lmingw32 -lgcc -lmsvcrt -luser32 -lkernel32 -lgcc_s \
  -o "$out/check.exe" 2>"$out/link.log" || { show "$out/link.log" 20; exit 1; }
echo "   ok: ${plan_args[*]}"

stage=run
if [ -n "$wine" ]; then
  echo "== run under $(basename "$wine")"
  gcc_dir=$(dirname "$($CXX -print-libgcc-file-name)")
  export WINEDEBUG=-all WINEPREFIX=$root/wine WINEPATH="$gcc_dir;/usr/x86_64-w64-mingw32/lib"
  timeout 300 "$wine" "$out/check.exe" >"$out/run.log" 2>&1 || { cat "$out/run.log"; exit 1; }
  grep -v '^wine:' "$out/run.log" | sed 's/^/   /'
  ran=", ran under Wine"
else
  ran=", not run (no Wine; --run installs it)"
fi
verdict "PASS: llama built, shim compiled, linked$ran"
