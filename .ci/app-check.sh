#!/usr/bin/env bash
# An application outside the workspace, made as a user makes one: `cargo new`, `cargo add`, build,
# run. Twice: once from the packaged crates (`cargo package`, unpacked, and `[patch.crates-io]` to
# them, since they are not published yet), once from a git dependency on this repository's HEAD.
# Both run .ci/app/main.rs on a synthetic Qwen3-Next and must print the same transcript.
#
#   bash .ci/app-check.sh                 # both builds, run and compared
#   bash .ci/app-check.sh --vulkan        # the packaged build with `llamacpp/vulkan`, compiled only
#                                         # (LLAMACPP_SYS_CMAKE_ARGS must point at Vulkan headers)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
vulkan=false
[ "${1:-}" = --vulkan ] && vulkan=true

crates=(llamacpp-patchkit llamacpp-sys llamacpp llamacpp-synth)
# Outside this workspace (cargo would take an app below it for a member), but its build cache
# stays in the workspace's target/ so that reruns are cheap.
work=$(mktemp -d "${TMPDIR:-/tmp}/llamacpp-app-XXXXXX")
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR=$root/target/app-check
$vulkan && export CARGO_TARGET_DIR=$root/target/app-check-vulkan

echo "-- cargo package: ${crates[*]}"
pkg_args=()
for c in "${crates[@]}"; do pkg_args+=(-p "$c"); done
cargo package --no-verify --allow-dirty --quiet "${pkg_args[@]}" --target-dir "$work/package"
mkdir -p "$work/crates"
for f in "$work"/package/package/*.crate; do tar -xzf "$f" -C "$work/crates"; done
# A package must build from its own files: no path may point back into the repository.
if grep -rn --include=Cargo.toml "$root" "$work/crates"; then
  echo "a packaged manifest points into the repository" >&2; exit 1
fi
ls "$work/crates"

patch_section() {
  echo "[patch.crates-io]"
  for d in "$work"/crates/*/; do
    name=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$d/Cargo.toml" | head -n1)
    echo "$name = { path = \"$d\" }"
  done
}

new_app() { # NAME: a fresh binary crate with main.rs in place
  (cd "$work" && cargo new --quiet --vcs none --bin "$1")
  cp "$root/.ci/app/main.rs" "$work/$1/src/main.rs"
}

echo "-- app on the packaged crates"
new_app packaged
patch_section >>"$work/packaged/Cargo.toml"
(
  cd "$work/packaged"
  feat=()
  $vulkan && feat=(--features vulkan)
  cargo add --quiet llamacpp@0.1 "${feat[@]}"
  cargo add --quiet llamacpp-synth@0.1
  if $vulkan; then
    cargo build --quiet
    echo "built with Vulkan: $(ls "$CARGO_TARGET_DIR"/debug/packaged)"
  else
    cargo run --quiet >"$work/packaged.out"
  fi
)
$vulkan && exit 0
cat "$work/packaged.out"

echo "-- app on a git dependency (file://$root at $(git rev-parse --short HEAD))"
[ -z "$(git status --porcelain -- llamacpp llamacpp-sys synth patchkit Cargo.toml)" ] ||
  echo "note: uncommitted changes in the crates are not in the git build"
new_app from-git
(
  cd "$work/from-git"
  rev=$(git -C "$root" rev-parse HEAD)
  cargo add --quiet --git "file://$root" --rev "$rev" llamacpp llamacpp-synth
  cargo run --quiet >"$work/from-git.out"
)
if ! diff -u "$work/packaged.out" "$work/from-git.out"; then
  echo "the packaged and the git builds print different transcripts" >&2; exit 1
fi
grep -qx ok "$work/packaged.out"
echo "app-check: packaged and git builds agree"
